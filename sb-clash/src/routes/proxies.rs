//! `/proxies` and `/group`: every outbound and endpoint as a Clash "proxy", the selectors and
//! URL-test groups as groups (with `now` and `all`), switching a selector, and delay tests.
//! Types are Go's display names (`Selector`, `URLTest`, `SOCKS`...), the list is in config
//! order under a `GLOBAL` group that dashboards show first, as Go's.

use crate::http::{self as h, Body};
use crate::{Shared, View};
use http::{Response, StatusCode};
use sb_adapters::outbound::urltest::{probe, Outcome};
use sb_core::adapter::Outbound;
use sb_core::flow::Network;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Delay tests of one group at once (Go's limit).
const GROUP_CONCURRENCY: usize = 10;

/// Go's display name of an outbound type.
pub fn display_type(kind: &str) -> &str {
    match kind {
        "direct" => "Direct",
        "block" => "Reject",
        "selector" => "Selector",
        "urltest" => "URLTest",
        "socks" => "SOCKS",
        "http" => "HTTP",
        "ssh" => "SSH",
        "tor" => "Tor",
        "wireguard" => "WireGuard",
        "tailscale" => "Tailscale",
        other => other,
    }
}

/// The last successful delay test of each tag (API tests and URL-test rounds), shown as a
/// proxy's `history`. Holds only tags of the running instance.
#[derive(Default)]
pub struct History(std::sync::Mutex<HashMap<String, (SystemTime, u16)>>);

impl History {
    fn put(&self, tag: &str, delay: u16) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(tag.to_string(), (SystemTime::now(), delay));
        }
    }
    fn forget(&self, tag: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(tag);
        }
    }
    fn get(&self, tag: &str) -> Option<(SystemTime, u16)> {
        self.0.lock().ok()?.get(tag).copied()
    }
    /// Keeps only the tags of a new instance (after a reload).
    pub fn retain(&self, tags: &[String]) {
        if let Ok(mut m) = self.0.lock() {
            m.retain(|t, _| tags.contains(t));
        }
    }
}

/// The newest delay known for `tag`: the API's own tests or any URL-test group's.
fn history(shared: &Shared, view: &View, tag: &str) -> Value {
    let mut best = shared.history.get(tag);
    for group in view.url_tests.values() {
        if let Some(r) = group.results().get(tag) {
            if let Outcome::Delay(d) = r.outcome {
                if best.is_none_or(|(t, _)| t < r.time) {
                    best = Some((r.time, d));
                }
            }
        }
    }
    match best {
        Some((time, delay)) => json!([{
            "time": humantime::format_rfc3339_nanos(time).to_string(),
            "delay": delay,
        }]),
        None => json!([]),
    }
}

/// One proxy object; `None` for an unknown tag.
fn proxy(shared: &Shared, view: &View, tag: &str) -> Option<Value> {
    let o = view.dispatcher.outbound(tag)?;
    let mut m = Map::new();
    m.insert("type".into(), display_type(o.kind()).into());
    m.insert("name".into(), tag.into());
    m.insert("udp".into(), o.networks().contains(&Network::Udp).into());
    m.insert("history".into(), history(shared, view, tag));
    if let Some((now, all)) = group_members(view, tag) {
        m.insert("now".into(), now.into());
        m.insert("all".into(), all.into());
    }
    Some(Value::Object(m))
}

/// A group's current member and members.
fn group_members(view: &View, tag: &str) -> Option<(String, Vec<String>)> {
    if let Some(s) = view.selectors.get(tag) {
        return Some((s.selected(), s.members().to_vec()));
    }
    let u = view.url_tests.get(tag)?;
    Some((u.now().unwrap_or_default(), u.members().to_vec()))
}

/// `GLOBAL`: every outbound but direct and block, the default first.
fn global(view: &View) -> Value {
    let mut all: Vec<&String> = view
        .order
        .iter()
        .filter(|t| {
            view.dispatcher
                .outbound(t)
                .is_some_and(|o| !matches!(o.kind(), "direct" | "block"))
        })
        .collect();
    // Stable: the default moves to the front, the rest keep config order.
    all.sort_by_key(|t| **t != view.default_outbound);
    json!({
        "type": "Fallback",
        "name": "GLOBAL",
        "udp": true,
        "history": [],
        "all": all,
        "now": view.default_outbound,
    })
}

/// `GET /proxies`.
pub fn list(shared: &Shared, view: &View) -> Response<Body> {
    let mut proxies = Map::new();
    proxies.insert("GLOBAL".into(), global(view));
    for tag in &view.order {
        if let Some(p) = proxy(shared, view, tag) {
            proxies.insert(tag.clone(), p);
        }
    }
    h::raw_json(&json!({ "proxies": proxies }))
}

/// `GET /proxies/{name}`.
pub fn get(shared: &Shared, view: &View, name: &str) -> Response<Body> {
    match proxy(shared, view, name) {
        Some(p) => h::raw_json(&p),
        None => h::not_found(),
    }
}

#[derive(serde::Deserialize)]
struct Choice {
    name: String,
}

/// `PUT /proxies/{name} {"name": member}`: switches a selector.
pub async fn select(view: &View, name: &str, body: hyper::body::Incoming) -> Response<Body> {
    if view.dispatcher.outbound(name).is_none() {
        return h::not_found();
    }
    let Some(choice) = h::read_json::<Choice>(body).await else {
        return h::body_invalid();
    };
    let Some(selector) = view.selectors.get(name) else {
        return h::error(StatusCode::BAD_REQUEST, "Must be a Selector");
    };
    match selector.select(&choice.name) {
        Ok(()) => h::no_content(),
        Err(e) => h::error(
            StatusCode::BAD_REQUEST,
            &format!("Selector update error: {e}"),
        ),
    }
}

/// `?url=` and `?timeout=` (milliseconds, required) of a delay test.
fn delay_params(uri: &http::Uri) -> Option<(String, Duration)> {
    let timeout: u64 = h::query(uri, "timeout")?.parse().ok()?;
    let url = h::query(uri, "url")
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| sb_adapters::outbound::urltest::DEFAULT_URL.to_string());
    Some((url, Duration::from_millis(timeout)))
}

/// How a delay test ended.
enum Tested {
    Delay(u16),
    Failed,
    TimedOut,
}

/// One test through `o` within `timeout`.
async fn test(o: Arc<dyn Outbound>, url: &str, timeout: Duration) -> Tested {
    // The client's own limit is a little later, so running out of time reads as a timeout.
    let run = probe::probe_within("clash-api", o, url, timeout + Duration::from_secs(1));
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(ms)) => Tested::Delay(ms),
        Ok(Err(_)) => Tested::Failed,
        Err(_) => Tested::TimedOut,
    }
}

/// `GET /proxies/{name}/delay?url=&timeout=`: `{"delay": ms}`, 503 when the test failed,
/// 504 when it ran out of time (Go 1.14.4 races there: its answer to a test that runs out of
/// time is 504 or 503). The URL is tested as given (Go replaces `http://` URLs by its
/// default HTTPS one).
pub async fn delay(shared: &Shared, view: &View, name: &str, uri: &http::Uri) -> Response<Body> {
    let Some(o) = view.dispatcher.outbound(name) else {
        return h::not_found();
    };
    let Some((url, timeout)) = delay_params(uri) else {
        return h::body_invalid();
    };
    let tested = test(o, &url, timeout).await;
    if let Tested::Delay(ms) = tested {
        shared.history.put(name, ms);
        return h::json(StatusCode::OK, &json!({ "delay": ms }));
    }
    shared.history.forget(name);
    match tested {
        Tested::TimedOut => h::error(StatusCode::GATEWAY_TIMEOUT, "Timeout"),
        _ => h::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "An error occurred in the delay test",
        ),
    }
}

/// `GET /group`: the selectors and URL-test groups, in config order.
pub fn groups(shared: &Shared, view: &View) -> Response<Body> {
    let list: Vec<Value> = view
        .order
        .iter()
        .filter(|t| group_members(view, t).is_some())
        .filter_map(|t| proxy(shared, view, t))
        .collect();
    h::json(StatusCode::OK, &json!({ "proxies": list }))
}

/// `GET /group/{name}`.
pub fn group(shared: &Shared, view: &View, name: &str) -> Response<Body> {
    if group_members(view, name).is_none() {
        return h::not_found();
    }
    match proxy(shared, view, name) {
        Some(p) => h::json(StatusCode::OK, &p),
        None => h::not_found(),
    }
}

/// `GET /group/{name}/delay?url=&timeout=`: `{member: ms}` for the members that answered
/// in time. A URL-test group runs a round of its own (with its own URL) and updates its
/// choice; a selector's members are tested with the request's URL.
pub async fn group_delay(
    shared: &Shared,
    view: &View,
    name: &str,
    uri: &http::Uri,
) -> Response<Body> {
    let Some((_, members)) = group_members(view, name) else {
        return h::not_found();
    };
    let Some((url, timeout)) = delay_params(uri) else {
        return h::body_invalid();
    };
    let mut result = Map::new();
    if let Some(u) = view.url_tests.get(name) {
        if let Ok(outcomes) = tokio::time::timeout(timeout, u.test_now()).await {
            for (tag, outcome) in outcomes {
                if let Outcome::Delay(ms) = outcome {
                    result.insert(tag, ms.into());
                }
            }
        }
        return h::json(StatusCode::OK, &Value::Object(result));
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(GROUP_CONCURRENCY));
    let mut tests = tokio::task::JoinSet::new();
    for tag in members {
        let Some(o) = view.dispatcher.outbound(&tag) else {
            continue;
        };
        let (url, limit) = (url.clone(), limit.clone());
        tests.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (tag, test(o, &url, timeout).await)
        });
    }
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, tests.join_next()).await {
        let Ok((tag, outcome)) = done else { continue };
        match outcome {
            Tested::Delay(ms) => {
                shared.history.put(&tag, ms);
                result.insert(tag, ms.into());
            }
            _ => shared.history.forget(&tag),
        }
    }
    h::json(StatusCode::OK, &Value::Object(result))
}
