//! Why the dispatcher could not route a flow: the reason a
//! [`crate::dispatch::Decision::Fail`] carries, that the dispatcher logs and hands the inbound
//! in [`super::ConnectFailure`]. Part of the adapter contract (an inbound's responder reads
//! it), so it lives here rather than in the dispatcher, which only produces it. The texts
//! are Go's where Go has one, since they appear in logs users compare.

use crate::flow::Network;
use std::net::IpAddr;

/// Why a flow has no route.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A rule or `route.final` names an outbound that does not exist.
    #[error("outbound not found: {0}")]
    OutboundNotFound(String),
    /// The chosen outbound does not carry the flow's network (a UDP flow to `ssh`).
    #[error("{} is not supported by outbound: {outbound}", .network.as_str())]
    NetworkNotSupported {
        /// The flow's network.
        network: Network,
        /// The outbound's tag.
        outbound: String,
    },
    /// A `hijack-dns` rule matched in an instance without a DNS module.
    #[error("hijack-dns: no DNS module in this instance")]
    NoDns,
    /// The destination is in a FakeIP range but was never handed out (or was forgotten):
    /// the domain it stood for is unknown, so the flow is not dialed.
    #[error("missing fakeip record for {0}")]
    UnknownFakeIp(IpAddr),
    /// A `resolve` action names a DNS server that does not exist.
    #[error("resolve: DNS server not found: {0}")]
    DnsServerNotFound(String),
    /// A `resolve` action's lookup failed (the lookup's own text, which names the domain).
    #[error("{0}")]
    Lookup(std::io::Error),
}
