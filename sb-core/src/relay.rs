//! The relay: copies bytes both ways between the inbound's stream and the outbound's until
//! both directions end, passing half-closes through (EOF on one side becomes a shutdown of
//! the other's write half), counting bytes for the tracker, and ending a flow that stays idle
//! longer than the idle timeout.

use crate::adapter::BoxStream;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes moved by one flow, shared with the tracker while the flow runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Client to upstream.
    pub up: AtomicU64,
    /// Upstream to client.
    pub down: AtomicU64,
    /// Set on every read, for the idle timer (milliseconds since `epoch`).
    last_activity_ms: AtomicU64,
}

/// A stream that counts what is read from it into one of the counters.
struct Counted<'a> {
    inner: &'a mut BoxStream,
    counter: &'a AtomicU64,
    activity: &'a AtomicU64,
    epoch: tokio::time::Instant,
}

impl AsyncRead for Counted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.counter.fetch_add(n as u64, Ordering::Relaxed);
            let now = self.epoch.elapsed().as_millis() as u64;
            self.activity.store(now, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// Relays until both directions finish, an error occurs, or nothing moves for `idle`.
/// Returns the bytes moved (up, down); the counters are updated as bytes move.
pub async fn relay(
    mut client: BoxStream,
    mut upstream: BoxStream,
    counters: Arc<Counters>,
    idle: Duration,
) -> io::Result<(u64, u64)> {
    let epoch = tokio::time::Instant::now();
    let mut a = Counted {
        inner: &mut client,
        counter: &counters.up,
        activity: &counters.last_activity_ms,
        epoch,
    };
    let mut b = Counted {
        inner: &mut upstream,
        counter: &counters.down,
        activity: &counters.last_activity_ms,
        epoch,
    };
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 64 * 1024, 64 * 1024);
    tokio::pin!(copy);
    loop {
        let last = Duration::from_millis(counters.last_activity_ms.load(Ordering::Relaxed));
        let deadline = epoch + last + idle;
        tokio::select! {
            r = &mut copy => return r,
            _ = tokio::time::sleep_until(deadline) => {
                let last_now = Duration::from_millis(counters.last_activity_ms.load(Ordering::Relaxed));
                if last_now == last {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle timeout"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn boxed(s: tokio::io::DuplexStream) -> BoxStream {
        Box::new(Duplex(s))
    }

    struct Duplex(tokio::io::DuplexStream);
    impl AsyncRead for Duplex {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }
    impl AsyncWrite for Duplex {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, b)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }
    impl crate::adapter::AsyncStream for Duplex {
        fn into_tcp(self: Box<Self>) -> Result<tokio::net::TcpStream, BoxStream> {
            Err(self)
        }
    }

    #[tokio::test]
    async fn half_close_passes_through_and_bytes_are_counted() {
        let (mut client, client_side) = tokio::io::duplex(1024);
        let (upstream_side, mut server) = tokio::io::duplex(1024);
        let counters = Arc::new(Counters::default());
        let relay = tokio::spawn(relay(
            boxed(client_side),
            boxed(upstream_side),
            counters.clone(),
            Duration::from_secs(60),
        ));
        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        // The server still answers after the client's half-close.
        server.write_all(b"response!").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"response!");
        assert_eq!(relay.await.unwrap().unwrap(), (7, 9));
        assert_eq!(counters.up.load(Ordering::Relaxed), 7);
        assert_eq!(counters.down.load(Ordering::Relaxed), 9);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_flows_end() {
        let (_client, client_side) = tokio::io::duplex(1024);
        let (upstream_side, _server) = tokio::io::duplex(1024);
        let r = relay(
            boxed(client_side),
            boxed(upstream_side),
            Arc::default(),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
