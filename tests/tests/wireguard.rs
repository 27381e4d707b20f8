//! The `wireguard` endpoint against a real peer: Debian's wireguard-go in a network namespace
//! the test creates, with an HTTP server and a UDP echo on its tunnel address. sb runs in
//! the same namespace; the tunnel's outer UDP goes over the namespace's loopback. Root
//! only (skipped with the reason outside CI; a failure under CI).
//!
//! ```text
//!  curl ─> sb mixed ─> router ─> endpoint wg (10.77.0.1) ═ UDP ═ wireguard-go (10.77.0.2) ─> HTTP, UDP echo
//!  curl on 10.77.0.2 ─> wireguard-go ═ UDP ═ endpoint wg ─> router ─> direct ─> 127.0.0.1 (own address → loopback)
//! ```

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::netns::Netns;
use sb_tests::tun_lab::{Proxy, Running};
use sb_tests::wireguard::{self, Keys, PeerConfig, WgGo};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

/// The namespace, or `None` (outside CI) with the reason printed.
fn lab() -> Option<Netns> {
    if let Some(why) = wireguard::unavailable() {
        sb_tests::skip(&format!("CI must run the WireGuard tests: {why}"));
        return None;
    }
    Some(Netns::new("wgt"))
}

/// A port nothing in `ns` uses now (the namespace is the test's own).
fn free_port(ns: &Netns, udp: bool) -> u16 {
    ns.spawn(move || {
        if udp {
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        }
    })
    .join()
    .unwrap()
}

/// An HTTP server (`hello from origin <path>`, `/big`) on `ip` in `ns`.
fn http_server(ns: &Netns, ip: &'static str) -> SocketAddr {
    ns.spawn(move || {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                std::thread::spawn(move || {
                    sb_tests::serve_http(conn, |path| format!("hello from origin {path}"))
                });
            }
        });
        addr
    })
    .join()
    .unwrap()
}

/// A UDP echo on `ip` in `ns`.
fn udp_echo(ns: &Netns, ip: &'static str) -> SocketAddr {
    ns.spawn(move || {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        });
        addr
    })
    .join()
    .unwrap()
}

fn curl(ns: &Netns, args: &[&str]) -> (bool, String) {
    let mut all = vec!["curl", "-sS", "--max-time", "20"];
    all.extend_from_slice(args);
    let out = ns.exec(&all);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn start_sb(ns: &Netns, config: &str) -> Running {
    Proxy::InProcess.start(ns, config)
}

#[test]
fn tcp_and_udp_reach_a_wireguard_go_peer_through_the_endpoint() {
    let Some(ns) = lab() else { return };
    let sb_keys = Keys::generate();
    let wg = WgGo::start(
        &ns,
        "10.77.0.2/24",
        &PeerConfig {
            public: &sb_keys.public,
            endpoint: None,
            allowed_ips: "10.77.0.1/32",
            keepalive: None,
        },
    );
    let http = http_server(&ns, "10.77.0.2");
    let echo = udp_echo(&ns, "10.77.0.2");
    let (mixed, udp_in) = (free_port(&ns, false), free_port(&ns, true));
    let config = format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {mixed}}},
                         {{"type": "direct", "tag": "u", "listen": "127.0.0.1", "listen_port": {udp_in}, "network": "udp",
                           "override_address": "10.77.0.2", "override_port": {}}}],
            "endpoints": [{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"],
                            "private_key": "{}",
                            "peers": [{{"address": "127.0.0.1", "port": {}, "public_key": "{}",
                                        "allowed_ips": ["10.77.0.0/24"]}}]}}],
            "route": {{"rules": [{{"ip_cidr": ["10.77.0.0/24"], "outbound": "wg"}}]}}}}"#,
        echo.port(),
        sb_keys.private,
        wg.port,
        wg.keys.public
    );
    let _sb = start_sb(&ns, &config);
    let proxy = format!("socks5h://127.0.0.1:{mixed}");
    let (ok, body) = curl(&ns, &["-x", &proxy, &format!("http://{http}/hello")]);
    assert!(
        ok && body == "hello from origin /hello",
        "{body}\n{}",
        wg.log()
    );
    assert!(
        wg.show("latest-handshakes").split_whitespace().nth(1) != Some("0"),
        "no handshake: {}",
        wg.show("dump")
    );

    // 100 MiB, every byte checked.
    let file = std::env::temp_dir().join(format!("sb-wg-big-{}", std::process::id()));
    let (ok, body) = curl(
        &ns,
        &[
            "-x",
            &proxy,
            "-o",
            &file.to_string_lossy(),
            &format!("http://{http}/big"),
        ],
    );
    assert!(ok, "{body}");
    sb_tests::assert_big_file(&file);
    let _ = std::fs::remove_file(&file);

    // UDP through the direct inbound, to the echo behind the tunnel.
    let echoed = ns
        .spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.send_to(b"ping through wireguard", ("127.0.0.1", udp_in))
                .unwrap();
            let mut buf = [0u8; 64];
            let (n, _) = s.recv_from(&mut buf).unwrap();
            buf[..n].to_vec()
        })
        .join()
        .unwrap();
    assert_eq!(echoed, b"ping through wireguard");
}

#[test]
fn a_wireguard_go_peer_dials_into_the_endpoint() {
    let Some(ns) = lab() else { return };
    let sb_keys = Keys::generate();
    let listen = free_port(&ns, true);
    let wg = WgGo::start(
        &ns,
        "10.77.0.2/24",
        &PeerConfig {
            public: &sb_keys.public,
            endpoint: Some(SocketAddr::from(([127, 0, 0, 1], listen))),
            allowed_ips: "10.77.0.1/32",
            keepalive: Some(1),
        },
    );
    // Served on the namespace's loopback: a flow to the endpoint's own address lands there.
    let local = http_server(&ns, "127.0.0.1");
    let config = format!(
        r#"{{"log": {{"disabled": true}},
            "endpoints": [{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"], "listen_port": {listen},
                            "private_key": "{}",
                            "peers": [{{"public_key": "{}", "allowed_ips": ["10.77.0.2/32"]}}]}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"final": "direct"}}}}"#,
        sb_keys.private, wg.keys.public
    );
    let _sb = start_sb(&ns, &config);
    let (ok, body) = curl(&ns, &[&format!("http://10.77.0.1:{}/in", local.port())]);
    assert!(
        ok && body == "hello from origin /in",
        "{body}\n{}",
        wg.log()
    );
}
