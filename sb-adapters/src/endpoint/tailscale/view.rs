//! What the endpoint knows of its daemon now, kept current by the session task
//! (`session.rs`) and read by every flow: whether the daemon is reachable and running, how
//! it carries flows (kernel TUN or userspace), and the tailnet's routes and names for
//! `preferred_by` rules and MagicDNS lookups.

use super::wire::Status;
use ipnet::IpNet;
use sb_core::adapter::PreferredRoutes;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;

/// The address ranges Tailscale assigns nodes from (its CGNAT range and ULA prefix).
const TAILNET_RANGES: [&str; 2] = ["100.64.0.0/10", "fd7a:115c:a1e0::/48"];

/// Most peers kept (a tailnet is far smaller; a bound, because the daemon feeds it).
const MAX_PEERS: usize = 65_536;

/// The endpoint's view of its daemon.
#[derive(Default)]
pub struct View {
    now: RwLock<Snapshot>,
}

/// One moment of it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Why the daemon cannot be used, when it cannot be reached at all.
    pub unreachable: Option<String>,
    /// The daemon's backend state (`NeedsLogin`, `Running`, ...); empty before the first
    /// status.
    pub backend_state: String,
    /// Whether the daemon drives a kernel TUN (else flows go through its Local API dial).
    pub tun: bool,
    /// The last login or daemon error, for flows' errors and the log.
    pub last_error: Option<String>,
    /// The URL the daemon waits for the user to visit.
    pub auth_url: Option<String>,
    /// Routes through the tailnet: the tailnet ranges and peers' allowed IPs (default
    /// routes left out: an exit node is not a reason to prefer the endpoint for everything).
    pub routes: Vec<IpNet>,
    /// MagicDNS names (lower case, no trailing dot) and host names to addresses.
    pub names: HashMap<String, Vec<IpAddr>>,
    /// The MagicDNS suffix, without dots at either end.
    pub suffix: String,
    /// Peers by host name and MagicDNS name (lower case): their node IDs, for `exit_node`.
    pub node_ids: HashMap<String, String>,
}

impl Snapshot {
    /// Whether flows can go through the daemon now.
    pub fn running(&self) -> bool {
        self.unreachable.is_none() && self.backend_state == "Running"
    }

    /// Why flows cannot go through the daemon now.
    pub fn why_not(&self) -> String {
        if let Some(why) = &self.unreachable {
            return why.clone();
        }
        let state = if self.backend_state.is_empty() {
            "not yet known"
        } else {
            &self.backend_state
        };
        let mut why = format!("tailscaled is not running (state {state})");
        if let Some(url) = &self.auth_url {
            why.push_str(&format!("; log in at {url}"));
        }
        if let Some(e) = &self.last_error {
            why.push_str(&format!("; {e}"));
        }
        why
    }

    /// The addresses of MagicDNS name or host name `name`.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.get(&key).map(Vec::as_slice)
    }
}

impl View {
    /// Reads the view under its lock (no copy: rules ask on every flow).
    pub fn read<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        match self.now.read() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Changes the view under its lock.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.now.write() {
            f(&mut s);
        }
    }

    /// Takes what `status` says.
    pub fn set_status(&self, status: &Status) {
        self.update(|s| {
            s.unreachable = None;
            s.backend_state = status.backend_state.clone();
            s.tun = status.tun;
            s.auth_url = Some(status.auth_url.clone()).filter(|u| !u.is_empty());
            s.suffix = status
                .magic_dns_suffix
                .trim_matches('.')
                .to_ascii_lowercase();
            s.routes.clear();
            s.names.clear();
            s.node_ids.clear();
            if status.backend_state != "Running" {
                return;
            }
            s.routes = TAILNET_RANGES
                .iter()
                .filter_map(|r| r.parse().ok())
                .collect();
            for peer in status.peer.iter().flat_map(|p| p.values()).take(MAX_PEERS) {
                let ips: Vec<IpAddr> = peer
                    .tailscale_ips
                    .iter()
                    .flatten()
                    .filter_map(|ip| ip.parse().ok())
                    .collect();
                for prefix in peer.allowed_ips.iter().flatten() {
                    if let Ok(net) = prefix.parse::<IpNet>() {
                        if net.prefix_len() != 0 && !s.routes.iter().any(|r| r.contains(&net)) {
                            s.routes.push(net);
                        }
                    }
                }
                let dns = peer.dns_name.trim_end_matches('.').to_ascii_lowercase();
                let host = peer.host_name.to_ascii_lowercase();
                for name in [dns.as_str(), host.as_str()] {
                    if name.is_empty() {
                        continue;
                    }
                    s.names
                        .entry(name.to_string())
                        .or_insert_with(|| ips.clone());
                    if !peer.id.is_empty() {
                        s.node_ids
                            .entry(name.to_string())
                            .or_insert_with(|| peer.id.clone());
                    }
                }
                // The short MagicDNS name (`host` of `host.tailnet.ts.net`) too.
                if let Some((short, _)) = dns.split_once('.') {
                    s.names
                        .entry(short.to_string())
                        .or_insert_with(|| ips.clone());
                    if !peer.id.is_empty() {
                        s.node_ids
                            .entry(short.to_string())
                            .or_insert_with(|| peer.id.clone());
                    }
                }
            }
        });
    }
}

impl PreferredRoutes for View {
    fn preferred_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        self.read(|s| {
            s.running()
                && (d.contains('.') && s.names.contains_key(&d)
                    || !s.suffix.is_empty()
                        && d.len() > s.suffix.len()
                        && d.ends_with(&s.suffix)
                        && d.as_bytes()[d.len() - s.suffix.len() - 1] == b'.')
        })
    }

    fn preferred_address(&self, ip: IpAddr) -> bool {
        self.read(|s| s.running() && s.routes.iter().any(|r| r.contains(&ip)))
    }
}
