//! The recorded answers of a real tailscaled 1.96.4 (`tests/fixtures/tailscale/`) decode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/tailscale/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn a_fresh_daemons_status_reads_as_needing_login_without_a_tun() {
    let status: Status = serde_json::from_str(&fixture("status-needs-login.json")).unwrap();
    assert_eq!(status.backend_state, "NeedsLogin");
    assert!(!status.tun);
    assert!(status.version.starts_with("1.96.4"));
    assert!(status.peer.is_none() && status.tailscale_ips.is_none());
    assert_eq!(status.health.unwrap(), ["Tailscale is stopped."]);
}

#[test]
fn a_running_status_has_its_peers_routes_and_names() {
    let status: Status = serde_json::from_str(&fixture("status-running.json")).unwrap();
    assert_eq!(status.backend_state, "Running");
    assert_eq!(status.magic_dns_suffix, "tail1234.ts.net");
    let peers = status.peer.unwrap();
    let exit = peers.values().find(|p| p.exit_node_option).unwrap();
    assert_eq!(exit.host_name, "exit-box");
    assert!(exit.dns_name.ends_with(".tail1234.ts.net."));
    assert!(peers.values().any(|p| p
        .primary_routes
        .iter()
        .flatten()
        .any(|r| r == "10.77.0.0/24")));
}

#[test]
fn bus_lines_carry_state_numbers_and_the_login_error() {
    let n: Notify = serde_json::from_str(&fixture("notify-initial.json")).unwrap();
    assert_eq!(n.state.map(state_name), Some("NeedsLogin"));
    let n: Notify = serde_json::from_str(&fixture("notify-login-error.json")).unwrap();
    let warnings = n.health.unwrap().warnings.unwrap();
    assert!(warnings["login-state"].text.contains("connection refused"));
    let n: Notify = serde_json::from_str(&fixture("notify-prefs.json")).unwrap();
    assert!(n.state.is_none() && n.browse_to_url.is_none());
}

#[test]
fn an_error_body_is_read_as_the_daemon_wrote_it() {
    assert_eq!(
        error_text(
            br#"{"Error":"Cannot advertise an exit node and use an exit node at the same time."}"#
        ),
        "Cannot advertise an exit node and use an exit node at the same time."
    );
    assert_eq!(
        error_text(b"dial failure: dial tcp 100.64.0.2:80: connect: no route to host\n"),
        "dial failure: dial tcp 100.64.0.2:80: connect: no route to host"
    );
}
