//! QUIC Initial packet protection (RFC 9001 §5, RFC 9369 §3.3): the client's Initial keys,
//! which anyone can derive from the Destination Connection ID, and opening a packet with them.
//! This is what lets a middlebox read the ClientHello of a QUIC connection.

use ring::aead::{self, quic::HeaderProtectionKey, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{self, KeyType, Prk, Salt, HKDF_SHA256};

/// The QUIC versions whose Initial packets the sniffer can open (Go sniffs the same three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Version {
    /// draft-ietf-quic-transport-29, still sent by some older clients.
    Draft29,
    /// RFC 9000.
    V1,
    /// RFC 9369.
    V2,
}

impl Version {
    pub(super) fn from_wire(v: u32) -> Option<Self> {
        match v {
            0xff00_001d => Some(Self::Draft29),
            0x0000_0001 => Some(Self::V1),
            0x6b33_43cf => Some(Self::V2),
            _ => None,
        }
    }

    /// The long-header packet type bits of an Initial packet (v2 renumbered them).
    pub(super) fn initial_type(self) -> u8 {
        match self {
            Self::V2 => 1,
            Self::Draft29 | Self::V1 => 0,
        }
    }

    /// The type bits of a Retry packet, which has no Length field.
    pub(super) fn retry_type(self) -> u8 {
        match self {
            Self::V2 => 0,
            Self::Draft29 | Self::V1 => 3,
        }
    }

    fn salt(self) -> &'static [u8] {
        match self {
            Self::Draft29 => &[
                0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61,
                0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99,
            ],
            Self::V1 => &[
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            Self::V2 => &[
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
        }
    }

    /// The labels of the packet key, IV and header-protection key.
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Self::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
            Self::Draft29 | Self::V1 => [b"quic key", b"quic iv", b"quic hp"],
        }
    }
}

/// The raw client Initial key material, kept apart so tests can compare it with the RFCs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Material {
    pub(super) key: [u8; 16],
    pub(super) iv: [u8; 12],
    pub(super) hp: [u8; 16],
}

impl Material {
    /// The client's Initial keys for a connection whose first Initial packet carried `dcid`.
    pub(super) fn client(version: Version, dcid: &[u8]) -> Option<Self> {
        let initial = Salt::new(HKDF_SHA256, version.salt()).extract(dcid);
        let client: Prk = expand(&initial, b"client in", HKDF_SHA256, |okm| Some(okm.into()))?;
        let [key_label, iv_label, hp_label] = version.labels();
        let mut m = Self {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        expand(&client, key_label, Len(16), |okm| okm.fill(&mut m.key).ok())?;
        expand(&client, iv_label, Len(12), |okm| okm.fill(&mut m.iv).ok())?;
        expand(&client, hp_label, Len(16), |okm| okm.fill(&mut m.hp).ok())?;
        Some(m)
    }
}

/// An output length for HKDF-Expand.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) with an empty context; `use_okm` turns the
/// output into what the caller needs while the label bytes it borrows are alive.
fn expand<L: KeyType, T>(
    secret: &Prk,
    label: &[u8],
    len: L,
    use_okm: impl FnOnce(hkdf::Okm<'_, L>) -> Option<T>,
) -> Option<T> {
    let out_len = u16::try_from(len.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(b"tls13 ".len() + label.len()).ok()?];
    let info: [&[u8]; 5] = [&out_len, &label_len, b"tls13 ", label, &[0]];
    use_okm(secret.expand(&info, len).ok()?)
}

/// Keys ready to open a client's Initial packets.
pub(super) struct InitialKeys {
    packet: LessSafeKey,
    iv: [u8; 12],
    header: HeaderProtectionKey,
}

impl InitialKeys {
    pub(super) fn client(version: Version, dcid: &[u8]) -> Option<Self> {
        let m = Material::client(version, dcid)?;
        Some(Self {
            packet: LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &m.key).ok()?),
            iv: m.iv,
            header: HeaderProtectionKey::new(&aead::quic::AES_128, &m.hp).ok()?,
        })
    }

    /// Removes header protection from one long-header packet (`packet` is exactly the packet,
    /// its Packet Number field at `pn_offset`) and decrypts it: the plaintext frames, or `None`
    /// when the packet is too short or fails authentication.
    pub(super) fn open(&self, packet: &[u8], pn_offset: usize) -> Option<Vec<u8>> {
        // The sample starts 4 bytes past the start of the Packet Number field (RFC 9001 §5.4.2).
        let sample = packet.get(pn_offset.checked_add(4)?..pn_offset.checked_add(20)?)?;
        let mask = self.header.new_mask(sample).ok()?;
        let (&first, _) = packet.split_first()?;
        // A long header protects the low 4 bits of the first byte.
        let first = first ^ (mask[0] & 0x0f);
        let pn_len = usize::from(first & 0x03) + 1;
        let pn_end = pn_offset + pn_len;
        let mut header = packet.get(..pn_end)?.to_vec();
        let mut pn = 0u64;
        for (byte, m) in header.get_mut(pn_offset..)?.iter_mut().zip(&mask[1..]) {
            *byte ^= m;
            pn = pn << 8 | u64::from(*byte);
        }
        *header.first_mut()? = first;
        // The packet number is truncated on the wire; a client's first Initials are numbered
        // from 0, so the truncated value is the full one.
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        let mut payload = packet.get(pn_end..)?.to_vec();
        let plain_len = self
            .packet
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header),
                &mut payload,
            )
            .ok()?
            .len();
        payload.truncate(plain_len);
        Some(payload)
    }
}
