//! Which peer an address belongs to: the longest `allowed_ips` prefix that contains it, as
//! WireGuard's cryptokey routing has it. The same table says which sources a peer may send
//! from, and where the endpoint is the preferred route (`preferred_by`).

use super::settings::PeerSettings;
use ipnet::IpNet;
use sb_core::adapter::PreferredRoutes;
use std::net::IpAddr;

/// Allowed-IPs prefixes and their peers, longest prefix first.
#[derive(Debug, Default)]
pub struct Routes {
    entries: Vec<(IpNet, usize)>,
}

impl Routes {
    /// The table of `peers` (a peer's index is its place in the list).
    pub fn new(peers: &[PeerSettings]) -> Routes {
        let mut entries: Vec<(IpNet, usize)> = peers
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.allowed_ips.iter().map(move |net| (*net, i)))
            .collect();
        // Longest prefix first; among equal ones, the first peer in the config wins.
        entries.sort_by(|a, b| b.0.prefix_len().cmp(&a.0.prefix_len()).then(a.1.cmp(&b.1)));
        Routes { entries }
    }

    /// The peer `ip` is routed to.
    pub fn peer_for(&self, ip: IpAddr) -> Option<usize> {
        self.entries
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, peer)| *peer)
    }
}

impl PreferredRoutes for Routes {
    fn preferred_domain(&self, _domain: &str) -> bool {
        false
    }

    fn preferred_address(&self, ip: IpAddr) -> bool {
        self.peer_for(ip).is_some()
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use boringtun::x25519::{PublicKey, StaticSecret};

    fn peer(allowed: &[&str]) -> PeerSettings {
        PeerSettings {
            public: PublicKey::from(&StaticSecret::from([7u8; 32])),
            psk: None,
            allowed_ips: allowed.iter().map(|a| a.parse().unwrap()).collect(),
            endpoint: None,
            keepalive: None,
            reserved: None,
        }
    }

    #[test]
    fn the_longest_prefix_wins() {
        let routes = Routes::new(&[
            peer(&["0.0.0.0/0", "::/0"]),
            peer(&["10.0.0.0/8"]),
            peer(&["10.1.2.3/32"]),
        ]);
        assert_eq!(routes.peer_for("10.1.2.3".parse().unwrap()), Some(2));
        assert_eq!(routes.peer_for("10.9.9.9".parse().unwrap()), Some(1));
        assert_eq!(routes.peer_for("192.0.2.1".parse().unwrap()), Some(0));
        assert_eq!(routes.peer_for("2001:db8::1".parse().unwrap()), Some(0));
        let narrow = Routes::new(&[peer(&["10.0.0.0/8"])]);
        assert_eq!(narrow.peer_for("192.0.2.1".parse().unwrap()), None);
        assert!(!narrow.preferred_address("192.0.2.1".parse().unwrap()));
        assert!(narrow.preferred_address("10.0.0.1".parse().unwrap()));
    }
}
