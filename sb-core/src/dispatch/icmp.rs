//! ICMP echo through the router: a ping that a TUN (or an endpoint's peer) sends is a flow
//! of network `icmp` (Go 1.13+): the rules decide, a `route` to an outbound that carries
//! ICMP (the WireGuard endpoint) sends the echo on and the client is answered only when it
//! comes back; a reject drops it; an outbound that cannot carry ICMP leaves the ping to be
//! answered where it arrived, as the userspace stack always did.

use super::{outbound_label, Decision, Dispatcher};
use crate::adapter::PingVerdict;
use crate::flow::FlowContext;
use std::io;
use std::time::Duration;
use tracing::debug;

/// How long a ping waits for its echo through the outbound (ping's own default wait).
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Sniff and resolve steps a ping may take through the rules (each moves forward).
const MAX_STEPS: usize = 64;

impl Dispatcher {
    /// Routes one echo request (see the module doc).
    pub(super) async fn ping(&self, mut flow: FlowContext) -> PingVerdict {
        let Some(dest) = flow.destination.socket_addr().map(|a| a.ip()) else {
            return PingVerdict::Drop;
        };
        let mut decision = self.decide(&mut flow);
        for _ in 0..MAX_STEPS {
            // Nothing to sniff in a ping, and its destination is an address already.
            match decision {
                Decision::Sniff { next, .. } | Decision::Resolve { next, .. } => {
                    decision = self.decide_from(&mut flow, next);
                }
                _ => break,
            }
        }
        let Decision::Route(outbound) = decision else {
            debug!(target: "connection", "ping {dest}: not routed");
            return PingVerdict::Drop;
        };
        let label = outbound_label(outbound.as_ref());
        match outbound.ping(&flow, dest, PING_TIMEOUT).await {
            Ok(()) => {
                debug!(target: "connection", "ping {dest} using {label}: echo reply");
                PingVerdict::Answer
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => PingVerdict::Answer,
            Err(e) => {
                debug!(target: "connection", "ping {dest} using {label}: {e}");
                PingVerdict::Drop
            }
        }
    }
}
