//! The kernel's socket tables (`/proc/net/tcp`, `tcp6`, `udp`, `udp6`) read as text, and the
//! choice of the client's socket among their rows. Sans-IO: the caller reads the files, so
//! the parsing is tested on captured text. Odd rows (a kernel with other columns, a row cut
//! short) are skipped, never trusted.

use crate::flow::Network;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One row of a socket table: what the process search needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketRow {
    /// The socket's own address (mapped IPv6 addresses made IPv4).
    pub local: SocketAddr,
    /// Its peer; port 0 and an unspecified address for an unconnected socket.
    pub remote: SocketAddr,
    /// The uid that created it.
    pub uid: u32,
    /// Its inode; 0 for a socket no file refers to any more (TIME_WAIT).
    pub inode: u64,
}

/// The rows of one table; the header line and malformed rows are skipped.
pub fn rows(text: &str) -> impl Iterator<Item = SocketRow> + '_ {
    text.lines().filter_map(row)
}

/// `  0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 24377 ...`:
/// slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode.
fn row(line: &str) -> Option<SocketRow> {
    let mut cols = line.split_ascii_whitespace();
    let slot = cols.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let local = addr(cols.next()?)?;
    let remote = addr(cols.next()?)?;
    let mut rest = cols.skip(4);
    let uid = rest.next()?.parse().ok()?;
    let inode = rest.nth(1)?.parse().ok()?;
    Some(SocketRow {
        local,
        remote,
        uid,
        inode,
    })
}

/// `ADDR:PORT` with ADDR as 8 (IPv4) or 32 (IPv6) hex digits and PORT as 4.
fn addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(hex_only(port, 4)?, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

/// The kernel prints each 32-bit word of an address as a host-order integer (`%08X`), so the
/// network-order bytes are that integer's native bytes (reversed text on little-endian).
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex_only(hex, 8)?, 16)
        .ok()
        .map(u32::to_ne_bytes)
}

/// `text` if it is exactly `len` hex digits (`from_str_radix` alone would take a sign).
fn hex_only(text: &str, len: usize) -> Option<&str> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())).then_some(text)
}

/// The client's socket among `rows`: bound to `source` (the client address the inbound saw),
/// and for TCP connected to `local` (the inbound's address, or to anyone when that is
/// unknown), so that the inbound's own accepted socket (the same pair reversed) and listeners
/// never match. UDP sockets need not be
/// connected and may be bound to a wildcard address; an exact row is preferred over those.
pub fn client_socket(
    rows: impl Iterator<Item = SocketRow>,
    network: Network,
    source: SocketAddr,
    local: Option<SocketAddr>,
) -> Option<SocketRow> {
    let source = canonical(source);
    let local = local.map(canonical);
    let mut best: Option<(u8, SocketRow)> = None;
    for r in rows {
        if r.inode == 0 || r.local.port() != source.port() {
            continue;
        }
        let exact_ip = r.local.ip() == source.ip();
        let wildcard = network == Network::Udp && r.local.ip().is_unspecified();
        if !(exact_ip || wildcard) {
            continue;
        }
        let to_inbound = local.is_some_and(|l| reaches(r.remote, l));
        let score = match network {
            // Listeners and unconnected sockets have no peer port.
            Network::Tcp if r.remote.port() == 0 => continue,
            Network::Tcp if local.is_some() && !to_inbound => continue,
            Network::Tcp => 3,
            Network::Udp if to_inbound => 2 + u8::from(exact_ip),
            Network::Udp if r.remote.port() == 0 => u8::from(exact_ip),
            // Connected to someone else: not the socket that sent to the inbound.
            Network::Udp if local.is_some() => continue,
            Network::Udp => u8::from(exact_ip),
            Network::Icmp => continue,
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, r));
            if score == 3 {
                break;
            }
        }
    }
    best.map(|(_, r)| r)
}

/// Whether a socket whose peer is `remote` talks to `inbound` (an inbound bound to a wildcard
/// address matches on the port).
fn reaches(remote: SocketAddr, inbound: SocketAddr) -> bool {
    remote.port() == inbound.port()
        && (remote.ip() == inbound.ip() || inbound.ip().is_unspecified())
}

/// The address with an IPv4-mapped IPv6 address made IPv4, as the tables are read.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on x86-64 (little-endian), where the kernel's host-order words print reversed.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   114        0 24377 1 0000000000000000 100 0 0 10 0                     
   1: 0100007F:A2B4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 881234 1 0000000000000000 20 4 30 10 -1                   
   2: 0100007F:1F90 0100007F:A2B4 01 00000000:00000000 00:00000000 00000000     0        0 881235 1 0000000000000000 20 4 31 10 -1                   
   3: 0100007F:A2B4 0100007F:1F90 06 00000000:00000000 03:00000D2F 00000000     0        0 0 3 0000000000000000                                      
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:C350 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 5002 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1002        0 5003 1 0000000000000000 20 4 30 10 -1
   3: B80D0120000000000000000001000000:0050 B80D0120000000000000000002000000:9C40 01 00000000:00000000 00:00000000 00000000  1003        0 5004 1 0000000000000000 20 4 30 10 -1
";

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops             
  100: 00000000:D903 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 7001 2 0000000000000000 0          
  101: 0100007F:D904 0100007F:0035 01 00000000:00000000 00:00000000 00000000  1001        0 7002 2 0000000000000000 0          
  102: 0100007F:D905 00000000:0000 07 00000000:00000000 00:00000000 00000000  1002        0 7003 2 0000000000000000 0          
  103: 0100007F:D905 0100007F:1000 01 00000000:00000000 00:00000000 00000000  1003        0 7004 2 0000000000000000 0          
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv4_rows_parse() {
        let r: Vec<SocketRow> = rows(TCP).collect();
        assert_eq!(r.len(), 4, "the header is skipped");
        assert_eq!(r[0].local, sa("127.0.0.1:3306"));
        assert_eq!(r[0].remote, sa("0.0.0.0:0"));
        assert_eq!((r[0].uid, r[0].inode), (114, 24377));
        assert_eq!(
            r[1],
            SocketRow {
                local: sa("127.0.0.1:41652"),
                remote: sa("127.0.0.1:8080"),
                uid: 1000,
                inode: 881234,
            }
        );
        assert_eq!(r[3].inode, 0);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv6_and_mapped_rows_parse() {
        let r: Vec<SocketRow> = rows(TCP6).collect();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].local, sa("[::]:8080"));
        assert_eq!(r[1].local, sa("[::1]:50000"));
        assert_eq!(r[1].remote, sa("[::1]:8080"));
        // An IPv4 client of a dual-stack socket: ::ffff:127.0.0.1, read as IPv4.
        assert_eq!(r[2].local, sa("127.0.0.1:54321"));
        assert_eq!(r[2].remote, sa("127.0.0.1:8080"));
        assert_eq!(r[3].local, sa("[2001:db8::1]:80"));
        assert_eq!(r[3].remote, sa("[2001:db8::2]:40000"));
        assert_eq!((r[3].uid, r[3].inode), (1003, 5004));
    }

    #[test]
    fn odd_rows_are_skipped() {
        for bad in [
            "",
            "garbage",
            "   0: 0100007F:0CEA",
            "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000",
            "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 -1 0 1",
            "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 x",
            "   0: +100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 1",
            "   0: 0100007F:CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 1",
            "   0: 0100007F0:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 1",
            "   0: 0000000000000000FFFF00000100007:0CEA 00000000:0000 0A 0:0 0:0 0 1 0 1",
            "   0: 0000000000000000FFFF000ä0100007F:0CEA 00000000:0000 0A 0:0 0:0 0 1 0 1",
            "   0 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1 0 1",
        ] {
            assert_eq!(rows(bad).count(), 0, "{bad:?}");
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn the_client_socket_is_chosen_not_the_accepted_one() {
        let pick = |text, net, src: &str, local: Option<&str>| {
            client_socket(rows(text), net, sa(src), local.map(sa)).map(|r| r.inode)
        };
        let tcp = Network::Tcp;
        assert_eq!(
            pick(TCP, tcp, "127.0.0.1:41652", Some("127.0.0.1:8080")),
            Some(881234)
        );
        // The inbound saw the client through a dual-stack listener.
        assert_eq!(
            pick(
                TCP,
                tcp,
                "[::ffff:127.0.0.1]:41652",
                Some("[::ffff:127.0.0.1]:8080")
            ),
            Some(881234)
        );
        // Connected elsewhere: not this flow's socket.
        assert_eq!(
            pick(TCP, tcp, "127.0.0.1:41652", Some("127.0.0.1:9999")),
            None
        );
        assert_eq!(pick(TCP, tcp, "127.0.0.1:41652", None), Some(881234));
        // A listener on the source port is not a client.
        assert_eq!(
            pick(TCP, tcp, "127.0.0.1:3306", Some("127.0.0.1:8080")),
            None
        );
        assert_eq!(pick(TCP, tcp, "127.0.0.1:3306", None), None);
        assert_eq!(
            pick(TCP6, tcp, "127.0.0.1:54321", Some("127.0.0.1:8080")),
            Some(5003)
        );
        assert_eq!(
            pick(TCP6, tcp, "[::1]:50000", Some("[::]:8080")),
            Some(5002)
        );
        assert_eq!(pick(TCP6, tcp, "[::1]:50001", None), None);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn udp_sockets_may_be_unconnected_or_wildcard() {
        let pick = |src: &str, local: Option<&str>| {
            client_socket(rows(UDP), Network::Udp, sa(src), local.map(sa)).map(|r| r.inode)
        };
        // Bound to 0.0.0.0, unconnected.
        assert_eq!(pick("127.0.0.1:55555", Some("127.0.0.1:4096")), Some(7001));
        // Connected to the inbound.
        assert_eq!(pick("127.0.0.1:55556", Some("127.0.0.1:53")), Some(7002));
        // Connected to someone else.
        assert_eq!(pick("127.0.0.1:55556", Some("127.0.0.1:4096")), None);
        // Two sockets on one port (SO_REUSEPORT): the one connected to the inbound wins.
        assert_eq!(pick("127.0.0.1:55557", Some("127.0.0.1:4096")), Some(7004));
        assert_eq!(pick("127.0.0.1:55557", Some("127.0.0.1:4097")), Some(7003));
        assert_eq!(pick("127.0.0.1:55558", None), None);
    }
}
