//! Reading an HTTP/1.1 response: the head (status line and headers, parsed as a pure
//! function over bytes) and the body (fixed length, chunked, or until the server closes),
//! every part bounded so a hostile server cannot make sb allocate without limit.

use super::HttpError;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The longest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// A response's status line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
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

/// Parses a head (everything before the blank line, CRLF or LF line ends).
pub fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| format!("bad status line: {status_line:?}"))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line: {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Head {
        status,
        reason,
        headers,
    })
}

/// Reads up to and including the blank line that ends the head; returns the head bytes.
pub async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = (&mut *r)
            .take((MAX_HEAD - before + 1) as u64)
            .read_until(b'\n', &mut head)
            .await?;
        if n == 0 {
            return Err(HttpError::Protocol(
                "connection closed before the response head".into(),
            ));
        }
        if head.len() > MAX_HEAD {
            return Err(HttpError::Protocol(format!(
                "response head over {MAX_HEAD} bytes"
            )));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            head.truncate(before);
            return Ok(head);
        }
    }
}

/// How the body is framed.
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes (we send `Connection: close`).
    Close,
}

/// The body framing of a response to `method`.
pub fn framing(method: &str, head: &Head) -> Result<Framing, HttpError> {
    if method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Framing::None);
    }
    if let Some(te) = head.header("transfer-encoding") {
        if te
            .to_ascii_lowercase()
            .split(',')
            .any(|t| t.trim() == "chunked")
        {
            return Ok(Framing::Chunked);
        }
    }
    match head.header("content-length") {
        Some(v) => v
            .parse()
            .map(Framing::Length)
            .map_err(|_| HttpError::Protocol(format!("bad Content-Length {v:?}"))),
        None => Ok(Framing::Close),
    }
}

fn too_big(max: usize) -> HttpError {
    HttpError::TooLarge(max)
}

/// Reads the body, refusing more than `max` bytes.
pub async fn read_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    framing: Framing,
    max: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    match framing {
        Framing::None => {}
        Framing::Length(n) => {
            if n > max as u64 {
                return Err(too_big(max));
            }
            (&mut *r).take(n).read_to_end(&mut body).await?;
            if (body.len() as u64) < n {
                return Err(HttpError::Protocol(
                    "body shorter than Content-Length".into(),
                ));
            }
        }
        Framing::Close => {
            (&mut *r)
                .take(max as u64 + 1)
                .read_to_end(&mut body)
                .await?;
            if body.len() > max {
                return Err(too_big(max));
            }
        }
        Framing::Chunked => loop {
            let line = read_line(r).await?;
            let size = parse_chunk_size(&line)?;
            if size == 0 {
                // Trailers, up to the blank line.
                while !read_line(r).await?.is_empty() {}
                break;
            }
            if size > (max - body.len()) as u64 {
                return Err(too_big(max));
            }
            let before = body.len();
            (&mut *r).take(size).read_to_end(&mut body).await?;
            if ((body.len() - before) as u64) < size {
                return Err(HttpError::Protocol("chunk cut short".into()));
            }
            if !read_line(r).await?.is_empty() {
                return Err(HttpError::Protocol("no CRLF after a chunk".into()));
            }
        },
    }
    Ok(body)
}

/// One line (without its line end), at most 4 KiB.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, HttpError> {
    let mut line = Vec::new();
    (&mut *r).take(4097).read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Err(HttpError::Protocol(
            "chunked body: line too long or cut short".into(),
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

/// A chunk-size line: hex digits, optionally followed by `;extensions`.
pub fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let text = std::str::from_utf8(line).unwrap_or_default();
    let hex = text.split(';').next().unwrap_or_default().trim();
    if hex.is_empty() || hex.len() > 15 {
        return Err(HttpError::Protocol(format!("bad chunk size {text:?}")));
    }
    u64::from_str_radix(hex, 16)
        .map_err(|_| HttpError::Protocol(format!("bad chunk size {text:?}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"x\"").unwrap();
        assert_eq!((h.status, h.reason.as_str()), (200, "OK"));
        assert_eq!(h.header("etag"), Some("\"x\""));
        assert!(parse_head(b"HTTP/1.1 20 OK").is_err());
        assert!(parse_head(b"SSH-2.0-x").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon").is_err());
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a;ext=1").unwrap(), 26);
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"zz").is_err());
        assert!(parse_chunk_size(b"ffffffffffffffffff").is_err());
    }

    #[tokio::test]
    async fn bodies() {
        let mut r: &[u8] = b"4\r\nabcd\r\n2;x\r\nef\r\n0\r\nT: 1\r\n\r\n";
        assert_eq!(
            read_body(&mut r, Framing::Chunked, 100).await.unwrap(),
            b"abcdef"
        );
        let mut r: &[u8] = b"4\r\nabcd\r\n";
        assert!(read_body(&mut r, Framing::Chunked, 100).await.is_err());
        let mut r: &[u8] = b"10\r\n";
        assert!(matches!(
            read_body(&mut r, Framing::Chunked, 8).await,
            Err(HttpError::TooLarge(8))
        ));
        let mut r: &[u8] = b"abc";
        assert!(read_body(&mut r, Framing::Length(5), 100).await.is_err());
        let mut r: &[u8] = b"abcdef";
        assert!(matches!(
            read_body(&mut r, Framing::Close, 5).await,
            Err(HttpError::TooLarge(5))
        ));
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let head = read_head(&mut r).await.unwrap();
        assert_eq!(parse_head(&head).unwrap().header("a"), Some("b"));
        assert_eq!(r, b"body");
    }
}
