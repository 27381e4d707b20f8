//! Route rules compiled for matching. Go's grouping: the destination-address fields
//! (`domain*`, `ip_cidr`, `ip_is_private`) form one OR-group, the destination ports another,
//! the source addresses and the source ports two more; the groups and every other field are
//! ANDed; `invert` negates the whole rule; logical rules combine nested rules with and/or.

use super::cidr::{is_private, CidrSet};
use super::domain::DomainMatcher;
use super::error::RuleError;
use super::process::ProcessMatcher;
use crate::adapter::Outbound;
use crate::flow::{FlowContext, Network};
use crate::procinfo::ProcessInfo;
use arc_swap::ArcSwap;
use sb_config::model::route_rule::{RouteMatch, RouteMatcher};
use sb_config::model::rule_match::{IpVersion, LogicalMode, MatchCore, MatchFlow};
use sb_config::model::rule_set::HeadlessRule;
use sb_config::types::{Cidr, Listable, PortRange, RuleNetwork};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Rule sets by tag, compiled.
pub type RuleSets = HashMap<String, Arc<RuleSetMatcher>>;

/// Outbounds and endpoints by tag, for the rule fields that ask them (`preferred_by`).
pub type Outbounds = HashMap<String, Arc<dyn Outbound>>;

/// What rules are compiled against: the rule sets and the outbounds.
pub struct Scope<'a> {
    /// Rule sets by tag.
    pub sets: &'a RuleSets,
    /// Outbounds and endpoints by tag.
    pub outbounds: &'a Outbounds,
}

/// `preferred_by`: the outbounds asked whether they are the preferred route to a flow's
/// destination (Go's `OutboundWithPreferredRoutes`).
#[derive(Default)]
struct PreferredBy(Vec<Arc<dyn Outbound>>);

impl std::fmt::Debug for PreferredBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|o| o.tag()))
            .finish()
    }
}

impl PreferredBy {
    /// Resolves the tags with Go's errors (Go checks them when the router starts).
    fn new(tags: &[String], outbounds: &Outbounds) -> Result<PreferredBy, RuleError> {
        let mut out = Vec::with_capacity(tags.len());
        for tag in tags {
            let o = outbounds
                .get(tag)
                .ok_or_else(|| RuleError::OutboundNotFound(tag.clone()))?;
            if o.preferred_routes().is_none() {
                return Err(RuleError::NoPreferredRoutes(o.kind()));
            }
            out.push(o.clone());
        }
        Ok(PreferredBy(out))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Go's order: the flow's domain, then its IP destination, then its resolved addresses.
    fn matches(&self, p: &Probe<'_>) -> bool {
        let routes = || self.0.iter().filter_map(|o| o.preferred_routes());
        if let Some(d) = p.flow.domain() {
            if routes().any(|r| r.preferred_domain(d)) {
                return true;
            }
        }
        p.ips
            .iter()
            .any(|ip| routes().any(|r| r.preferred_address(*ip)))
    }
}

/// A compiled rule set: any of its rules matching makes it match. Local and remote sets are
/// replaced while flows are being routed (file changed, new download); a decision reads the
/// current rules once per rule set through an `ArcSwap`, which costs no lock.
#[derive(Debug)]
pub struct RuleSetMatcher {
    tag: String,
    rules: ArcSwap<Vec<Matcher>>,
}

impl RuleSetMatcher {
    /// A rule set named `tag` holding `rules` (empty until a remote set is downloaded).
    pub fn new(tag: &str, rules: Vec<Matcher>) -> RuleSetMatcher {
        RuleSetMatcher {
            tag: tag.to_string(),
            rules: ArcSwap::from_pointee(rules),
        }
    }

    /// Compiles a rule set's headless rules; an error names the rule and the field sb
    /// cannot match yet.
    pub fn compile(rules: &[HeadlessRule]) -> Result<Vec<Matcher>, RuleError> {
        rules
            .iter()
            .enumerate()
            .map(|(index, r)| {
                compile_headless(r).map_err(|e| RuleError::InRuleSet {
                    index,
                    reason: Box::new(e),
                })
            })
            .collect()
    }

    /// Swaps in new rules; flows being decided keep the rules they started with.
    pub fn replace(&self, rules: Vec<Matcher>) {
        self.rules.store(Arc::new(rules));
    }

    /// Takes `other`'s current rules (shared, not copied): a reload keeping a set.
    pub fn share_rules(&self, other: &RuleSetMatcher) {
        self.rules.store(other.rules.load_full());
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// How many top-level rules it holds now.
    pub fn len(&self) -> usize {
        self.rules.load().len()
    }

    /// True when it holds no rules (a remote set not downloaded yet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn matches(&self, f: &Probe<'_>) -> bool {
        self.rules.load().iter().any(|r| r.matches(f))
    }

    /// Whether any rule of the set matches on the flow's process.
    pub fn uses_process(&self) -> bool {
        self.rules.load().iter().any(Matcher::uses_process)
    }
}

/// A compiled rule condition.
#[derive(Debug)]
pub enum Matcher {
    /// Match fields.
    Default(Box<DefaultMatcher>),
    /// Nested rules.
    Logical {
        /// `and` (true) or `or` (false).
        all: bool,
        /// Sub-rules.
        rules: Vec<Matcher>,
        /// Negate.
        invert: bool,
    },
}

/// What a matcher looks at, taken from the flow plus router state.
pub struct Probe<'a> {
    /// The flow.
    pub flow: &'a FlowContext,
    /// The Clash API mode (`Rule`, `Direct`, ...).
    pub clash_mode: &'a str,
    /// Match rule-set CIDRs against the source instead of the destination.
    pub match_source: bool,
    /// The addresses the destination-address group checks: the flow's destination IPs, or
    /// its source address when `match_source` (computed once per decision, not per rule).
    pub ips: Vec<IpAddr>,
    /// The process that opened the flow, when it was looked up and found.
    pub process: Option<&'a ProcessInfo>,
}

impl<'a> Probe<'a> {
    /// A probe over the flow's destination addresses.
    pub fn new(flow: &'a FlowContext, clash_mode: &'a str) -> Probe<'a> {
        Probe {
            flow,
            clash_mode,
            match_source: false,
            ips: flow.ips(),
            process: flow.process.as_deref(),
        }
    }

    /// The same flow seen by a rule set with `rule_set_ip_cidr_match_source`.
    fn for_rule_set(&self, match_source: bool) -> Probe<'a> {
        Probe {
            flow: self.flow,
            clash_mode: self.clash_mode,
            match_source,
            ips: if match_source {
                vec![self.flow.source.ip()]
            } else {
                self.ips.clone()
            },
            process: self.process,
        }
    }
}

#[derive(Debug, Default)]
struct Ports {
    set: HashSet<u16>,
    ranges: Vec<(u16, u16)>,
}

impl Ports {
    fn new(ports: &Listable<u16>, ranges: &Listable<PortRange>) -> Ports {
        Ports {
            set: ports.iter().copied().collect(),
            ranges: ranges.iter().map(|r| (r.start, r.end)).collect(),
        }
    }
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.ranges.is_empty()
    }
    fn contains(&self, p: u16) -> bool {
        self.set.contains(&p) || self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&p))
    }
}

/// A default rule's fields, compiled.
#[derive(Debug, Default)]
pub struct DefaultMatcher {
    inbound: HashSet<String>,
    ip_version: Option<IpVersion>,
    network: Vec<Network>,
    auth_user: HashSet<String>,
    protocol: HashSet<String>,
    domain: DomainMatcher,
    ip_cidr: CidrSet,
    ip_is_private: bool,
    port: Ports,
    source_ip_cidr: CidrSet,
    source_ip_is_private: bool,
    source_port: Ports,
    clash_mode: Option<String>,
    rule_sets: Vec<Arc<RuleSetMatcher>>,
    rule_set_match_source: bool,
    process: ProcessMatcher,
    preferred_by: PreferredBy,
    invert: bool,
}

fn nets(list: &Listable<Cidr>) -> Vec<ipnet::IpNet> {
    list.iter().map(|c| c.net).collect()
}

fn strings(list: &Listable<String>) -> Vec<String> {
    list.0.clone()
}

/// Fields sb cannot match yet; a rule using them is refused at start rather than silently
/// never (or always) matching.
fn unsupported(core: &MatchCore, flow: Option<&MatchFlow>) -> Option<&'static str> {
    let mut names = vec![
        ("package_name", !core.package_name.is_empty()),
        ("package_name_regex", !core.package_name_regex.is_empty()),
        ("network_type", !core.network_type.is_empty()),
        ("network_is_expensive", core.network_is_expensive),
        ("network_is_constrained", core.network_is_constrained),
        ("wifi_ssid", !core.wifi_ssid.is_empty()),
        ("wifi_bssid", !core.wifi_bssid.is_empty()),
        (
            "network_interface_address",
            !core.network_interface_address.is_empty(),
        ),
        (
            "default_interface_address",
            !core.default_interface_address.is_empty(),
        ),
    ];
    if let Some(f) = flow {
        names.extend([
            ("interface_address", !f.interface_address.is_empty()),
            ("source_mac_address", !f.source_mac_address.is_empty()),
            ("source_hostname", !f.source_hostname.is_empty()),
        ]);
    }
    names.into_iter().find(|(_, used)| *used).map(|(n, _)| n)
}

fn compile_core(m: &mut DefaultMatcher, core: &MatchCore) -> Result<(), RuleError> {
    m.network = core
        .network
        .iter()
        .map(|n| match n {
            RuleNetwork::Tcp => Network::Tcp,
            RuleNetwork::Udp => Network::Udp,
            RuleNetwork::Icmp => Network::Icmp,
        })
        .collect();
    m.domain = DomainMatcher::new(
        &strings(&core.domain),
        &strings(&core.domain_suffix),
        &strings(&core.domain_keyword),
        &strings(&core.domain_regex),
    )?;
    m.ip_cidr = CidrSet::new(&nets(&core.ip_cidr));
    m.source_ip_cidr = CidrSet::new(&nets(&core.source_ip_cidr));
    m.port = Ports::new(&core.port, &core.port_range);
    m.source_port = Ports::new(&core.source_port, &core.source_port_range);
    m.process = ProcessMatcher::new(
        &core.process_name,
        &core.process_path,
        &core.process_path_regex,
    )?;
    m.invert = core.invert;
    Ok(())
}

/// Compiles a route rule's matcher.
pub fn compile(m: &RouteMatcher, scope: &Scope<'_>) -> Result<Matcher, RuleError> {
    match m {
        RouteMatcher::Default(r) => {
            compile_default(r, scope).map(|d| Matcher::Default(Box::new(d)))
        }
        RouteMatcher::Logical {
            mode,
            rules,
            invert,
        } => Ok(Matcher::Logical {
            all: *mode == LogicalMode::And,
            rules: rules
                .iter()
                .map(|r| compile(r, scope))
                .collect::<Result<_, _>>()?,
            invert: *invert,
        }),
    }
}

fn compile_default(r: &RouteMatch, scope: &Scope<'_>) -> Result<DefaultMatcher, RuleError> {
    if let Some(field) = unsupported(&r.core, Some(&r.flow)) {
        return Err(RuleError::NotImplemented(field));
    }
    if !r.route.client.is_empty() {
        return Err(RuleError::NotImplemented("client"));
    }
    let mut m = DefaultMatcher::default();
    compile_core(&mut m, &r.core)?;
    let f = &r.flow;
    m.inbound = f.inbound.iter().cloned().collect();
    m.ip_version = f.ip_version;
    m.auth_user = f.auth_user.iter().cloned().collect();
    m.protocol = f
        .protocol
        .iter()
        .map(|p| format!("{p:?}").to_ascii_lowercase())
        .collect();
    m.ip_is_private = f.ip_is_private;
    m.source_ip_is_private = f.source_ip_is_private;
    m.clash_mode = (!f.clash_mode.is_empty()).then(|| f.clash_mode.to_ascii_lowercase());
    m.rule_set_match_source = f.rule_set_ip_cidr_match_source;
    m.process = std::mem::take(&mut m.process).with_users(&f.user, &f.user_id);
    m.preferred_by = PreferredBy::new(&f.preferred_by.0, scope.outbounds)?;
    for tag in f.rule_set.iter() {
        let set = scope
            .sets
            .get(tag)
            .ok_or_else(|| RuleError::RuleSetNotFound(tag.clone()))?;
        m.rule_sets.push(set.clone());
    }
    Ok(m)
}

fn compile_headless(r: &HeadlessRule) -> Result<Matcher, RuleError> {
    match r {
        HeadlessRule::Default(h) => {
            if let Some(field) = unsupported(&h.core, None) {
                return Err(RuleError::NotImplemented(field));
            }
            if !h.query.query_type.is_empty() {
                return Err(RuleError::QueryTypeInRuleSet);
            }
            let mut m = DefaultMatcher::default();
            compile_core(&mut m, &h.core)?;
            Ok(Matcher::Default(Box::new(m)))
        }
        HeadlessRule::Logical {
            mode,
            rules,
            invert,
        } => Ok(Matcher::Logical {
            all: *mode == LogicalMode::And,
            rules: rules
                .iter()
                .map(compile_headless)
                .collect::<Result<_, _>>()?,
            invert: *invert,
        }),
    }
}

impl Matcher {
    /// Whether the flow matches.
    pub fn matches(&self, p: &Probe<'_>) -> bool {
        match self {
            Matcher::Default(d) => d.matches(p) != d.invert,
            Matcher::Logical { all, rules, invert } => {
                let r = if *all {
                    rules.iter().all(|r| r.matches(p))
                } else {
                    rules.iter().any(|r| r.matches(p))
                };
                r != *invert
            }
        }
    }

    /// Whether the rule, a nested rule or a rule set it names matches on the flow's process
    /// (then the process is looked up before routing).
    pub fn uses_process(&self) -> bool {
        match self {
            Matcher::Default(d) => {
                !d.process.is_empty() || d.rule_sets.iter().any(|s| s.uses_process())
            }
            Matcher::Logical { rules, .. } => rules.iter().any(Matcher::uses_process),
        }
    }
}

fn ip_matches(ips: &[IpAddr], set: &CidrSet, private: bool) -> bool {
    ips.iter()
        .any(|ip| set.contains(*ip) || (private && is_private(*ip)))
}

impl DefaultMatcher {
    fn matches(&self, p: &Probe<'_>) -> bool {
        let f = p.flow;
        // sb's own flows came through no inbound: their tag is a label, never an inbound's.
        if !self.inbound.is_empty() && (f.is_internal() || !self.inbound.contains(&*f.inbound_tag))
        {
            return false;
        }
        if !self.network.is_empty() && !self.network.contains(&f.network) {
            return false;
        }
        if let Some(v) = self.ip_version {
            let want_v4 = v == IpVersion::V4;
            if p.ips.is_empty() || p.ips.iter().any(|ip| ip.is_ipv4() != want_v4) {
                return false;
            }
        }
        if !self.auth_user.is_empty()
            && !f.user.as_ref().is_some_and(|u| self.auth_user.contains(u))
        {
            return false;
        }
        if !self.protocol.is_empty() && !f.protocol.is_some_and(|p| self.protocol.contains(p)) {
            return false;
        }
        if let Some(mode) = &self.clash_mode {
            if !p.clash_mode.eq_ignore_ascii_case(mode) {
                return false;
            }
        }
        // Destination address group (the source address for a rule set with
        // `rule_set_ip_cidr_match_source`, where domains do not take part).
        if !self.domain.is_empty() || !self.ip_cidr.is_empty() || self.ip_is_private {
            let by_domain = !p.match_source && f.domain().is_some_and(|d| self.domain.matches(d));
            if !by_domain && !ip_matches(&p.ips, &self.ip_cidr, self.ip_is_private) {
                return false;
            }
        }
        if !self.port.is_empty() && !self.port.contains(f.destination.port) {
            return false;
        }
        if (!self.source_ip_cidr.is_empty() || self.source_ip_is_private)
            && !ip_matches(
                &[f.source.ip()],
                &self.source_ip_cidr,
                self.source_ip_is_private,
            )
        {
            return false;
        }
        if !self.source_port.is_empty() && !self.source_port.contains(f.source.port()) {
            return false;
        }
        if !self.process.matches(p.process) {
            return false;
        }
        if !self.preferred_by.is_empty() && !self.preferred_by.matches(p) {
            return false;
        }
        if !self.rule_sets.is_empty() {
            let probe = p.for_rule_set(self.rule_set_match_source);
            if !self.rule_sets.iter().any(|s| s.matches(&probe)) {
                return false;
            }
        }
        true
    }
}
