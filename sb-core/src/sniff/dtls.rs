//! DTLS sniffer: a DTLS record (RFC 6347 §4.1) in a UDP datagram.
//!
//! Like Go: a record header of 13 bytes, a content type of change_cipher_spec, alert,
//! handshake, application_data or tls12_cid (20 to 23, 25), and version DTLS 1.0 (0xfeff) or 1.2 (0xfefd), the
//! legacy version DTLS 1.3 keeps too. sb also wants the record's length to fit the datagram.

use super::reader::Reader;
use super::Sniffed;

/// DTLS: a plaintext record header.
pub fn dtls(p: &[u8]) -> Sniffed {
    let mut r = Reader(p);
    let (Some(content_type), Some(major), Some(minor)) = (r.u8(), r.u8(), r.u8()) else {
        return Sniffed::No;
    };
    // epoch (2) and sequence number (6), then the length.
    let (Some(_), Some(len)) = (r.skip(8), r.u16()) else {
        return Sniffed::No;
    };
    let ok = matches!(content_type, 20 | 21 | 22 | 23 | 25)
        && major == 0xfe
        && matches!(minor, 0xff | 0xfd)
        && usize::from(len) <= r.len();
    if ok {
        Sniffed::Yes("dtls", None)
    } else {
        Sniffed::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::tests::hex;

    #[test]
    fn openssl_client_hello() {
        // `openssl s_client -dtls1_2` (OpenSSL 3.0), caught on a local UDP socket.
        let hello = hex(include_str!("testdata/dtls12_client_hello.hex"));
        assert_eq!(dtls(&hello), Sniffed::Yes("dtls", None));
        for cut in 0..13 {
            assert_eq!(dtls(&hello[..cut]), Sniffed::No);
        }
        // The record says more bytes than the datagram has.
        assert_eq!(dtls(&hello[..hello.len() - 1]), Sniffed::No);
        let mut tls = hello.clone();
        tls[1] = 3;
        assert_eq!(dtls(&tls), Sniffed::No);
    }
}
