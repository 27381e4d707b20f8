//! What the Clash API (`sb-clash`) reads from a controller request before any handler runs:
//! the input's first line is the method, the second the request target, the rest header
//! lines. Checked through the path's segments, the secret check, the CORS preflight and
//! answer headers, the query parameters the routes read, and the dashboard file path.
//!
//! Checked: no panic; a request is authorized only by the exact Bearer header or, on a
//! WebSocket upgrade, the exact token; a dashboard path never leaves its directory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_clash::http::{authorized, is_websocket, query, Cors};
use sb_clash::routes::{segments, streams::parse_level, ui::resolve};
use std::path::{Component, Path};

const SECRET: &str = "s3cret";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split("\r\n");
    let method = lines.next().unwrap_or("GET");
    let target = lines.next().unwrap_or("/");
    let mut req = http::Request::builder().method(method).uri(target);
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            req = req.header(k.trim(), v.trim());
        }
    }
    let Ok(req) = req.body(()) else {
        return;
    };
    let (uri, headers) = (req.uri(), req.headers());
    let _ = segments(uri.path());
    for key in [
        "token", "interval", "level", "timeout", "url", "name", "type",
    ] {
        let _ = query(uri, key);
    }
    let _ = parse_level(query(uri, "level").as_deref());
    if authorized(SECRET, uri, headers) {
        let bearer = headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == format!("Bearer {SECRET}").as_bytes());
        let token = is_websocket(headers) && query(uri, "token").as_deref() == Some(SECRET);
        assert!(bearer || token, "authorized without the secret: {req:?}");
    }
    let origins = ["http://dash.test".to_string()];
    let cors = Cors {
        origins: &origins,
        private_network: true,
    };
    if Cors::is_preflight(req.method(), headers) {
        let _ = cors.preflight(headers);
    }
    let root = Path::new("/srv/ui");
    if let Some(rest) = uri.path().strip_prefix("/ui/") {
        if let Some(p) = resolve(root, rest) {
            assert!(p.starts_with(root), "{p:?}");
            assert!(
                !p.components()
                    .any(|c| matches!(c, Component::ParentDir | Component::CurDir)),
                "{p:?}"
            );
        }
    }
});
