//! Seals QUIC client Initial packets (RFC 9001 §5, RFC 9369 §3.3) around frames the fuzzer
//! chose, so the QUIC sniffer's frame parser, CRYPTO reassembly and ClientHello parser are
//! reached: packets of random bytes never get past the AEAD. The keys are the public Initial
//! keys anyone derives from the Destination Connection ID.

use ring::aead::quic::{HeaderProtectionKey, AES_128};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ring::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};

/// A QUIC version the sniffer opens.
#[derive(Clone, Copy, Debug)]
pub enum Version {
    /// draft-ietf-quic-transport-29.
    Draft29,
    /// RFC 9000.
    V1,
    /// RFC 9369.
    V2,
}

impl Version {
    /// One of the three, by `n`.
    pub fn pick(n: u8) -> Version {
        match n % 3 {
            0 => Version::V1,
            1 => Version::V2,
            _ => Version::Draft29,
        }
    }

    fn wire(self) -> u32 {
        match self {
            Version::Draft29 => 0xff00_001d,
            Version::V1 => 1,
            Version::V2 => 0x6b33_43cf,
        }
    }

    fn initial_type(self) -> u8 {
        match self {
            Version::V2 => 1,
            Version::Draft29 | Version::V1 => 0,
        }
    }

    fn salt(self) -> [u8; 20] {
        match self {
            Version::Draft29 => [
                0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61,
                0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99,
            ],
            Version::V1 => [
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            Version::V2 => [
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
        }
    }

    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Version::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
            Version::Draft29 | Version::V1 => [b"quic key", b"quic iv", b"quic hp"],
        }
    }
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, into `out`.
fn expand_label(secret: &Prk, label: &[u8], out: &mut [u8]) {
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    secret
        .expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF-Expand-Label of a fixed small length");
}

/// The client Initial key, IV and header-protection key for `dcid`.
fn client_keys(version: Version, dcid: &[u8]) -> ([u8; 16], [u8; 12], [u8; 16]) {
    let initial = Salt::new(HKDF_SHA256, &version.salt()).extract(dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client);
    let client = Prk::new_less_safe(HKDF_SHA256, &client);
    let [key_label, iv_label, hp_label] = version.labels();
    let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&client, key_label, &mut key);
    expand_label(&client, iv_label, &mut iv);
    expand_label(&client, hp_label, &mut hp);
    (key, iv, hp)
}

/// A client Initial packet carrying `frames` (padded with PADDING frames to the minimum a
/// packet needs for its header-protection sample), its header naming `dcid` while it is
/// protected with the keys of `key_dcid`; a 4-byte packet number, no Source Connection ID,
/// no token.
pub fn seal(version: Version, key_dcid: &[u8], dcid: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
    let (key, iv, hp) = client_keys(version, key_dcid);
    let mut payload = frames.to_vec();
    if payload.len() < 16 {
        payload.resize(16, 0);
    }
    let mut packet = vec![0xc0 | version.initial_type() << 4 | 0x03];
    packet.extend_from_slice(&version.wire().to_be_bytes());
    packet.push(dcid.len() as u8);
    packet.extend_from_slice(dcid);
    packet.extend_from_slice(&[0, 0]); // Source Connection ID, Token
    let len = 4 + payload.len() + 16;
    // A 4-byte varint holds any length a fuzz input can have.
    packet.extend_from_slice(&(0x8000_0000 | len as u32).to_be_bytes());
    let pn_offset = packet.len();
    packet.extend_from_slice(&pn.to_be_bytes());

    let aead = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).expect("AES-128 key"));
    let mut nonce = iv;
    for (n, p) in nonce[4..].iter_mut().zip(u64::from(pn).to_be_bytes()) {
        *n ^= p;
    }
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&packet),
        &mut payload,
    )
    .expect("sealing a packet");
    packet.extend_from_slice(&payload);

    let hp = HeaderProtectionKey::new(&AES_128, &hp).expect("AES-128 header key");
    let mask = hp
        .new_mask(&packet[pn_offset + 4..pn_offset + 20])
        .expect("a 16-byte sample");
    packet[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        packet[pn_offset + i] ^= mask[1 + i];
    }
    packet
}
