//! `route.rules[]`: match fields plus an action in one object, or a logical rule.

use super::rule_match::{
    check_core, flow_refs, logical_mode, logical_rules, rule_type, LogicalMode, MatchCore,
    MatchFlow, MatchRouteOnly, Protocol, RuleType, RULE_REMOVED,
};
use super::shared::NetworkStrategy;
use super::typed::{extend_json, reject_removed};
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{Cidr, DomainStrategy, GoDuration, Listable};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One route rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteRule {
    /// What the rule matches.
    pub matcher: RouteMatcher,
    /// What happens on a match.
    pub action: RouteAction,
}

/// A default rule's fields, or a logical combination of sub-rules.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteMatcher {
    /// Match fields (Go's grouping: the OR-groups are ANDed).
    Default(Box<RouteMatch>),
    /// `and`/`or` over nested rules (which carry no action).
    Logical {
        /// How sub-rules combine.
        mode: LogicalMode,
        /// Sub-rules.
        rules: Vec<RouteMatcher>,
        /// Negate the result.
        invert: bool,
    },
}

/// Match fields of a default route rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteMatch {
    /// Fields shared with every rule kind.
    pub core: MatchCore,
    /// Fields shared with DNS rules.
    pub flow: MatchFlow,
    /// Route-only fields.
    pub route: MatchRouteOnly,
}

/// Route rule actions.
// Built once per config; boxing the larger variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum RouteAction {
    /// `route` (the default): send to `outbound`.
    Route(RouteTarget, RouteOptions),
    /// `bypass` (1.13, auto_redirect pre-match).
    Bypass(RouteTarget, RouteOptions),
    /// `route-options`: set options, continue matching.
    RouteOptions(RouteOptions),
    /// `reject`.
    Reject(RejectAction),
    /// `hijack-dns`: answer with the DNS module.
    HijackDns,
    /// `sniff`: detect the protocol, continue matching.
    Sniff(SniffAction),
    /// `resolve`: resolve the destination domain, continue matching.
    Resolve(ResolveAction),
}

impl RouteAction {
    /// The `action` string.
    pub fn name(&self) -> &'static str {
        match self {
            RouteAction::Route(..) => "route",
            RouteAction::Bypass(..) => "bypass",
            RouteAction::RouteOptions(_) => "route-options",
            RouteAction::Reject(_) => "reject",
            RouteAction::HijackDns => "hijack-dns",
            RouteAction::Sniff(_) => "sniff",
            RouteAction::Resolve(_) => "resolve",
        }
    }

    /// True for actions that end rule matching.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            RouteAction::RouteOptions(_) | RouteAction::Sniff(_) | RouteAction::Resolve(_)
        )
    }
}

/// The outbound of `route`/`bypass`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteTarget {
    /// Outbound or endpoint tag.
    pub outbound: String,
}

/// Route options (for `route`, `bypass` and `route-options`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteOptions {
    /// Replace the destination address.
    pub override_address: String,
    /// Replace the destination port.
    pub override_port: u16,
    /// Graphical clients.
    pub network_strategy: Option<NetworkStrategy>,
    /// Happy-eyeballs delay in milliseconds (an integer in Go, not a duration).
    pub fallback_delay: u32,
    /// Do not map UDP replies back to the domain.
    pub udp_disable_domain_unmapping: bool,
    /// Connect UDP sockets.
    pub udp_connect: bool,
    /// UDP idle timeout for this flow.
    pub udp_timeout: GoDuration,
    /// Fragment the TLS ClientHello.
    pub tls_fragment: bool,
    /// Fragment fallback delay.
    pub tls_fragment_fallback_delay: GoDuration,
    /// Fragment TLS records.
    pub tls_record_fragment: bool,
    /// Spoofed SNI (1.14).
    pub tls_spoof: String,
    /// Spoof method (1.14).
    pub tls_spoof_method: Option<TlsSpoofMethod>,
}

/// `tls_spoof_method` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsSpoofMethod {
    /// wrong-sequence
    WrongSequence,
    /// wrong-checksum
    WrongChecksum,
    /// wrong-ack
    WrongAck,
    /// wrong-md5
    WrongMd5,
    /// wrong-timestamp
    WrongTimestamp,
}

/// `reject` action fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RejectAction {
    /// How to refuse.
    pub method: RejectMethod,
    /// Never switch to `drop` automatically.
    pub no_drop: bool,
}

/// `reject` methods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum RejectMethod {
    /// TCP RST / ICMP unreachable (written as nothing by `format`).
    #[default]
    #[serde(rename = "", alias = "default")]
    Default,
    /// Silently drop.
    #[serde(rename = "drop")]
    Drop,
    /// ICMP reply (ICMP only).
    #[serde(rename = "reply")]
    Reply,
}

/// `sniff` action fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SniffAction {
    /// Sniffers to run; all when empty.
    pub sniffer: Listable<Protocol>,
    /// How long to wait for data; 300ms when zero.
    pub timeout: GoDuration,
}

/// `resolve` action fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolveAction {
    /// DNS server tag; the default one when empty.
    pub server: String,
    /// Address family preference.
    pub strategy: DomainStrategy,
    /// Bypass the cache.
    pub disable_cache: bool,
    /// Bypass the optimistic cache (1.14).
    pub disable_optimistic_cache: bool,
    /// Rewrite answer TTLs (a pointer in Go: a written 0 is kept).
    #[serde(serialize_with = "crate::types::keep_some")]
    pub rewrite_ttl: Option<u32>,
    /// EDNS client subnet.
    pub client_subnet: Option<Cidr>,
    /// Query timeout (1.14).
    pub timeout: GoDuration,
}

fn decode_match(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<RouteMatch, DecodeError> {
    reject_removed(o, RULE_REMOVED)?;
    flow_refs(o, ctx);
    let core: MatchCore = o.group()?;
    check_core(o, &core)?;
    Ok(RouteMatch {
        core,
        flow: o.group()?,
        route: o.group()?,
    })
}

/// Decodes a nested rule of a logical rule: match fields only.
fn decode_nested(node: &Node, path: &Path, ctx: &mut Ctx) -> Result<RouteMatcher, DecodeError> {
    let mut o = Obj::new(node, path)?;
    let m = match rule_type(&mut o)? {
        RuleType::Default => RouteMatcher::Default(Box::new(decode_match(&mut o, ctx)?)),
        RuleType::Logical => decode_logical(&mut o, ctx)?,
    };
    o.finish()?;
    Ok(m)
}

fn decode_logical(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<RouteMatcher, DecodeError> {
    let mode = logical_mode(o)?;
    let rules = logical_rules(o, ctx, decode_nested)?;
    let invert = o.take("invert")?.unwrap_or(false);
    Ok(RouteMatcher::Logical {
        mode,
        rules,
        invert,
    })
}

fn decode_action(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<RouteAction, DecodeError> {
    let action: String = o.take("action")?.unwrap_or_default();
    Ok(match action.as_str() {
        "" | "route" | "bypass" => {
            o.reference(&mut ctx.refs, "outbound", RefKind::Outbound);
            let target: RouteTarget = o.group()?;
            let options: RouteOptions = o.group()?;
            check_route_options(o, &options)?;
            if action == "bypass" {
                RouteAction::Bypass(target, options)
            } else {
                if target.outbound.is_empty() {
                    return Err(o.error(
                        "missing outbound: a rule with the route action must name an outbound",
                    ));
                }
                RouteAction::Route(target, options)
            }
        }
        "route-options" => {
            let options: RouteOptions = o.group()?;
            if options == RouteOptions::default() {
                return Err(o.error("empty route option action"));
            }
            check_route_options(o, &options)?;
            RouteAction::RouteOptions(options)
        }
        "reject" => {
            let r: RejectAction = o.group()?;
            if r.no_drop && r.method == RejectMethod::Drop {
                return Err(o.error_at("no_drop", "no_drop is not available in current context"));
            }
            RouteAction::Reject(r)
        }
        "hijack-dns" => RouteAction::HijackDns,
        "sniff" => RouteAction::Sniff(o.group()?),
        "resolve" => {
            o.reference(&mut ctx.refs, "server", RefKind::DnsServer);
            RouteAction::Resolve(o.group()?)
        }
        other => {
            return Err(o
                .error_at("action", format!("unknown rule action: {other}"))
                .with_hint(crate::error::did_you_mean(
                    other,
                    [
                        "route",
                        "bypass",
                        "route-options",
                        "reject",
                        "hijack-dns",
                        "sniff",
                        "resolve",
                    ],
                )))
        }
    })
}

fn check_route_options(o: &Obj<'_>, r: &RouteOptions) -> Result<(), DecodeError> {
    if r.tls_fragment && r.tls_record_fragment {
        return Err(o.error_at(
            "tls_record_fragment",
            "`tls_fragment` and `tls_record_fragment` are mutually exclusive",
        ));
    }
    Ok(())
}

/// Decodes `route.rules[i]`.
pub fn decode(node: &Node, path: &Path, ctx: &mut Ctx) -> Result<RouteRule, DecodeError> {
    let mut o = Obj::new(node, path)?;
    let matcher = match rule_type(&mut o)? {
        RuleType::Default => RouteMatcher::Default(Box::new(decode_match(&mut o, ctx)?)),
        RuleType::Logical => decode_logical(&mut o, ctx)?,
    };
    let action = decode_action(&mut o, ctx)?;
    o.finish()?;
    Ok(RouteRule { matcher, action })
}

impl RouteMatcher {
    fn write(&self, m: &mut Map<String, Value>) {
        match self {
            RouteMatcher::Default(r) => {
                extend_json(m, &r.core);
                extend_json(m, &r.flow);
                extend_json(m, &r.route);
            }
            RouteMatcher::Logical {
                mode,
                rules,
                invert,
            } => {
                m.insert("type".into(), Value::String("logical".into()));
                extend_json(m, &serde_json::json!({ "mode": mode }));
                let nested = rules
                    .iter()
                    .map(|r| {
                        let mut n = Map::new();
                        r.write(&mut n);
                        Value::Object(n)
                    })
                    .collect();
                m.insert("rules".into(), Value::Array(nested));
                m.insert("invert".into(), Value::Bool(*invert));
            }
        }
    }
}

impl RouteRule {
    /// The JSON object `format` writes (before zero values are dropped).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        self.matcher.write(&mut m);
        let name = self.action.name();
        if name != "route" {
            m.insert("action".into(), Value::String(name.into()));
        }
        match &self.action {
            RouteAction::Route(t, o) | RouteAction::Bypass(t, o) => {
                extend_json(&mut m, t);
                extend_json(&mut m, o);
            }
            RouteAction::RouteOptions(o) => extend_json(&mut m, o),
            RouteAction::Reject(r) => extend_json(&mut m, r),
            RouteAction::HijackDns => {}
            RouteAction::Sniff(s) => extend_json(&mut m, s),
            RouteAction::Resolve(r) => extend_json(&mut m, r),
        }
        m
    }
}
