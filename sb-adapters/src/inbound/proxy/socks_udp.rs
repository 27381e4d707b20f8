//! SOCKS5 UDP associations of the proxy inbounds: the relay socket a client's UDP
//! ASSOCIATE was answered with becomes one UDP flow, routed by its first datagram (as Go
//! does), living as long as the client's TCP control connection and ending, like any UDP
//! flow, after `udp_timeout` without traffic (a client that never sends one included).

use super::{ProxyInbound, SocketAddr};
use sb_core::adapter::{BoxFuture, FlowHandler};
use sb_core::flow::{Destination, FlowContext, Network};
use std::io;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tracing::debug;

impl ProxyInbound {
    /// Runs a SOCKS5 UDP association until the client's TCP control connection closes.
    pub(super) async fn udp_association(
        &self,
        mut control: TcpStream,
        peer: SocketAddr,
        id: u32,
        assoc: UdpAssociation,
        handler: Arc<dyn FlowHandler>,
    ) {
        // The first datagram from the client's address fixes its port and the flow's
        // destination (Go routes a UDP association by its first packet).
        let mut raw = vec![0u8; 65_535];
        let first = async {
            loop {
                let (n, from) = assoc.socket.recv_from(&mut raw).await?;
                if from.ip() != peer.ip() {
                    continue;
                }
                if let Ok(Some((dest, off))) = crate::proto::socks_udp::decode(&raw[..n]) {
                    return Ok::<_, io::Error>((from, dest, raw[off..n].to_vec()));
                }
            }
        };
        let mut probe = [0u8; 1];
        // No datagram within the UDP timeout: idle from the start, the association ends as
        // an idle one does later (it holds a relay socket and a control connection).
        let idle = crate::inbound::udp_timeout(&self.listen).unwrap_or(sb_core::udp::UDP_TIMEOUT);
        let (client, dest, payload) = tokio::select! {
            r = tokio::time::timeout(idle, first) => match r {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    debug!(target: "inbound", tag = %self.label(), "udp association: {e}");
                    return;
                }
                Err(_) => {
                    debug!(target: "inbound", tag = %self.label(), "udp association: no datagram within {idle:?}");
                    return;
                }
            },
            _ = control.read(&mut probe) => return,
        };
        let mut flow = FlowContext::new(
            self.tag.clone(),
            self.kind,
            Network::Udp,
            client,
            dest.clone(),
        );
        flow.id = id;
        flow.user = assoc.user;
        flow.udp_timeout = crate::inbound::udp_timeout(&self.listen);
        flow.local = assoc.socket.local_addr().ok();
        let conn = Arc::new(SocksUdp {
            socket: assoc.socket,
            client,
            first: Mutex::new(Some((payload, dest))),
        });
        // The association lives as long as the TCP connection that asked for it.
        tokio::select! {
            _ = handler.handle_udp(flow, conn) => {}
            _ = control.read(&mut probe) => {}
        }
    }
}

/// A SOCKS5 UDP ASSOCIATE that was answered: the relay socket the client will send to.
pub(in crate::inbound) struct UdpAssociation {
    pub(super) socket: Arc<tokio::net::UdpSocket>,
    pub(super) user: Option<String>,
}

/// The client side of a SOCKS5 UDP association: datagrams from the client (headers removed),
/// replies back to it with the header naming their source.
struct SocksUdp {
    socket: Arc<tokio::net::UdpSocket>,
    client: SocketAddr,
    first: Mutex<Option<(Vec<u8>, Destination)>>,
}

impl sb_core::adapter::PacketConn for SocksUdp {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        from: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let pkt = crate::proto::socks_udp::encode(from, buf)?;
            self.socket.send_to(&pkt, self.client).await.map(|_| ())
        })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            if let Some((pkt, dest)) = self.first.lock().ok().and_then(|mut f| f.take()) {
                let n = pkt.len().min(buf.len());
                buf[..n].copy_from_slice(&pkt[..n]);
                return Ok((n, dest));
            }
            let mut raw = vec![0u8; 65_535];
            loop {
                let (n, from) = self.socket.recv_from(&mut raw).await?;
                if from != self.client {
                    continue;
                }
                if let Ok(Some((dest, off))) = crate::proto::socks_udp::decode(&raw[..n]) {
                    let len = (n - off).min(buf.len());
                    buf[..len].copy_from_slice(&raw[off..off + len]);
                    return Ok((len, dest));
                }
            }
        })
    }
}
