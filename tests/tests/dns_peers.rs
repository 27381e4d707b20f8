//! The DNS test peers themselves, proven against each other: dnsmasq answers the hickory
//! client and dig alike and logs who asked; unbound answers over plain DNS, DoT and DoH with its
//! self-made CA; Go sing-box 1.14.4 with `udp`, `tcp`, `tls` and `https` servers answers the
//! parity corpus through its hijacked `direct` inbound exactly as dnsmasq does directly. The
//! observed Go behaviours written in `sb_tests::dns`'s docs are pinned here.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::dns::{
    self, behaviours, dig, dig_with, parity_zone, query_tcp, query_tls, query_udp, DigTransport,
    Dnsmasq, GoDns, RecordType, Unbound, Zone, DOH_PATH, PARITY_QUERIES,
};
use std::net::{Ipv4Addr, SocketAddr};
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

/// Every parity query answered by `server` (UDP and TCP) has dnsmasq's expected shape.
fn assert_corpus(server_udp: SocketAddr, server_tcp: SocketAddr, who: &str) {
    for q in PARITY_QUERIES {
        for (net, got) in [
            ("udp", query_udp(server_udp, q.name, q.qtype)),
            ("tcp", query_tcp(server_tcp, q.name, q.qtype)),
        ] {
            let got = got.unwrap_or_else(|e| panic!("{who} {net} {} {}: {e}", q.name, q.qtype));
            assert_eq!(
                got.shape(),
                (
                    q.rcode.to_string(),
                    q.answers.iter().map(|s| s.to_string()).collect()
                ),
                "{who} over {net}: {} {}",
                q.name,
                q.qtype
            );
        }
    }
}

#[test]
fn dnsmasq_answers_the_parity_corpus_and_logs_the_client() {
    if !peers() {
        return;
    }
    assert!(PARITY_QUERIES.len() >= 20, "the corpus has 20+ queries");
    let server = Dnsmasq::start(&parity_zone());
    assert_corpus(server.addr, server.addr, "dnsmasq");
    let a = query_udp(server.addr, "a.test", RecordType::A).unwrap();
    assert_eq!(a.ttls, vec![dns::parity::PARITY_TTL]);

    // dig (another client) sees the same records, over UDP and TCP.
    for tcp in [false, true] {
        let d = dig(server.addr.ip(), server.addr.port(), "chain.test", "A", tcp);
        assert_eq!(d.rcode.as_deref(), Some("NOERROR"), "{}", d.output);
        let direct = query_udp(server.addr, "chain.test", RecordType::A).unwrap();
        assert_eq!(d.records, direct.records, "{}", d.output);
        let txt = dig(server.addr.ip(), server.addr.port(), "txt.test", "TXT", tcp);
        assert_eq!(
            txt.records,
            vec!["txt.test. TXT \"hello world\" \"second\""]
        );
    }
    let short = dns::dig_short(
        server.addr.ip(),
        server.addr.port(),
        "multi.test",
        "A",
        false,
    );
    assert_eq!(short.len(), 3, "{short:?}");
    let nx = dig(
        server.addr.ip(),
        server.addr.port(),
        "nope.test",
        "A",
        false,
    );
    assert_eq!(nx.rcode.as_deref(), Some("NXDOMAIN"));

    // The query log names the client's address: a client bound to 127.0.0.2 is seen as such.
    let sock = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let (id, bytes) = dns::client::query_bytes("who-asks.test", RecordType::TXT).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&bytes, server.addr).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(
        dns::client::parse_response(id, &buf[..n]).unwrap().rcode,
        "NXDOMAIN"
    );
    let logged = server
        .wait_query("who-asks.test", "TXT", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("not logged: {:?}", server.queries()));
    assert_eq!(
        logged.from,
        "127.0.0.2".parse::<std::net::IpAddr>().unwrap()
    );
    let tcp_logged = server
        .wait_query("chain.test", "A", Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        tcp_logged.from,
        "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
}

#[test]
fn dnsmasq_log_lines_parse() {
    let line =
        "Nov 22 05:26:32 dnsmasq[13751]: 3 127.0.0.2/43831 query[AAAA] a.test from 127.0.0.2";
    let q = dns::dnsmasq::parse_query_line(line).unwrap();
    assert_eq!((q.qtype.as_str(), q.name.as_str()), ("AAAA", "a.test"));
    assert_eq!(q.from, "127.0.0.2".parse::<std::net::IpAddr>().unwrap());
    assert!(dns::dnsmasq::parse_query_line(
        "Nov 22 05:26:32 dnsmasq[13751]: 3 127.0.0.2/43831 config a.test is NXDOMAIN"
    )
    .is_none());
    assert!(dns::dnsmasq::parse_query_line("query[A] x from not-an-ip").is_none());
}

#[test]
fn unbound_answers_over_plain_tls_and_https() {
    if !peers() {
        return;
    }
    let zone = Zone::new("test")
        .a("a.test", Ipv4Addr::new(10, 0, 0, 1))
        .txt("txt.test", &["hello world"]);
    let server = Unbound::start(&zone);
    let name = server.ca.server_name.clone();
    assert_eq!(name, dns::SERVER_NAME);
    assert!(server.ca.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));

    let plain = query_udp(server.plain, "a.test", RecordType::A).unwrap();
    assert_eq!(
        plain.shape(),
        ("NOERROR".into(), vec!["a.test. A 10.0.0.1".into()])
    );
    assert_eq!(plain.ttls, vec![300]);
    let tcp = query_tcp(server.plain, "nope.test", RecordType::A).unwrap();
    assert_eq!(tcp.rcode, "NXDOMAIN");

    // DoT: the hickory client over rustls trusting only the test CA, and dig +tls.
    let tls = query_tls(
        server.tls,
        &name,
        &server.ca.ca_der,
        "txt.test",
        RecordType::TXT,
    )
    .unwrap();
    assert_eq!(tls.records, vec!["txt.test. TXT \"hello world\""]);
    let ca = server.ca.ca_path.as_path();
    let d = dig_with(
        server.tls.ip(),
        server.tls.port(),
        "a.test",
        "A",
        DigTransport::Tls {
            ca,
            hostname: &name,
        },
    );
    assert_eq!(d.records, vec!["a.test. A 10.0.0.1"], "{}", d.output);
    // The certificate is checked: another name is refused.
    assert!(query_tls(
        server.tls,
        "other.test",
        &server.ca.ca_der,
        "a.test",
        RecordType::A
    )
    .is_err());

    // DoH (HTTP/2) with dig +https.
    let d = dig_with(
        server.https.ip(),
        server.https.port(),
        "a.test",
        "A",
        DigTransport::Https {
            ca,
            hostname: &name,
            path: DOH_PATH,
        },
    );
    assert_eq!(d.rcode.as_deref(), Some("NOERROR"), "{}", d.output);
    assert_eq!(d.records, vec!["a.test. A 10.0.0.1"], "{}", d.output);
    let d = dig_with(
        server.https.ip(),
        server.https.port(),
        "nope.test",
        "A",
        DigTransport::Https {
            ca,
            hostname: &name,
            path: DOH_PATH,
        },
    );
    assert_eq!(d.rcode.as_deref(), Some("NXDOMAIN"), "{}", d.output);
}

/// What unbound answers for a parity query: dnsmasq's answer, except that unbound does not
/// chase CNAMEs inside its local data, so a chain answers its first CNAME alone.
fn unbound_expected(q: &dns::ParityQuery) -> (String, Vec<String>) {
    let mut answers: Vec<String> = q.answers.iter().map(|s| s.to_string()).collect();
    if q.qtype != RecordType::CNAME && answers.iter().any(|a| a.contains(" CNAME ")) {
        let owner = format!("{}. ", q.name);
        answers.retain(|a| a.starts_with(&owner));
    }
    (q.rcode.to_string(), answers)
}

#[test]
fn go_udp_server_answers_the_parity_corpus_like_dnsmasq() {
    if !peers() {
        return;
    }
    let server = Dnsmasq::start(&parity_zone());
    let Some(go) = GoDns::start(&format!(
        r#"{{"servers": [{}]}}"#,
        behaviours::udp_server("dm", server.addr)
    )) else {
        return;
    };
    assert_corpus(go.udp, go.tcp, "Go (udp server)");
    // dig through Go agrees too.
    let d = dig(go.udp.ip(), go.udp.port(), "alias.test", "A", false);
    assert_eq!(
        d.records,
        vec!["a.test. A 10.0.0.1", "alias.test. CNAME a.test."],
        "{}",
        d.output
    );
    let d = dig(go.tcp.ip(), go.tcp.port(), "nope.test", "A", true);
    assert_eq!(d.rcode.as_deref(), Some("NXDOMAIN"), "{}", d.output);
    assert!(go.go.logged("=> hijack-dns"));
}

#[test]
fn go_tcp_tls_and_https_servers_answer_like_the_upstream() {
    if !peers() {
        return;
    }
    let zone = parity_zone();
    let up = Unbound::start(&zone);
    // The GET variant is sb-side only (dns_parity); Go is checked with POST.
    for (what, server) in up
        .server_entries()
        .into_iter()
        .filter(|(what, _)| *what != "https GET")
    {
        let Some(go) = GoDns::start(&format!(r#"{{"servers": [{server}]}}"#)) else {
            return;
        };
        for q in PARITY_QUERIES {
            let direct = query_udp(up.plain, q.name, q.qtype).unwrap();
            assert_eq!(
                direct.shape(),
                unbound_expected(q),
                "unbound: {} {}",
                q.name,
                q.qtype
            );
            let through = query_udp(go.udp, q.name, q.qtype)
                .unwrap_or_else(|e| panic!("Go {what}: {} {}: {e}", q.name, q.qtype));
            assert_eq!(
                through.shape(),
                direct.shape(),
                "Go {what}: {} {}",
                q.name,
                q.qtype
            );
        }
    }
}

/// The Go behaviours written down in `sb_tests::dns`'s docs, pinned against the real binary
/// (the same scenario runs against sb in `tests/tests/dns_parity.rs`): TTLs, the cache,
/// `strategy: ipv4_only`, `reject`, `predefined`, `rewrite_ttl` and DNS rules choosing a
/// server.
#[test]
fn go_dns_behaviours_sb_must_match() {
    if !peers() {
        return;
    }
    let up = behaviours::upstreams();
    let Some(go) = GoDns::start(&behaviours::config(&up)) else {
        return;
    };
    behaviours::check("Go", go.udp, go.tcp, &up);
    assert!(go.go.logged("dns: strategy rejected"));
}
