//! [`Dns`]: the DNS module's front door. [`Dns::exchange`] answers a query as the rules say
//! (a server through the cache, `reject`, `predefined`); [`Dns::lookup_for`] turns a domain
//! into addresses for the `resolve` action and for dialers; [`Dns::fake_domain`] maps FakeIP
//! addresses back; [`Dns::reverse_domain`] gives the domain an address was last answered
//! for (`reverse_mapping`).

use super::cache::{Cache, Join, Key};
use super::fakeip::FakeIp;
use super::message::{
    addresses, bare_reply, domain_of, has_edns_options, local_reply, question, rcode_text, set_ttl,
};
use super::rules::DnsRuleC;
use super::transport::BoxTransport;
use super::DnsError;
use crate::adapter::BoxFuture;
use crate::flow::{Destination, FlowContext, Network};
use crate::resolve::{apply_strategy, Resolver};
use crate::router::rule::Probe;
use crate::router::ClashMode;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Record, RecordType};
use ipnet::IpNet;
use sb_config::model::dns::DnsAction;
use sb_config::model::route_rule::RejectMethod;
use sb_config::types::DomainStrategy;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use tracing::{debug, error};

/// A `predefined` action's answer, parsed at start.
#[derive(Clone, Debug)]
pub struct Predefined {
    /// Response code.
    pub rcode: ResponseCode,
    /// Answer section.
    pub answer: Vec<Record>,
    /// Authority section.
    pub ns: Vec<Record>,
    /// Additional section.
    pub extra: Vec<Record>,
}

/// What the rules decided for one query.
enum Plan {
    Ask(Ask),
    Answer(Message),
    Drop,
}

/// A query to a server, with the options rules gathered on the way.
#[derive(Clone, Debug, Default)]
struct Ask {
    server: usize,
    disable_cache: bool,
    rewrite_ttl: Option<u32>,
    client_subnet: Option<IpNet>,
    strategy: DomainStrategy,
}

/// Everything [`Dns`] is built from (see [`mod@super::build`]).
pub struct Parts {
    /// Servers in config order.
    pub transports: Vec<BoxTransport>,
    /// `dns.final`'s index.
    pub default: usize,
    /// Compiled rules.
    pub rules: Vec<DnsRuleC>,
    /// `predefined` answers by rule index.
    pub predefined: HashMap<usize, Predefined>,
    /// `dns.strategy`.
    pub strategy: DomainStrategy,
    /// The cache, unless `disable_cache`.
    pub cache: Option<Cache>,
    /// `dns.client_subnet`.
    pub client_subnet: Option<IpNet>,
    /// `reverse_mapping`: how many addresses to remember (0 = off).
    pub reverse_capacity: usize,
    /// Whether `dns.servers` was written (else the servers are Go's automatic `local`).
    pub configured: bool,
    /// The Clash mode rules match on.
    pub clash_mode: Arc<ClashMode>,
}

/// The DNS module.
pub struct Dns {
    p: Parts,
    by_tag: HashMap<String, usize>,
    fakeips: Vec<Arc<FakeIp>>,
    reverse: Mutex<(HashMap<IpAddr, String>, VecDeque<IpAddr>)>,
    this: Weak<Dns>,
}

/// What a destination address is to FakeIP.
#[derive(Debug, PartialEq, Eq)]
pub enum Fake {
    /// Not a fake address.
    No,
    /// A fake address standing for this domain.
    Domain(String),
    /// In a FakeIP range, but nobody was given it: reject, never dial.
    Unknown,
}

impl Dns {
    /// The module over its built parts.
    pub fn new(p: Parts) -> Arc<Dns> {
        let by_tag = p
            .transports
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tag().to_string(), i))
            .collect();
        let fakeips = p
            .transports
            .iter()
            .filter_map(|t| t.fakeip().cloned())
            .collect();
        Arc::new_cyclic(|this| Dns {
            p,
            by_tag,
            fakeips,
            reverse: Mutex::new((HashMap::new(), VecDeque::new())),
            this: this.clone(),
        })
    }

    /// Whether `dns.servers` was written; without it lookups outside `hijack-dns` use the
    /// system resolver.
    pub fn configured(&self) -> bool {
        self.p.configured
    }

    /// Empties the answer cache (Clash API: `/cache/dns/flush`, a mode switch).
    pub fn clear_cache(&self) {
        if let Some(c) = &self.p.cache {
            c.clear();
        }
    }

    /// The FakeIP pools (the cache file saves and restores them).
    pub fn fakeip_pools(&self) -> &[Arc<FakeIp>] {
        &self.fakeips
    }

    /// A server's index by tag.
    pub fn server_index(&self, tag: &str) -> Option<usize> {
        self.by_tag.get(tag).copied()
    }

    /// A resolver for dialers: through the rules (`server` = `None`) or straight to one server
    /// (a `domain_resolver`). Holds the module weakly, so a server's own dialer may use it.
    pub fn resolver(&self, server: Option<usize>, strategy: DomainStrategy) -> Arc<dyn Resolver> {
        Arc::new(DnsResolver {
            dns: self.this.clone(),
            server,
            strategy,
        })
    }

    fn plan(&self, flow: &FlowContext, query: &Message, q: &Query) -> Plan {
        let mut ask = Ask {
            server: self.p.default,
            client_subnet: self.p.client_subnet,
            strategy: self.p.strategy,
            ..Ask::default()
        };
        let domain = domain_of(q);
        let mut probe_flow = flow.clone();
        probe_flow.destination = Destination::from_host(&domain, flow.destination.port);
        probe_flow.sniffed_domain = None;
        let mode = self.p.clash_mode.get();
        let probe = Probe::new(&probe_flow, &mode);
        for rule in &self.p.rules {
            if !rule.matcher.matches(&probe, q.query_type()) {
                continue;
            }
            debug!(target: "dns", "match[{}]", rule.index);
            match &rule.action {
                DnsAction::Route(r, o) => {
                    let Some(server) = self.by_tag.get(&r.server) else {
                        // Go logs the unknown tag and goes on with the next rule.
                        error!(target: "dns", "transport not found: {}", r.server);
                        continue;
                    };
                    ask.server = *server;
                    if r.strategy != DomainStrategy::AsIs {
                        ask.strategy = r.strategy;
                    }
                    apply(&mut ask, o);
                    return Plan::Ask(ask);
                }
                DnsAction::RouteOptions(o) => apply(&mut ask, o),
                DnsAction::Reject(r) => {
                    return match r.method {
                        RejectMethod::Drop => Plan::Drop,
                        _ => Plan::Answer(bare_reply(query, ResponseCode::Refused)),
                    }
                }
                DnsAction::Predefined(_) => {
                    let Some(p) = self.p.predefined.get(&rule.index) else {
                        continue;
                    };
                    let mut m = local_reply(query, p.rcode);
                    m.answers = p.answer.clone();
                    m.authorities = p.ns.clone();
                    m.additionals = p.extra.clone();
                    return Plan::Answer(m);
                }
                // Refused when the rules were compiled.
                DnsAction::Evaluate(..) | DnsAction::Respond => {}
            }
        }
        Plan::Ask(ask)
    }

    /// Answers `query` for `flow` (the hijacked flow, or a lookup's own context).
    pub async fn exchange(&self, flow: &FlowContext, query: &Message) -> Result<Message, DnsError> {
        let q = question(query)?.clone();
        match self.plan(flow, query, &q) {
            Plan::Answer(m) => Ok(m),
            Plan::Drop => Err(DnsError::Dropped),
            Plan::Ask(ask) => self.ask(&ask, query, &q).await,
        }
    }

    async fn ask(&self, ask: &Ask, query: &Message, q: &Query) -> Result<Message, DnsError> {
        // The family the strategy leaves out gets an empty answer, as Go gives.
        let qtype = q.query_type();
        if (ask.strategy == DomainStrategy::Ipv4Only && qtype == RecordType::AAAA)
            || (ask.strategy == DomainStrategy::Ipv6Only && qtype == RecordType::A)
        {
            debug!(target: "dns", "strategy rejected {qtype} {}", domain_of(q));
            return Ok(local_reply(query, ResponseCode::NoError));
        }
        let transport = self
            .p
            .transports
            .get(ask.server)
            .ok_or_else(|| DnsError::BadQuery("no DNS server".into()))?;
        let mut sent = query.clone();
        if let Some(net) = ask.client_subnet {
            add_client_subnet(&mut sent, net);
        }
        let cache =
            self.p.cache.as_ref().filter(|_| {
                transport.cacheable() && !ask.disable_cache && !has_edns_options(query)
            });
        let Some(cache) = cache else {
            return self.send(ask, transport, &sent, query).await;
        };
        // The name as asked, case kept: answers carry the question's spelling (Go's cache
        // answers `A.TEST.` to `A.TEST`, not a cached `a.test.`).
        let key = Key {
            server: ask.server,
            name: q.name().to_ascii(),
            qtype: u16::from(qtype),
            qclass: u16::from(q.query_class()),
        };
        if let Some(mut hit) = cache.get(&key) {
            hit.metadata.id = query.metadata.id;
            hit.queries = query.queries.clone();
            debug!(target: "dns", "cached {} {}", qtype, key.name);
            return Ok(hit);
        }
        match cache.join(&key) {
            Join::Wait(rx) => match rx.await {
                Ok(Ok(mut m)) => {
                    m.metadata.id = query.metadata.id;
                    m.queries = query.queries.clone();
                    Ok(m)
                }
                Ok(Err(why)) => Err(DnsError::BadResponse {
                    server: transport.tag().to_string(),
                    message: why,
                }),
                // The leader was cancelled: ask ourselves.
                Err(_) => self.send(ask, transport, &sent, query).await,
            },
            Join::Lead => {
                let guard = Abandon { cache, key: &key };
                let result = self.send(ask, transport, &sent, query).await;
                std::mem::forget(guard);
                match &result {
                    Ok(m) => {
                        cache.put(key.clone(), m);
                        cache.finish(&key, &Ok(m.clone()));
                    }
                    Err(e) => cache.finish(&key, &Err(e.to_string())),
                }
                result
            }
        }
    }

    async fn send(
        &self,
        ask: &Ask,
        transport: &BoxTransport,
        sent: &Message,
        query: &Message,
    ) -> Result<Message, DnsError> {
        let mut answer = transport.exchange(sent).await?;
        answer.metadata.id = query.metadata.id;
        if let Some(ttl) = ask.rewrite_ttl {
            set_ttl(&mut answer, ttl);
        }
        debug!(target: "dns", "exchanged {} via {}: {} answers", rcode_text(answer.metadata.response_code), transport.tag(), answer.answers.len());
        if self.p.reverse_capacity > 0 {
            self.remember(&answer);
        }
        Ok(answer)
    }

    fn remember(&self, answer: &Message) {
        let Ok(q) = question(answer) else { return };
        let domain = domain_of(q);
        let Ok(mut guard) = self.reverse.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        for ip in addresses(answer) {
            if map.insert(ip, domain.clone()).is_none() {
                order.push_back(ip);
            }
        }
        while map.len() > self.p.reverse_capacity {
            let Some(old) = order.pop_front() else { break };
            map.remove(&old);
        }
    }

    /// The domain `ip` was last answered for (`reverse_mapping`).
    pub fn reverse_domain(&self, ip: IpAddr) -> Option<String> {
        if self.p.reverse_capacity == 0 {
            return None;
        }
        self.reverse.lock().ok()?.0.get(&ip).cloned()
    }

    /// What `ip` is to FakeIP.
    pub fn fake_domain(&self, ip: IpAddr) -> Fake {
        match self.fakeips.iter().find(|f| f.contains(ip)) {
            None => Fake::No,
            Some(pool) => pool.domain(ip).map_or(Fake::Unknown, Fake::Domain),
        }
    }

    /// The addresses of `domain` for `flow`: through the rules, or straight to `server`.
    /// `strategy` as-is means the rule's, else `dns.strategy`.
    pub async fn lookup_for(
        &self,
        flow: &FlowContext,
        domain: &str,
        strategy: DomainStrategy,
        server: Option<usize>,
    ) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = domain.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let probe = super::message::new_query(domain, RecordType::A)?;
        let q = question(&probe)?.clone();
        let ask = match server {
            Some(s) => Ask {
                server: s,
                client_subnet: self.p.client_subnet,
                strategy: self.p.strategy,
                ..Ask::default()
            },
            None => match self.plan(flow, &probe, &q) {
                Plan::Ask(a) => a,
                Plan::Drop => return Err(DnsError::Dropped),
                Plan::Answer(m) => {
                    return found(domain, &m, addresses(&m), strategy);
                }
            },
        };
        let strategy = if strategy != DomainStrategy::AsIs {
            strategy
        } else {
            ask.strategy
        };
        let types: &[RecordType] = match strategy {
            DomainStrategy::Ipv4Only => &[RecordType::A],
            DomainStrategy::Ipv6Only => &[RecordType::AAAA],
            _ => &[RecordType::A, RecordType::AAAA],
        };
        let mut queries = Vec::new();
        for t in types {
            let m = super::message::new_query(domain, *t)?;
            let q = question(&m)?.clone();
            queries.push((m, q));
        }
        let ask = Ask { strategy, ..ask };
        let answers = futures_join(
            queries
                .iter()
                .map(|(m, q)| -> BoxFuture<'_, _> { Box::pin(self.ask(&ask, m, q)) }),
        )
        .await;
        let mut ips = Vec::new();
        let mut last = None;
        for a in answers {
            match a {
                Ok(m) => {
                    ips.extend(addresses(&m));
                    last = Some(Ok(m));
                }
                Err(e) => {
                    if last.is_none() {
                        last = Some(Err(e));
                    }
                }
            }
        }
        match last {
            Some(Ok(m)) => found(domain, &m, ips, strategy),
            Some(Err(e)) if ips.is_empty() => Err(e),
            _ => Ok(apply_strategy(ips, strategy)),
        }
    }
}

/// Runs the lookups of both families at once.
async fn futures_join<'a, I>(futs: I) -> Vec<Result<Message, DnsError>>
where
    I: Iterator<Item = BoxFuture<'a, Result<Message, DnsError>>>,
{
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::with_capacity(handles.len());
    // At most two futures (A and AAAA): polled together with join on a pair.
    let mut it = handles.into_iter();
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => {
            let (x, y) = tokio::join!(a, b);
            out.push(x);
            out.push(y);
        }
        (Some(a), None) => out.push(a.await),
        _ => {}
    }
    out
}

fn found(
    domain: &str,
    m: &Message,
    ips: Vec<IpAddr>,
    strategy: DomainStrategy,
) -> Result<Vec<IpAddr>, DnsError> {
    let ips = apply_strategy(ips, strategy);
    if ips.is_empty() {
        let rcode = m.metadata.response_code;
        return Err(DnsError::NoAddress {
            domain: domain.to_string(),
            why: if rcode == ResponseCode::NoError {
                "no such host".into()
            } else {
                rcode_text(rcode)
            },
        });
    }
    Ok(ips)
}

/// Clears the in-flight entry if the leading query is cancelled half way.
struct Abandon<'a> {
    cache: &'a Cache,
    key: &'a Key,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.cache.abandon(self.key);
    }
}

fn apply(ask: &mut Ask, o: &sb_config::model::dns::DnsRouteOptions) {
    ask.disable_cache |= o.disable_cache;
    if o.rewrite_ttl.is_some() {
        ask.rewrite_ttl = o.rewrite_ttl;
    }
    if let Some(c) = &o.client_subnet {
        ask.client_subnet = Some(c.net);
    }
    if o.remove_client_subnet {
        ask.client_subnet = None;
    }
}

/// Adds an EDNS client subnet option unless the query carries one already.
fn add_client_subnet(m: &mut Message, net: IpNet) {
    let edns = m.edns.get_or_insert_with(Edns::new);
    if edns
        .option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet)
        .is_none()
    {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::from(net)));
    }
}

/// The context of sb's own lookups (a dialer resolving a server's name): no inbound, no
/// source, so DNS rules on `inbound` do not match them.
pub fn own_flow(domain: &str) -> FlowContext {
    FlowContext::internal("resolver", Network::Udp, Destination::from_host(domain, 0))
}

/// [`Dns`] as the [`Resolver`] dialers and the `resolve` action use.
struct DnsResolver {
    dns: Weak<Dns>,
    server: Option<usize>,
    strategy: DomainStrategy,
}

impl Resolver for DnsResolver {
    fn lookup<'a>(
        &'a self,
        domain: &'a str,
        strategy: DomainStrategy,
    ) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let dns = self
                .dns
                .upgrade()
                .ok_or_else(|| std::io::Error::other("DNS module stopped"))?;
            let strategy = if strategy == DomainStrategy::AsIs {
                self.strategy
            } else {
                strategy
            };
            Ok(dns
                .lookup_for(&own_flow(domain), domain, strategy, self.server)
                .await?)
        })
    }
}
