//! IP prefix matching compiled once: for each prefix length in use, a hash set of masked
//! networks, so a lookup is one probe per distinct length rather than a scan of every CIDR.

use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// A set of prefixes.
#[derive(Debug, Default)]
pub struct CidrSet {
    v4: HashMap<u8, HashSet<u32>>,
    v6: HashMap<u8, HashSet<u128>>,
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

impl CidrSet {
    /// Builds the set.
    pub fn new<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> CidrSet {
        let mut s = CidrSet::default();
        for net in nets {
            match net {
                IpNet::V4(n) => {
                    let len = n.prefix_len();
                    s.v4.entry(len)
                        .or_default()
                        .insert(mask4(u32::from(n.addr()), len));
                }
                IpNet::V6(n) => {
                    let len = n.prefix_len();
                    s.v6.entry(len)
                        .or_default()
                        .insert(mask6(u128::from(n.addr()), len));
                }
            }
        }
        s
    }

    /// True when no prefix was given.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether `ip` is inside any prefix. IPv4-mapped IPv6 addresses match IPv4 prefixes.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .any(|(len, set)| set.contains(&mask4(a, *len)))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .any(|(len, set)| set.contains(&mask6(a, *len)))
            }
        }
    }
}

/// Go's `ip_is_private`: not a public unicast address (loopback, private, link-local,
/// unique-local, unspecified, multicast, broadcast, CGNAT, documentation and benchmark ranges).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 2)
                || (o[0] == 198 && o[1] == 51 && o[2] == 100)
                || (o[0] == 203 && o[1] == 0 && o[2] == 113)
                || o[0] >= 240
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                let s = a.segments();
                a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || (s[0] & 0xfe00) == 0xfc00
                    || (s[0] & 0xffc0) == 0xfe80
                    || (s[0] == 0x2001 && s[1] == 0x0db8)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_by_length() {
        let nets: Vec<IpNet> = ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let set = CidrSet::new(&nets);
        assert!(set.contains("10.9.8.7".parse().unwrap()));
        assert!(set.contains("192.168.1.7".parse().unwrap()));
        assert!(!set.contains("192.168.1.8".parse().unwrap()));
        assert!(set.contains("fd12::1".parse().unwrap()));
        assert!(set.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!set.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn private_addresses() {
        for p in [
            "10.1.1.1",
            "127.0.0.1",
            "192.168.0.1",
            "100.64.0.1",
            "fe80::1",
            "fd00::1",
            "::1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }
}
