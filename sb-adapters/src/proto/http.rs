//! HTTP proxy requests, server side, sans-IO: find the end of the request head and parse it.
//! What a forwarded request and its response become is [`super::http_forward`].

use sb_core::flow::Destination;

/// The longest request head accepted (Go's net/http default is 1 MiB; proxies rarely need
/// more than a few KiB, and a bound keeps a slow client from holding memory).
pub const MAX_HEAD: usize = 64 * 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `CONNECT`, ...
    pub method: String,
    /// The request target as written.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
}

/// Why a head was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Longer than [`MAX_HEAD`].
    #[error("request head too large")]
    TooLarge,
    /// Not an HTTP/1 request.
    #[error("malformed HTTP request: {0}")]
    Malformed(&'static str),
}

/// Finds where a request head ends across reads, looking at each byte once: every call
/// scans only what arrived since the previous one (and the three bytes before it, where a
/// terminator may have started). Rescanning the whole buffer after every read would let a
/// client that sends one byte at a time cost quadratic time before it is even authenticated.
#[derive(Debug, Default)]
pub struct HeadEnd {
    scanned: usize,
    /// Bytes looked at so far (for the tests).
    examined: usize,
}

impl HeadEnd {
    /// The head's length (its blank line included) once `b` holds all of it.
    pub fn find(&mut self, b: &[u8]) -> Option<usize> {
        let from = self.scanned.saturating_sub(3);
        let window = b.get(from..)?;
        self.examined += window.len();
        self.scanned = b.len();
        window
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4)
    }

    /// Bytes looked at so far.
    pub fn examined(&self) -> usize {
        self.examined
    }
}

/// Parses the head if `b` holds all of it: `Ok(Some((head, head_len)))`.
pub fn parse_head(b: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if b.len() > MAX_HEAD {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(HttpError::TooLarge);
    }
    let text = std::str::from_utf8(&b[..end]).map_err(|_| HttpError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let first = lines.next().ok_or(HttpError::Malformed("empty"))?;
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
        return Err(HttpError::Malformed("request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        headers.push(header_line(line)?);
    }
    Ok(Some((
        Head {
            method: method.to_string(),
            target: target.to_string(),
            version: version.to_string(),
            headers,
        },
        end + 4,
    )))
}

/// One header line, as RFC 9112 §5 has a proxy read it: the name a token right before the
/// colon (whitespace there, or a line folded onto the previous one, is refused: servers and
/// proxies disagree on what such lines mean, which is how requests are smuggled), the value
/// without surrounding spaces and tabs and without CR, LF or NUL inside.
fn header_line(line: &str) -> Result<(String, String), HttpError> {
    let (k, v) = line.split_once(':').ok_or(HttpError::Malformed("header"))?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if k.is_empty() || !k.bytes().all(token) {
        return Err(HttpError::Malformed("header name"));
    }
    let v = v.trim_matches([' ', '\t']);
    if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(HttpError::Malformed("header value"));
    }
    Ok((k.to_string(), v.to_string()))
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `host:port` (or `[v6]:port`, or a bare host with `default_port`). A host that
/// cannot be a destination (a control character or a space, over 255 bytes) gives `None`.
pub fn authority(s: &str, default_port: u16) -> Option<Destination> {
    let dest = split_authority(s, default_port)?;
    match &dest.host {
        sb_core::flow::Host::Domain(d) => sb_core::flow::check_name(d).ok().map(|()| dest),
        sb_core::flow::Host::Ip(_) => Some(dest),
    }
}

fn split_authority(s: &str, default_port: u16) -> Option<Destination> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some(Destination::from_host(host, port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some(Destination::from_host(h, p.parse().ok()?)),
        Some(_) => None,
        None if !s.is_empty() => Some(Destination::from_host(s, default_port)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: a").unwrap(), None);
        let (h, n) = parse_head(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\nextra")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str(), n),
            ("CONNECT", "a.test:443", 49)
        );
        assert_eq!(h.header("host"), Some("a.test:443"));
        assert!(parse_head(b"GARBAGE\r\n\r\n").is_err());
        assert_eq!(
            parse_head(&vec![b'a'; MAX_HEAD + 1]),
            Err(HttpError::TooLarge)
        );
    }

    /// Hardening finding 13 (RFC 9112 §5): header lines a proxy must not pass on as read.
    #[test]
    fn header_lines_that_smuggle_are_refused() {
        for bad in [
            "GET http://a/ HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost\t: a\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX-A: 1\nX-B: 2\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX A: 1\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\n: empty\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let (h, _) = parse_head(b"GET http://a/ HTTP/1.1\r\nX-A:  spaced value \t\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.header("x-a"), Some("spaced value"));
    }

    /// Hardening finding 11: a head dripped one byte at a time is scanned in linear time.
    #[test]
    fn a_dripped_head_is_scanned_once() {
        let head = format!(
            "GET http://a/ HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(8000)
        );
        let bytes = head.as_bytes();
        let mut end = HeadEnd::default();
        let mut found = None;
        for n in 1..=bytes.len() {
            found = end.find(&bytes[..n]);
            if found.is_some() {
                break;
            }
        }
        assert_eq!(found, Some(bytes.len()));
        assert!(
            end.examined() <= 4 * bytes.len(),
            "{} bytes looked at for a {}-byte head",
            end.examined(),
            bytes.len()
        );
    }

    #[test]
    fn authorities() {
        assert_eq!(
            authority("a.test:443", 80).unwrap().to_string(),
            "a.test:443"
        );
        assert_eq!(
            authority("[::1]:8080", 80).unwrap().to_string(),
            "[::1]:8080"
        );
        assert_eq!(authority("a.test", 80).unwrap().to_string(), "a.test:80");
        assert!(authority("a.test:x", 80).is_none());
    }
}

/// Client side: the status code and head length of a response, once the head is complete.
pub fn parse_head_response(b: &[u8]) -> Result<Option<(u16, usize)>, HttpError> {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if b.len() > MAX_HEAD {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let line = b[..end].split(|&c| c == b'\r').next().unwrap_or_default();
    let text = std::str::from_utf8(line).map_err(|_| HttpError::Malformed("status line"))?;
    let mut parts = text.split(' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(HttpError::Malformed("status line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("status line"));
    }
    let status = code
        .parse()
        .map_err(|_| HttpError::Malformed("status code"))?;
    Ok(Some((status, end + 4)))
}

#[cfg(test)]
mod response_tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_head_response(b"HTTP/1.1 200 Connection established\r\n\r\nxy").unwrap(),
            Some((200, 39))
        );
        assert_eq!(parse_head_response(b"HTTP/1.1 407 Proxy").unwrap(), None);
        assert!(parse_head_response(b"SSH-2.0\r\n\r\n").is_err());
    }
}
