//! Checks that need the whole document: duplicate tags and every tag reference.
//!
//! Go 1.14 reports duplicates but lets most unknown references through `check` (they fail at
//! start or per connection). sb resolves every reference here, so `sb check` catches them,
//! with the position of the reference and a "did you mean" over the tags that exist.

use crate::ctx::Ctx;
use crate::error::{did_you_mean, DecodeError};
use crate::model::config::Config;
use crate::refs::RefKind;
use std::collections::HashSet;

/// Runs the whole-document checks; fails with the first error of [`checks`].
pub fn validate(config: &Config, ctx: &Ctx) -> Result<(), DecodeError> {
    match checks(config, ctx).into_iter().flatten().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Every error of the whole-document checks, one list per check, in the order Go meets them
/// (duplicate tags when components are created, then references, then resolvers); each list
/// in the order sb records them. Only meaningful for a config that decoded without error.
pub fn checks(config: &Config, ctx: &Ctx) -> [Vec<DecodeError>; 3] {
    [
        duplicates(ctx),
        references(config, ctx),
        domain_resolvers(config, ctx),
    ]
}

/// With more than one DNS server, every outbound that resolves names must say which server
/// (Go 1.14 refuses such configs too; it is the most common 1.13/1.14 upgrade breakage).
fn domain_resolvers(config: &Config, ctx: &Ctx) -> Vec<DecodeError> {
    use crate::model::outbound::OutboundKind;
    let servers = config.dns.as_ref().map_or(0, |d| d.servers.len());
    let has_default = config
        .route
        .as_ref()
        .is_some_and(|r| r.options.default_domain_resolver.is_some());
    let mut errors = Vec::new();
    if servers <= 1 || has_default {
        return errors;
    }
    for (i, o) in config.outbounds.iter().enumerate() {
        let Some(dial) = o.kind.dial() else { continue };
        if dial.domain_resolver.is_some() || !dial.detour.is_empty() {
            continue;
        }
        let server = match &o.kind {
            OutboundKind::Socks(_, s) => Some(s.server.as_str()),
            OutboundKind::Http(_, h) => Some(h.server.as_str()),
            OutboundKind::Ssh(_, s) => Some(s.server.as_str()),
            _ => None,
        };
        let needs = match server {
            None => matches!(o.kind, OutboundKind::Direct(_)),
            Some(s) => s.parse::<std::net::IpAddr>().is_err(),
        };
        if needs {
            let tag = config.outbound_tag(i);
            let offset = ctx
                .defs
                .iter()
                .find(|d| d.kind == RefKind::Outbound && d.tag == tag)
                .map_or(0, |d| d.offset);
            errors.push(DecodeError::at(
                &crate::path::Path::root().key("outbounds").index(i),
                offset,
                "missing `route.default_domain_resolver` or `domain_resolver` in dial fields: required when there is more than one DNS server (Go 1.14 refuses this too)",
            )
            .with_tag(&tag));
        }
    }
    errors
}

fn duplicates(ctx: &Ctx) -> Vec<DecodeError> {
    let mut errors = Vec::new();
    for kind in [
        RefKind::Inbound,
        RefKind::Outbound,
        RefKind::DnsServer,
        RefKind::RuleSet,
        RefKind::HttpClient,
    ] {
        let mut seen = HashSet::new();
        for d in ctx.defs.iter().filter(|d| d.kind == kind) {
            if !seen.insert(d.tag.as_str()) {
                errors.push(DecodeError::at(
                    &d.path.key("tag"),
                    d.offset,
                    format!("duplicate {} tag: {}", kind.noun(), d.tag),
                ));
            }
        }
    }
    errors
}

fn references(config: &Config, ctx: &Ctx) -> Vec<DecodeError> {
    let mut errors = Vec::new();
    // Go creates a `direct` outbound when there are none, and a `local` DNS server when
    // there are no servers; references to those implicit tags are valid.
    let no_outbounds = config.outbounds.is_empty() && config.endpoints.is_empty();
    let no_dns_servers = config.dns.as_ref().is_none_or(|d| d.servers.is_empty());
    for site in &ctx.refs.sites {
        // An endpoint is an inbound too: the flows its peers open carry its tag, so a rule's
        // `inbound` may name it (an inbound's `detour` may not).
        let path = site.path.to_string();
        let rule_inbound = path.ends_with(".inbound") || path.contains(".inbound[");
        let endpoint_tags: Vec<String> = if site.kind == RefKind::Inbound && rule_inbound {
            (0..config.endpoints.len())
                .map(|i| config.endpoint_tag(i))
                .collect()
        } else {
            Vec::new()
        };
        let known: Vec<&str> = ctx
            .defs
            .iter()
            .filter(|d| d.kind == site.kind)
            .map(|d| d.tag.as_str())
            .chain(endpoint_tags.iter().map(String::as_str))
            .collect();
        if known.contains(&site.tag.as_str()) {
            continue;
        }
        let implicit = match site.kind {
            RefKind::Outbound => no_outbounds && site.tag == "direct",
            RefKind::DnsServer => no_dns_servers && site.tag == "local",
            _ => false,
        };
        if implicit {
            continue;
        }
        let hint = did_you_mean(&site.tag, known.iter().copied()).or_else(|| {
            Some(if known.is_empty() {
                format!("no {} is defined", site.kind.noun())
            } else {
                format!("defined: {}", crate::error::one_of(&known))
            })
        });
        errors.push(
            DecodeError::at(
                &site.path,
                site.offset,
                format!("{} not found: {}", site.kind.noun(), site.tag),
            )
            .with_hint(hint),
        );
    }
    errors
}
