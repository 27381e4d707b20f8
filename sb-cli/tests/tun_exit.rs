//! The real `sb` binary with a TUN inbound and `auto_route`, in network namespaces the test
//! creates (root only; skipped with a reason outside CI, a failure under CI): SIGTERM
//! exits 0 and leaves no rule, route or device; after SIGKILL the rules stay, and the next
//! start installs exactly one set and its SIGTERM leaves nothing. The lab and the process
//! handling are sb-tests' `tun_lab`; the binary is this crate's, so it is always current.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::tun_lab::{config, curl, state, Lab, Proxy, TUN};

fn sb() -> Proxy {
    Proxy::Binary {
        name: "sb",
        bin: env!("CARGO_BIN_EXE_sb").into(),
    }
}

/// The rule lines in sb's range (9000-9010, Go's layout), of `ip rule` text.
fn sb_rules(rules: &str) -> Vec<&str> {
    rules
        .lines()
        .filter(|l| {
            l.split(':')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| (9000..=9010).contains(&p))
        })
        .collect()
}

/// Whether the TUN device exists in the client namespace.
fn tun_exists(lab: &Lab) -> bool {
    lab.client
        .exec(&["ip", "link", "show", TUN])
        .status
        .success()
}

/// Asserts sb's rules and route are installed and traffic goes through its TUN (the
/// config rejects 198.18.7.3; 198.18.7.1 answers).
fn assert_running(lab: &Lab) {
    let (r4, r6, routes) = state(&lab.client);
    assert_eq!(sb_rules(&r4).len(), 8, "{r4}");
    assert_eq!(sb_rules(&r6).len(), 8, "{r6}");
    assert!(
        routes.starts_with(&format!("default via 172.19.0.2 dev {TUN}")),
        "{routes}"
    );
    let (code, body) = curl(&lab.client, "http://198.18.7.1:8080/up");
    assert_eq!((code, body.as_str()), (0, "hello /up from 10.200.0.1"));
    let (code, body) = curl(&lab.client, "http://198.18.7.3:8080/rejected");
    assert!(code != 0 && body.is_empty(), "{code} {body:?}");
}

#[test]
fn sigterm_exits_0_and_leaves_no_rule_route_or_device() {
    let Some(lab) = Lab::new() else { return };
    let before = state(&lab.client);
    let running = sb().start(&lab.client, &config("mixed", ""));
    assert_running(&lab);
    let log = running.log();
    let status = running.terminate();
    assert_eq!(status.code(), Some(0), "{log}");
    let after = state(&lab.client);
    assert!(sb_rules(&after.0).is_empty() && sb_rules(&after.1).is_empty());
    assert_eq!(
        after, before,
        "exactly the prior rules and no route in table 2022"
    );
    assert!(!tun_exists(&lab), "the device is gone");
}

#[test]
fn after_sigkill_a_restart_starts_clean_and_sigterm_leaves_nothing() {
    let Some(lab) = Lab::new() else { return };
    let before = state(&lab.client);
    let first = sb().start(&lab.client, &config("mixed", ""));
    let installed = state(&lab.client);
    first.kill();
    // The crash leaves the rules (the iif rule now names a missing device); the device and
    // with it the routes are gone.
    let (r4, r6, routes) = state(&lab.client);
    assert_eq!(sb_rules(&r4).len(), 8, "the rules stay: {r4}");
    assert_eq!(sb_rules(&r6).len(), 8, "the rules stay: {r6}");
    assert!(r4.contains(&format!("iif {TUN} [detached]")), "{r4}");
    assert_eq!(routes, "---\n");
    assert!(!tun_exists(&lab));

    let second = sb().start(&lab.client, &config("mixed", ""));
    assert_eq!(
        state(&lab.client),
        installed,
        "exactly one set, as the first run"
    );
    assert_running(&lab);
    let log = second.log();
    assert_eq!(second.terminate().code(), Some(0), "{log}");
    assert_eq!(state(&lab.client), before);
    assert!(!tun_exists(&lab));
}

/// Hardening finding 3 (supervision): a TUN whose device dies under sb must not leave sb
/// running with a dead tunnel (flows would leave outside it, or blackhole). sb exits 1 with
/// a FATAL line naming the inbound, after removing its rules.
#[test]
fn a_dead_device_stops_sb_with_an_error_and_its_rules() {
    let Some(lab) = Lab::new() else { return };
    let before = state(&lab.client);
    let mut running = sb().start(&lab.client, &config("mixed", ""));
    assert_running(&lab);
    lab.client.ip(&format!("link delete {TUN}"));
    let status = running
        .wait_exit(std::time::Duration::from_secs(20))
        .unwrap_or_else(|| panic!("sb kept running without its device: {}", running.log()));
    let log = running.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("FATAL[") && l.contains("inbound/tun[tun-in]")),
        "{log}"
    );
    assert_eq!(state(&lab.client), before, "sb's rules are removed");
}
