//! HTTP/1 sniffer: a request line with a known method, and the `Host` header of the request.

use super::Sniffed;

const METHODS: &[&str] = &[
    "GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
];

/// Longest request head waited for before giving up.
const MAX_HEAD: usize = 16 * 1024;

/// HTTP/1 request: the `Host` header, without its port.
pub fn http(b: &[u8]) -> Sniffed {
    let probe = &b[..b.len().min(8)];
    let maybe = METHODS.iter().any(|m| {
        let m = m.as_bytes();
        let n = probe.len().min(m.len());
        probe[..n] == m[..n]
    });
    if !maybe {
        return Sniffed::No;
    }
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if b.len() > MAX_HEAD {
            Sniffed::No
        } else {
            Sniffed::NeedMore
        };
    };
    let Ok(head) = std::str::from_utf8(&b[..end]) else {
        return Sniffed::No;
    };
    let host = head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("host")
            .then(|| v.trim().to_string())
    });
    let domain = host.map(|h| {
        let h = if let Some(rest) = h.strip_prefix('[') {
            rest.split(']').next().unwrap_or(rest).to_string()
        } else {
            h.rsplit_once(':').map_or(h.clone(), |(a, _)| a.to_string())
        };
        h.to_ascii_lowercase()
    });
    Sniffed::Yes("http", domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header() {
        assert_eq!(
            http(b"GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"),
            Sniffed::Yes("http", Some("a.test".into()))
        );
        assert_eq!(
            http(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
            Sniffed::Yes("http", Some("::1".into()))
        );
        assert_eq!(http(b"GET / HTTP/1.1\r\nHost: a.te"), Sniffed::NeedMore);
        assert_eq!(http(b"\x16\x03\x01"), Sniffed::No);
        assert_eq!(http(b"GE"), Sniffed::NeedMore);
    }
}
