//! Flows out of the userspace stack: every TCP connection the stack accepts and every UDP
//! conversation it sees becomes a [`FlowContext`] with the client's address as source and
//! the address the client was reaching as destination (the TUN sees real destinations, so
//! there is nothing to override), handed to the dispatcher with the inbound's tag.
//!
//! UDP is a NAT keyed by (source, destination): the first datagram of a pair starts a flow,
//! later ones are queued to it, replies are written back to the client from the address
//! they came from, and the entry goes when the dispatcher's relay ends the flow (idle for
//! `udp_timeout`).

use futures::{Sink, SinkExt, Stream, StreamExt};
use netstack_smoltcp::{PacketPool, TcpStream};
use sb_core::adapter::{AsyncStream, BoxFuture, BoxPacketConn, FlowHandler, NoReply, PacketConn};
use sb_core::flow::{Destination, FlowContext, Host, Network};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tracing::{info, Instrument};

/// Datagrams queued per UDP flow before new ones are dropped (UDP may drop; memory may not
/// grow without bound).
const FLOW_QUEUE: usize = 256;

/// Replies queued for the stack across all UDP flows.
const REPLY_QUEUE: usize = 1024;

/// What every flow of one TUN inbound carries.
#[derive(Clone)]
pub struct FlowSource {
    /// The inbound's tag.
    pub tag: Arc<str>,
    /// Its log label, `inbound/tun[tag]`.
    pub label: Arc<str>,
    /// Where flows go.
    pub handler: Arc<dyn FlowHandler>,
    /// UDP idle timeout (`None`: Go's default).
    pub udp_timeout: Option<Duration>,
}

impl FlowSource {
    fn flow(&self, network: Network, src: SocketAddr, dst: SocketAddr) -> FlowContext {
        let mut flow = FlowContext::new(
            self.tag.clone(),
            "tun",
            network,
            src,
            Destination::from_socket(dst),
        );
        // The client's socket is connected to the destination: that is the "inbound
        // address" the process search matches it by.
        flow.local = Some(dst);
        flow.udp_timeout = self.udp_timeout;
        flow
    }
}

/// Accepts the stack's TCP connections until the stack ends.
pub async fn accept_tcp<L>(mut listener: L, src: FlowSource)
where
    L: Stream<Item = (TcpStream, SocketAddr, SocketAddr)> + Unpin,
{
    while let Some((stream, client, dest)) = listener.next().await {
        let flow = src.flow(Network::Tcp, client, dest);
        let (handler, label) = (src.handler.clone(), src.label.clone());
        let span = tracing::info_span!("flow", id = flow.id);
        tokio::spawn(
            async move {
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

/// A TCP connection of the stack as a flow's client stream.
struct StackStream {
    inner: TcpStream,
    shut: bool,
}

impl StackStream {
    fn new(inner: TcpStream) -> StackStream {
        StackStream { inner, shut: false }
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
    /// client's FIN and TIME-WAIT), which would hold the relay's half-close for seconds.
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

/// A UDP datagram between the stack and a flow: payload, source, destination.
type Datagram = (Vec<u8>, SocketAddr, SocketAddr);

/// (client, destination) -> the queue of its flow.
type Nat = Arc<Mutex<HashMap<(SocketAddr, SocketAddr), mpsc::Sender<Vec<u8>>>>>;

/// Serves the stack's UDP until it ends: `from_stack` yields the clients' datagrams,
/// `to_stack` takes the replies.
pub async fn serve_udp<R, W>(mut from_stack: R, to_stack: W, pool: PacketPool, src: FlowSource)
where
    R: Stream<Item = Datagram> + Unpin,
    W: Sink<Datagram, Error = io::Error> + Send + Unpin + 'static,
{
    let (reply_tx, reply_rx) = mpsc::channel::<Datagram>(REPLY_QUEUE);
    let writer = tokio::spawn(write_replies(reply_rx, to_stack));
    let nat: Nat = Arc::default();
    while let Some((payload, client, dest)) = from_stack.next().await {
        let key = (client, dest);
        let existing = nat.lock().ok().and_then(|n| n.get(&key).cloned());
        if let Some(tx) = existing {
            // A full queue drops the datagram, as a congested network would.
            if let Err(full) = tx.try_send(payload) {
                pool.give(full.into_inner());
            }
            continue;
        }
        let (tx, rx) = mpsc::channel(FLOW_QUEUE);
        let _ = tx.try_send(payload);
        if let Ok(mut n) = nat.lock() {
            n.insert(key, tx);
        }
        let conn: BoxPacketConn = Arc::new(UdpFlow {
            client,
            dest,
            rx: tokio::sync::Mutex::new(rx),
            replies: reply_tx.clone(),
            pool: pool.clone(),
        });
        let flow = src.flow(Network::Udp, client, dest);
        let (handler, label, nat) = (src.handler.clone(), src.label.clone(), nat.clone());
        let span = tracing::info_span!("flow", id = flow.id);
        tokio::spawn(
            async move {
                info!(target: "inbound", tag = %label, "inbound packet connection from {client}");
                info!(target: "inbound", tag = %label, "inbound packet connection to {dest}");
                handler.handle_udp(flow, conn).await;
                if let Ok(mut n) = nat.lock() {
                    n.remove(&key);
                }
            }
            .instrument(span),
        );
    }
    writer.abort();
}

/// Writes replies into the stack, flushing when no more are waiting.
async fn write_replies<W>(mut rx: mpsc::Receiver<Datagram>, mut to_stack: W)
where
    W: Sink<Datagram, Error = io::Error> + Unpin,
{
    while let Some(d) = rx.recv().await {
        let mut r = to_stack.feed(d).await;
        while r.is_ok() {
            match rx.try_recv() {
                Ok(d) => r = to_stack.feed(d).await,
                Err(_) => break,
            }
        }
        if let Err(e) = r.and(to_stack.flush().await) {
            tracing::debug!(target: "inbound", "tun: udp reply dropped: {e}");
        }
    }
}

/// The client side of one UDP flow: datagrams from `client` to `dest`, replies back.
struct UdpFlow {
    client: SocketAddr,
    dest: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
    replies: mpsc::Sender<Datagram>,
    /// The stack's buffers: a datagram's payload goes back once copied out, a reply's
    /// payload comes from here (the stack gives it back once it has built the packet).
    pool: PacketPool,
}

impl UdpFlow {
    /// The address a reply from `from` is written from: that address when it is one of the
    /// client's family (so a client talking to several peers through one flow sees each),
    /// else the address the client sent to.
    fn reply_source(&self, from: &Destination) -> SocketAddr {
        let ip = match from.host {
            Host::Ip(IpAddr::V6(v6)) if self.client.is_ipv4() => {
                v6.to_ipv4_mapped().map(IpAddr::V4)
            }
            Host::Ip(ip) if ip.is_ipv4() == self.client.is_ipv4() => Some(ip),
            _ => None,
        };
        ip.map_or(self.dest, |ip| SocketAddr::new(ip, from.port))
    }
}

impl PacketConn for UdpFlow {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        from: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let d = (self.pool.copy_of(buf), self.reply_source(from), self.client);
            self.replies
                .send(d)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "tun inbound closed"))
        })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let pkt =
                self.rx.lock().await.recv().await.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::BrokenPipe, "tun inbound closed")
                })?;
            let n = pkt.len().min(buf.len());
            buf[..n].copy_from_slice(&pkt[..n]);
            self.pool.give(pkt);
            Ok((n, Destination::from_socket(self.dest)))
        })
    }
}
