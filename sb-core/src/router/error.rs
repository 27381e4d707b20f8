//! Why a rule cannot be compiled: the reason a [`super::RouterError`] gives for
//! `route.rules[i]`, also used for rule sets' rules and the DNS rules' matchers. Texts are
//! Go's where Go refuses the same rule, and pinned by the CLI's golden tests.

/// Why one rule was refused when the router was built.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A match field sb cannot evaluate yet; refused so the rule never silently (mis)matches.
    #[error("rule field {0:?} is not implemented by sb yet")]
    NotImplemented(&'static str),
    /// A DNS rule's match field sb cannot evaluate yet.
    #[error("DNS rule field {0:?} is not implemented by sb yet")]
    DnsNotImplemented(&'static str),
    /// `query_type` in a route rule set: only the DNS router could match it.
    #[error("query_type in route rule sets needs the DNS module, not implemented by sb yet")]
    QueryTypeInRuleSet,
    /// `preferred_by` names an outbound that does not exist.
    #[error("outbound not found: {0}")]
    OutboundNotFound(String),
    /// `preferred_by` names an outbound that has no preferred routes (Go's text).
    #[error("outbound type does not support preferred routes: {0}")]
    NoPreferredRoutes(&'static str),
    /// `rule_set` names a set that does not exist.
    #[error("rule-set not found: {0}")]
    RuleSetNotFound(String),
    /// A `domain_regex` or `process_path_regex` does not compile (sb-config checked each
    /// one; the set of them can still exceed the regex size limit).
    #[error(transparent)]
    Regex(#[from] regex::Error),
    /// The `domain_keyword` automaton could not be built.
    #[error(transparent)]
    Keywords(#[from] aho_corasick::BuildError),
    /// A rule inside a rule set, by its index there.
    #[error("rules[{index}]: {reason}")]
    InRuleSet {
        /// The rule's index in the set.
        index: usize,
        /// What is wrong with it.
        reason: Box<RuleError>,
    },
}
