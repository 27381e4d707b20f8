//! Router table tests: flows × rules → the outbound (or reject) the dispatcher chooses, for
//! every match field sb routes on today, Go's grouping, logical and inverted rules, rule sets,
//! route-options and the final/default outbound. Outbounds are in-process stand-ins that only
//! carry a tag; nothing is dialed.
//!
//! Over 600 lines on purpose: it is one table of cases (flow, rules, expected outbound) over
//! a few shared helpers, read field by field; split, the helpers would be repeated or moved
//! to a support module that hides what each case builds.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::adapter::{BoxFuture, BoxStream, Outbound};
use sb_core::dispatch::{Decision, Dispatcher};
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::procinfo::ProcessInfo;
use sb_core::router::{ClashMode, Router};
use sb_core::ruleset::{OutboundLookup, RuleSets};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

struct Tagged(&'static str);

impl Outbound for Tagged {
    fn tag(&self) -> &str {
        self.0
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn networks(&self) -> &'static [Network] {
        if self.0 == "tcp-only" {
            &[Network::Tcp]
        } else {
            &[Network::Tcp, Network::Udp]
        }
    }
    fn connect_tcp<'a>(
        &'a self,
        _f: &'a FlowContext,
        _d: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async { Err(io::Error::other("not dialed in router tests")) })
    }
}

fn dispatcher(route: &str, mode: &str) -> Dispatcher {
    let config = format!(
        r#"{{"inbounds": [{{"type": "mixed", "tag": "in-a"}}, {{"type": "socks", "tag": "in-b"}}],
            "outbounds": [{{"type": "direct", "tag": "a"}}, {{"type": "direct", "tag": "b"}}, {{"type": "direct", "tag": "c"}}],
            "route": {route}}}"#
    );
    let loaded = sb_config::load_text("router.json", &config).unwrap_or_else(|e| panic!("{e}"));
    let router = router(loaded.config.route.as_ref(), mode).unwrap();
    let outbounds: HashMap<String, Arc<dyn Outbound>> = ["a", "b", "c"]
        .iter()
        .map(|t| (t.to_string(), Arc::new(Tagged(t)) as Arc<dyn Outbound>))
        .collect();
    Dispatcher::new(router, outbounds.clone(), outbounds["a"].clone())
}

/// A router over the route section's (inline) rule sets.
fn router(route: Option<&sb_config::model::route::Route>, mode: &str) -> Result<Router, String> {
    let no_outbounds: OutboundLookup = Arc::new(|_: &str| None);
    let sets = RuleSets::build(route.map_or(&[][..], |r| &r.rule_set), no_outbounds)
        .map_err(|e| e.to_string())?;
    Router::new(route, Arc::new(ClashMode::new(mode)), &sets.matchers()).map_err(|e| e.to_string())
}

struct F {
    inbound: &'static str,
    network: Network,
    src: &'static str,
    dst: &'static str,
    port: u16,
    user: Option<&'static str>,
    /// The flow's process: uid, account name, executable path.
    process: Option<(u32, Option<&'static str>, Option<&'static str>)>,
}

const BASE: F = F {
    inbound: "in-a",
    network: Network::Tcp,
    src: "192.168.1.10:40000",
    dst: "example.com",
    port: 443,
    user: None,
    process: None,
};

fn flow(f: &F) -> FlowContext {
    let mut ctx = FlowContext::new(
        f.inbound.into(),
        "mixed",
        f.network,
        f.src.parse().unwrap(),
        Destination::from_host(f.dst, f.port),
    );
    ctx.user = f.user.map(str::to_string);
    ctx.process = f.process.map(|(uid, user, path)| {
        Arc::new(ProcessInfo::new(
            Some(4242),
            uid,
            user.map(str::to_string),
            path.map(str::to_string),
        ))
    });
    ctx
}

/// `tag` of the chosen outbound, `reject`, `drop` or `fail: ...`.
fn decide(d: &Dispatcher, f: &F) -> String {
    let mut ctx = flow(f);
    match d.decide(&mut ctx) {
        Decision::Route(o) => o.tag().to_string(),
        Decision::Reject { drop: false } => "reject".into(),
        Decision::Reject { drop: true } => "drop".into(),
        Decision::Fail(why) => format!("fail: {why}"),
        Decision::Sniff { next, .. } => format!("sniff, then from {next}"),
        Decision::Resolve { next, .. } => format!("resolve, then from {next}"),
        Decision::HijackDns => "hijack-dns".into(),
    }
}

fn check(route: &str, cases: &[(F, &str)]) {
    let d = dispatcher(route, "Rule");
    for (i, (f, want)) in cases.iter().enumerate() {
        assert_eq!(decide(&d, f), *want, "case {i} of {route}");
    }
}

#[test]
fn destination_fields() {
    check(
        r#"{"rules": [
            {"domain": "exact.test", "outbound": "b"},
            {"domain_suffix": "suffix.test", "outbound": "b"},
            {"domain_keyword": "kw", "outbound": "b"},
            {"domain_regex": "^re\\d+\\.", "outbound": "b"},
            {"ip_cidr": ["10.0.0.0/8", "fd00::/8"], "outbound": "c"},
            {"ip_is_private": true, "outbound": "c"}
        ]}"#,
        &[
            (
                F {
                    dst: "exact.test",
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    dst: "a.exact.test",
                    ..BASE
                },
                "a",
            ),
            (
                F {
                    dst: "x.suffix.test",
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    dst: "has-kw-inside.test",
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    dst: "re42.test",
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    dst: "10.1.2.3",
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    dst: "fd00::1",
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    dst: "192.168.0.1",
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    dst: "1.1.1.1",
                    ..BASE
                },
                "a",
            ),
        ],
    );
}

#[test]
fn ports_sources_inbound_network_user_ip_version() {
    check(
        r#"{"rules": [
            {"port": [80, 8080], "outbound": "b"},
            {"port_range": "1000:2000", "outbound": "b"},
            {"source_ip_cidr": "172.16.0.0/12", "outbound": "c"},
            {"source_port_range": "50000:", "outbound": "c"},
            {"source_port": 40001, "outbound": "c"},
            {"inbound": "in-b", "outbound": "b"},
            {"network": "udp", "outbound": "c"},
            {"auth_user": "alice", "outbound": "b"},
            {"ip_version": 6, "outbound": "c"}
        ]}"#,
        &[
            (F { port: 8080, ..BASE }, "b"),
            (F { port: 1500, ..BASE }, "b"),
            (
                F {
                    src: "172.20.0.1:1",
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    src: "192.168.1.10:50001",
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    src: "192.168.1.10:40001",
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    inbound: "in-b",
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    network: Network::Udp,
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    user: Some("alice"),
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    user: Some("bob"),
                    ..BASE
                },
                "a",
            ),
            (
                F {
                    dst: "2001:db8::1",
                    ..BASE
                },
                "c",
            ),
            (BASE, "a"),
        ],
    );
}

#[test]
fn go_grouping_ors_inside_groups_and_ands_across() {
    // (domain_suffix || ip_cidr) && (port || port_range) && source_ip_is_private
    check(
        r#"{"rules": [{"domain_suffix": "g.test", "ip_cidr": "10.0.0.0/8", "port": 443, "port_range": "8000:8100",
                       "source_ip_is_private": true, "outbound": "b"}]}"#,
        &[
            (
                F {
                    dst: "x.g.test",
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    dst: "10.0.0.1",
                    port: 8050,
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    dst: "x.g.test",
                    port: 80,
                    ..BASE
                },
                "a",
            ),
            (
                F {
                    dst: "other.test",
                    ..BASE
                },
                "a",
            ),
            (
                F {
                    dst: "x.g.test",
                    src: "8.8.8.8:1",
                    ..BASE
                },
                "a",
            ),
        ],
    );
}

#[test]
fn invert_logical_and_rule_sets() {
    check(
        r#"{"rules": [
            {"type": "logical", "mode": "and", "rules": [{"domain_suffix": "l.test"}, {"port": 80, "invert": true}], "outbound": "b"},
            {"type": "logical", "mode": "or", "rules": [{"port": 81}, {"port": 82}], "invert": true, "outbound": "c"},
            {"rule_set": "set", "outbound": "b"}
        ],
        "rule_set": [{"tag": "set", "rules": [{"domain": "in-set.test"}]}]}"#,
        &[
            (
                F {
                    dst: "x.l.test",
                    port: 443,
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    dst: "x.l.test",
                    port: 80,
                    ..BASE
                },
                "c",
            ),
            (F { port: 443, ..BASE }, "c"),
            (
                F {
                    dst: "in-set.test",
                    port: 81,
                    ..BASE
                },
                "b",
            ),
            (F { port: 82, ..BASE }, "a"),
        ],
    );
}

#[test]
fn actions_and_fallbacks() {
    let d = dispatcher(
        r#"{"rules": [
            {"port": 1, "action": "reject"},
            {"port": 2, "action": "reject", "method": "drop"},
            {"domain": "moved.test", "action": "route-options", "override_address": "10.9.9.9", "override_port": 8443},
            {"ip_cidr": "10.9.9.9/32", "port": 8443, "outbound": "c"},
            {"clash_mode": "direct", "outbound": "b"}
        ], "final": "b"}"#,
        "Rule",
    );
    assert_eq!(decide(&d, &F { port: 1, ..BASE }), "reject");
    assert_eq!(decide(&d, &F { port: 2, ..BASE }), "drop");
    // route-options changes the destination and matching continues with the next rule.
    let mut moved = flow(&F {
        dst: "moved.test",
        ..BASE
    });
    match d.decide(&mut moved) {
        Decision::Route(o) => assert_eq!(o.tag(), "c"),
        _ => panic!("expected a route"),
    }
    assert_eq!(moved.destination.to_string(), "10.9.9.9:8443");
    // No rule matched: route.final.
    assert_eq!(decide(&d, &BASE), "b");
    // clash_mode is matched case-insensitively against the current mode.
    let direct = dispatcher(
        r#"{"rules": [{"clash_mode": "direct", "outbound": "c"}]}"#,
        "Direct",
    );
    assert_eq!(decide(&direct, &BASE), "c");
    // Without final, the first outbound.
    assert_eq!(decide(&dispatcher(r#"{"rules": []}"#, "Rule"), &BASE), "a");
}

#[test]
fn reject_turns_into_drop_after_fifty_in_thirty_seconds() {
    let d = dispatcher(
        r#"{"rules": [{"port": 1, "action": "reject"}, {"port": 2, "action": "reject", "no_drop": true}]}"#,
        "Rule",
    );
    let answers: Vec<String> = (0..51)
        .map(|_| decide(&d, &F { port: 1, ..BASE }))
        .collect();
    assert!(answers[..50].iter().all(|a| a == "reject"));
    assert_eq!(answers[50], "drop");
    assert!((0..60).all(|_| decide(&d, &F { port: 2, ..BASE }) == "reject"));
}

#[test]
fn fields_sb_cannot_match_yet_are_refused_at_start() {
    for rule in [
        r#"{"package_name": "com.example", "outbound": "a"}"#,
        r#"{"type": "logical", "mode": "or", "rules": [{"wifi_ssid": "x"}], "outbound": "a"}"#,
    ] {
        let config = format!(
            r#"{{"dns": {{"servers": [{{"type": "local", "tag": "dns"}}]}},
                "outbounds": [{{"type": "direct", "tag": "a"}}], "route": {{"rules": [{rule}]}}}}"#
        );
        let loaded = sb_config::load_text("r.json", &config).unwrap();
        let err = router(loaded.config.route.as_ref(), "Rule");
        assert!(err.is_err(), "{rule} was accepted");
    }
}

#[test]
fn sniffed_protocol_and_domain_are_matched() {
    let d = dispatcher(
        r#"{"rules": [{"action": "sniff"}, {"protocol": "tls", "domain_suffix": "sni.test", "outbound": "b"}, {"protocol": "http", "outbound": "c"}]}"#,
        "Rule",
    );
    let mut f = flow(&F {
        dst: "10.0.0.1",
        ..BASE
    });
    match d.decide(&mut f) {
        Decision::Sniff { next, .. } => assert_eq!(next, 1),
        _ => panic!("expected a sniff"),
    }
    f.protocol = Some("tls");
    f.sniffed_domain = Some("www.sni.test".into());
    assert!(matches!(d.decide_from(&mut f, 1), Decision::Route(o) if o.tag() == "b"));
    f.protocol = Some("http");
    f.sniffed_domain = None;
    assert!(matches!(d.decide_from(&mut f, 1), Decision::Route(o) if o.tag() == "c"));
    // Already sniffed: the sniff rule is passed over.
    assert!(matches!(d.decide(&mut f), Decision::Route(o) if o.tag() == "c"));
}

#[test]
fn a_flow_routed_to_an_outbound_without_its_network_fails_like_go() {
    let loaded = sb_config::load_text(
        "router.json",
        r#"{"outbounds": [{"type": "direct", "tag": "tcp-only"}],
            "route": {"rules": [{"network": "udp", "outbound": "tcp-only"}]}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let router = router(loaded.config.route.as_ref(), "Rule").unwrap();
    let o: Arc<dyn Outbound> = Arc::new(Tagged("tcp-only"));
    let outbounds = HashMap::from([("tcp-only".to_string(), o.clone())]);
    let d = Dispatcher::new(router, outbounds, o);
    let udp = F {
        network: Network::Udp,
        ..BASE
    };
    assert_eq!(
        decide(&d, &udp),
        "fail: udp is not supported by outbound: tcp-only"
    );
    assert_eq!(decide(&d, &BASE), "tcp-only");
}

#[test]
fn resolve_stops_for_domains_and_its_addresses_feed_later_rules() {
    let route = r#"{"rules": [{"action": "resolve", "strategy": "ipv4_only"},
                              {"ip_cidr": "127.0.0.0/8", "outbound": "b"}],
                    "final": "c"}"#;
    let d = dispatcher(route, "Rule");
    // A domain stops at the resolve action; an IP destination skips it.
    assert_eq!(decide(&d, &BASE), "resolve, then from 1");
    let ip = F {
        dst: "127.0.0.1",
        ..BASE
    };
    assert_eq!(decide(&d, &ip), "b");
    // After the lookup, the addresses match the ip_cidr rule.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut f = flow(&F {
        dst: "localhost",
        ..BASE
    });
    rt.block_on(d.resolve(&mut f, sb_config::types::DomainStrategy::Ipv4Only, ""))
        .unwrap();
    assert!(f.resolved.iter().all(|ip| ip.is_loopback() && ip.is_ipv4()));
    assert!(matches!(d.decide_from(&mut f, 1), Decision::Route(o) if o.tag() == "b"));
    // A name that does not resolve fails the flow with the lookup error.
    let mut bad = flow(&F {
        dst: "no-such-host.invalid",
        ..BASE
    });
    let e = rt
        .block_on(d.resolve(&mut bad, sb_config::types::DomainStrategy::AsIs, ""))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("lookup no-such-host.invalid"), "{e}");
}

const CURL: F = F {
    process: Some((1000, Some("alice"), Some("/usr/bin/curl"))),
    ..BASE
};

#[test]
fn process_and_user_fields() {
    check(
        r#"{"rules": [
            {"process_name": ["wget", "curl"], "port": 443, "outbound": "b"},
            {"process_path": "/opt/app/bin/app", "outbound": "c"},
            {"process_path_regex": "^/usr/local/", "outbound": "b"},
            {"user": "bob", "outbound": "c"},
            {"user_id": [0, 33], "outbound": "b"},
            {"process_name": "curl", "invert": true, "outbound": "c"}
        ]}"#,
        &[
            (CURL, "b"),
            // Other fields of the rule still count.
            (F { port: 80, ..CURL }, "a"),
            (
                F {
                    process: Some((1000, None, Some("/opt/app/bin/app"))),
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    process: Some((1000, None, Some("/usr/local/bin/tool"))),
                    ..BASE
                },
                "b",
            ),
            (
                F {
                    process: Some((1001, Some("bob"), Some("/bin/nc"))),
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    process: Some((33, Some("www-data"), Some("/bin/nc"))),
                    ..BASE
                },
                "b",
            ),
            // Found the socket's user but not its process (no path): user fields still match.
            (
                F {
                    process: Some((1001, Some("bob"), None)),
                    ..BASE
                },
                "c",
            ),
            (
                F {
                    process: Some((0, None, None)),
                    ..BASE
                },
                "b",
            ),
            // An inverted rule matches any other process, and a flow with no process at all.
            (
                F {
                    process: Some((1000, Some("alice"), Some("/bin/nc"))),
                    ..BASE
                },
                "c",
            ),
            (BASE, "c"),
        ],
    );
    // No process: no process field matches.
    check(
        r#"{"rules": [
            {"process_name": "curl", "outbound": "b"},
            {"process_path_regex": ".*", "outbound": "b"},
            {"user": "alice", "outbound": "b"},
            {"user_id": 1000, "outbound": "b"}
        ]}"#,
        &[(BASE, "a"), (CURL, "b")],
    );
    // In logical rules and rule sets.
    check(
        r#"{"rules": [
            {"type": "logical", "mode": "and", "rules": [{"user_id": 1000}, {"process_name": "curl", "invert": true}], "outbound": "b"},
            {"rule_set": "apps", "outbound": "c"}
        ],
        "rule_set": [{"tag": "apps", "rules": [{"process_path": "/usr/bin/curl"}]}]}"#,
        &[
            (CURL, "c"),
            (
                F {
                    process: Some((1000, None, Some("/bin/nc"))),
                    ..BASE
                },
                "b",
            ),
            (BASE, "a"),
        ],
    );
}

#[test]
fn the_process_is_looked_up_only_when_needed() {
    let needs = |route: &str| {
        let config =
            format!(r#"{{"outbounds": [{{"type": "direct", "tag": "a"}}], "route": {route}}}"#);
        let loaded = sb_config::load_text("r.json", &config).unwrap_or_else(|e| panic!("{e}"));
        router(loaded.config.route.as_ref(), "Rule")
            .unwrap()
            .needs_process()
    };
    assert!(!needs(r#"{"rules": [{"port": 1, "outbound": "a"}]}"#));
    assert!(!needs(r#"{}"#));
    assert!(needs(r#"{"find_process": true}"#));
    assert!(needs(r#"{"rules": [{"user_id": 0, "outbound": "a"}]}"#));
    assert!(needs(r#"{"rules": [{"user": "root", "outbound": "a"}]}"#));
    assert!(needs(
        r#"{"rules": [{"type": "logical", "mode": "or", "rules": [{"port": 1}, {"process_path_regex": "x"}], "outbound": "a"}]}"#
    ));
    // A rule set with a process rule, referenced or not (as in Go).
    assert!(needs(
        r#"{"rule_set": [{"tag": "s", "rules": [{"process_name": "curl"}]}]}"#
    ));
    assert!(needs(
        r#"{"rules": [{"rule_set": "s", "outbound": "a"}], "rule_set": [{"tag": "s", "rules": [{"type": "logical", "mode": "and", "rules": [{"process_path": "/x"}]}]}]}"#
    ));
}

#[test]
fn inbound_rules_never_match_sbs_own_flows_even_under_an_inbound_tag() {
    let d = dispatcher(
        r#"{"rules": [{"inbound": "in-a", "outbound": "b"},
                      {"inbound": "in-b", "invert": true, "outbound": "c"}]}"#,
        "Rule",
    );
    // An internal flow labelled like a configured inbound is still nobody's inbound.
    let mut own = FlowContext::internal("in-a", Network::Tcp, Destination::from_host("a.test", 80));
    assert!(matches!(d.decide(&mut own), Decision::Route(o) if o.tag() == "c"));
    assert_eq!(decide(&d, &BASE), "b");
}

/// `network: icmp` (Go 1.13+) matches pings, which are routed like flows; a ping goes to
/// the chosen outbound even if it carries only TCP (its `ping` says whether it carries ICMP).
#[test]
fn icmp_rules_match_pings() {
    check(
        r#"{"rules": [{"network": "icmp", "outbound": "b"}], "final": "a"}"#,
        &[
            (
                F {
                    network: Network::Icmp,
                    dst: "192.0.2.1",
                    port: 0,
                    ..BASE
                },
                "b",
            ),
            (BASE, "a"),
        ],
    );
}
