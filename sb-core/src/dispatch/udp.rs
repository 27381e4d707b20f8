//! The client side of a UDP flow for the dispatcher's loop: peeking at its first datagrams
//! for a sniff, and carrying the flow (open the outbound's association, relay until idle).
//! A UDP client has no answer to wait for, so refusing it is silence.

use super::{outbound_label, Client};
use crate::adapter::{BoxPacketConn, ConnectFailure, Outbound};
use crate::dns::Dns;
use crate::flow::FlowContext;
use crate::relay::Counters;
use crate::sniff::{peek_packets, Found};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, error, info};

/// A UDP flow's client: the inbound's packet connection for it.
pub(super) struct UdpClient(pub(super) BoxPacketConn);

impl Client for UdpClient {
    const NOUN: &'static str = "packet connection";

    async fn sniff(
        self,
        timeout: Duration,
        sniffers: &[&'static str],
    ) -> Option<(Self, Option<Found>)> {
        let (replay, found) = peek_packets(self.0.as_ref(), timeout, sniffers).await;
        let client = UdpClient(Arc::new(crate::udp::Replay::new(replay, self.0)));
        Some((client, found))
    }

    async fn refuse(self, _why: ConnectFailure) {}

    async fn hijack(self, dns: Arc<Dns>, flow: FlowContext, idle: Duration) {
        crate::dns::serve::serve_udp(dns, flow, self.0, idle).await;
    }

    async fn carry(
        self,
        flow: FlowContext,
        outbound: Arc<dyn Outbound>,
        counters: Arc<Counters>,
        udp_idle: Duration,
    ) {
        let label = outbound_label(outbound.as_ref());
        info!(target: "outbound", tag = %label, "outbound packet connection to {}", flow.destination);
        let dest = flow.destination.clone();
        let upstream = match outbound.connect_udp(&flow, &dest).await {
            Ok(u) => u,
            Err(e) => {
                error!(target: "connection", "open packet connection to {dest} using {label}: {e}");
                return;
            }
        };
        match crate::udp::relay_udp(self.0, upstream, counters, udp_idle).await {
            Ok((up, down)) => debug!(target: "connection", up, down, "packet connection closed"),
            Err(e) => debug!(target: "connection", "packet connection closed: {e}"),
        }
    }
}
