//! Plain-HTTP forwarding by the HTTP proxy, sans-IO: what happens to an absolute-form request
//! (`GET http://host/path`) on its way to the origin and to the origin's response on its way
//! back, and how each message's body is delimited. The rules are Go sing-box's (sing's
//! `protocol/http`): a client connection stays open for further requests only when it is
//! HTTP/1.1 and sent `Proxy-Connection: keep-alive`, and then the response carries
//! `Connection: keep-alive`, `Keep-Alive: timeout=4` and `Proxy-Connection: keep-alive`;
//! otherwise it carries `Connection: close` and the connection ends. Hop-by-hop headers are
//! dropped both ways. Each request is routed on its own.
//!
//! Where sb differs from Go, on purpose: headers keep the sender's order and spelling (Go
//! re-sorts and re-capitalises them), bodies keep their framing (Go decodes and re-chunks),
//! and a response whose end is its connection's close ends the client connection too (Go
//! declares keep-alive and close at once). The destination is the request target's
//! authority, as RFC 9112 asks; Go dials the `Host` header's.

use super::http::{authority, Head, HttpError};
use sb_core::flow::Destination;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
}

/// Headers that describe one hop and are never forwarded (Go's list, plus `Keep-Alive`,
/// which RFC 9110 names too). The framing headers are written by the forwarder itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Whether `list` (a comma-separated header value) holds `token`.
fn has_token(list: &str, token: &str) -> bool {
    list.split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The values of every header named `name`.
fn values<'a>(head: &'a Head, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    head.headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Go's rule: the client connection is kept for another request only for HTTP/1.1 with
/// `Proxy-Connection: keep-alive`.
pub fn keep_alive(head: &Head) -> bool {
    head.version != "HTTP/1.0"
        && head
            .header("Proxy-Connection")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("keep-alive"))
}

/// Whether the client asked the origin to close after its answer (HTTP/1.0 without
/// `Connection: keep-alive`, or `Connection: close`); the forwarded request says so too.
pub fn wants_close(head: &Head) -> bool {
    let close = values(head, "Connection").any(|v| has_token(v, "close"));
    if head.version == "HTTP/1.0" {
        close || !values(head, "Connection").any(|v| has_token(v, "keep-alive"))
    } else {
        close
    }
}

/// A request that switches protocols (WebSocket): it is relayed as a whole connection.
pub fn is_upgrade(head: &Head) -> bool {
    values(head, "Connection").any(|v| has_token(v, "upgrade"))
}

/// How a request's body is delimited. A `Transfer-Encoding` that does not end in `chunked`,
/// or disagreeing `Content-Length`s, make the request unreadable (RFC 9112 section 6.3).
pub fn request_body(head: &Head) -> Result<Body, HttpError> {
    if let Some(te) = values(head, "Transfer-Encoding").last() {
        let last = te.rsplit(',').next().unwrap_or_default();
        return if last.trim().eq_ignore_ascii_case("chunked") {
            Ok(Body::Chunked)
        } else {
            Err(HttpError::Malformed("transfer-encoding"))
        };
    }
    match content_length(values(head, "Content-Length"))? {
        None | Some(0) => Ok(Body::Empty),
        Some(n) => Ok(Body::Length(n)),
    }
}

/// The single value of `Content-Length` headers (repeats must agree).
fn content_length<'a>(mut vals: impl Iterator<Item = &'a str>) -> Result<Option<u64>, HttpError> {
    let Some(first) = vals.next() else {
        return Ok(None);
    };
    let parse = |v: &str| -> Result<u64, HttpError> {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::Malformed("content-length"));
        }
        v.parse()
            .map_err(|_| HttpError::Malformed("content-length"))
    };
    let n = parse(first)?;
    for v in vals {
        if parse(v)? != n {
            return Err(HttpError::Malformed("content-length"));
        }
    }
    Ok(Some(n))
}

/// An absolute-form request made ready for its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Where the request goes (the target's authority).
    pub destination: Destination,
    /// The origin-form head to send.
    pub head: Vec<u8>,
    /// How the request's body is delimited.
    pub body: Body,
}

/// The target's authority and origin-form path (`http://a:8080/x?y` -> `a:8080`, `/x?y`).
fn split_target(target: &str) -> Option<(&str, &str)> {
    let scheme = target.get(..7)?;
    if !scheme.eq_ignore_ascii_case("http://") {
        return None;
    }
    let rest = target.get(7..)?;
    Some(match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], &rest[i..]),
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// `host:80` -> `host` (Go drops the default port from the `Host` it sends).
fn without_default_port(host: &str) -> &str {
    host.strip_suffix(":80")
        .filter(|h| !h.is_empty() && (h.ends_with(']') || !h.contains(':')))
        .unwrap_or(host)
}

/// Rewrites an absolute-form request for its origin: origin-form target, HTTP/1.1, `Host`
/// first (without `:80`), hop-by-hop headers dropped, framing kept, `Connection: close`
/// when the client asked for it. `Err` means a 400.
pub fn forward_request(head: &Head) -> Result<Forward, HttpError> {
    let (auth, path) = split_target(&head.target).ok_or(HttpError::Malformed("request target"))?;
    let destination = authority(auth, 80).ok_or(HttpError::Malformed("request target"))?;
    let body = request_body(head)?;
    let host = head.header("Host").unwrap_or(auth);
    let mut out = format!(
        "{} {path} HTTP/1.1\r\nHost: {}\r\n",
        head.method,
        without_default_port(host)
    );
    let dropped = named_by_connection(head.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (k, v) in &head.headers {
        let length = k.eq_ignore_ascii_case("content-length");
        // The length stays even when `Connection` names it: the body is forwarded by it, and
        // without it the origin would read the body as its next request.
        if k.eq_ignore_ascii_case("host") || (!length && is_dropped(k, &dropped)) {
            continue;
        }
        // Beside chunked, a length is wrong (RFC 9112 §6.3) and would give the origin a
        // second framing to believe: only the chunked one goes on.
        if body == Body::Chunked && length {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if body == Body::Chunked {
        out.push_str("Transfer-Encoding: chunked\r\n");
    }
    if wants_close(head) {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    Ok(Forward {
        destination,
        head: out.into_bytes(),
        body,
    })
}

/// Rewrites an upgrade request: origin-form target, the proxy's own headers dropped, the
/// `Connection`/`Upgrade` pair kept for the origin. `Err` means a 400.
pub fn upgrade_request(head: &Head) -> Result<(Destination, Vec<u8>), HttpError> {
    let (auth, path) = split_target(&head.target).ok_or(HttpError::Malformed("request target"))?;
    let destination = authority(auth, 80).ok_or(HttpError::Malformed("request target"))?;
    let mut out = format!("{} {path} {}\r\n", head.method, head.version);
    if head.header("Host").is_none() {
        out.push_str(&format!("Host: {}\r\n", without_default_port(auth)));
    }
    for (k, v) in &head.headers {
        if k.eq_ignore_ascii_case("proxy-connection")
            || k.eq_ignore_ascii_case("proxy-authorization")
        {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    Ok((destination, out.into_bytes()))
}

/// Lower-cased names a `Connection` header lists (they are hop-by-hop too).
fn named_by_connection<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    headers
        .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_dropped(name: &str, named: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    HOP_BY_HOP.contains(&lower.as_str()) || named.contains(&lower)
}

/// An origin's response head. Header values are kept as bytes: origins are not bound to
/// UTF-8 there, and they are passed on untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status line as sent (`HTTP/1.0 200 OK`).
    pub status_line: Vec<u8>,
    /// The status code.
    pub status: u16,
    /// Headers in order: name, value.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// An interim (1xx) response other than 101: another response follows it.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Parses a response head if `b` holds all of it: `Ok(Some((head, head_len)))`.
pub fn parse_response(b: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if b.len() > super::http::MAX_HEAD {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > super::http::MAX_HEAD {
        return Err(HttpError::TooLarge);
    }
    let mut lines = b[..end]
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let text = std::str::from_utf8(status_line).map_err(|_| HttpError::Malformed("status line"))?;
    let mut parts = text.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(HttpError::Malformed("status line"));
    };
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(HttpError::Malformed("status line"));
    }
    let status = code
        .parse()
        .map_err(|_| HttpError::Malformed("status code"))?;
    let mut headers = Vec::new();
    for line in lines {
        let colon = line
            .iter()
            .position(|&c| c == b':')
            .ok_or(HttpError::Malformed("header"))?;
        let name = std::str::from_utf8(&line[..colon])
            .ok()
            .filter(|n| !n.is_empty() && !n.contains([' ', '\t']))
            .ok_or(HttpError::Malformed("header name"))?;
        headers.push((name.to_string(), line[colon + 1..].trim_ascii().to_vec()));
    }
    Ok(Some((
        ResponseHead {
            status_line: status_line.to_vec(),
            status,
            headers,
        },
        end + 4,
    )))
}

/// How a response's body is delimited (RFC 9112 section 6.3), given the request's method.
pub fn response_body(method: &str, resp: &ResponseHead) -> Result<Body, HttpError> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&resp.status)
        || resp.status == 204
        || resp.status == 304
    {
        return Ok(Body::Empty);
    }
    // A framing header that is not UTF-8 cannot be read here, and it would reach the client
    // as it is: the client and the proxy would read different bodies. Unusable, as in Go.
    let unreadable = resp.headers.iter().any(|(k, v)| {
        (k.eq_ignore_ascii_case("transfer-encoding") || k.eq_ignore_ascii_case("content-length"))
            && std::str::from_utf8(v).is_err()
    });
    if unreadable {
        return Err(HttpError::Malformed("framing header"));
    }
    if let Some(te) = resp.values("Transfer-Encoding").last() {
        let last = te.rsplit(',').next().unwrap_or_default();
        return Ok(if last.trim().eq_ignore_ascii_case("chunked") {
            Body::Chunked
        } else {
            Body::UntilClose
        });
    }
    Ok(match content_length(resp.values("Content-Length"))? {
        Some(0) => Body::Empty,
        Some(n) => Body::Length(n),
        None => Body::UntilClose,
    })
}

/// The head sent to the client for `resp`: the status line as received, then (as Go writes
/// them) `Connection: close` when the connection ends, the framing headers, the origin's
/// other end-to-end headers in their order, and Go's three keep-alive headers when it stays.
pub fn forward_response(resp: &ResponseHead, body: Body, keep_alive: bool) -> Vec<u8> {
    let mut out = resp.status_line.clone();
    out.extend_from_slice(b"\r\n");
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    let named = named_by_connection(
        resp.headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), std::str::from_utf8(v).ok()?))),
    );
    let mut push = |k: &str, v: &[u8]| {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    };
    let framing = |k: &str| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    };
    // The framing headers first, as they decide how the client reads the body.
    let (name, most) = match body {
        // Every `Transfer-Encoding`: together they are one list, and the client must find
        // the last coding the proxy went by. Bytes pass untouched, so without `chunked`
        // (a body that ends at close) the codings still describe them.
        Body::Chunked | Body::UntilClose => ("transfer-encoding", usize::MAX),
        // One `Content-Length` (repeats agree). A HEAD or 304 answer keeps the length of
        // the body it stands for.
        Body::Empty | Body::Length(_) => ("content-length", 1),
    };
    for (k, v) in resp
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .take(most)
    {
        push(k, v);
    }
    for (k, v) in &resp.headers {
        if framing(k) || is_dropped(k, &named) {
            continue;
        }
        push(k, v);
    }
    if keep_alive {
        out.extend_from_slice(
            b"Connection: keep-alive\r\nKeep-Alive: timeout=4\r\nProxy-Connection: keep-alive\r\n",
        );
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The head sent to the client for an interim (1xx) response: as received, less the
/// hop-by-hop headers.
pub fn forward_interim(resp: &ResponseHead) -> Vec<u8> {
    let named = named_by_connection(
        resp.headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), std::str::from_utf8(v).ok()?))),
    );
    let mut out = resp.status_line.clone();
    out.extend_from_slice(b"\r\n");
    for (k, v) in &resp.headers {
        if !is_dropped(k, &named) {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The 407 answer (Go's realm). With `keep_alive` the connection stays open for the retry.
pub fn proxy_auth_required(keep_alive: bool) -> &'static [u8] {
    if keep_alive {
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sing-box\" charset=\"UTF-8\"\r\nContent-Length: 0\r\n\r\n"
    } else {
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sing-box\" charset=\"UTF-8\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    }
}

#[cfg(test)]
mod tests;
