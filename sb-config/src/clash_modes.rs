//! The Clash API's mode list, worked out from the config as Go 1.14.4 does: `default_mode`
//! (else `Rule`) and every `clash_mode` a route or DNS rule matches on, logical rules
//! included. The runtime's mode holder and the cache file take it from here; the Clash API
//! shows it as `/configs`' `mode-list`, which dashboards offer as their mode buttons.

use crate::model::dns::DnsMatcher;
use crate::model::route_rule::RouteMatcher;
use crate::Config;

/// The modes Go lists last, in this order, after the others sorted (byte order, so
/// `direct` written in lower case is not one of them). Observed with the Go binary.
const WELL_KNOWN: [&str; 3] = ["Rule", "Global", "Direct"];

/// The mode an instance starts in: `clash_api.default_mode`, `Rule` when empty.
pub fn default_mode(config: &Config) -> String {
    config
        .experimental
        .as_ref()
        .and_then(|e| e.clash_api.as_ref())
        .map(|c| c.default_mode.as_str())
        .filter(|m| !m.is_empty())
        .unwrap_or("Rule")
        .to_string()
}

/// The mode list: the default mode first unless a rule spells it exactly so, then the
/// rules' modes — the unusual ones sorted, then `Rule`, `Global`, `Direct`.
pub fn mode_list(config: &Config) -> Vec<String> {
    let mut used = Vec::new();
    if let Some(route) = &config.route {
        for rule in &route.rules {
            route_modes(&rule.matcher, &mut used);
        }
    }
    if let Some(dns) = &config.dns {
        for rule in &dns.rules {
            dns_modes(&rule.matcher, &mut used);
        }
    }
    used.sort();
    used.dedup();
    let (known, mut list): (Vec<String>, Vec<String>) = used
        .into_iter()
        .partition(|m| WELL_KNOWN.contains(&m.as_str()));
    list.extend(
        WELL_KNOWN
            .iter()
            .filter(|k| known.iter().any(|m| m == *k))
            .map(|k| k.to_string()),
    );
    let default = default_mode(config);
    if !list.contains(&default) {
        list.insert(0, default);
    }
    list
}

fn route_modes(m: &RouteMatcher, out: &mut Vec<String>) {
    match m {
        RouteMatcher::Default(d) if !d.flow.clash_mode.is_empty() => {
            out.push(d.flow.clash_mode.clone())
        }
        RouteMatcher::Default(_) => {}
        RouteMatcher::Logical { rules, .. } => rules.iter().for_each(|r| route_modes(r, out)),
    }
}

fn dns_modes(m: &DnsMatcher, out: &mut Vec<String>) {
    match m {
        DnsMatcher::Default(d) if !d.flow.clash_mode.is_empty() => {
            out.push(d.flow.clash_mode.clone())
        }
        DnsMatcher::Default(_) => {}
        DnsMatcher::Logical { rules, .. } => rules.iter().for_each(|r| dns_modes(r, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(default: &str, route: &[&str], dns: &[&str]) -> Config {
        let rules = |modes: &[&str], extra: &str| {
            modes
                .iter()
                .map(|m| format!(r#"{{"clash_mode":"{m}"{extra}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let text = format!(
            r#"{{"outbounds":[{{"type":"direct","tag":"direct"}}],
               "route":{{"rules":[{}]}},
               "dns":{{"servers":[{{"type":"local","tag":"l"}}],"rules":[{}]}},
               "experimental":{{"clash_api":{{"external_controller":"127.0.0.1:0","default_mode":"{default}"}}}}}}"#,
            rules(route, r#","outbound":"direct""#),
            rules(dns, r#","server":"l""#),
        );
        crate::load_text("c.json", &text).unwrap().config
    }

    fn list(default: &str, route: &[&str], dns: &[&str]) -> Vec<String> {
        mode_list(&config(default, route, dns))
    }

    // Each expectation was read from Go 1.14.4's `GET /configs` with the same rules.
    #[test]
    fn orders_like_go() {
        assert_eq!(
            list(
                "Global",
                &["Alpha", "Direct", "Global", "Beta"],
                &["DnsOnly"]
            ),
            ["Alpha", "Beta", "DnsOnly", "Global", "Direct"]
        );
        assert_eq!(
            list("Zed", &["Direct", "Rule"], &["DnsOnly"]),
            ["Zed", "DnsOnly", "Rule", "Direct"]
        );
        assert_eq!(
            list("", &["direct", "Rule"], &["DnsOnly"]),
            ["DnsOnly", "direct", "Rule"]
        );
        assert_eq!(list("rule", &[], &["DnsOnly"]), ["rule", "DnsOnly"]);
        assert_eq!(list("rule", &["Rule"], &[]), ["rule", "Rule"]);
        assert_eq!(list("", &[], &[]), ["Rule"]);
    }

    #[test]
    fn logical_rules_count_and_the_default_is_rule() {
        let c = crate::load_text(
            "c.json",
            r#"{"route":{"rules":[{"type":"logical","mode":"and","rules":[{"clash_mode":"Zeta"},{"port":80}],"outbound":"direct"}]},
                "outbounds":[{"type":"direct","tag":"direct"}]}"#,
        )
        .unwrap()
        .config;
        assert_eq!(default_mode(&c), "Rule");
        assert_eq!(mode_list(&c), ["Rule", "Zeta"]);
    }
}
