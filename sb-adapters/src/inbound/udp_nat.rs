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

/// Clients with a flow at once, at most: the source address of a datagram is the client's
/// word, so without a bound anyone could make the table (and the flows, and their upstream
/// sockets) grow with spoofed sources. Past it, datagrams from new clients are dropped
/// (counted, the first one warned about) until flows end.
pub const MAX_SESSIONS: usize = 4096;

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
    max_sessions: usize,
) {
    let sessions: Sessions = Arc::default();
    let mut refused: u64 = 0;
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
        let Ok(mut s) = sessions.lock() else {
            continue;
        };
        if s.len() >= max_sessions {
            drop(s);
            refused += 1;
            if refused == 1 {
                tracing::warn!(target: "inbound", tag = %tag, "udp: {max_sessions} clients have flows; datagrams from new ones are dropped until some end (further drops are logged at debug)");
            } else {
                tracing::debug!(target: "inbound", tag = %tag, "udp: table full, datagram from {peer} dropped ({refused} so far)");
            }
            continue;
        }
        s.insert(peer, tx);
        drop(s);
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

#[cfg(test)]
mod tests {
    //! Hardening finding 7: the table of clients is bounded.

    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use sb_core::adapter::{BoxStream, Responder};
    use std::time::Duration;

    /// Holds every UDP flow open and reports it.
    struct Hold(mpsc::UnboundedSender<SocketAddr>);

    impl FlowHandler for Hold {
        fn handle_tcp(
            self: Arc<Self>,
            _flow: FlowContext,
            _stream: BoxStream,
            _responder: Box<dyn Responder>,
        ) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
        fn handle_udp(
            self: Arc<Self>,
            flow: FlowContext,
            conn: BoxPacketConn,
        ) -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let _ = self.0.send(flow.source);
                let mut buf = [0u8; 64];
                while conn.recv_from(&mut buf).await.is_ok() {}
            })
        }
    }

    #[tokio::test]
    async fn clients_past_the_bound_get_no_flow() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let at = socket.local_addr().unwrap();
        let (tx, mut flows) = mpsc::unbounded_channel();
        let task = tokio::spawn(serve(
            socket,
            "d".into(),
            "direct",
            Destination::from_host("192.0.2.1", 53),
            Arc::new(Hold(tx)),
            None,
            4,
        ));
        let mut clients = Vec::new();
        for _ in 0..6 {
            let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            c.send_to(b"x", at).await.unwrap();
            clients.push(c);
        }
        let mut seen = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), flows.recv()).await
        {
            seen += 1;
        }
        assert_eq!(seen, 4);
        task.abort();
    }
}
