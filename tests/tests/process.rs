//! Routing by the client's process and user, end to end on Linux: an sb instance in this test
//! process, clients that are real processes (`curl`) or this test process itself, rules on
//! `process_name`, `process_path`, `process_path_regex`, `user` and `user_id`, and `final`
//! set to `block` so a rule that fails to match shows as a 502.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use sb_tests::{curl, curl_status, hello_origin, Instance};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

/// A mixed inbound; `rules` route to `direct`, everything else goes to `block`.
fn sb(rules: &str) -> Instance {
    Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": 0}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}, {{"type": "block", "tag": "block"}}],
            "route": {{"rules": [{rules}], "final": "block"}}}}"#
    ))
}

/// The status line of a plain-HTTP proxy request sent by this test process.
fn request_from_here(proxy: SocketAddr, origin: SocketAddr) -> String {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET http://{origin}/here HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    text.lines().next().unwrap_or("").to_string()
}

fn this_binary() -> String {
    std::env::current_exe()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn process_name_lets_curl_through_and_blocks_others() {
    let o = hello_origin();
    let url = format!("http://127.0.0.1:{}/curl", o.port());
    let sb = sb(r#"{"process_name": ["wget", "curl"], "outbound": "direct"}"#);
    let p = sb.addr(0);
    for proxy in [format!("http://{p}"), format!("socks5://{p}")] {
        let r = curl(&["-x", &proxy, &url]);
        assert_eq!(
            (r.code, r.body.as_str()),
            (0, "hello from origin /curl"),
            "{proxy}"
        );
    }
    assert_eq!(request_from_here(p, o), "HTTP/1.1 502 Bad Gateway");
    // The same request from here passes once this process is the one named.
    let sb = self::sb(&format!(
        r#"{{"process_name": "{}", "outbound": "direct"}}"#,
        this_binary()
    ));
    assert_eq!(request_from_here(sb.addr(0), o), "HTTP/1.0 200 OK");
    assert_eq!(
        curl_status(&["-x", &format!("http://{}", sb.addr(0)), &url]),
        "502"
    );
}

#[test]
fn process_path_and_regex_match_the_executable() {
    let o = hello_origin();
    let url = format!("http://127.0.0.1:{}/path", o.port());
    let which = Command::new("sh")
        .args(["-c", "command -v curl"])
        .output()
        .unwrap();
    let curl_path = std::fs::canonicalize(String::from_utf8(which.stdout).unwrap().trim())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for rule in [
        format!(r#"{{"process_path": "{curl_path}", "outbound": "direct"}}"#),
        r#"{"process_path_regex": ["^/nowhere/", "/curl$"], "outbound": "direct"}"#.to_string(),
    ] {
        let sb = sb(&rule);
        let p = format!("http://{}", sb.addr(0));
        assert_eq!(curl_status(&["-x", &p, &url]), "200", "{rule}");
        assert_eq!(
            request_from_here(sb.addr(0), o),
            "HTTP/1.1 502 Bad Gateway",
            "{rule}"
        );
    }
}

#[test]
fn user_and_user_id_of_the_running_account_route() {
    let o = hello_origin();
    let url = format!("http://127.0.0.1:{}/user", o.port());
    let uid: u32 = id("-u").parse().unwrap();
    let name = id("-un");
    for (rule, want) in [
        (
            format!(r#"{{"user_id": [{uid}], "outbound": "direct"}}"#),
            "200",
        ),
        (
            format!(r#"{{"user": "{name}", "outbound": "direct"}}"#),
            "200",
        ),
        (
            format!(r#"{{"user_id": {}, "outbound": "direct"}}"#, uid + 1),
            "502",
        ),
        (
            format!(r#"{{"user": "{name}-not", "outbound": "direct"}}"#),
            "502",
        ),
        (
            format!(
                r#"{{"user_id": {}, "invert": true, "outbound": "direct"}}"#,
                uid + 1
            ),
            "200",
        ),
    ] {
        let sb = sb(&rule);
        let p = format!("http://{}", sb.addr(0));
        assert_eq!(curl_status(&["-x", &p, &url]), want, "{rule}");
    }
}

#[test]
fn udp_flows_are_matched_by_process_too() {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "direct", "tag": "d", "listen": "127.0.0.1", "listen_port": 0,
                          "network": "udp", "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{{"type": "block", "tag": "block"}}, {{"type": "direct", "tag": "direct"}}],
            "route": {{"rules": [{{"process_name": "{}", "network": "udp", "outbound": "direct"}}]}}}}"#,
        target.port(),
        this_binary()
    ));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.send_to(b"from this process", sb.addr(0)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no echo: the flow was not routed by its process ({e})"));
    assert_eq!(&buf[..n], b"from this process");
}
