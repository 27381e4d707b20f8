//! The dispatcher: what happens to a flow between the inbound and the outbound. Inbounds and
//! endpoints hand it flows through [`FlowHandler`]; it routes each one and carries it to the
//! chosen outbound.
//!
//! - this file: the [`Dispatcher`] and the one loop every flow, TCP or UDP, goes through:
//!   the client's process, the FakeIP/reverse mapping, the rules, the non-final actions
//!   (sniff, resolve) carried out and the rules asked again, then refuse, hijack, or track
//!   and carry;
//! - `decide.rs`: the rules walked into a [`Decision`] (route-options, `route.final`), the
//!   FakeIP/reverse mapping and the `resolve` lookup; `reject.rs`: Go's 50-in-30s limiter
//!   that turns a `reject` into a drop; why a flow has no route is [`RouteError`], part of the
//!   adapter contract;
//! - `tcp.rs`, `udp.rs`: the client side of each network: answering the client through the
//!   inbound's [`Responder`], peeking for a sniff, dialing the outbound (`hangup.rs`: a
//!   client that hangs up meanwhile cancels the dial) and relaying; `icmp.rs`: a ping
//!   routed to an outbound that carries ICMP.

mod decide;
mod hangup;
mod icmp;
mod reject;
mod tcp;
mod udp;

pub use crate::adapter::RouteError;
pub use decide::{action_text, Decision};

use crate::adapter::{
    BoxFuture, BoxPacketConn, BoxStream, ConnectFailure, FlowHandler, Outbound, PingVerdict,
    Responder,
};
use crate::dns::Dns;
use crate::flow::FlowContext;
use crate::relay::Counters;
use crate::resolve::{Resolver, SystemResolver};
use crate::router::Router;
use crate::sniff::Found;
use crate::tracker::Tracker;
use reject::RejectLimiter;
use sb_config::types::DomainStrategy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, error, info, Instrument};

pub use tcp::TCP_IDLE_TIMEOUT;

/// Routes and carries flows. One per running instance.
pub struct Dispatcher {
    router: Router,
    outbounds: HashMap<String, Arc<dyn Outbound>>,
    default_outbound: Arc<dyn Outbound>,
    rejects: RejectLimiter,
    udp_timeout: Duration,
    tracker: Arc<Tracker>,
    resolver: Arc<dyn Resolver>,
    /// The DNS module: answers `hijack-dns` flows, maps FakeIP addresses back to domains,
    /// and does the `resolve` action's lookups.
    dns: Option<Arc<Dns>>,
}

impl Dispatcher {
    /// A dispatcher over built outbounds. `default_outbound` is `route.final`, else the first
    /// outbound (Go's rule).
    pub fn new(
        router: Router,
        outbounds: HashMap<String, Arc<dyn Outbound>>,
        default_outbound: Arc<dyn Outbound>,
    ) -> Dispatcher {
        Dispatcher {
            router,
            outbounds,
            default_outbound,
            rejects: RejectLimiter::default(),
            udp_timeout: crate::udp::UDP_TIMEOUT,
            tracker: Arc::default(),
            resolver: Arc::new(SystemResolver),
            dns: None,
        }
    }

    /// Attaches the DNS module (before the dispatcher is shared).
    pub fn with_dns(mut self, dns: Arc<Dns>) -> Dispatcher {
        self.resolver = dns.resolver(None, DomainStrategy::AsIs);
        self.dns = Some(dns);
        self
    }

    /// The DNS module, when the instance has one.
    pub fn dns(&self) -> Option<&Arc<Dns>> {
        self.dns.as_ref()
    }

    /// The outbounds by tag (the lifecycle starts and closes them).
    pub fn outbounds(&self) -> impl Iterator<Item = &Arc<dyn Outbound>> {
        self.outbounds.values()
    }

    /// The router, for the Clash API.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The live flows, for the Clash API and selectors that interrupt flows on a switch.
    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    /// The outbound (or endpoint) with this tag, for the Clash API and tests.
    pub fn outbound(&self, tag: &str) -> Option<Arc<dyn Outbound>> {
        self.outbounds.get(tag).cloned()
    }

    /// The outbound tags a flow routed to `chosen` passes, leaf first (`["direct", "select"]`),
    /// following groups to the member they use now.
    fn chain(&self, chosen: &Arc<dyn Outbound>) -> Vec<String> {
        let mut chain = vec![chosen.tag().to_string()];
        let mut next = chosen.group_now();
        // Bounded: a group cycle is refused at start, but the walk must end regardless.
        while let Some(tag) = next.take() {
            if chain.len() >= 16 || chain.contains(&tag) {
                break;
            }
            next = self.outbound(&tag).and_then(|o| o.group_now());
            chain.push(tag);
        }
        chain.reverse();
        chain
    }
}

// === The one loop ===

/// The client side of a flow, as the loop sees it: what differs between a TCP flow (a
/// stream, and the inbound's responder to answer it) and a UDP flow (a packet connection,
/// which has no answer). Each step takes the client by value: after a sniff it comes back
/// wrapped, so the peeked bytes are replayed to the upstream.
trait Client: Send + Sized {
    /// How logs name a flow of this network (`connection`, `packet connection`).
    const NOUN: &'static str;

    /// Peeks at the client's first bytes or datagrams for a `sniff` action (a TCP client is
    /// answered first: SOCKS and HTTP CONNECT clients send nothing before). `None` when the
    /// client is gone.
    async fn sniff(
        self,
        timeout: Duration,
        sniffers: &[&'static str],
    ) -> Option<(Self, Option<Found>)>;

    /// Tells the client, if its protocol can and it was not answered yet, that the flow
    /// will not be carried.
    async fn refuse(self, why: ConnectFailure);

    /// Hands the flow to the DNS module (`hijack-dns`), which answers until `idle`.
    async fn hijack(self, dns: Arc<Dns>, flow: FlowContext, idle: Duration);

    /// Opens `outbound`, answers the client, and relays until the flow ends (a UDP flow
    /// after `udp_idle` without packets).
    async fn carry(
        self,
        flow: FlowContext,
        outbound: Arc<dyn Outbound>,
        counters: Arc<Counters>,
        udp_idle: Duration,
    );
}

/// Where the rules sent a flow.
enum Routed<C> {
    /// Carry it through this outbound.
    Carry(C, Arc<dyn Outbound>),
    /// The DNS module answers it.
    Hijack(C, Arc<Dns>),
    /// It was refused, failed, or its client left; nothing more to do.
    Done,
}

impl Dispatcher {
    async fn run<C: Client>(self: Arc<Self>, mut flow: FlowContext, client: C) {
        info!(target: "inbound", tag = %inbound_label(&flow), "inbound {} to {}", C::NOUN, flow.destination);
        if self.router.needs_process() {
            crate::procinfo::fill(&mut flow).await;
        }
        let routed = self.route(&mut flow, client).await;
        let udp_idle = flow.udp_timeout.unwrap_or(self.udp_timeout);
        let (client, outbound) = match routed {
            Routed::Carry(client, outbound) => (client, outbound),
            Routed::Hijack(client, dns) => return client.hijack(dns, flow, udp_idle).await,
            Routed::Done => return,
        };
        let guard = self
            .tracker
            .track(&flow, self.chain(&outbound), self.rule_text(&flow));
        let entry = guard.entry().clone();
        tokio::select! {
            biased;
            () = entry.closed() => debug!(target: "connection", "{} closed on request", C::NOUN),
            () = client.carry(flow, outbound, entry.counters.clone(), udp_idle) => {}
        }
    }

    /// Maps the destination back from FakeIP, then asks the rules, carrying out sniff and
    /// resolve actions and asking again from the rule after them, until a final decision.
    async fn route<C: Client>(&self, flow: &mut FlowContext, mut client: C) -> Routed<C> {
        if let Err(why) = self.unfake(flow) {
            error!(target: "router", "{why}");
            client.refuse(ConnectFailure::NoRoute(why)).await;
            return Routed::Done;
        }
        let mut from = 0;
        loop {
            match self.decide_from(flow, from) {
                Decision::Route(o) => return Routed::Carry(client, o),
                Decision::Sniff {
                    next,
                    sniffers,
                    timeout,
                } => {
                    let Some((sniffed, found)) = client.sniff(timeout, &sniffers).await else {
                        return Routed::Done;
                    };
                    client = sniffed;
                    if let Some(found) = found {
                        record_sniff(flow, found);
                    }
                    from = next;
                }
                Decision::Resolve {
                    next,
                    strategy,
                    server,
                } => {
                    if let Err(why) = self.resolve(flow, strategy, &server).await {
                        error!(target: "router", "{why}");
                        client.refuse(ConnectFailure::NoRoute(why)).await;
                        return Routed::Done;
                    }
                    from = next;
                }
                Decision::Reject { drop } => {
                    info!(target: "router", "rejected {} to {}", C::NOUN, flow.destination);
                    if !drop {
                        client.refuse(ConnectFailure::Rejected).await;
                    }
                    return Routed::Done;
                }
                Decision::Fail(why) => {
                    error!(target: "router", "{why}");
                    client.refuse(ConnectFailure::NoRoute(why)).await;
                    return Routed::Done;
                }
                // `decide` answers `HijackDns` only when there is a DNS module.
                Decision::HijackDns => {
                    return match self.dns.clone() {
                        Some(dns) => Routed::Hijack(client, dns),
                        None => Routed::Done,
                    }
                }
            }
        }
    }
}

/// Puts what a sniff found (protocol, and the domain it names) into the flow.
fn record_sniff(flow: &mut FlowContext, found: Found) {
    debug!(target: "router", "sniffed {} protocol: {}{}", flow.network.as_str(), found.protocol, found.domain.as_deref().map(|d| format!(", domain: {d}")).unwrap_or_default());
    flow.protocol = Some(found.protocol);
    flow.sniffed_domain = found.domain;
}

fn inbound_label(flow: &FlowContext) -> String {
    format!("inbound/{}[{}]", flow.inbound_type, flow.inbound_tag)
}

fn outbound_label(outbound: &dyn Outbound) -> String {
    format!("outbound/{}[{}]", outbound.kind(), outbound.tag())
}

impl FlowHandler for Dispatcher {
    fn handle_udp(
        self: Arc<Self>,
        flow: FlowContext,
        client: BoxPacketConn,
    ) -> BoxFuture<'static, ()> {
        let span = tracing::info_span!("flow", id = flow.id);
        Box::pin(self.run(flow, udp::UdpClient(client)).instrument(span))
    }

    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        stream: BoxStream,
        responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        let span = tracing::info_span!("flow", id = flow.id);
        let client = tcp::TcpClient {
            stream,
            responder,
            replied: false,
        };
        Box::pin(self.run(flow, client).instrument(span))
    }

    fn handle_ping(self: Arc<Self>, flow: FlowContext) -> BoxFuture<'static, PingVerdict> {
        let span = tracing::info_span!("flow", id = flow.id);
        Box::pin(async move { self.ping(flow).await }.instrument(span))
    }
}
