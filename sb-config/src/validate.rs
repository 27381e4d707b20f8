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

/// Runs the whole-document checks.
pub fn validate(config: &Config, ctx: &Ctx) -> Result<(), DecodeError> {
    duplicates(ctx)?;
    references(config, ctx)?;
    Ok(())
}

fn duplicates(ctx: &Ctx) -> Result<(), DecodeError> {
    for kind in [
        RefKind::Inbound,
        RefKind::Outbound,
        RefKind::DnsServer,
        RefKind::RuleSet,
    ] {
        let mut seen = HashSet::new();
        for d in ctx.defs.iter().filter(|d| d.kind == kind) {
            if !seen.insert(d.tag.as_str()) {
                return Err(DecodeError::at(
                    &d.path.key("tag"),
                    d.offset,
                    format!("duplicate {} tag: {}", kind.noun(), d.tag),
                ));
            }
        }
    }
    Ok(())
}

fn references(config: &Config, ctx: &Ctx) -> Result<(), DecodeError> {
    // Go creates a `direct` outbound when there are none, and a `local` DNS server when
    // there are no servers; references to those implicit tags are valid.
    let no_outbounds = config.outbounds.is_empty() && config.endpoints.is_empty();
    let no_dns_servers = config.dns.as_ref().is_none_or(|d| d.servers.is_empty());
    for site in &ctx.refs.sites {
        let known: Vec<&str> = ctx
            .defs
            .iter()
            .filter(|d| d.kind == site.kind)
            .map(|d| d.tag.as_str())
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
        return Err(DecodeError::at(
            &site.path,
            site.offset,
            format!("{} not found: {}", site.kind.noun(), site.tag),
        )
        .with_hint(hint));
    }
    Ok(())
}
