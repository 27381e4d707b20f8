//! `/configs`: the mode and what dashboards show as "settings". sb, like Go sing-box, has no
//! Clash ports or `allow-lan`, so those read as zero/false; the mode is the one thing a
//! dashboard changes here.

use crate::http::{self as h, Body};
use crate::View;
use http::{Response, StatusCode};
use serde_json::json;

/// `GET /configs`.
pub fn get(view: &View) -> Response<Body> {
    h::json(
        StatusCode::OK,
        &json!({
            "port": 0,
            "socks-port": 0,
            "redir-port": 0,
            "tproxy-port": 0,
            "mixed-port": 0,
            "allow-lan": false,
            "bind-address": "*",
            "mode": view.mode.get(),
            "mode-list": view.mode.list(),
            "log-level": view.log_level,
            "ipv6": false,
            "tun": null,
        }),
    )
}

/// The part of a `PATCH /configs` body sb acts on (other keys are ignored, as in Go).
#[derive(serde::Deserialize)]
struct Patch {
    mode: Option<String>,
}

/// `PATCH /configs {"mode": …}`: switches the mode when the list holds it (matched
/// case-insensitively); an unknown mode is ignored. A switch empties the DNS cache (answers
/// chosen by `clash_mode` DNS rules would be stale) and is saved by the cache file; flows
/// already running keep their route, new flows and lookups follow the new mode.
pub async fn patch(view: &View, body: hyper::body::Incoming) -> Response<Body> {
    let Some(patch) = h::read_json::<Patch>(body).await else {
        return h::body_invalid();
    };
    if let Some(mode) = patch.mode {
        if let Some(now) = view.mode.switch(&mode) {
            view.dns.clear_cache();
            tracing::info!(target: "clash-mode", "updated mode: {now}");
        }
    }
    h::no_content()
}
