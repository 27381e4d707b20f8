//! UDP through the stack. Every datagram from the device goes to one of two places: a socket
//! the stack's owner bound ([`StackUdpSocket`], an endpoint's outbound side, keyed by its
//! exact local address), or else the NAT of accepted flows, keyed by (source, destination):
//! the first datagram of a pair starts a flow of the [`FlowSource`], later ones are queued to
//! it, replies are written back from the address they came from, and the entry goes when the
//! dispatcher's relay ends the flow (idle for `udp_timeout`).
//!
//! Both tables are bounded: a full flow queue drops the datagram (as a congested network
//! would), and so does a full socket queue.

use super::flows::FlowSource;
use crate::adapter::{BoxFuture, BoxPacketConn, PacketConn};
use crate::flow::{Destination, Host, Network};
use futures::{Sink, SinkExt, Stream, StreamExt};
use netstack_smoltcp::PacketPool;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::{info, Instrument};

/// Datagrams queued per UDP flow or bound socket before new ones are dropped (UDP may drop;
/// memory may not grow without bound).
const FLOW_QUEUE: usize = 256;

/// Datagrams queued for the stack across all flows and sockets.
const REPLY_QUEUE: usize = 1024;

/// Accepted UDP flows at once, at most: each is a (source, destination) pair a TUN client
/// chooses freely, so without a bound one program could make the table, the flows and their
/// upstream sockets grow without end. Past it, datagrams of new pairs are dropped (the first
/// drop warned about) until flows end.
pub const MAX_UDP_FLOWS: usize = 16384;

/// A UDP datagram between the stack and a flow: payload, source, destination.
pub(super) type Datagram = (Vec<u8>, SocketAddr, SocketAddr);

/// (client, destination) -> the queue of its flow.
type Nat = Arc<Mutex<HashMap<(SocketAddr, SocketAddr), mpsc::Sender<Vec<u8>>>>>;

/// Bound local address -> the queue of its socket (payload, sender).
type Bound = Mutex<HashMap<SocketAddr, mpsc::Sender<(Vec<u8>, SocketAddr)>>>;

/// The UDP side of one stack: the bound sockets and the way datagrams reach the stack.
pub(super) struct Udp {
    bound: Bound,
    to_stack: mpsc::Sender<Datagram>,
    pool: PacketPool,
}

impl Udp {
    /// Starts the writer into the stack; returns the UDP side and the writer's task.
    pub(super) fn new<W>(to_stack: W, pool: PacketPool) -> (Arc<Udp>, tokio::task::JoinHandle<()>)
    where
        W: Sink<Datagram, Error = io::Error> + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel::<Datagram>(REPLY_QUEUE);
        let writer = tokio::spawn(write_to_stack(rx, to_stack));
        let udp = Arc::new(Udp {
            bound: Mutex::default(),
            to_stack: tx,
            pool,
        });
        (udp, writer)
    }

    /// Binds `local` (port 0: a free port of the dynamic range).
    pub(super) fn bind(self: &Arc<Self>, mut local: SocketAddr) -> io::Result<StackUdpSocket> {
        let mut bound = self
            .bound
            .lock()
            .map_err(|_| io::Error::other("UDP table poisoned"))?;
        if local.port() == 0 {
            let start = rand::random::<u16>() % 16384;
            let port = (0..16384u16)
                .map(|i| 49152 + (start + i) % 16384)
                .find(|p| !bound.contains_key(&SocketAddr::new(local.ip(), *p)))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        "no free UDP port in the stack",
                    )
                })?;
            local.set_port(port);
        } else if bound.contains_key(&local) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let (tx, rx) = mpsc::channel(FLOW_QUEUE);
        bound.insert(local, tx);
        Ok(StackUdpSocket {
            local,
            rx: tokio::sync::Mutex::new(rx),
            udp: self.clone(),
        })
    }

    /// A datagram for a bound socket, handed to it; `Err` gives it back when none is bound
    /// at its destination.
    fn deliver(&self, payload: Vec<u8>, src: SocketAddr, dst: SocketAddr) -> Result<(), Vec<u8>> {
        let tx = match self.bound.lock() {
            Ok(b) => b.get(&dst).cloned(),
            Err(_) => None,
        };
        let Some(tx) = tx else {
            return Err(payload);
        };
        if let Err(full) = tx.try_send((payload, src)) {
            let (payload, _) = full.into_inner();
            self.pool.give(payload);
        }
        Ok(())
    }
}

/// Serves the stack's UDP until it ends: datagrams for bound sockets go to them, the rest
/// become flows of `src` (when the stack accepts flows) or are dropped.
pub(super) async fn serve<R>(
    mut from_stack: R,
    udp: Arc<Udp>,
    src: Option<FlowSource>,
    max_flows: usize,
) where
    R: Stream<Item = Datagram> + Unpin,
{
    let nat: Nat = Arc::default();
    let mut refused: u64 = 0;
    while let Some((payload, client, dest)) = from_stack.next().await {
        let Err(payload) = udp.deliver(payload, client, dest) else {
            continue;
        };
        let Some(src) = &src else {
            udp.pool.give(payload);
            continue;
        };
        let key = (client, dest);
        let existing = nat.lock().ok().and_then(|n| n.get(&key).cloned());
        if let Some(tx) = existing {
            // A full queue drops the datagram, as a congested network would.
            if let Err(full) = tx.try_send(payload) {
                udp.pool.give(full.into_inner());
            }
            continue;
        }
        let Ok(mut table) = nat.lock() else {
            udp.pool.give(payload);
            continue;
        };
        if table.len() >= max_flows {
            drop(table);
            udp.pool.give(payload);
            refused += 1;
            if refused == 1 {
                tracing::warn!(target: "inbound", tag = %src.label, "udp: {max_flows} flows; datagrams of new ones are dropped until some end (further drops are logged at debug)");
            } else {
                tracing::debug!(target: "inbound", tag = %src.label, "udp: table full, datagram {client} -> {dest} dropped ({refused} so far)");
            }
            continue;
        }
        let (tx, rx) = mpsc::channel(FLOW_QUEUE);
        let _ = tx.try_send(payload);
        table.insert(key, tx);
        drop(table);
        let conn: BoxPacketConn = Arc::new(UdpFlow {
            client,
            dest,
            rx: tokio::sync::Mutex::new(rx),
            udp: udp.clone(),
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
}

/// Writes datagrams into the stack, flushing when no more are waiting.
async fn write_to_stack<W>(mut rx: mpsc::Receiver<Datagram>, mut to_stack: W)
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
            tracing::debug!(target: "netstack", "udp datagram dropped: {e}");
        }
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "userspace stack stopped")
}

/// The client side of one accepted UDP flow: datagrams from `client` to `dest`, replies
/// back.
struct UdpFlow {
    client: SocketAddr,
    dest: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
    udp: Arc<Udp>,
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
            let d = (
                self.udp.pool.copy_of(buf),
                self.reply_source(from),
                self.client,
            );
            self.udp.to_stack.send(d).await.map_err(|_| stopped())
        })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let pkt = self.rx.lock().await.recv().await.ok_or_else(stopped)?;
            let n = pkt.len().min(buf.len());
            buf[..n].copy_from_slice(&pkt[..n]);
            self.udp.pool.give(pkt);
            Ok((n, Destination::from_socket(self.dest)))
        })
    }
}

/// A UDP socket of the stack, bound to one local address: what an endpoint's outbound side
/// sends into the tunnel from its interface address. Closed (unbound) when dropped.
pub struct StackUdpSocket {
    local: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    udp: Arc<Udp>,
}

impl StackUdpSocket {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends `buf` to `dest` (an address of `local`'s family).
    pub async fn send_to(&self, buf: &[u8], dest: SocketAddr) -> io::Result<()> {
        if dest.is_ipv4() != self.local.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "send from {} to {dest}: the addresses' families differ",
                    self.local
                ),
            ));
        }
        let d = (self.udp.pool.copy_of(buf), self.local, dest);
        self.udp.to_stack.send(d).await.map_err(|_| stopped())
    }

    /// Receives one datagram into `buf` (truncated to its length) and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (pkt, from) = self.rx.lock().await.recv().await.ok_or_else(stopped)?;
        let n = pkt.len().min(buf.len());
        buf[..n].copy_from_slice(&pkt[..n]);
        self.udp.pool.give(pkt);
        Ok((n, from))
    }
}

impl Drop for StackUdpSocket {
    fn drop(&mut self) {
        if let Ok(mut b) = self.udp.bound.lock() {
            b.remove(&self.local);
        }
    }
}
