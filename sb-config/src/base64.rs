//! Base64 for every sb crate: config values (WireGuard keys and `reserved`, SSH host keys),
//! HTTP Basic credentials, DoH GET queries and `sb generate`. The codec is the `base64`
//! crate; this module fixes which engine each use gets, so the whole workspace encodes and
//! decodes one way and only sb-config depends on the crate.
//!
//! Two decoders, because the values they read have two strictness levels:
//! - [`decode_go`] is Go's `base64.StdEncoding.DecodeString`: padding required, `\r`/`\n`
//!   skipped anywhere, non-zero trailing bits accepted, and Go's error text with Go's byte
//!   offset (`illegal base64 data at input byte N`), which the parity corpus compares.
//! - [`decode`] is sb's lenient reading for values where sb has always accepted both padded
//!   and unpadded text (any run of trailing `=`), non-zero trailing bits included.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{general_purpose::URL_SAFE_NO_PAD, DecodePaddingMode};
use base64::Engine as _;

/// Go's `StdEncoding` (not `Strict()`): canonical padding, trailing bits ignored.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// What [`decode`] reads once the trailing `=` are gone.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Standard alphabet, with padding (what Go's `StdEncoding.EncodeToString` writes).
pub fn encode(data: impl AsRef<[u8]>) -> String {
    STANDARD.encode(data)
}

/// URL-safe alphabet without padding (RFC 8484's `dns=` parameter).
pub fn encode_url_no_pad(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes as Go's `base64.StdEncoding.DecodeString`, with Go's error text.
pub fn decode_go(text: &str) -> Result<Vec<u8>, String> {
    // Go skips line breaks anywhere in the input; the crate does not.
    let kept: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    GO_STD.decode(kept).map_err(|_| {
        let at = go_error_offset(text.as_bytes()).unwrap_or(text.len());
        format!("illegal base64 data at input byte {at}")
    })
}

/// Decodes padded or unpadded standard base64; `None` on any invalid character or length.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    LENIENT.decode(text.trim_end_matches('=')).ok()
}

/// The offset Go's decoder reports for invalid input (`CorruptInputError`), `None` when Go
/// accepts it. The crate says whether the input is valid; only the offset is Go's own: Go
/// reports a misplaced or missing `=` at quantum boundaries, the crate at the `=` itself.
/// This follows Go's `decodeQuantum` loop position by position without decoding anything.
fn go_error_offset(src: &[u8]) -> Option<usize> {
    let is_digit = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let is_break = |b: u8| b == b'\n' || b == b'\r';
    let skip_breaks = |mut si: usize| {
        while src.get(si).copied().is_some_and(is_break) {
            si += 1;
        }
        si
    };
    let mut si = 0;
    while si < src.len() {
        // One quantum: up to four digits, line breaks not counted.
        let mut j = 0usize;
        while j < 4 {
            let Some(&b) = src.get(si) else {
                // Input ends inside a quantum: Go counts back over the digits read.
                return if j == 0 { None } else { Some(si - j) };
            };
            si += 1;
            if is_digit(b) {
                j += 1;
                continue;
            }
            if is_break(b) {
                continue;
            }
            if b != b'=' || j < 2 {
                return Some(si - 1);
            }
            if j == 2 {
                // "==" is expected: the first `=` is already read.
                si = skip_breaks(si);
                match src.get(si) {
                    None => return Some(src.len()),
                    Some(&b'=') => si += 1,
                    Some(_) => return Some(si - 1),
                }
            }
            si = skip_breaks(si);
            // Anything after the padding is trailing garbage.
            return (si < src.len()).then_some(si);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for data in [&b""[..], b"\x01\x02\x03", b"\0\0\0", b"ab", b"abcd"] {
            assert_eq!(decode(&encode(data)).unwrap(), data);
            assert_eq!(decode_go(&encode(data)).unwrap(), data);
        }
        assert_eq!(encode([1, 2, 3]), "AQID");
        assert_eq!(encode([0, 0, 0]), "AAAA");
        assert_eq!(encode_url_no_pad([0xfb, 0xff]), "-_8");
    }

    #[test]
    fn lenient_accepts_any_padding() {
        assert_eq!(decode("AQ").unwrap(), [1]);
        assert_eq!(decode("AQ==").unwrap(), [1]);
        assert_eq!(decode("AQ=====").unwrap(), [1]);
        assert_eq!(decode("AR").unwrap(), [1], "trailing bits are ignored");
        assert!(decode("!!").is_none());
        assert!(decode("A").is_none());
        assert!(decode("AQ==AQ").is_none());
    }

    /// Outputs of Go 1.27's `base64.StdEncoding.DecodeString`, taken through sing-box
    /// 1.14.4's `check` of a WireGuard `private_key`.
    #[test]
    fn go_offsets() {
        let key = "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4=";
        let cases: &[(String, Option<usize>)] = &[
            ("bad!".into(), Some(3)),
            (key[..43].into(), Some(40)),
            (format!("{key}="), Some(44)),
            (format!("{key}=="), Some(44)),
            (format!("A{key}"), Some(44)),
            ("QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W5=".into(), None),
            ("AAA".into(), Some(0)),
            ("AAAAA".into(), Some(4)),
            ("AA=A".into(), Some(2)),
            ("A===".into(), Some(1)),
            ("AA==AAAA".into(), Some(4)),
            ("AAAA====".into(), Some(4)),
            ("AAA=A".into(), Some(4)),
            (" AAA".into(), Some(0)),
            ("AAA=".into(), None),
            (format!("{}\n{}", &key[..24], &key[24..]), None),
        ];
        for (text, want) in cases {
            let got = decode_go(text);
            match want {
                None => assert!(got.is_ok(), "{text:?}: {got:?}"),
                Some(at) => assert_eq!(
                    got.unwrap_err(),
                    format!("illegal base64 data at input byte {at}"),
                    "{text:?}"
                ),
            }
        }
    }
}
