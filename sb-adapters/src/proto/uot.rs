//! UDP over TCP (sing-box's "UoT", versions 1 and 2), the wire format, sans-IO. UDP
//! datagrams ride one TCP stream that a proxy client opens to a magic domain
//! (`sp.v2.udp-over-tcp.arpa`, or `sp.udp-over-tcp.arpa` for version 1). Both ends of sb use
//! it: the `socks` outbound's `udp_over_tcp` (client) and the proxy inbounds (server).
//!
//! Wire format (facts from sing-box's protocol notes): version 2 first sends a request,
//! `is_connect: u8` then the destination as a SOCKS5 address. In "connect" mode every
//! datagram is then `length: u16 BE, payload` and goes to (comes from) that destination;
//! otherwise each is `address port length payload`, where the address uses UoT's own family
//! bytes (0 IPv4, 1 IPv6, 2 domain with a length byte), not SOCKS's. Version 1 sends no
//! request and always uses the addressed form.

use super::socks;
use sb_core::flow::{Destination, Host};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// The destination that announces UoT version 2.
pub const MAGIC_ADDRESS: &str = "sp.v2.udp-over-tcp.arpa";
/// The destination that announces UoT version 1 (sing-box calls it legacy).
pub const LEGACY_MAGIC_ADDRESS: &str = "sp.udp-over-tcp.arpa";

/// Longest UoT header: family, length byte, a 255-byte domain, port, payload length.
pub const MAX_HEADER: usize = 1 + 1 + 255 + 2 + 2;

/// Why bytes are not UoT.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UotError {
    /// An address family byte UoT does not define.
    #[error("UoT: unknown address family {0}")]
    AddressFamily(u8),
    /// The request's SOCKS5 address is malformed.
    #[error("UoT: bad request address: {0}")]
    Request(socks::SocksError),
    /// A field that cannot be read.
    #[error("UoT: malformed {0}")]
    Malformed(&'static str),
    /// A datagram longer than a length field holds (65,535 bytes).
    #[error("UoT: datagram of {0} bytes is too large")]
    TooLarge(usize),
    /// A domain that cannot be a destination (empty, control characters, too long).
    #[error("UoT: bad domain: {0}")]
    Name(sb_core::flow::NameError),
}

/// `Ok(Some((value, bytes used)))`, `Ok(None)` when more bytes are needed.
pub type Parse<T> = Result<Option<(T, usize)>, UotError>;

/// The UoT protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The legacy form: no request header.
    V1,
    /// The current form (sing-box's default).
    V2,
}

impl Version {
    /// The config's `version` (0 means the default, 2). Other values are rejected at start.
    pub fn from_config(v: u8) -> Option<Version> {
        match v {
            0 | 2 => Some(Version::V2),
            1 => Some(Version::V1),
            _ => None,
        }
    }

    /// The version a proxy destination announces, if it is one of the magic domains (Go
    /// compares the name exactly and ignores the port).
    pub fn of(dest: &Destination) -> Option<Version> {
        match dest.domain()? {
            MAGIC_ADDRESS => Some(Version::V2),
            LEGACY_MAGIC_ADDRESS => Some(Version::V1),
            _ => None,
        }
    }

    /// The magic domain itself.
    pub fn magic_address(self) -> &'static str {
        match self {
            Version::V1 => LEGACY_MAGIC_ADDRESS,
            Version::V2 => MAGIC_ADDRESS,
        }
    }

    /// The destination a client asks its proxy for (port 0, as sing-box sends).
    pub fn magic_destination(self) -> Destination {
        Destination {
            host: Host::Domain(self.magic_address().into()),
            port: 0,
        }
    }
}

/// How datagrams are framed on the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Each datagram names its address (version 1, and version 2 without "connect").
    Addressed,
    /// Version 2 "connect": only a length, the destination is the request's.
    Connect,
}

/// The version 2 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// "Connect" mode: every datagram goes to `destination`.
    pub is_connect: bool,
    /// Where the flow goes (in connect mode: every datagram's peer).
    pub destination: Destination,
}

impl Request {
    /// The framing the request chose.
    pub fn framing(&self) -> Framing {
        if self.is_connect {
            Framing::Connect
        } else {
            Framing::Addressed
        }
    }
}

/// The request's bytes (a domain too long for a SOCKS address is an error, never cut).
pub fn encode_request(req: &Request) -> Result<Vec<u8>, socks::SocksError> {
    let mut out = vec![u8::from(req.is_connect)];
    socks::encode_address(&mut out, &req.destination)?;
    Ok(out)
}

/// Parses a version 2 request. Like Go's boolean read, any non-zero byte means "connect".
pub fn request(b: &[u8]) -> Parse<Request> {
    let Some(&flag) = b.first() else {
        return Ok(None);
    };
    let rest = b.get(1..).unwrap_or_default();
    match socks::address(rest).map_err(UotError::Request)? {
        None => Ok(None),
        Some((destination, used)) => Ok(Some((
            Request {
                is_connect: flag != 0,
                destination,
            },
            1 + used,
        ))),
    }
}

/// Appends `dest` in UoT's address form (address then port).
pub fn encode_address(out: &mut Vec<u8>, dest: &Destination) -> Result<(), UotError> {
    match &dest.host {
        Host::Ip(IpAddr::V4(v4)) => {
            out.push(0);
            out.extend_from_slice(&v4.octets());
        }
        Host::Ip(IpAddr::V6(v6)) => {
            out.push(1);
            out.extend_from_slice(&v6.octets());
        }
        Host::Domain(d) => {
            let len = u8::try_from(d.len()).map_err(|_| UotError::Malformed("domain length"))?;
            out.push(2);
            out.push(len);
            out.extend_from_slice(d.as_bytes());
        }
    }
    out.extend_from_slice(&dest.port.to_be_bytes());
    Ok(())
}

/// Parses a UoT address and port.
pub fn address(b: &[u8]) -> Parse<Destination> {
    let Some(&family) = b.first() else {
        return Ok(None);
    };
    let (start, host_len) = match family {
        0 => (1, 4),
        1 => (1, 16),
        2 => match b.get(1) {
            Some(0) => return Err(UotError::Malformed("domain (empty)")),
            Some(&n) => (2, usize::from(n)),
            None => return Ok(None),
        },
        other => return Err(UotError::AddressFamily(other)),
    };
    let end = start + host_len + 2;
    let (Some(host), Some(port)) = (b.get(start..start + host_len), b.get(end - 2..end)) else {
        return Ok(None);
    };
    let port = u16::from_be_bytes([port[0], port[1]]);
    let dest = match (family, host) {
        (0, &[a, b, c, d]) => Destination {
            host: Host::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
            port,
        },
        (1, _) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(host);
            Destination {
                host: Host::Ip(IpAddr::V6(Ipv6Addr::from(a))),
                port,
            }
        }
        _ => {
            let name =
                std::str::from_utf8(host).map_err(|_| UotError::Malformed("domain (not UTF-8)"))?;
            // A name that is an IP literal is an IP, as Go's address reader makes it; a name
            // that cannot be a destination is refused, as SOCKS and HTTP refuse it.
            socks::named(name, port).map_err(UotError::Name)?
        }
    };
    Ok(Some((dest, end)))
}

/// One datagram framed for the stream (`dest` is left out in connect framing).
pub fn encode_packet(
    framing: Framing,
    dest: &Destination,
    payload: &[u8],
) -> Result<Vec<u8>, UotError> {
    let len = u16::try_from(payload.len()).map_err(|_| UotError::TooLarge(payload.len()))?;
    let mut out = Vec::with_capacity(payload.len() + MAX_HEADER);
    if framing == Framing::Addressed {
        encode_address(&mut out, dest)?;
    }
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// One datagram found on the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The address it carried (`None` in connect framing).
    pub address: Option<Destination>,
    /// Where its payload sits in the parsed bytes.
    pub payload: Range<usize>,
}

/// Parses one whole datagram (header and payload).
pub fn packet(b: &[u8], framing: Framing) -> Parse<Frame> {
    let (address, at) = match framing {
        Framing::Connect => (None, 0),
        Framing::Addressed => match address(b)? {
            Some((d, used)) => (Some(d), used),
            None => return Ok(None),
        },
    };
    let Some(&[hi, lo]) = b.get(at..at + 2) else {
        return Ok(None);
    };
    let start = at + 2;
    let end = start + usize::from(u16::from_be_bytes([hi, lo]));
    if b.len() < end {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            address,
            payload: start..end,
        },
        end,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dests() -> [Destination; 3] {
        [
            Destination::from_host("10.1.2.3", 53),
            Destination::from_host("2001:db8::1", 443),
            Destination::from_host("example.com", 123),
        ]
    }

    #[test]
    fn addressed_packets_round_trip_for_every_address_family() {
        for dest in dests() {
            let mut pkt = encode_packet(Framing::Addressed, &dest, b"payload").unwrap();
            pkt.extend_from_slice(b"next");
            let (frame, used) = packet(&pkt, Framing::Addressed).unwrap().unwrap();
            assert_eq!(frame.address, Some(dest.clone()));
            assert_eq!(&pkt[frame.payload], b"payload");
            assert_eq!(&pkt[used..], b"next");
            // Every shorter prefix asks for more bytes instead of failing.
            for cut in 0..used {
                assert_eq!(
                    packet(&pkt[..cut], Framing::Addressed),
                    Ok(None),
                    "{dest} {cut}"
                );
            }
        }
    }

    #[test]
    fn connect_packets_carry_only_a_length() {
        let pkt = encode_packet(Framing::Connect, &dests()[0], b"abc").unwrap();
        assert_eq!(pkt, [0, 3, b'a', b'b', b'c']);
        let (frame, used) = packet(&pkt, Framing::Connect).unwrap().unwrap();
        assert_eq!((frame.address, frame.payload, used), (None, 2..5, 5));
        // An empty datagram is a valid frame.
        let (frame, used) = packet(&[0, 0], Framing::Connect).unwrap().unwrap();
        assert_eq!((frame.payload, used), (2..2, 2));
        assert_eq!(packet(&[0], Framing::Connect), Ok(None));
    }

    #[test]
    fn wire_bytes_match_the_protocol() {
        let mut out = Vec::new();
        encode_address(&mut out, &Destination::from_host("1.2.3.4", 0x0102)).unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4, 1, 2]);
        let mut out = Vec::new();
        encode_address(&mut out, &Destination::from_host("a.b", 80)).unwrap();
        assert_eq!(out, [2, 3, b'a', b'.', b'b', 0, 80]);
        // The request uses SOCKS5 address bytes, not UoT's.
        let req = Request {
            is_connect: true,
            destination: Destination::from_host("1.2.3.4", 53),
        };
        assert_eq!(encode_request(&req).unwrap(), [1, 1, 1, 2, 3, 4, 0, 53]);
    }

    #[test]
    fn requests_round_trip_and_any_nonzero_flag_means_connect() {
        for dest in dests() {
            for is_connect in [false, true] {
                let req = Request {
                    is_connect,
                    destination: dest.clone(),
                };
                let mut b = encode_request(&req).unwrap();
                assert_eq!(request(&b[..b.len() - 1]), Ok(None));
                let n = b.len();
                b.push(0xaa);
                assert_eq!(request(&b), Ok(Some((req.clone(), n))));
                assert_eq!(req.framing() == Framing::Connect, is_connect);
            }
        }
        let (req, _) = request(&[7, 1, 1, 2, 3, 4, 0, 1]).unwrap().unwrap();
        assert!(req.is_connect);
        assert_eq!(request(&[]), Ok(None));
    }

    #[test]
    fn malformed_bytes_are_errors_never_panics() {
        // Unknown UoT family, unknown SOCKS address type in a request.
        assert_eq!(
            packet(&[9, 0, 0], Framing::Addressed),
            Err(UotError::AddressFamily(9))
        );
        assert!(matches!(request(&[0, 9, 1, 2]), Err(UotError::Request(_))));
        // Empty and non-UTF-8 domains.
        assert!(packet(&[2, 0, 0, 1, 0, 0], Framing::Addressed).is_err());
        assert!(packet(&[2, 1, 0xff, 0, 1, 0, 0], Framing::Addressed).is_err());
        // Oversized datagrams and names are refused when encoding.
        let d = Destination::from_host("1.2.3.4", 1);
        assert_eq!(
            encode_packet(Framing::Addressed, &d, &vec![0u8; 70_000]),
            Err(UotError::TooLarge(70_000))
        );
        let long = Destination::from_host(&"a".repeat(256), 1);
        assert!(encode_packet(Framing::Addressed, &long, b"x").is_err());
        // Every byte string of up to 2 bytes, and pseudo-random longer ones with every
        // family byte in front, parse without panicking.
        for a in 0..=255u8 {
            for b in std::iter::once(None).chain((0..=255u8).map(Some)) {
                let bytes: Vec<u8> = std::iter::once(a).chain(b).collect();
                let _ = packet(&bytes, Framing::Addressed);
                let _ = packet(&bytes, Framing::Connect);
                let _ = request(&bytes);
            }
        }
        for seed in 0..2000u32 {
            let mut b: Vec<u8> = (0..64u32)
                .map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 40503) >> 7) as u8)
                .collect();
            b[0] = (seed % 4) as u8;
            for cut in 0..b.len() {
                let _ = packet(&b[..cut], Framing::Addressed);
                let _ = request(&b[..cut]);
            }
        }
    }

    /// Found by the `socks_udp_uot` fuzz target: a datagram's domain was taken as sent, so a
    /// name of dots only became the empty domain (which no UoT frame can carry on) and a name
    /// with control characters reached the router, where SOCKS and HTTP refuse both.
    #[test]
    fn datagram_names_that_cannot_be_destinations_are_refused() {
        let framed = |name: &[u8]| {
            let mut pkt = vec![2, name.len() as u8];
            pkt.extend_from_slice(name);
            pkt.extend_from_slice(&[0, 53, 0, 0]);
            pkt
        };
        for bad in [&b"."[..], b"...", b"a b", b"a\r\nx: y", b"nul\0"] {
            assert!(
                matches!(
                    packet(&framed(bad), Framing::Addressed),
                    Err(UotError::Name(_))
                ),
                "{bad:?}"
            );
        }
        let (frame, _) = packet(&framed(b"A.test."), Framing::Addressed)
            .unwrap()
            .unwrap();
        assert_eq!(frame.address, Some(Destination::from_host("a.test", 53)));
    }

    #[test]
    fn magic_destinations_name_their_version() {
        for v in [Version::V1, Version::V2] {
            assert_eq!(Version::of(&v.magic_destination()), Some(v));
        }
        assert_eq!(
            Version::of(&Destination::from_host(MAGIC_ADDRESS, 443)),
            Some(Version::V2)
        );
        assert_eq!(Version::of(&Destination::from_host("example.com", 0)), None);
        assert_eq!(Version::of(&Destination::from_host("1.2.3.4", 0)), None);
        assert_eq!(Version::from_config(0), Some(Version::V2));
        assert_eq!(Version::from_config(3), None);
    }
}
