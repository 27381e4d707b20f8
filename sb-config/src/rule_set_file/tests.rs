//! Rule-set files: source errors with positions, Go-compiled binaries decoded to the same
//! rules as their source, and corrupt binaries refused without panicking.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::model::rule_set::HeadlessRule;
use std::io::Write;

const MIXED_JSON: &str = include_str!("../../../tests/parity/data/rule-set/mixed.json");
const MIXED_SRS: &[u8] = include_bytes!("../../../tests/parity/data/rule-set/mixed.srs");
const LEGACY_JSON: &str = include_str!("../../../tests/parity/data/rule-set/legacy-v1.json");
const LEGACY_SRS: &[u8] = include_bytes!("../../../tests/parity/data/rule-set/legacy-v1.srs");

/// Rules compared as sets of values: the binary sorts lists and writes CIDRs as prefixes.
fn normal(rules: &[HeadlessRule]) -> Vec<serde_json::Value> {
    fn norm(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Array(a) => {
                a.iter_mut().for_each(norm);
                if a.iter().all(|x| !x.is_object()) {
                    a.sort_by_key(|x| x.to_string());
                }
            }
            serde_json::Value::Object(m) => m.values_mut().for_each(norm),
            // A bare address in ip_cidr is written back as a /32 prefix by Go.
            serde_json::Value::String(s)
                if !s.contains('/') && s.parse::<std::net::Ipv4Addr>().is_ok() =>
            {
                *s = format!("{s}/32");
            }
            _ => {}
        }
    }
    rules
        .iter()
        .map(|r| {
            let mut v = serde_json::Value::Object(r.to_json());
            crate::format::prune(&mut v);
            norm(&mut v);
            v
        })
        .collect()
}

#[test]
fn go_binary_decodes_to_the_source_rules() {
    let from_source = parse(MIXED_JSON, "mixed.json").unwrap();
    let from_binary = srs::decode(MIXED_SRS, "mixed.srs").unwrap();
    assert_eq!(from_source.len(), 3);
    assert_eq!(normal(&from_binary), normal(&from_source));
}

#[test]
fn version_1_suffixes_fold_back() {
    let from_source = parse(LEGACY_JSON, "legacy-v1.json").unwrap();
    let from_binary = srs::decode(LEGACY_SRS, "legacy-v1.srs").unwrap();
    assert_eq!(normal(&from_binary), normal(&from_source));
}

#[test]
fn source_errors_are_located() {
    let e = parse(
        "{\"version\": 3,\n \"rules\": [{\"domainx\": \"a\"}]}",
        "f.json",
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("f.json:2:13: rules[0].domainx: unknown field \"domainx\""),
        "{text}"
    );
    assert!(text.contains("did you mean \"domain\""), "{text}");
    let e = parse("{\"rules\": []}", "f.json").unwrap_err();
    assert_eq!(e.to_string(), "f.json: missing rule-set version");
    let e = parse("{\"version\": 6, \"rules\": []}", "f.json").unwrap_err();
    assert_eq!(
        e.to_string(),
        "f.json:1:13: version: unknown rule-set version: 6 (sb reads 1 to 5)"
    );
    let e = parse("{\"version\": 5, \"rules\": [}", "f.json").unwrap_err();
    assert!(e.to_string().starts_with("f.json:1:"), "{e}");
    assert!(parse("{\"version\": 5, \"rules\": []}", "f.json")
        .unwrap()
        .is_empty());
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn srs_file(version: u8, body: &[u8]) -> Vec<u8> {
    let mut f = b"SRS".to_vec();
    f.push(version);
    f.extend(zlib(body));
    f
}

#[test]
fn corrupt_binaries_are_errors_naming_the_file() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"SR".to_vec(), "file too short"),
        (b"XYZ\x01".to_vec(), "no SRS magic"),
        (srs_file(6, &[0]), "unsupported version: 6"),
        (b"SRS\x02not zlib".to_vec(), "zlib"),
        // One rule of unknown type.
        (srs_file(2, &[1, 7]), "rule[0]: unknown rule type: 7"),
        // A count far beyond the data.
        (srs_file(2, &[0xff, 0xff, 0x7f]), "exceeds the data left"),
        // A default rule with an unknown item, and one cut short.
        (srs_file(2, &[1, 0, 0x40]), "unknown rule item type"),
        (
            srs_file(2, &[1, 0, 3, 1, 1, b'a']),
            "unexpected end of data",
        ),
        // An IP set claiming 2^63 ranges.
        (
            srs_file(2, &[1, 0, 6, 1, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            "exceeds the data left",
        ),
        // An IP range mixing families.
        (
            srs_file(
                2,
                &[
                    1, 0, 6, 1, 0, 0, 0, 0, 0, 0, 0, 1, 4, 1, 2, 3, 4, 16, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0, 1,
                ],
            ),
            "bad IP range",
        ),
        // A domain trie whose bitmap has more edges than labels.
        (
            srs_file(2, &[1, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'a']),
            "more edges than labels",
        ),
    ];
    for (bytes, want) in cases {
        let e = srs::decode(&bytes, "bad.srs").unwrap_err().to_string();
        assert!(
            e.starts_with("bad.srs: binary rule-set: ") && e.contains(want),
            "{e} (wanted {want})"
        );
    }
}

#[test]
fn logical_nesting_is_bounded() {
    let mut body = vec![1];
    for _ in 0..100 {
        body.extend([1, 0, 1]);
    }
    let e = srs::decode(&srs_file(2, &body), "deep.srs").unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
}

#[test]
fn zlib_bombs_stop_at_the_limit() {
    let big = vec![0u8; (srs::MAX_INFLATED + 10) as usize];
    let e = srs::decode(&srs_file(2, &big), "bomb.srs").unwrap_err();
    assert!(e.to_string().contains("inflates to more than"), "{e}");
}

#[test]
fn truncations_and_bit_flips_of_a_real_file_never_panic() {
    for cut in 0..MIXED_SRS.len() {
        let _ = srs::decode(&MIXED_SRS[..cut], "cut.srs");
    }
    // Flip bits inside the inflated stream, then re-compress, so the decoder sees them.
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::ZlibDecoder::new(&MIXED_SRS[4..]),
        &mut inflated,
    )
    .unwrap();
    for i in 0..inflated.len() {
        for bit in [0x01, 0x10, 0x80] {
            let mut m = inflated.clone();
            m[i] ^= bit;
            let _ = srs::decode(&srs_file(2, &m), "flip.srs");
        }
    }
}
