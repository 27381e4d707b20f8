//! A stream with bytes to deliver first: what an inbound read during its handshake, or what
//! a sniffer peeked at, must still reach the upstream before the rest of the client's data.

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
