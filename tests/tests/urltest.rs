//! The `urltest` outbound against real peers on loopback. The members reach a loopback HTTP
//! server (answering `204` to the test) in different ways: `direct`; through an `http`
//! outbound to an HTTP CONNECT proxy this test runs, which waits 300 ms before connecting
//! each tunnel (the slow member) or none (a quick one the test can cut off); through a `socks`
//! outbound to a port nobody listens on (refused). Checked: the group picks the fast member
//! and never the dead one (seen in its results, in the tracker's chain of a live flow and in
//! curl routed through it); `tolerance` keeps the earlier member when the faster one is not
//! faster by enough; when the quick path dies, a later test round moves the group to the
//! other member and, with `interrupt_exist_connections`, closes the flows running through
//! it; and Go sing-box 1.14.4, run on the same configs with its Clash API, chooses the same
//! member as sb (`GET /proxies/<group>` → `now`). A group that reaches itself is refused at
//! start with Go's message.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_adapters::outbound::urltest::Outcome;
use sb_tests::{curl, curl_status, GoSingBox, Instance};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the slow proxy waits before connecting each tunnel.
const SLOW: Duration = Duration::from_millis(300);

/// A loopback HTTP server answering every request `204 No Content` after 20 ms (so that no
/// member measures 0 ms, which Go's source treats as "no minimum yet" when comparing).
fn origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                if read_head(&mut c).is_some() {
                    std::thread::sleep(Duration::from_millis(20));
                    let _ = c.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                }
            });
        }
    });
    addr
}

/// Reads a request head byte by byte (nothing after it is consumed), at most 8 KiB.
fn read_head(c: &mut TcpStream) -> Option<String> {
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || c.read(&mut b).ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    c.set_read_timeout(None).ok()?;
    String::from_utf8(head).ok()
}

/// An HTTP CONNECT proxy on loopback that waits `delay` before connecting each tunnel.
/// Once `alive` is cleared it closes new connections at once; running tunnels go on.
struct Proxy {
    addr: SocketAddr,
    alive: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

fn proxy(delay: Duration) -> Proxy {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = Proxy {
        addr: l.local_addr().unwrap(),
        alive: Arc::new(AtomicBool::new(true)),
        accepted: Arc::default(),
    };
    let (alive, accepted) = (p.alive.clone(), p.accepted.clone());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            accepted.fetch_add(1, Ordering::SeqCst);
            if alive.load(Ordering::SeqCst) {
                std::thread::spawn(move || tunnel(c, delay));
            }
        }
    });
    p
}

fn tunnel(mut c: TcpStream, delay: Duration) -> Option<()> {
    let head = read_head(&mut c)?;
    let target = head.split_whitespace().nth(1)?.to_string();
    std::thread::sleep(delay);
    let up = TcpStream::connect(target).ok()?;
    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .ok()?;
    let (mut c2, mut up2) = (c.try_clone().ok()?, up.try_clone().ok()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Write);
    });
    let (mut c, mut up) = (c, up);
    let _ = std::io::copy(&mut c, &mut up);
    let _ = up.shutdown(std::net::Shutdown::Write);
    Some(())
}

/// A loopback port nobody listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP echo server on loopback.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
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

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A member's outbound object.
fn member(tag: &str, how: &str) -> String {
    format!(r#"{{"tag": "{tag}", {how}}}"#)
}

fn direct() -> String {
    r#""type": "direct""#.into()
}

fn via_http(p: &Proxy) -> String {
    format!(
        r#""type": "http", "server": "127.0.0.1", "server_port": {}"#,
        p.addr.port()
    )
}

fn via_dead_socks() -> String {
    format!(
        r#""type": "socks", "server": "127.0.0.1", "server_port": {}"#,
        dead_port()
    )
}

/// A config routing everything to urltest group `g` over `members` (tags in that order),
/// with `extra` group options. Inbound 0 is `mixed`, inbound 1 a `direct` one to `echo`.
fn config(origin: SocketAddr, echo: SocketAddr, members: &[String], extra: &str) -> String {
    let tags: Vec<String> = members
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            format!("{:?}", v["tag"].as_str().unwrap())
        })
        .collect();
    format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}},
                         {{"type": "direct", "tag": "d", "listen_port": 0,
                           "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{}, {{"type": "urltest", "tag": "g", "outbounds": [{}],
                                "url": "http://{origin}/generate_204"{extra}}}],
            "route": {{"final": "g"}}}}"#,
        echo.port(),
        members.join(", "),
        tags.join(", ")
    )
}

/// Waits until every member of `g` has a result (the first round has finished).
fn first_round(sb: &Instance) {
    let g = &sb.url_tests["g"];
    eventually("the first test round", || {
        g.results().len() == g.members().len()
    });
}

fn now(sb: &Instance) -> Option<String> {
    sb.url_tests["g"].now()
}

fn delay(sb: &Instance, tag: &str) -> Option<u16> {
    match sb.url_tests["g"]
        .results()
        .get(tag)
        .map(|r| r.outcome.clone())
    {
        Some(Outcome::Delay(ms)) => Some(ms),
        _ => None,
    }
}

/// Opens a flow through the `direct` inbound to the echo server, proves it relays, and
/// returns it with the chain the tracker lists for it.
fn open_flow(sb: &Instance) -> (TcpStream, Vec<String>) {
    let before: Vec<String> = sb.tracker.snapshot().iter().map(|t| t.id.clone()).collect();
    let mut c = TcpStream::connect(sb.addr(1)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    let mut chain = Vec::new();
    eventually("the flow to be listed", || {
        let flows = sb.tracker.snapshot();
        let Some(t) = flows.iter().find(|t| !before.contains(&t.id)) else {
            return false;
        };
        chain = t.chain.clone();
        true
    });
    (c, chain)
}

/// True once the peer closed `c` (EOF or reset), within its read timeout.
fn closed_by_peer(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(c.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn the_fast_member_is_chosen_and_the_dead_one_never() {
    let (origin, echo, slow) = (origin(), echo_server(), proxy(SLOW));
    let members = [
        member("dead", &via_dead_socks()),
        member("slow", &via_http(&slow)),
        member("fast", &direct()),
    ];
    let sb = Instance::start(&config(origin, echo, &members, ""));
    first_round(&sb);
    assert_eq!(now(&sb).as_deref(), Some("fast"));
    let results = sb.url_tests["g"].results();
    assert!(
        matches!(results["dead"].outcome, Outcome::Failed(_)),
        "{results:?}"
    );
    let (s, f) = (delay(&sb, "slow").unwrap(), delay(&sb, "fast").unwrap());
    assert!(s >= 300 && f + 200 < s, "slow {s} ms, fast {f} ms");

    // curl through the group reaches the origin, and not through the slow proxy.
    let tunnels = slow.accepted.load(Ordering::SeqCst);
    let proxy = format!("http://{}", sb.addr(0));
    let status = curl_status(&["-x", &proxy, &format!("http://{origin}/via-group")]);
    assert_eq!(status, "204");
    assert_eq!(slow.accepted.load(Ordering::SeqCst), tunnels);
    let (_c, chain) = open_flow(&sb);
    assert_eq!(chain, ["fast", "g"]);
}

#[test]
fn tolerance_keeps_the_earlier_member_when_the_other_is_not_faster_by_enough() {
    let (origin, echo, slow) = (origin(), echo_server(), proxy(SLOW));
    let members = [member("slow", &via_http(&slow)), member("fast", &direct())];
    // 300 ms apart: a tolerance of 1000 ms keeps the first member the round looked at.
    let sb = Instance::start(&config(origin, echo, &members, r#", "tolerance": 1000"#));
    first_round(&sb);
    assert_eq!(now(&sb).as_deref(), Some("slow"));
    assert!(delay(&sb, "fast").unwrap() + 200 < delay(&sb, "slow").unwrap());
    let (_c, chain) = open_flow(&sb);
    assert_eq!(chain, ["slow", "g"]);
    let tunnels = slow.accepted.load(Ordering::SeqCst);
    let proxy = format!("http://{}", sb.addr(0));
    let got = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-x",
        &proxy,
        &format!("http://{origin}/x"),
    ]);
    assert_eq!(got.body, "204");
    assert_eq!(slow.accepted.load(Ordering::SeqCst), tunnels + 1);
}

/// The quick member's proxy stops taking tunnels; a later round moves the group to the slow
/// member. Returns the flow opened before the switch.
fn fail_over(interrupt: bool) -> (Instance, TcpStream) {
    let (origin, echo) = (origin(), echo_server());
    let (quick, slow) = (proxy(Duration::ZERO), proxy(SLOW));
    let members = [
        member("quick", &via_http(&quick)),
        member("slow", &via_http(&slow)),
    ];
    let extra = format!(r#", "interval": "1s", "interrupt_exist_connections": {interrupt}"#);
    let sb = Instance::start(&config(origin, echo, &members, &extra));
    first_round(&sb);
    assert_eq!(now(&sb).as_deref(), Some("quick"));
    // The flow also marks the group as in use, which keeps the rounds going.
    let (c, chain) = open_flow(&sb);
    assert_eq!(chain, ["quick", "g"]);

    quick.alive.store(false, Ordering::SeqCst);
    eventually("a round to move the group", || {
        now(&sb).as_deref() == Some("slow")
    });
    assert!(matches!(
        sb.url_tests["g"].results()["quick"].outcome,
        Outcome::Failed(_)
    ));
    (sb, c)
}

#[test]
fn a_dead_path_moves_the_group_and_interrupts_its_flows() {
    let (sb, mut c) = fail_over(true);
    assert!(closed_by_peer(&mut c), "the flow survived the switch");
    let (_c2, chain) = open_flow(&sb);
    assert_eq!(chain, ["slow", "g"]);
}

#[test]
fn without_interrupt_running_flows_survive_the_switch() {
    let (sb, mut c) = fail_over(false);
    c.write_all(b"pong").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"pong");
    let (_c2, chain) = open_flow(&sb);
    assert_eq!(chain, ["slow", "g"]);
}

/// The same config for Go and sb: no inbounds, the Clash API on a port the OS picks.
fn parity_config(origin: SocketAddr, members: &[String], extra: &str) -> String {
    let tags: Vec<String> = members
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            format!("{:?}", v["tag"].as_str().unwrap())
        })
        .collect();
    format!(
        r#"{{"log": {{"level": "debug"}},
            "outbounds": [{}, {{"type": "urltest", "tag": "g", "outbounds": [{}],
                                "url": "http://{origin}/generate_204"{extra}}}],
            "route": {{"final": "g"}},
            "experimental": {{"clash_api": {{"external_controller": "127.0.0.1:0"}}}}}}"#,
        members.join(", "),
        tags.join(", ")
    )
}

/// Go's choice for group `g` after its first round: `now` of `GET /proxies/g` once Go has
/// logged a result for every member. (Before that, Go's `now` is the best member tested so
/// far, which need not be the round's choice.)
fn go_now(go: &GoSingBox, members: &[String]) -> String {
    for m in members {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        let tag = v["tag"].as_str().unwrap();
        eventually(&format!("Go's test of {tag}"), || {
            go.logged(&format!("outbound {tag} available"))
                || go.logged(&format!("outbound {tag} unavailable"))
        });
    }
    let api = go.clash_api.unwrap();
    let got = curl(&[&format!("http://{api}/proxies/g")]);
    let v: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    v["now"].as_str().unwrap().to_string()
}

#[test]
fn go_and_sb_choose_the_same_member() {
    let (origin, slow) = (origin(), proxy(SLOW));
    let scenarios = [
        (
            "fast, slow and dead",
            vec![
                member("dead", &via_dead_socks()),
                member("slow", &via_http(&slow)),
                member("fast", &direct()),
            ],
            "",
            "fast",
        ),
        (
            "within the tolerance",
            vec![member("slow", &via_http(&slow)), member("fast", &direct())],
            r#", "tolerance": 1000"#,
            "slow",
        ),
        (
            "slow and dead",
            vec![
                member("dead", &via_dead_socks()),
                member("slow", &via_http(&slow)),
            ],
            "",
            "slow",
        ),
        (
            "all dead",
            vec![
                member("dead", &via_dead_socks()),
                member("dead2", &via_dead_socks()),
            ],
            "",
            "dead",
        ),
    ];
    for (name, members, extra, expected) in scenarios {
        let cfg = parity_config(origin, &members, extra);
        let Some(go) = GoSingBox::start_with_clash_api(&cfg, 0) else {
            return;
        };
        let go_choice = go_now(&go, &members);
        drop(go);
        let sb = Instance::start(&cfg);
        first_round(&sb);
        assert_eq!(go_choice, expected, "{name}: Go chose {go_choice}");
        assert_eq!(now(&sb).unwrap(), go_choice, "{name}: sb differs from Go");
    }
}

#[test]
fn a_group_that_reaches_itself_is_refused_like_go() {
    let config = r#"{"log": {"level": "info"},
        "outbounds": [{"type": "direct", "tag": "d"},
                      {"type": "urltest", "tag": "a", "outbounds": ["b", "d"]},
                      {"type": "selector", "tag": "b", "outbounds": ["a"]}]}"#;
    let loaded = sb_config::load_text("c.json", config).unwrap();
    let e = sb_adapters::registry::build(&loaded.config)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(e, "circular outbound dependency: a -> b -> a");

    let Some(bin) = sb_tests::go_sing_box() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("sb-urltest-cycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.json");
    std::fs::write(&file, config).unwrap();
    let mut child = std::process::Command::new(bin)
        .args(["run", "--disable-color", "-c"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("Go kept running a config with a cycle");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(stderr.contains(&e), "Go said: {stderr}");
}
