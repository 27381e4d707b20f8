//! Configs written by graphical clients that Go sing-box 1.14.4 accepts (or rejects) in ways
//! sb first got wrong: what sb accepts, what `format` writes back, the warnings it gives, and
//! the errors it reports for them.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

fn load(config: &str) -> sb_config::Loaded {
    sb_config::load_text("gui.json", config).unwrap_or_else(|e| panic!("{e}\n{config}"))
}

fn error(config: &str) -> String {
    match sb_config::load_text("gui.json", config) {
        Ok(_) => panic!("accepted: {config}"),
        Err(e) => e.to_string(),
    }
}

fn formatted(loaded: &sb_config::Loaded) -> Value {
    serde_json::from_str(&sb_config::format(loaded)).unwrap()
}

fn warnings(loaded: &sb_config::Loaded) -> Vec<String> {
    loaded.warnings.iter().map(ToString::to_string).collect()
}

const LEGACY_DIAL_STRATEGY: &str = "legacy domain strategy options is deprecated in sing-box 1.12.0 and will be removed in sing-box 1.14.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-domain-strategy-options";

#[test]
fn dns_server_domain_strategy_is_accepted_with_a_warning_and_kept_by_format() {
    let loaded = load(
        r#"{"dns": {"servers": [{"type": "udp", "tag": "x", "server": "1.1.1.1", "domain_strategy": "ipv4_only"}]}}"#,
    );
    let w = warnings(&loaded);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("gui.json:1:71: dns.servers[0].domain_strategy: `domain_strategy` has no effect in this DNS server:"),
        "{}",
        w[0]
    );
    assert!(w[0].contains("`server` is an IP address"), "{}", w[0]);
    assert!(w[0].contains("sb's runtime ignores it"), "{}", w[0]);
    // Go's `format` keeps it, after the other dial fields.
    let f = formatted(&loaded);
    let server = &f["dns"]["servers"][0];
    assert_eq!(server["domain_strategy"], "ipv4_only", "{f}");
    let keys: Vec<&str> = server
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["type", "tag", "domain_strategy", "server"]);
}

#[test]
fn dns_server_domain_strategy_warning_says_why_it_has_no_effect() {
    for (server, why) in [
        (
            r#"{"type": "local", "tag": "x", "domain_strategy": "ipv6_only"}"#,
            "a `local` server has no server name",
        ),
        (
            r#"{"type": "https", "tag": "x", "server": "dns.example", "domain_strategy": "prefer_ipv4", "domain_resolver": {"server": "y", "strategy": "ipv4_only"}}"#,
            "`domain_resolver.strategy` is set",
        ),
        (
            r#"{"type": "tcp", "tag": "x", "server": "dns.example", "domain_strategy": "prefer_ipv4", "detour": "d"}"#,
            "the `detour` outbound resolves",
        ),
    ] {
        let config = format!(
            r#"{{"outbounds": [{{"type": "direct", "tag": "d"}}], "route": {{"default_domain_resolver": "y"}}, "dns": {{"servers": [{server}, {{"type": "udp", "tag": "y", "server": "1.1.1.1"}}]}}}}"#
        );
        let loaded = load(&config);
        let w = warnings(&loaded);
        assert_eq!(w.len(), 1, "{config}: {w:?}");
        assert!(w[0].contains(why), "{config}: {}", w[0]);
    }
}

#[test]
fn dns_server_domain_strategy_refused_where_go_would_use_it() {
    // A name resolved through a `domain_resolver` without a strategy of its own: the one case
    // where Go uses the legacy field, and Go 1.14.4 refuses it as deprecated.
    let e = error(
        r#"{"route": {"default_domain_resolver": "y"}, "dns": {"servers": [{"type": "udp", "tag": "x", "server": "dns.example", "domain_resolver": "y", "domain_strategy": "prefer_ipv4"}, {"type": "udp", "tag": "y", "server": "1.1.1.1"}]}}"#,
    );
    assert!(
        e.contains("dns.servers[0].domain_strategy (tag \"x\")"),
        "{e}"
    );
    assert!(e.ends_with(LEGACY_DIAL_STRATEGY), "{e}");
}

#[test]
fn zero_dns_server_domain_strategy_is_silent_and_dropped() {
    for value in ["", "as_is"] {
        let loaded = load(&format!(
            r#"{{"dns": {{"servers": [{{"type": "udp", "tag": "x", "server": "1.1.1.1", "domain_strategy": "{value}"}}]}}}}"#
        ));
        assert!(loaded.warnings.is_empty(), "{:?}", warnings(&loaded));
        assert!(formatted(&loaded)["dns"]["servers"][0]
            .get("domain_strategy")
            .is_none());
    }
}

#[test]
fn outbound_domain_strategy_is_still_refused() {
    let e = error(r#"{"outbounds": [{"type": "direct", "domain_strategy": "prefer_ipv4"}]}"#);
    assert!(e.ends_with(LEGACY_DIAL_STRATEGY), "{e}");
}

#[test]
fn inline_rule_set_accepts_any_format_string_and_format_drops_it() {
    for ty in [r#""type": "inline", "#, ""] {
        for value in ["source", "binary", "whatever", ""] {
            let config = format!(
                r#"{{"route": {{"rule_set": [{{{ty}"tag": "a", "format": "{value}", "rules": [{{"domain": "a.example"}}]}}], "rules": [{{"rule_set": "a", "action": "reject"}}]}}}}"#
            );
            let loaded = load(&config);
            let set = &formatted(&loaded)["route"]["rule_set"][0];
            assert_eq!(
                set,
                &serde_json::json!({"tag": "a", "rules": [{"domain": "a.example"}]}),
                "{config}"
            );
        }
    }
    // Still a string, as Go's field is.
    let e = error(r#"{"route": {"rule_set": [{"tag": "a", "format": 1, "rules": []}]}}"#);
    assert!(
        e.ends_with(r#"route.rule_set[0].format (tag "a"): expected a string, found number 1"#),
        "{e}"
    );
}

const LEGACY_INBOUND: &str = "legacy inbound fields are deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-legacy-inbound-fields-to-rule-actions";

/// One inbound of each type sb implements, as `"type": ..., <own fields>`.
const INBOUNDS: &[&str] = &[
    r#""type": "direct", "tag": "in""#,
    r#""type": "mixed", "tag": "in""#,
    r#""type": "socks", "tag": "in""#,
    r#""type": "http", "tag": "in""#,
    r#""type": "tun", "tag": "in", "address": "172.19.0.1/30""#,
];

#[test]
fn legacy_inbound_fields_get_go_text_in_every_inbound_type() {
    for inbound in INBOUNDS {
        for (key, value) in [
            ("sniff", "true"),
            ("sniff_override_destination", "true"),
            ("sniff_timeout", r#""300ms""#),
            ("domain_strategy", r#""prefer_ipv4""#),
            ("udp_disable_domain_unmapping", "true"),
        ] {
            let config = format!(r#"{{"inbounds": [{{{inbound}, "{key}": {value}}}]}}"#);
            let e = error(&config);
            assert!(
                e.ends_with(&format!(
                    r#": inbounds[0].{key} (tag "in"): {LEGACY_INBOUND}"#
                )),
                "{config}: {e}"
            );
        }
    }
}

#[test]
fn zero_legacy_inbound_fields_are_accepted_and_dropped_as_in_go() {
    for inbound in INBOUNDS {
        let config = format!(
            r#"{{"inbounds": [{{{inbound}, "sniff": false, "sniff_override_destination": false, "sniff_timeout": "0s", "domain_strategy": "", "udp_disable_domain_unmapping": false}}]}}"#
        );
        let loaded = load(&config);
        let written = formatted(&loaded)["inbounds"][0].clone();
        for key in ["sniff", "sniff_timeout", "domain_strategy"] {
            assert!(written.get(key).is_none(), "{config}: {written}");
        }
    }
}

#[test]
fn legacy_inbound_fields_come_after_decoding_errors_of_the_same_inbound() {
    // Go decodes the whole inbound before it looks at the legacy fields.
    let e = error(r#"{"inbounds": [{"type": "tun", "sniff": true, "mtu": "x"}]}"#);
    assert!(e.contains("inbounds[0].mtu"), "{e}");
    let e = error(r#"{"inbounds": [{"type": "mixed", "sniff": true, "lisen": 1}]}"#);
    assert!(e.contains(r#"unknown field "lisen""#), "{e}");
}
