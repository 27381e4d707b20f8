//! RDP sniffer: the X.224 Connection Request that opens an RDP session, carrying an RDP
//! Negotiation Request ([MS-RDPBCGR] 2.2.1.1).
//!
//! Like Go, only the 19-byte request without a routing token or cookie is recognised: TPKT
//! version 3 and length 19, an X.224 CR TPDU of length 14, then a negotiation request (type 1)
//! of length 8.

use super::Sniffed;

/// RDP: a bare X.224 Connection Request with an RDP Negotiation Request.
pub fn rdp(b: &[u8]) -> Sniffed {
    // The byte expected at each offset; `None` where any byte will do.
    const PATTERN: [Option<u8>; 14] = [
        Some(0x03), // TPKT version
        Some(0x00), // TPKT reserved
        Some(0x00), // TPKT length, high byte
        Some(19),   // TPKT length, low byte
        Some(14),   // X.224 length indicator
        Some(0xe0), // X.224 Connection Request
        None,       // DST-REF
        None,
        None, // SRC-REF
        None,
        None,       // class
        Some(0x01), // RDP_NEG_REQ
        None,       // flags
        Some(8),    // length, low byte
    ];
    for (i, want) in PATTERN.iter().enumerate() {
        let Some(&got) = b.get(i) else {
            return Sniffed::NeedMore;
        };
        if want.is_some_and(|w| w != got) {
            return Sniffed::No;
        }
    }
    Sniffed::Yes("rdp", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An X.224 Connection Request without a cookie, laid out as [MS-RDPBCGR] 2.2.1.1 gives
    /// it: TPKT, CR TPDU, then an RDP_NEG_REQ asking for TLS (protocol 1).
    const REQUEST: &[u8] =
        b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x01\x00\x00\x00";

    #[test]
    fn negotiation_request() {
        assert_eq!(rdp(REQUEST), Sniffed::Yes("rdp", None));
        for cut in 0..14 {
            assert_eq!(rdp(&REQUEST[..cut]), Sniffed::NeedMore);
        }
        let mut other = REQUEST.to_vec();
        other[5] = 0xd0; // a Connection Confirm
        assert_eq!(rdp(&other), Sniffed::No);
        assert_eq!(rdp(b"\x16\x03\x01\x02\x00"), Sniffed::No);
    }
}
