//! TUN scenarios with `auto_route`, each written once and run against sb (in process) and
//! against Go sing-box 1.14.4 with the `gvisor` and the `system` stack, with the same
//! config, in namespaces of their own (tests/src/tun_lab.rs). Root only: skipped with a
//! reason outside CI, a failure under CI (also when Go is not installed).
//!
//! Each config rejects TCP to 198.18.7.3, .4 and fd99::3 and anything to port 53 by a rule
//! of the proxy, so "refused" proves a connection went through the proxy and "answered"
//! that it went around it. The remote HTTP server answers with the peer address it saw.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::tun_lab::{self, config, curl, curl_as, out, udp_exchange, Lab, Proxy, TUN};
use std::net::UdpSocket;
use std::time::Duration;

/// The client's uplink address: what the remote sees from the proxy's direct outbound.
const UPLINK: &str = "10.200.0.1";

/// An HTTP answer from the remote for `path`, as seen from `peer`.
fn hello(path: &str, peer: &str) -> (i32, String) {
    (0, format!("hello {path} from {peer}"))
}

/// True when curl got nothing (refused, reset or timed out).
fn refused(r: &(i32, String)) -> bool {
    r.0 != 0 && r.1.is_empty()
}

/// curl over IPv4 and IPv6 reaches the remote through the proxy; a rejected destination
/// is refused (so the traffic did enter the proxy).
fn curl_v4_v6(lab: &Lab, proxy: &Proxy, stack: &str) {
    let _p = proxy.start(&lab.client, &config(stack, ""));
    assert_eq!(
        curl(&lab.client, "http://198.18.7.1:8080/v4"),
        hello("/v4", UPLINK)
    );
    assert_eq!(
        curl(&lab.client, "http://[fd99::1]:8080/v6"),
        hello("/v6", "fd20::1")
    );
    let r = curl(&lab.client, "http://198.18.7.3:8080/x");
    assert!(refused(&r), "198.18.7.3 must enter the proxy: {r:?}");
    let r = curl(&lab.client, "http://[fd99::3]:8080/x");
    assert!(refused(&r), "fd99::3 must enter the proxy: {r:?}");
}

/// UDP echo over IPv4 and IPv6 through the TUN.
fn udp_echo(lab: &Lab, proxy: &Proxy, stack: &str) {
    let _p = proxy.start(&lab.client, &config(stack, ""));
    assert_eq!(
        udp_exchange(&lab.client, "198.18.7.1:7007", b"u4").as_deref(),
        Some(&b"echo:u4"[..])
    );
    assert_eq!(
        udp_exchange(&lab.client, "[fd99::1]:7007", b"u6").as_deref(),
        Some(&b"echo:u6"[..])
    );
}

/// ping over IPv4 and IPv6 to the remote is answered.
fn ping(lab: &Lab, proxy: &Proxy, stack: &str) {
    let _p = proxy.start(&lab.client, &config(stack, ""));
    for (flag, addr) in [("-4", "198.18.7.1"), ("-6", "fd99::1")] {
        let o = lab.client.exec(&["ping", flag, "-c", "1", "-W", "5", addr]);
        assert!(
            o.status.success(),
            "ping {addr}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// A known difference, pinned so that it cannot change unnoticed (docs/tun.md): a ping to
/// an address that exists nowhere is answered by sb's stack itself, while Go forwards the
/// echo through the outbound and, with nobody there, gets no answer.
fn ping_to_nowhere_is_answered_by_sb_only(lab: &Lab, proxy: &Proxy, stack: &str) {
    let _p = proxy.start(&lab.client, &config(stack, ""));
    let sb_answers = matches!(proxy, Proxy::InProcess);
    for (flag, addr) in [("-4", "198.18.7.99"), ("-6", "fd99::99")] {
        let o = lab.client.exec(&["ping", flag, "-c", "1", "-W", "3", addr]);
        assert_eq!(
            o.status.success(),
            sb_answers,
            "ping {addr}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

/// `route_exclude_address` goes around the TUN: the excluded 198.18.7.4 answers although
/// the proxy would reject it; 198.18.7.3 still enters the proxy.
fn route_exclude_address_bypasses(lab: &Lab, proxy: &Proxy, stack: &str) {
    let _p = proxy.start(
        &lab.client,
        &config(stack, r#", "route_exclude_address": "198.18.7.4/32""#),
    );
    assert_eq!(
        curl(&lab.client, "http://198.18.7.4:8080/ex"),
        hello("/ex", UPLINK)
    );
    let r = curl(&lab.client, "http://198.18.7.3:8080/in");
    assert!(refused(&r), "{r:?}");
}

/// strict_route with an IPv4-only TUN: a DNS datagram to the uplink's resolver address
/// enters the TUN (the proxy rejects it) and never arrives there, while a port-54 datagram
/// to the same address leaves by the uplink; IPv6 is unreachable.
fn strict_route_dns_does_not_leak(lab: &Lab, proxy: &Proxy, stack: &str) {
    let config = config(stack, r#", "strict_route": true"#).replace(
        r#""address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"]"#,
        r#""address": ["172.19.0.1/30"]"#,
    );
    let listeners = lab
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
    let _p = proxy.start(&lab.client, &config);
    let sent = lab
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

/// The uid of the test user `sbtest` (scripts/install-test-deps.sh creates it); `None`
/// (a skip, a failure under CI) when it is missing.
fn sbtest_uid() -> Option<u32> {
    let o = std::process::Command::new("id")
        .args(["-u", "sbtest"])
        .output()
        .ok()?;
    let uid = String::from_utf8_lossy(&o.stdout).trim().parse().ok();
    if uid.is_none() {
        let why = "user sbtest is missing (scripts/install-test-deps.sh creates it)";
        sb_tests::skip(why);
    }
    uid
}

/// `include_uid`: the included user's connections enter the TUN (a rejected destination is
/// refused, another one answers), root's go around it (the rejected destination answers).
fn include_uid(lab: &Lab, proxy: &Proxy, stack: &str) {
    let Some(uid) = sbtest_uid() else { return };
    let _p = proxy.start(
        &lab.client,
        &config(stack, &format!(r#", "include_uid": [{uid}]"#)),
    );
    let user = Some("sbtest");
    let r = curl_as(&lab.client, user, "http://198.18.7.3:8080/u");
    assert!(refused(&r), "the included uid must enter the proxy: {r:?}");
    assert_eq!(
        curl_as(&lab.client, user, "http://198.18.7.1:8080/u"),
        hello("/u", UPLINK)
    );
    assert_eq!(
        curl(&lab.client, "http://198.18.7.3:8080/root"),
        hello("/root", UPLINK),
        "root is not included: around the TUN"
    );
}

/// `include_interface`: traffic a LAN on an included interface sends through the client
/// enters the TUN (the remote sees the proxy's uplink address, and the rejected
/// destination is refused); a LAN on another interface is forwarded by the kernel around
/// the TUN (the remote sees the LAN's own address); the client's own traffic goes around
/// it too (as in Go: local traffic is not from an included interface).
fn include_interface(lab: &Lab, proxy: &Proxy, stack: &str) {
    let (included, iface) = lab.lan(1);
    let (other, _) = lab.lan(2);
    let _p = proxy.start(
        &lab.client,
        &config(stack, &format!(r#", "include_interface": ["{iface}"]"#)),
    );
    assert_eq!(
        curl(&included, "http://198.18.7.1:8080/lan1"),
        hello("/lan1", UPLINK),
        "the included LAN's connection leaves from the proxy"
    );
    let r = curl(&included, "http://198.18.7.3:8080/lan1");
    assert!(refused(&r), "the included LAN must enter the proxy: {r:?}");
    assert_eq!(
        curl(&other, "http://198.18.7.3:8080/lan2"),
        hello("/lan2", "10.202.0.2"),
        "another interface is forwarded around the TUN"
    );
    assert_eq!(
        curl(&lab.client, "http://198.18.7.3:8080/local"),
        hello("/local", UPLINK),
        "local traffic is not from the included interface"
    );
}

/// `loopback_address`: a connection to 10.7.0.1 reaches a server of the client's own
/// machine (on the TUN address the kernel picked as source), which sees 10.7.0.1 as peer.
fn loopback_address(lab: &Lab, proxy: &Proxy, stack: &str) {
    tun_lab::serve_hello_in(&lab.client, 9099);
    let _p = proxy.start(
        &lab.client,
        &config(stack, r#", "loopback_address": ["10.7.0.1"]"#),
    );
    assert_eq!(
        curl(&lab.client, "http://10.7.0.1:9099/lo"),
        (0, "hello /lo from 10.7.0.1".into())
    );
    let r = curl(&lab.client, "http://198.18.7.3:8080/x");
    assert!(refused(&r), "other traffic still enters the proxy: {r:?}");
}

/// The rules and routes are gone once the proxy has stopped (SIGTERM for a process).
fn stop_restores_the_prior_state(lab: &Lab, proxy: &Proxy, stack: &str) {
    let before = tun_lab::state(&lab.client);
    let p = proxy.start(&lab.client, &config(stack, ""));
    assert!(out(&lab.client, &["ip", "rule", "show"]).contains(&format!("iif {TUN} goto")));
    let status = p.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(tun_lab::state(&lab.client), before);
}

/// Runs `scenario` against `proxy` in a fresh lab (nothing when the lab cannot run here).
fn run(proxy: Option<Proxy>, stack: &str, scenario: fn(&Lab, &Proxy, &str)) {
    let Some(lab) = Lab::new() else { return };
    let Some(proxy) = proxy else { return };
    scenario(&lab, &proxy, stack);
}

/// One test per scenario and proxy: `sb::curl_v4_v6`, `go_gvisor::curl_v4_v6`, ...
macro_rules! parity {
    ($($scenario:ident),* $(,)?) => {
        mod sb {
            $(#[test] fn $scenario() {
                super::run(Some(super::Proxy::InProcess), "mixed", super::$scenario)
            })*
        }
        mod go_gvisor {
            $(#[test] fn $scenario() {
                super::run(super::Proxy::go(), "gvisor", super::$scenario)
            })*
        }
        mod go_system {
            $(#[test] fn $scenario() {
                super::run(super::Proxy::go(), "system", super::$scenario)
            })*
        }
    };
}

parity!(
    curl_v4_v6,
    udp_echo,
    ping,
    ping_to_nowhere_is_answered_by_sb_only,
    route_exclude_address_bypasses,
    strict_route_dns_does_not_leak,
    include_uid,
    include_interface,
    loopback_address,
    stop_restores_the_prior_state,
);
