//! The HTTP pieces every route shares: the response body type and builders with Go's
//! headers and error texts, the request body reader (bounded), query parsing, CORS and the
//! secret check. Go's behaviour here was read off the 1.14.4 binary (`tests/tests/clash_api.rs`
//! compares the two).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use std::convert::Infallible;

/// Every response's body: a whole buffer or a stream.
pub type Body = BoxBody<Bytes, Infallible>;

/// The largest request body read (`PATCH /configs`, `PUT /proxies/…` carry a few bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON response (`application/json`, as Go's `render.JSON`).
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    // Go's encoder ends the document with a newline.
    body.push(b'\n');
    with_body(status, "application/json", body)
}

/// A JSON document written raw, which Go labels `text/plain; charset=utf-8` (`/proxies`
/// and `/proxies/{name}`; dashboards parse the body regardless).
pub fn raw_json(value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_body(StatusCode::OK, "text/plain; charset=utf-8", body)
}

/// Go's error body `{"message": …}`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "message": message }))
}

/// `400 Body invalid`.
pub fn body_invalid() -> Response<Body> {
    error(StatusCode::BAD_REQUEST, "Body invalid")
}

/// `404 Resource not found`.
pub fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "Resource not found")
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    empty(StatusCode::NO_CONTENT)
}

/// A response without a body.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Empty::new().boxed());
    *r.status_mut() = status;
    r
}

/// An unknown path, as Go's router answers it (plain text).
pub fn no_route() -> Response<Body> {
    let mut r = with_body(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        b"404 page not found\n".to_vec(),
    );
    r.headers_mut().insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A known path asked with another method: 405 with the methods it takes.
pub fn wrong_method(allowed: &[Method]) -> Response<Body> {
    let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
    for m in allowed {
        if let Ok(v) = HeaderValue::from_str(m.as_str()) {
            r.headers_mut().append(http::header::ALLOW, v);
        }
    }
    r
}

fn with_body(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// Reads a JSON request body (at most [`MAX_BODY`]); `None` when it is not valid JSON of
/// type `T` or too long.
pub async fn read_json<T: serde::de::DeserializeOwned>(body: hyper::body::Incoming) -> Option<T> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// The value of query parameter `key` (decoded; the first one wins, as Go's `Query().Get`).
pub fn query(uri: &http::Uri, key: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Whether the request asks for a WebSocket (the `Connection` header lists `upgrade` and
/// `Upgrade` lists `websocket`, case-insensitively).
pub fn is_websocket(headers: &HeaderMap) -> bool {
    let lists = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    lists(http::header::CONNECTION, "upgrade") && lists(http::header::UPGRADE, "websocket")
}

/// The secret check (Go's `authentication` middleware): no secret, no check; a WebSocket
/// upgrade with a non-empty `?token=` is judged by the token alone; everything else needs
/// `Authorization: Bearer <secret>`. `?token=` on a plain request is ignored.
pub fn authorized(secret: &str, uri: &http::Uri, headers: &HeaderMap) -> bool {
    if secret.is_empty() {
        return true;
    }
    if is_websocket(headers) {
        if let Some(token) = query(uri, "token").filter(|t| !t.is_empty()) {
            return same(&token, secret);
        }
    }
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match header.split_once(' ') {
        Some(("Bearer", token)) => same(token, secret),
        _ => false,
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// CORS as Go's router sets it up (go-chi/cors): methods GET/POST/PUT/PATCH/DELETE, headers
/// Content-Type and Authorization, preflights cached 300 s.
pub struct Cors<'a> {
    /// Allowed origins; `*` allows any.
    pub origins: &'a [String],
    /// Answer private-network preflights.
    pub private_network: bool,
}

const ALLOWED_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const ALLOWED_HEADERS: [&str; 2] = ["content-type", "authorization"];

impl Cors<'_> {
    /// Whether `req` is a preflight (answered here, before the secret check).
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS && headers.contains_key("access-control-request-method")
    }

    /// The preflight's answer: 200, with the CORS headers when the origin, method and
    /// headers asked for are all allowed.
    pub fn preflight(&self, headers: &HeaderMap) -> Response<Body> {
        let mut r = empty(StatusCode::OK);
        let h = r.headers_mut();
        for v in [
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        ] {
            h.append(http::header::VARY, HeaderValue::from_static(v));
        }
        let Some(origin) = self.allowed_origin(headers) else {
            return r;
        };
        let method = headers
            .get("access-control-request-method")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_uppercase();
        if !ALLOWED_METHODS.contains(&method.as_str()) {
            return r;
        }
        let asked: Vec<String> = headers
            .get_all("access-control-request-headers")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if !asked.iter().all(|a| ALLOWED_HEADERS.contains(&a.as_str())) {
            return r;
        }
        h.insert("access-control-allow-origin", origin);
        if let Ok(m) = HeaderValue::from_str(&method) {
            h.insert("access-control-allow-methods", m);
        }
        if !asked.is_empty() {
            let shown: Vec<String> = asked.iter().map(|a| canonical_header(a)).collect();
            if let Ok(v) = HeaderValue::from_str(&shown.join(", ")) {
                h.insert("access-control-allow-headers", v);
            }
        }
        h.insert("access-control-max-age", HeaderValue::from_static("300"));
        if self.private_network
            && headers
                .get("access-control-request-private-network")
                .is_some_and(|v| v == "true")
        {
            h.insert(
                "access-control-allow-private-network",
                HeaderValue::from_static("true"),
            );
        }
        r
    }

    /// Adds the CORS headers of an actual (non-preflight) request's answer.
    pub fn decorate(&self, headers: &HeaderMap, r: &mut Response<Body>) {
        let h = r.headers_mut();
        h.append(http::header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(headers) {
            h.insert("access-control-allow-origin", origin);
        }
    }

    /// The `Access-Control-Allow-Origin` value for the request's `Origin`, if allowed.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(http::header::ORIGIN)?;
        if self.origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }
}

/// `content-type` → `Content-Type`, as Go writes header names back.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A response that never fails to build (`Infallible` error for hyper's service).
pub type Reply = Result<Response<Body>, Infallible>;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn bearer_or_websocket_token_and_nothing_else() {
        let plain: http::Uri = "/version".parse().unwrap_or_default();
        let token: http::Uri = "/traffic?token=s3".parse().unwrap_or_default();
        let ws = [("connection", "Upgrade"), ("upgrade", "websocket")];
        assert!(authorized("", &plain, &HeaderMap::new()));
        assert!(authorized(
            "s3",
            &plain,
            &headers(&[("authorization", "Bearer s3")])
        ));
        assert!(!authorized(
            "s3",
            &plain,
            &headers(&[("authorization", "Bearer s4")])
        ));
        assert!(!authorized(
            "s3",
            &plain,
            &headers(&[("authorization", "bearer s3")])
        ));
        assert!(!authorized(
            "s3",
            &plain,
            &headers(&[("authorization", "Basic s3")])
        ));
        assert!(
            !authorized("s3", &token, &HeaderMap::new()),
            "token on a plain GET"
        );
        assert!(authorized("s3", &token, &headers(&ws)));
        let bad: http::Uri = "/traffic?token=s4".parse().unwrap_or_default();
        let mut ws_bearer = headers(&ws);
        ws_bearer.insert("authorization", HeaderValue::from_static("Bearer s3"));
        assert!(!authorized("s3", &bad, &ws_bearer), "a wrong token decides");
        assert!(authorized("s3", &plain, &ws_bearer));
    }

    #[test]
    fn secrets_compare_by_content_only() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("ab", "abc"));
        assert!(!same("abcd", "abc"));
        assert!(!same("", "abc"));
        assert!(same("", ""));
    }

    #[test]
    fn preflight_echoes_what_was_asked_when_allowed() {
        let origins = ["*".to_string()];
        let cors = Cors {
            origins: &origins,
            private_network: false,
        };
        let r = cors.preflight(&headers(&[
            ("origin", "http://x.test"),
            ("access-control-request-method", "PATCH"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ]));
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-allow-methods"], "PATCH");
        assert_eq!(
            h["access-control-allow-headers"],
            "Authorization, Content-Type"
        );
        assert_eq!(h["access-control-max-age"], "300");
        let r = cors.preflight(&headers(&[
            ("origin", "http://x.test"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-other"),
        ]));
        assert!(!r.headers().contains_key("access-control-allow-origin"));
    }
}
