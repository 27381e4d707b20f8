//! The process fields of a rule (`process_name`, `process_path`, `process_path_regex`, `user`,
//! `user_id`), compiled once. Each field present must match, as Go ANDs them with the rest of
//! the rule; a flow whose process is unknown (remote client, search failed) matches none.

use crate::procinfo::ProcessInfo;
use regex::RegexSet;
use sb_config::types::Listable;
use std::collections::HashSet;

/// A rule's process fields.
#[derive(Debug, Default)]
pub struct ProcessMatcher {
    name: HashSet<String>,
    path: HashSet<String>,
    path_regex: Option<RegexSet>,
    user: HashSet<String>,
    user_id: HashSet<u32>,
    /// `user_id` was set; it stays a condition even if no listed id is a valid uid.
    has_user_id: bool,
}

impl ProcessMatcher {
    /// Compiles the fields every rule kind has (headless rules included).
    pub fn new(
        name: &Listable<String>,
        path: &Listable<String>,
        path_regex: &Listable<String>,
    ) -> Result<ProcessMatcher, super::RuleError> {
        let path_regex = if path_regex.is_empty() {
            None
        } else {
            Some(RegexSet::new(path_regex.iter())?)
        };
        Ok(ProcessMatcher {
            name: name.iter().cloned().collect(),
            path: path.iter().cloned().collect(),
            path_regex,
            ..Default::default()
        })
    }

    /// Adds the route-rule-only fields. A uid outside `u32` (Go reads `int32`) can never match.
    pub fn with_users(mut self, user: &Listable<String>, user_id: &Listable<i64>) -> Self {
        self.user = user.iter().cloned().collect();
        self.user_id = user_id
            .iter()
            .filter_map(|&id| u32::try_from(id).ok())
            .collect();
        self.has_user_id = !user_id.is_empty();
        self
    }

    /// True when the rule has no process field.
    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
            && self.path.is_empty()
            && self.path_regex.is_none()
            && self.user.is_empty()
            && !self.has_user_id
    }

    /// Whether every process field present matches `process`.
    pub fn matches(&self, process: Option<&ProcessInfo>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(p) = process else {
            return false;
        };
        let path = p.path.as_deref();
        (self.name.is_empty() || p.name.as_ref().is_some_and(|n| self.name.contains(n)))
            && (self.path.is_empty() || path.is_some_and(|x| self.path.contains(x)))
            && self
                .path_regex
                .as_ref()
                .is_none_or(|r| path.is_some_and(|x| r.is_match(x)))
            && (self.user.is_empty() || p.user.as_ref().is_some_and(|u| self.user.contains(u)))
            && (!self.has_user_id || self.user_id.contains(&p.uid))
    }
}
