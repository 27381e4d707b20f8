//! The client side of a TCP flow for the dispatcher's loop: answering the client through the
//! inbound's [`Responder`], peeking at its first bytes for a sniff, and carrying the flow
//! (dial the outbound, cancelled if the client hangs up meanwhile (`hangup.rs`), answer,
//! relay).

use super::hangup::dial_unless_hung_up;
use super::{outbound_label, Client};
use crate::adapter::{BoxStream, ConnectFailure, Outbound, Responder};
use crate::dns::Dns;
use crate::flow::FlowContext;
use crate::relay::{relay_any, Counters};
use crate::sniff::{peek_stream, Found};
use crate::stream::Prefixed;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, error, info};

/// How long a TCP flow may stay silent in both directions before it is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A TCP flow's client: its stream, the inbound's way to answer it, and whether it was
/// answered already (a sniffed flow is answered before it is dialed).
pub(super) struct TcpClient {
    pub(super) stream: BoxStream,
    pub(super) responder: Box<dyn Responder>,
    pub(super) replied: bool,
}

impl TcpClient {
    /// Tells the client the upstream is connected, once.
    async fn answer(&mut self) -> std::io::Result<()> {
        if !self.replied {
            self.responder.connected(&mut self.stream, None).await?;
            self.replied = true;
        }
        Ok(())
    }
}

impl Client for TcpClient {
    const NOUN: &'static str = "connection";

    async fn sniff(
        mut self,
        timeout: Duration,
        sniffers: &[&'static str],
    ) -> Option<(Self, Option<Found>)> {
        // SOCKS and HTTP CONNECT clients send their first bytes only after the proxy said
        // yes, so a sniffed flow is answered before it is dialed.
        if let Err(e) = self.answer().await {
            debug!(target: "connection", "reply to client: {e}");
            return None;
        }
        let (bytes, found) = peek_stream(&mut self.stream, timeout, sniffers).await;
        self.stream = Prefixed::wrap_boxed(bytes, self.stream);
        Some((self, found))
    }

    async fn refuse(mut self, why: ConnectFailure) {
        if !self.replied {
            self.responder.failed(&mut self.stream, &why).await;
        }
    }

    async fn hijack(mut self, dns: Arc<Dns>, flow: FlowContext, idle: Duration) {
        if self.answer().await.is_err() {
            return;
        }
        crate::dns::serve::serve_tcp(dns, flow, self.stream, idle).await;
    }

    async fn carry(
        mut self,
        flow: FlowContext,
        outbound: Arc<dyn Outbound>,
        counters: Arc<Counters>,
        _udp_idle: Duration,
    ) {
        let label = outbound_label(outbound.as_ref());
        info!(target: "outbound", tag = %label, "outbound connection to {}", flow.destination);
        let dest = flow.destination.clone();
        let mut early = Vec::new();
        let dialed = dial_unless_hung_up(
            &mut self.stream,
            &mut early,
            outbound.connect_tcp(&flow, &dest),
        )
        .await;
        self.stream = Prefixed::wrap_boxed(early, self.stream);
        let upstream = match dialed {
            None => {
                debug!(target: "connection", "client closed the connection while {dest} was dialed: dial cancelled");
                return;
            }
            Some(Ok(u)) => u,
            Some(Err(e)) => {
                error!(target: "connection", "open connection to {dest} using {label}: {e}");
                self.refuse(ConnectFailure::Dial(e)).await;
                return;
            }
        };
        if let Err(e) = self.answer().await {
            debug!(target: "connection", "reply to client: {e}");
            return;
        }
        match relay_any(self.stream, upstream, counters, TCP_IDLE_TIMEOUT).await {
            Ok((up, down)) => debug!(target: "connection", up, down, "connection closed"),
            Err(e) => debug!(target: "connection", "connection closed: {e}"),
        }
    }
}
