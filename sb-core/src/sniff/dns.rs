//! DNS sniffer: a DNS query (RFC 1035 §4.1) in a UDP datagram, or over TCP behind its
//! two-byte length prefix (RFC 1035 §4.2.2).
//!
//! A query is a message with QR = 0 and opcode QUERY, at least one question, no answer or
//! authority records, and questions and additional records (EDNS OPT) that parse inside the
//! message. Like Go, no domain is reported: the question name is not the flow's destination.

use super::reader::Reader;
use super::Sniffed;

const HEADER: usize = 12;

/// DNS over UDP: the datagram is one query message.
pub fn dns(p: &[u8]) -> Sniffed {
    if is_query(p) {
        Sniffed::Yes("dns", None)
    } else {
        Sniffed::No
    }
}

/// DNS over TCP: a two-byte length, then a query message of that length.
///
/// The header is checked as soon as its bytes arrive, so a stream that is not DNS is turned
/// down early instead of waiting for a length's worth of bytes.
pub fn dns_stream(b: &[u8]) -> Sniffed {
    let mut r = Reader(b);
    let Some(len) = r.u16() else {
        return Sniffed::NeedMore;
    };
    let len = usize::from(len);
    if len < HEADER {
        return Sniffed::No;
    }
    let message = &r.0[..r.len().min(len)];
    if !header_is_query(message) {
        return Sniffed::No;
    }
    if message.len() < len {
        return Sniffed::NeedMore;
    }
    dns(message)
}

/// Whether the header bytes present look like a query's: QR = 0, opcode QUERY, QDCOUNT > 0,
/// ANCOUNT = NSCOUNT = 0. Bytes not yet seen are not held against it.
fn header_is_query(m: &[u8]) -> bool {
    let at = |i: usize| m.get(i).copied();
    let flags_ok = at(2).is_none_or(|f| f & 0xf8 == 0); // QR and the opcode bits
    let qd_ok = !matches!((at(4), at(5)), (Some(0), Some(0)));
    let an_ns_ok = (6..10).all(|i| at(i).is_none_or(|b| b == 0));
    flags_ok && qd_ok && an_ns_ok
}

fn is_query(m: &[u8]) -> bool {
    m.len() >= HEADER && header_is_query(m) && body_parses(m).is_some()
}

/// Walks the questions and the additional records; `None` when one runs out of the message.
fn body_parses(m: &[u8]) -> Option<()> {
    let mut r = Reader(m);
    r.skip(4)?; // id, flags
    let questions = r.u16()?;
    r.skip(4)?; // ANCOUNT, NSCOUNT: zero, checked above
    let additional = r.u16()?;
    for _ in 0..questions {
        name(m, &mut r)?;
        r.skip(4)?; // QTYPE, QCLASS
    }
    for _ in 0..additional {
        name(m, &mut r)?;
        r.skip(8)?; // TYPE, CLASS, TTL
        let rdlength = r.u16()?;
        r.skip(usize::from(rdlength))?;
    }
    Some(())
}

/// A domain name at the reader: labels ending in the root label or in a compression pointer
/// to an earlier offset. Pointers are not followed (the sniffer needs no name), so a hostile
/// message cannot make it loop.
fn name(message: &[u8], r: &mut Reader<'_>) -> Option<()> {
    let mut length = 0usize;
    loop {
        let offset = message.len() - r.len();
        let len = r.u8()?;
        match len >> 6 {
            0 if len == 0 => return Some(()),
            0 => {
                length += usize::from(len) + 1;
                if length > 255 {
                    return None;
                }
                r.skip(usize::from(len))?;
            }
            3 => {
                let target = usize::from(len & 0x3f) << 8 | usize::from(r.u8()?);
                return (HEADER..offset).contains(&target).then_some(());
            }
            // 01 and 10 are reserved label types (RFC 6891 retired the extended ones).
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::tests::hex;

    /// `dig @127.0.0.1 -p PORT Example.COM A` (BIND 9.18), caught on a local UDP socket:
    /// one question and an EDNS OPT record with a client cookie.
    const DIG_A: &str = "6b6c01200001000000000001074578616d706c6503434f4d000001000100002904d000000000000c000a0008f26c3fcd5506ba9a";
    /// `dig +noedns www.example.org AAAA`, caught the same way.
    const DIG_AAAA_NOEDNS: &str =
        "e3070120000100000000000003777777076578616d706c65036f726700001c0001";

    #[test]
    fn dig_queries() {
        assert_eq!(dns(&hex(DIG_A)), Sniffed::Yes("dns", None));
        assert_eq!(dns(&hex(DIG_AAAA_NOEDNS)), Sniffed::Yes("dns", None));
    }

    #[test]
    fn not_queries() {
        let q = hex(DIG_A);
        for cut in 0..q.len() {
            assert_eq!(dns(&q[..cut]), Sniffed::No, "cut at {cut}");
        }
        let mut response = q.clone();
        response[2] |= 0x80;
        assert_eq!(dns(&response), Sniffed::No);
        let mut notify = q.clone();
        notify[2] |= 4 << 3;
        assert_eq!(dns(&notify), Sniffed::No);
        let mut no_question = q.clone();
        no_question[5] = 0;
        assert_eq!(dns(&no_question), Sniffed::No);
        let mut answers = q.clone();
        answers[7] = 1;
        assert_eq!(dns(&answers), Sniffed::No);
        // A compression pointer in the question that points forward.
        let mut pointer = q.clone();
        pointer[12] = 0xc0;
        pointer[13] = 0x30;
        assert_eq!(dns(&pointer), Sniffed::No);
        // A pointer back into the header is no name either.
        pointer[13] = 0x02;
        assert_eq!(dns(&pointer), Sniffed::No);
    }

    #[test]
    fn over_tcp() {
        let q = hex(DIG_A);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        assert_eq!(dns_stream(&framed), Sniffed::Yes("dns", None));
        for cut in 0..framed.len() {
            assert_eq!(
                dns_stream(&framed[..cut]),
                Sniffed::NeedMore,
                "cut at {cut}"
            );
        }
        // Other streams are turned down from their first bytes.
        assert_eq!(dns_stream(b"GET / HTTP/1.1\r\n"), Sniffed::No);
        assert_eq!(dns_stream(b"SSH-2.0-OpenSSH"), Sniffed::No);
        assert_eq!(dns_stream(b"\x00\x05hello"), Sniffed::No);
    }
}
