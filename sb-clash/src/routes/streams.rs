//! The streamed routes — `/traffic`, `/memory`, `/logs` and the WebSocket form of
//! `/connections` — and the two ways Go serves them: a WebSocket (what dashboards open,
//! authorized by `?token=`), or a chunked HTTP response with one JSON document per line
//! (yacd's fallback). A producer task fills a small channel; the connection drains it. The
//! producer ends when the client goes away or the API closes, so nothing outlives either.

use crate::http::{self as h, Body};
use crate::Shared;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Request;
use hyper_util::rt::TokioIo;
use sb_core::log::LogHub;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// The shortest push interval honoured (a client asking `?interval=1` would otherwise cost
/// a whole connections document every millisecond).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Documents queued for one client before the producer waits for it.
const QUEUE: usize = 8;

/// The largest message sb accepts from a stream client (they send nothing sb reads).
const MAX_INCOMING: usize = 64 * 1024;

/// What a stream sends.
pub enum Feed {
    /// `make()` every interval, the first at once.
    Every(Duration, Box<dyn FnMut() -> Value + Send>),
    /// Per-second traffic (bytes moved in the last second), the first after a second.
    Traffic,
    /// Memory in use each second, the first forced to 0 (as Go does).
    Memory,
    /// Log lines at `level` or more severe.
    Logs(tracing::Level),
}

/// Serves `feed` to `req`'s client, as a WebSocket when it asked for one.
pub fn websocket(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    feed: impl FnOnce(Arc<Shared>) -> Feed,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let ws = h::is_websocket(req.headers());
    let accept = if ws {
        match req.headers().get("sec-websocket-key") {
            Some(key) => {
                Some(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
            }
            None => return h::body_invalid(),
        }
    } else {
        None
    };
    tokio::spawn(produce(shared.clone(), feed(shared.clone()), tx));
    match accept {
        Some(accept) => upgrade(shared.clone(), req, accept, rx),
        None => chunked(rx),
    }
}

/// The chunked HTTP form: one JSON document per line.
fn chunked(rx: mpsc::Receiver<Value>) -> Response<Body> {
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Some((Ok(Frame::data(Bytes::from(line))), rx))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(lines)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Answers 101 and runs the WebSocket once hyper hands the connection over.
fn upgrade(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    accept: String,
    mut rx: mpsc::Receiver<Value>,
) -> Response<Body> {
    let upgraded = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(io) = upgraded.await else { return };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_INCOMING))
            .max_frame_size(Some(MAX_INCOMING));
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, Some(config)).await;
        let mut closing = shared.closing.clone();
        loop {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(v) => {
                        let text = serde_json::to_string(&v).unwrap_or_default();
                        if ws.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    None => break,
                },
                incoming = ws.next() => match incoming {
                    // Pings are answered by the library; anything else is ignored.
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
                _ = closing.changed() => break,
            }
        }
        let _ = ws.close(None).await;
    });
    let mut r = h::empty(StatusCode::SWITCHING_PROTOCOLS);
    let hs = r.headers_mut();
    hs.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    hs.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        hs.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Fills `tx` from `feed` until the client is gone or the API closes.
async fn produce(shared: Arc<Shared>, feed: Feed, tx: mpsc::Sender<Value>) {
    let mut closing = shared.closing.clone();
    let run = async {
        match feed {
            Feed::Every(every, mut make) => {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if tx.send(make()).await.is_err() {
                        return;
                    }
                }
            }
            Feed::Traffic => {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                let mut last = shared.view.load().dispatcher.tracker().totals();
                loop {
                    tick.tick().await;
                    let now = shared.view.load().dispatcher.tracker().totals();
                    let v = json!({
                        "up": now.0.saturating_sub(last.0),
                        "down": now.1.saturating_sub(last.1),
                    });
                    last = now;
                    if tx.send(v).await.is_err() {
                        return;
                    }
                }
            }
            Feed::Memory => {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                let mut first = true;
                loop {
                    tick.tick().await;
                    let inuse = if first { 0 } else { memory_in_use() };
                    first = false;
                    if tx
                        .send(json!({ "inuse": inuse, "oslimit": 0 }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Feed::Logs(level) => forward_logs(&shared.logs, level, &tx).await,
        }
    };
    tokio::select! {
        () = run => {}
        _ = tx.closed() => {}
        _ = closing.changed() => {}
    }
}

/// Sends the log lines at `level` or above; a client that falls behind skips lines.
async fn forward_logs(hub: &LogHub, level: tracing::Level, tx: &mpsc::Sender<Value>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut lines = hub.subscribe();
    loop {
        let line = match lines.recv().await {
            Ok(l) => l,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        if line.level > level {
            continue;
        }
        let v = json!({ "type": level_name(line.level), "payload": line.payload });
        if tx.send(v).await.is_err() {
            return;
        }
    }
}

/// Go's level names in `/logs` lines.
fn level_name(l: tracing::Level) -> &'static str {
    match l {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

/// `?level=` of `/logs` (default `info`); `None` for a level Go does not know.
pub fn parse_level(text: Option<&str>) -> Option<tracing::Level> {
    Some(match text.unwrap_or("info") {
        "" | "info" => tracing::Level::INFO,
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "warn" | "warning" => tracing::Level::WARN,
        "error" | "fatal" | "panic" => tracing::Level::ERROR,
        _ => return None,
    })
}

/// The process's resident memory in bytes (Go reports its heap in use; sb has no garbage
/// collector, so what the system counts for it is the honest figure). 0 if unreadable.
pub fn memory_in_use() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `GET /traffic`.
pub fn traffic(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    websocket(shared, req, |_| Feed::Traffic)
}

/// `GET /memory`.
pub fn memory(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    websocket(shared, req, |_| Feed::Memory)
}

/// `GET /logs?level=`: 400 for an unknown level.
pub fn logs(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let Some(level) = parse_level(h::query(req.uri(), "level").as_deref()) else {
        return h::body_invalid();
    };
    websocket(shared, req, move |_| Feed::Logs(level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_as_go_names_them() {
        assert_eq!(parse_level(None), Some(tracing::Level::INFO));
        assert_eq!(parse_level(Some("warning")), Some(tracing::Level::WARN));
        assert_eq!(parse_level(Some("bogus")), None);
        assert_eq!(level_name(tracing::Level::WARN), "warn");
    }

    #[test]
    fn memory_is_read_from_the_system() {
        assert!(memory_in_use() > 0);
    }
}
