//! The Clash API against Go sing-box 1.14.4: the same config runs in `sb run` and in Go, the
//! same requests go to both, and the answers must agree — status, the headers dashboards
//! rely on, and the JSON (exactly where both are deterministic, by shape where values such
//! as ids, times and memory cannot match). Then what a dashboard does with flows: hold one
//! and find it in `/connections`, switch the mode and the selector and see the next flow
//! follow, close flows. The streams, the cache file, the dashboard files, delay tests and
//! reloads are in `clash_api_streams.rs`.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/clash.rs"]
#[allow(dead_code)]
mod clash;

use clash::{both, config, differences, echo, hold_flow, request, Body, Core};
use serde_json::{json, Value};
use std::io::Read;

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

/// Whether the peer closed `c` (EOF or reset) within the socket's read timeout; a read
/// that times out means the flow stayed open.
fn closed(c: &mut std::net::TcpStream) -> bool {
    let mut b = [0u8; 1];
    match c.read(&mut b) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// The id the tracker gave the flow whose client side is `c` (matched by source port: the
/// list's order is a map's in Go).
fn id_of(listed: &[Value], c: &std::net::TcpStream) -> String {
    let port = c
        .local_addr()
        .map(|a| a.port().to_string())
        .unwrap_or_default();
    listed
        .iter()
        .find(|l| l["metadata"]["sourcePort"] == port.as_str())
        .and_then(|l| l["id"].as_str())
        .unwrap_or_else(|| panic!("no listed connection from port {port}: {listed:?}"))
        .to_string()
}

#[test]
fn flows_mode_switches_and_selector_switches_behave_as_in_go() {
    let Some((sb, go)) = both("flows", &config("")) else {
        return;
    };
    let target = echo();
    for core in [&sb, &go] {
        let mut first = hold_flow(core, target);
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
        let mut second = hold_flow(core, target);
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
        let mut third = hold_flow(core, target);
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
        // Closing one flow (the first), then all.
        let id = id_of(&listed, &first);
        assert_eq!(
            core.call("DELETE", &format!("/connections/{id}"), None)
                .status,
            204
        );
        assert!(
            closed(&mut first),
            "{:?}: the first flow stayed open",
            core.which
        );
        connections(core, 2);
        assert_eq!(core.call("DELETE", "/connections", None).status, 204);
        assert!(
            closed(&mut second) && closed(&mut third),
            "{:?}: a flow stayed open",
            core.which
        );
        connections(core, 0);
        let totals = core.call("GET", "/connections", None).json();
        assert_eq!(totals["uploadTotal"], 15, "{:?}: {totals}", core.which);
        assert_eq!(totals["downloadTotal"], 15, "{:?}: {totals}", core.which);
    }
}
