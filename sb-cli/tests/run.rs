//! `sb run` as a user meets it: serving until a signal, SIGHUP reloads (a bad config keeps
//! the old one; live UDP flows and keep-alive connections do not hold the old instance),
//! start-up failures and warnings.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/cli.rs"]
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;
use support::{sb, scratch, text};

/// A running `sb run`, killed on drop so a failing test leaves nothing behind.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn start(dir: &Path, args: &[&str]) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sb"));
        cmd.args(args);
        Running::spawn(dir, cmd)
    }

    fn spawn(dir: &Path, mut cmd: Command) -> Running {
        let mut child = cmd
            .current_dir(dir)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits (at most 20 s) for a line containing `needle`; returns it.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line containing {needle:?}: {e}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mixed_config(level: &str) -> String {
    format!(
        r#"{{"log": {{"level": "{level}"}}, "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}], "outbounds": [{{"type": "direct", "tag": "d"}}]}}"#
    )
}

#[test]
fn run_serves_until_sigterm_and_exits_0() {
    let dir = scratch("run-term");
    std::fs::write(dir.join("config.json"), mixed_config("info")).unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("tcp server started at");
    assert!(
        line.starts_with("INFO[0000] inbound/mixed[m]: tcp server started at 127.0.0.1:"),
        "{line}"
    );
    sb.wait_for("sb started");
    sb.signal("-TERM");
    let status = sb.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A DNS query for `name` (type A) with `id`.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Asks `server` once; the answer's id, within 5 s.
fn ask(server: std::net::SocketAddr, id: u16) -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.send_to(&dns_query(id, "pinned.test"), server).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).expect("no DNS answer within 5 s");
    assert!(n >= 12);
    u16::from_be_bytes([buf[0], buf[1]])
}

/// Hardening finding 1: a UDP flow still alive (a DNS query through a `direct` inbound's
/// hijack-dns) held the inbound's socket past `close`, so the reload could not bind the port
/// again and sb exited ("Address already in use"). Go reloads the same config fine.
#[test]
fn sighup_reloads_with_live_udp_flows_on_the_same_port() {
    let dir = scratch("run-hup-udp");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"log": {{"level": "info"}},
                "inbounds": [{{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": {port}, "network": "udp"}}],
                "dns": {{"servers": [{{"type": "hosts", "tag": "h", "predefined": {{"other.test": "192.0.2.9"}}}}],
                        "rules": [{{"domain": ["pinned.test"], "action": "predefined", "answer": ["pinned.test. 300 IN A 192.0.2.1"]}}]}},
                "route": {{"rules": [{{"inbound": "dns-in", "action": "hijack-dns"}}]}}}}"#
        ),
    )
    .unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    sb.wait_for("sb started");
    let server: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(ask(server, 0x1234), 0x1234);
    sb.signal("-HUP");
    let line = sb.wait_for("reload");
    assert!(line.contains("sb reloaded"), "{line}");
    assert_eq!(ask(server, 0x4321), 0x4321);
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}

/// Hardening finding 12: an inbound reachable beyond this machine without users is an open
/// proxy for anyone who can reach it; sb says so at start (Go starts it silently).
#[test]
fn run_warns_about_an_open_proxy() {
    let dir = scratch("run-open-proxy");
    std::fs::write(
        dir.join("config.json"),
        r#"{"log": {"level": "warn"}, "inbounds": [{"type": "mixed", "tag": "open", "listen": "0.0.0.0", "listen_port": 0},
            {"type": "mixed", "tag": "closed", "listen": "0.0.0.0", "listen_port": 0, "users": [{"username": "u", "password": "p"}]},
            {"type": "mixed", "tag": "local", "listen_port": 0}]}"#,
    )
    .unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("without users");
    assert!(
        line.starts_with("WARN[0000] inbound/mixed[open]: listening on 0.0.0.0:"),
        "{line}"
    );
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
    let rest: Vec<String> = sb.lines.try_iter().collect();
    assert!(
        !rest.iter().any(|l| l.contains("without users")),
        "only the open one is warned about: {rest:?}"
    );
}

/// One request on a keep-alive connection to the HTTP proxy; the status line, or `None`
/// when the proxy closed the connection.
fn proxied_get(
    c: &mut std::net::TcpStream,
    origin: std::net::SocketAddr,
    auth: &str,
) -> Option<String> {
    use std::io::{Read, Write};
    let req = format!(
        "GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
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
    // Read the body so the next response starts clean.
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).ok()?;
    text.lines().next().map(str::to_string)
}

/// Hardening finding 8: a keep-alive connection accepted before a reload kept the old users
/// and rules for every later request. After the reload, the old connection takes no new
/// request (the client reconnects, to the new config); users removed by the reload are out.
#[test]
fn after_sighup_an_old_keep_alive_connection_takes_no_new_request() {
    let origin = sb_tests::hello_origin();
    let dir = scratch("run-hup-users");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = |user: &str| {
        format!(
            r#"{{"log": {{"level": "info"}}, "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {port},
                "users": [{{"username": "{user}", "password": "p"}}]}}]}}"#
        )
    };
    std::fs::write(dir.join("config.json"), config("old")).unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    sb.wait_for("sb started");
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    // b2xkOnA= is base64("old:p").
    let first = proxied_get(&mut c, origin, "b2xkOnA=");
    assert!(
        first.as_deref().is_some_and(|l| l.contains(" 200 ")),
        "{first:?}"
    );
    std::fs::write(dir.join("config.json"), config("new")).unwrap();
    sb.signal("-HUP");
    sb.wait_for("sb reloaded");
    assert_eq!(
        proxied_get(&mut c, origin, "b2xkOnA="),
        None,
        "the old connection served a request after the reload"
    );
    let mut fresh = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    fresh
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        proxied_get(&mut fresh, origin, "b2xkOnA=")
            .as_deref()
            .map(|l| &l[..12]),
        Some("HTTP/1.1 407")
    );
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}

#[test]
fn sighup_with_a_bad_config_keeps_the_old_one_running() {
    let dir = scratch("run-hup");
    std::fs::write(dir.join("config.json"), mixed_config("info")).unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("tcp server started at");
    let addr = line.rsplit(' ').next().unwrap().to_string();
    sb.wait_for("sb started");
    std::fs::write(
        dir.join("config.json"),
        r#"{"inbounds": [{"type": "mixd"}]}"#,
    )
    .unwrap();
    sb.signal("-HUP");
    let err = sb.wait_for("reload service");
    assert!(err.contains("unknown inbound type \"mixd\""), "{err}");
    // Still serving on the old address.
    std::net::TcpStream::connect(&addr).unwrap();
    // A good config is taken.
    std::fs::write(dir.join("config.json"), mixed_config("info")).unwrap();
    sb.signal("-HUP");
    sb.wait_for("sb reloaded");
    sb.signal("-INT");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}

#[test]
fn run_fails_fast_when_a_port_is_taken() {
    let dir = scratch("run-port");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"inbounds": [{{"type": "socks", "tag": "s", "listen_port": {port}}}]}}"#),
    )
    .unwrap();
    let out = sb(&dir, &["run", "--disable-color"]);
    assert_eq!(out.status.code(), Some(1));
    // No `log` section: Go's default level, trace, so debug lines may come first.
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("FATAL[0000] start service: start inbound/socks[s]: ")),
        "{err}"
    );
}

#[test]
fn run_says_which_parts_it_ignores() {
    let dir = scratch("run-ignored");
    std::fs::write(
        dir.join("config.json"),
        r#"{"log": {"level": "warn"},
            "experimental": {"cache_file": {"enabled": true, "path": "cache.json", "store_dns": true}},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}]}"#,
    )
    .unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("store_dns:");
    assert_eq!(
        line,
        "WARN[0000] experimental.cache_file.store_dns: sb does not keep DNS answers across restarts; nothing is stored for it"
    );
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}

/// A TCP echo server on loopback, one thread per connection.
fn echo_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Sends `b"ping"` on `c` and reads it back; false when nothing comes within `wait`.
fn echoes(c: &mut std::net::TcpStream, wait: std::time::Duration) -> bool {
    use std::io::{Read, Write};
    c.set_read_timeout(Some(wait)).unwrap();
    c.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).is_ok() && &back == b"ping"
}

/// Hardening finding 7: the TCP inbounds hold at most as many connections as the open-file
/// limit allows (sb says the number at start); past it, new connections wait in the listen
/// backlog with a warning instead of failing accept in a loop, and are taken as soon as
/// one ends.
#[test]
fn connections_past_the_open_file_budget_wait_for_one_to_end() {
    let dir = scratch("run-conn-limit");
    let echo = echo_server();
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"log": {{"level": "debug"}}, "inbounds": [{{"type": "direct", "tag": "d", "listen_port": 0,
                "override_address": "127.0.0.1", "override_port": {}}}], "outbounds": [{{"type": "direct", "tag": "out"}}]}}"#,
            echo.port()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("prlimit");
    cmd.args([
        "--nofile=200:200",
        "--",
        env!("CARGO_BIN_EXE_sb"),
        "run",
        "--disable-color",
    ]);
    let sb = Running::spawn(&dir, cmd);
    let line = sb.wait_for("connections at once");
    // "... at most N connections at once (open-file limit 200)"
    let limit: usize = line
        .split("at most ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no limit in {line:?}"));
    assert!((8..100).contains(&limit), "{line}");
    let started = sb.wait_for("tcp server started at");
    let addr: std::net::SocketAddr = started.rsplit(' ').next().unwrap().parse().unwrap();
    let wait = std::time::Duration::from_secs(10);
    let mut held: Vec<_> = (0..limit)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            assert!(echoes(&mut c, wait));
            c
        })
        .collect();
    let mut extra = std::net::TcpStream::connect(addr).unwrap();
    sb.wait_for("new connections wait");
    assert!(!echoes(&mut extra, std::time::Duration::from_millis(300)));
    held.pop();
    let mut rest = [0u8; 4];
    extra.set_read_timeout(Some(wait)).unwrap();
    use std::io::Read;
    extra.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"ping");
}

/// A UDP echo server on loopback at `port`, if it is free.
fn udp_echo_server_at(port: u16) -> std::io::Result<std::net::SocketAddr> {
    let s = std::net::UdpSocket::bind(("127.0.0.1", port))?;
    let addr = s.local_addr()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    Ok(addr)
}

/// Hardening finding 1, the review's untested case: SIGHUP with live TCP and UDP flows
/// through a UDP-and-TCP inbound whose config changed, on the same port. The changed
/// inbound is closed (its sockets released) and bound again; the TCP flow from before
/// goes on, and the UDP client is served by the new socket.
#[test]
fn sighup_rebinds_a_changed_inbound_with_live_tcp_and_udp_flows() {
    let dir = scratch("run-hup-flows");
    // TCP and UDP echo on one port number, so one override_port serves both.
    let (tcp_echo, udp_echo) = (0..50)
        .find_map(|_| {
            let tcp = echo_server();
            udp_echo_server_at(tcp.port()).ok().map(|udp| (tcp, udp))
        })
        .expect("no port free for both TCP and UDP in 50 tries");
    assert_eq!(tcp_echo.port(), udp_echo.port());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = |timeout: &str| {
        format!(
            r#"{{"log": {{"level": "info"}},
                "inbounds": [{{"type": "direct", "tag": "d", "listen": "127.0.0.1", "listen_port": {port},
                               "udp_timeout": "{timeout}", "override_address": "127.0.0.1", "override_port": {}}}],
                "outbounds": [{{"type": "direct", "tag": "out"}}]}}"#,
            tcp_echo.port()
        )
    };
    std::fs::write(dir.join("config.json"), config("1m")).unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    sb.wait_for("sb started");
    let wait = std::time::Duration::from_secs(10);
    let at: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut tcp = std::net::TcpStream::connect(at).unwrap();
    assert!(echoes(&mut tcp, wait));
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(wait)).unwrap();
    let udp_echoes = || {
        udp.send_to(b"ping", at).unwrap();
        let mut b = [0u8; 16];
        matches!(udp.recv_from(&mut b), Ok((4, _))) && &b[..4] == b"ping"
    };
    assert!(udp_echoes());

    std::fs::write(dir.join("config.json"), config("2m")).unwrap();
    sb.signal("-HUP");
    let line = sb.wait_for("reload");
    assert!(line.contains("sb reloaded"), "{line}");
    assert!(
        echoes(&mut tcp, wait),
        "the TCP flow from before the reload"
    );
    assert!(udp_echoes(), "the UDP client after the reload");
    assert!(echoes(&mut std::net::TcpStream::connect(at).unwrap(), wait));
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}
