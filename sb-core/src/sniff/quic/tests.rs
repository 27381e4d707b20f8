//! QUIC sniffer tests: the client Initial packets of RFC 9001 and RFC 9369, and ClientHellos
//! split over packets and frames, sealed by a test-only sealer that is first shown to
//! reproduce the RFCs' packets byte for byte.

use ring::aead::quic::{HeaderProtectionKey, AES_128};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};

use super::keys::Material;
use super::*;
use crate::sniff::tests::hex;
use crate::sniff::{sniff_packets, Sniffed};

/// The Destination Connection ID of the RFC examples.
const RFC_DCID: &[u8] = &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

/// The frames of the RFC examples' client Initial (RFC 9001 §A.2, reused by RFC 9369 §A.2):
/// one CRYPTO frame holding a ClientHello for `example.com`, then PADDING to 1162 bytes.
fn rfc_frames() -> Vec<u8> {
    let mut frames = hex(concat!(
        "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868",
        "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578",
        "616d706c652e636f6dff01000100000a00080006001d00170018001000070005",
        "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba",
        "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400",
        "0d0010000e0403050306030203080408050806002d00020101001c0002400100",
        "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000",
        "75300901100f088394c8f03e51570806048000ffff",
    ));
    frames.resize(1162, 0);
    frames
}

fn rfc9001_packet() -> Vec<u8> {
    hex(include_str!("../testdata/rfc9001_a2_client_initial.hex"))
}

fn rfc9369_packet() -> Vec<u8> {
    hex(include_str!("../testdata/rfc9369_a2_client_initial.hex"))
}

fn wire(version: Version) -> u32 {
    match version {
        Version::Draft29 => 0xff00_001d,
        Version::V1 => 1,
        Version::V2 => 0x6b33_43cf,
    }
}

/// A client Initial packet carrying `frames`, protected with the keys of `key_dcid` while its
/// header names `dcid`: a 4-byte packet number, no Source Connection ID, no token.
fn seal(version: Version, key_dcid: &[u8], dcid: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
    let m = Material::client(version, key_dcid).unwrap();
    let mut packet = vec![0xc0 | version.initial_type() << 4 | 0x03];
    packet.extend_from_slice(&wire(version).to_be_bytes());
    packet.push(dcid.len() as u8);
    packet.extend_from_slice(dcid);
    packet.extend_from_slice(&[0, 0]); // Source Connection ID, Token
    let len = 4 + frames.len() + 16;
    packet.extend_from_slice(&(0x4000 | len as u16).to_be_bytes());
    let pn_offset = packet.len();
    packet.extend_from_slice(&pn.to_be_bytes());

    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &m.key).unwrap());
    let mut nonce = m.iv;
    for (n, p) in nonce[4..].iter_mut().zip(u64::from(pn).to_be_bytes()) {
        *n ^= p;
    }
    let mut payload = frames.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&packet),
        &mut payload,
    )
    .unwrap();
    packet.extend_from_slice(&payload);

    let hp = HeaderProtectionKey::new(&AES_128, &m.hp).unwrap();
    let mask = hp.new_mask(&packet[pn_offset + 4..pn_offset + 20]).unwrap();
    packet[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        packet[pn_offset + i] ^= mask[1 + i];
    }
    packet
}

fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
    // 2-byte varints for offset and length are enough for these tests.
    let mut f = vec![0x06];
    f.extend_from_slice(&(0x4000 | offset as u16).to_be_bytes());
    f.extend_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// The ClientHello message (without its TLS record header) that curl sent for
/// `www.example.com`; see `sni_of_curl` in the TLS sniffer's tests.
fn curl_hello() -> Vec<u8> {
    hex(include_str!("../testdata/curl_tls_client_hello.hex")).split_off(5)
}

/// Two Initial packets carrying `hello` in three CRYPTO frames, out of order: the first packet
/// has the tail, then padding, then the head; the second a PING and the middle.
fn split_hello(hello: &[u8], dcid: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (head, rest) = hello.split_at(100);
    let (middle, tail) = rest.split_at(200);
    let mut a = crypto_frame(300, tail);
    a.extend_from_slice(&[0; 40]);
    a.extend_from_slice(&crypto_frame(0, head));
    a.resize(1150, 0);
    let mut b = vec![0x01];
    b.extend_from_slice(&crypto_frame(100, middle));
    b.resize(1150, 0);
    (
        seal(Version::V1, dcid, dcid, 0, &a),
        seal(Version::V1, dcid, dcid, 1, &b),
    )
}

fn example_com() -> Sniffed {
    Sniffed::Yes("quic", Some("example.com".into()))
}

fn www_example_com() -> Sniffed {
    Sniffed::Yes("quic", Some("www.example.com".into()))
}

#[test]
fn initial_keys_match_the_rfcs() {
    // RFC 9001 §A.1.
    assert_eq!(
        Material::client(Version::V1, RFC_DCID).unwrap(),
        Material {
            key: hex("1f369613dd76d5467730efcbe3b1a22d").try_into().unwrap(),
            iv: hex("fa044b2f42a3fd3b46fb255c").try_into().unwrap(),
            hp: hex("9f50449e04a0e810283a1e9933adedd2").try_into().unwrap(),
        }
    );
    // RFC 9369 §A.1.
    assert_eq!(
        Material::client(Version::V2, RFC_DCID).unwrap(),
        Material {
            key: hex("8b1a0bc121284290a29e0971b5cd045d").try_into().unwrap(),
            iv: hex("91f73e2351d8fa91660e909f").try_into().unwrap(),
            hp: hex("45b95e15235d6f45a6b19cbcb0294ba9").try_into().unwrap(),
        }
    );
}

#[test]
fn rfc_packets_open_to_their_frames() {
    for (version, packet) in [
        (Version::V1, rfc9001_packet()),
        (Version::V2, rfc9369_packet()),
    ] {
        let keys = InitialKeys::client(version, RFC_DCID).unwrap();
        // The Packet Number field follows 18 header bytes.
        assert_eq!(keys.open(&packet, 18).unwrap(), rfc_frames(), "{version:?}");
    }
}

#[test]
fn sealer_reproduces_the_rfc_packets() {
    // Packet number 2, as in both RFCs.
    let frames = rfc_frames();
    assert_eq!(
        seal(Version::V1, RFC_DCID, RFC_DCID, 2, &frames),
        rfc9001_packet()
    );
    assert_eq!(
        seal(Version::V2, RFC_DCID, RFC_DCID, 2, &frames),
        rfc9369_packet()
    );
}

#[test]
fn sni_of_the_rfc_packets() {
    assert_eq!(quic(&[&rfc9001_packet()]), example_com());
    assert_eq!(quic(&[&rfc9369_packet()]), example_com());
    assert_eq!(sniff_packets(&[&rfc9001_packet()], &[]), example_com());
    assert_eq!(
        sniff_packets(&[&rfc9369_packet()], &["quic"]),
        example_com()
    );
    assert_eq!(
        sniff_packets(&[&rfc9001_packet()], &["dns", "stun"]),
        Sniffed::No
    );
    // draft-29 uses v1's packet layout with its own salt.
    let draft = seal(Version::Draft29, RFC_DCID, RFC_DCID, 0, &rfc_frames());
    assert_eq!(quic(&[&draft]), example_com());
}

#[test]
fn hello_split_over_packets_and_frames() {
    let hello = curl_hello();
    let (a, b) = split_hello(&hello, b"\x01\x02\x03\x04\x05\x06\x07\x08");
    assert_eq!(quic(&[&a]), Sniffed::NeedMore);
    assert_eq!(quic(&[&a, &b]), www_example_com());
    // The second packet arriving first.
    assert_eq!(quic(&[&b]), Sniffed::NeedMore);
    assert_eq!(quic(&[&b, &a]), www_example_com());
    // Both packets coalesced into one datagram.
    let both = [a.clone(), b.clone()].concat();
    assert_eq!(quic(&[&both]), www_example_com());
    // A datagram that is not an Initial in between is skipped.
    let short_header = b"\x40\x01\x02\x03\x04\x05\x06\x07\x08\x09";
    assert_eq!(quic(&[&a, short_header, &b]), www_example_com());
    assert_eq!(quic(&[&a, short_header]), Sniffed::NeedMore);
    // Through the dispatcher.
    assert_eq!(sniff_packets(&[&a], &[]), Sniffed::NeedMore);
    assert_eq!(sniff_packets(&[&a, &b], &[]), www_example_com());
    assert_eq!(sniff_packets(&[&a, &b], &["stun"]), Sniffed::No);
}

#[test]
fn later_packets_with_a_new_connection_id() {
    let hello = curl_hello();
    let (first, second) = hello.split_at(300);
    let original = b"\x11\x12\x13\x14\x15\x16\x17\x18";
    let chosen = b"\x21\x22\x23\x24";
    let a = seal(Version::V1, original, original, 0, &crypto_frame(0, first));
    // After the server picked its connection ID the client keeps the original keys ...
    let b = seal(Version::V1, original, chosen, 1, &crypto_frame(300, second));
    assert_eq!(quic(&[&a, &b]), www_example_com());
    // ... and after a Retry it uses keys of the new ID.
    let b = seal(Version::V1, chosen, chosen, 1, &crypto_frame(300, second));
    assert_eq!(quic(&[&a, &b]), www_example_com());
    // Keys of neither: the packet does not open.
    let b = seal(
        Version::V1,
        b"\x31\x32\x33\x34",
        chosen,
        1,
        &crypto_frame(300, second),
    );
    assert_eq!(quic(&[&a, &b]), Sniffed::NeedMore);
}

#[test]
fn crypto_stream_that_is_not_a_client_hello() {
    // A ServerHello (handshake type 2) in the CRYPTO stream.
    let mut frames = rfc_frames();
    frames[4] = 2;
    let packet = seal(Version::V1, RFC_DCID, RFC_DCID, 0, &frames);
    assert_eq!(quic(&[&packet]), Sniffed::No);
    // Only PADDING and PING: the ClientHello is still to come.
    let mut frames = vec![0x01];
    frames.resize(1162, 0);
    let packet = seal(Version::V1, RFC_DCID, RFC_DCID, 0, &frames);
    assert_eq!(quic(&[&packet]), Sniffed::NeedMore);
    // A STREAM frame, which an Initial may not carry.
    let mut frames = vec![0x08, 0x00, 0x00];
    frames.resize(1162, 0);
    let packet = seal(Version::V1, RFC_DCID, RFC_DCID, 0, &frames);
    assert_eq!(quic(&[&packet]), Sniffed::No);
}

#[test]
fn truncated_or_damaged_packets_are_not_quic() {
    let packet = rfc9001_packet();
    for cut in 0..packet.len() {
        assert_eq!(quic(&[&packet[..cut]]), Sniffed::No, "cut at {cut}");
    }
    // One bit flipped in each byte: the header no longer parses, names another packet type
    // or version, derives other keys, or the payload fails authentication.
    for i in 0..packet.len() {
        let mut damaged = packet.clone();
        damaged[i] ^= 1 << (i % 8);
        assert_eq!(quic(&[&damaged]), Sniffed::No, "bit {} of byte {i}", i % 8);
    }
}

#[test]
fn other_datagrams_are_not_quic() {
    assert_eq!(quic(&[]), Sniffed::NeedMore);
    assert_eq!(quic(&[b""]), Sniffed::No);
    // A Version Negotiation packet and an unknown (greased) version.
    let mut vn = rfc9001_packet();
    vn[1..5].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(quic(&[&vn]), Sniffed::No);
    let mut grease = rfc9001_packet();
    grease[1..5].copy_from_slice(&[0x0a, 0x1a, 0x2a, 0x3a]);
    assert_eq!(quic(&[&grease]), Sniffed::No);
    // A 0-RTT packet (type 1 in v1) first.
    let mut zero_rtt = rfc9001_packet();
    zero_rtt[0] = 0xd0 | (zero_rtt[0] & 0x0f);
    assert_eq!(quic(&[&zero_rtt]), Sniffed::No);
    assert_eq!(
        quic(&[&hex("000100002112a442b7e7a701bc34d686fa87dfae")]),
        Sniffed::No
    );
}

/// Hardening finding 11: a datagram may hold hundreds of coalesced Initial packets, and the
/// sniffer opens the flow's datagrams again at each new one, so the packets it tries to open
/// are bounded (a real ClientHello takes one to three); past the bound it has seen no
/// ClientHello.
#[test]
fn initial_packets_opened_per_flow_are_bounded() {
    let hello = curl_hello();
    let dcid = b"\x01\x02\x03\x04\x05\x06\x07\x08";
    let pieces = MAX_OPENED + 4;
    let step = hello.len().div_ceil(pieces);
    let datagram: Vec<u8> = hello
        .chunks(step)
        .enumerate()
        .flat_map(|(i, piece)| {
            let mut frames = crypto_frame(i * step, piece);
            frames.resize(frames.len().max(40), 0);
            seal(Version::V1, dcid, dcid, i as u32, &frames)
        })
        .collect();
    assert_eq!(quic(&[&datagram]), Sniffed::NeedMore);
    // The same hello in few packets is found.
    let few: Vec<u8> = hello
        .chunks(hello.len().div_ceil(3))
        .enumerate()
        .flat_map(|(i, piece)| {
            let mut frames = crypto_frame(i * hello.len().div_ceil(3), piece);
            frames.resize(frames.len().max(40), 0);
            seal(Version::V1, dcid, dcid, i as u32, &frames)
        })
        .collect();
    assert_eq!(quic(&[&few]), www_example_com());
}
