//! Go's binary rule-set format (`.srs`), read into the [`HeadlessRule`] model.
//!
//! Layout (from Go sing-box's `common/srs`, read for the facts only): the magic `SRS`, a
//! version byte (1 to 5), then a zlib stream holding a uvarint rule count and the rules. A
//! rule is a type byte (0 default, 1 logical). A default rule is a run of items, each a type
//! byte and its value, ended by `0xFF` and an invert byte. A logical rule is a mode byte
//! (0 and, 1 or), a uvarint count of nested rules, the rules and an invert byte. Lists are a
//! uvarint count followed by the values (strings as uvarint length + bytes, ports as
//! big-endian u16). IP items are Go's IP sets: a format byte (1), a big-endian u64 count of
//! ranges, each range two length-prefixed addresses. Domains are a compiled trie
//! (`rule_set_file/succinct.rs`).
//!
//! The whole stream is inflated first, bounded by [`MAX_INFLATED`], and then read from a
//! slice: every count and length is checked against the bytes that are left, so a corrupt or
//! hostile file is an error naming the file, never a panic or a huge allocation.

use super::succinct;
use crate::error::ConfigError;
use crate::model::rule_match::{LogicalMode, MatchCore};
use crate::model::rule_set::{HeadlessMatch, HeadlessRule, QueryType};
use crate::model::shared::InterfaceType;
use crate::types::{Cidr, Listable, PortRange, RuleNetwork};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most bytes a rule set may inflate to. The largest public rule sets (geosite-cn and
/// the like) inflate to a few MiB; this leaves room while stopping a zlib bomb.
pub const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// How deep logical rules may nest.
const MAX_NESTING: usize = 32;

/// Decodes a binary rule set; `name` (the path or URL) is what errors name.
pub fn decode(bytes: &[u8], name: &str) -> Result<Vec<HeadlessRule>, ConfigError> {
    decode_inner(bytes).map_err(|e| ConfigError::file(name, format!("binary rule-set: {e}")))
}

fn decode_inner(bytes: &[u8]) -> Result<Vec<HeadlessRule>, String> {
    let (magic, rest) = bytes.split_at_checked(3).ok_or("file too short")?;
    if magic != b"SRS" {
        return Err("invalid sing-box rule-set file (no SRS magic)".into());
    }
    let (&version, compressed) = rest.split_first().ok_or("file too short")?;
    if version > super::MAX_VERSION {
        return Err(format!("unsupported version: {version}"));
    }
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| format!("zlib: {e}"))?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err(format!("inflates to more than {MAX_INFLATED} bytes"));
    }
    let mut r = Reader {
        buf: &inflated,
        budget: MAX_INFLATED as usize,
    };
    let count = r.count(1)?;
    let mut rules = Vec::with_capacity(count);
    for i in 0..count {
        rules.push(read_rule(&mut r, 0).map_err(|e| format!("rule[{i}]: {e}"))?);
    }
    Ok(rules)
}

/// A cursor over the inflated bytes; `budget` bounds what decoding may produce (domain
/// lists can be longer than their compressed trie).
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pub(super) budget: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn u8(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.buf.split_first().ok_or("unexpected end of data")?;
        self.buf = rest;
        Ok(b)
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let (head, rest) = self
            .buf
            .split_at_checked(n)
            .ok_or("unexpected end of data")?;
        self.buf = rest;
        Ok(head)
    }

    /// Go's `binary.ReadUvarint`: at most 10 bytes, no overflow.
    pub(super) fn uvarint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err("uvarint overflows 64 bits".into());
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("uvarint overflows 64 bits".into())
    }

    /// A count of items each taking at least `min_size` bytes, checked against what is left.
    pub(super) fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.uvarint()?;
        self.check_count(n, min_size)
    }

    pub(super) fn check_count(&self, n: u64, min_size: usize) -> Result<usize, String> {
        usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min_size) <= self.buf.len())
            .ok_or_else(|| format!("count {n} exceeds the data left"))
    }

    pub(super) fn u64_be(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn strings(&mut self) -> Result<Vec<String>, String> {
        let n = self.count(1)?;
        (0..n)
            .map(|_| {
                let len = self.count(1)?;
                let b = self.bytes(len)?;
                String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8".to_string())
            })
            .collect()
    }

    fn u16s(&mut self) -> Result<Vec<u16>, String> {
        let n = self.count(2)?;
        (0..n)
            .map(|_| {
                let b = self.bytes(2)?;
                Ok(u16::from_be_bytes([b[0], b[1]]))
            })
            .collect()
    }

    fn addr(&mut self) -> Result<IpAddr, String> {
        let len = self.count(1)?;
        let b = self.bytes(len)?;
        if let Ok(a) = <[u8; 4]>::try_from(b) {
            Ok(IpAddr::V4(Ipv4Addr::from(a)))
        } else if let Ok(a) = <[u8; 16]>::try_from(b) {
            Ok(IpAddr::V6(Ipv6Addr::from(a)))
        } else {
            Err(format!("address of {len} bytes"))
        }
    }

    /// A Go `netipx.IPSet`, as the prefixes covering its ranges.
    fn ip_set(&mut self) -> Result<Vec<Cidr>, String> {
        let format = self.u8()?;
        if format != 1 {
            return Err(format!("unknown IP set format {format}"));
        }
        let n = self.u64_be()?;
        let n = self.check_count(n, 2)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let (from, to) = (self.addr()?, self.addr()?);
            let nets: Vec<ipnet::IpNet> = match (from, to) {
                (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => ipnet::Ipv4Subnets::new(a, b, 0)
                    .map(ipnet::IpNet::V4)
                    .collect(),
                (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => ipnet::Ipv6Subnets::new(a, b, 0)
                    .map(ipnet::IpNet::V6)
                    .collect(),
                _ => return Err(format!("bad IP range {from} - {to}")),
            };
            self.spend(nets.len().saturating_mul(16))?;
            out.extend(nets.into_iter().map(|net| Cidr {
                text: net.to_string(),
                net,
            }));
        }
        Ok(out)
    }

    fn prefix(&mut self) -> Result<Cidr, String> {
        let ip = self.addr()?;
        let bits = self.u8()?;
        let net = ipnet::IpNet::new(ip, bits).map_err(|_| format!("bad prefix {ip}/{bits}"))?;
        Ok(Cidr {
            text: net.to_string(),
            net,
        })
    }

    /// Charges `n` bytes of decoded output against the budget.
    pub(super) fn spend(&mut self, n: usize) -> Result<(), String> {
        self.budget = self
            .budget
            .checked_sub(n)
            .ok_or("decoded rules exceed the size limit")?;
        Ok(())
    }
}

fn read_rule(r: &mut Reader<'_>, depth: usize) -> Result<HeadlessRule, String> {
    if depth > MAX_NESTING {
        return Err(format!("logical rules nested deeper than {MAX_NESTING}"));
    }
    match r.u8()? {
        0 => read_default(r).map(|m| HeadlessRule::Default(Box::new(m))),
        1 => {
            let mode = match r.u8()? {
                0 => LogicalMode::And,
                1 => LogicalMode::Or,
                m => return Err(format!("unknown logical mode: {m}")),
            };
            let n = r.count(1)?;
            let mut rules = Vec::with_capacity(n);
            for i in 0..n {
                rules
                    .push(read_rule(r, depth + 1).map_err(|e| format!("logical rule [{i}]: {e}"))?);
            }
            let invert = r.u8()? != 0;
            Ok(HeadlessRule::Logical {
                mode,
                rules,
                invert,
            })
        }
        t => Err(format!("unknown rule type: {t}")),
    }
}

/// Item type bytes, in Go's order.
mod item {
    pub const QUERY_TYPE: u8 = 0;
    pub const NETWORK: u8 = 1;
    pub const DOMAIN: u8 = 2;
    pub const DOMAIN_KEYWORD: u8 = 3;
    pub const DOMAIN_REGEX: u8 = 4;
    pub const SOURCE_IP_CIDR: u8 = 5;
    pub const IP_CIDR: u8 = 6;
    pub const SOURCE_PORT: u8 = 7;
    pub const SOURCE_PORT_RANGE: u8 = 8;
    pub const PORT: u8 = 9;
    pub const PORT_RANGE: u8 = 10;
    pub const PROCESS_NAME: u8 = 11;
    pub const PROCESS_PATH: u8 = 12;
    pub const PACKAGE_NAME: u8 = 13;
    pub const WIFI_SSID: u8 = 14;
    pub const WIFI_BSSID: u8 = 15;
    pub const ADGUARD_DOMAIN: u8 = 16;
    pub const PROCESS_PATH_REGEX: u8 = 17;
    pub const NETWORK_TYPE: u8 = 18;
    pub const NETWORK_IS_EXPENSIVE: u8 = 19;
    pub const NETWORK_IS_CONSTRAINED: u8 = 20;
    pub const NETWORK_INTERFACE_ADDRESS: u8 = 21;
    pub const DEFAULT_INTERFACE_ADDRESS: u8 = 22;
    pub const PACKAGE_NAME_REGEX: u8 = 23;
    pub const FINAL: u8 = 0xFF;
}

fn port_ranges(list: Vec<String>) -> Result<Listable<PortRange>, String> {
    list.iter()
        .map(|s| s.parse::<PortRange>())
        .collect::<Result<Vec<_>, _>>()
        .map(Listable)
}

fn interface_type(b: u8) -> Result<InterfaceType, String> {
    Ok(match b {
        0 => InterfaceType::Wifi,
        1 => InterfaceType::Cellular,
        2 => InterfaceType::Ethernet,
        3 => InterfaceType::Other,
        _ => return Err(format!("unknown network type {b}")),
    })
}

fn interface_name(t: InterfaceType) -> &'static str {
    match t {
        InterfaceType::Wifi => "wifi",
        InterfaceType::Cellular => "cellular",
        InterfaceType::Ethernet => "ethernet",
        InterfaceType::Other => "other",
    }
}

fn prefixes(r: &mut Reader<'_>) -> Result<Listable<Cidr>, String> {
    let n = r.count(2)?;
    (0..n)
        .map(|_| r.prefix())
        .collect::<Result<_, _>>()
        .map(Listable)
}

fn read_default(r: &mut Reader<'_>) -> Result<HeadlessMatch, String> {
    let mut m = HeadlessMatch::default();
    let c: &mut MatchCore = &mut m.core;
    let mut last = None;
    loop {
        let t = r.u8()?;
        let at = |e: String| match last {
            Some(l) => format!("item type {t} (after {l}): {e}"),
            None => format!("item type {t}: {e}"),
        };
        match t {
            item::QUERY_TYPE => {
                m.query.query_type = Listable(r.u16s()?.into_iter().map(QueryType).collect());
            }
            item::NETWORK => {
                c.network = r
                    .strings()?
                    .iter()
                    .map(|n| match n.as_str() {
                        "tcp" => Ok(RuleNetwork::Tcp),
                        "udp" => Ok(RuleNetwork::Udp),
                        "icmp" => Ok(RuleNetwork::Icmp),
                        other => Err(format!("unknown network {other:?}")),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Listable)
                    .map_err(at)?;
            }
            item::DOMAIN => {
                let (domain, suffix) = succinct::read_domains(r).map_err(at)?;
                c.domain = Listable(domain);
                c.domain_suffix = Listable(suffix);
            }
            item::DOMAIN_KEYWORD => c.domain_keyword = Listable(r.strings()?),
            item::DOMAIN_REGEX => {
                let list = r.strings()?;
                for re in &list {
                    regex::Regex::new(re)
                        .map_err(|e| at(format!("invalid domain_regex {re:?}: {e}")))?;
                }
                c.domain_regex = Listable(list);
            }
            item::SOURCE_IP_CIDR => c.source_ip_cidr = Listable(r.ip_set().map_err(at)?),
            item::IP_CIDR => c.ip_cidr = Listable(r.ip_set().map_err(at)?),
            item::SOURCE_PORT => c.source_port = Listable(r.u16s()?),
            item::SOURCE_PORT_RANGE => {
                c.source_port_range = port_ranges(r.strings()?).map_err(at)?
            }
            item::PORT => c.port = Listable(r.u16s()?),
            item::PORT_RANGE => c.port_range = port_ranges(r.strings()?).map_err(at)?,
            item::PROCESS_NAME => c.process_name = Listable(r.strings()?),
            item::PROCESS_PATH => c.process_path = Listable(r.strings()?),
            item::PROCESS_PATH_REGEX => c.process_path_regex = Listable(r.strings()?),
            item::PACKAGE_NAME => c.package_name = Listable(r.strings()?),
            item::PACKAGE_NAME_REGEX => c.package_name_regex = Listable(r.strings()?),
            item::WIFI_SSID => c.wifi_ssid = Listable(r.strings()?),
            item::WIFI_BSSID => c.wifi_bssid = Listable(r.strings()?),
            item::ADGUARD_DOMAIN => {
                return Err(at(
                    "AdGuard domain rules are not implemented by sb yet".into()
                ))
            }
            item::NETWORK_TYPE => {
                let n = r.count(1)?;
                c.network_type = Listable(
                    r.bytes(n)?
                        .iter()
                        .map(|b| interface_type(*b))
                        .collect::<Result<_, _>>()
                        .map_err(at)?,
                );
            }
            item::NETWORK_IS_EXPENSIVE => c.network_is_expensive = true,
            item::NETWORK_IS_CONSTRAINED => c.network_is_constrained = true,
            item::NETWORK_INTERFACE_ADDRESS => {
                let n = r.count(2)?;
                for _ in 0..n {
                    let key = interface_type(r.u8()?).map_err(at)?;
                    let list = prefixes(r).map_err(at)?;
                    c.network_interface_address
                        .insert(interface_name(key).to_string(), list);
                }
            }
            item::DEFAULT_INTERFACE_ADDRESS => {
                c.default_interface_address = prefixes(r).map_err(at)?
            }
            item::FINAL => {
                c.invert = r.u8()? != 0;
                return Ok(m);
            }
            _ => return Err(at("unknown rule item type".into())),
        }
        last = Some(t);
    }
}
