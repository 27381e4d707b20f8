//! The DNS module end to end, with the real `dig` as the client: `hijack-dns` on a `direct`
//! inbound answers over UDP and TCP from `hosts`, `predefined` and `reject` rules; FakeIP
//! addresses lead a proxied connection to the real domain (the next proxy sees the domain,
//! not the address), an address nobody was given is refused; the FakeIP mapping and the
//! selector's choice survive a restart with `experimental.cache_file`.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::{curl, hello_origin, Instance};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// `dig` against `server`: `(status, answers)` with answers as `name type data`, TTLs left
/// out. Bounded: 2 s, one try.
fn dig(server: SocketAddr, name: &str, qtype: &str, tcp: bool) -> (String, Vec<String>) {
    let mut cmd = Command::new("dig");
    cmd.args([
        &format!("@{}", server.ip()),
        "-p",
        &server.port().to_string(),
        name,
        qtype,
        "+time=2",
        "+tries=1",
        "+noall",
        "+comments",
        "+answer",
    ]);
    if tcp {
        cmd.arg("+tcp");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("dig must be installed (scripts/install-test-deps.sh): {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_else(|| "no answer".into());
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // name TTL class type data...
            format!("{} {} {}", f[0], f[3], f[4..].join(" "))
        })
        .collect();
    (status, answers)
}

/// A config whose first inbound is a `direct` one hijacked to DNS; `inbounds` and `top`
/// add inbounds and top-level sections.
fn hijack_config(extra_servers: &str, rules: &str, inbounds: &str, top: &str) -> String {
    format!(
        r#"{{"log": {{"disabled": true}},
            "dns": {{"servers": [{{"type": "hosts", "tag": "h",
                                   "predefined": {{"a.test": ["10.1.1.1", "fd00::1"], "b.fake.test": "127.0.0.1"}}}}{extra_servers}],
                     "rules": [{rules}]}},
            "inbounds": [{{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": 0}}{inbounds}],
            {top}
            "route": {{"default_domain_resolver": "h",
                      "rules": [{{"inbound": "dns-in", "action": "hijack-dns"}}]}}}}"#
    )
}

#[test]
fn hijack_answers_hosts_predefined_and_reject_over_udp_and_tcp() {
    let sb = Instance::start(&hijack_config(
        "",
        r#"{"domain_suffix": "corp.test", "action": "predefined", "answer": ["x.corp.test. 60 IN A 10.9.9.9"]},
           {"domain": "bad.test", "action": "reject"},
           {"domain": "gone.test", "action": "predefined", "rcode": "NXDOMAIN"}"#,
        "",
        "",
    ));
    let at = sb.addr(0);
    for tcp in [false, true] {
        assert_eq!(
            dig(at, "a.test", "A", tcp),
            ("NOERROR".into(), vec!["a.test. A 10.1.1.1".into()])
        );
        assert_eq!(
            dig(at, "A.Test", "AAAA", tcp),
            ("NOERROR".into(), vec!["A.Test. AAAA fd00::1".into()])
        );
        assert_eq!(
            dig(at, "x.corp.test", "A", tcp),
            ("NOERROR".into(), vec!["x.corp.test. A 10.9.9.9".into()])
        );
        assert_eq!(dig(at, "bad.test", "A", tcp).0, "REFUSED");
        assert_eq!(dig(at, "gone.test", "A", tcp).0, "NXDOMAIN");
        assert_eq!(dig(at, "nothere.test", "A", tcp).0, "NXDOMAIN");
    }
}

#[test]
fn drop_rule_sends_no_answer() {
    let sb = Instance::start(&hijack_config(
        "",
        r#"{"domain": "quiet.test", "action": "reject", "method": "drop"}"#,
        "",
        "",
    ));
    assert_eq!(dig(sb.addr(0), "quiet.test", "A", false).0, "no answer");
    assert_eq!(dig(sb.addr(0), "a.test", "A", false).0, "NOERROR");
}

/// A second sb as "the next proxy": a socks inbound whose tracker shows what destination
/// each flow asked for; it resolves `b.fake.test` to the origin with its own hosts server.
fn next_proxy(origin: SocketAddr) -> Instance {
    Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "dns": {{"servers": [{{"type": "hosts", "tag": "h", "predefined": {{"b.fake.test": "{}"}}}}]}},
            "inbounds": [{{"type": "socks", "tag": "s", "listen": "127.0.0.1", "listen_port": 0}}],
            "outbounds": [{{"type": "direct", "tag": "out"}}]}}"#,
        origin.ip()
    ))
}

fn fakeip_config(upstream: SocketAddr, cache: &str) -> String {
    hijack_config(
        r#", {"type": "fakeip", "tag": "f", "inet4_range": "198.18.0.0/15", "inet6_range": "fc00::/18"}"#,
        r#"{"inbound": "dns-in", "domain_suffix": "fake.test", "server": "f"}"#,
        r#", {"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": 0}"#,
        &format!(
            r#""outbounds": [{{"type": "socks", "tag": "next", "server": "127.0.0.1", "server_port": {}}},
                          {{"type": "selector", "tag": "pick", "outbounds": ["next", "direct"]}},
                          {{"type": "direct", "tag": "direct"}}],
            "experimental": {{"cache_file": {{"enabled": {}, "path": "{cache}", "store_fakeip": true}}}},"#,
            upstream.port(),
            !cache.is_empty()
        ),
    )
}

/// The destinations the next proxy's flows asked for.
fn seen(next: &Instance) -> Vec<String> {
    next.tracker
        .snapshot()
        .iter()
        .map(|f| f.flow.destination.to_string())
        .collect()
}

#[test]
fn fakeip_address_reaches_the_domain_and_unknown_is_refused() {
    let origin = hello_origin();
    let next = next_proxy(origin);
    let sb = Instance::start(&fakeip_config(next.addr(0), ""));
    let (status, answers) = dig(sb.addr(0), "b.fake.test", "A", false);
    assert_eq!(status, "NOERROR");
    let fake = answers[0].split(' ').nth(2).unwrap().to_string();
    assert!(fake.starts_with("198.18."), "{answers:?}");
    // The same domain keeps its address; IPv6 comes from the v6 range.
    assert_eq!(dig(sb.addr(0), "b.fake.test", "A", true).1, answers);
    assert!(dig(sb.addr(0), "b.fake.test", "AAAA", false).1[0].contains(" AAAA fc00::"));
    // Not under the fakeip rule: the hosts server answers.
    assert_eq!(
        dig(sb.addr(0), "a.test", "A", false).1,
        vec!["a.test. A 10.1.1.1"]
    );

    // The client connects to the fake address; sb asks the next proxy for the domain.
    let proxy = format!("socks5://{}", sb.addr(1));
    let url = format!("http://{fake}:{}/via-fake", origin.port());
    let got = curl(&["--proxy", &proxy, &url]);
    assert_eq!(
        got.body, "hello from origin /via-fake",
        "curl exit {}",
        got.code
    );
    // The tracker lists open flows only: hold one open to see what the next proxy was asked.
    let mut held = std::net::TcpStream::connect(sb.addr(1)).unwrap();
    socks_connect(&mut held, &fake, origin.port());
    let want = format!("b.fake.test:{}", origin.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen(&next).contains(&want) {
        assert!(
            Instant::now() < deadline,
            "next proxy saw {:?}",
            seen(&next)
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // An address in the range that nobody was given is never dialed.
    let unknown = format!("http://198.19.255.200:{}/x", origin.port());
    let got = curl(&["--proxy", &proxy, &unknown]);
    assert_ne!(got.code, 0, "an unknown fake address must fail");
    assert!(!seen(&next).iter().any(|d| d.starts_with("198.19.255.200")));
}

/// A SOCKS5 CONNECT to `ip:port` (no auth), leaving the stream open.
fn socks_connect(s: &mut std::net::TcpStream, ip: &str, port: u16) {
    use std::io::{Read, Write};
    s.write_all(&[5, 1, 0]).unwrap();
    let mut r = [0u8; 2];
    s.read_exact(&mut r).unwrap();
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&ip.octets());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).unwrap();
    let mut rep = [0u8; 10];
    s.read_exact(&mut rep).unwrap();
    assert_eq!(rep[1], 0, "socks reply {rep:?}");
}

#[test]
fn cache_file_keeps_fakeip_and_selector_across_restart() {
    let dir = std::env::temp_dir().join(format!("sb-dns-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("cache.json");
    let _ = std::fs::remove_file(&cache);
    let origin = hello_origin();
    let next = next_proxy(origin);
    let config = fakeip_config(next.addr(0), cache.to_str().unwrap());
    let first = {
        let sb = Instance::start(&config);
        sb.selectors["pick"].select("direct").unwrap();
        let a = dig(sb.addr(0), "one.fake.test", "A", false).1;
        let b = dig(sb.addr(0), "two.fake.test", "A", false).1;
        (a, b)
    };
    assert!(cache.exists(), "saved at shutdown");
    let sb = Instance::start(&config);
    assert_eq!(sb.selectors["pick"].selected(), "direct");
    // Asked in the other order: the restored mapping answers, not a fresh allocation.
    assert_eq!(dig(sb.addr(0), "two.fake.test", "A", false).1, first.1);
    assert_eq!(dig(sb.addr(0), "one.fake.test", "A", false).1, first.0);
    let new = dig(sb.addr(0), "three.fake.test", "A", false).1;
    assert!(new != first.0 && new != first.1, "{new:?}");
    drop(sb);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_foreign_cache_file_is_not_overwritten() {
    let dir = std::env::temp_dir().join(format!("sb-dns-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("cache.db");
    std::fs::write(&cache, b"\x00\x01bbolt-like bytes").unwrap();
    let config = format!(
        r#"{{"log": {{"disabled": true}},
            "experimental": {{"cache_file": {{"enabled": true, "path": "{}"}}}}}}"#,
        cache.display()
    );
    let loaded = sb_config::load_text("t.json", &config).unwrap();
    let err = sb_adapters::registry::build(&loaded.config)
        .err()
        .expect("a foreign cache file must be refused")
        .to_string();
    assert!(err.contains("not an sb cache file"), "{err}");
    assert_eq!(std::fs::read(&cache).unwrap(), b"\x00\x01bbolt-like bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A raw UDP DNS query for `name` A, with an EDNS0 OPT record of `edns` bytes if given.
fn raw_query(name: &str, edns: Option<u16>) -> Vec<u8> {
    let mut q = vec![
        0x51,
        0x3a,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(edns.is_some()),
    ];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(size) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    q
}

/// Hardening finding 9: over UDP, hijack-dns sent answers of any size without the TC bit.
/// As Go does, an answer is cut to 512 bytes (or the query's EDNS0 size) with TC set, so
/// the client asks again over TCP.
#[test]
fn udp_answers_fit_the_clients_buffer_or_are_truncated() {
    let many: Vec<String> = (1..=60).map(|i| format!("\"10.9.0.{i}\"")).collect();
    let sb = Instance::start(&hijack_config(
        &format!(
            r#", {{"type": "hosts", "tag": "many", "predefined": {{"many.test": [{}]}}}}"#,
            many.join(", ")
        ),
        r#"{"domain": ["many.test"], "server": "many"}"#,
        "",
        "",
    ));
    let ask = |edns: Option<u16>| {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(&raw_query("many.test", edns), sb.addr(0))
            .unwrap();
        let mut buf = [0u8; 65_535];
        let (n, _) = s.recv_from(&mut buf).expect("no answer within 5 s");
        let truncated = buf[2] & 0x02 != 0;
        let answers = u16::from_be_bytes([buf[6], buf[7]]);
        (n, truncated, answers)
    };
    let (n, tc, answers) = ask(None);
    assert!(n <= 512 && tc, "{n} bytes, TC {tc}");
    assert!(answers > 0 && answers < 60, "{answers} answers kept");
    let (n, tc, answers) = ask(Some(4096));
    assert!(
        n > 512 && !tc && answers == 60,
        "{n} bytes, TC {tc}, {answers} answers"
    );
    // Over TCP the whole answer comes.
    let (status, all) = dig(sb.addr(0), "many.test", "A", true);
    assert_eq!((status.as_str(), all.len()), ("NOERROR", 60));
}

/// Hardening finding 7: one hijacked UDP flow cannot make sb work on any number of queries
/// at once (each was a task waiting on the upstream). Past the bound, new queries of that
/// flow are dropped (the client retries) until answers come back.
#[test]
fn queries_in_progress_per_hijacked_flow_are_bounded() {
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let sb = Instance::start(&hijack_config(
        &format!(
            r#", {{"type": "udp", "tag": "silent", "server": "127.0.0.1", "server_port": {}}}"#,
            upstream.local_addr().unwrap().port()
        ),
        r#"{"domain_suffix": ["slow.test"], "server": "silent"}"#,
        "",
        "",
    ));
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..400 {
        client
            .send_to(&raw_query(&format!("n{i}.slow.test"), None), sb.addr(0))
            .unwrap();
    }
    let mut seen = 0;
    let mut buf = [0u8; 512];
    // The upstream never answers: count what reaches it until it has been quiet a while.
    while seen < 1000 && upstream.recv_from(&mut buf).is_ok() {
        seen += 1;
    }
    assert!(seen > 0, "no query reached the upstream");
    assert!(seen <= 256, "{seen} queries in progress for one flow");
}
