//! The relay: copies bytes both ways between the inbound's stream and the outbound's until
//! both directions end, passing half-closes through (EOF on one side becomes a shutdown of
//! the other's write half), counting bytes for the tracker, and ending a flow that stays idle
//! longer than the idle timeout.

mod copy;

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
    // Buffers only while a peer pushes back (`copy.rs`): idle flows hold none.
    let copy = copy::copy_bidirectional(&mut a, &mut b);
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

/// One direction of a TCP-to-TCP relay. It waits for readability holding no buffer, so an
/// idle flow costs no buffer memory; a buffer exists only while data is in flight.
#[cfg_attr(target_os = "linux", allow(dead_code))]
async fn pipe(
    from: &tokio::net::TcpStream,
    to: &tokio::net::TcpStream,
    counter: &AtomicU64,
    activity: &AtomicU64,
    epoch: tokio::time::Instant,
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        from.readable().await?;
        let mut buf = Vec::with_capacity(64 * 1024);
        let n = match from.try_read_buf(&mut buf) {
            Ok(0) => {
                // EOF: pass the half-close on.
                let _ = socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write);
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut off = 0;
        while off < n {
            to.writable().await?;
            match to.try_write(&buf[off..n]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// [`relay`] for two plain TCP sockets (the common case: a proxy inbound to `direct`).
pub async fn relay_tcp(
    client: tokio::net::TcpStream,
    upstream: tokio::net::TcpStream,
    counters: Arc<Counters>,
    idle: Duration,
) -> io::Result<(u64, u64)> {
    let epoch = tokio::time::Instant::now();
    // On Linux the bytes move in the kernel (splice); elsewhere through a short-lived buffer.
    #[cfg(target_os = "linux")]
    use crate::splice::pipe;
    let up = pipe(
        &client,
        &upstream,
        &counters.up,
        &counters.last_activity_ms,
        epoch,
    );
    let down = pipe(
        &upstream,
        &client,
        &counters.down,
        &counters.last_activity_ms,
        epoch,
    );
    let both = async { tokio::try_join!(up, down) };
    tokio::pin!(both);
    loop {
        let last = Duration::from_millis(counters.last_activity_ms.load(Ordering::Relaxed));
        tokio::select! {
            r = &mut both => return r,
            _ = tokio::time::sleep_until(epoch + last + idle) => {
                if Duration::from_millis(counters.last_activity_ms.load(Ordering::Relaxed)) == last {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle timeout"));
                }
            }
        }
    }
}

/// Relays two streams, using [`relay_tcp`] when both are plain TCP sockets.
pub async fn relay_any(
    client: BoxStream,
    upstream: BoxStream,
    counters: Arc<Counters>,
    idle: Duration,
) -> io::Result<(u64, u64)> {
    match (client.into_tcp(), upstream.into_tcp()) {
        (Ok(c), Ok(u)) => relay_tcp(c, u, counters, idle).await,
        (c, u) => {
            let c: BoxStream = c.map_or_else(|b| b, |t| Box::new(t));
            let u: BoxStream = u.map_or_else(|b| b, |t| Box::new(t));
            relay(c, u, counters, idle).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn boxed(s: tokio::io::DuplexStream) -> BoxStream {
        crate::stream::Forward::boxed(s)
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

    #[tokio::test]
    async fn tcp_relay_passes_half_close_and_counts() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (server_addr, front_addr) = (server.local_addr().unwrap(), front.local_addr().unwrap());
        let relay_task = tokio::spawn(async move {
            let (client_side, _) = front.accept().await.unwrap();
            let upstream = tokio::net::TcpStream::connect(server_addr).await.unwrap();
            relay_any(
                Box::new(client_side),
                Box::new(upstream),
                Arc::default(),
                Duration::from_secs(60),
            )
            .await
        });
        let mut client = tokio::net::TcpStream::connect(front_addr).await.unwrap();
        let (mut s, _) = server.accept().await.unwrap();
        client.write_all(&vec![7u8; 300_000]).await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 300_000);
        s.write_all(b"done").await.unwrap();
        drop(s);
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"done");
        assert_eq!(relay_task.await.unwrap().unwrap(), (300_000, 4));
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
