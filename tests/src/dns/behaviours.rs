//! The DNS behaviours of Go sing-box 1.14.4 that sb must match, as one scenario run against
//! either implementation: the caller starts Go or sb with [`config`]'s `dns` section behind a
//! hijacked `direct` inbound, and [`check`] asks it the same questions. What each assertion
//! pins is written in [`super`]'s docs.

// Test support: a failed unwrap is a failed check, the scenario's assertions say which.
#![allow(clippy::unwrap_used)]

use super::{dig, parity_zone, query_tcp, query_udp, Dnsmasq, RecordType, Zone};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The two upstreams of the scenario: `main` serves the parity zone, `corp` only
/// `x.corp.test` (TTL 60).
pub struct Upstreams {
    /// The default server's dnsmasq.
    pub main: Dnsmasq,
    /// The `*.corp.test` server's dnsmasq.
    pub corp: Dnsmasq,
}

/// Starts both upstreams.
pub fn upstreams() -> Upstreams {
    let main = Dnsmasq::start(&parity_zone());
    let mut corp_zone = Zone::new("test").a("x.corp.test", Ipv4Addr::new(10, 2, 0, 1));
    corp_zone.ttl = 60;
    let corp = Dnsmasq::start(&corp_zone);
    Upstreams { main, corp }
}

/// A `udp` server entry.
pub fn udp_server(tag: &str, addr: SocketAddr) -> String {
    format!(
        r#"{{"type": "udp", "tag": "{tag}", "server": "{}", "server_port": {}}}"#,
        addr.ip(),
        addr.port()
    )
}

/// The scenario's `dns` section.
pub fn config(up: &Upstreams) -> String {
    format!(
        r#"{{"servers": [{}, {}],
            "rules": [
              {{"domain": "rej.test", "action": "reject"}},
              {{"domain": "drop.test", "action": "reject", "method": "drop"}},
              {{"domain": "pre.test", "action": "predefined", "rcode": "NOERROR",
                "answer": ["pre.test. IN A 10.9.9.9"]}},
              {{"domain": "prenx.test", "action": "predefined", "rcode": "NXDOMAIN"}},
              {{"domain_suffix": "corp.test", "server": "corp"}},
              {{"domain": "alias.test", "server": "main", "rewrite_ttl": 7}}],
            "final": "main", "strategy": "ipv4_only"}}"#,
        udp_server("main", up.main.addr),
        udp_server("corp", up.corp.addr)
    )
}

/// Asks the implementation listening on `udp`/`tcp` (named `who` in failures) the scenario's
/// questions; `up` are the upstreams its [`config`] points at, fresh for this run.
pub fn check(who: &str, udp: SocketAddr, tcp: SocketAddr, up: &Upstreams) {
    let (main, corp) = (&up.main, &up.corp);
    let count = |server: &Dnsmasq, name: &str| {
        server
            .queries()
            .iter()
            .filter(|q| q.name.eq_ignore_ascii_case(name))
            .count()
    };

    // The upstream's TTL is passed through; a repeated plain query is answered from the cache
    // (the upstream is asked once) with a TTL that never grows.
    let first = query_udp(udp, "both.test", RecordType::A).unwrap();
    assert_eq!(first.ttls, vec![super::parity::PARITY_TTL], "{who}");
    let again = query_udp(udp, "both.test", RecordType::A).unwrap();
    assert_eq!(again.records, first.records);
    assert!(again.ttls[0] <= super::parity::PARITY_TTL);
    main.wait_query("both.test", "A", Duration::from_secs(5))
        .unwrap();
    assert_eq!(count(main, "both.test"), 1, "{:?}", main.queries());
    // A query carrying an EDNS option (dig sends a COOKIE) is not a "simple request": Go
    // skips its cache and asks the upstream every time.
    let before = count(main, "multi.test");
    for _ in 0..2 {
        let d = dig(udp.ip(), udp.port(), "multi.test", "A", false);
        assert_eq!(d.records.len(), 3, "{}", d.output);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count(main, "multi.test") < before + 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        count(main, "multi.test"),
        before + 2,
        "{who}: {:?}",
        main.queries()
    );

    // strategy ipv4_only: AAAA is answered NOERROR with no records and never sent upstream.
    let aaaa = query_udp(udp, "both.test", RecordType::AAAA).unwrap();
    assert_eq!(aaaa.shape(), ("NOERROR".into(), vec![]));
    assert!(aaaa.message.metadata.authoritative && aaaa.message.edns.is_none());
    assert!(
        main.queries().iter().all(|q| q.qtype != "AAAA"),
        "{who}: {:?}",
        main.queries()
    );

    // reject: REFUSED with a bare header (only QR; no RD/RA/AA, no EDNS), on UDP and TCP.
    for got in [
        query_udp(udp, "rej.test", RecordType::A).unwrap(),
        query_tcp(tcp, "rej.test", RecordType::AAAA).unwrap(),
    ] {
        assert_eq!(got.shape(), ("REFUSED".into(), vec![]));
        let m = &got.message.metadata;
        assert!(!m.recursion_desired && !m.recursion_available && !m.authoritative);
        assert!(got.message.edns.is_none());
    }
    // reject with method drop: no answer at all.
    let dropped = super::client::query_udp_timeout(
        udp,
        "drop.test",
        RecordType::A,
        Duration::from_millis(1500),
    );
    assert!(dropped.is_err(), "drop answered: {dropped:?}");

    // predefined: the given records whatever the query type, TTL 3600 when the text has none,
    // AA set, no EDNS; the given rcode.
    for qtype in [RecordType::A, RecordType::AAAA] {
        let pre = query_udp(udp, "pre.test", qtype).unwrap();
        assert_eq!(
            pre.shape(),
            ("NOERROR".into(), vec!["pre.test. A 10.9.9.9".into()])
        );
        assert_eq!(pre.ttls, vec![3600]);
        assert!(pre.message.metadata.authoritative && pre.message.edns.is_none());
    }
    let nx = query_udp(udp, "prenx.test", RecordType::A).unwrap();
    assert_eq!(nx.shape(), ("NXDOMAIN".into(), vec![]));

    // Rules: *.corp.test goes to the corp server only.
    let x = query_udp(udp, "x.corp.test", RecordType::A).unwrap();
    assert_eq!(
        x.shape(),
        ("NOERROR".into(), vec!["x.corp.test. A 10.2.0.1".into()])
    );
    assert_eq!(x.ttls, vec![60]);
    assert!(corp
        .wait_query("x.corp.test", "A", Duration::from_secs(5))
        .is_some());
    assert_eq!(count(main, "x.corp.test"), 0);

    // rewrite_ttl on a route rule sets every record's TTL.
    let alias = query_udp(udp, "alias.test", RecordType::A).unwrap();
    assert_eq!(
        alias.records,
        vec!["a.test. A 10.0.0.1", "alias.test. CNAME a.test."]
    );
    assert_eq!(alias.ttls, vec![7, 7]);
}
