//! A byte size written as an integer or as a number with a unit (`"1MB"`, `"512 kb"`): Go's
//! `byteformats.MemoryBytes`, used by the HTTP/2 and QUIC receive windows. Units are
//! case-insensitive powers of 1024 (`B`, `K`/`KB` up to `E`/`EB`, spaces around the unit
//! allowed); `format` writes a string back as the number without leading zeros followed by
//! the unit exactly as written, and an integer as an integer.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A byte size and how it was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryBytes {
    /// The size in bytes (saturating at `u64::MAX`).
    pub bytes: u64,
    /// The number and unit as `format` writes them; `None` when written as an integer.
    pub written: Option<(u64, String)>,
}

/// The multiplier of a unit (already trimmed), `None` when Go does not know it.
fn unit(u: &str) -> Option<u64> {
    let power = match u.to_ascii_lowercase().as_str() {
        "b" => 0,
        "k" | "kb" => 1,
        "m" | "mb" => 2,
        "g" | "gb" => 3,
        "t" | "tb" => 4,
        "p" | "pb" => 5,
        "e" | "eb" => 6,
        _ => return None,
    };
    Some(1u64 << (10 * power))
}

impl std::str::FromStr for MemoryBytes {
    type Err = String;

    /// Go's messages: `invalid format: X`, `unsupported unit: U`, and `strconv.ParseUint`'s
    /// range error.
    fn from_str(s: &str) -> Result<MemoryBytes, String> {
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, rest) = s.split_at(digits_end);
        if digits.is_empty() || rest.is_empty() {
            return Err(format!("invalid format: {s}"));
        }
        let n: u64 = digits.parse().map_err(|_| {
            format!("parse {digits}: strconv.ParseUint: parsing \"{digits}\": value out of range")
        })?;
        let name = rest.trim();
        let factor = unit(name).ok_or_else(|| format!("unsupported unit: {rest}"))?;
        Ok(MemoryBytes {
            bytes: n.saturating_mul(factor),
            written: Some((n, rest.to_string())),
        })
    }
}

impl<'de> Deserialize<'de> for MemoryBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MemoryBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a size such as \"1MB\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<MemoryBytes, E> {
                if n > i64::MAX as u64 {
                    return Err(E::custom(format!(
                        "expected a byte count or a size such as \"1MB\", found number {n}"
                    )));
                }
                Ok(MemoryBytes {
                    bytes: n,
                    written: None,
                })
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<MemoryBytes, E> {
                // Go's check lets a negative count through, and its own `format` then fails
                // on it; sb refuses it at once.
                Err(E::custom(format!(
                    "expected a byte count or a size such as \"1MB\", found number {n}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MemoryBytes, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for MemoryBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.written {
            None => s.serialize_u64(self.bytes),
            Some((n, u)) => s.collect_str(&format_args!("{n}{u}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryBytes;

    /// Verdicts and `format` output of sing-box 1.14.4 for `stream_receive_window`.
    #[test]
    fn go_cases() {
        for (text, written) in [
            ("1 MB", "1 MB"),
            ("1mb", "1mb"),
            ("1kb", "1kb"),
            ("1  MB", "1  MB"),
            ("1MB ", "1MB "),
            ("01MB", "1MB"),
            ("007 kb ", "7 kb "),
            ("1 B", "1 B"),
            ("10k", "10k"),
            ("1EB", "1EB"),
            ("18446744073709551615B", "18446744073709551615B"),
        ] {
            let m: MemoryBytes = text.parse().unwrap();
            assert_eq!(serde_json::to_value(&m).unwrap(), written, "{text}");
        }
        assert_eq!("2KB".parse::<MemoryBytes>().unwrap().bytes, 2048);
        for (text, error) in [
            ("1", "invalid format: 1"),
            ("", "invalid format: "),
            (" 1MB", "invalid format:  1MB"),
            ("+1MB", "invalid format: +1MB"),
            ("1KiB", "unsupported unit: KiB"),
            ("1 MiB", "unsupported unit:  MiB"),
            ("1.5MB", "unsupported unit: .5MB"),
            ("1e3", "unsupported unit: e3"),
            (
                "99999999999999999999MB",
                "parse 99999999999999999999: strconv.ParseUint: parsing \"99999999999999999999\": value out of range",
            ),
        ] {
            assert_eq!(text.parse::<MemoryBytes>().unwrap_err(), error, "{text:?}");
        }
        let n: MemoryBytes = serde_json::from_str("1048576").unwrap();
        assert_eq!(serde_json::to_value(&n).unwrap(), 1048576);
        assert!(serde_json::from_str::<MemoryBytes>("-1").is_err());
        assert!(serde_json::from_str::<MemoryBytes>("1.5").is_err());
    }
}
