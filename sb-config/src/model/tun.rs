//! `tun` inbound options: the device, its addresses, automatic routing and the stack choice.

use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::object::Obj;
use crate::refs::RefKind;
use crate::types::{FwMark, Ip, Listable, Prefix, UdpTimeout};
use serde::{Deserialize, Serialize};

/// `tun` inbound options (Go's `TunInboundOptions`, 1.14).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TunInbound {
    /// Device name; picked automatically when empty.
    pub interface_name: String,
    /// Network namespace.
    pub netns: String,
    /// MTU; 65535 when zero.
    pub mtu: u32,
    /// Device addresses, each with its prefix length.
    pub address: Listable<Prefix>,
    /// DNS handling mode (1.14).
    pub dns_mode: Option<TunDnsMode>,
    /// DNS addresses announced on the device (1.14).
    pub dns_address: Listable<String>,
    /// Install default routes through the device.
    pub auto_route: bool,
    /// Policy-routing table; 2022 when zero.
    pub iproute2_table_index: i64,
    /// First policy-routing rule priority; 9000 when zero.
    pub iproute2_rule_index: i64,
    /// nftables redirect (Linux).
    pub auto_redirect: bool,
    /// Mark for redirected input.
    pub auto_redirect_input_mark: FwMark,
    /// Mark for redirected output.
    pub auto_redirect_output_mark: FwMark,
    /// Reset mark (1.13).
    pub auto_redirect_reset_mark: FwMark,
    /// NFQUEUE number (1.13).
    pub auto_redirect_nfqueue: u16,
    /// Fallback rule index (1.12.18).
    pub auto_redirect_iproute2_fallback_rule_index: i64,
    /// Exclude MPTCP (1.13).
    pub exclude_mptcp: bool,
    /// Loopback addresses (1.12).
    pub loopback_address: Listable<Ip>,
    /// Make networks the stack cannot carry unreachable, to stop leaks.
    pub strict_route: bool,
    /// Routes to install instead of the default ones.
    pub route_address: Listable<Prefix>,
    /// Rule sets whose CIDRs become routes.
    pub route_address_set: Listable<String>,
    /// Routes to leave out.
    pub route_exclude_address: Listable<Prefix>,
    /// Rule sets whose CIDRs are left out.
    pub route_exclude_address_set: Listable<String>,
    /// Only these interfaces are routed.
    pub include_interface: Listable<String>,
    /// These interfaces are not routed.
    pub exclude_interface: Listable<String>,
    /// Only these users are routed.
    pub include_uid: Listable<u32>,
    /// User ranges `"1000:99999"`.
    pub include_uid_range: Listable<String>,
    /// These users are not routed.
    pub exclude_uid: Listable<u32>,
    /// User ranges not routed.
    pub exclude_uid_range: Listable<String>,
    /// Android users.
    pub include_android_user: Listable<i64>,
    /// Android packages.
    pub include_package: Listable<String>,
    /// Android packages.
    pub exclude_package: Listable<String>,
    /// MAC addresses (1.14, auto_redirect).
    pub include_mac_address: Listable<String>,
    /// MAC addresses (1.14, auto_redirect).
    pub exclude_mac_address: Listable<String>,
    /// UDP session idle timeout; 5m when zero.
    pub udp_timeout: UdpTimeout,
    /// UDP mapping behaviour (1.14).
    pub udp_mapping: Option<UdpNatBehavior>,
    /// UDP filtering behaviour (1.14).
    pub udp_filtering: Option<UdpNatBehavior>,
    /// Maximum UDP NAT entries (1.14).
    pub udp_nat_max: u32,
    /// TCP/IP stack.
    pub stack: Option<TunStack>,
    /// Graphical-client platform options.
    pub platform: Option<TunPlatform>,
    /// Accepted and ignored, as in Go (which still writes it back in `format`).
    pub endpoint_independent_nat: bool,
}

/// `stack` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunStack {
    /// `""`: not set (the default).
    #[serde(rename = "")]
    Unset,
    /// Kernel stack.
    System,
    /// Userspace stack.
    Gvisor,
    /// System for TCP, userspace for UDP.
    Mixed,
}

/// `dns_mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunDnsMode {
    /// Off.
    Disabled,
    /// The platform's own.
    Native,
    /// Hijack to the DNS module.
    Hijack,
}

/// UDP NAT behaviours (1.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpNatBehavior {
    /// Default.
    #[serde(rename = "")]
    Unset,
    /// Endpoint independent (the default; `format` drops it as Go does).
    #[serde(rename(serialize = ""))]
    EndpointIndependent,
    /// Address dependent.
    AddressDependent,
    /// Address and port dependent.
    AddressAndPortDependent,
}

/// `platform` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TunPlatform {
    /// System HTTP proxy.
    pub http_proxy: Option<TunHttpProxy>,
}

/// `platform.http_proxy`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TunHttpProxy {
    /// Enabled.
    pub enabled: bool,
    /// Proxy server.
    pub server: String,
    /// Proxy port.
    pub server_port: u16,
    /// Domains that bypass the proxy.
    pub bypass_domain: Listable<String>,
    /// Domains that use the proxy.
    pub match_domain: Listable<String>,
}

const LEGACY_ADDRESS: &[&str] = &[
    "inet4_address",
    "inet6_address",
    "inet4_route_address",
    "inet6_route_address",
    "inet4_route_exclude_address",
    "inet6_route_exclude_address",
];

/// Decodes the `tun` options from an inbound object whose `type` and `tag` are taken.
pub fn decode(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<TunInbound, DecodeError> {
    o.removed(
        LEGACY_ADDRESS,
        "legacy tun address fields are deprecated in sing-box 1.10.0 and removed in sing-box 1.12.0, checkout migration: https://sing-box.sagernet.org/migration/#tun-address-fields-are-merged",
    )?;
    o.removed(
        &["gso"],
        "GSO option in tun is deprecated in sing-box 1.11.0 and removed in sing-box 1.12.0",
    )?;
    o.reference(&mut ctx.refs, "route_address_set", RefKind::RuleSet);
    o.reference(&mut ctx.refs, "route_exclude_address_set", RefKind::RuleSet);
    let tun: TunInbound = o.group()?;
    if tun.auto_redirect && !tun.auto_route {
        return Err(o.error_at(
            "auto_redirect",
            "`auto_route` is required by `auto_redirect`",
        ));
    }
    if !tun.include_interface.is_empty() && !tun.exclude_interface.is_empty() {
        return Err(o.error_at(
            "exclude_interface",
            "`include_interface` and `exclude_interface` cannot be used together",
        ));
    }
    for (key, list) in [
        ("include_mac_address", &tun.include_mac_address),
        ("exclude_mac_address", &tun.exclude_mac_address),
    ] {
        for mac in list.iter() {
            super::check::mac_address(mac).map_err(|e| o.error_at(key, e))?;
        }
    }
    for key in ["include_uid_range", "exclude_uid_range"] {
        let ranges = if key == "include_uid_range" {
            &tun.include_uid_range
        } else {
            &tun.exclude_uid_range
        };
        for r in ranges.iter() {
            let ok = r
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                .is_some_and(|(a, b)| a <= b);
            if !ok {
                return Err(
                    o.error_at(key, format!("invalid uid range {r:?}: write \"start:end\""))
                );
            }
        }
    }
    Ok(tun)
}
