//! `external_ui`: a dashboard's files served at `/ui/` (outside the secret check, as in Go:
//! the page itself asks for the secret). Only regular files under the configured directory
//! are served; `..`, and links that lead out of it, are not followed.

use crate::http::{self as h, Body};
use crate::Options;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use std::path::{Path, PathBuf};

/// The largest file served (a dashboard's bundles are a few megabytes).
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// The answer for `/ui` and `/ui/…` when a UI is configured; `None` for other paths.
pub async fn serve<B>(options: &Options, req: &Request<B>) -> Option<Response<Body>> {
    let root = options.external_ui.as_ref()?;
    let path = req.uri().path();
    if path == "/ui" {
        // Go's `http.Redirect`, with the link it writes for browsers.
        let mut r = Response::new(
            Full::new(Bytes::from_static(
                b"<a href=\"/ui/\">Moved Permanently</a>.\n\n",
            ))
            .boxed(),
        );
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        let hs = r.headers_mut();
        hs.insert(
            http::header::LOCATION,
            http::HeaderValue::from_static("/ui/"),
        );
        hs.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return Some(r);
    }
    let rest = path.strip_prefix("/ui/")?;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Some(h::wrong_method(&[Method::GET, Method::HEAD]));
    }
    Some(match file(root, rest).await {
        Some((bytes, kind)) => {
            let mut r = Response::new(Full::new(Bytes::from(bytes)).boxed());
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(kind),
            );
            r
        }
        None => h::no_route(),
    })
}

/// The file `rest` (a URL path under `/ui/`, still escaped) names below `root`, or `None`
/// when it would step out of it (`.`/`..` segments, backslashes, NULs); links are checked
/// when the file is read.
pub fn resolve(root: &Path, rest: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .ok()?;
    let mut path = PathBuf::from(root);
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains(['\\', '\0']) {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

/// Reads `rest` (a URL path under `/ui/`) below `root`: the file and its content type.
async fn file(root: &Path, rest: &str) -> Option<(Vec<u8>, &'static str)> {
    let mut path = resolve(root, rest)?;
    if tokio::fs::metadata(&path).await.ok()?.is_dir() {
        path.push("index.html");
    }
    // Links inside the directory are fine; the resolved file must still be under it.
    let real = tokio::fs::canonicalize(&path).await.ok()?;
    let real_root = tokio::fs::canonicalize(root).await.ok()?;
    if !real.starts_with(&real_root) {
        return None;
    }
    let meta = tokio::fs::metadata(&real).await.ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    let bytes = tokio::fs::read(&real).await.ok()?;
    Some((bytes, content_type(&real)))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/vnd.microsoft.icon",
        "webp" => "image/webp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_under_the_root_only() {
        let base = std::env::temp_dir().join(format!("sb-clash-ui-{}", std::process::id()));
        let root = base.join("ui");
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(root.join("index.html"), "<html>").unwrap();
        std::fs::write(root.join("assets/app.js"), "x").unwrap();
        std::fs::write(base.join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        assert_eq!(file(&root, "").await.unwrap().1, "text/html; charset=utf-8");
        assert_eq!(file(&root, "assets/app.js").await.unwrap().0, b"x");
        assert!(file(&root, "../secret.txt").await.is_none());
        assert!(file(&root, "%2e%2e/secret.txt").await.is_none());
        assert!(
            file(&root, "leak.txt").await.is_none(),
            "a link out of the root"
        );
        assert!(file(&root, "missing.js").await.is_none());
        let _ = std::fs::remove_dir_all(&base);
    }
}
