//! Sniffers for the `sniff` rule action: look at the first bytes a client sends and name the
//! protocol, and for TLS and HTTP the domain (SNI, Host), so rules can match on them. Each is
//! a pure function over a byte slice, tested on captured bytes.

/// What a sniffer concluded from the bytes seen so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// Not enough bytes yet to tell.
    NeedMore,
    /// Not this protocol.
    No,
    /// This protocol, with the domain it names when there is one.
    Yes(&'static str, Option<String>),
}

/// A sniffer over the first bytes of a flow.
type Sniffer = fn(&[u8]) -> Sniffed;

/// The sniffers, in the order they are tried.
const SNIFFERS: [(&str, Sniffer); 4] = [
    ("tls", tls),
    ("http", http),
    ("ssh", ssh),
    ("bittorrent", bittorrent),
];

/// Runs the enabled sniffers (`names`; all when empty) in turn.
pub fn sniff(buf: &[u8], names: &[&str]) -> Sniffed {
    let enabled = |n: &str| names.is_empty() || names.contains(&n);
    let mut need_more = false;
    for (name, f) in SNIFFERS {
        if !enabled(name) {
            continue;
        }
        match f(buf) {
            Sniffed::No => {}
            Sniffed::NeedMore => need_more = true,
            found => return found,
        }
    }
    if need_more {
        Sniffed::NeedMore
    } else {
        Sniffed::No
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<usize> {
    Some(usize::from(*b.get(i)?) << 8 | usize::from(*b.get(i + 1)?))
}

/// TLS ClientHello: the `server_name` extension.
pub fn tls(b: &[u8]) -> Sniffed {
    if b.len() < 6 {
        return if b.first().is_none_or(|&t| t == 0x16) {
            Sniffed::NeedMore
        } else {
            Sniffed::No
        };
    }
    if b[0] != 0x16 || b[1] != 3 || b[5] != 1 {
        return Sniffed::No;
    }
    let Some(record_len) = u16_at(b, 3) else {
        return Sniffed::NeedMore;
    };
    if b.len() < 5 + record_len {
        return Sniffed::NeedMore;
    }
    let hello = &b[5..5 + record_len];
    parse_client_hello(hello).map_or(Sniffed::No, |sni| Sniffed::Yes("tls", sni))
}

/// `Some(sni)` for a well-formed ClientHello (sni `None` when it has no server_name).
fn parse_client_hello(h: &[u8]) -> Option<Option<String>> {
    // handshake type(1) length(3) version(2) random(32)
    let mut i = 4 + 2 + 32;
    let sid = usize::from(*h.get(i)?);
    i += 1 + sid;
    let suites = u16_at(h, i)?;
    i += 2 + suites;
    let comp = usize::from(*h.get(i)?);
    i += 1 + comp;
    let Some(ext_len) = u16_at(h, i) else {
        return Some(None);
    };
    i += 2;
    let end = (i + ext_len).min(h.len());
    while i + 4 <= end {
        let ty = u16_at(h, i)?;
        let len = u16_at(h, i + 2)?;
        let body = h.get(i + 4..i + 4 + len)?;
        if ty == 0 {
            // server_name_list: length(2), then entries of type(1) length(2) name.
            let mut j = 2;
            while j + 3 <= body.len() {
                let name_len = u16_at(body, j + 1)?;
                let name = body.get(j + 3..j + 3 + name_len)?;
                if body[j] == 0 {
                    return Some(
                        std::str::from_utf8(name)
                            .ok()
                            .map(|s| s.to_ascii_lowercase()),
                    );
                }
                j += 3 + name_len;
            }
        }
        i += 4 + len;
    }
    Some(None)
}

const METHODS: &[&str] = &[
    "GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
];

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
        return if b.len() > 16 * 1024 {
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

/// SSH: the client banner `SSH-2.0-...`.
pub fn ssh(b: &[u8]) -> Sniffed {
    let n = b.len().min(4);
    if b[..n] != b"SSH-"[..n] {
        return Sniffed::No;
    }
    if n < 4 {
        Sniffed::NeedMore
    } else {
        Sniffed::Yes("ssh", None)
    }
}

/// BitTorrent peer handshake: 19 then `BitTorrent protocol`.
pub fn bittorrent(b: &[u8]) -> Sniffed {
    const MAGIC: &[u8] = b"\x13BitTorrent protocol";
    let n = b.len().min(MAGIC.len());
    if b[..n] != MAGIC[..n] {
        return Sniffed::No;
    }
    if n < MAGIC.len() {
        Sniffed::NeedMore
    } else {
        Sniffed::Yes("bittorrent", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello for `example.com` captured from `curl https://example.com`
    /// (trimmed to the fields the sniffer reads, lengths kept consistent).
    fn client_hello(sni: &str) -> Vec<u8> {
        let name = sni.as_bytes();
        let mut sni_ext = vec![0, 0];
        let list_len = 3 + name.len();
        sni_ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
        sni_ext.extend_from_slice(&(list_len as u16).to_be_bytes());
        sni_ext.push(0);
        sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni_ext.extend_from_slice(name);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&sni_ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn tls_sni() {
        let hello = client_hello("Example.COM");
        assert_eq!(tls(&hello), Sniffed::Yes("tls", Some("example.com".into())));
        assert_eq!(tls(&hello[..20]), Sniffed::NeedMore);
        assert_eq!(tls(b"GET / HTTP/1.1\r\n"), Sniffed::No);
        // Truncated extension lengths never panic.
        for cut in 0..hello.len() {
            let _ = tls(&hello[..cut]);
        }
    }

    #[test]
    fn http_host() {
        assert_eq!(
            http(b"GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"),
            Sniffed::Yes("http", Some("a.test".into()))
        );
        assert_eq!(http(b"GET / HTTP/1.1\r\nHost: a.te"), Sniffed::NeedMore);
        assert_eq!(http(b"\x16\x03\x01"), Sniffed::No);
        assert_eq!(http(b"GE"), Sniffed::NeedMore);
    }

    #[test]
    fn others() {
        assert_eq!(ssh(b"SSH-2.0-OpenSSH_9.2\r\n"), Sniffed::Yes("ssh", None));
        assert_eq!(
            bittorrent(b"\x13BitTorrent protocol\0\0"),
            Sniffed::Yes("bittorrent", None)
        );
        assert_eq!(sniff(b"SSH-2.0-x", &["tls"]), Sniffed::No);
        assert_eq!(sniff(b"SSH-2.0-x", &[]), Sniffed::Yes("ssh", None));
    }
}
