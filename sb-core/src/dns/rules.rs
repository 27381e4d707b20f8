//! `dns.rules` compiled: the route-rule matcher (same fields, same grouping) plus the
//! DNS-only fields `query_type` and `ip_version` (4 = an A question, 6 = AAAA), then the
//! action. A query is matched as a flow whose destination is the question's name, carrying
//! the inbound, source and process of the flow that asked (none for sb's own lookups).
//! Fields sb does not evaluate yet (response matching, client-subnet matching) are refused
//! at start rather than silently never matching.

use crate::router::rule::{compile, Matcher, Probe, RuleSets};
use crate::router::RuleError;
use hickory_proto::rr::RecordType;
use sb_config::model::dns::{DnsAction, DnsMatch, DnsMatcher, DnsRule};
use sb_config::model::route_rule::{RouteMatch, RouteMatcher};
use sb_config::model::rule_match::{IpVersion, LogicalMode};

/// A compiled DNS rule matcher.
pub enum DnsMatcherC {
    /// Fields.
    Default {
        /// The route-rule fields (without `invert`, applied here over everything).
        inner: Box<Matcher>,
        /// `query_type`; empty = any.
        qtypes: Vec<u16>,
        /// `ip_version`.
        ip_version: Option<IpVersion>,
        /// Negate.
        invert: bool,
    },
    /// and/or over nested rules.
    Logical {
        /// and (true) or or.
        all: bool,
        /// Sub-rules.
        rules: Vec<DnsMatcherC>,
        /// Negate.
        invert: bool,
    },
}

/// A compiled DNS rule.
pub struct DnsRuleC {
    /// Its index in `dns.rules`.
    pub index: usize,
    /// What it matches.
    pub matcher: DnsMatcherC,
    /// What it does.
    pub action: DnsAction,
}

impl DnsMatcherC {
    /// Whether the query matches.
    pub fn matches(&self, p: &Probe<'_>, qtype: RecordType) -> bool {
        match self {
            DnsMatcherC::Default {
                inner,
                qtypes,
                ip_version,
                invert,
            } => {
                let q = u16::from(qtype);
                let hit = (qtypes.is_empty() || qtypes.contains(&q))
                    && match ip_version {
                        None => true,
                        Some(IpVersion::V4) => qtype == RecordType::A,
                        Some(IpVersion::V6) => qtype == RecordType::AAAA,
                    }
                    && inner.matches(p);
                hit != *invert
            }
            DnsMatcherC::Logical { all, rules, invert } => {
                let r = if *all {
                    rules.iter().all(|r| r.matches(p, qtype))
                } else {
                    rules.iter().any(|r| r.matches(p, qtype))
                };
                r != *invert
            }
        }
    }
}

fn unsupported(m: &DnsMatch) -> Option<&'static str> {
    let d = &m.dns;
    [
        ("query_client_subnet", !d.query_client_subnet.is_empty()),
        ("query_dnssec", d.query_dnssec),
        ("match_response", d.match_response.is_some()),
        ("ip_accept_any", d.ip_accept_any),
        (
            "rule_set_ip_cidr_accept_empty",
            d.rule_set_ip_cidr_accept_empty,
        ),
        ("response_rcode", d.response_rcode.is_some()),
        ("response_answer", !d.response_answer.is_empty()),
        ("response_ns", !d.response_ns.is_empty()),
        ("response_extra", !d.response_extra.is_empty()),
        // Address filters match the response in DNS rules (deprecated in 1.14).
        ("ip_cidr", !m.core.ip_cidr.is_empty()),
        ("ip_is_private", m.flow.ip_is_private),
        // The DNS module is built before it could ask the endpoints.
        ("preferred_by", !m.flow.preferred_by.is_empty()),
    ]
    .into_iter()
    .find(|(_, used)| *used)
    .map(|(n, _)| n)
}

/// Compiles one matcher.
pub fn compile_matcher(m: &DnsMatcher, sets: &RuleSets) -> Result<DnsMatcherC, RuleError> {
    match m {
        DnsMatcher::Default(d) => {
            if let Some(field) = unsupported(d) {
                return Err(RuleError::DnsNotImplemented(field));
            }
            let mut core = d.core.clone();
            let invert = std::mem::take(&mut core.invert);
            let mut flow = d.flow.clone();
            let ip_version = flow.ip_version.take();
            let route = RouteMatch {
                core,
                flow,
                route: Default::default(),
            };
            let scope = crate::router::rule::Scope {
                sets,
                outbounds: &Default::default(),
            };
            let inner = compile(&RouteMatcher::Default(Box::new(route)), &scope)?;
            Ok(DnsMatcherC::Default {
                inner: Box::new(inner),
                qtypes: d.query.query_type.iter().map(|q| q.0).collect(),
                ip_version,
                invert,
            })
        }
        DnsMatcher::Logical {
            mode,
            rules,
            invert,
        } => Ok(DnsMatcherC::Logical {
            all: *mode == LogicalMode::And,
            rules: rules
                .iter()
                .map(|r| compile_matcher(r, sets))
                .collect::<Result<_, _>>()?,
            invert: *invert,
        }),
    }
}

/// Compiles `dns.rules`; an error comes with the rule's index.
pub fn compile_rules(
    rules: &[DnsRule],
    sets: &RuleSets,
) -> Result<Vec<DnsRuleC>, (usize, super::RuleError)> {
    rules
        .iter()
        .enumerate()
        .map(|(index, r)| {
            match &r.action {
                DnsAction::Evaluate(..) | DnsAction::Respond => {
                    return Err((
                        index,
                        super::RuleError::ActionNotImplemented(
                            if matches!(r.action, DnsAction::Respond) {
                                "respond"
                            } else {
                                "evaluate"
                            },
                        ),
                    ))
                }
                DnsAction::Route(_, o) | DnsAction::RouteOptions(o) if o.race || o.speculative => {
                    return Err((index, super::RuleError::Race))
                }
                _ => {}
            }
            Ok(DnsRuleC {
                index,
                matcher: compile_matcher(&r.matcher, sets).map_err(|e| (index, e.into()))?,
                action: r.action.clone(),
            })
        })
        .collect()
}
