//! The dispatcher: what happens to a flow between the inbound and the outbound. It walks the
//! router's rules (applying `route-options`, stopping at the first final action), opens the
//! chosen outbound, answers the client through the inbound's [`Responder`], and relays.

use crate::adapter::{
    BoxFuture, BoxPacketConn, BoxStream, ConnectFailure, FlowHandler, Outbound, Responder,
};
use crate::dns::client::Fake;
use crate::dns::Dns;
use crate::flow::{Destination, FlowContext};
use crate::relay::{relay_any, Counters};
use crate::resolve::{Resolver, SystemResolver};
use crate::router::Router;
use crate::sniff::{self, Sniffed};
use crate::stream::Prefixed;
use crate::tracker::Tracker;
use sb_config::model::route_rule::{RejectMethod, RouteAction, RouteOptions};
use sb_config::types::DomainStrategy;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, error, info, Instrument};

/// How long a TCP flow may stay silent in both directions before it is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Go switches a `reject` rule to `drop` after this many rejections in [`REJECT_WINDOW`]
/// (unless `no_drop`), so a client retrying in a loop stops getting fast answers.
const REJECT_BURST: usize = 50;
const REJECT_WINDOW: Duration = Duration::from_secs(30);

/// Routes and carries flows. One per running instance.
pub struct Dispatcher {
    router: Router,
    outbounds: HashMap<String, Arc<dyn Outbound>>,
    default_outbound: Arc<dyn Outbound>,
    rejects: Mutex<HashMap<usize, VecDeque<Instant>>>,
    udp_timeout: Duration,
    tracker: Arc<Tracker>,
    resolver: Arc<dyn Resolver>,
    /// The DNS module: answers `hijack-dns` flows, maps FakeIP addresses back to domains,
    /// and does the `resolve` action's lookups.
    dns: Option<Arc<Dns>>,
}

/// What the rules decided for a flow.
pub enum Decision {
    /// Carry it through this outbound.
    Route(Arc<dyn Outbound>),
    /// Refuse it; `drop` means without an answer.
    Reject {
        /// Close without answering the client.
        drop: bool,
    },
    /// It cannot be routed (the reason is logged and answered as a general failure).
    Fail(String),
    /// A `hijack-dns` action: the DNS module answers the flow's queries.
    HijackDns,
    /// A `sniff` action: peek at the client's first bytes, then decide again from rule `next`.
    Sniff {
        /// The rule to continue from.
        next: usize,
        /// Sniffers to run (all when empty).
        sniffers: Vec<&'static str>,
        /// How long to wait for the client's first bytes.
        timeout: Duration,
    },
    /// A `resolve` action: look up the destination domain, then decide again from `next`.
    Resolve {
        /// The rule to continue from.
        next: usize,
        /// Address family preference.
        strategy: DomainStrategy,
        /// The DNS server to ask (`server`); through the DNS rules when empty.
        server: String,
    },
}

/// Go's default wait for the first bytes of a sniffed flow.
const SNIFF_TIMEOUT: Duration = Duration::from_millis(300);

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
            rejects: Mutex::new(HashMap::new()),
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

    /// Maps a FakeIP destination back to its domain, and with `reverse_mapping` gives an IP
    /// destination the domain it was answered for (for domain rules; the IP is still
    /// dialed). `Err` when the address is fake but unknown: such a flow is never dialed.
    fn unfake(&self, flow: &mut FlowContext) -> Result<(), String> {
        let (Some(dns), Some(ip)) = (&self.dns, flow.destination.ip()) else {
            return Ok(());
        };
        match dns.fake_domain(ip) {
            Fake::Domain(d) => {
                debug!(target: "dns", "fakeip {ip} is {d}");
                flow.destination = Destination::from_host(&d, flow.destination.port);
                Ok(())
            }
            Fake::Unknown => Err(format!("missing fakeip record for {ip}")),
            Fake::No => {
                if flow.sniffed_domain.is_none() {
                    flow.sniffed_domain = dns.reverse_domain(ip);
                }
                Ok(())
            }
        }
    }

    /// Carries out a `resolve` action: the destination's addresses go into the flow, for
    /// the rules after it (`ip_cidr`, `ip_is_private`...). A failed lookup fails the flow.
    pub async fn resolve(
        &self,
        flow: &mut FlowContext,
        strategy: DomainStrategy,
        server: &str,
    ) -> Result<(), String> {
        let Some(domain) = flow.destination.domain().map(str::to_string) else {
            return Ok(());
        };
        // Without `dns.servers` the lookup is the system's (getaddrinfo: /etc/hosts, NSS),
        // as for dialers.
        let found = match self.dns.as_ref().filter(|d| d.configured()) {
            Some(dns) => {
                let server = if server.is_empty() {
                    None
                } else {
                    Some(
                        dns.server_index(server)
                            .ok_or_else(|| format!("resolve: DNS server not found: {server}"))?,
                    )
                };
                dns.lookup_for(flow, &domain, strategy, server)
                    .await
                    .map_err(std::io::Error::from)
            }
            None => self.resolver.lookup(&domain, strategy).await,
        };
        match found {
            Ok(ips) => {
                debug!(target: "router", "resolved {domain}: {ips:?}");
                flow.resolved = ips;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
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

    /// The matched rule as Go's Clash API shows it (`... => route(x)`), or `final`.
    fn rule_text(&self, flow: &FlowContext) -> String {
        flow.matched_rule
            .and_then(|i| self.router.rules().get(i))
            .map_or_else(
                || "final".to_string(),
                |r| format!("{} => {}", r.description, action_text(&r.action)),
            )
    }

    /// The outbound (or endpoint) with this tag, for the Clash API and tests.
    pub fn outbound(&self, tag: &str) -> Option<Arc<dyn Outbound>> {
        self.outbounds.get(tag).cloned()
    }

    /// Whether a reject of rule `index` should become a drop (Go's 50-in-30s rule).
    fn reject_is_drop(&self, index: usize, method: RejectMethod, no_drop: bool) -> bool {
        if method == RejectMethod::Drop {
            return true;
        }
        if no_drop {
            return false;
        }
        let Ok(mut map) = self.rejects.lock() else {
            return false;
        };
        let now = Instant::now();
        let q = map.entry(index).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > REJECT_WINDOW)
        {
            q.pop_front();
        }
        q.push_back(now);
        q.len() > REJECT_BURST
    }

    /// Walks the rules for `flow`: applies `route-options`, stops at the first final action,
    /// and falls back to `route.final` or the default outbound.
    pub fn decide(&self, flow: &mut FlowContext) -> Decision {
        self.decide_from(flow, 0)
    }

    /// [`Dispatcher::decide`], starting at rule `from` (after a sniff).
    pub fn decide_from(&self, flow: &mut FlowContext, from: usize) -> Decision {
        let mut from = from;
        while let Some(rule) = self.router.first_match(flow, from) {
            debug!(target: "router", "match[{}] {} => {}", rule.index, rule.description, action_text(&rule.action));
            match &rule.action {
                RouteAction::Route(target, opts) | RouteAction::Bypass(target, opts) => {
                    apply_options(flow, opts);
                    flow.matched_rule = Some(rule.index);
                    return match self.outbound(&target.outbound) {
                        Some(o) => route_to(o, flow),
                        None => Decision::Fail(format!("outbound not found: {}", target.outbound)),
                    };
                }
                RouteAction::RouteOptions(opts) => {
                    apply_options(flow, opts);
                    from = rule.index + 1;
                }
                RouteAction::Reject(r) => {
                    return Decision::Reject {
                        drop: self.reject_is_drop(rule.index, r.method, r.no_drop),
                    }
                }
                RouteAction::HijackDns => {
                    flow.matched_rule = Some(rule.index);
                    return if self.dns.is_some() {
                        Decision::HijackDns
                    } else {
                        Decision::Fail("hijack-dns: no DNS module in this instance".into())
                    };
                }
                RouteAction::Sniff(sn) => {
                    if flow.protocol.is_some() {
                        from = rule.index + 1;
                        continue;
                    }
                    return Decision::Sniff {
                        next: rule.index + 1,
                        sniffers: sn.sniffer.iter().map(protocol_name).collect(),
                        timeout: if sn.timeout.is_zero() {
                            SNIFF_TIMEOUT
                        } else {
                            sn.timeout.to_std()
                        },
                    };
                }
                RouteAction::Resolve(r) => {
                    if flow.destination.domain().is_none() {
                        // Nothing to resolve: Go goes on with the next rule.
                        from = rule.index + 1;
                        continue;
                    }
                    return Decision::Resolve {
                        next: rule.index + 1,
                        strategy: r.strategy,
                        server: r.server.clone(),
                    };
                }
            }
        }
        flow.matched_rule = None;
        match &self.router.final_outbound {
            Some(tag) => match self.outbound(tag) {
                Some(o) => route_to(o, flow),
                None => Decision::Fail(format!("outbound not found: {tag}")),
            },
            None => route_to(self.default_outbound.clone(), flow),
        }
    }

    async fn run_tcp(
        self: Arc<Self>,
        mut flow: FlowContext,
        mut stream: BoxStream,
        mut responder: Box<dyn Responder>,
    ) {
        info!(target: "inbound", tag = %inbound_label(&flow), "inbound connection to {}", flow.destination);
        if self.router.needs_process() {
            crate::procinfo::fill(&mut flow).await;
        }
        if let Err(why) = self.unfake(&mut flow) {
            error!(target: "router", "{why}");
            responder
                .failed(&mut stream, &ConnectFailure::NoRoute(why))
                .await;
            return;
        }
        // Sniffing needs the client's first bytes, which SOCKS and HTTP CONNECT clients send
        // only after the proxy said yes; so a sniffed flow is answered before it is dialed.
        let mut replied = false;
        let mut from = 0;
        let outbound = loop {
            match self.decide_from(&mut flow, from) {
                Decision::Route(o) => break o,
                Decision::Sniff {
                    next,
                    sniffers,
                    timeout,
                } => {
                    if !replied {
                        if responder.connected(&mut stream, None).await.is_err() {
                            return;
                        }
                        replied = true;
                    }
                    let (bytes, found) = peek(&mut stream, timeout, &sniffers).await;
                    record_sniff(&mut flow, found);
                    stream = Prefixed::wrap_boxed(bytes, stream);
                    from = next;
                }
                Decision::Resolve {
                    next,
                    strategy,
                    server,
                } => {
                    if let Err(why) = self.resolve(&mut flow, strategy, &server).await {
                        error!(target: "router", "{why}");
                        if !replied {
                            responder
                                .failed(&mut stream, &ConnectFailure::NoRoute(why))
                                .await;
                        }
                        return;
                    }
                    from = next;
                }
                Decision::Reject { drop } => {
                    info!(target: "router", "rejected connection to {}", flow.destination);
                    if !drop && !replied {
                        responder
                            .failed(&mut stream, &ConnectFailure::Rejected)
                            .await;
                    }
                    return;
                }
                Decision::Fail(why) => {
                    error!(target: "router", "{why}");
                    if !replied {
                        responder
                            .failed(&mut stream, &ConnectFailure::NoRoute(why))
                            .await;
                    }
                    return;
                }
                Decision::HijackDns => {
                    if !replied && responder.connected(&mut stream, None).await.is_err() {
                        return;
                    }
                    if let Some(dns) = self.dns.clone() {
                        let idle = flow.udp_timeout.unwrap_or(self.udp_timeout);
                        crate::dns::serve::serve_tcp(dns, flow, stream, idle).await;
                    }
                    return;
                }
            }
        };
        let guard = self
            .tracker
            .track(&flow, self.chain(&outbound), self.rule_text(&flow));
        let entry = guard.entry().clone();
        tokio::select! {
            biased;
            () = entry.closed() => debug!(target: "connection", "connection closed on request"),
            () = carry_tcp(flow, stream, responder, replied, outbound, entry.counters.clone()) => {}
        }
    }
}

/// Dials the chosen outbound, answers the client, and relays until the flow ends.
async fn carry_tcp(
    flow: FlowContext,
    mut stream: BoxStream,
    mut responder: Box<dyn Responder>,
    replied: bool,
    outbound: Arc<dyn Outbound>,
    counters: Arc<Counters>,
) {
    let label = format!("outbound/{}[{}]", outbound.kind(), outbound.tag());
    info!(target: "outbound", tag = %label, "outbound connection to {}", flow.destination);
    let dest = flow.destination.clone();
    let upstream = match outbound.connect_tcp(&flow, &dest).await {
        Ok(u) => u,
        Err(e) => {
            error!(target: "connection", "open connection to {dest} using {label}: {e}");
            if !replied {
                responder
                    .failed(&mut stream, &ConnectFailure::Dial(e))
                    .await;
            }
            return;
        }
    };
    if !replied {
        if let Err(e) = responder.connected(&mut stream, None).await {
            debug!(target: "connection", "reply to client: {e}");
            return;
        }
    }
    match relay_any(stream, upstream, counters, TCP_IDLE_TIMEOUT).await {
        Ok((up, down)) => debug!(target: "connection", up, down, "connection closed"),
        Err(e) => debug!(target: "connection", "connection closed: {e}"),
    }
}

/// Routes to `o` if it carries the flow's network; Go's error otherwise.
fn route_to(o: Arc<dyn Outbound>, flow: &FlowContext) -> Decision {
    if o.networks().contains(&flow.network) {
        Decision::Route(o)
    } else {
        Decision::Fail(format!(
            "{} is not supported by outbound: {}",
            flow.network.as_str(),
            o.tag()
        ))
    }
}

/// Puts what a sniff found (protocol, and the domain it names) into the flow.
fn record_sniff(flow: &mut FlowContext, found: Option<(&'static str, Option<String>)>) {
    if let Some((protocol, domain)) = found {
        debug!(target: "router", "sniffed {} protocol: {protocol}{}", flow.network.as_str(), domain.as_deref().map(|d| format!(", domain: {d}")).unwrap_or_default());
        flow.protocol = Some(protocol);
        flow.sniffed_domain = domain;
    }
}

/// Most datagrams looked at for a UDP sniff (a QUIC ClientHello may span a few).
const SNIFF_PACKETS: usize = 8;

/// Reads the client's first datagrams until a sniffer decides, `timeout` passes, or
/// [`SNIFF_PACKETS`]; returns them (to be replayed) and what was found.
async fn peek_packets(
    client: &BoxPacketConn,
    timeout: Duration,
    sniffers: &[&'static str],
) -> (
    Vec<(Vec<u8>, Destination)>,
    Option<(&'static str, Option<String>)>,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen: Vec<(Vec<u8>, Destination)> = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while seen.len() < SNIFF_PACKETS {
        match tokio::time::timeout_at(deadline, client.recv_from(&mut buf)).await {
            Ok(Ok((n, dest))) => seen.push((buf[..n].to_vec(), dest)),
            _ => break,
        }
        let packets: Vec<&[u8]> = seen.iter().map(|(p, _)| p.as_slice()).collect();
        match sniff::sniff_packets(&packets, sniffers) {
            Sniffed::NeedMore => continue,
            Sniffed::No => break,
            Sniffed::Yes(p, d) => return (seen, Some((p, d))),
        }
    }
    (seen, None)
}

/// Reads the client's first bytes until a sniffer decides, `timeout` passes, or 64 KiB.
async fn peek(
    stream: &mut BoxStream,
    timeout: Duration,
    sniffers: &[&'static str],
) -> (Vec<u8>, Option<(&'static str, Option<String>)>) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    while buf.len() < 64 * 1024 {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
        match sniff::sniff(&buf, sniffers) {
            Sniffed::NeedMore => continue,
            Sniffed::No => break,
            Sniffed::Yes(p, d) => return (buf, Some((p, d))),
        }
    }
    (buf, None)
}

fn protocol_name(p: &sb_config::model::rule_match::Protocol) -> &'static str {
    use sb_config::model::rule_match::Protocol as P;
    match p {
        P::Tls => "tls",
        P::Http => "http",
        P::Quic => "quic",
        P::Dns => "dns",
        P::Stun => "stun",
        P::Bittorrent => "bittorrent",
        P::Dtls => "dtls",
        P::Ssh => "ssh",
        P::Rdp => "rdp",
        P::Ntp => "ntp",
    }
}

fn inbound_label(flow: &FlowContext) -> String {
    format!("inbound/{}[{}]", flow.inbound_type, flow.inbound_tag)
}

fn apply_options(flow: &mut FlowContext, opts: &RouteOptions) {
    if !opts.override_address.is_empty() {
        flow.destination = Destination::from_host(&opts.override_address, flow.destination.port);
    }
    if opts.override_port != 0 {
        flow.destination.port = opts.override_port;
    }
    if !opts.udp_timeout.is_zero() {
        flow.udp_timeout = Some(opts.udp_timeout.to_std());
    }
}

fn action_text(a: &RouteAction) -> String {
    match a {
        RouteAction::Route(t, _) => format!("route({})", t.outbound),
        RouteAction::Bypass(t, _) => format!("bypass({})", t.outbound),
        other => other.name().to_string(),
    }
}

impl Dispatcher {
    async fn run_udp(self: Arc<Self>, mut flow: FlowContext, mut client: BoxPacketConn) {
        info!(target: "inbound", tag = %inbound_label(&flow), "inbound packet connection to {}", flow.destination);
        if self.router.needs_process() {
            crate::procinfo::fill(&mut flow).await;
        }
        if let Err(why) = self.unfake(&mut flow) {
            error!(target: "router", "{why}");
            return;
        }
        let mut from = 0;
        let outbound = loop {
            match self.decide_from(&mut flow, from) {
                Decision::Route(o) => break o,
                Decision::Sniff {
                    next,
                    sniffers,
                    timeout,
                } => {
                    let (replay, found) = peek_packets(&client, timeout, &sniffers).await;
                    record_sniff(&mut flow, found);
                    client = Arc::new(crate::udp::Replay::new(replay, client));
                    from = next;
                }
                Decision::Resolve {
                    next,
                    strategy,
                    server,
                } => {
                    if let Err(why) = self.resolve(&mut flow, strategy, &server).await {
                        error!(target: "router", "{why}");
                        return;
                    }
                    from = next;
                }
                Decision::Reject { .. } => {
                    info!(target: "router", "rejected packet connection to {}", flow.destination);
                    return;
                }
                Decision::Fail(why) => {
                    error!(target: "router", "{why}");
                    return;
                }
                Decision::HijackDns => {
                    if let Some(dns) = self.dns.clone() {
                        let idle = flow.udp_timeout.unwrap_or(self.udp_timeout);
                        crate::dns::serve::serve_udp(dns, flow, client, idle).await;
                    }
                    return;
                }
            }
        };
        let guard = self
            .tracker
            .track(&flow, self.chain(&outbound), self.rule_text(&flow));
        let entry = guard.entry().clone();
        let carry = async {
            let label = format!("outbound/{}[{}]", outbound.kind(), outbound.tag());
            info!(target: "outbound", tag = %label, "outbound packet connection to {}", flow.destination);
            let dest = flow.destination.clone();
            let upstream = match outbound.connect_udp(&flow, &dest).await {
                Ok(u) => u,
                Err(e) => {
                    error!(target: "connection", "open packet connection to {dest} using {label}: {e}");
                    return;
                }
            };
            match crate::udp::relay_udp(
                client,
                upstream,
                entry.counters.clone(),
                flow.udp_timeout.unwrap_or(self.udp_timeout),
            )
            .await
            {
                Ok((up, down)) => {
                    debug!(target: "connection", up, down, "packet connection closed")
                }
                Err(e) => debug!(target: "connection", "packet connection closed: {e}"),
            }
        };
        tokio::select! {
            biased;
            () = entry.closed() => debug!(target: "connection", "packet connection closed on request"),
            () = carry => {}
        }
    }
}

impl FlowHandler for Dispatcher {
    fn handle_udp(
        self: Arc<Self>,
        flow: FlowContext,
        client: BoxPacketConn,
    ) -> BoxFuture<'static, ()> {
        let span = tracing::info_span!("flow", id = flow.id);
        Box::pin(self.run_udp(flow, client).instrument(span))
    }

    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        stream: BoxStream,
        responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        let span = tracing::info_span!("flow", id = flow.id);
        Box::pin(self.run_tcp(flow, stream, responder).instrument(span))
    }
}
