//! Loading reports every error of a config, not only the first: in document order, with what
//! sb does not implement after the rest (Go decodes those parts fine, so its first error is
//! elsewhere), at most `MAX_ERRORS`, the first one returned as before and the others in `more`.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_config::error::MAX_ERRORS;
use sb_config::ConfigError;

fn errors(config: &str) -> ConfigError {
    match sb_config::load_text("e.json", config) {
        Ok(_) => panic!("accepted: {config}"),
        Err(e) => e,
    }
}

fn texts(e: &ConfigError) -> Vec<String> {
    e.all().map(ToString::to_string).collect()
}

#[test]
fn go_first_error_comes_before_what_sb_does_not_implement() {
    // Go decodes the vmess outbound and stops at the unknown field of outbounds[3].
    let e = errors(
        r#"{"outbounds": [{"type": "direct", "tag": "a"}, {"type": "vmess", "tag": "v"}, {"type": "direct", "tag": "b"}, {"type": "direct", "tag": "c", "bogus": 1}]}"#,
    );
    assert_eq!(
        texts(&e),
        [
            r#"e.json:1:142: outbounds[3].bogus (tag "c"): unknown field "bogus""#,
            r#"e.json:1:48: outbounds[1] (tag "v"): type "vmess" is not implemented by sb"#,
        ]
    );
    // The first error is the one returned, shown as before; the rest are not in its text.
    assert_eq!(e.to_string(), texts(&e)[0]);
    assert_eq!(e.more.len(), 1);
    assert!(e.more[0].more.is_empty());
}

#[test]
fn independent_errors_are_all_reported_in_file_order() {
    // Written in another order than sb decodes sections (outbounds before inbounds, route
    // between them), as Go meets them: Go reports the first.
    let e = errors(
        r#"{
  "outbounds": [{"type": "direct", "bogus": 1}],
  "route": {"rules": [{"action": "drop"}]},
  "inbounds": [{"type": "mixed", "listen_port": "1080"}]
}"#,
    );
    assert_eq!(
        texts(&e),
        [
            r#"e.json:2:36: outbounds[0].bogus (tag "0"): unknown field "bogus""#,
            r#"e.json:3:34: route.rules[0].action: unknown rule action: drop"#,
            r#"e.json:4:49: inbounds[0].listen_port (tag "0"): expected an integer 0-65535, found string "1080""#,
        ]
    );
}

#[test]
fn every_failing_element_of_each_array_is_reported() {
    let e = errors(
        r#"{
  "dns": {
    "servers": [{"type": "udp", "tag": "a"}, {"type": "local", "tag": "ok"}, {"type": "tcp", "tag": "b", "x": 1}],
    "rules": [{"server": "ok", "domainx": "a"}, {"server": "ok", "domain": "a"}, {"action": "nope"}]
  },
  "endpoints": [{"type": "wireguard", "tag": "w", "bogus": 1}],
  "inbounds": [{"type": "mixd"}, {"type": "mixed"}, {"type": "tun", "sniff": true}],
  "outbounds": [{"type": "direct", "tag": "d", "x": 1}, {"type": "socks", "tag": "s", "server_port": "x"}],
  "route": {
    "rules": [{"outbound": "d", "portx": 1}, {"action": "reject", "network": "sctp"}],
    "rule_set": [{"tag": "r", "rules": [{"domainx": "a"}]}, {"type": "remote", "tag": "q"}]
  }
}"#,
    );
    let paths: Vec<&str> = e.all().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "dns.servers[0]",
            "dns.servers[2]",
            "dns.rules[0].domainx",
            "dns.rules[2].action",
            "endpoints[0]",
            "inbounds[0].type",
            "inbounds[2].sniff",
            "outbounds[0].x",
            "outbounds[1].server_port",
            "route.rules[0].portx",
            "route.rules[1].network",
            "route.rule_set[0].rules[0].domainx",
            "route.rule_set[1]",
        ],
        "{:#?}",
        texts(&e)
    );
}

#[test]
fn top_level_sections_and_keys_are_each_reported() {
    let e = errors(
        r#"{"log": {"level": "verbose"}, "outbund": [], "ntp": {"enabled": true}, "certificate": {"store": "x"}, "experimental": {"v2ray_api": {}, "cache_fil": {}}, "inbound": []}"#,
    );
    let paths: Vec<&str> = e.all().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "log.level",
            "outbund",
            "certificate",
            "experimental.cache_fil",
            "inbound",
            // Not implemented by sb, after the rest.
            "ntp.enabled",
            "experimental.v2ray_api",
        ],
        "{:#?}",
        texts(&e)
    );
}

#[test]
fn errors_are_capped() {
    let outbounds: Vec<String> = (0..MAX_ERRORS + 10)
        .map(|i| format!(r#"{{"type": "direct", "tag": "d{i}", "x": 1}}"#))
        .collect();
    let e = errors(&format!(r#"{{"outbounds": [{}]}}"#, outbounds.join(", ")));
    assert_eq!(e.all().count(), MAX_ERRORS);
    assert_eq!(e.path, "outbounds[0].x");
    assert_eq!(
        e.more.last().map(|e| e.path.as_str()),
        Some(format!("outbounds[{}].x", MAX_ERRORS - 1).as_str())
    );
}

#[test]
fn a_single_error_has_no_more() {
    let e = errors(r#"{"outbound": []}"#);
    assert!(e.more.is_empty());
    assert_eq!(e.all().count(), 1);
}

#[test]
fn cross_element_checks_wait_for_every_element_to_decode() {
    // With servers[0] left out, the fakeip server would look like the default one.
    let e = errors(
        r#"{"dns": {"servers": [{"type": "udp", "tag": "a", "bogus": 1}, {"type": "fakeip", "tag": "f", "inet4_range": "198.18.0.0/15"}]}}"#,
    );
    assert_eq!(texts(&e).len(), 1, "{:#?}", texts(&e));
}

#[test]
fn references_are_checked_only_when_decoding_succeeded_and_then_all_of_them() {
    // The rule naming the broken outbound would otherwise say "not found".
    let e = errors(
        r#"{"outbounds": [{"type": "direct", "tag": "d", "x": 1}], "route": {"rules": [{"outbound": "d"}]}}"#,
    );
    assert_eq!(texts(&e).len(), 1, "{:#?}", texts(&e));
    let e = errors(
        r#"{"outbounds": [{"type": "direct", "tag": "d"}, {"type": "direct", "tag": "d"}], "route": {"final": "x", "rules": [{"outbound": "y"}, {"outbound": "z"}]}}"#,
    );
    assert_eq!(
        texts(&e),
        [
            r#"e.json:1:74: outbounds[1].tag: duplicate outbound/endpoint tag: d"#,
            r#"e.json:1:100: route.final: outbound/endpoint not found: x (defined: "d" or "d")"#,
            r#"e.json:1:128: route.rules[0].outbound: outbound/endpoint not found: y (defined: "d" or "d")"#,
            r#"e.json:1:147: route.rules[1].outbound: outbound/endpoint not found: z (defined: "d" or "d")"#,
        ]
    );
}

#[test]
fn merged_documents_report_every_error_by_path() {
    let sources = [
        sb_config::Source {
            name: "a.json".into(),
            text: r#"{"outbounds": [{"type": "vmess"}, {"type": "direct", "x": 1}]}"#.into(),
        },
        sb_config::Source {
            name: "b.json".into(),
            text: r#"{"inbounds": [{"type": "mixed", "y": 1}], "outbounds": [{"type": "direct", "z": 1}]}"#.into(),
        },
    ];
    let e = sb_config::load(&sources, std::path::Path::new(".")).unwrap_err();
    let paths: Vec<&str> = e.all().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "outbounds[1].x",
            "outbounds[2].z",
            "inbounds[0].y",
            "outbounds[0]"
        ],
        "{:#?}",
        texts(&e)
    );
}
