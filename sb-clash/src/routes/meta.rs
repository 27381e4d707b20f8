//! The small routes: `/` and `/version` (how dashboards recognise the core), `/rules`, the
//! empty provider lists, the cache flushes and `/upgrade/ui`.

use crate::http::{self as h, Body};
use crate::{Shared, View};
use http::{Response, StatusCode};
use hyper::Request;
use serde_json::json;

/// `GET /`: Go's greeting, or to the dashboard when one is served and the caller is not
/// an API client (which sends `Content-Type: application/json`).
pub fn hello<B>(shared: &Shared, req: &Request<B>) -> Response<Body> {
    let api_client = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    if shared.options.external_ui.is_none() || api_client {
        return h::json(StatusCode::OK, &json!({ "hello": "clash" }));
    }
    let mut r = h::empty(StatusCode::TEMPORARY_REDIRECT);
    r.headers_mut().insert(
        http::header::LOCATION,
        http::HeaderValue::from_static("/ui/"),
    );
    r
}

/// `GET /version`. Dashboards look for "sing-box" in it to know which API they talk to, so
/// it names the sing-box version sb is compatible with, then sb's own.
pub fn version() -> Response<Body> {
    h::json(
        StatusCode::OK,
        &json!({
            "meta": true,
            "premium": true,
            "version": format!("sing-box {} (sb {})", sb_core::SING_BOX_COMPAT, sb_core::VERSION),
        }),
    )
}

/// `GET /rules`: every route rule with its description and action, as Go lists them.
pub fn rules(view: &View) -> Response<Body> {
    use sb_core::router::rule::Matcher;
    let rules: Vec<serde_json::Value> = view
        .dispatcher
        .router()
        .rules()
        .iter()
        .map(|r| {
            json!({
                "type": if matches!(r.matcher, Matcher::Logical { .. }) { "logical" } else { "default" },
                "payload": r.description,
                "proxy": sb_core::dispatch::action_text(&r.action),
            })
        })
        .collect();
    // Go's list is a nil slice when there are no rules.
    let rules = if rules.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Array(rules)
    };
    h::json(StatusCode::OK, &json!({ "rules": rules }))
}

/// `GET /providers/proxies`: sb has no proxy providers (neither has Go sing-box).
pub fn proxy_providers() -> Response<Body> {
    h::json(StatusCode::OK, &json!({ "providers": {} }))
}

/// `GET /providers/rules`: Go answers an empty array (unlike Clash's object).
pub fn rule_providers() -> Response<Body> {
    h::json(StatusCode::OK, &json!({ "providers": [] }))
}

/// `POST /cache/fakeip/flush`: forgets every FakeIP mapping (the cache file saves the empty
/// pools on its next write).
pub fn flush_fakeip(view: &View) -> Response<Body> {
    for pool in view.dns.fakeip_pools() {
        pool.reset();
    }
    h::no_content()
}

/// `POST /cache/dns/flush`: drops every cached DNS answer.
pub fn flush_dns(view: &View) -> Response<Body> {
    view.dns.clear_cache();
    h::no_content()
}

/// `POST /upgrade/ui`: 404 without a UI, as Go. With one, Go downloads
/// `external_ui_download_url` into it; sb serves `external_ui` as it is on disk and does
/// not download dashboards, and says so with the status Go gives a failed download.
pub fn upgrade_ui(shared: &Shared) -> Response<Body> {
    if shared.options.external_ui.is_none() {
        return h::error(StatusCode::NOT_FOUND, "external UI not enabled");
    }
    h::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "sb does not download dashboards: update the files in external_ui yourself",
    )
}
