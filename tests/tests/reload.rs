//! Reloading a running instance as `sb run` does on SIGHUP (hardening finding 1): the next
//! config is brought up before the running one stops, inbounds whose config did not change
//! keep their sockets (and their open connections follow the new rules), changed ones are
//! rebuilt, and a reload that cannot start leaves the previous config serving.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::{hello_origin, Instance};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A mixed inbound `m` on `port` (0: any), and `final` as the route's last word.
fn config(port: u16, last: &str) -> String {
    format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {port}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}, {{"type": "block", "tag": "block"}}],
            "route": {{"final": "{last}"}}}}"#
    )
}

/// One request on a keep-alive connection to the HTTP proxy; the status line, or `None`
/// when the proxy closed the connection.
fn proxied_get(c: &mut TcpStream, origin: SocketAddr) -> Option<String> {
    let req = format!(
        "GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\nProxy-Connection: keep-alive\r\n\r\n"
    );
    c.write_all(req.as_bytes()).ok()?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).ok()?;
    text.lines().next().map(str::to_string)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

#[test]
fn an_unchanged_inbound_keeps_its_socket_and_its_connections_follow_the_new_rules() {
    let origin = hello_origin();
    let mut sb = Instance::start(&config(0, "direct"));
    // Port 0: a rebuilt inbound would listen somewhere else.
    let addr = sb.addr(0);
    let mut c = connect(addr);
    let first = proxied_get(&mut c, origin).unwrap();
    assert!(first.contains(" 200 "), "{first}");

    sb.reload(&config(0, "block")).unwrap();
    assert_eq!(sb.addr(0), addr, "the unchanged inbound was rebuilt");
    // The connection from before the reload is still served, by the new rules.
    let after = proxied_get(&mut c, origin).expect("the kept connection was closed");
    assert!(
        !after.contains(" 200 "),
        "old rules after the reload: {after}"
    );
    // New connections too.
    let fresh = proxied_get(&mut connect(addr), origin).unwrap();
    assert!(!fresh.contains(" 200 "), "{fresh}");
}

#[test]
fn a_changed_inbound_is_rebuilt_and_a_reload_that_cannot_start_keeps_the_old_config() {
    let origin = hello_origin();
    let free = |_| {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (first, second) = (free(()), free(()));
    let mut sb = Instance::start(&config(first, "direct"));
    let ok = |port: u16| {
        proxied_get(
            &mut connect(SocketAddr::from(([127, 0, 0, 1], port))),
            origin,
        )
        .is_some_and(|l| l.contains(" 200 "))
    };
    assert!(ok(first));

    // A changed listen port: the inbound is rebuilt there, the old port is released.
    sb.reload(&config(second, "direct")).unwrap();
    assert!(ok(second));
    assert!(TcpStream::connect(("127.0.0.1", first)).is_err());

    // A port someone else holds: the reload fails naming the inbound, and the previous
    // config serves again where it did.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = sb
        .reload(&config(taken.local_addr().unwrap().port(), "direct"))
        .unwrap_err();
    assert!(e.starts_with("start inbound/mixed[m]: "), "{e}");
    assert!(ok(second));
}
