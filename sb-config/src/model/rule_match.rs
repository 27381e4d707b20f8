//! Rule match fields, in groups shared between route rules, DNS rules and rule-set (headless)
//! rules, and the logical (`and`/`or`) form. Matching semantics live in sb-core; this is the
//! exact shape Go 1.14 accepts.

use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{Cidr, Listable, PortRange, RuleNetwork};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Fields every rule kind has (route, DNS, headless).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchCore {
    /// `tcp`, `udp`, `icmp`.
    pub network: Listable<RuleNetwork>,
    /// Exact domains.
    pub domain: Listable<String>,
    /// Domain suffixes (`x` matches `x` and `*.x`; `.x` only subdomains).
    pub domain_suffix: Listable<String>,
    /// Substrings of the domain.
    pub domain_keyword: Listable<String>,
    /// Regular expressions over the domain.
    pub domain_regex: Listable<String>,
    /// Source networks.
    pub source_ip_cidr: Listable<Cidr>,
    /// Destination networks.
    pub ip_cidr: Listable<Cidr>,
    /// Source ports.
    pub source_port: Listable<u16>,
    /// Source port ranges.
    pub source_port_range: Listable<PortRange>,
    /// Destination ports.
    pub port: Listable<u16>,
    /// Destination port ranges.
    pub port_range: Listable<PortRange>,
    /// Process names.
    pub process_name: Listable<String>,
    /// Process paths.
    pub process_path: Listable<String>,
    /// Process path regexes.
    pub process_path_regex: Listable<String>,
    /// Android packages.
    pub package_name: Listable<String>,
    /// Android package regexes (1.14).
    pub package_name_regex: Listable<String>,
    /// Graphical clients.
    pub network_type: Listable<super::shared::InterfaceType>,
    /// Graphical clients.
    pub network_is_expensive: bool,
    /// Graphical clients.
    pub network_is_constrained: bool,
    /// Graphical clients.
    pub wifi_ssid: Listable<String>,
    /// Graphical clients.
    pub wifi_bssid: Listable<String>,
    /// Interface type -> addresses (1.13).
    pub network_interface_address: BTreeMap<String, Listable<Cidr>>,
    /// Addresses of the default interface (1.13).
    pub default_interface_address: Listable<Cidr>,
    /// Negate the whole rule.
    pub invert: bool,
}

/// Fields route and DNS rules have, headless rules do not.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchFlow {
    /// Inbound tags.
    pub inbound: Listable<String>,
    /// 4 or 6.
    pub ip_version: Option<IpVersion>,
    /// Authenticated user names.
    pub auth_user: Listable<String>,
    /// Sniffed protocols.
    pub protocol: Listable<Protocol>,
    /// Non-public source address.
    pub source_ip_is_private: bool,
    /// Non-public destination address.
    pub ip_is_private: bool,
    /// Local user names (Linux).
    pub user: Listable<String>,
    /// Local user ids (Linux).
    pub user_id: Listable<i64>,
    /// Clash API mode, case-insensitive.
    pub clash_mode: String,
    /// Interface name -> addresses (1.13).
    pub interface_address: BTreeMap<String, Listable<Cidr>>,
    /// Source MAC addresses (1.14).
    pub source_mac_address: Listable<String>,
    /// Source host names (1.14).
    pub source_hostname: Listable<String>,
    /// Outbounds that prefer this rule (1.13).
    pub preferred_by: Listable<String>,
    /// Rule-set tags.
    pub rule_set: Listable<String>,
    /// Match rule-set CIDRs against the source address.
    pub rule_set_ip_cidr_match_source: bool,
}

/// `ip_version` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl<'de> Deserialize<'de> for IpVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            4 => Ok(IpVersion::V4),
            6 => Ok(IpVersion::V6),
            n => Err(serde::de::Error::custom(format!(
                "invalid ip_version {n}: expected 4 or 6"
            ))),
        }
    }
}

impl Serialize for IpVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            IpVersion::V4 => 4,
            IpVersion::V6 => 6,
        })
    }
}

/// Sniffed protocol names (also the `sniffer` list of the sniff action).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TLS ClientHello.
    Tls,
    /// HTTP/1 request.
    Http,
    /// QUIC Initial.
    Quic,
    /// DNS.
    Dns,
    /// STUN.
    Stun,
    /// BitTorrent.
    Bittorrent,
    /// DTLS.
    Dtls,
    /// SSH banner.
    Ssh,
    /// RDP.
    Rdp,
    /// NTP.
    Ntp,
}

/// Route-rule-only fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchRouteOnly {
    /// Sniffed QUIC client.
    pub client: Listable<String>,
}

/// Fields Go removed from rules, with Go's messages.
pub const RULE_REMOVED: &[(&[&str], &str)] = &[
    (&["geoip", "source_geoip"], "geoip database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-geoip-to-rule-sets"),
    (&["geosite"], "geosite database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-geosite-to-rule-sets"),
    (&["rule_set_ipcidr_match_source"], "rule_set_ipcidr_match_source is deprecated in sing-box 1.10.0 and removed in sing-box 1.11.0, use rule_set_ip_cidr_match_source instead"),
];

/// `and` / `or`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogicalMode {
    /// All sub-rules match.
    And,
    /// Any sub-rule matches.
    Or,
}

/// The `type` of a rule object.
pub enum RuleType {
    /// `""` or `"default"`.
    Default,
    /// `"logical"`.
    Logical,
}

/// Reads a rule's `type`.
pub fn rule_type(o: &mut Obj<'_>) -> Result<RuleType, DecodeError> {
    let ty: String = o.take("type")?.unwrap_or_default();
    match ty.as_str() {
        "" | "default" => Ok(RuleType::Default),
        "logical" => Ok(RuleType::Logical),
        other => Err(o.error_at(
            "type",
            format!("unknown rule type {other:?}, expected \"default\" or \"logical\""),
        )),
    }
}

/// Reads the `mode` of a logical rule.
pub fn logical_mode(o: &mut Obj<'_>) -> Result<LogicalMode, DecodeError> {
    let mode: Option<String> = o.take("mode")?;
    match mode.as_deref() {
        Some("and") => Ok(LogicalMode::And),
        Some("or") => Ok(LogicalMode::Or),
        None | Some("") => Err(o.error("missing logical mode (\"and\" or \"or\")")),
        Some(other) => Err(o.error_at("mode", format!("unknown logical mode: {other}"))),
    }
}

/// Reads the sub-rules of a logical rule with `each`.
pub fn logical_rules<T>(
    o: &mut Obj<'_>,
    ctx: &mut Ctx,
    mut each: impl FnMut(&Node, &Path, &mut Ctx) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let Some((node, path)) = o.take_node("rules") else {
        return Err(o.error("missing rules of logical rule"));
    };
    let crate::jsonc::Kind::Array(items) = &node.kind else {
        return Err(DecodeError::at(
            &path,
            node.span.start,
            format!("expected an array, found {}", node.describe()),
        ));
    };
    if items.is_empty() {
        return Err(DecodeError::at(
            &path,
            node.span.start,
            "missing rules of logical rule",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, n)| each(n, &path.index(i), ctx))
        .collect()
}

/// Checks what serde cannot: regexes compile.
pub fn check_core(o: &Obj<'_>, core: &MatchCore) -> Result<(), DecodeError> {
    for (key, list) in [
        ("domain_regex", &core.domain_regex),
        ("process_path_regex", &core.process_path_regex),
        ("package_name_regex", &core.package_name_regex),
    ] {
        for (i, re) in list.iter().enumerate() {
            if let Err(e) = regex::Regex::new(re) {
                return Err(o.error_at(
                    key,
                    format!("parse expression {i}: {}", first_line(&e.to_string())),
                ));
            }
        }
    }
    Ok(())
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

/// Records the references inside route/DNS match fields.
pub fn flow_refs(o: &Obj<'_>, ctx: &mut Ctx) {
    o.reference(&mut ctx.refs, "inbound", RefKind::Inbound);
    o.reference(&mut ctx.refs, "rule_set", RefKind::RuleSet);
    o.reference(&mut ctx.refs, "preferred_by", RefKind::Outbound);
}
