//! The `tor` outbound against a private Tor network of Debian `tor` processes
//! (`sb_tests::tor_net`), in a namespace with nothing but loopback. Root only (skipped with
//! the reason outside CI; a failure under CI). The network takes a minute or two to come
//! up, so one test starts it once and runs every scenario against it in turn; the scenario
//! that needs no network (authorities unreachable) runs meanwhile, in a namespace of its own.
//!
//! ```text
//!  curl ─> sb mixed ─> router ─> tor outbound (arti) ─> relays ─> exit ─> HTTP server
//!                                  └ relay connections: SbTcp ─> Dialer ─> (detour: Go's mixed)
//! ```

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::netns::Netns;
use sb_tests::tor_net::{self, TorNet};
use sb_tests::tun_lab::{Proxy, Running};
use sb_tests::{log_capture, GoSingBox};
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Size of the hashed transfer through Tor.
const TRANSFER: usize = 8 * 1024 * 1024;

#[test]
fn the_tor_outbound_on_a_private_tor_network() {
    if let Some(why) = tor_net::unavailable() {
        sb_tests::skip(&format!("CI must run the Tor tests: {why}"));
        return;
    }
    log_capture::install();
    // Needs no network: runs while the test network comes up.
    let unreachable = std::thread::spawn(an_unreachable_network_leaves_sb_up);
    let net = TorNet::start();
    eprintln!(
        "tor test network: the reference client fetched through the exit after {:?}",
        net.ready_after
    );
    arti_bootstraps_from_an_empty_directory_and_carries_flows(&net);
    relay_connections_go_through_the_detour(&net);
    an_external_tor_carries_flows_as_under_go(&net);
    arti_reaches_an_onion_service(&net);
    unreachable
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

/// A TCP port free on `ns`'s loopback now.
fn free_port(ns: &Netns) -> u16 {
    ns.free_tcp_ports(1)[0]
}

/// curl in `ns` through the SOCKS5 proxy `proxy` (`user:pass@host:port` or `host:port`).
fn curl(ns: &Netns, proxy: &str, url: &str, extra: &[&str]) -> (bool, String) {
    let proxy = format!("socks5h://{proxy}");
    let mut args = vec!["curl", "-sS", "--max-time", "90", "-x", &proxy];
    args.extend_from_slice(extra);
    args.push(url);
    let out = ns.exec(&args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// sb with a mixed inbound `m` on `port` (users alice and bob) routed to `outbounds[0]`.
fn config(port: u16, outbounds: &str) -> String {
    format!(
        r#"{{"log": {{"level": "debug"}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {port},
                           "users": [{{"username": "alice", "password": "a"}},
                                     {{"username": "bob", "password": "b"}}]}}],
            "outbounds": [{outbounds}]}}"#
    )
}

/// The last lines sb logged (for a failing assertion's message).
fn sb_log() -> String {
    let text = log_capture::text();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// The captured log lines that contain `needle`.
fn logged(needle: &str) -> Vec<String> {
    log_capture::text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn arti_bootstraps_from_an_empty_directory_and_carries_flows(net: &TorNet) {
    let data = net.scratch("arti");
    let port = free_port(&net.ns);
    let tor = format!(
        r#"{{"type": "tor", "tag": "tor", "data_directory": "{}", "arti_config": "{}"}}"#,
        data.display(),
        net.arti_toml.display()
    );
    let started = Instant::now();
    let sb: Running = Proxy::InProcess.start(&net.ns, &config(port, &tor));
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", net.http);

    // The first flow arrives before Tor has bootstrapped: it waits, then goes through.
    let alice = format!("alice:a@127.0.0.1:{port}");
    let (ok, body) = curl(&net.ns, &alice, &url("/first"), &[]);
    assert!(ok && body == "hello /first", "{body}\n{}", sb_log());
    let first = started.elapsed();
    let bootstrapped = logged("outbound/tor[tor]: Tor bootstrapped");
    assert_eq!(bootstrapped.len(), 1, "{}", log_capture::text());
    assert!(
        !logged("outbound/tor[tor]: bootstrap ").is_empty(),
        "no bootstrap progress was logged"
    );
    eprintln!("arti: first fetch {first:?} after sb started (empty data directory)");

    // A hashed multi-MiB transfer.
    let file = data.join("download");
    let t = Instant::now();
    let (ok, out) = curl(
        &net.ns,
        &alice,
        &url(&format!("/bytes/{TRANSFER}")),
        &["-o", &file.to_string_lossy()],
    );
    assert!(ok, "{out}");
    let took = t.elapsed();
    sb_tests::assert_bytes_file(&file, TRANSFER);
    eprintln!(
        "arti: {TRANSFER} bytes in {took:?} ({:.1} MiB/s)",
        TRANSFER as f64 / 1048576.0 / took.as_secs_f64()
    );

    // Isolation: alice's and bob's flows never share a circuit; each user's do.
    let bob = format!("bob:b@127.0.0.1:{port}");
    for (who, path) in [
        (&alice, "/a2"),
        (&bob, "/b1"),
        (&bob, "/b2"),
        (&alice, "/a3"),
    ] {
        let (ok, body) = curl(&net.ns, who, &url(path), &[]);
        assert!(ok && body == format!("hello {path}"), "{body}");
    }
    let mut circuits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in logged(" on circuit ") {
        let user = line
            .split("user ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("-")
            .to_string();
        let circuit = line
            .rsplit(" on circuit ")
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        circuits.entry(user).or_default().insert(circuit);
    }
    let (a, b) = (&circuits["alice"], &circuits["bob"]);
    assert!(
        a.is_disjoint(b),
        "alice and bob shared a circuit: {circuits:?}"
    );
    assert_eq!(
        b.len(),
        1,
        "bob's two flows did not share one circuit: {circuits:?}"
    );
    drop(sb);
}

fn relay_connections_go_through_the_detour(net: &TorNet) {
    // Go sing-box's mixed inbound is the SOCKS server the relay connections must go through.
    let Some(go) = GoSingBox::start_in(
        &net.ns,
        r#"{"log": {"level": "info"},
            "inbounds": [{"type": "mixed", "tag": "go-in", "listen": "127.0.0.1", "listen_port": 0}],
            "outbounds": [{"type": "direct"}]}"#,
        1,
    ) else {
        return;
    };
    let data = net.scratch("detour");
    let port = free_port(&net.ns);
    let outbounds = format!(
        r#"{{"type": "tor", "tag": "tor", "detour": "via-go", "data_directory": "{}", "arti_config": "{}"}},
           {{"type": "socks", "tag": "via-go", "server": "127.0.0.1", "server_port": {}}}"#,
        data.display(),
        net.arti_toml.display(),
        go.listening[0].port()
    );
    let sb = Proxy::InProcess.start(&net.ns, &config(port, &outbounds));
    let (ok, body) = curl(
        &net.ns,
        &format!("alice:a@127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{}/detour", net.http),
        &[],
    );
    assert!(
        ok && body == "hello /detour",
        "{body}\n--- Go:\n{}\n--- sb:\n{}",
        go.log_text(),
        sb_log()
    );
    // Every connection to a relay's OR port is Go's, none is this process's (sb runs in it).
    let out = net.ns.exec(&["ss", "-tnpH", "state", "established"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let (mine, go_pid) = (
        format!("pid={},", std::process::id()),
        format!("pid={},", go.pid()),
    );
    let mut via_go = 0;
    for line in table.lines() {
        let mut cols = line.split_whitespace();
        let peer = cols.nth(3).unwrap_or("");
        let to_relay = net
            .or_ports
            .iter()
            .any(|p| peer == format!("127.0.0.1:{p}"));
        if !to_relay {
            continue;
        }
        assert!(
            !line.contains(&mine),
            "sb reached a relay directly: {line}\n{table}"
        );
        if line.contains(&go_pid) {
            via_go += 1;
        }
    }
    assert!(
        via_go > 0,
        "no relay connection through Go's SOCKS server:\n{table}"
    );
    let relays_in_go_log = net
        .or_ports
        .iter()
        .filter(|p| go.logged(&format!("inbound connection to 127.0.0.1:{p}")))
        .count();
    assert!(relays_in_go_log > 0, "{}", go.log_text());
    drop(sb);
}

fn arti_reaches_an_onion_service(net: &TorNet) {
    let onion = net.onion();
    let port = free_port(&net.ns);
    let tor = format!(
        r#"{{"type": "tor", "tag": "tor", "data_directory": "{}", "arti_config": "{}"}}"#,
        net.scratch("onion").display(),
        net.arti_toml.display()
    );
    let sb = Proxy::InProcess.start(&net.ns, &config(port, &tor));
    let (ok, body) = curl(
        &net.ns,
        &format!("alice:a@127.0.0.1:{port}"),
        &format!("http://{onion}/onion"),
        &[],
    );
    assert!(ok && body == "hello /onion", "{body}\n{}", sb_log());
    drop(sb);
}

/// The established connections to the network's OR ports: (owning pid, `ss` line).
fn relay_connections(net: &TorNet) -> Vec<(u32, String)> {
    let out = net.ns.exec(&["ss", "-tnpH", "state", "established"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut found = Vec::new();
    for line in table.lines() {
        let peer = line.split_whitespace().nth(3).unwrap_or("");
        if !net
            .or_ports
            .iter()
            .any(|p| peer == format!("127.0.0.1:{p}"))
        {
            continue;
        }
        let pid = line
            .split("pid=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        found.push((pid, line.to_string()));
    }
    found
}

/// The outbound config of the external mode: the network's tor client arguments, as a
/// Go sing-box user would write them.
fn external_tor(net: &TorNet, data: &std::path::Path) -> String {
    let tor = ["/usr/sbin/tor", "/usr/bin/tor"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("tor");
    format!(
        r#"{{"type": "tor", "tag": "tor", "executable_path": "{tor}", "extra_args": {}, "data_directory": "{}"}}"#,
        serde_json::to_string(&net.client_args()).unwrap(),
        data.display()
    )
}

fn an_external_tor_carries_flows_as_under_go(net: &TorNet) {
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", net.http);
    // sb: tor's own connections leave through sb's upstream listener, so every connection
    // to a relay is this process's (sb dials them) or the network's own.
    let port = free_port(&net.ns);
    let started = Instant::now();
    let sb = Proxy::InProcess.start(
        &net.ns,
        &config(port, &external_tor(net, &net.scratch("ext"))),
    );
    let alice = format!("alice:a@127.0.0.1:{port}");
    let (ok, body) = curl(&net.ns, &alice, &url("/external"), &[]);
    assert!(ok && body == "hello /external", "{body}\n{}", sb_log());
    eprintln!(
        "external tor: first fetch {:?} after sb started",
        started.elapsed()
    );
    let file = net.scratch("ext-dl").join("download");
    let (ok, out) = curl(
        &net.ns,
        &alice,
        &url(&format!("/bytes/{TRANSFER}")),
        &["-o", &file.to_string_lossy()],
    );
    assert!(ok, "{out}");
    sb_tests::assert_bytes_file(&file, TRANSFER);
    let mut allowed = net.pids();
    allowed.push(std::process::id());
    let relays = relay_connections(net);
    for (pid, line) in &relays {
        assert!(
            allowed.contains(pid),
            "tor reached a relay around sb: {line}"
        );
    }
    assert!(
        relays.iter().any(|(pid, _)| *pid == std::process::id()),
        "no relay connection dialed by sb: {relays:?}"
    );
    assert!(
        !logged("tor relay connection to 127.0.0.1:").is_empty(),
        "{}",
        sb_log()
    );
    drop(sb);

    // Go sing-box runs the same outbound unchanged, with the same result.
    let go_data = net.scratch("go-ext");
    let go_config = format!(
        r#"{{"log": {{"level": "info"}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": 0}}],
            "outbounds": [{}]}}"#,
        external_tor(net, &go_data)
    );
    let Some(mut go) = GoSingBox::start_in(&net.ns, &go_config, 1) else {
        return;
    };
    let (ok, body) = curl(
        &net.ns,
        &go.listening[0].to_string(),
        &url("/external"),
        &[],
    );
    go.terminate();
    let orphans = tor_net::kill_tor_of(&go_data);
    assert!(ok && body == "hello /external", "{body}\n{}", go.log_text());
    if orphans > 0 {
        eprintln!("Go sing-box left {orphans} tor process(es) running after SIGTERM (killed)");
    }
}

/// arti pointed at authorities that do not answer: sb starts anyway, a flow to Tor fails
/// after the bound with the bootstrap percentage, and another outbound keeps working.
fn an_unreachable_network_leaves_sb_up() {
    let ns = Netns::new("torx");
    let dir = std::env::temp_dir().join(sb_tests::netns::unique("sb-torx"));
    std::fs::create_dir_all(&dir).unwrap();
    let closed = free_port(&ns);
    let arti = dir.join("arti.toml");
    std::fs::write(
        &arti,
        format!(
            "[address_filter]\nallow_local_addrs = true\n[tor_network]\nfallback_caches = [\n  \
             {{ rsa_identity = \"{}\", ed_identity = \"{}\", orports = [\"127.0.0.1:{closed}\"] }},\n]\n\
             [tor_network.authorities]\nv3idents = [\"{}\"]\n",
            "A".repeat(40),
            "A".repeat(43),
            "B".repeat(40)
        ),
    )
    .unwrap();
    let http = ns
        .spawn(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            std::thread::spawn(move || {
                for conn in l.incoming().flatten() {
                    std::thread::spawn(move || {
                        sb_tests::serve_http(conn, |p| format!("hello {p}"))
                    });
                }
            });
            addr
        })
        .join()
        .unwrap();
    let (t_port, d_port) = (free_port(&ns), free_port(&ns));
    let config = format!(
        r#"{{"log": {{"level": "debug"}},
            "inbounds": [{{"type": "mixed", "tag": "to-tor", "listen": "127.0.0.1", "listen_port": {t_port}}},
                         {{"type": "mixed", "tag": "to-direct", "listen": "127.0.0.1", "listen_port": {d_port}}}],
            "outbounds": [{{"type": "tor", "tag": "dead-tor", "data_directory": "{}", "arti_config": "{}"}},
                          {{"type": "direct", "tag": "direct"}}],
            "route": {{"rules": [{{"inbound": ["to-direct"], "outbound": "direct"}}]}}}}"#,
        dir.join("data").display(),
        arti.display()
    );
    let started = Instant::now();
    let sb = Proxy::InProcess.start(&ns, &config);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "sb waited for Tor to start"
    );
    let (ok, body) = curl(
        &ns,
        &format!("127.0.0.1:{d_port}"),
        &format!("http://{http}/direct"),
        &[],
    );
    assert!(ok && body == "hello /direct", "{body}");
    let t = Instant::now();
    let (ok, body) = curl(
        &ns,
        &format!("127.0.0.1:{t_port}"),
        &format!("http://{http}/tor"),
        &[],
    );
    assert!(
        !ok,
        "a flow went through a Tor that cannot bootstrap: {body}"
    );
    assert!(
        t.elapsed() >= Duration::from_secs(25),
        "the flow did not wait for the bootstrap: failed after {:?}",
        t.elapsed()
    );
    let said = logged("Tor is not bootstrapped yet (");
    assert!(!said.is_empty(), "{}", log_capture::text());
    // Still up: the other outbound carries flows.
    let (ok, body) = curl(
        &ns,
        &format!("127.0.0.1:{d_port}"),
        &format!("http://{http}/after"),
        &[],
    );
    assert!(ok && body == "hello /after", "{body}");
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
}
