//! The `ssh` outbound against a real OpenSSH sshd on loopback (tests/src/sshd.rs): password
//! and every key format, pinned host keys, a 100 MiB transfer and 50 concurrent flows on
//! one session, a client that stops reading holding up only its own flow, the server going
//! away and coming back, a detour through Go sing-box's SOCKS inbound, UDP refused at
//! routing, and the same outcomes from Go sing-box's own `ssh` outbound on the same configs.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::flow::{Destination, FlowContext, Network};
use sb_tests::sshd::{self, Sshd};
use sb_tests::{curl, hello_origin, GoSingBox, Instance};
use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The test sshd, or `None` (outside CI) with the reason printed.
fn sshd() -> Option<Sshd> {
    if let Some(why) = sshd::unavailable() {
        sb_tests::skip(&format!("CI must run the SSH tests: {why}"));
        return None;
    }
    Some(Sshd::start())
}

/// sb with a mixed inbound whose only outbound is `ssh` with `fields` (JSON members).
fn sb_via_ssh(s: &Sshd, fields: &str) -> Instance {
    Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}],
            "outbounds": [{{"type": "ssh", "tag": "ssh", "server": "127.0.0.1", "server_port": {} {fields}}}]}}"#,
        s.addr.port()
    ))
}

fn get(proxy: SocketAddr, origin: SocketAddr, path: &str) -> (i32, String) {
    let r = curl(&[
        "-x",
        &format!("socks5h://{proxy}"),
        &format!("http://127.0.0.1:{}/{path}", origin.port()),
    ]);
    (r.code, r.body)
}

/// What the ssh outbound of `sb` says when it opens a connection to `origin` directly.
fn dial_error(sb: &Instance, origin: SocketAddr) -> String {
    let o = sb.dispatcher.outbound("ssh").unwrap();
    let flow = FlowContext::new(
        "t".into(),
        "mixed",
        Network::Tcp,
        "127.0.0.1:1".parse().unwrap(),
        Destination::from_socket(origin),
    );
    let dest = flow.destination.clone();
    match sb.rt.block_on(o.connect_tcp(&flow, &dest)) {
        Ok(_) => "connected".into(),
        Err(e) => e.to_string(),
    }
}

fn json_lines(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::to_string(&text.lines().collect::<Vec<_>>()).unwrap()
}

#[test]
fn password_and_every_key_format_log_in() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let password = format!(
        r#", "user": "{}", "password": "{}""#,
        sshd::PASSWORD_USER,
        sshd::PASSWORD
    );
    let mut cases = vec![("password".to_string(), password)];
    for (name, args, pass) in [
        ("ed25519", vec!["-t", "ed25519", "-N", ""], ""),
        ("ecdsa", vec!["-t", "ecdsa", "-N", ""], ""),
        ("rsa", vec!["-t", "rsa", "-b", "2048", "-N", ""], ""),
        (
            "rsa-pem",
            vec!["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            "",
        ),
        (
            "ecdsa-pkcs8",
            vec!["-t", "ecdsa", "-m", "PKCS8", "-N", ""],
            "",
        ),
        (
            "ed25519-encrypted",
            vec!["-t", "ed25519", "-N", "secret pass"],
            "secret pass",
        ),
    ] {
        let kp = s.authorize(name, &args);
        let pass = if pass.is_empty() {
            String::new()
        } else {
            format!(r#", "private_key_passphrase": "{pass}""#)
        };
        cases.push((
            format!("{name} by path"),
            format!(r#", "private_key_path": "{}" {pass}"#, kp.private.display()),
        ));
        cases.push((
            format!("{name} inline"),
            format!(r#", "private_key": {} {pass}"#, json_lines(&kp.private)),
        ));
    }
    for (name, fields) in cases {
        let sb = sb_via_ssh(&s, &fields);
        assert_eq!(
            get(sb.addr(0), o, name.replace(' ', "-").as_str()),
            (0, format!("hello from origin /{}", name.replace(' ', "-"))),
            "{name}"
        );
    }
}

#[test]
fn wrong_credentials_and_host_keys_fail_clearly() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let wrong_password = sb_via_ssh(
        &s,
        &format!(
            r#", "user": "{}", "password": "not it""#,
            sshd::PASSWORD_USER
        ),
    );
    let e = dial_error(&wrong_password, o);
    assert!(
        e.contains("unable to authenticate, attempted methods [none password]"),
        "{e}"
    );
    assert!(
        !e.contains("not it"),
        "the password leaked into the error: {e}"
    );

    let stranger = s.stranger("stranger");
    let wrong_key = sb_via_ssh(
        &s,
        &format!(r#", "private_key_path": "{}""#, stranger.private.display()),
    );
    let e = dial_error(&wrong_key, o);
    assert!(e.contains("attempted methods [none publickey]"), "{e}");

    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let pinned = sb_via_ssh(
        &s,
        &format!(
            r#", "private_key_path": "{}", "host_key": ["{}"]"#,
            key.private.display(),
            s.host_key
        ),
    );
    assert_eq!(get(pinned.addr(0), o, "pinned").0, 0);
    let other_host = s.stranger("other-host");
    let mismatch = sb_via_ssh(
        &s,
        &format!(
            r#", "private_key_path": "{}", "host_key": ["{}"]"#,
            key.private.display(),
            other_host.public
        ),
    );
    let e = dial_error(&mismatch, o);
    let server_key: Vec<&str> = s.host_key.split_whitespace().take(2).collect();
    assert!(
        e.contains(&format!(
            "host key mismatch, server send {} {}",
            server_key[0], server_key[1]
        )),
        "{e}"
    );
    assert_ne!(get(mismatch.addr(0), o, "x").0, 0);
}

#[test]
fn big_transfer_and_fifty_flows_share_one_session() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let sb = sb_via_ssh(
        &s,
        &format!(r#", "private_key_path": "{}""#, key.private.display()),
    );
    let p = sb.addr(0);
    let file = std::env::temp_dir().join(format!("sb-ssh-big-{}", std::process::id()));
    let r = curl(&[
        "--max-time",
        "120",
        "-x",
        &format!("socks5h://{p}"),
        "-o",
        file.to_str().unwrap(),
        &format!("http://127.0.0.1:{}/big", o.port()),
    ]);
    assert_eq!(r.code, 0);
    sb_tests::assert_big_file(&file);
    std::fs::remove_file(&file).unwrap();

    let flows: Vec<_> = (0..50)
        .map(|i| std::thread::spawn(move || get(p, o, &format!("flow{i}"))))
        .collect();
    for (i, t) in flows.into_iter().enumerate() {
        assert_eq!(
            t.join().unwrap(),
            (0, format!("hello from origin /flow{i}"))
        );
    }
    assert_eq!(s.sessions(), 1, "every flow must ride the one SSH session");
    // The client announced itself as OpenSSH 7.x or 8.x (Go's random version).
    let log = s.log();
    assert!(
        log.contains("remote software version OpenSSH_7.")
            || log.contains("remote software version OpenSSH_8."),
        "{log}"
    );
}

#[test]
fn a_restarted_server_is_reconnected_and_a_dead_one_fails_fast() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let sb = sb_via_ssh(
        &s,
        &format!(r#", "private_key_path": "{}""#, key.private.display()),
    );
    let p = sb.addr(0);
    assert_eq!(get(p, o, "before").0, 0);
    // An in-flight flow: the 100 MiB body, cut off when the server dies.
    let big = std::thread::spawn(move || {
        curl(&[
            "-x",
            &format!("socks5h://{p}"),
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{}/big", o.port()),
        ])
        .code
    });
    // Wait (bounded) until the transfer is really under way through the session.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sb
        .tracker
        .snapshot()
        .iter()
        .any(|t| t.counters.down.load(std::sync::atomic::Ordering::Relaxed) > 1024 * 1024)
    {
        assert!(Instant::now() < deadline, "the transfer never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    s.down();
    assert_ne!(big.join().unwrap(), 0, "a flow survived its server");
    // While the server is down, flows fail quickly, and no attempt is made for each of them.
    for _ in 0..5 {
        let started = Instant::now();
        assert_ne!(get(p, o, "down").0, 0);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a flow hung on a dead server"
        );
    }
    s.up();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if get(p, o, "after").0 == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnect within 40 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.sessions(), 2, "one session before, one after");
}

#[test]
fn ssh_dialed_through_a_go_socks_detour() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let Some(go) = GoSingBox::start(
        r#"{"log": {"level": "info"},
            "inbounds": [{"type": "mixed", "tag": "go-in", "listen": "127.0.0.1", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct", "inet4_bind_address": "127.0.0.3"}]}"#,
        1,
    ) else {
        return;
    };
    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let g = go.listening[0];
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}],
            "outbounds": [{{"type": "ssh", "tag": "ssh", "server": "127.0.0.1", "server_port": {},
                            "private_key_path": "{}", "detour": "go"}},
                          {{"type": "socks", "tag": "go", "server": "{}", "server_port": {}}}],
            "route": {{"final": "ssh"}}}}"#,
        s.addr.port(),
        key.private.display(),
        g.ip(),
        g.port()
    ));
    assert_eq!(
        get(sb.addr(0), o, "detour"),
        (0, "hello from origin /detour".into())
    );
    // Go's direct outbound binds 127.0.0.3: sshd saw the session come from Go, not from sb.
    assert!(s.log().contains("Connection from 127.0.0.3"), "{}", s.log());
}

#[test]
fn udp_is_refused_when_routed_not_when_sent() {
    let Some(s) = sshd() else { return };
    let sb = sb_via_ssh(&s, r#", "password": "x""#);
    let mut flow = FlowContext::new(
        "m".into(),
        "mixed",
        Network::Udp,
        "127.0.0.1:1".parse().unwrap(),
        Destination::from_host("127.0.0.1", 53),
    );
    match sb.dispatcher.decide(&mut flow) {
        sb_core::dispatch::Decision::Fail(why) => {
            assert_eq!(why.to_string(), "udp is not supported by outbound: ssh")
        }
        _ => panic!("a UDP flow was routed to the ssh outbound"),
    }
    assert_eq!(
        s.sessions(),
        0,
        "routing a UDP flow must not dial the server"
    );
}

#[test]
fn go_ssh_outbound_gives_the_same_outcomes() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let stranger = s.stranger("stranger");
    let other_host = s.stranger("other-host");
    let cases = [
        (
            "password",
            format!(
                r#", "user": "{}", "password": "{}""#,
                sshd::PASSWORD_USER,
                sshd::PASSWORD
            ),
            true,
        ),
        (
            "wrong password",
            format!(r#", "user": "{}", "password": "nope""#, sshd::PASSWORD_USER),
            false,
        ),
        (
            "key",
            format!(r#", "private_key_path": "{}""#, key.private.display()),
            true,
        ),
        (
            "unknown key",
            format!(r#", "private_key_path": "{}""#, stranger.private.display()),
            false,
        ),
        (
            "pinned",
            format!(
                r#", "private_key_path": "{}", "host_key": ["{}"]"#,
                key.private.display(),
                s.host_key
            ),
            true,
        ),
        (
            "wrong pin",
            format!(
                r#", "private_key_path": "{}", "host_key": ["{}"]"#,
                key.private.display(),
                other_host.public
            ),
            false,
        ),
    ];
    for (name, fields, works) in cases {
        let config = format!(
            r#"{{"log": {{"level": "info"}},
                "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": 0}}],
                "outbounds": [{{"type": "ssh", "tag": "ssh", "server": "127.0.0.1", "server_port": {} {fields}}}]}}"#,
            s.addr.port()
        );
        let Some(go) = GoSingBox::start(&config, 1) else {
            return;
        };
        let sb = Instance::start(&config.replace(r#""level": "info""#, r#""disabled": true"#));
        let go_result = get(go.listening[0], o, "same");
        let sb_result = get(sb.addr(0), o, "same");
        assert_eq!(go_result.0 == 0, works, "Go, {name}: {go_result:?}");
        assert_eq!(sb_result, go_result, "{name}");
    }
}

#[test]
fn the_example_config_works_against_a_real_server() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let text = std::fs::read_to_string(sb_tests::workspace().join("configs/ssh.json")).unwrap();
    let pinned_example =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5u65p6RexiwaEgbMBMTBHN2y9RvtaDGIC2Xx7a1lTc";
    assert!(text.contains(pinned_example));
    let config = text
        .replace("203.0.113.22", "127.0.0.1")
        .replace(
            r#""server_port": 22"#,
            &format!(r#""server_port": {}"#, s.addr.port()),
        )
        .replace(
            r#""user": "alice""#,
            &format!(r#""user": "{}""#, sshd::PASSWORD_USER),
        )
        .replace("change-me", sshd::PASSWORD)
        .replace(pinned_example, &s.host_key)
        .replace(r#""listen_port": 1080"#, r#""listen_port": 0"#)
        .replace(r#""level": "info""#, r#""disabled": true"#);
    let sb = Instance::start(&config);
    // 127.0.0.1 is private, so the example routes it `direct`; a name goes through SSH.
    let r = curl(&[
        "-x",
        &format!("socks5h://{}", sb.addr(0)),
        &format!("http://localhost:{}/example", o.port()),
    ]);
    assert_eq!((r.code, r.body.as_str()), (0, "hello from origin /example"));
    assert_eq!(s.sessions(), 1, "the example's flow did not go through SSH");
}

#[test]
fn a_refused_channel_fails_only_its_flow() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let sb = sb_via_ssh(
        &s,
        &format!(r#", "private_key_path": "{}""#, key.private.display()),
    );
    let p = sb.addr(0);
    assert_eq!(get(p, o, "first").0, 0);
    // A port nothing listens on: sshd refuses the channel, in Go's words.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = dial_error(&sb, closed);
    assert!(e.starts_with("ssh: rejected: connect failed"), "{e}");
    // Through SOCKS5 the client gets a failure reply; the session and other flows live on.
    assert_ne!(
        curl(&["-x", &format!("socks5://{p}"), &format!("http://{closed}/")]).code,
        0
    );
    assert_eq!(get(p, o, "after").0, 0);
    assert_eq!(s.sessions(), 1);
}

#[test]
fn a_slow_reader_stalls_only_its_own_flow() {
    use std::io::Write;
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let sb = sb_via_ssh(
        &s,
        &format!(r#", "private_key_path": "{}""#, key.private.display()),
    );
    let p = sb.addr(0);
    // A SOCKS5 flow asks for the 100 MiB body and, once it is flowing, stops reading.
    let mut slow = std::net::TcpStream::connect(p).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    slow.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0]);
    let mut req = vec![5, 1, 0, 1, 127, 0, 0, 1];
    req.extend_from_slice(&o.port().to_be_bytes());
    slow.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    slow.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0, "SOCKS5 reply {reply:?}");
    slow.write_all(b"GET /big HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut status = [0u8; 12];
    slow.read_exact(&mut status).unwrap();
    assert_eq!(
        &status,
        b"HTTP/1.0 200",
        "{}",
        String::from_utf8_lossy(&status)
    );
    // The rest of the body fills the socket buffers and then that one channel's window
    // within a fraction of a second; flows opened on the same session keep completing
    // promptly all along (at least five of them, for three seconds).
    let watching = Instant::now();
    let mut i = 0;
    while i < 5 || watching.elapsed() < Duration::from_secs(3) {
        assert!(i < 10_000, "runaway loop");
        let started = Instant::now();
        assert_eq!(
            get(p, o, &format!("other{i}")),
            (0, format!("hello from origin /other{i}")),
            "flow {i} behind a slow reader"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "flow {i} took {:?}",
            started.elapsed()
        );
        i += 1;
    }
    assert_eq!(s.sessions(), 1, "every flow must ride the one SSH session");
    drop(slow);
}

/// Hardening finding 17: the test account has a known password, so the machine's own sshd
/// must refuse it (only the tests' sshd, with its own config file, lets it in), and the
/// system's ssh service must not be left enabled by the test setup.
#[test]
fn the_system_sshd_refuses_the_test_account() {
    if sshd().is_none() {
        return;
    }
    let effective = std::process::Command::new("/usr/sbin/sshd")
        .args(["-T", "-C", "user=sbtest,host=localhost,addr=127.0.0.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&effective.stdout).to_lowercase();
    assert!(
        text.lines().any(|l| l == "denyusers sbtest"),
        "the system sshd would let sbtest in: {}",
        String::from_utf8_lossy(&effective.stderr)
    );
    let enabled = std::process::Command::new("systemctl")
        .args(["is-enabled", "ssh.service"])
        .output();
    if let Ok(out) = enabled {
        let state = String::from_utf8_lossy(&out.stdout);
        assert!(
            !matches!(state.trim(), "enabled" | "enabled-runtime"),
            "ssh.service is {state}"
        );
    }
}

/// Hardening finding 6: sshd answers a `direct-tcpip` open only once its own connect is
/// done, so a destination that drops SYNs holds the channel open; the flow must give up
/// within the outbound's `connect_timeout`, and the session stays up for other flows.
#[test]
fn a_channel_open_that_never_completes_times_out() {
    let Some(s) = sshd() else { return };
    let o = hello_origin();
    let key = s.authorize("client", &["-t", "ed25519", "-N", ""]);
    let sb = sb_via_ssh(
        &s,
        &format!(
            r#", "private_key_path": "{}", "connect_timeout": "1s""#,
            key.private.display()
        ),
    );
    assert_eq!(get(sb.addr(0), o, "first").0, 0);
    let tarpit = sb_tests::SynTarpit::start();
    let started = Instant::now();
    let e = dial_error(&sb, tarpit.addr);
    let took = started.elapsed();
    assert!(e.contains("no answer within 1s"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(get(sb.addr(0), o, "after").0, 0);
    assert_eq!(s.sessions(), 1);
}
