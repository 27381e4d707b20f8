//! Golden tests: the exact text of the errors a person sees for broken configs. Each case is
//! a config and the one-line error `sb check` prints for it (after `FATAL[0000] `): file,
//! line and column, JSON path, the adapter tag when inside one, what is wrong, and a hint.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

const CASES: &[(&str, &str, &str)] = &[
    (
        "unknown top-level key",
        r#"{"outbound": []}"#,
        r#"golden.json:1:2: outbound: unknown field "outbound" (did you mean "outbounds"?)"#,
    ),
    (
        "unknown rule key",
        "{\"route\": {\"rules\": [\n  {\"domainx\": \"a.com\", \"outbound\": \"d\"}\n]}, \"outbounds\": [{\"type\": \"direct\", \"tag\": \"d\"}]}",
        r#"golden.json:2:4: route.rules[0].domainx: unknown field "domainx" (did you mean "domain"?)"#,
    ),
    (
        "unknown inbound key names the tag",
        r#"{"inbounds": [{"type": "mixed", "tag": "m", "listen_prot": 1080}]}"#,
        r#"golden.json:1:45: inbounds[0].listen_prot (tag "m"): unknown field "listen_prot" (did you mean "listen_port"?)"#,
    ),
    (
        "wrong type",
        r#"{"inbounds": [{"type": "mixed", "listen_port": "1080"}]}"#,
        r#"golden.json:1:48: inbounds[0].listen_port (tag "0"): expected an integer 0-65535, found string "1080""#,
    ),
    (
        "wrong type bool",
        r#"{"inbounds": [{"type": "mixed", "tcp_fast_open": "yes"}]}"#,
        r#"golden.json:1:50: inbounds[0].tcp_fast_open (tag "0"): expected a boolean, found string "yes""#,
    ),
    (
        "out of range",
        r#"{"inbounds": [{"type": "mixed", "listen_port": 70000}]}"#,
        r#"golden.json:1:48: inbounds[0].listen_port (tag "0"): expected an integer 0-65535, found number 70000"#,
    ),
    (
        "bad duration",
        r#"{"outbounds": [{"type": "direct", "tag": "d", "connect_timeout": "5 seconds"}]}"#,
        r#"golden.json:1:66: outbounds[0].connect_timeout (tag "d"): invalid duration "5 seconds": unknown unit " seconds" (write a Go duration such as "300ms", "5m" or "1h30m")"#,
    ),
    (
        "bad CIDR",
        r#"{"route": {"rules": [{"ip_cidr": ["10.0.0.0/8", "10.0.0.0/33"], "action": "reject"}]}}"#,
        r#"golden.json:1:49: route.rules[0].ip_cidr[1]: invalid CIDR "10.0.0.0/33": prefix length out of range"#,
    ),
    (
        "bad port range",
        r#"{"route": {"rules": [{"port_range": "1000-2000", "action": "reject"}]}}"#,
        r#"golden.json:1:37: route.rules[0].port_range: bad port range: 1000-2000 (write "1000:2000", ":3000" or "4000:")"#,
    ),
    (
        "unknown type",
        r#"{"outbounds": [{"type": "vpn", "tag": "x"}]}"#,
        r#"golden.json:1:25: outbounds[0].type (tag "x"): unknown outbound type "vpn""#,
    ),
    (
        "near-miss type",
        r#"{"inbounds": [{"type": "mixd"}]}"#,
        r#"golden.json:1:24: inbounds[0].type (tag "0"): unknown inbound type "mixd" (did you mean "mixed"?)"#,
    ),
    (
        "type Go has and sb does not",
        r#"{"outbounds": [{"type": "direct"}, {"type": "direct", "tag": "b"}, {"type": "block", "tag": "c"}, {"type": "vmess", "tag": "x"}]}"#,
        r#"golden.json:1:99: outbounds[3] (tag "x"): type "vmess" is not implemented by sb"#,
    ),
    (
        "unknown action",
        r#"{"route": {"rules": [{"action": "drop"}]}}"#,
        r#"golden.json:1:33: route.rules[0].action: unknown rule action: drop"#,
    ),
    (
        "unknown outbound in a rule",
        r#"{"outbounds": [{"type": "direct", "tag": "direct"}], "route": {"rules": [{"domain": "a.com", "outbound": "drect"}]}}"#,
        r#"golden.json:1:106: route.rules[0].outbound: outbound/endpoint not found: drect (did you mean "direct"?)"#,
    ),
    (
        "unknown route.final",
        r#"{"outbounds": [{"type": "direct", "tag": "direct"}], "route": {"final": "nope"}}"#,
        r#"golden.json:1:73: route.final: outbound/endpoint not found: nope (defined: "direct")"#,
    ),
    (
        "unknown dns.final",
        r#"{"dns": {"servers": [{"type": "local", "tag": "local"}], "final": "remote"}}"#,
        r#"golden.json:1:67: dns.final: DNS server not found: remote (defined: "local")"#,
    ),
    (
        "unknown DNS rule server",
        r#"{"dns": {"servers": [{"type": "local", "tag": "local"}], "rules": [{"domain": "a.com", "server": "loca"}]}}"#,
        r#"golden.json:1:98: dns.rules[0].server: DNS server not found: loca (did you mean "local"?)"#,
    ),
    (
        "unknown detour",
        r#"{"outbounds": [{"type": "socks", "tag": "s", "server": "127.0.0.1", "server_port": 1080, "detour": "hop"}]}"#,
        r#"golden.json:1:100: outbounds[0].detour: outbound/endpoint not found: hop (defined: "s")"#,
    ),
    (
        "selector member",
        r#"{"outbounds": [{"type": "selector", "tag": "s", "outbounds": ["a", "b"]}, {"type": "direct", "tag": "a"}]}"#,
        r#"golden.json:1:68: outbounds[0].outbounds[1]: outbound/endpoint not found: b (defined: "s" or "a")"#,
    ),
    (
        "urltest member",
        r#"{"outbounds": [{"type": "urltest", "tag": "u", "outbounds": ["direct"]}]}"#,
        r#"golden.json:1:62: outbounds[0].outbounds[0]: outbound/endpoint not found: direct (defined: "u")"#,
    ),
    (
        "rule_set reference",
        r#"{"route": {"rules": [{"rule_set": "geoip-cn", "action": "reject"}]}}"#,
        r#"golden.json:1:35: route.rules[0].rule_set: rule-set not found: geoip-cn (no rule-set is defined)"#,
    ),
    (
        "domain_resolver",
        r#"{"dns": {"servers": [{"type": "local", "tag": "local"}]}, "outbounds": [{"type": "direct", "domain_resolver": "lcl"}]}"#,
        r#"golden.json:1:111: outbounds[0].domain_resolver: DNS server not found: lcl (defined: "local")"#,
    ),
    (
        "default_domain_resolver",
        r#"{"route": {"default_domain_resolver": {"server": "dns"}}}"#,
        r#"golden.json:1:50: route.default_domain_resolver.server: DNS server not found: dns (no DNS server is defined)"#,
    ),
    (
        "route_address_set",
        r#"{"inbounds": [{"type": "tun", "address": "172.19.0.1/30", "route_address_set": "cn"}]}"#,
        r#"golden.json:1:80: inbounds[0].route_address_set: rule-set not found: cn (no rule-set is defined)"#,
    ),
    (
        "inbound detour",
        r#"{"inbounds": [{"type": "mixed", "tag": "m", "detour": "socks-in"}]}"#,
        r#"golden.json:1:55: inbounds[0].detour: inbound not found: socks-in (defined: "m")"#,
    ),
    (
        "rule inbound names an endpoint",
        r#"{"endpoints": [{"type": "wireguard", "tag": "wg", "private_key": "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4="}], "route": {"rules": [{"inbound": "wg", "outbound": "wg"}]}}"#,
        "(accepted)",
    ),
    (
        "inbound detour names an endpoint",
        r#"{"inbounds": [{"type": "mixed", "tag": "m", "detour": "wg"}], "endpoints": [{"type": "wireguard", "tag": "wg", "private_key": "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4="}]}"#,
        r#"golden.json:1:55: inbounds[0].detour: inbound not found: wg (defined: "m")"#,
    ),
    (
        "duplicate outbound tag",
        r#"{"outbounds": [{"type": "direct", "tag": "a"}], "endpoints": [{"type": "wireguard", "tag": "a", "private_key": "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4="}]}"#,
        r#"golden.json:1:42: outbounds[0].tag: duplicate outbound/endpoint tag: a"#,
    ),
    (
        "duplicate inbound tag",
        r#"{"inbounds": [{"type": "mixed", "tag": "in"}, {"type": "socks", "tag": "in"}]}"#,
        r#"golden.json:1:72: inbounds[1].tag: duplicate inbound tag: in"#,
    ),
    (
        "removed legacy inbound field",
        r#"{"inbounds": [{"type": "mixed", "sniff": true}]}"#,
        r#"golden.json:1:33: inbounds[0].sniff (tag "0"): legacy inbound fields are deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-legacy-inbound-fields-to-rule-actions"#,
    ),
    (
        "removed legacy inbound field in tun",
        r#"{"inbounds": [{"type": "tun", "address": "172.19.0.1/30", "sniff": true}]}"#,
        r#"golden.json:1:59: inbounds[0].sniff (tag "0"): legacy inbound fields are deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-legacy-inbound-fields-to-rule-actions"#,
    ),
    (
        "removed legacy DNS server",
        r#"{"dns": {"servers": [{"tag": "g", "address": "tls://8.8.8.8"}]}}"#,
        r#"golden.json:1:22: dns.servers[0]: legacy DNS server formats are deprecated in sing-box 1.12.0 and removed in sing-box 1.14.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-to-new-dns-server-formats"#,
    ),
    (
        "removed dns outbound",
        r#"{"outbounds": [{"type": "dns", "tag": "dns-out"}]}"#,
        r#"golden.json:1:25: outbounds[0].type (tag "dns-out"): dns outbound is deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, use rule actions instead"#,
    ),
    (
        "removed direct override",
        r#"{"outbounds": [{"type": "direct", "override_port": 53}]}"#,
        r#"golden.json:1:35: outbounds[0].override_port (tag "0"): destination override fields in direct outbound are deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, use route options instead"#,
    ),
    (
        "syntax error",
        "{\n  \"log\": {\"level\": \"info\" \"timestamp\": true}\n}",
        r#"golden.json:2:27: invalid JSON: unexpected character '"' after object key:value pair, expected ',' or '}'"#,
    ),
    (
        "bad log level",
        r#"{"log": {"level": "verbose"}}"#,
        r#"golden.json:1:19: log.level: unknown value "verbose", expected "trace", "debug", "info", "warn", "warning", "error", "fatal" or "panic""#,
    ),
    (
        "enum the schema declares",
        r#"{"route": {"rules": [{"network": "sctp", "action": "reject"}]}}"#,
        r#"golden.json:1:34: route.rules[0].network: unknown value "sctp", expected "tcp", "udp" or "icmp""#,
    ),
    (
        "tun address needs a prefix",
        r#"{"inbounds": [{"type": "tun", "address": "172.19.0.1"}]}"#,
        r#"golden.json:1:42: inbounds[0].address (tag "0"): invalid prefix "172.19.0.1": no '/' (write an address with its prefix length, such as "172.19.0.1/30")"#,
    ),
    (
        "http client unknown version",
        r#"{"http_clients": [{"tag": "h", "version": 4}]}"#,
        r#"golden.json:1:19: http_clients[0] (tag "h"): unknown HTTP version: 4"#,
    ),
    (
        "http client field of another version",
        r#"{"http_clients": [{"tag": "h", "version": 1, "idle_timeout": "30s"}]}"#,
        r#"golden.json:1:46: http_clients[0].idle_timeout (tag "h"): unknown field "idle_timeout""#,
    ),
    (
        "http client missing tag",
        r#"{"http_clients": [{"version": 1}]}"#,
        r#"golden.json:1:19: http_clients[0]: missing http client tag"#,
    ),
    (
        "http client duplicate tag",
        r#"{"http_clients": [{"tag": "h"}, {"tag": "h"}]}"#,
        r#"golden.json:1:41: http_clients[1].tag: duplicate http client tag: h"#,
    ),
    (
        "rule set names an unknown http client",
        r#"{"http_clients": [{"tag": "main"}], "route": {"rule_set": [{"type": "remote", "tag": "r", "url": "https://x.example/a.srs", "http_client": "mian"}]}}"#,
        r#"golden.json:1:140: route.rule_set[0].http_client: http client not found: mian (did you mean "main"?)"#,
    ),
    (
        "unknown default http client",
        r#"{"route": {"default_http_client": "h"}}"#,
        r#"golden.json:1:35: route.default_http_client: http client not found: h (no http client is defined)"#,
    ),
    (
        "http client receive window",
        r#"{"http_clients": [{"tag": "h", "stream_receive_window": "1KiB"}]}"#,
        r#"golden.json:1:57: http_clients[0].stream_receive_window (tag "h"): unsupported unit: KiB"#,
    ),
];

#[test]
fn golden_errors() {
    let mut wrong = Vec::new();
    for (name, config, expected) in CASES {
        let got = match sb_config::load_text("golden.json", config) {
            Ok(_) => "(accepted)".to_string(),
            Err(e) => e.to_string(),
        };
        if got != *expected {
            wrong.push(format!(
                "{name}:\n  expected: {expected}\n  got:      {got}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
