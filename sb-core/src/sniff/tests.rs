//! Tests across the sniffers: the dispatch order and the enabled-names filter, shared sample
//! bytes, and property tests that no sniffer panics on random or damaged input.

use proptest::prelude::*;

use super::*;

/// Bytes from hex digits; whitespace (line breaks in the sample files) is ignored.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// RFC 5769 §2.1: the sample STUN request.
pub(crate) const STUN_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";

/// `ntpdate -q` (NTPsec 1.2) caught on a local UDP socket.
pub(crate) const NTPDATE: &str = "e3000000000000000000000000000000000000000000000000000000000000000000000000000000eeaccfa2a4059000";

/// `dig @127.0.0.1 Example.COM A` caught on a local UDP socket.
pub(crate) const DIG: &str = "6b6c01200001000000000001074578616d706c6503434f4d000001000100002904d000000000000c000a0008f26c3fcd5506ba9a";

/// A minimal TLS ClientHello record for `sni`: TLS 1.2 legacy version, one cipher suite, no
/// compression, and the `server_name` extension only.
pub(crate) fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sni_ext = vec![0, 0];
    let list_len = 3 + name.len();
    sni_ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
    sni_ext.extend_from_slice(&(list_len as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&sni_ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// The captured and RFC samples, for the property tests.
fn samples() -> Vec<Vec<u8>> {
    vec![
        hex(include_str!("testdata/rfc9001_a2_client_initial.hex")),
        hex(include_str!("testdata/rfc9369_a2_client_initial.hex")),
        hex(include_str!("testdata/curl_tls_client_hello.hex")),
        hex(include_str!("testdata/dtls12_client_hello.hex")),
        hex(STUN_REQUEST),
        hex(NTPDATE),
        hex(DIG),
        client_hello("example.com"),
        b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".to_vec(),
        b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
    ]
}

#[test]
fn stream_dispatch() {
    assert_eq!(sniff(b"SSH-2.0-x", &["tls"]), Sniffed::No);
    assert_eq!(sniff(b"SSH-2.0-x", &[]), Sniffed::Yes("ssh", None));
    assert_eq!(
        sniff(&client_hello("a.test"), &[]),
        Sniffed::Yes("tls", Some("a.test".into()))
    );
    // DNS over TCP, with its length prefix.
    let query = hex(DIG);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    assert_eq!(sniff(&framed, &[]), Sniffed::Yes("dns", None));
    assert_eq!(sniff(&framed, &["tls", "http"]), Sniffed::No);
    // Half a DNS message: the DNS sniffer waits for the rest.
    assert_eq!(sniff(&framed[..20], &[]), Sniffed::NeedMore);
    assert_eq!(
        sniff(
            b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x01\x00\x00\x00",
            &[]
        ),
        Sniffed::Yes("rdp", None)
    );
    // Nothing yet: every sniffer needs more.
    assert_eq!(sniff(b"", &[]), Sniffed::NeedMore);
    // A server-first protocol's silence is handled by the caller's timeout; a client that
    // speaks something else is turned down at once.
    assert_eq!(sniff(b"\x00\x00\x00\x00garbage", &[]), Sniffed::No);
}

#[test]
fn packet_dispatch() {
    assert_eq!(sniff_packets(&[], &[]), Sniffed::NeedMore);
    assert_eq!(sniff_packets(&[&hex(DIG)], &[]), Sniffed::Yes("dns", None));
    assert_eq!(sniff_packets(&[&hex(DIG)], &["quic", "ntp"]), Sniffed::No);
    assert_eq!(
        sniff_packets(&[&hex(STUN_REQUEST)], &[]),
        Sniffed::Yes("stun", None)
    );
    assert_eq!(
        sniff_packets(&[&hex(NTPDATE)], &[]),
        Sniffed::Yes("ntp", None)
    );
    assert_eq!(sniff_packets(&[&hex(NTPDATE)], &["dns"]), Sniffed::No);
    let dtls = hex(include_str!("testdata/dtls12_client_hello.hex"));
    assert_eq!(sniff_packets(&[&dtls], &[]), Sniffed::Yes("dtls", None));
    let mut tracker = 0x0417_2710_1980_u64.to_be_bytes().to_vec();
    tracker.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4]);
    assert_eq!(
        sniff_packets(&[&tracker], &["bittorrent"]),
        Sniffed::Yes("bittorrent", None)
    );
    // Only the first datagram counts for protocols other than QUIC.
    assert_eq!(
        sniff_packets(&[b"\x00\x00\x00", &hex(STUN_REQUEST)], &[]),
        Sniffed::No
    );
    assert_eq!(sniff_packets(&[b"random bytes"], &[]), Sniffed::No);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = sniff(&bytes, &[]);
        let _ = sniff_packets(&[&bytes], &[]);
        let _ = sniff_packets(&[&bytes, &bytes], &[]);
    }

    #[test]
    fn damaged_samples_never_panic(
        which in 0usize..10,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let samples = samples();
        let mut bytes = samples[which % samples.len()].clone();
        for (at, xor) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = sniff(&bytes, &[]);
        let _ = sniff_packets(&[&bytes], &[]);
        // A damaged datagram after a good QUIC Initial, and before one.
        let initial = &samples[0];
        let _ = sniff_packets(&[initial, &bytes], &[]);
        let _ = sniff_packets(&[&bytes, initial], &[]);
    }
}
