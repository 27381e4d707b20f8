//! The registry: turns a checked config into running parts. It sits between sb-config (what
//! the user wrote) and sb-core's lifecycle (what runs): [`check`] says whether this build can
//! run every adapter of a config, [`build`] makes them, the DNS module, the rule sets and the
//! dispatcher. `sb check` runs both (without starting anything) and `sb run` runs both and
//! then starts the result, so they never disagree about what runs.
//!
//! Each adapter family is one exhaustive `match` on sb-config's kind enum
//! (`registry/inbounds.rs`, `outbounds.rs`, `endpoints.rs`): a new variant does not compile
//! until the table answers it, and a type sb has no runtime for is answered there with
//! [`AdapterError::NotImplemented`] (no decoded type is in that state today: Go's types
//! without a decoder are refused by sb-config already) or [`AdapterError::NeedsFeature`]
//! when a cargo feature left it out, never with a stub.
//!
//! Adding an adapter:
//! 1. its options type and decoder in sb-config (`model/<family>.rs`, its name in
//!    `kinds.rs`, its variant in the family's kind enum), with golden and parity cases;
//! 2. its module in this crate (`inbound/`, `outbound/` or `endpoint/`), implementing
//!    sb-core's `Inbound`, `Outbound` or `Endpoint`, behind a cargo feature if it pulls in a
//!    heavy dependency;
//! 3. its arm in the family's table here (the compiler points at it);
//! 4. its tests against a real peer, `docs/<adapter>.md`, and its `GO_PARITY_MATRIX.md` row.

mod cycles;
mod dial;
mod endpoints;
mod error;
mod http_clients;
mod ignored;
mod inbounds;
mod outbounds;

pub use error::{AdapterError, BuildError, Section};

use crate::outbound::direct::Direct;
use crate::outbound::selector::Selector;
use crate::outbound::urltest::UrlTest;
use dial::DialCtx;
use outbounds::Made;
use sb_config::model::endpoint::EndpointKind;
use sb_config::model::outbound::OutboundKind;
use sb_config::types::DomainStrategy;
use sb_config::Config;
use sb_core::adapter::{Endpoint as RunEndpoint, Inbound as RunInbound, Outbound as RunOutbound};
use sb_core::dialer::{DialOptions, Dialer};
use sb_core::dispatch::Dispatcher;
use sb_core::lifecycle::Parts;
use sb_core::router::{ClashMode, Router};
use sb_core::ruleset::{OutboundLookup, RuleSets};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything needed to start an instance.
pub struct Built {
    /// Inbounds, in config order.
    pub inbounds: Vec<Arc<dyn RunInbound>>,
    /// Their configs, in the same order (a reload keeps the inbounds whose config is the same).
    pub inbound_configs: Vec<sb_config::model::inbound::Inbound>,
    /// Endpoints, in config order (also in the dispatcher's outbounds).
    pub endpoints: Vec<Arc<dyn RunEndpoint>>,
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
    pub selectors: HashMap<String, Arc<Selector>>,
    /// URL-test groups by tag, for their results and on-demand tests (the Clash API).
    pub url_tests: HashMap<String, Arc<UrlTest>>,
    /// The Clash mode `clash_mode` rules match on (the Clash API switches it).
    pub mode: Arc<ClashMode>,
    /// Every outbound and endpoint tag in config order, outbounds first (the Clash API
    /// lists them so).
    pub outbound_order: Vec<String>,
    /// The default outbound's tag: `route.final`, else the first.
    pub default_outbound: String,
    /// Parts of the config the runtime accepts but does not act on yet, one line each, for
    /// `sb run` to print at start so nobody believes they are in effect.
    pub ignored: Vec<String>,
}

impl Built {
    /// What the lifecycle starts (the rest stays with the caller: the cache file, groups).
    pub fn parts(&self) -> Parts {
        Parts {
            inbounds: self.inbounds.clone(),
            inbound_configs: self.inbound_configs.clone(),
            endpoints: self.endpoints.clone(),
            dispatcher: self.dispatcher.clone(),
            rule_sets: self.rule_sets.clone(),
        }
    }
}

fn tag_of(tag: &str, index: usize) -> String {
    sb_config::model::config::effective_tag(Some(tag), index)
}

fn adapter_error(section: Section, index: usize, tag: &str) -> impl Fn(AdapterError) -> BuildError {
    let tag = tag.to_string();
    move |reason| BuildError::Adapter {
        section,
        index,
        tag: tag.clone(),
        reason,
    }
}

/// Every reason this build cannot run `config`, in config order: adapter types it does not
/// implement or was built without, then a dependency cycle among outbounds and endpoints.
/// Empty when [`build`] can be tried.
pub fn check(config: &Config) -> Vec<BuildError> {
    let mut errors = Vec::new();
    for (i, ib) in config.inbounds.iter().enumerate() {
        if let Err(e) = inbounds::builder(&ib.kind) {
            errors.push(adapter_error(Section::Inbounds, i, &tag_of(&ib.tag, i))(e));
        }
    }
    for (i, ob) in config.outbounds.iter().enumerate() {
        if let Err(e) = outbounds::builder(&ob.kind) {
            errors.push(adapter_error(Section::Outbounds, i, &tag_of(&ob.tag, i))(e));
        }
    }
    for (i, ep) in config.endpoints.iter().enumerate() {
        if let Err(e) = endpoints::builder(&ep.kind) {
            errors.push(adapter_error(Section::Endpoints, i, &tag_of(&ep.tag, i))(e));
        }
    }
    if let Some(cycle) = cycles::find_cycle(&dependencies(config)) {
        errors.push(BuildError::Cycle(cycle));
    }
    errors
}

/// Each outbound's and endpoint's tag and what it reaches its peers through: group members
/// and its `detour` (outbounds first, as Go lists them).
fn dependencies(config: &Config) -> Vec<(String, Vec<String>)> {
    let outbounds = config.outbounds.iter().enumerate().map(|(i, ob)| {
        let mut deps = match &ob.kind {
            OutboundKind::Selector(s) => s.outbounds.clone(),
            OutboundKind::UrlTest(u) => u.outbounds.clone(),
            _ => Vec::new(),
        };
        if let Some(d) = ob.kind.dial().filter(|d| !d.detour.is_empty()) {
            deps.push(d.detour.clone());
        }
        (tag_of(&ob.tag, i), deps)
    });
    let endpoints = config.endpoints.iter().enumerate().map(|(i, ep)| {
        let dial = match &ep.kind {
            EndpointKind::WireGuard(d, _) | EndpointKind::Tailscale(d, _) => d,
        };
        let deps = if dial.detour.is_empty() {
            Vec::new()
        } else {
            vec![dial.detour.clone()]
        };
        (tag_of(&ep.tag, i), deps)
    });
    outbounds.chain(endpoints).collect()
}

/// Builds every adapter and the dispatcher from a checked config. Fails with the first of
/// [`check`]'s errors, or the first adapter that refuses its options.
pub fn build(config: &Config) -> Result<Built, BuildError> {
    if let Some(first) = check(config).into_iter().next() {
        return Err(first);
    }
    let route = config.route.as_ref();
    let mut ignored = ignored::ignored_parts(config);
    let detected_interface = ignored::detect_interface(config).unwrap_or_else(|warning| {
        ignored.push(warning);
        None
    });
    let ctx = DialCtx {
        detected_interface,
        route: route.map(|r| &r.options),
        detours: Default::default(),
        resolvers: Default::default(),
        dns_configured: config.dns.as_ref().is_some_and(|d| !d.servers.is_empty()),
    };
    let mut inbounds = Vec::with_capacity(config.inbounds.len());
    for (i, ib) in config.inbounds.iter().enumerate() {
        let tag = tag_of(&ib.tag, i);
        let err = adapter_error(Section::Inbounds, i, &tag);
        inbounds.push(
            inbounds::builder(&ib.kind)
                .and_then(|b| b(&tag))
                .map_err(err)?,
        );
    }
    let mut made = Vec::with_capacity(config.outbounds.len() + 1);
    for (i, ob) in config.outbounds.iter().enumerate() {
        let tag = tag_of(&ob.tag, i);
        let err = adapter_error(Section::Outbounds, i, &tag);
        made.push(
            outbounds::builder(&ob.kind)
                .and_then(|b| b(&tag, &ctx))
                .map_err(err)?,
        );
    }
    let mut endpoints = Vec::with_capacity(config.endpoints.len());
    for (i, ep) in config.endpoints.iter().enumerate() {
        let tag = tag_of(&ep.tag, i);
        let err = adapter_error(Section::Endpoints, i, &tag);
        endpoints.push(
            endpoints::builder(&ep.kind)
                .and_then(|b| b(&tag, &ctx))
                .map_err(err)?,
        );
    }
    if made.is_empty() && endpoints.is_empty() {
        // Go creates a `direct` outbound tagged `direct` when there is none.
        made.push(Made::Plain(Arc::new(Direct::new(
            "direct",
            Dialer::Direct(DialOptions::default()),
        ))));
    }
    // Outbounds and endpoints share one namespace; the first of either is Go's default.
    let all: Vec<Arc<dyn RunOutbound>> = made
        .iter()
        .map(Made::outbound)
        .chain(endpoints.iter().map(|e| e.clone() as Arc<dyn RunOutbound>))
        .collect();
    let by_tag: HashMap<String, Arc<dyn RunOutbound>> = all
        .iter()
        .map(|o| (o.tag().to_string(), o.clone()))
        .collect();
    bind_detours(&ctx, &by_tag);
    let first = all[0].clone();
    // Go's default outbound: `route.final`, else the first one.
    let final_outbound = route
        .map(|r| r.options.final_.as_str())
        .filter(|f| !f.is_empty())
        .and_then(|f| by_tag.get(f).cloned())
        .unwrap_or_else(|| first.clone());
    let default_outbound = final_outbound.tag().to_string();
    // Remote rule sets download through HTTP clients that may use outbounds, so both are
    // built after them (and before the detours made for them are bound, below).
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
    let http_clients = http_clients::HttpClients::build(config, &ctx)?;
    let rule_sets = Arc::new(RuleSets::build_with(
        route.map_or(&[][..], |r| &r.rule_set),
        &|set| http_clients.for_rule_set(set, &ctx, &lookup),
    )?);
    let mode = Arc::new(ClashMode::with_list(
        &sb_config::clash_modes::default_mode(config),
        sb_config::clash_modes::mode_list(config),
    ));
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
    bind_detours(&ctx, &by_tag);
    let router = Router::with_outbounds(route, mode.clone(), &rule_sets.matchers(), &by_tag)?;
    let order: Vec<String> = all.iter().map(|o| o.tag().to_string()).collect();
    let dispatcher = Arc::new(Dispatcher::new(router, by_tag.clone(), first).with_dns(dns.clone()));
    let mut selectors = HashMap::new();
    let mut url_tests = HashMap::new();
    for m in made {
        match m {
            Made::Plain(_) => {}
            Made::Selector(s) => {
                s.bind(&by_tag, dispatcher.tracker().clone());
                selectors.insert(s.tag().to_string(), s);
            }
            Made::UrlTest(u) => {
                u.bind(&by_tag, dispatcher.tracker().clone());
                url_tests.insert(u.tag().to_string(), u);
            }
        }
    }
    let cache_file = crate::cache_file::CacheFile::open(
        config
            .experimental
            .as_ref()
            .and_then(|e| e.cache_file.as_ref()),
        dns.fakeip_pools(),
        &selectors,
        &mode,
    )?;
    Ok(Built {
        inbounds,
        inbound_configs: config.inbounds.clone(),
        endpoints,
        cache_file,
        dns,
        dispatcher,
        rule_sets,
        selectors,
        url_tests,
        mode,
        outbound_order: order,
        default_outbound,
        ignored,
    })
}

/// Points every detour made so far at its outbound or endpoint (sb-config has resolved
/// every detour tag, so the lookup cannot miss; binding twice keeps the first).
fn bind_detours(ctx: &DialCtx<'_>, by_tag: &HashMap<String, Arc<dyn RunOutbound>>) {
    for d in ctx.detours.borrow().iter() {
        if let Some(target) = by_tag.get(&d.tag) {
            d.bind(target.clone());
        }
    }
}

#[cfg(test)]
mod tests;
