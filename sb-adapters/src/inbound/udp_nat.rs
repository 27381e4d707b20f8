//! The UDP side of listening inbounds: one socket, a NAT table from client address to flow.
//! The first datagram from a client starts a flow; later ones are queued to it; the flow ends
//! (and its entry goes) when the dispatcher's UDP relay goes idle. Used by the `direct`
//! inbound; the SOCKS5 UDP association uses [`ClientQueue`] the same way.

use sb_core::adapter::{BoxFuture, BoxPacketConn, FlowHandler, PacketConn};
use sb_core::flow::{Destination, FlowContext, Network};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<Datagram>>,
}

impl PacketConn for ClientQueue {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        _from: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { self.socket.send_to(buf, self.client).await.map(|_| ()) })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let (pkt, dest) = self
                .rx
                .lock()
                .await
                .recv()
                .await
                .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "inbound closed"))?;
            let n = pkt.len().min(buf.len());
            buf[..n].copy_from_slice(&pkt[..n]);
            Ok((n, dest))
        })
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
            socket: socket.clone(),
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
