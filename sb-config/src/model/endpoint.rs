//! `endpoints[]`: adapters that are both an inbound and an outbound. Types `wireguard` and
//! `tailscale`; their tags share the outbound namespace.

use super::outbound::dial_fields;
use super::shared::{DialFields, Prefixes};
use super::tun::UdpNatBehavior;
use super::typed::{decode_typed, extend_json, typed_json, Family};
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
use crate::kinds;
use crate::path::Path;
use crate::types::{GoDuration, Listable, UdpTimeout};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// The tag as written; empty means "its index".
    pub tag: String,
    /// Type and options.
    pub kind: EndpointKind,
}

/// The endpoint types sb implements.
// Built once per config; boxing the larger variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointKind {
    /// `wireguard`.
    WireGuard(DialFields, WireGuardEndpoint),
    /// `tailscale`.
    Tailscale(DialFields, TailscaleEndpoint),
}

impl EndpointKind {
    /// The `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            EndpointKind::WireGuard(..) => "wireguard",
            EndpointKind::Tailscale(..) => "tailscale",
        }
    }
}

/// `wireguard` endpoint options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WireGuardEndpoint {
    /// Use a kernel interface.
    pub system: bool,
    /// Kernel interface name.
    pub name: String,
    /// MTU; 1408 when zero.
    pub mtu: u32,
    /// Interface addresses.
    pub address: Prefixes,
    /// Base64 private key. Never logged.
    pub private_key: String,
    /// UDP listen port; random when zero.
    pub listen_port: u16,
    /// Peers.
    pub peers: Vec<WireGuardPeer>,
    /// UDP session idle timeout (a plain duration here: Go refuses integers).
    pub udp_timeout: GoDuration,
    /// UDP mapping behaviour (1.14).
    pub udp_mapping: Option<UdpNatBehavior>,
    /// UDP filtering behaviour (1.14).
    pub udp_filtering: Option<UdpNatBehavior>,
    /// Maximum UDP NAT entries (1.14).
    pub udp_nat_max: u32,
    /// Worker count (Go only).
    pub workers: i64,
}

/// A WireGuard peer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WireGuardPeer {
    /// Endpoint address (IP or domain); empty for peers that contact us first.
    pub address: String,
    /// Endpoint port.
    pub port: u16,
    /// Base64 public key.
    pub public_key: String,
    /// Base64 pre-shared key. Never logged.
    pub pre_shared_key: String,
    /// Addresses routed to this peer.
    pub allowed_ips: Prefixes,
    /// Keepalive seconds; 0 is off.
    pub persistent_keepalive_interval: u16,
    /// Reserved bytes: three integers, or base64 of three bytes; `format` writes base64.
    pub reserved: Option<Reserved>,
}

/// `tailscale` endpoint options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TailscaleEndpoint {
    /// State directory; `tailscale` when empty.
    pub state_directory: String,
    /// Pre-authentication key. Never logged.
    pub auth_key: String,
    /// Coordination server; Tailscale's when empty.
    pub control_url: String,
    /// Register as an ephemeral node.
    pub ephemeral: bool,
    /// Host name; the system's when empty.
    pub hostname: String,
    /// Accept subnet routes.
    pub accept_routes: bool,
    /// Exit node name or IP.
    pub exit_node: String,
    /// Keep LAN access while using an exit node.
    pub exit_node_allow_lan_access: bool,
    /// Subnets to advertise.
    pub advertise_routes: Prefixes,
    /// Offer to be an exit node.
    pub advertise_exit_node: bool,
    /// ACL tags (1.13).
    pub advertise_tags: Listable<String>,
    /// WireGuard listen port (1.14).
    pub listen_port: u16,
    /// Peer relay port (1.13).
    pub relay_server_port: u16,
    /// Peer relay endpoints (1.13).
    pub relay_server_static_endpoints: Listable<String>,
    /// Use a system TUN interface (1.13).
    pub system_interface: bool,
    /// System interface name (1.13).
    pub system_interface_name: String,
    /// System interface MTU (1.13).
    pub system_interface_mtu: u32,
    /// UDP session idle timeout.
    pub udp_timeout: UdpTimeout,
    /// Tailscale SSH server (1.14): a boolean or an object.
    pub ssh_server: Option<TailscaleSshServer>,
    /// Taildrop directory (1.14).
    pub taildrop_directory: String,
    /// sb only: the Local API socket of the tailscaled sb drives
    /// (`/var/run/tailscale/tailscaled.sock` when empty). Go sing-box does not know it.
    pub tailscaled_socket: String,
}

const FAMILY: Family = Family {
    noun: "endpoint",
    implemented: kinds::ENDPOINTS,
    missing: kinds::ENDPOINTS_NOT_IMPLEMENTED,
    removed: &[],
};

/// Decodes `endpoints[index]`.
pub fn decode(
    node: &Node,
    path: &Path,
    index: usize,
    ctx: &mut Ctx,
) -> Result<Endpoint, DecodeError> {
    let (tag, kind) = decode_typed(node, path, index, &FAMILY, ctx, |ty, o, ctx| {
        let kind = match ty {
            "wireguard" => wireguard(o, ctx)?,
            "tailscale" => tailscale(o, ctx)?,
            // `kinds::ENDPOINTS` names a type this decoder does not know: a bug, reported
            // instead of decoding the object as something else.
            other => return Err(o.error(format!("type {other:?} has no decoder in sb"))),
        };
        o.finish()?;
        Ok(kind)
    })?;
    Ok(Endpoint { tag, kind })
}

/// The `tailscale` endpoint's options. Two checks Go leaves to the daemon or the
/// coordination server (which fail later, after login) are made here: tags must be
/// `tag:` names, and one node cannot both use and offer an exit node (tailscaled's own
/// text).
fn tailscale(o: &mut crate::object::Obj<'_>, ctx: &mut Ctx) -> Result<EndpointKind, DecodeError> {
    let dial = dial_fields(o, ctx)?;
    let ts: TailscaleEndpoint = o.group()?;
    for tag in &ts.advertise_tags.0 {
        if !tag.starts_with("tag:") || tag.len() == "tag:".len() {
            return Err(o.error_at(
                "advertise_tags",
                format!("{tag:?} is not a tag: tags are written \"tag:<name>\""),
            ));
        }
    }
    if !ts.exit_node.is_empty() && ts.advertise_exit_node {
        return Err(o.error_at(
            "exit_node",
            "Cannot advertise an exit node and use an exit node at the same time.",
        ));
    }
    Ok(EndpointKind::Tailscale(dial, ts))
}

/// The `wireguard` endpoint's options, with the checks Go makes when it builds one.
fn wireguard(o: &mut crate::object::Obj<'_>, ctx: &mut Ctx) -> Result<EndpointKind, DecodeError> {
    {
        let dial = dial_fields(o, ctx)?;
        let wg: WireGuardEndpoint = o.group()?;
        if wg.private_key.is_empty() {
            return Err(o.error("missing private key"));
        }
        super::check::wireguard_key(&wg.private_key, "private key")
            .map_err(|e| o.error_at("private_key", e))?;
        if wg.listen_port != 0 && !dial.detour.is_empty() {
            return Err(o.error_at("listen_port", "`listen_port` is conflict with `detour`"));
        }
        for (i, peer) in wg.peers.iter().enumerate() {
            super::check::wireguard_key(&peer.public_key, &format!("public key for peer {i}"))
                .map_err(|e| o.error_at("peers", e))?;
            if !peer.pre_shared_key.is_empty() {
                super::check::wireguard_key(
                    &peer.pre_shared_key,
                    &format!("pre-shared key for peer {i}"),
                )
                .map_err(|e| o.error_at("peers", e))?;
            }
            if peer.allowed_ips.is_empty() {
                return Err(o.error_at("peers", format!("missing allowed ips for peer {i}")));
            }
            if let Some(r) = &peer.reserved {
                if r.0.len() != 3 {
                    return Err(o.error_at(
                        "peers",
                        format!(
                            "invalid reserved value for peer {i}, required 3 bytes, got {}",
                            r.0.len()
                        ),
                    ));
                }
            }
        }
        Ok(EndpointKind::WireGuard(dial, wg))
    }
}

impl Endpoint {
    /// The JSON object `format` writes (before zero values are dropped).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = typed_json(self.kind.type_name(), &self.tag);
        match &self.kind {
            EndpointKind::WireGuard(d, w) => {
                extend_json(&mut m, d);
                extend_json(&mut m, w);
            }
            EndpointKind::Tailscale(d, t) => {
                extend_json(&mut m, d);
                extend_json(&mut m, t);
            }
        }
        m
    }
}

/// WireGuard `reserved` bytes, written as an integer array or base64.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reserved(pub Vec<u8>);

impl<'de> Deserialize<'de> for Reserved {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Reserved;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of three integers 0-255 or a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Reserved, E> {
                crate::base64::decode(s)
                    .map(Reserved)
                    .ok_or_else(|| E::custom(format!("invalid base64 reserved value {s:?}")))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Reserved, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Reserved(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Reserved {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::base64::encode(&self.0))
    }
}

/// Tailscale `ssh_server` options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TailscaleSshServerOptions {
    /// Enabled.
    pub enabled: bool,
    /// No PTY.
    pub disable_pty: bool,
    /// No SFTP.
    pub disable_sftp: bool,
    /// No forwarding.
    pub disable_forwarding: bool,
}

/// `ssh_server`: a boolean, or [`TailscaleSshServerOptions`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailscaleSshServer(pub TailscaleSshServerOptions);

impl<'de> Deserialize<'de> for TailscaleSshServer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::types::bool_or_object(d, |enabled| TailscaleSshServerOptions {
            enabled,
            ..Default::default()
        })
        .map(TailscaleSshServer)
    }
}

impl Serialize for TailscaleSshServer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let only_enabled = TailscaleSshServerOptions {
            enabled: self.0.enabled,
            ..Default::default()
        };
        if self.0 == only_enabled {
            s.serialize_bool(self.0.enabled)
        } else {
            self.0.serialize(s)
        }
    }
}
