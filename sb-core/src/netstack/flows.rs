//! Who the stack's accepted flows belong to: the adapter (a `tun` inbound, an endpoint) whose
//! tag and type they carry into the router, and where they are handed.

use crate::adapter::FlowHandler;
use crate::flow::{Destination, FlowContext, Network};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What every flow accepted by one stack carries.
#[derive(Clone)]
pub struct FlowSource {
    /// The adapter's tag (the flows' inbound tag).
    pub tag: Arc<str>,
    /// The adapter's type (`tun`, `wireguard`, ...).
    pub kind: &'static str,
    /// Its log label, `inbound/tun[tag]` or `endpoint/wireguard[tag]`.
    pub label: Arc<str>,
    /// Where flows go.
    pub handler: Arc<dyn FlowHandler>,
    /// UDP idle timeout (`None`: Go's default).
    pub udp_timeout: Option<Duration>,
}

impl FlowSource {
    /// A flow from `src` to `dst`.
    pub(super) fn flow(&self, network: Network, src: SocketAddr, dst: SocketAddr) -> FlowContext {
        let mut flow = FlowContext::new(
            self.tag.clone(),
            self.kind,
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
