//! TLS sniffer: the ClientHello a TLS client sends first, and the `server_name` (SNI) in it.
//!
//! The handshake-message parser here is shared with the QUIC sniffer, whose CRYPTO stream
//! carries the same ClientHello without the TLS record layer around it.

use std::borrow::Cow;

use super::reader::Reader;
use super::Sniffed;

/// Largest ClientHello the sniffers gather (a real one is a few KiB; the protocol allows 16 MiB).
pub(super) const MAX_HELLO: usize = 64 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXTENSION_SERVER_NAME: u16 = 0;

/// TLS over a stream: handshake records carrying a ClientHello; the domain is its SNI.
///
/// The ClientHello may span several records; they are joined until it is complete.
pub fn tls(b: &[u8]) -> Sniffed {
    // Decide early on the first record's header: type 22, version 3.x, a ClientHello inside.
    let plausible = b.first().is_none_or(|&t| t == CONTENT_HANDSHAKE)
        && b.get(1).is_none_or(|&v| v == 3)
        && b.get(5).is_none_or(|&t| t == HANDSHAKE_CLIENT_HELLO);
    if !plausible {
        return Sniffed::No;
    }
    let mut message: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut rest = Reader(b);
    while rest.len() >= 5 {
        let (Some(ty), Some(major), Some(_minor), Some(len)) =
            (rest.u8(), rest.u8(), rest.u8(), rest.u16())
        else {
            break;
        };
        // A ClientHello split over records may not be interleaved with other records, and
        // empty handshake records are forbidden (RFC 8446 §5.1).
        if ty != CONTENT_HANDSHAKE || major != 3 || len == 0 {
            return Sniffed::No;
        }
        let len = usize::from(len);
        let complete = rest.len() >= len;
        let payload = rest.take(len.min(rest.len())).unwrap_or_default();
        if message.is_empty() {
            message = Cow::Borrowed(payload);
        } else {
            message.to_mut().extend_from_slice(payload);
        }
        if !complete || message_complete(&message) || message.len() > MAX_HELLO {
            break;
        }
    }
    handshake(&message, "tls")
}

/// Whether `message` holds a whole handshake message (its 4-byte header and body).
fn message_complete(message: &[u8]) -> bool {
    let mut r = Reader(message);
    let (Some(_), Some(len)) = (r.u8(), r.u24()) else {
        return false;
    };
    usize::try_from(len).is_ok_and(|len| r.len() >= len)
}

/// A handshake message that should be a ClientHello: `Yes(protocol, sni)` when it is one,
/// `NeedMore` while it is cut short, `No` when it is something else or malformed.
pub(super) fn handshake(message: &[u8], protocol: &'static str) -> Sniffed {
    let mut r = Reader(message);
    match r.u8() {
        None => return Sniffed::NeedMore,
        Some(HANDSHAKE_CLIENT_HELLO) => {}
        Some(_) => return Sniffed::No,
    }
    let Some(len) = r.u24() else {
        return Sniffed::NeedMore;
    };
    let Ok(len) = usize::try_from(len) else {
        return Sniffed::No;
    };
    if len > MAX_HELLO {
        return Sniffed::No;
    }
    let Some(body) = r.take(len) else {
        return Sniffed::NeedMore;
    };
    client_hello_sni(body).map_or(Sniffed::No, |sni| Sniffed::Yes(protocol, sni))
}

/// `Some(sni)` for a well-formed ClientHello body (`sni` is `None` without a host name).
fn client_hello_sni(body: &[u8]) -> Option<Option<String>> {
    let mut r = Reader(body);
    r.skip(2 + 32)?; // legacy_version, random
    r.bytes8()?; // legacy_session_id
    r.bytes16()?; // cipher_suites
    r.bytes8()?; // legacy_compression_methods
    if r.is_empty() {
        // A TLS 1.2-or-older hello may end here, without extensions.
        return Some(None);
    }
    let mut extensions = Reader(r.bytes16()?);
    while !extensions.is_empty() {
        let ty = extensions.u16()?;
        let data = extensions.bytes16()?;
        if ty == EXTENSION_SERVER_NAME {
            return server_name(data);
        }
    }
    Some(None)
}

/// The `host_name` entry of a `server_name` extension (RFC 6066 §3), lower-cased.
fn server_name(data: &[u8]) -> Option<Option<String>> {
    let mut list = Reader(Reader(data).bytes16()?);
    while !list.is_empty() {
        let name_type = list.u8()?;
        let name = list.bytes16()?;
        if name_type == 0 {
            return Some(std::str::from_utf8(name).ok().map(str::to_ascii_lowercase));
        }
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::tests::{client_hello, hex};

    #[test]
    fn sni_of_a_built_hello() {
        let hello = client_hello("Example.COM");
        assert_eq!(tls(&hello), Sniffed::Yes("tls", Some("example.com".into())));
        assert_eq!(tls(&hello[..20]), Sniffed::NeedMore);
        assert_eq!(tls(&hello[..3]), Sniffed::NeedMore);
        assert_eq!(tls(b""), Sniffed::NeedMore);
        assert_eq!(tls(b"GET / HTTP/1.1\r\n"), Sniffed::No);
        // Every truncation needs more bytes.
        for cut in 0..hello.len() {
            assert_eq!(tls(&hello[..cut]), Sniffed::NeedMore, "cut at {cut}");
        }
    }

    #[test]
    fn sni_of_curl() {
        // `curl https://www.example.com` (OpenSSL 3.0) against a local TCP listener.
        let hello = hex(include_str!("testdata/curl_tls_client_hello.hex"));
        assert_eq!(
            tls(&hello),
            Sniffed::Yes("tls", Some("www.example.com".into()))
        );
    }

    #[test]
    fn hello_split_over_two_records() {
        let hello = client_hello("split.test");
        let message = &hello[5..];
        let (a, b) = message.split_at(10);
        let mut records = Vec::new();
        for part in [a, b] {
            records.extend_from_slice(&[22, 3, 1]);
            records.extend_from_slice(&(part.len() as u16).to_be_bytes());
            records.extend_from_slice(part);
        }
        assert_eq!(
            tls(&records),
            Sniffed::Yes("tls", Some("split.test".into()))
        );
        assert_eq!(tls(&records[..20]), Sniffed::NeedMore);
        // An alert between the two halves ends it.
        let mut broken = records[..15].to_vec();
        broken.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        assert_eq!(tls(&broken), Sniffed::No);
    }

    #[test]
    fn not_a_client_hello() {
        // A ServerHello (type 2) in a handshake record.
        let mut hello = client_hello("a.test");
        hello[5] = 2;
        assert_eq!(tls(&hello), Sniffed::No);
        assert_eq!(handshake(&hello[5..], "tls"), Sniffed::No);
        // A server_name list longer than its extension.
        let mut bad = client_hello("a.test");
        let n = bad.len();
        bad[n - 11] = 0xff;
        assert_eq!(tls(&bad), Sniffed::No);
    }
}
