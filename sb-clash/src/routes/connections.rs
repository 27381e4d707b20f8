//! `/connections`: the live flows from the dispatcher's tracker in Go's shape (ports as
//! strings, chains leaf first, the rule string dashboards parse), totals, and closing flows.
//! The WebSocket form pushes the same document every `?interval=` milliseconds.

use crate::http::{self as h, Body};
use crate::{Shared, View};
use http::{Response, StatusCode};
use hyper::body::Incoming;
use hyper::Request;
use sb_core::tracker::Tracked;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The document `GET /connections` answers and the WebSocket pushes.
pub fn snapshot(view: &View) -> Value {
    let tracker = view.dispatcher.tracker();
    let live = tracker.snapshot();
    let (up, down) = tracker.totals();
    let connections: Vec<Value> = live.iter().map(|t| connection(t)).collect();
    json!({
        "downloadTotal": down,
        "uploadTotal": up,
        "connections": connections,
        "memory": crate::routes::streams::memory_in_use(),
    })
}

fn connection(t: &Tracked) -> Value {
    let f = &t.flow;
    let destination_ip = f
        .destination
        .ip()
        .or_else(|| f.resolved.first().copied())
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    json!({
        "id": t.id,
        "metadata": {
            "network": f.network.as_str(),
            "type": format!("{}/{}", f.inbound_type, f.inbound_tag),
            "sourceIP": f.source.ip().to_string(),
            "destinationIP": destination_ip,
            "sourcePort": f.source.port().to_string(),
            "destinationPort": f.destination.port.to_string(),
            "host": f.domain().unwrap_or(""),
            "dnsMode": "normal",
            "processPath": f.process.as_ref().and_then(|p| p.path.clone()).unwrap_or_default(),
        },
        "upload": t.counters.up.load(Ordering::Relaxed),
        "download": t.counters.down.load(Ordering::Relaxed),
        "start": humantime::format_rfc3339_nanos(t.started).to_string(),
        "chains": t.chain,
        "rule": t.rule,
        "rulePayload": "",
    })
}

/// `GET /connections`: the document, or with a WebSocket upgrade a push every
/// `?interval=` ms (default 1000, the first at once).
pub fn get(shared: &Arc<Shared>, view: &View, req: Request<Incoming>) -> Response<Body> {
    if h::is_websocket(req.headers()) {
        let interval = h::query(req.uri(), "interval")
            .and_then(|i| i.parse::<u64>().ok())
            .filter(|i| *i > 0)
            .unwrap_or(1000);
        let every = Duration::from_millis(interval).max(crate::routes::streams::MIN_INTERVAL);
        return crate::routes::streams::websocket(shared, req, move |shared| {
            crate::routes::streams::Feed::Every(
                every,
                Box::new(move || snapshot(&shared.view.load())),
            )
        });
    }
    h::json(StatusCode::OK, &snapshot(view))
}

/// `DELETE /connections`: closes every live flow.
pub fn close_all(view: &View) -> Response<Body> {
    view.dispatcher.tracker().close_where(|_| true);
    h::no_content()
}

/// `DELETE /connections/{id}` (204 for an unknown id too, as Go).
pub fn close(view: &View, id: &str) -> Response<Body> {
    view.dispatcher.tracker().close(id);
    h::no_content()
}
