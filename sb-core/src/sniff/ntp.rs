//! NTP sniffer: an NTP client request (RFC 5905 §7.3) in a UDP datagram.
//!
//! Go's test: at least 48 bytes, version 3 or 4, mode 3 (client), root delay and root
//! dispersion at most 16 seconds. sb adds what RFC 5905 §7.5 says can follow the 48-byte
//! header, to keep false positives down: nothing, or extension fields (each at least 16 bytes,
//! a multiple of 4, inside the datagram) and then at most a MAC (a key id and an MD5 or SHA-1
//! digest).

use super::reader::Reader;
use super::Sniffed;

const HEADER: usize = 48;
/// 16 seconds in NTP short format (16.16 fixed point).
const MAX_ROOT: u32 = 16 << 16;

/// NTP: a version 3 or 4 client-mode packet.
pub fn ntp(p: &[u8]) -> Sniffed {
    let mut r = Reader(p);
    let (Some(first), Some(_stratum), Some(_poll), Some(_precision)) =
        (r.u8(), r.u8(), r.u8(), r.u8())
    else {
        return Sniffed::No;
    };
    let (Some(root_delay), Some(root_dispersion)) = (r.u32(), r.u32()) else {
        return Sniffed::No;
    };
    let version = (first >> 3) & 7;
    let mode = first & 7;
    let ok = p.len() >= HEADER
        && matches!(version, 3 | 4)
        && mode == 3
        && root_delay <= MAX_ROOT
        && root_dispersion <= MAX_ROOT
        && trailer_ok(&p[HEADER..]);
    if ok {
        Sniffed::Yes("ntp", None)
    } else {
        Sniffed::No
    }
}

/// What follows the header: extension fields, then nothing or a MAC.
fn trailer_ok(mut rest: &[u8]) -> bool {
    // An MD5 MAC (4 + 16) or a SHA-1 MAC (4 + 20).
    let is_mac = |rest: &[u8]| matches!(rest.len(), 0 | 20 | 24);
    // Each extension field is at least 16 bytes, so this ends within len / 16 rounds.
    loop {
        if is_mac(rest) {
            return true;
        }
        let mut r = Reader(rest);
        let (Some(_ty), Some(len)) = (r.u16(), r.u16()) else {
            return false;
        };
        let len = usize::from(len);
        if len < 16 || len % 4 != 0 || len > rest.len() {
            return false;
        }
        rest = &rest[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::sniff_packets;
    use crate::sniff::tests::{hex, DIG, NTPDATE};

    #[test]
    fn client_requests() {
        // `ntpdate -q 127.0.0.1` (NTPsec 1.2), caught on a local UDP socket: LI 3, version 4,
        // mode 3, all zero but the transmit timestamp.
        assert_eq!(ntp(&hex(NTPDATE)), Sniffed::Yes("ntp", None));
        // An NTPv3 request with poll 6, as older clients send.
        let mut v3 = vec![0x1b, 0, 6, 0];
        v3.resize(48, 0);
        assert_eq!(ntp(&v3), Sniffed::Yes("ntp", None));
        // With an MD5 MAC.
        let mut mac = v3.clone();
        mac.extend_from_slice(&[0; 20]);
        assert_eq!(ntp(&mac), Sniffed::Yes("ntp", None));
        // With one 16-byte extension field.
        let mut ext = v3.clone();
        ext.extend_from_slice(&[0x01, 0x04, 0, 16]);
        ext.extend_from_slice(&[0; 12]);
        assert_eq!(ntp(&ext), Sniffed::Yes("ntp", None));
    }

    #[test]
    fn not_client_requests() {
        let request = hex(NTPDATE);
        for cut in 0..request.len() {
            assert_eq!(ntp(&request[..cut]), Sniffed::No, "cut at {cut}");
        }
        // A server reply (mode 4), a version 2 request, a root delay of 17 s.
        for (i, b) in [(0, 0x24), (0, 0x13), (5, 0x11)] {
            let mut other = request.clone();
            other[i] = b;
            assert_eq!(ntp(&other), Sniffed::No);
        }
        // Seven stray bytes after the header.
        let mut trailing = request.clone();
        trailing.extend_from_slice(&[0; 7]);
        assert_eq!(ntp(&trailing), Sniffed::No);
        // A DNS query (`dig`) is not NTP ...
        assert_eq!(ntp(&hex(DIG)), Sniffed::No);
        // ... but a 48-byte query whose ID begins with 0x23 has the first 12 bytes of an NTPv4
        // request, which is why the packet dispatcher tries DNS first, as Go does.
        let mut query = hex("230001000001000000000000");
        query.push(30);
        query.extend_from_slice(&[b'a'; 30]);
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(query.len(), 48);
        assert_eq!(ntp(&query), Sniffed::Yes("ntp", None));
        assert_eq!(sniff_packets(&[&query], &[]), Sniffed::Yes("dns", None));
    }
}
