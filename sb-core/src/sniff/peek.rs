//! The I/O half of sniffing: the dispatcher, carrying out a `sniff` action, reads a client's
//! first bytes (TCP) or first datagrams (UDP) here and hands them to the sans-IO sniffers
//! ([`super::sniff`], [`super::sniff_packets`]). What was read is returned so the caller can
//! replay it to the upstream; nothing here decides a route.

use super::{sniff, sniff_packets, Sniffed};
use crate::adapter::PacketConn;
use crate::flow::Destination;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Most bytes read from a stream for a sniff: every sniffer decides well within this.
const MAX_STREAM_PEEK: usize = 64 * 1024;

/// Most datagrams looked at for a UDP sniff (a QUIC ClientHello may span a few).
const MAX_PACKETS: usize = 8;

/// What a sniff found: the protocol, and the domain it names when it carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Go's protocol name (`tls`, `http`, `quic`, ...).
    pub protocol: &'static str,
    /// TLS/QUIC SNI, HTTP Host, ...
    pub domain: Option<String>,
}

/// Reads the client's first bytes until a sniffer decides, `timeout` passes, the client stops
/// sending, or 64 KiB; returns them (to be replayed) and what was found. A read error ends
/// the peek like a timeout: the relay meets the error again and reports it.
pub async fn peek_stream<R: AsyncRead + Unpin>(
    stream: &mut R,
    timeout: Duration,
    sniffers: &[&'static str],
) -> (Vec<u8>, Option<Found>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    while buf.len() < MAX_STREAM_PEEK {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
        match sniff(&buf, sniffers) {
            Sniffed::NeedMore => continue,
            Sniffed::No => break,
            Sniffed::Yes(protocol, domain) => return (buf, Some(Found { protocol, domain })),
        }
    }
    (buf, None)
}

/// Reads the client's first datagrams until a sniffer decides, `timeout` passes, or
/// `MAX_PACKETS`; returns them with their destinations (to be replayed) and what was found.
pub async fn peek_packets(
    client: &dyn PacketConn,
    timeout: Duration,
    sniffers: &[&'static str],
) -> (Vec<(Vec<u8>, Destination)>, Option<Found>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen: Vec<(Vec<u8>, Destination)> = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while seen.len() < MAX_PACKETS {
        match tokio::time::timeout_at(deadline, client.recv_from(&mut buf)).await {
            Ok(Ok((n, dest))) => seen.push((buf[..n].to_vec(), dest)),
            _ => break,
        }
        let packets: Vec<&[u8]> = seen.iter().map(|(p, _)| p.as_slice()).collect();
        match sniff_packets(&packets, sniffers) {
            Sniffed::NeedMore => continue,
            Sniffed::No => break,
            Sniffed::Yes(protocol, domain) => return (seen, Some(Found { protocol, domain })),
        }
    }
    (seen, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_stream_peek_returns_what_it_read_and_what_it_found() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: h.test\r\n\r\n")
            .await
            .unwrap();
        let (bytes, found) = peek_stream(&mut server, Duration::from_millis(300), &[]).await;
        assert!(bytes.starts_with(b"GET / "));
        assert_eq!(
            found,
            Some(Found {
                protocol: "http",
                domain: Some("h.test".into())
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_ends_the_peek_at_the_timeout() {
        let (_client, mut server) = tokio::io::duplex(1024);
        let start = tokio::time::Instant::now();
        let (bytes, found) = peek_stream(&mut server, Duration::from_millis(300), &[]).await;
        assert!(bytes.is_empty() && found.is_none());
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }
}
