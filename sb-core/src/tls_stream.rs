//! A client TLS session over any of sb's streams, as a stream again: what sb's own TLS
//! clients (the HTTP client, the DNS `tls` and `https` servers) hand on. It never gives up a
//! plain socket, so the relay's splice never copies encrypted bytes as if they were the flow's.

use crate::adapter::BoxStream;

/// A TLS stream over a boxed stream; not a plain socket, so the relay's splice never sees it.
pub struct TlsStream(pub tokio_rustls::client::TlsStream<BoxStream>);

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl crate::adapter::AsyncStream for TlsStream {
    fn into_tcp(self: Box<Self>) -> Result<tokio::net::TcpStream, BoxStream> {
        Err(self)
    }
}
