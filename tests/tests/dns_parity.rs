//! sb's DNS module against real servers and against Go sing-box 1.14.4 on the same configs:
//! the 25-query parity corpus through `udp` and `tcp` servers (dnsmasq) and `tls` and
//! `https` servers (unbound with a self-made CA) gives sb's answers equal to Go's; the Go
//! behaviours scenario (`sb_tests::dns::behaviours`: TTLs, cache, strategy, reject,
//! predefined, rules, rewrite_ttl) passes against sb; a server with `detour` sends its queries
//! through a SOCKS proxy, and the upstream sees them come from the proxy.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::dns::{
    self, behaviours, go, parity_zone, query_tcp, query_udp, Dnsmasq, GoDns, RecordType, Unbound,
    PARITY_QUERIES,
};
use sb_tests::{GoSingBox, Instance};
use std::net::SocketAddr;
use std::time::Duration;

fn peers() -> bool {
    match dns::unavailable() {
        Some(why) => {
            sb_tests::skip(&why);
            false
        }
        None => true,
    }
}

/// sb running the same full config Go gets (`go::config`); its inbound takes UDP and TCP on
/// one port.
fn sb(dns: &str) -> Instance {
    Instance::start(&go::config(dns))
}

#[test]
fn sb_dns_behaviours_match_go() {
    if !peers() {
        return;
    }
    let up = behaviours::upstreams();
    let sb = sb(&behaviours::config(&up));
    behaviours::check("sb", sb.addr(0), sb.addr(0), &up);
}

/// Every corpus query over UDP and TCP: sb's answer has the same shape as Go's.
fn same_as_go(what: &str, dns_config: &str) {
    let sb = sb(dns_config);
    let Some(go) = GoDns::start(dns_config) else {
        return;
    };
    for q in PARITY_QUERIES {
        let theirs = query_udp(go.udp, q.name, q.qtype)
            .unwrap_or_else(|e| panic!("Go {what}: {} {}: {e}", q.name, q.qtype));
        for (net, ours) in [
            ("udp", query_udp(sb.addr(0), q.name, q.qtype)),
            ("tcp", query_tcp(sb.addr(0), q.name, q.qtype)),
        ] {
            let ours = ours
                .unwrap_or_else(|e| panic!("sb {what} over {net}: {} {}: {e}", q.name, q.qtype));
            assert_eq!(
                ours.shape(),
                theirs.shape(),
                "sb {what} over {net} vs Go: {} {}",
                q.name,
                q.qtype
            );
        }
    }
}

#[test]
fn udp_server_answers_like_go_and_dnsmasq() {
    if !peers() {
        return;
    }
    let up = Dnsmasq::start(&parity_zone());
    let server = behaviours::udp_server("up", up.addr);
    same_as_go("udp", &format!(r#"{{"servers": [{server}]}}"#));
    // And the corpus's own expectations (dnsmasq's direct answers).
    let sb = sb(&format!(r#"{{"servers": [{server}]}}"#));
    for q in PARITY_QUERIES {
        let got = query_udp(sb.addr(0), q.name, q.qtype).unwrap();
        let want: Vec<String> = q.answers.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            got.shape(),
            (q.rcode.to_string(), want),
            "{} {}",
            q.name,
            q.qtype
        );
    }
}

#[test]
fn tcp_tls_and_https_servers_answer_like_go() {
    if !peers() {
        return;
    }
    let up = Unbound::start(&parity_zone());
    for (what, server) in up.server_entries() {
        same_as_go(what, &format!(r#"{{"servers": [{server}]}}"#));
    }
}

#[test]
fn a_wrong_certificate_name_fails_the_query_not_sb() {
    if !peers() {
        return;
    }
    let up = Unbound::start(&parity_zone());
    let sb = sb(&format!(
        r#"{{"servers": [{{"type": "tls", "tag": "up", "server": "127.0.0.1", "server_port": {},
             "tls": {{"enabled": true, "server_name": "not-the-name.test", "certificate_path": "{}"}}}}]}}"#,
        up.tls.port(),
        up.ca.ca_path.display()
    ));
    let got = query_udp(sb.addr(0), "a.test", RecordType::A).unwrap();
    assert_eq!(got.rcode, "SERVFAIL");
    // The instance keeps serving: the next query fails the same way, it does not hang.
    let again = query_udp(sb.addr(0), "a.test", RecordType::A).unwrap();
    assert_eq!(again.rcode, "SERVFAIL");
}

#[test]
fn prefer_ipv6_orders_lookups_and_ipv4_only_filters_them() {
    if !peers() {
        return;
    }
    let up = Dnsmasq::start(&parity_zone());
    let sb = sb(&format!(
        r#"{{"servers": [{}], "strategy": "prefer_ipv6"}}"#,
        behaviours::udp_server("up", up.addr)
    ));
    let dns = sb.dispatcher.dns().unwrap().clone();
    let lookup = |strategy| {
        sb.rt
            .block_on(dns.lookup_for(
                &sb_core::dns::client::own_flow("both.test"),
                "both.test",
                strategy,
                None,
            ))
            .unwrap()
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
    };
    use sb_config::types::DomainStrategy;
    assert_eq!(lookup(DomainStrategy::AsIs), vec!["fd00::2", "10.0.0.2"]);
    assert_eq!(
        lookup(DomainStrategy::PreferIpv4),
        vec!["10.0.0.2", "fd00::2"]
    );
    assert_eq!(lookup(DomainStrategy::Ipv4Only), vec!["10.0.0.2"]);
}

/// Go's mixed inbound as the SOCKS proxy, its direct outbound leaving from 127.0.0.2, so the
/// upstream's query log tells the proxy's queries from sb's own.
fn socks_proxy() -> Option<GoSingBox> {
    GoSingBox::start(
        r#"{"log": {"level": "info"},
            "inbounds": [{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "d", "inet4_bind_address": "127.0.0.2"}]}"#,
        1,
    )
}

#[test]
fn detour_sends_queries_through_the_socks_proxy() {
    if !peers() {
        return;
    }
    let up = Dnsmasq::start(&parity_zone());
    let Some(proxy) = socks_proxy() else { return };
    let p: SocketAddr = proxy.listening[0];
    for (net, name) in [("tcp", "a.test"), ("udp", "both.test")] {
        let config = format!(
            r#"{{"log": {{"disabled": true}},
                "dns": {{"servers": [{{"type": "{net}", "tag": "up", "server": "127.0.0.1",
                                        "server_port": {}, "detour": "proxy"}}]}},
                "inbounds": [{{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": 0}}],
                "outbounds": [{{"type": "direct", "tag": "direct"}},
                              {{"type": "socks", "tag": "proxy", "server": "127.0.0.1", "server_port": {}}}],
                "route": {{"rules": [{{"inbound": "dns-in", "action": "hijack-dns"}}]}}}}"#,
            up.addr.port(),
            p.port()
        );
        let sb = Instance::start(&config);
        let got = query_udp(sb.addr(0), name, RecordType::A).unwrap();
        assert_eq!(got.rcode, "NOERROR", "{net}: {got:?}");
        let seen = up
            .wait_query(name, "A", Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{net}: dnsmasq never saw {name}: {:?}", up.queries()));
        assert_eq!(
            seen.from.to_string(),
            "127.0.0.2",
            "{net}: the query must arrive from the SOCKS proxy's address"
        );
    }
}

#[test]
fn concurrent_identical_queries_reach_the_server_once() {
    if !peers() {
        return;
    }
    let up = Dnsmasq::start(&parity_zone());
    let sb = sb(&format!(
        r#"{{"servers": [{}]}}"#,
        behaviours::udp_server("up", up.addr)
    ));
    let at = sb.addr(0);
    let askers: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || query_udp(at, "multi.test", RecordType::A)))
        .collect();
    for a in askers {
        let got = a.join().unwrap().unwrap();
        assert_eq!(got.records.len(), 3, "{got:?}");
    }
    up.wait_query("multi.test", "A", Duration::from_secs(5))
        .unwrap();
    let asked = up
        .queries()
        .iter()
        .filter(|q| q.name == "multi.test")
        .count();
    assert_eq!(asked, 1, "{:?}", up.queries());
}

#[test]
fn reverse_mapping_lets_ip_flows_match_domain_rules() {
    if !peers() {
        return;
    }
    let origin = sb_tests::hello_origin();
    let config = format!(
        r#"{{"log": {{"disabled": true}},
            "dns": {{"servers": [{{"type": "hosts", "tag": "h", "predefined": {{"named.test": "{ip}"}}}}],
                     "reverse_mapping": true}},
            "inbounds": [{{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": 0}},
                         {{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": 0}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"rules": [{{"inbound": "dns-in", "action": "hijack-dns"}},
                                 {{"domain": "named.test", "action": "reject"}}]}}}}"#,
        ip = origin.ip()
    );
    let sb = Instance::start(&config);
    // `socks5://` (not `socks5h`): curl sends the address, never the name.
    let proxy = format!("socks5://{}", sb.addr(1));
    let url = format!("http://{}/x", origin);
    // Before any answer named the address, the flow is just an IP and goes through.
    assert_eq!(
        sb_tests::curl(&["--proxy", &proxy, &url]).body,
        "hello from origin /x"
    );
    let got = query_udp(sb.addr(0), "named.test", RecordType::A).unwrap();
    assert_eq!(got.records, vec![format!("named.test. A {}", origin.ip())]);
    // Now the address carries the name, and the domain rule rejects it.
    let after = sb_tests::curl(&["--proxy", &proxy, &url]);
    assert_ne!(after.code, 0, "rejected by the domain rule: {}", after.body);
}
