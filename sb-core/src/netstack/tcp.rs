//! TCP through the stack: connections it accepts from the device become flows of their
//! [`FlowSource`]; connections it opens into the device ([`super::NetStack::connect_tcp`])
//! are returned to the caller. Both are a [`StackStream`].

use super::flows::FlowSource;
use crate::adapter::{AsyncStream, NoReply};
use crate::conn_limit::ConnBudget;
use crate::flow::Network;
use futures::{Stream, StreamExt};
use netstack_smoltcp::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::{info, Instrument};

/// Accepts the stack's TCP connections until the stack ends, each within `budget`: past
/// it, a connection is closed at once (the stack holds a socket's buffers for every
/// connection it keeps, so it cannot leave them waiting as a kernel backlog does).
pub(super) async fn accept<L>(mut listener: L, src: FlowSource, budget: Arc<ConnBudget>)
where
    L: Stream<Item = (TcpStream, SocketAddr, SocketAddr)> + Unpin,
{
    while let Some((stream, client, dest)) = listener.next().await {
        let Some(permit) = budget.try_admit() else {
            drop(stream);
            continue;
        };
        let flow = src.flow(Network::Tcp, client, dest);
        let (handler, label) = (src.handler.clone(), src.label.clone());
        let span = tracing::info_span!("flow", id = flow.id);
        tokio::spawn(
            async move {
                let _permit = permit;
                info!(target: "inbound", tag = %label, "inbound connection from {client}");
                info!(target: "inbound", tag = %label, "inbound connection to {dest}");
                handler
                    .handle_tcp(flow, Box::new(StackStream::new(stream)), Box::new(NoReply))
                    .await;
            }
            .instrument(span),
        );
    }
}

/// A TCP connection of the stack as a byte stream.
pub struct StackStream {
    inner: TcpStream,
    shut: bool,
}

impl StackStream {
    pub(super) fn new(inner: TcpStream) -> StackStream {
        StackStream { inner, shut: false }
    }

    /// The stack's end of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        *self.inner.local_addr()
    }

    /// The device's end of the connection.
    pub fn peer_addr(&self) -> SocketAddr {
        *self.inner.remote_addr()
    }
}

impl AsyncRead for StackStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StackStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    /// The stack's shutdown completes only once the connection is fully closed (after the
    /// peer's FIN and TIME-WAIT), which would hold the relay's half-close for seconds.
    /// Asking once is enough: the stack sends its FIN after the queued bytes drain.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut {
            self.shut = true;
            if let Poll::Ready(Err(e)) = Pin::new(&mut self.inner).poll_shutdown(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncStream for StackStream {
    fn into_tcp(self: Box<Self>) -> Result<tokio::net::TcpStream, Box<dyn AsyncStream>> {
        Err(self)
    }
}
