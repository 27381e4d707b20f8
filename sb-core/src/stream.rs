//! Wrappers that make other streams [`AsyncStream`]s, the type flows are carried on:
//! [`Prefixed`], a stream with bytes to deliver first (what an inbound read during its
//! handshake, or what a sniffer peeked at, must still reach the upstream before the rest of
//! the client's data), and [`Forward`], any stream as it is (a TLS session, an SSH channel,
//! an in-memory pipe), which is never mistaken for a plain socket.

use crate::adapter::{AsyncStream, BoxStream};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A stream whose first reads return `prefix`.
pub struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: BoxStream,
}

impl Prefixed {
    /// `inner`, with `prefix` read first; the plain stream when there is no prefix.
    pub fn wrap(prefix: Vec<u8>, inner: TcpStream) -> BoxStream {
        Prefixed::wrap_boxed(prefix, Box::new(inner))
    }

    /// Like [`Prefixed::wrap`], for any stream.
    pub fn wrap_boxed(prefix: Vec<u8>, inner: BoxStream) -> BoxStream {
        if prefix.is_empty() {
            inner
        } else {
            Box::new(Prefixed {
                prefix,
                pos: 0,
                inner,
            })
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncStream for Prefixed {
    fn into_tcp(self: Box<Self>) -> Result<TcpStream, BoxStream> {
        // The prefix must still be delivered, so the raw socket is not handed out.
        Err(self)
    }
}

/// Any byte stream as an [`AsyncStream`]: reads and writes go to `S` unchanged, and
/// [`AsyncStream::into_tcp`] gives the wrapper back, so the relay never splices it. That is
/// the point for a TLS session over a socket (its plain socket carries encrypted bytes, not
/// the flow's) and the only option for streams that have no socket (an SSH channel, a pipe).
/// Adapter crates cannot implement sb-core's trait on another crate's stream type (the
/// orphan rule), so they wrap it here instead of repeating the forwarding.
#[derive(Debug)]
pub struct Forward<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Forward<S> {
    /// `inner`, boxed as a flow's stream.
    pub fn boxed(inner: S) -> BoxStream {
        Box::new(Forward(inner))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Forward<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Forward<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, b)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for Forward<S> {
    fn into_tcp(self: Box<Self>) -> Result<TcpStream, BoxStream> {
        // Even over a TcpStream: what `S` does on top of the socket is the flow's stream.
        Err(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn forward_passes_bytes_both_ways_and_is_never_a_plain_socket() {
        let (ours, theirs) = tokio::io::duplex(64);
        let mut theirs = Forward::boxed(theirs);
        let mut ours = Forward(ours);
        ours.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        theirs.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        theirs.write_all(b"pong").await.unwrap();
        theirs.shutdown().await.unwrap();
        let mut back = Vec::new();
        ours.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pong");
        assert!(theirs.into_tcp().is_err());
    }
}
