//! Interop with the real Go sing-box 1.14.4, both ways: sb's `socks` and `http` outbounds
//! into Go's `mixed` inbound, and Go's `socks` and `http` outbounds into sb's `mixed` inbound,
//! with and without users; UDP from sb's socks outbound into Go, and from Go's socks outbound
//! with `udp_over_tcp` into sb's mixed inbound. Traffic is real curl to a loopback origin or
//! datagrams to a loopback echo server; every port is picked by the OS and read back from
//! the logs.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::{curl, curl_status, hello_origin, GoSingBox, Instance};

fn go_mixed(users: &str) -> Option<GoSingBox> {
    GoSingBox::start(
        &format!(
            r#"{{"log": {{"level": "info"}},
                "inbounds": [{{"type": "mixed", "tag": "go-in", "listen": "127.0.0.1", "listen_port": 0 {users}}}],
                "outbounds": [{{"type": "direct", "tag": "direct"}}]}}"#
        ),
        1,
    )
}

#[test]
fn sb_outbounds_into_go_inbound() {
    let origin = hello_origin();
    for (users, auth) in [
        ("", ""),
        (
            r#", "users": [{"username": "u", "password": "p"}]"#,
            r#", "username": "u", "password": "p""#,
        ),
    ] {
        let Some(go) = go_mixed(users) else { return };
        let g = go.listening[0];
        for (ty, extra) in [
            ("socks", r#", "version": "5""#),
            ("socks", r#", "version": "4a""#),
            ("http", ""),
        ] {
            if ty == "socks" && extra.contains("4a") && !auth.is_empty() {
                continue; // SOCKS4a cannot carry a password.
            }
            let sb = Instance::start(&format!(
                r#"{{"log": {{"disabled": true}},
                    "inbounds": [{{"type": "mixed", "tag": "in", "listen_port": 0}}],
                    "outbounds": [{{"type": "{ty}", "tag": "up", "server": "{}", "server_port": {} {extra} {auth}}}]}}"#,
                g.ip(),
                g.port()
            ));
            let r = curl(&[
                "-x",
                &format!("socks5h://{}", sb.addr(0)),
                &format!("http://localhost:{}/via-go", origin.port()),
            ]);
            assert_eq!(
                (r.code, r.body.as_str()),
                (0, "hello from origin /via-go"),
                "{ty}{extra} users={}",
                !users.is_empty()
            );
        }
    }
}

#[test]
fn sb_outbound_reports_go_refusals() {
    let origin = hello_origin();
    let Some(go) = go_mixed(r#", "users": [{"username": "u", "password": "p"}]"#) else {
        return;
    };
    let g = go.listening[0];
    for ty in ["socks", "http"] {
        let sb = Instance::start(&format!(
            r#"{{"log": {{"disabled": true}},
                "inbounds": [{{"type": "mixed", "tag": "in", "listen_port": 0}}],
                "outbounds": [{{"type": "{ty}", "tag": "up", "server": "{}", "server_port": {}, "username": "u", "password": "wrong"}}]}}"#,
            g.ip(),
            g.port()
        ));
        // The upstream refused: HTTP proxy clients get 502, nothing reaches the origin.
        let status = curl_status(&[
            "-x",
            &format!("http://{}", sb.addr(0)),
            &format!("http://127.0.0.1:{}/", origin.port()),
        ]);
        assert_eq!(status, "502", "{ty}");
    }
}

#[test]
fn go_outbounds_into_sb_inbound() {
    let origin = hello_origin();
    for (users, auth) in [
        ("", ""),
        (
            r#", "users": [{"username": "u", "password": "p"}]"#,
            r#", "username": "u", "password": "p""#,
        ),
    ] {
        let sb = Instance::start(&format!(
            r#"{{"log": {{"disabled": true}},
                "inbounds": [{{"type": "mixed", "tag": "sb-in", "listen_port": 0 {users}}}],
                "outbounds": [{{"type": "direct", "tag": "direct"}}]}}"#
        ));
        let s = sb.addr(0);
        for (ty, extra) in [("socks", r#", "version": "5""#), ("http", "")] {
            let Some(go) = GoSingBox::start(
                &format!(
                    r#"{{"log": {{"level": "info"}},
                        "inbounds": [{{"type": "mixed", "tag": "go-in", "listen": "127.0.0.1", "listen_port": 0}}],
                        "outbounds": [{{"type": "{ty}", "tag": "up", "server": "{}", "server_port": {} {extra} {auth}}}]}}"#,
                    s.ip(),
                    s.port()
                ),
                1,
            ) else {
                return;
            };
            let r = curl(&[
                "-x",
                &format!("socks5h://{}", go.listening[0]),
                &format!("http://localhost:{}/via-sb", origin.port()),
            ]);
            assert_eq!(
                (r.code, r.body.as_str()),
                (0, "hello from origin /via-sb"),
                "Go {ty} outbound, users={}",
                !users.is_empty()
            );
        }
    }
}

/// A UDP echo server on loopback that prefixes replies with `E:`.
fn udp_echo() -> std::net::SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let mut out = b"E:".to_vec();
            out.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&out, from);
        }
    });
    addr
}

#[test]
fn sb_socks_outbound_carries_udp_into_go() {
    let echo = udp_echo();
    let Some(go) = go_mixed("") else { return };
    let g = go.listening[0];
    for (name, extra) in [
        ("UDP ASSOCIATE", ""),
        ("UoT v2", r#", "udp_over_tcp": true"#),
        (
            "UoT v1",
            r#", "udp_over_tcp": {"enabled": true, "version": 1}"#,
        ),
    ] {
        let sb = Instance::start(&format!(
            r#"{{"log": {{"disabled": true}},
                "inbounds": [{{"type": "direct", "tag": "d", "network": "udp", "listen_port": 0,
                               "override_address": "127.0.0.1", "override_port": {}}}],
                "outbounds": [{{"type": "socks", "tag": "up", "server": "{}", "server_port": {} {extra}}}]}}"#,
            echo.port(),
            g.ip(),
            g.port()
        ));
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 2048];
        for i in 0..3 {
            let msg = format!("{name} {i}");
            c.send_to(msg.as_bytes(), sb.addr(0)).unwrap();
            let (n, _) = c
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{name}: no reply through Go: {e}"));
            assert_eq!(&buf[..n], format!("E:{msg}").as_bytes(), "{name}");
        }
    }
}

/// Sends three datagrams to `front` and checks each comes back from the echo server.
fn udp_round_trips(front: std::net::SocketAddr, name: &str) {
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..3 {
        let msg = format!("{name} {i}");
        c.send_to(msg.as_bytes(), front).unwrap();
        let (n, _) = c
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: no reply: {e}"));
        assert_eq!(&buf[..n], format!("E:{msg}").as_bytes(), "{name}");
    }
}

#[test]
fn go_socks_outbound_carries_uot_into_sb() {
    let echo = udp_echo();
    let sb = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "sb-in", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct"}]}"#,
    );
    let s = sb.addr(0);
    // Go's client picks the framing: by default every datagram names its destination; a
    // `udp_connect` route option makes it ask for "connect" framing (length-only datagrams).
    let connect_rule =
        r#""rules": [{"inbound": "d", "action": "route-options", "udp_connect": true}]"#;
    for (name, uot, rules) in [
        ("UoT v2", "true", ""),
        ("UoT v2 connect", "true", connect_rule),
        ("UoT v1", r#"{"enabled": true, "version": 1}"#, ""),
    ] {
        let Some(go) = GoSingBox::start(
            &format!(
                r#"{{"log": {{"level": "info"}},
                    "inbounds": [{{"type": "direct", "tag": "d", "network": "udp", "listen": "127.0.0.1", "listen_port": 0,
                                   "override_address": "127.0.0.1", "override_port": {}}}],
                    "outbounds": [{{"type": "socks", "tag": "up", "server": "{}", "server_port": {}, "udp_over_tcp": {uot}}}],
                    "route": {{{rules}}}}}"#,
                echo.port(),
                s.ip(),
                s.port()
            ),
            1,
        ) else {
            return;
        };
        let before: Vec<String> = sb.tracker.snapshot().iter().map(|t| t.id.clone()).collect();
        udp_round_trips(go.listening[0], name);
        // sb carried it as a new UDP flow to the echo server (live while Go holds the stream).
        let flows = sb.tracker.snapshot();
        assert!(
            flows.iter().any(|t| !before.contains(&t.id)
                && t.flow.network == sb_core::flow::Network::Udp
                && t.flow.destination.to_string() == echo.to_string()),
            "{name}: sb tracked no new UDP flow to {echo}: {:?}",
            flows
                .iter()
                .map(|t| (t.flow.network, t.flow.destination.to_string()))
                .collect::<Vec<_>>()
        );
        drop(go);
    }
}
