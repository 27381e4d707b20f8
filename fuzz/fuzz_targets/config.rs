//! The config loader (`sb_config::load_text`): the JSONC reader (comments, trailing commas,
//! every value located), the typed decoders of every section, the whole-document checks,
//! and `format`, which writes a config back as Go's `sing-box format` does. Byte 0 of the
//! input picks the form of the rest: text as it is (UTF-8, invalid bytes replaced), or JSON
//! built from the bytes out of sing-box's own keys and values, so decoding goes past the
//! first key (each byte chooses the next node; see `build`).
//!
//! Checked: no panic (sb would die at start or on a reload), and an accepted config's
//! `format` output is accepted again (the `sb format` promise, as `tests/no_panic.rs`
//! checks with property tests).

#![no_main]

use libfuzzer_sys::fuzz_target;
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
    "auto_route",
    "private_key",
    "peers",
    "allowed_ips",
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
    "inet4_range",
    "predefined",
    "path",
    "format",
    "url",
    "interval",
    "headers",
    "tls",
    "default_domain_resolver",
    "sniff",
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
    "-1s",
    "300ms",
    "10.0.0.0/8",
    "::/0",
    "10.0.0.0/33",
    "127.0.0.1",
    "1000:2000",
    "0x2023",
    "A",
    "NXDOMAIN",
    "a.example. IN A 127.0.0.1",
    "AQID",
    "source",
    "binary",
    "x.srs",
    "proxy",
    "in",
];

/// A JSON value read from `bytes`, at most `depth` levels deep: each byte picks the next
/// node (null, bool, number, one of `STRINGS`, an array or an object keyed by `KEYS`).
fn build(bytes: &mut std::slice::Iter<'_, u8>, depth: u8) -> Value {
    let Some(&b) = bytes.next() else {
        return Value::Null;
    };
    let pick = |n: u8, len: usize| usize::from(n) % len;
    match b % 8 {
        0 => Value::Null,
        1 => Value::Bool(b & 0x80 != 0),
        2 => Value::from([0i64, -1, 1, 53, 65535, 65536, 4294967296][pick(b >> 3, 7)]),
        3 | 4 => Value::String(STRINGS[pick(*bytes.next().unwrap_or(&0), STRINGS.len())].into()),
        5 if depth > 0 => {
            let n = usize::from(b >> 5);
            Value::Array((0..n).map(|_| build(bytes, depth - 1)).collect())
        }
        _ if depth > 0 => {
            let n = usize::from(b >> 5);
            let mut m = Map::new();
            for _ in 0..n {
                let key = KEYS[pick(*bytes.next().unwrap_or(&0), KEYS.len())];
                m.insert(key.to_string(), build(bytes, depth - 1));
            }
            Value::Object(m)
        }
        _ => Value::String(String::new()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let text = if form & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        build(&mut rest.iter(), 6).to_string()
    };
    if let Ok(loaded) = sb_config::load_text("fuzz.json", &text) {
        let formatted = sb_config::format(&loaded);
        if let Err(e) = sb_config::load_text("formatted.json", &formatted) {
            panic!("format output rejected: {e}\ninput: {text}\noutput: {formatted}");
        }
    }
});
