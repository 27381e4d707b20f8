//! `tun` with `auto_route` and `route.auto_detect_interface`, in network namespaces the test
//! creates (root only; skipped with a reason outside CI, a failure under CI). The test adds
//! no route or rule of its own: the client namespace has only a default route via the veth.
//!
//! ```text
//!  client ns: curl ─> sb's rules (9000..9010) ─> table 2022 ─> sbar0 ─> sb
//!             sb's direct outbound, bound to the veth (auto_detect_interface) ─> veth ─┐
//!  remote ns: HTTP :8080 on 198.18.7.1, .3, .4; UDP :53 :54 on 10.200.0.2  <──────────┘
//! ```
//!
//! The rule and route texts are compared with what Go sing-box 1.14.4 installs (the same
//! layout was observed in /work/notes; the Go parity test runs Go in the same setup).

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::tracker::Tracker;
use sb_tests::netns::{self, Netns};
use sb_tests::tun_lab::{out, state, Proxy, Running};
use sb_tests::Instance;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TUN: &str = "sbar0";

/// The kernel's own rules, before and after sb.
const BASE_RULES4: &str =
    "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n";
const BASE_RULES6: &str = "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n";

/// Go's rules for the base config (observed with Go sing-box 1.14.4, device name replaced).
fn go_rules4() -> String {
    format!(
        "0:\tfrom all lookup local
9000:\tfrom all to 172.19.0.0/30 lookup 2022
9001:\tfrom all lookup 2022 suppress_prefixlength 0
9002:\tnot from all dport 53 lookup main suppress_prefixlength 0
9002:\tfrom all iif {TUN} goto 9010
9003:\tnot from all iif lo lookup 2022
9003:\tfrom 0.0.0.0 iif lo lookup 2022
9003:\tfrom 172.19.0.0/30 iif lo lookup 2022
9010:\tfrom all nop
32766:\tfrom all lookup main
32767:\tfrom all lookup default
"
    )
}

fn go_rules6() -> String {
    format!(
        "0:\tfrom all lookup local
9000:\tfrom all lookup 2022 suppress_prefixlength 0
9001:\tnot from all dport 53 lookup main suppress_prefixlength 0
9001:\tfrom fdfe:dcba:9876::/126 iif lo lookup 2022
9002:\tfrom all iif {TUN} goto 9010
9002:\tfrom ::/1 iif lo goto 9010
9002:\tfrom 8000::/1 iif lo goto 9010
9003:\tfrom all lookup 2022
9010:\tfrom all nop
32766:\tfrom all lookup main
"
    )
}

fn go_routes() -> String {
    format!(
        "default via 172.19.0.2 dev {TUN}\n---\ndefault via fdfe:dcba:9876::2 dev {TUN} metric 1024 pref medium\n"
    )
}

/// sb in process in `ns`; dropping it closes the instance (which removes the rules and
/// routes) and waits for that.
fn start_sb(ns: &Netns, config: String) -> Running {
    Proxy::InProcess.start(ns, &config)
}

/// sb's tracker (always there in process).
fn tracker(sb: &Running) -> &Tracker {
    sb.tracker().expect("in process")
}

/// The config; `tun_extra` / `route_extra` are appended to the tun inbound / route rules.
fn config(tun_extra: &str) -> String {
    format!(
        r#"{{
  "log": {{ "level": "warn" }},
  "inbounds": [{{
    "type": "tun", "tag": "tun-in", "interface_name": "{TUN}", "stack": "gvisor",
    "address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"], "auto_route": true{tun_extra}
  }}],
  "outbounds": [{{ "type": "direct", "tag": "direct" }}, {{ "type": "block", "tag": "block" }}],
  "route": {{
    "auto_detect_interface": true,
    "rules": [
      {{ "ip_cidr": ["198.18.7.3/32", "198.18.7.4/32"], "outbound": "block" }},
      {{ "port": 53, "outbound": "block" }}
    ]
  }}
}}"#
    )
}

/// Client and remote namespaces, joined by a veth; the client's only route out is the
/// default route via the remote end.
struct Net {
    client: Netns,
    remote: Netns,
}

fn net() -> Option<Net> {
    if !netns::available() {
        return None;
    }
    let client = Netns::new("sac");
    let remote = Netns::new("sar");
    netns::veth(
        &client,
        &["10.200.0.1/24", "fd20::1/64"],
        &remote,
        &["10.200.0.2/24", "fd20::2/64"],
    );
    for a in ["198.18.7.1/32", "198.18.7.3/32", "198.18.7.4/32"] {
        remote.ip(&format!("addr add {a} dev lo"));
    }
    client.ip("route add default via 10.200.0.2");
    client.ip("-6 route add default via fd20::2");
    remote.spawn(servers).join().unwrap();
    Some(Net { client, remote })
}

/// HTTP on 8080 (answers `hello <path>`) in the remote namespace.
fn servers() {
    let l = TcpListener::bind(("::", 8080)).unwrap();
    std::thread::spawn(move || {
        for mut conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = first.split(' ').nth(1).unwrap_or("/").to_string();
                let body = format!("hello {path}");
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
}

fn curl(ns: &Netns, url: &str) -> (i32, String) {
    let o = ns.exec(&["curl", "-s", "-g", "--max-time", "10", url]);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// Waits (bounded) until `pred` holds on the tracker's live flows.
fn wait_flows(
    tracker: &Tracker,
    what: &str,
    pred: impl Fn(&[Arc<sb_core::tracker::Tracked>]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if pred(&tracker.snapshot()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn auto_route_installs_gos_layout_and_close_restores_the_prior_state() {
    let Some(net) = net() else { return };
    let before = state(&net.client);
    assert_eq!(
        before,
        (BASE_RULES4.into(), BASE_RULES6.into(), "---\n".into())
    );
    let sb = start_sb(&net.client, config(""));
    let (r4, r6, routes) = state(&net.client);
    assert_eq!(r4, go_rules4());
    assert_eq!(r6, go_rules6());
    assert_eq!(routes, go_routes());
    // The main table is untouched: its default route still leaves by the veth.
    let main = out(&net.client, &["ip", "route", "show", "default"]);
    assert!(main.starts_with("default via 10.200.0.2"), "{main}");
    drop(sb);
    assert_eq!(state(&net.client), before, "close restores the prior state");
}

/// With no route of the test's own: curl enters the TUN (a `tun-in` flow is tracked while
/// the connection is open) and sb's own connection, bound to the veth, does not loop (one
/// flow, and the server answers).
#[test]
fn curl_goes_through_the_tun_and_sbs_own_connection_does_not_loop() {
    let Some(net) = net() else { return };
    let sb = start_sb(&net.client, config(""));
    let conn = net
        .client
        .spawn(|| TcpStream::connect("198.18.7.1:8080").unwrap())
        .join()
        .unwrap();
    let to_server =
        |f: &Arc<sb_core::tracker::Tracked>| f.flow.destination.to_string() == "198.18.7.1:8080";
    wait_flows(tracker(&sb), "the tun-in flow", |flows| {
        flows
            .iter()
            .any(|f| to_server(f) && &*f.flow.inbound_tag == "tun-in")
    });
    let mut conn = conn;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /held HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.ends_with("hello /held"), "{reply:?}");
    assert_eq!(
        tracker(&sb)
            .snapshot()
            .iter()
            .filter(|f| to_server(f))
            .count(),
        1,
        "a looping outbound would show more flows to the server"
    );
    assert_eq!(
        curl(&net.client, "http://198.18.7.1:8080/c"),
        (0, "hello /c".into())
    );
}

/// The test binary re-run as a child process inside the namespace (by the crash test): it
/// starts sb with `$SB_AUTOROUTE_CHILD` as config, says READY, and waits to be killed.
#[test]
#[ignore = "run only as the crash test's child process"]
fn auto_route_child_process() {
    let Ok(config) = std::env::var("SB_AUTOROUTE_CHILD") else {
        return;
    };
    let _sb = Instance::start(&config);
    println!("READY");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Starts the child in `ns` and waits until it has installed its routes.
fn crashable_child(ns: &Netns, config: &str) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    let mut child = ns
        .command(exe.to_str().unwrap())
        .args([
            "auto_route_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("SB_AUTOROUTE_CHILD", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Bounded by the child: it either prints READY or exits (closing stdout).
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.trim() == "READY")),
        "the child sb did not start"
    );
    child
}

/// SIGKILL leaves the rules (the device and its routes vanish); the next start cleans the
/// rule range and installs exactly one set; its close leaves none.
#[test]
fn after_a_crash_a_restart_installs_exactly_one_set_and_stop_leaves_none() {
    let Some(net) = net() else { return };
    let before = state(&net.client);
    let mut child = crashable_child(&net.client, &config(""));
    let (r4, r6, _) = state(&net.client);
    assert_eq!(
        (r4.as_str(), r6.as_str()),
        (go_rules4().as_str(), go_rules6().as_str())
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let (r4, _, routes) = state(&net.client);
    assert_eq!(routes, "---\n", "the routes went with the device");
    assert_eq!(
        r4.lines().count(),
        go_rules4().lines().count(),
        "the rules stay: {r4}"
    );
    assert!(
        r4.contains(&format!("iif {TUN} [detached] goto 9010")),
        "{r4}"
    );
    let sb = start_sb(&net.client, config(""));
    let (r4, r6, routes) = state(&net.client);
    assert_eq!(r4, go_rules4(), "exactly one set");
    assert_eq!(r6, go_rules6(), "exactly one set");
    assert_eq!(routes, go_routes());
    drop(sb);
    assert_eq!(state(&net.client), before);
}

fn sbtest_uid() -> Option<u32> {
    let o = Command::new("id").args(["-u", "sbtest"]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// `route_exclude_address` and `exclude_uid` bypass the TUN; everything else does not. The
/// block rule for 198.18.7.3 and .4 shows which way a connection went: through the TUN it
/// is blocked, around it the server answers.
#[test]
fn excluded_addresses_and_uids_bypass_the_tun() {
    let Some(net) = net() else { return };
    let uid = sbtest_uid();
    if uid.is_none() {
        let why = "user sbtest is missing (scripts/install-test-deps.sh creates it)";
        sb_tests::skip(&format!("(uid part) {why}"));
    }
    let uid_field = uid.map_or(String::new(), |u| format!(r#", "exclude_uid": {u}"#));
    let sb = start_sb(
        &net.client,
        config(&format!(
            r#", "route_exclude_address": "198.18.7.4/32"{uid_field}"#
        )),
    );
    // Through the TUN: blocked.
    let (code, body) = curl(&net.client, "http://198.18.7.3:8080/x");
    assert!(
        code != 0 && body.is_empty(),
        "198.18.7.3 must enter the TUN: {code} {body:?}"
    );
    // Excluded prefix: around the TUN, the server answers and sb saw nothing.
    assert_eq!(
        curl(&net.client, "http://198.18.7.4:8080/ex"),
        (0, "hello /ex".into())
    );
    let routes = out(&net.client, &["ip", "route", "show", "table", "2022"]);
    assert!(
        !routes.contains("default"),
        "the default is replaced by the complement: {routes}"
    );
    assert!(
        routes.contains("198.18.7.5 via 172.19.0.2") || routes.contains("198.18.7.5/32 via"),
        "{routes}"
    );
    if uid.is_some() {
        let o = net.client.exec(&[
            "runuser",
            "-u",
            "sbtest",
            "--",
            "curl",
            "-s",
            "--max-time",
            "10",
            "http://198.18.7.3:8080/uid",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "hello /uid",
            "an excluded uid bypasses the TUN: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(
        tracker(&sb).snapshot().iter().all(|f| {
            let d = f.flow.destination.to_string();
            d != "198.18.7.4:8080"
        }),
        "no flow to the excluded address"
    );
}

/// strict_route with an IPv4-only TUN: DNS to the on-link resolver address enters the TUN
/// (sb blocks it by rule) and nothing reaches the resolver; other on-link traffic leaves
/// by the veth; IPv6 is unreachable.
#[test]
fn strict_route_keeps_dns_in_the_tun_and_ipv6_unreachable() {
    let Some(net) = net() else { return };
    let config = config(r#", "strict_route": true"#).replace(
        r#""address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"]"#,
        r#""address": ["172.19.0.1/30"]"#,
    );
    let listeners = net
        .remote
        .spawn(|| {
            [53u16, 54].map(|p| {
                let s = UdpSocket::bind(("10.200.0.2", p)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s
            })
        })
        .join()
        .unwrap();
    let _sb = start_sb(&net.client, config);
    assert_eq!(
        out(&net.client, &["ip", "-6", "rule", "show"]),
        "0:\tfrom all lookup local\n9000:\tfrom all unreachable\n32766:\tfrom all lookup main\n"
    );
    let sent = net
        .client
        .spawn(|| {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.send_to(b"dns query", "10.200.0.2:53").unwrap();
            s.send_to(b"not dns", "10.200.0.2:54").unwrap();
            let v6 = UdpSocket::bind("[::]:0").unwrap();
            v6.send_to(b"v6", "[fd20::2]:53")
                .map_err(|e| e.raw_os_error())
        })
        .join()
        .unwrap();
    assert_eq!(sent.unwrap_err(), Some(nix::libc::ENETUNREACH));
    let mut buf = [0u8; 64];
    // The control first: the port-54 datagram arrives, so the DNS one had the same chance.
    let (n, _) = listeners[1]
        .recv_from(&mut buf)
        .expect("on-link port 54 bypasses the TUN");
    assert_eq!(&buf[..n], b"not dns");
    assert!(
        listeners[0].recv_from(&mut buf).is_err(),
        "a DNS datagram left on the uplink"
    );
}

/// The same namespace setup with Go sing-box 1.14.4 and with sb: the same `ip rule`,
/// `ip -6 rule` and table-2022 routes, curl works through both, and both leave the prior
/// state when stopped.
#[test]
fn go_sing_box_installs_the_same_rules_and_routes() {
    let Some(net) = net() else { return };
    let Some(go) = Proxy::go() else {
        return;
    };
    let plain = format!(
        r#"{{"log": {{"level": "warn"}},
  "inbounds": [{{"type": "tun", "tag": "tun-in", "interface_name": "{TUN}",
    "address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"], "auto_route": true}}],
  "outbounds": [{{"type": "direct", "tag": "direct"}}],
  "route": {{"auto_detect_interface": true}}}}"#
    );
    let before = state(&net.client);
    // Started once its rules and table-2022 route exist (bounded wait).
    let running = go.start(&net.client, &plain);
    let go_state = state(&net.client);
    let go_curl = curl(&net.client, "http://198.18.7.1:8080/go");
    assert!(running.terminate().success(), "Go exits 0 on SIGTERM");
    assert_eq!(state(&net.client), before, "Go leaves the prior state");

    let sb = start_sb(&net.client, plain);
    let sb_state = state(&net.client);
    let sb_curl = curl(&net.client, "http://198.18.7.1:8080/sb");
    drop(sb);
    assert_eq!(state(&net.client), before, "sb leaves the prior state");
    assert_eq!(go_curl, (0, "hello /go".into()));
    assert_eq!(sb_curl, (0, "hello /sb".into()));
    assert_eq!(sb_state.0, go_state.0, "ip rule");
    assert_eq!(sb_state.1, go_state.1, "ip -6 rule");
    assert_eq!(sb_state.2, go_state.2, "table 2022");
}

/// Hardening finding 1: a reload that leaves the TUN's settings as they were keeps the
/// device, its rules and its routes in place (nothing is removed and installed again, so
/// no packet leaves outside the tunnel meanwhile), and the next flows follow the new rules.
#[test]
fn a_reload_keeps_an_unchanged_tun_with_its_rules_and_routes() {
    let Some(net) = net() else { return };
    let sb = start_sb(&net.client, config(""));
    let index = || {
        out(
            &net.client,
            &["cat", &format!("/sys/class/net/{TUN}/ifindex")],
        )
    };
    let (before_index, before_state) = (index(), state(&net.client));
    assert_eq!(curl(&net.client, "http://198.18.7.1:8080/a").0, 0);

    // The new config blocks 198.18.7.1; the TUN's own settings are unchanged.
    let blocking = config("").replace(
        r#""198.18.7.3/32", "198.18.7.4/32""#,
        r#""198.18.7.1/32", "198.18.7.3/32", "198.18.7.4/32""#,
    );
    assert_ne!(blocking, config(""));
    sb.reload(&blocking).unwrap();
    assert_eq!(index(), before_index, "the TUN device was made again");
    assert_eq!(state(&net.client), before_state);
    assert_ne!(curl(&net.client, "http://198.18.7.1:8080/b").0, 0);

    // A changed TUN setting rebuilds it, with the same layout.
    sb.reload(&config(r#", "mtu": 1500"#)).unwrap();
    assert_eq!(state(&net.client), before_state);
    assert_eq!(curl(&net.client, "http://198.18.7.1:8080/c").0, 0);
    drop(sb);
    assert_eq!(
        state(&net.client),
        (BASE_RULES4.into(), BASE_RULES6.into(), "---\n".into())
    );
}
