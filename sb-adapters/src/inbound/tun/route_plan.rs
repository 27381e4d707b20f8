//! `auto_route`'s plan: the policy rules and table routes Go sing-box 1.14 installs for a
//! TUN on Linux, computed from the options alone (no kernel access), so the exact layout is
//! unit-tested here and `auto_route.rs` only has to send it over netlink.
//!
//! The layout (observed from Go, rule priorities from `iproute2_rule_index` P, table T):
//! optional interface and uid rules first (each shifts the rest), then for IPv4
//! `to <tun prefix> lookup T`, `lookup T suppress_prefixlength 0`,
//! `not dport 53 lookup main suppress_prefixlength 0` + `iif <tun> goto P+10`,
//! `not iif lo lookup T` + `from 0.0.0.0 iif lo lookup T` + `from <tun prefix> iif lo lookup T`;
//! for IPv6 the same without the `to` rule, with `from ::/1|8000::/1 iif lo goto P+10` and a
//! final `lookup T`; and `nop` at P+10 as the goto target. Table T holds one default route
//! (or the `route_address` prefixes minus `route_exclude_address`) via the TUN prefix's next
//! address. A family without a TUN address gets no rules, or with `strict_route` one
//! `unreachable` rule, so its traffic cannot leave outside the TUN.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The options that shape the plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteOptions {
    /// Table for the TUN routes (`iproute2_table_index`, default 2022).
    pub table: u32,
    /// First rule priority (`iproute2_rule_index`, default 9000); P+10 is the `nop` anchor.
    pub rule_index: u32,
    /// `strict_route`.
    pub strict: bool,
    /// `route_address`: only these prefixes go to the TUN (per family; none: default).
    pub route_address: Vec<(IpAddr, u8)>,
    /// `route_exclude_address`: removed from the routed prefixes.
    pub route_exclude_address: Vec<(IpAddr, u8)>,
    /// `include_interface`: only traffic arriving on these interfaces is routed.
    pub include_interface: Vec<String>,
    /// `exclude_interface`: traffic arriving on these is not routed.
    pub exclude_interface: Vec<String>,
    /// `include_uid` + `include_uid_range`, inclusive ranges.
    pub include_uid: Vec<(u32, u32)>,
    /// `exclude_uid` + `exclude_uid_range`, inclusive ranges.
    pub exclude_uid: Vec<(u32, u32)>,
}

/// What a rule does once it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `lookup <table>`.
    Lookup(u32),
    /// `goto <priority>`.
    Goto(u32),
    /// `nop`: matches and continues (a goto target).
    Nop,
    /// `unreachable`.
    Unreachable,
}

/// One policy rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Priority.
    pub priority: u32,
    /// `not`: the selectors are inverted.
    pub invert: bool,
    /// `from` prefix.
    pub from: Option<(IpAddr, u8)>,
    /// `to` prefix.
    pub to: Option<(IpAddr, u8)>,
    /// `iif` interface.
    pub iif: Option<String>,
    /// `uidrange` (inclusive).
    pub uid: Option<(u32, u32)>,
    /// `dport 53`.
    pub dport_dns: bool,
    /// `suppress_prefixlength 0`.
    pub suppress_default: bool,
    /// The action.
    pub action: Action,
}

/// One route in the TUN table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub dst: (IpAddr, u8),
    /// Gateway: the next address of the TUN prefix.
    pub via: IpAddr,
}

/// The whole plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Rules in install order (the kernel keeps insertion order within a priority).
    pub rules: Vec<Rule>,
    /// Routes for table `table`.
    pub routes: Vec<Route>,
}

/// The highest uid Go's include complement reaches (`(uid_t)-1` is "no uid").
const MAX_UID: u32 = u32::MAX - 1;

impl Rule {
    fn new(v6: bool, priority: u32, action: Action) -> Rule {
        Rule {
            v6,
            priority,
            invert: false,
            from: None,
            to: None,
            iif: None,
            uid: None,
            dport_dns: false,
            suppress_default: false,
            action,
        }
    }
}

/// The network of `addr/len` (host bits cleared).
pub fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// The address after the TUN address (the routes' gateway, as Go picks it: 172.19.0.1/30 gives 172.19.0.2).
fn next(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(1))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(1))),
    }
}

/// The inclusive uid ranges not covered by `include` (within 0..=MAX_UID).
fn uid_complement(include: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut sorted: Vec<(u32, u32)> = include.to_vec();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut start: u64 = 0;
    for (a, b) in sorted {
        if u64::from(a) > start {
            out.push((start as u32, a - 1));
        }
        start = start.max(u64::from(b) + 1);
    }
    if start <= u64::from(MAX_UID) {
        out.push((start as u32, MAX_UID));
    }
    out
}

/// Prefixes as (value, length) in a `bits`-wide space.
type Cidr = (u128, u8);

fn contains(outer: Cidr, inner: Cidr, bits: u8) -> bool {
    outer.1 <= inner.1 && (outer.0 ^ inner.0) & prefix_mask(outer.1, bits) == 0
}

fn prefix_mask(len: u8, bits: u8) -> u128 {
    let full = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    full & !(full.checked_shr(u32::from(len)).unwrap_or(0))
}

/// `include` minus `exclude` as the fewest prefixes, in address order (Go's complement).
fn subtract(include: Cidr, exclude: &[Cidr], bits: u8) -> Vec<Cidr> {
    if exclude.iter().any(|e| contains(*e, include, bits)) {
        return Vec::new();
    }
    let overlaps = exclude.iter().any(|e| contains(include, *e, bits));
    if !overlaps || include.1 >= bits {
        return vec![include];
    }
    let half = include.1 + 1;
    let high = 1u128 << (bits - half);
    let mut out = subtract((include.0, half), exclude, bits);
    out.extend(subtract((include.0 | high, half), exclude, bits));
    out
}

fn to_cidr(p: (IpAddr, u8)) -> Cidr {
    match network(p.0, p.1) {
        IpAddr::V4(a) => (u128::from(u32::from(a)), p.1.min(32)),
        IpAddr::V6(a) => (u128::from(a), p.1.min(128)),
    }
}

fn from_cidr(c: Cidr, v6: bool) -> (IpAddr, u8) {
    if v6 {
        (IpAddr::V6(Ipv6Addr::from(c.0)), c.1)
    } else {
        (IpAddr::V4(Ipv4Addr::from(c.0 as u32)), c.1)
    }
}

/// The routes of one family: `route_address` (or the default) minus the excludes.
fn family_routes(o: &RouteOptions, v6: bool, via: IpAddr) -> Vec<Route> {
    let bits = if v6 { 128 } else { 32 };
    let fam = |p: &&(IpAddr, u8)| p.0.is_ipv6() == v6;
    let mut include: Vec<Cidr> = o
        .route_address
        .iter()
        .filter(fam)
        .map(|p| to_cidr(*p))
        .collect();
    if include.is_empty() {
        include.push((0, 0));
    }
    let exclude: Vec<Cidr> = o
        .route_exclude_address
        .iter()
        .filter(fam)
        .map(|p| to_cidr(*p))
        .collect();
    include
        .into_iter()
        .flat_map(|c| subtract(c, &exclude, bits))
        .map(|c| Route {
            dst: from_cidr(c, v6),
            via,
        })
        .collect()
}

/// Computes the plan for a TUN named `tun` with these addresses.
pub fn plan(
    o: &RouteOptions,
    tun: &str,
    inet4: &[(Ipv4Addr, u8)],
    inet6: &[(Ipv6Addr, u8)],
) -> Plan {
    let mut out = Plan::default();
    let nop = o.rule_index.saturating_add(10);
    for v6 in [false, true] {
        let prefixes: Vec<(IpAddr, u8)> = if v6 {
            inet6.iter().map(|(a, l)| (IpAddr::V6(*a), *l)).collect()
        } else {
            inet4.iter().map(|(a, l)| (IpAddr::V4(*a), *l)).collect()
        };
        let mut p = o.rule_index;
        let rules = &mut out.rules;
        if !o.include_interface.is_empty() {
            for name in &o.include_interface {
                let mut r = Rule::new(v6, p, Action::Goto(p + 2));
                r.iif = Some(name.clone());
                rules.push(r);
            }
            rules.push(Rule::new(v6, p + 1, Action::Goto(nop)));
            rules.push(Rule::new(v6, p + 2, Action::Nop));
            p += 3;
        } else if !o.exclude_interface.is_empty() {
            for name in &o.exclude_interface {
                let mut r = Rule::new(v6, p, Action::Goto(nop));
                r.iif = Some(name.clone());
                rules.push(r);
            }
            p += 1;
        }
        let uid_bypass: Vec<(u32, u32)> = if !o.include_uid.is_empty() {
            uid_complement(&o.include_uid)
        } else {
            o.exclude_uid.clone()
        };
        if !uid_bypass.is_empty() {
            for range in uid_bypass {
                let mut r = Rule::new(v6, p, Action::Goto(nop));
                r.uid = Some(range);
                rules.push(r);
            }
            p += 1;
        }
        let Some(&(first, _)) = prefixes.first() else {
            if o.strict {
                rules.push(Rule::new(v6, p, Action::Unreachable));
            }
            continue;
        };
        let table = Action::Lookup(o.table);
        if !v6 {
            for &(a, l) in &prefixes {
                let mut r = Rule::new(v6, p, table);
                r.to = Some((network(a, l), l));
                rules.push(r);
            }
            p += 1;
        }
        let mut r = Rule::new(v6, p, table);
        r.suppress_default = true;
        rules.push(r);
        p += 1;
        let mut r = Rule::new(v6, p, Action::Lookup(254));
        (r.invert, r.dport_dns, r.suppress_default) = (true, true, true);
        rules.push(r);
        if v6 {
            for &(a, l) in &prefixes {
                let mut r = Rule::new(v6, p, table);
                (r.from, r.iif) = (Some((network(a, l), l)), Some("lo".into()));
                rules.push(r);
            }
        } else {
            let mut r = Rule::new(v6, p, Action::Goto(nop));
            r.iif = Some(tun.into());
            rules.push(r);
        }
        p += 1;
        if v6 {
            let mut r = Rule::new(v6, p, Action::Goto(nop));
            r.iif = Some(tun.into());
            rules.push(r);
            for half in [Ipv6Addr::UNSPECIFIED, Ipv6Addr::from(1u128 << 127)] {
                let mut r = Rule::new(v6, p, Action::Goto(nop));
                (r.from, r.iif) = (Some((IpAddr::V6(half), 1)), Some("lo".into()));
                rules.push(r);
            }
            p += 1;
            rules.push(Rule::new(v6, p, table));
        } else {
            let mut r = Rule::new(v6, p, table);
            (r.invert, r.iif) = (true, Some("lo".into()));
            rules.push(r);
            let mut r = Rule::new(v6, p, table);
            (r.from, r.iif) = (
                Some((IpAddr::V4(Ipv4Addr::UNSPECIFIED), 32)),
                Some("lo".into()),
            );
            rules.push(r);
            for &(a, l) in &prefixes {
                let mut r = Rule::new(v6, p, table);
                (r.from, r.iif) = (Some((network(a, l), l)), Some("lo".into()));
                rules.push(r);
            }
        }
        rules.push(Rule::new(v6, nop, Action::Nop));
        let via = next(first);
        out.routes.extend(family_routes(o, v6, via));
    }
    out
}

/// The plan's rules as `ip rule show` / `ip -6 rule show` would print them (for tests and
/// logs): one family, sorted by priority, insertion order kept within a priority.
pub fn render_rules(plan: &Plan, v6: bool) -> String {
    let mut rules: Vec<&Rule> = plan.rules.iter().filter(|r| r.v6 == v6).collect();
    rules.sort_by_key(|r| r.priority);
    let mut s = String::new();
    for r in rules {
        let _ = write!(s, "{}:\t", r.priority);
        if r.invert {
            s.push_str("not ");
        }
        match r.from {
            Some((a, l)) if (a.is_ipv4() && l == 32) || (a.is_ipv6() && l == 128) => {
                let _ = write!(s, "from {a} ");
            }
            Some((a, l)) => {
                let _ = write!(s, "from {a}/{l} ");
            }
            None => s.push_str("from all "),
        }
        if let Some((a, l)) = r.to {
            let _ = write!(s, "to {a}/{l} ");
        }
        if let Some(i) = &r.iif {
            let _ = write!(s, "iif {i} ");
        }
        if let Some((a, b)) = r.uid {
            let _ = write!(s, "uidrange {a}-{b} ");
        }
        if r.dport_dns {
            s.push_str("dport 53 ");
        }
        match r.action {
            Action::Lookup(254) => s.push_str("lookup main"),
            Action::Lookup(t) => {
                let _ = write!(s, "lookup {t}");
            }
            Action::Goto(t) => {
                let _ = write!(s, "goto {t}");
            }
            Action::Nop => s.push_str("nop"),
            Action::Unreachable => s.push_str("unreachable"),
        }
        if r.suppress_default {
            s.push_str(" suppress_prefixlength 0");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    //! Expected texts are Go sing-box 1.14.4's `ip rule show` output as observed (minus the
    //! kernel's own local/main/default rules).
    use super::*;

    fn base() -> RouteOptions {
        RouteOptions {
            table: 2022,
            rule_index: 9000,
            ..RouteOptions::default()
        }
    }

    fn v4() -> Vec<(Ipv4Addr, u8)> {
        vec![("172.19.0.1".parse().unwrap(), 30)]
    }

    fn v6() -> Vec<(Ipv6Addr, u8)> {
        vec![("fdfe:dcba:9876::1".parse().unwrap(), 126)]
    }

    const BASE4: &str = "9000:\tfrom all to 172.19.0.0/30 lookup 2022
9001:\tfrom all lookup 2022 suppress_prefixlength 0
9002:\tnot from all dport 53 lookup main suppress_prefixlength 0
9002:\tfrom all iif tun-obs goto 9010
9003:\tnot from all iif lo lookup 2022
9003:\tfrom 0.0.0.0 iif lo lookup 2022
9003:\tfrom 172.19.0.0/30 iif lo lookup 2022
9010:\tfrom all nop
";

    const BASE6: &str = "9000:\tfrom all lookup 2022 suppress_prefixlength 0
9001:\tnot from all dport 53 lookup main suppress_prefixlength 0
9001:\tfrom fdfe:dcba:9876::/126 iif lo lookup 2022
9002:\tfrom all iif tun-obs goto 9010
9002:\tfrom ::/1 iif lo goto 9010
9002:\tfrom 8000::/1 iif lo goto 9010
9003:\tfrom all lookup 2022
9010:\tfrom all nop
";

    #[test]
    fn base_layout_is_gos() {
        let p = plan(&base(), "tun-obs", &v4(), &v6());
        assert_eq!(render_rules(&p, false), BASE4);
        assert_eq!(render_rules(&p, true), BASE6);
        assert_eq!(
            p.routes,
            vec![
                Route {
                    dst: ("0.0.0.0".parse().unwrap(), 0),
                    via: "172.19.0.2".parse().unwrap()
                },
                Route {
                    dst: ("::".parse().unwrap(), 0),
                    via: "fdfe:dcba:9876::2".parse().unwrap()
                },
            ]
        );
        // strict_route with both families changes nothing.
        let strict = RouteOptions {
            strict: true,
            ..base()
        };
        assert_eq!(plan(&strict, "tun-obs", &v4(), &v6()), p);
    }

    #[test]
    fn a_family_without_address_gets_nothing_or_unreachable_with_strict_route() {
        let p = plan(&base(), "tun-obs", &v4(), &[]);
        assert_eq!(render_rules(&p, true), "");
        assert_eq!(p.routes.len(), 1);
        let strict = RouteOptions {
            strict: true,
            ..base()
        };
        let p = plan(&strict, "tun-obs", &v4(), &[]);
        assert_eq!(render_rules(&p, false), BASE4);
        assert_eq!(render_rules(&p, true), "9000:\tfrom all unreachable\n");
    }

    #[test]
    fn uid_rules_go_first_and_shift_the_rest() {
        let o = RouteOptions {
            exclude_uid: vec![(1000, 1000)],
            ..base()
        };
        let p = plan(&o, "tun-obs", &v4(), &v6());
        let text = render_rules(&p, false);
        assert!(text.starts_with("9000:\tfrom all uidrange 1000-1000 goto 9010\n9001:\tfrom all to 172.19.0.0/30 lookup 2022\n"), "{text}");
        let o = RouteOptions {
            include_uid: vec![(0, 0)],
            ..base()
        };
        let p = plan(&o, "tun-obs", &v4(), &v6());
        let text = render_rules(&p, true);
        assert!(text.starts_with("9000:\tfrom all uidrange 1-4294967294 goto 9010\n9001:\tfrom all lookup 2022 suppress_prefixlength 0\n"), "{text}");
        assert!(
            text.ends_with("9004:\tfrom all lookup 2022\n9010:\tfrom all nop\n"),
            "{text}"
        );
    }

    #[test]
    fn interface_rules_are_gos() {
        let o = RouteOptions {
            include_interface: vec!["veth-obs".into()],
            exclude_interface: vec!["lo".into()],
            ..base()
        };
        let text = render_rules(&plan(&o, "tun-obs", &v4(), &v6()), false);
        assert!(text.starts_with("9000:\tfrom all iif veth-obs goto 9002\n9001:\tfrom all goto 9010\n9002:\tfrom all nop\n9003:\tfrom all to 172.19.0.0/30 lookup 2022\n"), "{text}");
        assert!(
            text.contains("9005:\tfrom all iif tun-obs goto 9010\n"),
            "{text}"
        );
        let o = RouteOptions {
            exclude_interface: vec!["veth-obs".into()],
            ..base()
        };
        let text = render_rules(&plan(&o, "tun-obs", &v4(), &v6()), true);
        assert!(text.starts_with("9000:\tfrom all iif veth-obs goto 9010\n9001:\tfrom all lookup 2022 suppress_prefixlength 0\n"), "{text}");
    }

    #[test]
    fn other_indexes_move_everything() {
        let o = RouteOptions {
            table: 3000,
            rule_index: 7000,
            ..base()
        };
        let text = render_rules(&plan(&o, "tun-obs", &v4(), &v6()), false);
        assert_eq!(text, BASE4.replace("2022", "3000").replace("90", "70"));
    }

    #[test]
    fn route_address_and_exclude_are_gos() {
        let o = RouteOptions {
            route_address: vec![("10.200.0.0".parse().unwrap(), 16)],
            ..base()
        };
        let p = plan(&o, "tun-obs", &v4(), &v6());
        let dsts: Vec<String> = p
            .routes
            .iter()
            .map(|r| format!("{}/{}", r.dst.0, r.dst.1))
            .collect();
        assert_eq!(
            dsts,
            ["10.200.0.0/16", "::/0"],
            "a family without route_address keeps its default"
        );
        let o = RouteOptions {
            route_exclude_address: vec![("10.99.0.0".parse().unwrap(), 24)],
            ..base()
        };
        let p = plan(&o, "tun-obs", &v4(), &[]);
        let dsts: Vec<String> = p
            .routes
            .iter()
            .map(|r| format!("{}/{}", r.dst.0, r.dst.1))
            .collect();
        let go = "0.0.0.0/5 8.0.0.0/7 10.0.0.0/10 10.64.0.0/11 10.96.0.0/15 10.98.0.0/16 10.99.1.0/24 10.99.2.0/23 10.99.4.0/22 \
                  10.99.8.0/21 10.99.16.0/20 10.99.32.0/19 10.99.64.0/18 10.99.128.0/17 10.100.0.0/14 10.104.0.0/13 10.112.0.0/12 \
                  10.128.0.0/9 11.0.0.0/8 12.0.0.0/6 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1";
        assert_eq!(dsts.join(" "), go);
        assert!(p
            .routes
            .iter()
            .all(|r| r.via == "172.19.0.2".parse::<IpAddr>().unwrap()));
        assert_eq!(render_rules(&p, false), BASE4, "excludes add no rule");
    }

    #[test]
    fn uid_complement_covers_the_rest() {
        assert_eq!(uid_complement(&[(0, 0)]), vec![(1, MAX_UID)]);
        assert_eq!(
            uid_complement(&[(5, 9), (1000, 1000)]),
            vec![(0, 4), (10, 999), (1001, MAX_UID)]
        );
        assert_eq!(uid_complement(&[(0, u32::MAX)]), vec![]);
    }
}
