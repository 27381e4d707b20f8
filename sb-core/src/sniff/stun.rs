//! STUN sniffer: a STUN message (RFC 5389 §6) in a UDP datagram.
//!
//! Go checks the magic cookie and that the datagram holds the length the header gives. sb also
//! checks what RFC 5389 makes every message satisfy, to keep false positives down: the two top
//! bits of the type are zero, the length is a multiple of 4, and the datagram is exactly the one
//! message.

use super::reader::Reader;
use super::Sniffed;

const MAGIC_COOKIE: u32 = 0x2112_a442;
const HEADER: usize = 20;

/// STUN: a message header with the magic cookie, and attributes filling the datagram.
pub fn stun(p: &[u8]) -> Sniffed {
    let mut r = Reader(p);
    let (Some(ty), Some(len), Some(cookie)) = (r.u16(), r.u16(), r.u32()) else {
        return Sniffed::No;
    };
    let len = usize::from(len);
    let ok = ty & 0xc000 == 0 && cookie == MAGIC_COOKIE && len % 4 == 0 && p.len() == HEADER + len;
    if ok {
        Sniffed::Yes("stun", None)
    } else {
        Sniffed::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::tests::{hex, STUN_REQUEST};

    /// RFC 5769 §2.2: the sample IPv4 response.
    const RESPONSE_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";

    #[test]
    fn rfc5769_vectors() {
        assert_eq!(stun(&hex(STUN_REQUEST)), Sniffed::Yes("stun", None));
        assert_eq!(stun(&hex(RESPONSE_V4)), Sniffed::Yes("stun", None));
        // A Binding request with no attributes.
        let bare = hex("000100002112a442b7e7a701bc34d686fa87dfae");
        assert_eq!(stun(&bare), Sniffed::Yes("stun", None));
    }

    #[test]
    fn not_stun() {
        let request = hex(STUN_REQUEST);
        for cut in 0..request.len() {
            assert_eq!(stun(&request[..cut]), Sniffed::No, "cut at {cut}");
        }
        let mut no_cookie = request.clone();
        no_cookie[4] = 0x22;
        assert_eq!(stun(&no_cookie), Sniffed::No);
        let mut top_bits = request.clone();
        top_bits[0] = 0x40;
        assert_eq!(stun(&top_bits), Sniffed::No);
        let mut trailing = request.clone();
        trailing.extend_from_slice(&[0; 4]);
        assert_eq!(stun(&trailing), Sniffed::No);
    }
}
