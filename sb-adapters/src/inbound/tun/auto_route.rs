//! `auto_route` on Linux: installs the plan from `route_plan.rs` over rtnetlink when the TUN
//! starts and removes it when the inbound closes, as Go sing-box does: before installing
//! and again at removal, every policy rule whose priority lies in
//! `iproute2_rule_index..=iproute2_rule_index+10` is deleted (whoever added it), which is
//! also what cleans up after a crashed instance (the kernel drops the table routes with
//! the device, but the rules stay). Routes in the table that sb did not add are left alone.

use super::route_plan::{Action, Plan, Route, Rule};
use crate::netlink::{errno, Netlink};

const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;
const ESRCH: i32 = nix::errno::Errno::ESRCH as i32;
const ENODEV: i32 = nix::errno::Errno::ENODEV as i32;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{
    RuleAction, RuleAttribute, RuleFlags, RuleMessage, RulePortRange, RuleUidRange,
};
use netlink_packet_route::AddressFamily;
use std::io;
use std::net::IpAddr;

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

/// The netlink message for one planned rule.
fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family(r.v6);
    let mut a = vec![RuleAttribute::Priority(r.priority)];
    if r.invert {
        m.header.flags = RuleFlags::Invert;
    }
    if let Some((ip, len)) = r.from {
        m.header.src_len = len;
        a.push(RuleAttribute::Source(ip));
    }
    if let Some((ip, len)) = r.to {
        m.header.dst_len = len;
        a.push(RuleAttribute::Destination(ip));
    }
    if let Some(i) = &r.iif {
        a.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some((start, end)) = r.uid {
        a.push(RuleAttribute::UidRange(RuleUidRange { start, end }));
    }
    if r.dport_dns {
        a.push(RuleAttribute::DestinationPortRange(RulePortRange {
            start: 53,
            end: 53,
        }));
    }
    if r.suppress_default {
        a.push(RuleAttribute::SuppressPrefixLen(0));
    }
    m.header.action = match r.action {
        Action::Lookup(t) => {
            // Tables above 255 only fit the attribute; the header field then stays 0.
            m.header.table = u8::try_from(t).unwrap_or(0);
            a.push(RuleAttribute::Table(t));
            RuleAction::ToTable
        }
        Action::Goto(to) => {
            a.push(RuleAttribute::Goto(to));
            RuleAction::Goto
        }
        Action::Nop => RuleAction::Nop,
        Action::Unreachable => RuleAction::Unreachable,
    };
    m.attributes = a;
    m
}

/// The netlink message for one route of the TUN table.
fn route_message(r: &Route, table: u32, oif: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    let v6 = r.dst.0.is_ipv6();
    m.header = RouteHeader {
        address_family: family(v6),
        destination_prefix_length: r.dst.1,
        table: u8::try_from(table).unwrap_or(0),
        // `boot`, the protocol `ip route add` uses (and Go's routes show without a proto).
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        ..RouteHeader::default()
    };
    let mut a = vec![RouteAttribute::Table(table)];
    if r.dst.1 > 0 {
        a.push(RouteAttribute::Destination(RouteAddress::from(r.dst.0)));
    }
    a.push(RouteAttribute::Gateway(RouteAddress::from(r.via)));
    a.push(RouteAttribute::Oif(oif));
    m.attributes = a;
    m
}

fn priority(r: &RuleMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RuleAttribute::Priority(p) => Some(*p),
        _ => None,
    })
}

/// Deletes every rule (both families) with a priority in `first..=first+10`: Go's range
/// cleanup, which removes what a crashed instance left.
pub fn clean_rule_range(nl: &mut Netlink, first: u32) -> io::Result<usize> {
    let last = first.saturating_add(10);
    let mut removed = 0;
    for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
        for r in nl.rules(fam)? {
            if priority(&r).is_some_and(|p| (first..=last).contains(&p)) {
                // The dumped message names the rule exactly; a rule already gone is fine.
                match nl.del_rule(r) {
                    Ok(()) => removed += 1,
                    Err(e) if errno(&e) == Some(ENOENT) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(removed)
}

/// What was installed, to be removed at close.
pub struct Installed {
    rule_index: u32,
    table: u32,
    oif: u32,
    routes: Vec<Route>,
}

/// Installs `plan` for the TUN with interface index `oif`: cleans the rule range, adds the
/// table routes, then the rules. On failure everything added is removed again.
pub fn install(plan: &Plan, rule_index: u32, table: u32, oif: u32) -> io::Result<Installed> {
    let mut nl = Netlink::open()?;
    clean_rule_range(&mut nl, rule_index)?;
    let mut installed = Installed {
        rule_index,
        table,
        oif,
        routes: Vec::new(),
    };
    let result = (|| {
        for r in &plan.routes {
            nl.add_route(route_message(r, table, oif)).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("route {}/{} via {}: {e}", r.dst.0, r.dst.1, r.via),
                )
            })?;
            installed.routes.push(r.clone());
        }
        for r in &plan.rules {
            nl.add_rule(rule_message(r))
                .map_err(|e| io::Error::new(e.kind(), format!("rule {r:?}: {e}")))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(installed),
        Err(e) => {
            let _ = installed.remove();
            Err(e)
        }
    }
}

impl Installed {
    /// Removes the routes sb added and every rule in the range. Errors are returned after
    /// trying everything, so one failure does not leave the rest behind.
    pub fn remove(&self) -> io::Result<()> {
        let mut nl = Netlink::open()?;
        let mut first_error = None;
        if let Err(e) = clean_rule_range(&mut nl, self.rule_index) {
            first_error.get_or_insert(e);
        }
        for r in &self.routes {
            // The device may already be gone, and its routes with it.
            match nl.del_route(route_message(r, self.table, self.oif)) {
                Ok(()) => {}
                // ESRCH: the route is gone; ENODEV: so is the device.
                Err(e) if matches!(errno(&e), Some(ESRCH | ENODEV)) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A one-line summary of a plan, for the start log.
pub fn describe(plan: &Plan) -> String {
    let v4 = plan.routes.iter().filter(|r| r.dst.0.is_ipv4()).count();
    let v6 = plan
        .routes
        .iter()
        .filter(|r| matches!(r.dst.0, IpAddr::V6(_)))
        .count();
    format!("{} rules, {v4} IPv4 and {v6} IPv6 routes", plan.rules.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_messages_carry_the_selectors() {
        let mut r = Rule {
            v6: false,
            priority: 9002,
            invert: true,
            from: None,
            to: None,
            iif: None,
            uid: None,
            dport_dns: true,
            suppress_default: true,
            action: Action::Lookup(254),
        };
        let m = rule_message(&r);
        assert_eq!(m.header.flags, RuleFlags::Invert);
        assert_eq!(m.header.action, RuleAction::ToTable);
        assert!(m.attributes.contains(&RuleAttribute::SuppressPrefixLen(0)));
        assert!(m
            .attributes
            .contains(&RuleAttribute::DestinationPortRange(RulePortRange {
                start: 53,
                end: 53
            })));
        r.action = Action::Lookup(2022);
        let m = rule_message(&r);
        assert_eq!(m.header.table, 0, "2022 does not fit the header byte");
        assert!(m.attributes.contains(&RuleAttribute::Table(2022)));
    }
}
