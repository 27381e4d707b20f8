//! No config input panics sb-config. Two property tests, sized for CI by default; a longer
//! run is `PROPTEST_CASES=200000 cargo test -p sb-tests --release --test no_panic`:
//!
//! - random JSON built from sing-box's own vocabulary (keys, type names, durations, CIDRs,
//!   tags), so decoding goes deep into the typed models instead of stopping at the first key;
//! - random byte edits of the parity corpus, which exercises the JSONC reader and every
//!   error path near a valid config.
//!
//! For every accepted input, `format` must give a config that is accepted again.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Map, Value};

const KEYS: &[&str] = &[
    "log",
    "level",
    "dns",
    "servers",
    "rules",
    "final",
    "strategy",
    "inbounds",
    "outbounds",
    "endpoints",
    "route",
    "rule_set",
    "experimental",
    "clash_api",
    "cache_file",
    "type",
    "tag",
    "listen",
    "listen_port",
    "udp_timeout",
    "users",
    "username",
    "password",
    "server",
    "server_port",
    "detour",
    "domain_resolver",
    "routing_mark",
    "connect_timeout",
    "network",
    "outbound",
    "action",
    "method",
    "no_drop",
    "domain",
    "domain_suffix",
    "ip_cidr",
    "port",
    "port_range",
    "invert",
    "mode",
    "inbound",
    "address",
    "mtu",
    "stack",
    "auto_route",
    "private_key",
    "peers",
    "allowed_ips",
    "reserved",
    "public_key",
    "udp_over_tcp",
    "version",
    "enabled",
    "timeout",
    "sniffer",
    "query_type",
    "answer",
    "rcode",
    "rewrite_ttl",
    "optimistic",
    "inet4_range",
    "predefined",
    "path",
    "format",
    "url",
    "interval",
    "idle_timeout",
    "default",
    "headers",
    "tls",
    "host_key",
    "default_domain_resolver",
    "udp_fragment",
    "external_controller",
    "ntp",
    "services",
    "sniff",
    "geoip",
    "fakeip",
];

const STRINGS: &[&str] = &[
    "",
    "mixed",
    "socks",
    "http",
    "direct",
    "tun",
    "block",
    "selector",
    "urltest",
    "ssh",
    "tor",
    "wireguard",
    "tailscale",
    "vmess",
    "local",
    "hosts",
    "udp",
    "tcp",
    "tls",
    "https",
    "fakeip",
    "logical",
    "and",
    "or",
    "route",
    "reject",
    "drop",
    "sniff",
    "resolve",
    "hijack-dns",
    "route-options",
    "predefined",
    "5m",
    "1d",
    "-1s",
    "0",
    "300ms",
    "10.0.0.0/8",
    "::/0",
    "10.0.0.0/33",
    "127.0.0.1",
    "1000:2000",
    ":",
    "0x2023",
    "1_000",
    "A",
    "TA",
    "NXDOMAIN",
    "a.example. IN A 127.0.0.1",
    "garbage",
    "AQID",
    "d",
    "0",
    "1",
    "tcp\nudp",
    "\u{1F600}",
    "4a",
    "source",
    "binary",
    "rules.json",
    "x.srs",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(65535),
            Just(65536),
            Just(4294967296),
            any::<i64>()
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_string())),
        "[a-z_]{0,8}".prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_string),
                        "[a-z_]{1,10}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A top-level object with sing-box sections, so most cases reach the typed decoders.
fn config() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(json(), 0..3),
        prop::collection::vec(json(), 0..3),
        prop::option::of(json()),
        prop::option::of(json()),
    )
        .prop_map(|(inbounds, outbounds, route, dns)| {
            let mut m = Map::new();
            m.insert("inbounds".into(), Value::Array(inbounds));
            m.insert("outbounds".into(), Value::Array(outbounds));
            if let Some(r) = route {
                m.insert("route".into(), r);
            }
            if let Some(d) = dns {
                m.insert("dns".into(), d);
            }
            Value::Object(m)
        })
}

fn check_no_panic(text: &str) {
    if let Ok(loaded) = sb_config::load_text("fuzz.json", text) {
        let formatted = sb_config::format(&loaded);
        if let Err(e) = sb_config::load_text("formatted.json", &formatted) {
            panic!("format output rejected: {e}\ninput: {text}\noutput: {formatted}");
        }
    }
}

fn corpus_texts() -> &'static [String] {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| {
        ["valid", "invalid", "stricter"]
            .iter()
            .flat_map(|d| sb_tests::corpus(d))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    })
}

proptest! {
    // 3000 cases each in CI; PROPTEST_CASES raises it for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_configs_never_panic(v in config()) {
        check_no_panic(&v.to_string());
    }

    #[test]
    fn edited_corpus_files_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6),
    ) {
        let texts = corpus_texts();
        let mut bytes = texts[pick.index(texts.len())].clone().into_bytes();
        for (at, op, b) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => { bytes.remove(i); }
                1 => bytes.insert(i, b),
                _ => bytes[i] = b,
            }
        }
        check_no_panic(&String::from_utf8_lossy(&bytes));
    }
}
