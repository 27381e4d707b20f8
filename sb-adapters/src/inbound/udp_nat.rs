//! The UDP side of listening inbounds: one socket, a NAT table from client address to flow.
//! The first datagram from a client starts a flow; later ones are queued to it; the flow ends
//! (and its entry goes) when the dispatcher's UDP relay goes idle. Used by the `direct`
//! inbound.
//!
//! The serving task owns the socket; flows only borrow it for each reply. When the task
//! stops (the inbound closes), the socket is released at once and every flow's queue ends,
//! so its relay ends too: nothing keeps the port bound, and a reload binds it again.

use sb_core::adapter::{BoxFuture, BoxPacketConn, FlowHandler, PacketConn};
use sb_core::flow::{Destination, FlowContext, Network};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Datagrams queued per client before new ones are dropped (UDP may drop; memory may not grow).
const QUEUE: usize = 256;

/// A queued datagram and where it is going.
type Datagram = (Vec<u8>, Destination);

/// Client address -> the queue of its flow.
type Sessions = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Datagram>>>>;

/// The client side of one UDP flow: datagrams from one client address, replies back to it.
pub struct ClientQueue {
    /// The inbound's socket, while the inbound serves.
    socket: Weak<UdpSocket>,
    client: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<Datagram>>,
}

impl PacketConn for ClientQueue {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        _from: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let socket = self.socket.upgrade().ok_or_else(closed)?;
            socket.send_to(buf, self.client).await.map(|_| ())
        })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let (pkt, dest) = self.rx.lock().await.recv().await.ok_or_else(closed)?;
            let n = pkt.len().min(buf.len());
            buf[..n].copy_from_slice(&pkt[..n]);
            Ok((n, dest))
        })
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "inbound closed")
}

/// Ends every flow's queue when the serving task stops (aborted at close): their relays
/// see the end and finish.
struct EndSessions(Sessions);

impl Drop for EndSessions {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.clear();
        }
    }
}

/// Serves UDP on `socket`: each datagram goes to `dest`; flows idle for `udp_timeout`
/// (the inbound's setting, `None` for the default) end.
pub async fn serve(
    socket: Arc<UdpSocket>,
    tag: Arc<str>,
    kind: &'static str,
    dest: Destination,
    handler: Arc<dyn FlowHandler>,
    udp_timeout: Option<std::time::Duration>,
) {
    let sessions: Sessions = Arc::default();
    let _end = EndSessions(sessions.clone());
    let local = socket.local_addr().ok();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(target: "inbound", "udp receive: {e}");
                continue;
            }
        };
        let pkt = (buf[..n].to_vec(), dest.clone());
        let existing = sessions.lock().ok().and_then(|s| s.get(&peer).cloned());
        if let Some(tx) = existing {
            let _ = tx.try_send(pkt);
            continue;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(pkt);
        if let Ok(mut s) = sessions.lock() {
            s.insert(peer, tx);
        }
        let conn: BoxPacketConn = Arc::new(ClientQueue {
            socket: Arc::downgrade(&socket),
            client: peer,
            rx: tokio::sync::Mutex::new(rx),
        });
        let mut flow = FlowContext::new(tag.clone(), kind, Network::Udp, peer, dest.clone());
        flow.udp_timeout = udp_timeout;
        flow.local = local;
        let (handler, sessions) = (handler.clone(), sessions.clone());
        tokio::spawn(async move {
            handler.handle_udp(flow, conn).await;
            if let Ok(mut s) = sessions.lock() {
                s.remove(&peer);
            }
        });
    }
}
