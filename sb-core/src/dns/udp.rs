//! The `udp` server type: one datagram socket per query (a fresh source port each time, so
//! answers cannot be spoofed by guessing the port), opened through the server's
//! [`Dialer`] — a local socket, or a UDP association through a `detour` outbound. A
//! truncated answer is asked again over TCP, as Go does.

use super::message::{decode_answer, encode};
use super::stream::StreamTransport;
use super::transport::Transport;
use super::DnsError;
use crate::adapter::BoxFuture;
use crate::dialer::Dialer;
use crate::flow::{Destination, FlowContext, Network};
use hickory_proto::op::Message;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Largest answer read from a datagram (EDNS0 answers can be larger than 512 bytes).
const MAX_DATAGRAM: usize = 65_535;

/// DNS over UDP.
pub struct UdpTransport {
    tag: String,
    server: Destination,
    dialer: Arc<Dialer>,
    timeout: Duration,
    /// TCP to the same server, for truncated answers.
    tcp: StreamTransport,
}

impl UdpTransport {
    /// A transport to `server` through `dialer`.
    pub fn new(tag: &str, server: Destination, dialer: Arc<Dialer>, timeout: Duration) -> Self {
        UdpTransport {
            tag: tag.to_string(),
            tcp: StreamTransport::tcp(tag, server.clone(), dialer.clone(), timeout),
            server,
            dialer,
            timeout,
        }
    }

    async fn once(&self, query: &Message) -> Result<Message, DnsError> {
        let io = |source: std::io::Error| DnsError::Io {
            server: self.tag.clone(),
            source,
        };
        let flow = dns_flow(&self.tag, Network::Udp, &self.server);
        let conn = self
            .dialer
            .listen_udp(&flow, &self.server)
            .await
            .map_err(io)?;
        let bytes = encode(query)?;
        conn.send_to(&bytes, &self.server).await.map_err(io)?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // Datagrams that are not the answer (stray, garbled, another id) are skipped; the
        // caller's timeout bounds the wait.
        loop {
            let (n, _) = conn.recv_from(&mut buf).await.map_err(io)?;
            let Some(datagram) = buf.get(..n) else {
                continue;
            };
            match decode_answer(&self.tag, datagram, query) {
                Ok(m) => return Ok(m),
                Err(e) => tracing::debug!(target: "dns", "{e}"),
            }
        }
    }
}

/// The flow a transport's own connection is opened as (its detour sees this context).
pub fn dns_flow(tag: &str, network: Network, dest: &Destination) -> FlowContext {
    FlowContext::new(
        Arc::from(format!("dns:{tag}")),
        "dns",
        network,
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        dest.clone(),
    )
}

impl Transport for UdpTransport {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "udp"
    }
    fn exchange<'a>(&'a self, query: &'a Message) -> BoxFuture<'a, Result<Message, DnsError>> {
        Box::pin(async move {
            let answer = tokio::time::timeout(self.timeout, self.once(query))
                .await
                .map_err(|_| DnsError::Timeout {
                    server: self.tag.clone(),
                    after: self.timeout,
                })??;
            if answer.metadata.truncation {
                return self.tcp.exchange(query).await;
            }
            Ok(answer)
        })
    }
}
