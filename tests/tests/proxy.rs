//! The proxy inbounds against real clients: `curl` through the mixed inbound as HTTP proxy,
//! with CONNECT, SOCKS5, SOCKS5h, SOCKS4 and SOCKS4a, with and without users; rejects; a
//! 100 MiB transfer compared byte for byte; half-close; many concurrent flows. Every server
//! binds port 0 on loopback and every wait is bounded.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::{curl, curl_status, hello_origin, Instance};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

fn origin() -> SocketAddr {
    hello_origin()
}

fn mixed(users: &str, rules: &str) -> Instance {
    Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0 {users}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}, {{"type": "block", "tag": "block"}}],
            "route": {{"rules": [{rules}]}}}}"#
    ))
}

#[test]
fn curl_through_every_proxy_protocol() {
    let o = origin();
    let sb = mixed("", "");
    let p = sb.addr(0);
    let url = format!("http://127.0.0.1:{}/x", o.port());
    let by_name = format!("http://localhost:{}/x", o.port());
    for (name, args) in [
        (
            "http proxy",
            vec!["-x".to_string(), format!("http://{p}"), url.clone()],
        ),
        (
            "CONNECT",
            vec!["-p".into(), "-x".into(), format!("http://{p}"), url.clone()],
        ),
        (
            "socks5",
            vec!["-x".into(), format!("socks5://{p}"), url.clone()],
        ),
        (
            "socks5h",
            vec!["-x".into(), format!("socks5h://{p}"), by_name.clone()],
        ),
        (
            "socks4",
            vec!["-x".into(), format!("socks4://{p}"), url.clone()],
        ),
        (
            "socks4a",
            vec!["-x".into(), format!("socks4a://{p}"), by_name.clone()],
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = curl(&args);
        assert_eq!(
            (r.code, r.body.as_str()),
            (0, "hello from origin /x"),
            "{name}"
        );
    }
}

#[test]
fn users_are_required_and_checked() {
    let o = origin();
    let sb = mixed(r#", "users": [{"username": "u", "password": "p"}]"#, "");
    let p = sb.addr(0);
    let url = format!("http://127.0.0.1:{}/auth", o.port());
    let ok = curl(&["-x", &format!("socks5://u:p@{p}"), &url]);
    assert_eq!((ok.code, ok.body.as_str()), (0, "hello from origin /auth"));
    let ok = curl(&["-x", &format!("http://{p}"), "-U", "u:p", &url]);
    assert_eq!((ok.code, ok.body.as_str()), (0, "hello from origin /auth"));
    // Wrong password over SOCKS5: curl reports a proxy handshake failure (97).
    let bad = curl(&["-x", &format!("socks5://u:wrong@{p}"), &url]);
    assert_eq!(bad.code, 97);
    // No credentials over HTTP: 407 with Go's realm.
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--max-time",
            "10",
            "-x",
            &format!("http://{p}"),
            &url,
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(
        head.starts_with("HTTP/1.1 407 Proxy Authentication Required"),
        "{head}"
    );
    assert!(
        head.contains("Proxy-Authenticate: Basic realm=\"sing-box\""),
        "{head}"
    );
    // SOCKS4 cannot carry a password, so it is refused when users are set.
    assert_eq!(curl(&["-x", &format!("socks4://{p}"), &url]).code, 97);
}

#[test]
fn rejected_and_blocked_flows_get_protocol_answers() {
    let o = origin();
    let sb = mixed(
        "",
        r#"{"domain": "blocked.test", "outbound": "block"}, {"port": 9, "action": "reject"}"#,
    );
    let p = sb.addr(0);
    let rejected = "http://127.0.0.1:9/";
    let code = curl_status;
    // Go answers a rejected flow with 502, and so does sb.
    assert_eq!(code(&["-x", &format!("http://{p}"), rejected]), "502");
    assert_eq!(
        code(&["-x", &format!("http://{p}"), "http://blocked.test/"]),
        "502"
    );
    // SOCKS5 "connection not allowed by ruleset": curl exits 97.
    assert_eq!(curl(&["-x", &format!("socks5://{p}"), rejected]).code, 97);
    // The origin itself is still reachable.
    let ok = curl(&[
        "-x",
        &format!("socks5://{p}"),
        &format!("http://127.0.0.1:{}/still", o.port()),
    ]);
    assert_eq!(ok.body, "hello from origin /still");
    // A refused upstream: HTTP 502, SOCKS5 "connection refused".
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        code(&["-x", &format!("http://{p}"), &format!("http://{closed}/")]),
        "502"
    );
}

#[test]
fn hundred_mebibytes_arrive_intact() {
    let o = origin();
    let sb = mixed("", "");
    let p = sb.addr(0);
    let dir = std::env::temp_dir().join(format!("sb-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.bin");
    let r = curl(&[
        "-x",
        &format!("socks5h://{p}"),
        "-o",
        file.to_str().unwrap(),
        &format!("http://127.0.0.1:{}/big", o.port()),
    ]);
    assert_eq!(r.code, 0);
    sb_tests::assert_big_file(&file);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A SOCKS5 CONNECT by hand, returning the connected stream.
fn socks5_connect(proxy: SocketAddr, dest: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut r = [0u8; 2];
    s.read_exact(&mut r).unwrap();
    assert_eq!(r, [5, 0]);
    let SocketAddr::V4(d) = dest else {
        panic!("v4 only")
    };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&d.ip().octets());
    req.extend_from_slice(&d.port().to_be_bytes());
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0, "socks reply {reply:?}");
    s
}

#[test]
fn half_close_reaches_the_server_and_the_answer_still_comes_back() {
    // The server reads to EOF, then answers with what it read, reversed.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut c, _) = server.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        got.reverse();
        c.write_all(&got).unwrap();
    });
    let sb = mixed("", "");
    let mut s = socks5_connect(sb.addr(0), addr);
    s.write_all(b"abcdef").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"fedcba");
}

#[test]
fn many_concurrent_flows() {
    // An echo server.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in server.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let sb = mixed("", "");
    let proxy = sb.addr(0);
    let clients: Vec<_> = (0..200)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = socks5_connect(proxy, addr);
                let msg = format!("flow {i} says hello");
                s.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0u8; msg.len()];
                s.read_exact(&mut back).unwrap();
                assert_eq!(back, msg.as_bytes());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

/// A server that reports the first bytes of each connection it accepts.
fn recorder() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 512];
            let n = c.read(&mut buf).unwrap_or(0);
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

#[test]
fn sniffed_domains_route_flows() {
    // Flows to `decoy` whose TLS SNI or HTTP Host names sniff.test are sent to `real` instead.
    let (decoy, decoy_rx) = recorder();
    let (real, real_rx) = recorder();
    let sb = mixed(
        "",
        &format!(
            r#"{{"action": "sniff"}},
               {{"protocol": "tls", "domain_suffix": "sniff.test", "action": "route-options", "override_port": {}}},
               {{"protocol": "http", "domain": "host.sniff.test", "action": "route-options", "override_port": {}}},
               {{"outbound": "direct"}}"#,
            real.port(),
            real.port()
        ),
    );
    let p = sb.addr(0);
    let wait = Duration::from_secs(10);
    // TLS: curl sends a ClientHello with SNI www.sniff.test to the decoy's address.
    let _ = curl(&[
        "-x",
        &format!("socks5://{p}"),
        "--connect-to",
        &format!("www.sniff.test:443:{decoy}"),
        "https://www.sniff.test/",
    ]);
    let hello = real_rx
        .recv_timeout(wait)
        .expect("the TLS flow reached the sniffed route");
    assert_eq!(hello.first(), Some(&0x16));
    // HTTP: the Host header is sniffed on a plain CONNECT tunnel.
    let _ = curl(&[
        "-p",
        "-x",
        &format!("http://{p}"),
        "-H",
        "Host: host.sniff.test",
        &format!("http://{decoy}/"),
    ]);
    let req = real_rx
        .recv_timeout(wait)
        .expect("the HTTP flow reached the sniffed route");
    assert!(
        req.starts_with(b"GET / HTTP/1.1"),
        "{}",
        String::from_utf8_lossy(&req)
    );
    // Anything else goes where it was going.
    let _ = curl(&[
        "-p",
        "-x",
        &format!("http://{p}"),
        &format!("http://{decoy}/plain"),
    ]);
    let plain = decoy_rx
        .recv_timeout(wait)
        .expect("the unsniffed flow reached its destination");
    assert!(
        plain.starts_with(b"GET /plain"),
        "{}",
        String::from_utf8_lossy(&plain)
    );
    assert!(real_rx.try_recv().is_err());
}

#[test]
fn selector_switches_at_runtime() {
    let o = origin();
    let sb = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "selector", "tag": "pick", "outbounds": ["direct", "block"], "default": "direct"},
                          {"type": "direct", "tag": "direct"}, {"type": "block", "tag": "block"}]}"#,
    );
    let p = sb.addr(0);
    let url = format!("http://127.0.0.1:{}/sel", o.port());
    assert_eq!(
        curl(&["-x", &format!("socks5://{p}"), &url]).body,
        "hello from origin /sel"
    );
    let sel = &sb.selectors["pick"];
    assert_eq!(sel.selected(), "direct");
    sel.select("block").unwrap();
    assert_ne!(curl(&["-x", &format!("socks5://{p}"), &url]).code, 0);
    assert_eq!(
        sel.select("nope").map_err(|e| e.to_string()),
        Err("not found".to_string())
    );
    sel.select("direct").unwrap();
    assert_eq!(
        curl(&["-x", &format!("socks5://{p}"), &url]).body,
        "hello from origin /sel"
    );
}

#[test]
fn socks_and_http_inbounds_speak_only_their_protocol() {
    let o = origin();
    let sb = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "socks", "tag": "s", "listen_port": 0}, {"type": "http", "tag": "h", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct"}]}"#,
    );
    let (s, h) = (sb.addr(0), sb.addr(1));
    let url = format!("http://127.0.0.1:{}/only", o.port());
    assert_eq!(
        curl(&["-x", &format!("socks5://{s}"), &url]).body,
        "hello from origin /only"
    );
    assert_eq!(
        curl(&["-x", &format!("socks4a://{s}"), &url]).body,
        "hello from origin /only"
    );
    assert_eq!(
        curl(&["-x", &format!("http://{h}"), &url]).body,
        "hello from origin /only"
    );
    assert_eq!(
        curl(&["-p", "-x", &format!("http://{h}"), &url]).body,
        "hello from origin /only"
    );
    assert_ne!(curl(&["-x", &format!("http://{s}"), &url]).code, 0);
    assert_ne!(curl(&["-x", &format!("socks5://{h}"), &url]).code, 0);
}

#[test]
fn resolve_action_lets_ip_rules_match_domains() {
    let o = origin();
    let sb = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "block", "tag": "block"}, {"type": "direct", "tag": "direct"}],
            "route": {"rules": [{"action": "resolve", "strategy": "ipv4_only"},
                                {"ip_cidr": "127.0.0.0/8", "outbound": "direct"}],
                      "final": "block"}}"#,
    );
    let p = sb.addr(0);
    // socks5h: the proxy gets the name `localhost`; only the resolve action turns it into
    // 127.0.0.1 for the ip_cidr rule, else the flow would fall to `block`.
    let r = curl(&[
        "-x",
        &format!("socks5h://{p}"),
        &format!("http://localhost:{}/resolved", o.port()),
    ]);
    assert_eq!(
        (r.code, r.body.as_str()),
        (0, "hello from origin /resolved")
    );
    // A name that does not resolve fails the flow.
    let bad = curl(&[
        "-x",
        &format!("socks5h://{p}"),
        &format!("http://no-such-host.invalid:{}/", o.port()),
    ]);
    assert_ne!(bad.code, 0);
}

/// A SOCKS5 CONNECT to a domain, by hand; the reply code (0 = succeeded).
fn socks5_connect_domain(proxy: SocketAddr, name: &[u8], port: u16) -> u8 {
    let mut c = TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(&[5, 1, 0]).unwrap();
    let mut greeting = [0u8; 2];
    c.read_exact(&mut greeting).unwrap();
    let mut req = vec![5, 1, 0, 3, name.len() as u8];
    req.extend_from_slice(name);
    req.extend_from_slice(&port.to_be_bytes());
    c.write_all(&req).unwrap();
    let mut reply = [0u8; 2];
    match c.read_exact(&mut reply) {
        Ok(()) => reply[1],
        // The proxy closed without a reply: no success either.
        Err(_) => 0xff,
    }
}

/// Hardening finding 5: a SOCKS5 domain with CR/LF routed to an `http` outbound injected
/// header lines into the upstream proxy's request (the upstream saw `x-injected: yes`).
/// Such a name is refused at the inbound, and nothing reaches the upstream.
#[test]
fn names_with_control_characters_are_refused_and_never_reach_an_upstream() {
    let (upstream, seen) = recorder();
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}],
            "outbounds": [{{"type": "http", "tag": "up", "server": "127.0.0.1", "server_port": {}}}]}}"#,
        upstream.port()
    ));
    let code = socks5_connect_domain(sb.addr(0), b"a.test\r\nx-injected: yes\r\nx", 80);
    assert_ne!(code, 0, "the proxy accepted a name with CR/LF");
    for bad in [&b"nul\0.test"[..], b"esc\x1b[31m.test", b"sp ace.test"] {
        assert_ne!(socks5_connect_domain(sb.addr(0), bad, 80), 0, "{bad:?}");
    }
    // A clean name still goes to the upstream, and it is the only thing it ever sees.
    let _ = socks5_connect_domain(sb.addr(0), b"clean.test", 80);
    let first = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    let head = String::from_utf8_lossy(&first);
    assert!(
        head.starts_with("CONNECT clean.test:80 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(!head.to_ascii_lowercase().contains("x-injected"), "{head}");
    assert!(seen.try_recv().is_err(), "the upstream saw another request");
}

/// Hardening finding 12: one connection cannot try passwords without end. After a few
/// refused attempts on a keep-alive connection, sb closes it.
#[test]
fn failed_logins_on_one_connection_are_limited() {
    let sb = mixed(r#", "users": [{"username": "u", "password": "right"}]"#, "");
    let mut c = TcpStream::connect(sb.addr(0)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answered = 0;
    for i in 0..20 {
        // `dTp3cm9uZw==` is `u:wrong`.
        let req = format!(
            "GET http://a.test/{i} HTTP/1.1\r\nHost: a.test\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic dTp3cm9uZw==\r\n\r\n"
        );
        if c.write_all(req.as_bytes()).is_err() {
            break;
        }
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match c.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => break,
            }
        }
        if !head.starts_with(b"HTTP/1.1 407") {
            break;
        }
        answered += 1;
    }
    assert!(
        (1..=5).contains(&answered),
        "{answered} refused attempts answered on one connection"
    );
}
