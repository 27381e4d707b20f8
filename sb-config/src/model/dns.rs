//! The `dns` section: servers, rules with actions, and resolver-wide options.

use super::dns_server::{self, DnsServer};
use super::rule_match::{
    check_core, flow_refs, logical_mode, logical_rules, rule_type, LogicalMode, MatchCore,
    MatchFlow, RuleType, RULE_REMOVED,
};
use super::rule_set::QueryTypeField;
use super::typed::{extend_json, reject_removed};
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
pub use crate::object::array;
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{Cidr, DomainStrategy, GoDuration, Listable};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `dns` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dns {
    /// Servers.
    pub servers: Vec<DnsServer>,
    /// Rules.
    pub rules: Vec<DnsRule>,
    /// Resolver-wide options.
    pub options: DnsOptions,
}

/// Resolver-wide `dns` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsOptions {
    /// Default server tag; the first server when empty.
    #[serde(rename = "final")]
    pub final_: String,
    /// Default address family preference.
    pub strategy: DomainStrategy,
    /// No cache.
    pub disable_cache: bool,
    /// Cache entries never expire.
    pub disable_expire: bool,
    /// Deprecated in 1.14; accepted with a warning.
    pub independent_cache: bool,
    /// Cache size; values below 1024 are ignored.
    pub cache_capacity: u32,
    /// Remember answers so IP flows can match domain rules.
    pub reverse_mapping: bool,
    /// Default EDNS client subnet.
    pub client_subnet: Option<Cidr>,
    /// Query timeout (1.14).
    pub timeout: GoDuration,
    /// Optimistic cache (1.14): a boolean or `{enabled, timeout}`.
    pub optimistic: Option<Optimistic>,
}

/// `dns.optimistic`: `true`, or `{enabled, timeout}`; `format` writes the boolean when no
/// timeout is set, as Go does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimisticOptions {
    /// Serve expired answers while refreshing.
    pub enabled: bool,
    /// How long an expired answer may be served.
    pub timeout: GoDuration,
}

/// See [`OptimisticOptions`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Optimistic(pub OptimisticOptions);

impl<'de> Deserialize<'de> for Optimistic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::types::bool_or_object(d, |enabled| OptimisticOptions {
            enabled,
            timeout: GoDuration(0),
        })
        .map(Optimistic)
    }
}

impl Serialize for Optimistic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.timeout.is_zero() {
            s.serialize_bool(self.0.enabled)
        } else {
            self.0.serialize(s)
        }
    }
}

/// One DNS rule.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsRule {
    /// What it matches.
    pub matcher: DnsMatcher,
    /// What happens on a match.
    pub action: DnsAction,
}

/// Default or logical DNS rule matcher.
#[derive(Clone, Debug, PartialEq)]
pub enum DnsMatcher {
    /// Match fields.
    Default(Box<DnsMatch>),
    /// `and`/`or` over nested DNS rules.
    Logical {
        /// How sub-rules combine.
        mode: LogicalMode,
        /// Sub-rules.
        rules: Vec<DnsMatcher>,
        /// Negate.
        invert: bool,
    },
}

/// DNS rule match fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DnsMatch {
    /// Shared fields.
    pub core: MatchCore,
    /// Fields shared with route rules.
    pub flow: MatchFlow,
    /// Query types.
    pub query: QueryTypeField,
    /// DNS-only fields.
    pub dns: DnsOnlyMatch,
}

/// DNS-only match fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsOnlyMatch {
    /// Client subnet of the query (1.14).
    pub query_client_subnet: Listable<Cidr>,
    /// DNSSEC OK bit (1.14).
    pub query_dnssec: bool,
    /// Match the response of an `evaluate`d query (1.14).
    pub match_response: Option<serde_json::Value>,
    /// Deprecated address filter (1.14): match any answer address.
    pub ip_accept_any: bool,
    /// Deprecated (1.14): let an empty rule-set CIDR list match.
    pub rule_set_ip_cidr_accept_empty: bool,
    /// Response rcode (1.14).
    pub response_rcode: Option<super::dns_record::Rcode>,
    /// Response answers (1.14).
    pub response_answer: Listable<super::dns_record::Record>,
    /// Response authority (1.14).
    pub response_ns: Listable<super::dns_record::Record>,
    /// Response additional (1.14).
    pub response_extra: Listable<super::dns_record::Record>,
}

/// DNS rule actions.
// Built once per config; boxing the larger variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum DnsAction {
    /// `route` (default): ask `server`.
    Route(DnsRouteAction, DnsRouteOptions),
    /// `route-options`: set options, continue.
    RouteOptions(DnsRouteOptions),
    /// `reject`.
    Reject(DnsRejectAction),
    /// `predefined`: answer from the config.
    Predefined(PredefinedAction),
    /// `evaluate` (1.14): query and keep the response for `match_response` rules.
    Evaluate(DnsEvaluateAction, DnsRouteOptions),
    /// `respond` (1.14): answer with the evaluated response.
    Respond,
}

/// `route` DNS action.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsRouteAction {
    /// Server tag.
    pub server: String,
    /// Deprecated in 1.14; accepted with a warning.
    pub strategy: DomainStrategy,
}

/// Options of `route`/`route-options` DNS actions.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsRouteOptions {
    /// No cache.
    pub disable_cache: bool,
    /// No optimistic cache (1.14).
    pub disable_optimistic_cache: bool,
    /// Rewrite TTLs (a pointer in Go: a written 0 is kept).
    #[serde(serialize_with = "crate::types::keep_some")]
    pub rewrite_ttl: Option<u32>,
    /// EDNS client subnet.
    pub client_subnet: Option<Cidr>,
    /// Race servers (1.14).
    pub race: bool,
    /// Speculative (1.14).
    pub speculative: bool,
    /// Timeout (1.14).
    pub timeout: GoDuration,
    /// Remove the client subnet (1.14).
    pub remove_client_subnet: bool,
}

/// `evaluate` DNS action (1.14).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsEvaluateAction {
    /// Server tag.
    pub server: String,
    /// Response tag.
    pub tag: String,
}

/// `reject` DNS action.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsRejectAction {
    /// `default` (REFUSED) or `drop`.
    pub method: super::route_rule::RejectMethod,
    /// Never switch to drop.
    pub no_drop: bool,
    /// Accepted as in 1.14's schema.
    pub race: bool,
}

/// `predefined` DNS action.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredefinedAction {
    /// Response code name or number.
    pub rcode: Option<super::dns_record::Rcode>,
    /// Answer records, zone-file text.
    pub answer: Listable<super::dns_record::Record>,
    /// Authority records.
    pub ns: Listable<super::dns_record::Record>,
    /// Additional records.
    pub extra: Listable<super::dns_record::Record>,
    /// Accepted as in 1.14's schema.
    pub race: bool,
}

fn decode_match(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<DnsMatch, DecodeError> {
    reject_removed(o, RULE_REMOVED)?;
    o.removed(
        &["outbound"],
        "outbound DNS rule item is deprecated in sing-box 1.12.0 and will be removed in sing-box 1.14.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-outbound-dns-rule-items-to-domain-resolver",
    )?;
    flow_refs(o, ctx);
    for key in ["ip_cidr", "ip_is_private", "ip_accept_any"] {
        if let Some(m) = o.peek(key) {
            // Go 1.14.4 warns about these only at run time; sb says it at check.
            ctx.warn(&o.path().key(key), m.key_span.start, "Legacy Address Filter Fields in DNS rules is deprecated in sing-box 1.14.0 and will be removed in sing-box 1.16.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-address-filter-fields-to-response-matching");
            break;
        }
    }
    if let Some(m) = o.peek("rule_set_ip_cidr_accept_empty") {
        ctx.warn(&o.path().key("rule_set_ip_cidr_accept_empty"), m.key_span.start, "Legacy `rule_set_ip_cidr_accept_empty` DNS rule item is deprecated in sing-box 1.14.0 and will be removed in sing-box 1.16.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-address-filter-fields-to-response-matching");
    }
    let core: MatchCore = o.group()?;
    check_core(o, &core)?;
    Ok(DnsMatch {
        core,
        flow: o.group()?,
        query: o.group()?,
        dns: o.group()?,
    })
}

fn decode_matcher(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<DnsMatcher, DecodeError> {
    Ok(match rule_type(o)? {
        RuleType::Default => DnsMatcher::Default(Box::new(decode_match(o, ctx)?)),
        RuleType::Logical => {
            let mode = logical_mode(o)?;
            let rules = logical_rules(o, ctx, |n, p, ctx| {
                let mut inner = Obj::new(n, p)?;
                let m = decode_matcher(&mut inner, ctx)?;
                inner.finish()?;
                Ok(m)
            })?;
            let invert = o.take("invert")?.unwrap_or(false);
            DnsMatcher::Logical {
                mode,
                rules,
                invert,
            }
        }
    })
}

fn decode_action(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<DnsAction, DecodeError> {
    let action: String = o.take("action")?.unwrap_or_default();
    Ok(match action.as_str() {
        "" | "route" => {
            o.reference(&mut ctx.refs, "server", RefKind::DnsServer);
            if let Some(m) = o.peek("strategy") {
                ctx.warn(&o.path().key("strategy"), m.key_span.start, "`strategy` in DNS rule actions is deprecated in sing-box 1.14.0, use `strategy` of `domain_resolver` or the `resolve` route action instead");
            }
            let r: DnsRouteAction = o.group()?;
            if r.server.is_empty() {
                return Err(
                    o.error("missing server: a DNS rule with the route action must name a server")
                );
            }
            DnsAction::Route(r, o.group()?)
        }
        "route-options" => {
            let r: DnsRouteOptions = o.group()?;
            if r == DnsRouteOptions::default() {
                return Err(o.error("empty DNS route option action"));
            }
            DnsAction::RouteOptions(r)
        }
        "reject" => {
            let r: DnsRejectAction = o.group()?;
            if r.no_drop && r.method == super::route_rule::RejectMethod::Drop {
                return Err(o.error_at("no_drop", "no_drop is not available in current context"));
            }
            DnsAction::Reject(r)
        }
        "predefined" => DnsAction::Predefined(o.group()?),
        "evaluate" => {
            o.reference(&mut ctx.refs, "server", RefKind::DnsServer);
            DnsAction::Evaluate(o.group()?, o.group()?)
        }
        "respond" => {
            let _race: Option<bool> = o.take("race")?;
            DnsAction::Respond
        }
        other => {
            return Err(o
                .error_at("action", format!("unknown DNS rule action: {other}"))
                .with_hint(crate::error::did_you_mean(
                    other,
                    [
                        "route",
                        "route-options",
                        "reject",
                        "predefined",
                        "evaluate",
                        "respond",
                    ],
                )))
        }
    })
}

/// Decodes the `dns` section.
pub fn decode(node: &Node, path: &Path, ctx: &mut Ctx) -> Result<Dns, DecodeError> {
    let errors_before = ctx.errors.len();
    let mut o = Obj::new(node, path)?;
    o.removed(&["fakeip"], "legacy DNS fakeip options are deprecated in sing-box 1.12.0 and removed in sing-box 1.14.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-to-new-dns-server-formats")?;
    let servers = array(&mut o, "servers", ctx, |n, p, i, ctx| {
        let s = dns_server::decode(n, p, i, ctx)?;
        ctx.define(RefKind::DnsServer, &s.tag, i, n, p);
        Ok(s)
    })?;
    let rules = array(&mut o, "rules", ctx, |n, p, _, ctx| {
        let mut r = Obj::new(n, p)?;
        let matcher = decode_matcher(&mut r, ctx)?;
        let action = decode_action(&mut r, ctx)?;
        r.finish()?;
        Ok(DnsRule { matcher, action })
    })?;
    o.reference(&mut ctx.refs, "final", RefKind::DnsServer);
    if let Some(m) = o.peek("independent_cache") {
        ctx.warn(&o.path().key("independent_cache"), m.key_span.start, "`independent_cache` DNS option is deprecated in sing-box 1.14.0 and will be removed in sing-box 1.16.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-independent-dns-cache");
    }
    let options: DnsOptions = o.group()?;
    o.finish()?;
    let dns = Dns {
        servers,
        rules,
        options,
    };
    // With a server or rule left out, indices and "the first server" would be wrong.
    if ctx.errors.len() == errors_before {
        check(&o, &dns)?;
    }
    Ok(dns)
}

/// Cross-field checks Go's DNS router makes when it is built.
fn check(o: &Obj<'_>, dns: &Dns) -> Result<(), DecodeError> {
    use super::dns_server::DnsServerKind;
    let fakeips: Vec<usize> = dns
        .servers
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.kind, DnsServerKind::FakeIp(_)))
        .map(|(i, _)| i)
        .collect();
    if let Some(second) = fakeips.get(1) {
        return Err(o.error_at(
            "servers",
            format!("servers[{second}]: multiple fakeip server are not supported"),
        ));
    }
    let default = if dns.options.final_.is_empty() {
        dns.servers.first()
    } else {
        dns.servers
            .iter()
            .enumerate()
            .find(|(i, s)| super::config::effective_tag(Some(&s.tag), *i) == dns.options.final_)
            .map(|(_, s)| s)
    };
    if let Some(DnsServerKind::FakeIp(_)) = default.map(|s| &s.kind) {
        let key = if dns.options.final_.is_empty() {
            "servers"
        } else {
            "final"
        };
        return Err(o.error_at(key, "default server cannot be fakeip"));
    }
    if dns.options.optimistic.is_some_and(|op| op.0.enabled) && dns.options.disable_expire {
        return Err(o.error_at(
            "optimistic",
            "`optimistic` is conflict with `disable_expire`",
        ));
    }
    let mut evaluated: Vec<&str> = Vec::new();
    for (i, rule) in dns.rules.iter().enumerate() {
        let at = |msg: &str| o.error_at("rules", format!("rules[{i}]: {msg}"));
        for tag in match_response_tags(&rule.matcher) {
            if !evaluated.contains(&tag) {
                return Err(at(&format!("undefined evaluate tag: {tag}")));
            }
        }
        if let DnsAction::Evaluate(e, _) = &rule.action {
            if !e.tag.is_empty() {
                evaluated.push(&e.tag);
            }
        }
        let race = match &rule.action {
            DnsAction::Route(_, opts)
            | DnsAction::RouteOptions(opts)
            | DnsAction::Evaluate(_, opts) => opts.race,
            DnsAction::Reject(r) => r.race,
            DnsAction::Predefined(p) => p.race,
            DnsAction::Respond => false,
        };
        if race && !matcher_has_match_response(&rule.matcher) {
            return Err(at("`race` requires `match_response`"));
        }
        if let DnsAction::Reject(r) = &rule.action {
            if r.method == super::route_rule::RejectMethod::Reply {
                return Err(at("reject method `reply` is not supported for DNS rules"));
            }
        }
    }
    Ok(())
}

/// The evaluate tags a matcher's `match_response` strings name.
fn match_response_tags(m: &DnsMatcher) -> Vec<&str> {
    match m {
        DnsMatcher::Default(d) => match &d.dns.match_response {
            Some(serde_json::Value::String(t)) if !t.is_empty() => vec![t.as_str()],
            _ => Vec::new(),
        },
        DnsMatcher::Logical { rules, .. } => rules.iter().flat_map(match_response_tags).collect(),
    }
}

fn matcher_has_match_response(m: &DnsMatcher) -> bool {
    match m {
        DnsMatcher::Default(d) => d
            .dns
            .match_response
            .as_ref()
            .is_some_and(|v| !matches!(v, serde_json::Value::Bool(false))),
        DnsMatcher::Logical { rules, .. } => rules.iter().any(matcher_has_match_response),
    }
}

impl DnsMatcher {
    fn write(&self, m: &mut Map<String, Value>) {
        match self {
            DnsMatcher::Default(r) => {
                extend_json(m, &r.core);
                extend_json(m, &r.flow);
                extend_json(m, &r.query);
                extend_json(m, &r.dns);
            }
            DnsMatcher::Logical {
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

impl Dns {
    /// The JSON object `format` writes.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "servers".into(),
            Value::Array(
                self.servers
                    .iter()
                    .map(|s| Value::Object(s.to_json()))
                    .collect(),
            ),
        );
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let mut o = Map::new();
                r.matcher.write(&mut o);
                if let DnsAction::Route(_, opts) | DnsAction::Evaluate(_, opts) = &r.action {
                    extend_json(&mut o, opts);
                }
                let (name, fields) = match &r.action {
                    DnsAction::Route(a, _) => ("route", serde_json::to_value(a).ok()),
                    DnsAction::RouteOptions(a) => ("route-options", serde_json::to_value(a).ok()),
                    DnsAction::Reject(a) => ("reject", serde_json::to_value(a).ok()),
                    DnsAction::Predefined(a) => ("predefined", serde_json::to_value(a).ok()),
                    DnsAction::Evaluate(a, _) => ("evaluate", serde_json::to_value(a).ok()),
                    DnsAction::Respond => ("respond", None),
                };
                if name != "route" {
                    o.insert("action".into(), Value::String(name.into()));
                }
                if let Some(Value::Object(f)) = fields {
                    o.extend(f);
                }
                Value::Object(o)
            })
            .collect();
        m.insert("rules".into(), Value::Array(rules));
        extend_json(&mut m, &self.options);
        m
    }
}
