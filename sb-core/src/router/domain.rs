//! Domain matching compiled once: exact names in a hash set, suffixes looked up label by
//! label, keywords in one Aho-Corasick automaton, regexes in one `RegexSet`. A lookup costs a
//! few hash probes per label, whatever the number of rules.

use aho_corasick::AhoCorasick;
use regex::RegexSet;
use std::collections::HashSet;

/// The domain fields of one rule (`domain`, `domain_suffix`, `domain_keyword`,
/// `domain_regex`), any of which matching makes the group match.
#[derive(Debug, Default)]
pub struct DomainMatcher {
    exact: HashSet<String>,
    /// `x` in `domain_suffix`: matches `x` and any `*.x`.
    suffix: HashSet<String>,
    /// `.x` in `domain_suffix`: matches only subdomains of `x` (stored with the dot).
    dot_suffix: HashSet<String>,
    keywords: Option<AhoCorasick>,
    regexes: Option<RegexSet>,
}

fn norm(d: &str) -> String {
    d.trim_end_matches('.').to_ascii_lowercase()
}

impl DomainMatcher {
    /// Compiles the four lists. Regexes were validated by sb-config.
    pub fn new(
        exact: &[String],
        suffix: &[String],
        keyword: &[String],
        regex: &[String],
    ) -> Result<DomainMatcher, super::RuleError> {
        let mut m = DomainMatcher {
            exact: exact.iter().map(|d| norm(d)).collect(),
            ..Default::default()
        };
        for s in suffix {
            let s = norm(s);
            if s.starts_with('.') {
                m.dot_suffix.insert(s);
            } else {
                m.suffix.insert(s);
            }
        }
        if !keyword.is_empty() {
            let lowered: Vec<String> = keyword.iter().map(|k| k.to_ascii_lowercase()).collect();
            m.keywords = Some(AhoCorasick::new(lowered)?);
        }
        if !regex.is_empty() {
            m.regexes = Some(RegexSet::new(regex)?);
        }
        Ok(m)
    }

    /// True when the rule has no domain field.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.suffix.is_empty()
            && self.dot_suffix.is_empty()
            && self.keywords.is_none()
            && self.regexes.is_none()
    }

    /// Whether `domain` matches any of the fields.
    pub fn matches(&self, domain: &str) -> bool {
        let d = norm(domain);
        if self.exact.contains(&d) || self.suffix.contains(&d) {
            return true;
        }
        for (i, _) in d.match_indices('.') {
            if self.suffix.contains(&d[i + 1..]) || self.dot_suffix.contains(&d[i..]) {
                return true;
            }
        }
        if self.keywords.as_ref().is_some_and(|k| k.is_match(&d)) {
            return true;
        }
        self.regexes.as_ref().is_some_and(|r| r.is_match(&d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn suffix_semantics_follow_go() {
        let m = DomainMatcher::new(&[], &s(&["example.com", ".dot.test"]), &[], &[]).unwrap();
        assert!(m.matches("example.com"));
        assert!(m.matches("a.b.example.com"));
        assert!(!m.matches("notexample.com"));
        assert!(m.matches("x.dot.test"));
        assert!(!m.matches("dot.test"));
    }

    #[test]
    fn exact_keyword_regex() {
        let m = DomainMatcher::new(&s(&["Exact.test"]), &[], &s(&["ads"]), &s(&["^api\\d+\\."]))
            .unwrap();
        assert!(m.matches("exact.test."));
        assert!(!m.matches("a.exact.test"));
        assert!(m.matches("myads.example"));
        assert!(m.matches("api7.example"));
        assert!(!m.matches("api.example"));
    }
}
