//! The registry: one table per adapter family mapping a config `type` to its builder, and
//! [`build`], which turns a checked config into running parts. A type whose builder is
//! missing fails here with the adapter's tag, so `sb run` never starts without it.

mod cycles;

use crate::inbound::direct::DirectIn;
use crate::inbound::proxy::{Protocols, ProxyInbound};
use crate::outbound::urltest::UrlTest;
use crate::outbound::{block::Block, direct::Direct};
use sb_config::model::inbound::{Inbound, InboundKind};
use sb_config::model::outbound::{Outbound, OutboundKind};
use sb_config::model::route::RouteOptionsSection;
use sb_config::model::shared::DialFields;
use sb_config::types::DomainStrategy;
use sb_config::Config;
use sb_core::adapter::{Inbound as RunInbound, Outbound as RunOutbound};
use sb_core::dialer::{Detour, DialOptions, Dialer};
use sb_core::dispatch::Dispatcher;
use sb_core::flow::Network;
use sb_core::resolve::{DomainResolver, LateResolver};
use sb_core::router::{ClashMode, Router};
use sb_core::ruleset::{OutboundLookup, RuleSets};
use std::collections::HashMap;
use std::sync::Arc;

/// An error building an adapter, naming it as Go does (`outbounds[2] (tag "x"): ...`).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An adapter could not be built.
    #[error("{section}[{index}] (tag {tag:?}): {message}")]
    Adapter {
        /// `inbounds`, `outbounds` or `endpoints`.
        section: &'static str,
        /// Index in the section.
        index: usize,
        /// Effective tag.
        tag: String,
        /// What is wrong.
        message: String,
    },
    /// An outbound depends on itself through group members or detours (Go's text).
    #[error("circular outbound dependency: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// The router could not be built.
    #[error(transparent)]
    Router(#[from] sb_core::router::RouterError),
    /// A rule set could not be loaded.
    #[error(transparent)]
    RuleSet(#[from] sb_core::ruleset::RuleSetError),
    /// The cache file cannot be used.
    #[error(transparent)]
    CacheFile(#[from] crate::cache_file::CacheFileError),
    /// The DNS module could not be built.
    #[error(transparent)]
    Dns(#[from] sb_core::dns::BuildError),
}

/// Everything needed to start an instance.
pub struct Built {
    /// Inbounds, in config order.
    pub inbounds: Vec<Arc<dyn RunInbound>>,
    /// The dispatcher (router + outbounds).
    pub dispatcher: Arc<Dispatcher>,
    /// The DNS module.
    pub dns: Arc<sb_core::dns::Dns>,
    /// `experimental.cache_file`, restored already; attach it to the running instance so it
    /// saves.
    pub cache_file: Option<Arc<crate::cache_file::CacheFile>>,
    /// The rule sets; remote ones are downloaded when the instance starts.
    pub rule_sets: Arc<RuleSets>,
    /// Selectors by tag, for switching at runtime (the Clash API).
    pub selectors: HashMap<String, Arc<crate::outbound::selector::Selector>>,
    /// URL-test groups by tag, for their results and on-demand tests (the Clash API).
    pub url_tests: HashMap<String, Arc<UrlTest>>,
    /// Parts of the config the runtime accepts but does not act on yet, one line each, for
    /// `sb run` to print at start so nobody believes they are in effect.
    pub ignored: Vec<String>,
}

/// What the config asks for that the runtime does not do yet (printed as warnings).
fn ignored_parts(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &config.experimental {
        if e.clash_api
            .as_ref()
            .is_some_and(|c| !c.external_controller.is_empty())
        {
            out.push("experimental.clash_api: the Clash API is not implemented by sb yet; nothing listens on external_controller".into());
        }
        if e.cache_file
            .as_ref()
            .is_some_and(|c| c.enabled && c.store_rdrc)
        {
            out.push("experimental.cache_file.store_rdrc: sb does not keep rejected DNS responses; nothing is stored for it".into());
        }
        if e.cache_file
            .as_ref()
            .is_some_and(|c| c.enabled && c.store_dns)
        {
            out.push("experimental.cache_file.store_dns: sb does not keep DNS answers across restarts; nothing is stored for it".into());
        }
    }
    if let Some(r) = &config.route {
        // The process search reads /proc; elsewhere process fields never match.
        if r.options.find_process && !cfg!(target_os = "linux") {
            out.push("route.find_process has no effect on this platform in sb".into());
        }
    }
    out
}

type InboundBuilder = fn(&str, &InboundKind) -> Result<Arc<dyn RunInbound>, String>;
type OutboundBuilder = fn(&str, &OutboundKind, &BuildCtx) -> Result<Arc<dyn RunOutbound>, String>;

/// Inbound builders by `type`.
const INBOUNDS: &[(&str, InboundBuilder)] = &[
    ("mixed", build_proxy_inbound),
    ("socks", build_proxy_inbound),
    ("http", build_proxy_inbound),
    ("direct", build_direct_inbound),
    ("tun", build_tun_inbound),
];

/// Outbound builders by `type`.
const OUTBOUNDS: &[(&str, OutboundBuilder)] = &[
    ("direct", build_direct),
    ("block", build_block),
    ("socks", build_socks),
    ("http", build_http),
    ("selector", build_selector),
    ("ssh", build_ssh),
    ("urltest", build_urltest),
];

/// Shared state while building: route defaults for dialers, detours to bind.
struct BuildCtx<'a> {
    route: Option<&'a RouteOptionsSection>,
    detours: std::cell::RefCell<Vec<Arc<Detour>>>,
    selectors: std::cell::RefCell<Vec<Arc<crate::outbound::selector::Selector>>>,
    url_tests: std::cell::RefCell<Vec<Arc<UrlTest>>>,
    /// The default route's interface when `route.auto_detect_interface` found one.
    detected_interface: Option<String>,
    /// Resolvers named by `domain_resolver` (by DNS server tag; "" = through the DNS rules),
    /// filled in once the DNS module is built.
    resolvers: std::cell::RefCell<HashMap<String, Arc<LateResolver>>>,
    /// Whether `dns.servers` is configured: without it, dialers keep the system resolver.
    dns_configured: bool,
}

fn build_proxy_inbound(tag: &str, kind: &InboundKind) -> Result<Arc<dyn RunInbound>, String> {
    let (protocols, listen, users, tls) = match kind {
        InboundKind::Mixed(l, h) => (Protocols::Mixed, l, &h.users, h.tls.as_ref()),
        InboundKind::Http(l, h) => (Protocols::Http, l, &h.users, h.tls.as_ref()),
        InboundKind::Socks(l, s) => (Protocols::Socks, l, &s.users, None),
        _ => return Err("not a proxy inbound".into()),
    };
    if tls.is_some_and(|t| t.enabled) {
        return Err("inbound TLS is not implemented by sb yet".into());
    }
    Ok(Arc::new(ProxyInbound::new(
        tag,
        protocols,
        listen.clone(),
        users.clone(),
    )))
}

fn build_direct_inbound(tag: &str, kind: &InboundKind) -> Result<Arc<dyn RunInbound>, String> {
    match kind {
        InboundKind::Direct(l, d) => Ok(Arc::new(DirectIn::new(tag, l.clone(), d.clone())?)),
        _ => Err("not a direct inbound".into()),
    }
}

fn build_tun_inbound(tag: &str, kind: &InboundKind) -> Result<Arc<dyn RunInbound>, String> {
    match kind {
        InboundKind::Tun(t) => Ok(Arc::new(crate::inbound::tun::TunIn::new(tag, t)?)),
        _ => Err("not a tun inbound".into()),
    }
}

fn build_direct(
    tag: &str,
    kind: &OutboundKind,
    ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, String> {
    match kind {
        OutboundKind::Direct(d) => Ok(Arc::new(Direct::new(tag, ctx.dialer(d)))),
        _ => Err("not a direct outbound".into()),
    }
}

fn server(host: &str, port: u16) -> Result<sb_core::flow::Destination, String> {
    if host.is_empty() {
        return Err("missing server address".into());
    }
    if port == 0 {
        return Err("missing server port".into());
    }
    Ok(sb_core::flow::Destination::from_host(host, port))
}

fn build_ssh(
    tag: &str,
    kind: &OutboundKind,
    ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, String> {
    let OutboundKind::Ssh(d, s) = kind else {
        return Err("not an ssh outbound".into());
    };
    // Go's default port.
    let port = if s.server_port == 0 {
        22
    } else {
        s.server_port
    };
    let server = server(&s.server, port)?;
    Ok(Arc::new(crate::outbound::ssh::Ssh::new(
        tag,
        server,
        s,
        ctx.dialer(d),
    )?))
}

fn credentials(user: &str, pass: &str) -> Option<(String, String)> {
    (!user.is_empty()).then(|| (user.to_string(), pass.to_string()))
}

fn build_socks(
    tag: &str,
    kind: &OutboundKind,
    ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, String> {
    use crate::outbound::socks::{Socks, Version};
    use sb_config::model::outbound::SocksVersion;
    let OutboundKind::Socks(d, s) = kind else {
        return Err("not a socks outbound".into());
    };
    use crate::outbound::uot;
    let uot = match s.udp_over_tcp {
        Some(u) if u.0.enabled => Some(
            uot::Version::from_config(u.0.version)
                .ok_or_else(|| format!("udp_over_tcp: unknown version {}", u.0.version))?,
        ),
        _ => None,
    };
    let version = match s.version {
        Some(SocksVersion::V4) => Version::V4,
        Some(SocksVersion::V4a) => Version::V4a,
        _ => Version::V5,
    };
    let server = server(&s.server, s.server_port)?;
    Ok(Arc::new(Socks::new(
        tag,
        server,
        version,
        credentials(&s.username, &s.password),
        ctx.dialer(d),
        networks(&s.network),
        uot,
    )))
}

/// A config `network` list as the networks an outbound carries (both when empty).
fn networks(list: &sb_config::types::Listable<sb_config::types::Network>) -> &'static [Network] {
    use sb_config::types::Network as N;
    let (tcp, udp) = (
        list.iter().any(|n| *n == N::Tcp),
        list.iter().any(|n| *n == N::Udp),
    );
    match (tcp, udp) {
        (true, false) => &[Network::Tcp],
        (false, true) => &[Network::Udp],
        _ => &[Network::Tcp, Network::Udp],
    }
}

fn build_http(
    tag: &str,
    kind: &OutboundKind,
    ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, String> {
    use crate::outbound::http::HttpProxy;
    let OutboundKind::Http(d, h) = kind else {
        return Err("not an http outbound".into());
    };
    if h.tls.as_ref().is_some_and(|t| t.enabled) {
        return Err("TLS to the HTTP proxy is not implemented by sb yet".into());
    }
    if !h.path.is_empty() {
        return Err("`path` on the http outbound is not implemented by sb yet".into());
    }
    let headers = h
        .headers
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect();
    let server = server(&h.server, h.server_port)?;
    Ok(Arc::new(HttpProxy::new(
        tag,
        server,
        credentials(&h.username, &h.password),
        headers,
        ctx.dialer(d),
    )))
}

fn build_selector(
    tag: &str,
    kind: &OutboundKind,
    ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, String> {
    use crate::outbound::selector::Selector;
    let OutboundKind::Selector(s) = kind else {
        return Err("not a selector".into());
    };
    let sel = Arc::new(Selector::new(
        tag,
        s.outbounds.clone(),
        &s.default,
        s.interrupt_exist_connections,
    ));
    ctx.selectors.borrow_mut().push(sel.clone());
    Ok(sel)
}

fn build_urltest(
    tag: &str,
    kind: &OutboundKind,
    ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, String> {
    let OutboundKind::UrlTest(u) = kind else {
        return Err("not a urltest".into());
    };
    let group = UrlTest::new(tag, u);
    ctx.url_tests.borrow_mut().push(group.clone());
    Ok(group)
}

fn build_block(
    tag: &str,
    _kind: &OutboundKind,
    _ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, String> {
    Ok(Arc::new(Block::new(tag)))
}

impl BuildCtx<'_> {
    /// The dialer for an adapter's dial fields, with `route.default_*` applied.
    fn dialer(&self, d: &DialFields) -> Dialer {
        self.dialer_for(d, false)
    }

    /// The late resolver for `domain_resolver` server `tag` ("" = through the DNS rules).
    fn late_resolver(&self, tag: &str) -> Arc<LateResolver> {
        self.resolvers
            .borrow_mut()
            .entry(tag.to_string())
            .or_default()
            .clone()
    }

    /// A dialer; a DNS server's (`for_dns`) does not take `route.default_domain_resolver`
    /// (Go's rule, #3232).
    fn dialer_for(&self, d: &DialFields, for_dns: bool) -> Dialer {
        if !d.detour.is_empty() {
            let detour = Arc::new(Detour::new(&d.detour));
            self.detours.borrow_mut().push(detour.clone());
            return Dialer::Detour(detour);
        }
        let mut o = DialOptions::default();
        let route = self.route;
        o.bind_interface = Some(d.bind_interface.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                route
                    .map(|r| r.default_interface.clone())
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| self.detected_interface.clone());
        o.routing_mark = if d.routing_mark.0 != 0 {
            d.routing_mark.0
        } else {
            route.map_or(0, |r| r.default_mark.0)
        };
        if !d.connect_timeout.is_zero() {
            o.connect_timeout = d.connect_timeout.to_std();
        }
        if d.disable_tcp_keep_alive {
            o.keep_alive = None;
        } else if let Some((idle, interval)) = o.keep_alive.as_mut() {
            if !d.tcp_keep_alive.is_zero() {
                *idle = d.tcp_keep_alive.to_std();
            }
            if !d.tcp_keep_alive_interval.is_zero() {
                *interval = d.tcp_keep_alive_interval.to_std();
            }
        }
        if !d.fallback_delay.is_zero() {
            o.fallback_delay = d.fallback_delay.to_std();
        }
        o.inet4_bind = d.inet4_bind_address.map(|i| i.0);
        o.inet6_bind = d.inet6_bind_address.map(|i| i.0);
        o.reuse_addr = d.reuse_addr;
        o.tcp_fast_open = d.tcp_fast_open;
        o.bind_address_no_port = d.bind_address_no_port;
        let named = d.domain_resolver.as_ref().or_else(|| {
            route
                .filter(|_| !for_dns)
                .and_then(|r| r.default_domain_resolver.as_ref())
        });
        o.domain_resolver = match named {
            Some(r) => Some(DomainResolver {
                resolver: self.late_resolver(&r.0.server),
                strategy: r.0.strategy,
            }),
            None if self.dns_configured && !for_dns => Some(DomainResolver {
                resolver: self.late_resolver(""),
                strategy: DomainStrategy::AsIs,
            }),
            None => None,
        };
        Dialer::Direct(o)
    }
}

fn tag_of(tag: &str, index: usize) -> String {
    sb_config::model::config::effective_tag(Some(tag), index)
}

fn build_inbound(i: usize, ib: &Inbound) -> Result<Arc<dyn RunInbound>, BuildError> {
    let tag = tag_of(&ib.tag, i);
    let err = |message: String| BuildError::Adapter {
        section: "inbounds",
        index: i,
        tag: tag.clone(),
        message,
    };
    let ty = ib.kind.type_name();
    let builder = INBOUNDS.iter().find(|(t, _)| *t == ty).ok_or_else(|| {
        err(format!(
            "the {ty} inbound is not implemented by sb's runtime yet (sb check accepts it)"
        ))
    })?;
    (builder.1)(&tag, &ib.kind).map_err(err)
}

fn build_outbound(
    i: usize,
    ob: &Outbound,
    ctx: &BuildCtx,
) -> Result<Arc<dyn RunOutbound>, BuildError> {
    let tag = tag_of(&ob.tag, i);
    let err = |message: String| BuildError::Adapter {
        section: "outbounds",
        index: i,
        tag: tag.clone(),
        message,
    };
    let ty = ob.kind.type_name();
    let builder = OUTBOUNDS.iter().find(|(t, _)| *t == ty).ok_or_else(|| {
        err(format!(
            "the {ty} outbound is not implemented by sb's runtime yet (sb check accepts it)"
        ))
    })?;
    (builder.1)(&tag, &ob.kind, ctx).map_err(err)
}

/// Each outbound's tag and the outbounds it reaches its peers through: group members and
/// its `detour`.
fn dependencies(config: &Config) -> Vec<(String, Vec<String>)> {
    config
        .outbounds
        .iter()
        .enumerate()
        .map(|(i, ob)| {
            let mut deps = match &ob.kind {
                OutboundKind::Selector(s) => s.outbounds.clone(),
                OutboundKind::UrlTest(u) => u.outbounds.clone(),
                _ => Vec::new(),
            };
            if let Some(d) = ob.kind.dial().filter(|d| !d.detour.is_empty()) {
                deps.push(d.detour.clone());
            }
            (tag_of(&ob.tag, i), deps)
        })
        .collect()
}

/// `route.auto_detect_interface`: the interface of the main table's default route, read
/// over netlink before any TUN is up, to bind every direct dial and UDP socket to (Go's way
/// of keeping sb's own traffic out of its TUN: SO_BINDTODEVICE wins over the policy rules).
/// `route.default_interface` takes precedence. Unlike Go, the interface is read once at
/// build and not followed when the default route changes. Returns the interface, or a
/// warning line when there is none.
fn detect_interface(config: &Config) -> Result<Option<String>, String> {
    let Some(r) = config.route.as_ref().map(|r| &r.options) else {
        return Ok(None);
    };
    if !r.auto_detect_interface || !r.default_interface.is_empty() {
        return Ok(None);
    }
    match crate::netlink::default_interface() {
        Ok(Some(name)) => {
            tracing::info!(target: "network", "updated default interface {name}");
            Ok(Some(name))
        }
        Ok(None) => Err("route.auto_detect_interface: no default route in the main table; outbound sockets are not bound to an interface".into()),
        Err(e) => Err(format!("route.auto_detect_interface: reading the default route: {e}; outbound sockets are not bound to an interface")),
    }
}

/// Builds every adapter and the dispatcher from a checked config.
pub fn build(config: &Config) -> Result<Built, BuildError> {
    if let Some((i, e)) = config.endpoints.iter().enumerate().next() {
        return Err(BuildError::Adapter {
            section: "endpoints",
            index: i,
            tag: tag_of(&e.tag, i),
            message: format!(
                "the {} endpoint is not implemented by sb's runtime yet",
                e.kind.type_name()
            ),
        });
    }
    if let Some(cycle) = cycles::find_cycle(&dependencies(config)) {
        return Err(BuildError::Cycle(cycle));
    }
    let route = config.route.as_ref();
    let mut ignored = ignored_parts(config);
    let detected_interface = detect_interface(config).unwrap_or_else(|warning| {
        ignored.push(warning);
        None
    });
    let ctx = BuildCtx {
        detected_interface,
        route: route.map(|r| &r.options),
        detours: Default::default(),
        selectors: Default::default(),
        url_tests: Default::default(),
        resolvers: Default::default(),
        dns_configured: config.dns.as_ref().is_some_and(|d| !d.servers.is_empty()),
    };
    let inbounds = config
        .inbounds
        .iter()
        .enumerate()
        .map(|(i, ib)| build_inbound(i, ib))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outbounds: Vec<Arc<dyn RunOutbound>> = config
        .outbounds
        .iter()
        .enumerate()
        .map(|(i, ob)| build_outbound(i, ob, &ctx))
        .collect::<Result<_, _>>()?;
    if outbounds.is_empty() {
        // Go creates a `direct` outbound tagged `direct` when there is none.
        outbounds.push(Arc::new(Direct::new(
            "direct",
            Dialer::Direct(DialOptions::default()),
        )));
    }
    let by_tag: HashMap<String, Arc<dyn RunOutbound>> = outbounds
        .iter()
        .map(|o| (o.tag().to_string(), o.clone()))
        .collect();
    for d in ctx.detours.borrow().iter() {
        // sb-config has resolved every detour tag, so the lookup cannot miss.
        if let Some(target) = by_tag.get(&d.tag) {
            d.bind(target.clone());
        }
    }
    // Go's default outbound: `route.final`, else the first one.
    let final_outbound = route
        .map(|r| r.options.final_.as_str())
        .filter(|f| !f.is_empty())
        .and_then(|f| by_tag.get(f).cloned())
        .unwrap_or_else(|| outbounds[0].clone());
    // Remote rule sets download through an outbound, so they are built after them.
    let lookup: OutboundLookup = {
        let by_tag = by_tag.clone();
        Arc::new(move |tag: &str| {
            if tag.is_empty() {
                Some(final_outbound.clone())
            } else {
                by_tag.get(tag).cloned()
            }
        })
    };
    let rule_sets = Arc::new(RuleSets::build(
        route.map_or(&[][..], |r| &r.rule_set),
        lookup,
    )?);
    let mode = Arc::new(ClashMode::new("Rule"));
    let dns = sb_core::dns::build(
        config.dns.as_ref(),
        &|d| ctx.dialer_for(d, true),
        &rule_sets.matchers(),
        mode.clone(),
    )?;
    for (tag, slot) in ctx.resolvers.borrow().iter() {
        let server =
            if tag.is_empty() {
                None
            } else {
                Some(dns.server_index(tag).ok_or_else(|| {
                    BuildError::Dns(sb_core::dns::BuildError::NoDefault(tag.clone()))
                })?)
            };
        slot.set(dns.resolver(server, DomainStrategy::AsIs));
    }
    // DNS servers' detours were made after the outbounds' were bound.
    for d in ctx.detours.borrow().iter() {
        if let Some(target) = by_tag.get(&d.tag) {
            d.bind(target.clone());
        }
    }
    let router = Router::new(route, mode, &rule_sets.matchers())?;
    let default = outbounds[0].clone();
    let dispatcher =
        Arc::new(Dispatcher::new(router, by_tag.clone(), default).with_dns(dns.clone()));
    let selectors: HashMap<String, Arc<crate::outbound::selector::Selector>> = ctx
        .selectors
        .borrow()
        .iter()
        .map(|s| {
            s.bind(&by_tag, dispatcher.tracker().clone());
            (s.tag().to_string(), s.clone())
        })
        .collect();
    let url_tests: HashMap<String, Arc<UrlTest>> = ctx
        .url_tests
        .borrow()
        .iter()
        .map(|u| {
            u.bind(&by_tag, dispatcher.tracker().clone());
            (u.tag().to_string(), u.clone())
        })
        .collect();
    let cache_file = crate::cache_file::CacheFile::open(
        config
            .experimental
            .as_ref()
            .and_then(|e| e.cache_file.as_ref()),
        dns.fakeip_pools(),
        &selectors,
    )?;
    Ok(Built {
        inbounds,
        cache_file,
        dns,
        dispatcher,
        rule_sets,
        selectors,
        url_tests,
        ignored,
    })
}
