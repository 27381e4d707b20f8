//! The rule router: route rules compiled once at start, evaluated in order for each flow.
//! The router only decides; the dispatcher carries out actions (sniff, resolve, reject,
//! route) and asks again from the next rule after a non-final action.

mod cidr;
mod domain;
mod error;
mod process;
pub mod rule;

pub use cidr::{is_private, CidrSet};
pub use domain::DomainMatcher;
pub use error::RuleError;

use crate::flow::FlowContext;
use rule::{Matcher, Outbounds, Probe, RuleSets};
use sb_config::model::route::Route;
use sb_config::model::route_rule::RouteAction;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One compiled rule.
#[derive(Debug)]
pub struct CompiledRule {
    /// Position in `route.rules` (Go logs `match[N]`).
    pub index: usize,
    /// The condition.
    pub matcher: Matcher,
    /// The action.
    pub action: RouteAction,
    /// Go-style description for logs and the Clash API (`ip_cidr=10.0.0.0/8 port=80`).
    pub description: String,
}

/// The Clash API mode, shared with the API and the DNS rules: read per flow and per query,
/// so a switch re-evaluates `clash_mode` rules for every new flow and lookup.
#[derive(Debug)]
pub struct ClashMode {
    current: RwLock<String>,
    /// The modes the API may switch to (see `sb_config::clash_modes`); empty = any.
    list: Vec<String>,
    /// How many times the API switched it (the cache file stores the mode only then).
    switches: AtomicU64,
}

impl ClashMode {
    /// A mode holder that takes any mode.
    pub fn new(initial: &str) -> ClashMode {
        ClashMode::with_list(initial, Vec::new())
    }
    /// A mode holder limited to `list` (Go's mode list, which holds `initial`).
    pub fn with_list(initial: &str, list: Vec<String>) -> ClashMode {
        ClashMode {
            current: RwLock::new(initial.to_string()),
            list,
            switches: AtomicU64::new(0),
        }
    }
    /// The current mode.
    pub fn get(&self) -> String {
        self.current.read().map(|m| m.clone()).unwrap_or_default()
    }
    /// The modes it may take.
    pub fn list(&self) -> &[String] {
        &self.list
    }
    /// Switches the mode, unchecked (tests, restoring).
    pub fn set(&self, mode: &str) {
        if let Ok(mut m) = self.current.write() {
            *m = mode.to_string();
        }
    }
    /// The listed spelling of `mode`: an exact match, else the first case-insensitive one.
    pub fn canonical(&self, mode: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|m| *m == mode)
            .or_else(|| self.list.iter().find(|m| m.eq_ignore_ascii_case(mode)))
            .map(String::as_str)
    }
    /// The API's switch (Go's `SetMode`): `mode` is looked up in the list; an unknown mode
    /// or the current one changes nothing. Returns the new mode when it changed.
    pub fn switch(&self, mode: &str) -> Option<String> {
        let next = self.canonical(mode)?.to_string();
        let mut m = self.current.write().ok()?;
        if *m == next {
            return None;
        }
        m.clone_from(&next);
        self.switches.fetch_add(1, Ordering::AcqRel);
        Some(next)
    }
    /// Whether the API ever switched the mode.
    pub fn switched(&self) -> bool {
        self.switches.load(Ordering::Acquire) > 0
    }
}

/// An error building the router, naming the rule.
#[derive(Debug, thiserror::Error)]
#[error("route.rules[{index}]: {reason}")]
pub struct RouterError {
    /// The rule index (or rule-set index for rule sets).
    pub index: usize,
    /// What is wrong.
    pub reason: RuleError,
}

/// The compiled `route` section.
#[derive(Debug)]
pub struct Router {
    rules: Vec<CompiledRule>,
    /// `route.final`, when set.
    pub final_outbound: Option<String>,
    /// The Clash API mode.
    pub mode: Arc<ClashMode>,
    needs_process: bool,
}

impl Router {
    /// Compiles the route section (absent = no rules). `sets` are the rule sets, built and
    /// kept up to date by [`crate::ruleset::RuleSets`].
    pub fn new(
        route: Option<&Route>,
        mode: Arc<ClashMode>,
        sets: &RuleSets,
    ) -> Result<Router, RouterError> {
        Router::with_outbounds(route, mode, sets, &Outbounds::new())
    }

    /// Compiles the route section with the built outbounds and endpoints, which rules that
    /// ask them (`preferred_by`) resolve at once.
    pub fn with_outbounds(
        route: Option<&Route>,
        mode: Arc<ClashMode>,
        sets: &RuleSets,
        outbounds: &Outbounds,
    ) -> Result<Router, RouterError> {
        let scope = rule::Scope { sets, outbounds };
        let Some(route) = route else {
            return Ok(Router {
                rules: Vec::new(),
                final_outbound: None,
                mode,
                needs_process: false,
            });
        };
        let mut rules = Vec::with_capacity(route.rules.len());
        for (index, r) in route.rules.iter().enumerate() {
            let matcher = rule::compile(&r.matcher, &scope)
                .map_err(|reason| RouterError { index, reason })?;
            let description = describe(&r.to_json());
            rules.push(CompiledRule {
                index,
                matcher,
                action: r.action.clone(),
                description,
            });
        }
        let final_outbound = Some(route.options.final_.clone()).filter(|f| !f.is_empty());
        // As in Go, any rule set with a process rule turns the search on, referenced or not.
        let needs_process = route.options.find_process
            || sets.values().any(|s| s.uses_process())
            || rules.iter().any(|r| r.matcher.uses_process());
        Ok(Router {
            rules,
            final_outbound,
            mode,
            needs_process,
        })
    }

    /// Whether flows' processes must be looked up before routing: `route.find_process`, or a
    /// rule (nested or in a rule set) matching on `process_*`, `user` or `user_id`.
    pub fn needs_process(&self) -> bool {
        self.needs_process
    }

    /// The first rule at or after `from` that matches the flow.
    pub fn first_match(&self, flow: &FlowContext, from: usize) -> Option<&CompiledRule> {
        let mode = self.mode.get();
        let probe = Probe::new(flow, &mode);
        self.rules
            .iter()
            .skip(from)
            .find(|r| r.matcher.matches(&probe))
    }

    /// All rules, for the Clash API.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }
}

/// A rule as Go prints it in `match[N] ... => action` and the Clash API's `/rules`: a default
/// rule's `key=value` pairs, a logical rule's sub-rules joined by `&&` or `||`, an inverted
/// one wrapped in `!(…)`.
fn describe(rule: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut rule = rule.clone();
    let invert = rule.remove("invert") == Some(serde_json::Value::Bool(true));
    let text = if rule.get("type").and_then(|t| t.as_str()) == Some("logical") {
        let op = match rule.get("mode").and_then(|m| m.as_str()) {
            Some("or") => " || ",
            _ => " && ",
        };
        let subs: Vec<String> = rule
            .get("rules")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_object())
                    .map(describe)
                    .collect()
            })
            .unwrap_or_default();
        subs.join(op)
    } else {
        describe_fields(&rule)
    };
    if invert {
        format!("!({text})")
    } else {
        text
    }
}

/// `key=value` pairs of a default rule's match fields.
fn describe_fields(rule: &serde_json::Map<String, serde_json::Value>) -> String {
    const ACTION_KEYS: &[&str] = &[
        "action",
        "outbound",
        "method",
        "no_drop",
        "sniffer",
        "timeout",
        "server",
        "strategy",
        "override_address",
        "override_port",
        "udp_timeout",
        "fallback_delay",
    ];
    let mut v = serde_json::Value::Object(rule.clone());
    sb_config::format::prune(&mut v);
    let serde_json::Value::Object(m) = v else {
        return String::new();
    };
    m.iter()
        .filter(|(k, _)| !ACTION_KEYS.contains(&k.as_str()))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            serde_json::Value::Array(a) => {
                let items: Vec<String> = a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect();
                format!("{k}=[{}]", items.join(" "))
            }
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::ClashMode;

    #[test]
    fn the_api_switches_within_the_list_case_insensitively() {
        let list = ["Rule", "direct", "Direct", "Global"]
            .map(String::from)
            .to_vec();
        let m = ClashMode::with_list("Rule", list);
        assert!(!m.switched());
        assert_eq!(m.switch("GLOBAL").as_deref(), Some("Global"));
        assert_eq!(m.switch("global"), None, "already the mode");
        assert_eq!(
            m.switch("Direct").as_deref(),
            Some("Direct"),
            "exact spelling first"
        );
        assert_eq!(m.switch("direct").as_deref(), Some("direct"));
        assert_eq!(m.switch("Unknown"), None);
        assert_eq!(m.get(), "direct");
        assert!(m.switched());
    }
}
