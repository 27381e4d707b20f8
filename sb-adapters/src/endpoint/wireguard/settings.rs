//! The `wireguard` endpoint's config turned into what the tunnel runs with: keys decoded,
//! peers with their allowed IPs, endpoints and `reserved` bytes. sb-config has already made
//! Go's checks (missing key, missing allowed IPs, reserved length); what is left here can
//! only fail on a value sb-config let through, and says which.

use boringtun::x25519::{PublicKey, StaticSecret};
use ipnet::IpNet;
use sb_config::model::endpoint::{WireGuardEndpoint, WireGuardPeer};
use std::net::IpAddr;
use std::time::Duration;

/// Go's default MTU for the endpoint.
pub const DEFAULT_MTU: u16 = 1408;
/// Go's default idle time of a UDP flow through the endpoint.
pub const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Why the endpoint's config cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A key that is not base64 of 32 bytes.
    #[error("{what}: not base64 of 32 bytes")]
    Key {
        /// Which key (never its value).
        what: String,
    },
    /// An MTU the stack cannot use.
    #[error("mtu {0}: must be between 576 and 65535")]
    Mtu(u32),
    /// `system: true` in a build without TUN support.
    #[error("`system: true` (a kernel interface) needs sb built with the `tun` feature")]
    System,
}

/// One peer.
#[derive(Clone)]
pub struct PeerSettings {
    /// Its public key.
    pub public: PublicKey,
    /// Pre-shared key, if any.
    pub psk: Option<[u8; 32]>,
    /// Destinations routed to it, and the only sources accepted from it.
    pub allowed_ips: Vec<IpNet>,
    /// Where to send to (host, port); `None` for a peer that contacts sb first.
    pub endpoint: Option<(String, u16)>,
    /// Seconds between keepalives; `None` is off.
    pub keepalive: Option<u16>,
    /// Bytes 1-3 of every message sent (Cloudflare WARP's client id); cleared on receipt.
    pub reserved: Option<[u8; 3]>,
}

impl std::fmt::Debug for PeerSettings {
    // Keys stay out of logs and panics; the public key's start is enough to tell peers apart.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSettings")
            .field("public", &short_key(&self.public))
            .field("allowed_ips", &self.allowed_ips)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The endpoint's settings.
pub struct Settings {
    /// Its private key.
    pub private: StaticSecret,
    /// Its own tunnel addresses.
    pub addresses: Vec<IpNet>,
    /// Tunnel MTU.
    pub mtu: u16,
    /// `system`: a kernel interface instead of the userspace stack alone (refused above
    /// in a build without TUN support, which then never reads these two).
    #[cfg_attr(not(feature = "tun"), allow(dead_code))]
    pub system: bool,
    /// `name`: the kernel interface's name (empty: the first free `wgN`).
    #[cfg_attr(not(feature = "tun"), allow(dead_code))]
    pub name: String,
    /// UDP port to listen on; 0: any.
    pub listen_port: u16,
    /// Peers, in config order (a peer's index is its place here).
    pub peers: Vec<PeerSettings>,
    /// Idle time of a UDP flow.
    pub udp_timeout: Duration,
}

impl Settings {
    /// Reads the config.
    pub fn from_config(wg: &WireGuardEndpoint) -> Result<Settings, SettingsError> {
        if wg.system && !cfg!(feature = "tun") {
            return Err(SettingsError::System);
        }
        let private = StaticSecret::from(key(&wg.private_key, "private key")?);
        let mtu = match wg.mtu {
            0 => DEFAULT_MTU,
            m => u16::try_from(m)
                .ok()
                .filter(|m| *m >= 576)
                .ok_or(SettingsError::Mtu(m))?,
        };
        let peers = wg
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| peer(i, p))
            .collect::<Result<_, _>>()?;
        Ok(Settings {
            private,
            addresses: wg.address.0.iter().map(|p| p.0).collect(),
            system: wg.system,
            name: wg.name.clone(),
            mtu,
            listen_port: wg.listen_port,
            peers,
            udp_timeout: if wg.udp_timeout.is_zero() {
                DEFAULT_UDP_TIMEOUT
            } else {
                wg.udp_timeout.to_std()
            },
        })
    }

    /// The endpoint's own address of `ip`'s family, to send from.
    pub fn local_address(&self, ip: IpAddr) -> Option<IpAddr> {
        self.addresses
            .iter()
            .map(IpNet::addr)
            .find(|a| a.is_ipv4() == ip.is_ipv4())
    }
}

fn peer(i: usize, p: &WireGuardPeer) -> Result<PeerSettings, SettingsError> {
    let public = PublicKey::from(key(&p.public_key, &format!("public key for peer {i}"))?);
    let psk = if p.pre_shared_key.is_empty() {
        None
    } else {
        Some(key(
            &p.pre_shared_key,
            &format!("pre-shared key for peer {i}"),
        )?)
    };
    let endpoint = (!p.address.is_empty()).then(|| (p.address.clone(), p.port));
    let reserved = p
        .reserved
        .as_ref()
        .and_then(|r| <[u8; 3]>::try_from(r.0.as_slice()).ok());
    Ok(PeerSettings {
        public,
        psk,
        allowed_ips: p.allowed_ips.0.iter().map(|a| a.0.trunc()).collect(),
        endpoint,
        keepalive: (p.persistent_keepalive_interval != 0)
            .then_some(p.persistent_keepalive_interval),
        reserved,
    })
}

/// A base64 key of 32 bytes.
fn key(text: &str, what: &str) -> Result<[u8; 32], SettingsError> {
    sb_config::base64::decode(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| SettingsError::Key {
            what: what.to_string(),
        })
}

/// A public key as Go's logs show a peer: the first characters of its base64.
pub fn short_key(k: &PublicKey) -> String {
    let text = sb_config::base64::encode(k.as_bytes());
    text.chars().take(8).collect()
}
