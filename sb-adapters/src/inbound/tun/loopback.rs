//! `loopback_address`: TCP packets read from the device whose destination is one of these
//! addresses are turned around in the pump, before the stack sees them, and written back
//! into the device, so that a program connecting to such an address reaches a server on
//! its own machine (Go's `loopback_address`: "TCP connections to the address connect to the
//! source address"). The connection never becomes a flow.
//!
//! The turn is a swap of the two addresses: a packet `S:p -> L:q` leaves as `L:p -> S:q`,
//! which the kernel delivers to the local socket on `S:q`; that socket's answer
//! `S:q -> L:p` is routed into the device again and becomes `L:q -> S:p`, what the client
//! expects. Swapping the addresses changes neither the IPv4 header checksum nor the TCP
//! checksum (both are one's-complement sums in which the two addresses are summed alike),
//! so nothing is recomputed. Sans-IO: a pure function over the packet bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of TCP.
const TCP: u8 = 6;
/// Smallest TCP header.
const TCP_HEADER: usize = 20;
/// Fixed IPv6 header.
const IPV6_HEADER: usize = 40;

/// The configured loopback addresses, by family.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loopback {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

impl Loopback {
    /// The set of `addrs` (empty: nothing is ever turned around).
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Loopback {
        let mut l = Loopback::default();
        for a in addrs {
            match a {
                IpAddr::V4(a) => l.v4.push(a),
                IpAddr::V6(a) => l.v6.push(a),
            }
        }
        l
    }

    /// True when no address is configured.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Turns `pkt` around in place when it is a TCP packet to a loopback address, and says
    /// whether it did. Anything else (too short, another protocol or address, a bad header
    /// length) is left untouched for the stack.
    pub fn reflect(&self, pkt: &mut [u8]) -> bool {
        let Some(first) = pkt.first() else {
            return false;
        };
        match first >> 4 {
            4 if !self.v4.is_empty() => {
                let ihl = usize::from(first & 0x0f) * 4;
                if ihl < 20 || pkt.len() < ihl + TCP_HEADER || pkt[9] != TCP {
                    return false;
                }
                let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
                if !self.v4.contains(&dst) {
                    return false;
                }
                swap(pkt, 12, 16, 4)
            }
            // The transport header must follow the fixed header directly (as in Go, which
            // reads the next-header field only).
            6 if !self.v6.is_empty() => {
                if pkt.len() < IPV6_HEADER + TCP_HEADER || pkt[6] != TCP {
                    return false;
                }
                let mut d = [0u8; 16];
                d.copy_from_slice(&pkt[24..40]);
                if !self.v6.contains(&Ipv6Addr::from(d)) {
                    return false;
                }
                swap(pkt, 8, 24, 16)
            }
            _ => false,
        }
    }
}

/// Swaps `pkt[a..a+len]` and `pkt[b..b+len]` (`a + len <= b`, both in bounds: checked by
/// the caller's length test). Returns true.
fn swap(pkt: &mut [u8], a: usize, b: usize, len: usize) -> bool {
    let (head, tail) = pkt.split_at_mut(b);
    head[a..a + len].swap_with_slice(&mut tail[..len]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP SYN `src:40000 -> dst:9099` with valid checksums.
    fn syn4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&40u16.to_be_bytes());
        p[8] = 64;
        p[9] = TCP;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&9099u16.to_be_bytes());
        p[32] = 0x50;
        p[33] = 0x02;
        let ip = checksum(&p[..20]);
        p[10..12].copy_from_slice(&ip.to_be_bytes());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&[0, TCP, 0, 20]);
        pseudo.extend_from_slice(&p[20..]);
        let tcp = checksum(&pseudo);
        p[36..38].copy_from_slice(&tcp.to_be_bytes());
        p
    }

    fn checksum(b: &[u8]) -> u16 {
        let mut sum: u32 = b
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::from(a)
    }

    #[test]
    fn a_tcp_packet_to_a_loopback_address_swaps_its_addresses_and_stays_valid() {
        let l = Loopback::new([v4([10, 7, 0, 1])]);
        let mut p = syn4([172, 19, 0, 1], [10, 7, 0, 1]);
        let ports = p[20..24].to_vec();
        assert!(l.reflect(&mut p));
        assert_eq!(&p[12..16], &[10, 7, 0, 1], "source is the loopback address");
        assert_eq!(&p[16..20], &[172, 19, 0, 1], "destination is the client");
        assert_eq!(&p[20..24], &ports[..], "ports unchanged");
        // Checksums still verify: the sum over the header (and pseudo header) is zero.
        assert_eq!(checksum(&p[..20]), 0);
        let mut pseudo = p[12..20].to_vec();
        pseudo.extend_from_slice(&[0, TCP, 0, 20]);
        pseudo.extend_from_slice(&p[20..]);
        assert_eq!(checksum(&pseudo), 0);
    }

    #[test]
    fn other_packets_are_left_to_the_stack() {
        let l = Loopback::new([v4([10, 7, 0, 1])]);
        let mut other = syn4([172, 19, 0, 1], [10, 7, 0, 2]);
        let before = other.clone();
        assert!(!l.reflect(&mut other));
        assert_eq!(other, before);
        let mut udp = syn4([172, 19, 0, 1], [10, 7, 0, 1]);
        udp[9] = 17;
        assert!(!l.reflect(&mut udp), "only TCP");
        // Truncated and malformed packets never panic and are not touched.
        let full = syn4([172, 19, 0, 1], [10, 7, 0, 1]);
        for n in 0..full.len() {
            let mut cut = full[..n].to_vec();
            assert!(!l.reflect(&mut cut), "{n} bytes");
        }
        let mut bad_ihl = full.clone();
        bad_ihl[0] = 0x44;
        assert!(!l.reflect(&mut bad_ihl));
        bad_ihl[0] = 0x4f;
        assert!(!l.reflect(&mut bad_ihl), "header longer than the packet");
        assert!(!Loopback::default().reflect(&mut full.clone()));
    }

    #[test]
    fn ipv6_tcp_to_a_loopback_address_is_turned_around() {
        let lo: Ipv6Addr = "fd00:7::1".parse().unwrap();
        let client: Ipv6Addr = "fdfe:dcba:9876::1".parse().unwrap();
        let l = Loopback::new([IpAddr::V6(lo)]);
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
        p[6] = TCP;
        p[8..24].copy_from_slice(&client.octets());
        p[24..40].copy_from_slice(&lo.octets());
        assert!(l.reflect(&mut p));
        assert_eq!(&p[8..24], &lo.octets());
        assert_eq!(&p[24..40], &client.octets());
        p[6] = 0; // a hop-by-hop header first: left alone, as Go does
        p[24..40].copy_from_slice(&lo.octets());
        assert!(!l.reflect(&mut p));
        p[6] = TCP;
        assert!(!l.reflect(&mut p[..59]), "truncated TCP header");
        assert!(l.reflect(&mut p));
    }
}
