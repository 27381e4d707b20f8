//! The `fakeip` server type: A/AAAA questions are answered with addresses from
//! `inet4_range`/`inet6_range`, one per domain, so a client connects to an address that
//! stands for a domain; the dispatcher maps it back ([`FakeIp::domain`]) before routing, and
//! a fake address nobody was given is rejected rather than dialed. Other question types get
//! an empty answer. Addresses are handed out in order and reused from the oldest when the
//! range is exhausted. With `experimental.cache_file.store_fakeip` the mapping is saved
//! ([`FakeIp::snapshot`]) and restored at the next start.

use super::message::{domain_of, question, reply, reply_with_ips};
use super::transport::Transport;
use super::{DnsError, DEFAULT_TTL};
use crate::adapter::BoxFuture;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Names mapped at once per family, at most. An IPv6 range has room for more names than any
/// memory (fc00::/18 has 2^110 addresses): past this the oldest mapping's address is handed
/// out again, as in a full IPv4 range. It covers the default IPv4 range (198.18.0.0/15)
/// whole, so IPv4 behaves as before.
pub const MAX_LIVE: usize = 131_072;
use std::sync::{Arc, Mutex};

/// The saved form of a pool: the domain of every handed-out address, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FakeIpState {
    /// `(address, domain)`, oldest first.
    pub entries: Vec<(IpAddr, String)>,
}

#[derive(Default)]
struct Family {
    /// Next offset into the range to try.
    next: u128,
    /// Handed-out addresses, oldest first (for reuse when the range is full).
    order: VecDeque<IpAddr>,
}

#[derive(Default)]
struct State {
    by_ip: HashMap<IpAddr, String>,
    by_domain: HashMap<(String, bool), IpAddr>,
    v4: Family,
    v6: Family,
    dirty: bool,
}

/// A FakeIP pool.
pub struct FakeIp {
    tag: String,
    v4: Option<Ipv4Net>,
    v6: Option<Ipv6Net>,
    state: Mutex<State>,
}

impl FakeIp {
    /// A pool over the given ranges.
    pub fn new(tag: &str, v4: Option<Ipv4Net>, v6: Option<Ipv6Net>) -> FakeIp {
        FakeIp {
            tag: tag.to_string(),
            v4: v4.map(|n| n.trunc()),
            v6: v6.map(|n| n.trunc()),
            state: Mutex::new(State::default()),
        }
    }

    /// Whether `ip` lies in one of the pool's ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.is_some_and(|n| n.contains(&a)),
            IpAddr::V6(a) => self.v6.is_some_and(|n| n.contains(&a)),
        }
    }

    /// The domain a fake address stands for.
    pub fn domain(&self, ip: IpAddr) -> Option<String> {
        self.state.lock().ok()?.by_ip.get(&ip).cloned()
    }

    /// The address for `domain` in the family `v6`, handing out a new one if needed.
    pub fn address(&self, domain: &str, v6: bool) -> Option<IpAddr> {
        let mut st = self.state.lock().ok()?;
        if let Some(ip) = st.by_domain.get(&(domain.to_string(), v6)) {
            return Some(*ip);
        }
        let size = self.size(v6)?;
        // Offsets 0 (the network) and the last (broadcast, for IPv4) are never handed out.
        let usable = size.saturating_sub(2);
        if usable == 0 {
            return None;
        }
        let live = usable.min(MAX_LIVE as u128);
        let ip = {
            let State {
                by_ip, v4, v6: f6, ..
            } = &mut *st;
            let fam = if v6 { f6 } else { v4 };
            let mut fresh = None;
            if (fam.order.len() as u128) < live {
                // Offsets restored from a saved mapping may be taken: skip them (bounded).
                for _ in 0..usable.min(4096) {
                    let offset = 1 + fam.next % usable;
                    fam.next = fam.next.wrapping_add(1);
                    let ip = self.at(v6, offset)?;
                    if !by_ip.contains_key(&ip) {
                        fresh = Some(ip);
                        break;
                    }
                }
            }
            match fresh {
                Some(ip) => ip,
                // Full: take the oldest address back.
                None => fam.order.pop_front()?,
            }
        };
        if let Some(old) = st.by_ip.remove(&ip) {
            st.by_domain.remove(&(old, v6));
        }
        st.by_ip.insert(ip, domain.to_string());
        st.by_domain.insert((domain.to_string(), v6), ip);
        if v6 {
            st.v6.order.push_back(ip);
        } else {
            st.v4.order.push_back(ip);
        }
        st.dirty = true;
        Some(ip)
    }

    fn size(&self, v6: bool) -> Option<u128> {
        if v6 {
            let n = self.v6?;
            Some(
                1u128
                    .checked_shl(128 - u32::from(n.prefix_len()))
                    .unwrap_or(u128::MAX),
            )
        } else {
            let n = self.v4?;
            Some(1u128 << (32 - u32::from(n.prefix_len())))
        }
    }

    fn at(&self, v6: bool, offset: u128) -> Option<IpAddr> {
        if v6 {
            let base = u128::from(self.v6?.network());
            Some(IpAddr::V6(Ipv6Addr::from(base.checked_add(offset)?)))
        } else {
            let base = u32::from(self.v4?.network());
            let off = u32::try_from(offset).ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(base.checked_add(off)?)))
        }
    }

    /// The mapping to save, and whether it changed since the last call.
    pub fn snapshot(&self) -> Option<(FakeIpState, bool)> {
        let mut st = self.state.lock().ok()?;
        let dirty = std::mem::take(&mut st.dirty);
        let entries = st
            .v4
            .order
            .iter()
            .chain(st.v6.order.iter())
            .filter_map(|ip| st.by_ip.get(ip).map(|d| (*ip, d.clone())))
            .collect();
        Some((FakeIpState { entries }, dirty))
    }

    /// Restores a saved mapping; entries outside today's ranges are dropped.
    pub fn restore(&self, saved: &FakeIpState) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        for (ip, domain) in &saved.entries {
            if !self.contains(*ip) {
                continue;
            }
            let v6 = ip.is_ipv6();
            st.by_ip.insert(*ip, domain.clone());
            st.by_domain.insert((domain.clone(), v6), *ip);
            let offset = match ip {
                IpAddr::V4(a) => self
                    .v4
                    .map_or(0, |n| u128::from(u32::from(*a) - u32::from(n.network()))),
                IpAddr::V6(a) => self
                    .v6
                    .map_or(0, |n| u128::from(*a) - u128::from(n.network())),
            };
            let fam = if v6 { &mut st.v6 } else { &mut st.v4 };
            fam.order.push_back(*ip);
            // Continue handing out after the highest restored address.
            fam.next = fam.next.max(offset);
        }
    }

    /// Forgets every address handed out (Clash API: `/cache/fakeip/flush`); the next
    /// domains get addresses from the start of the ranges again.
    pub fn reset(&self) {
        if let Ok(mut st) = self.state.lock() {
            *st = State {
                dirty: true,
                ..State::default()
            };
        }
    }

    /// The pool's tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// The transport face of a pool.
pub struct FakeIpTransport(pub Arc<FakeIp>);

impl Transport for FakeIpTransport {
    fn tag(&self) -> &str {
        &self.0.tag
    }
    fn kind(&self) -> &'static str {
        "fakeip"
    }
    fn cacheable(&self) -> bool {
        false
    }
    fn fakeip(&self) -> Option<&Arc<FakeIp>> {
        Some(&self.0)
    }
    fn exchange<'a>(&'a self, query: &'a Message) -> BoxFuture<'a, Result<Message, DnsError>> {
        Box::pin(async move {
            let q = question(query)?;
            let v6 = match q.query_type() {
                RecordType::A => false,
                RecordType::AAAA => true,
                _ => return Ok(reply(query, ResponseCode::NoError)),
            };
            let domain = domain_of(q);
            Ok(match self.0.address(&domain, v6) {
                Some(ip) => reply_with_ips(query, q, &[ip], DEFAULT_TTL),
                None => reply(query, ResponseCode::NoError),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening finding 7: an IPv6 range has room for more names than memory; the live
    /// mapping is bounded, the oldest address handed back first, as in a full IPv4 range.
    #[test]
    fn an_ipv6_range_keeps_a_bounded_mapping() {
        let pool = FakeIp::new("f", None, "fc00::/18".parse().ok());
        let first = pool.address("n0.test", true).unwrap();
        for i in 1..(MAX_LIVE + 10) {
            pool.address(&format!("n{i}.test"), true).unwrap();
        }
        let live = pool.state.lock().unwrap().by_ip.len();
        assert_eq!(live, MAX_LIVE);
        assert_ne!(
            pool.domain(first).as_deref(),
            Some("n0.test"),
            "the oldest mapping went first (its address serves a newer name)"
        );
    }

    #[test]
    fn allocates_maps_back_reuses_and_restores() {
        let pool = FakeIp::new("f", "198.18.0.0/29".parse().ok(), "fc00::/120".parse().ok());
        let a = pool.address("a.test", false).unwrap();
        assert_eq!(a, "198.18.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(pool.address("a.test", false), Some(a));
        assert_eq!(pool.domain(a).as_deref(), Some("a.test"));
        let b6 = pool.address("b.test", true).unwrap();
        assert!(pool.contains(b6));
        // /29 has 6 usable addresses: the 7th domain takes the oldest one back.
        let mut given = vec![a];
        for i in 0..5 {
            given.push(pool.address(&format!("d{i}.test"), false).unwrap());
        }
        let reused = pool.address("late.test", false).unwrap();
        assert_eq!(reused, a);
        assert_eq!(pool.domain(a).as_deref(), Some("late.test"));
        assert!(!pool.contains("10.0.0.1".parse().unwrap()));
        let (saved, dirty) = pool.snapshot().unwrap();
        assert!(dirty);
        let again = FakeIp::new("f", "198.18.0.0/29".parse().ok(), "fc00::/120".parse().ok());
        again.restore(&saved);
        assert_eq!(again.domain(a).as_deref(), Some("late.test"));
        assert_eq!(again.domain(b6).as_deref(), Some("b.test"));
    }

    #[test]
    fn reset_forgets_and_starts_over() {
        let pool = FakeIp::new("f", "198.18.0.0/29".parse().ok(), None);
        let a = pool.address("a.test", false).unwrap();
        pool.address("b.test", false).unwrap();
        let _ = pool.snapshot();
        pool.reset();
        assert_eq!(pool.domain(a), None);
        let (saved, dirty) = pool.snapshot().unwrap();
        assert!(dirty, "the empty pool is saved");
        assert!(saved.entries.is_empty());
        assert_eq!(
            pool.address("c.test", false),
            Some(a),
            "handed out from the start again"
        );
    }
}
