//! The `tun` inbound's options as the runtime uses them: checked once when the inbound is
//! built, so `sb run` refuses a config whose TUN fields sb cannot honour yet (naming the
//! field) instead of starting a TUN that silently behaves otherwise than Go's.

use super::loopback::Loopback;
use super::route_plan::RouteOptions;
use sb_config::model::tun::{TunInbound, TunStack, UdpNatBehavior};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Go's default MTU on Linux. Large packets mean few of them: the kernel hands the TUN whole
/// 64 KiB TCP segments, so the userspace stack runs once per 64 KiB instead of once per
/// 1500 bytes. Traffic leaving sb is re-segmented by the kernel for the real links, so the
/// TUN's MTU never reaches the wire.
pub const DEFAULT_MTU: u16 = 65_535;

/// Below this MTU Go turns on GSO/GRO offload (the kernel then hands over 64 KiB segments
/// anyway); at or above it offload gains nothing. sb follows the same rule.
pub const OFFLOAD_BELOW_MTU: u16 = 49_152;

/// What the runtime needs from a `tun` inbound's options.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Device name; `None`: the kernel picks one (`tunN`).
    pub name: Option<String>,
    /// The device MTU.
    pub mtu: u16,
    /// IPv4 addresses with their prefix lengths.
    pub inet4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses with their prefix lengths.
    pub inet6: Vec<(Ipv6Addr, u8)>,
    /// UDP flow idle timeout (`None`: Go's default, 5 minutes).
    pub udp_timeout: Option<Duration>,
    /// The stack the config asked for, as written (`mixed` when not set, Go's default).
    pub stack: &'static str,
    /// `auto_route` and the fields that shape it (`None`: no routes are installed).
    pub auto_route: Option<RouteOptions>,
    /// `loopback_address`: TCP to these addresses is turned back to the host.
    pub loopback: Loopback,
}

/// Go's default `iproute2_table_index`.
pub const DEFAULT_TABLE: u32 = 2022;
/// Go's default `iproute2_rule_index`.
pub const DEFAULT_RULE_INDEX: u32 = 9000;

/// Why the `tun` inbound refuses its options; each text names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TunError {
    /// A field whose effect sb does not implement yet: refused so nobody runs a TUN
    /// believing, say, that routes were installed.
    #[error("{0} is not implemented by sb's tun inbound yet; remove it to run")]
    NotImplemented(&'static str),
    /// `mtu` outside what a TUN device takes.
    #[error("mtu: {0} is outside 1280-65535, what a TUN device takes")]
    Mtu(u32),
    /// `iproute2_table_index` or `iproute2_rule_index` out of range.
    #[error("{field}: {value} is not a valid index")]
    Index {
        /// The config field.
        field: &'static str,
        /// The configured value.
        value: i64,
    },
    /// A uid range that is not `start:end` with start <= end.
    #[error("{field}: bad range {range:?} (want start:end)")]
    UidRange {
        /// The config field.
        field: &'static str,
        /// The range as written.
        range: String,
    },
}

/// A configured index, or the default when zero.
fn index(field: &'static str, v: i64, default: u32) -> Result<u32, TunError> {
    match v {
        0 => Ok(default),
        v => u32::try_from(v)
            .ok()
            .filter(|v| *v < u32::MAX - 10)
            .ok_or(TunError::Index { field, value: v }),
    }
}

/// `a:b` uid ranges (sb-config checked the shape; a bad one is still an error here).
fn uid_ranges(
    field: &'static str,
    single: &[u32],
    ranges: &[String],
) -> Result<Vec<(u32, u32)>, TunError> {
    let mut out: Vec<(u32, u32)> = single.iter().map(|u| (*u, *u)).collect();
    for r in ranges {
        let parsed = r
            .split_once(':')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .filter(|(a, b): &(u32, u32)| a <= b);
        out.push(parsed.ok_or_else(|| TunError::UidRange {
            field,
            range: r.clone(),
        })?);
    }
    Ok(out)
}

fn route_options(t: &TunInbound) -> Result<Option<RouteOptions>, TunError> {
    if !t.auto_route {
        return Ok(None);
    }
    let prefixes = |l: &sb_config::types::Listable<sb_config::types::Prefix>| -> Vec<(IpAddr, u8)> {
        l.iter().map(|p| (p.0.addr(), p.0.prefix_len())).collect()
    };
    Ok(Some(RouteOptions {
        table: index(
            "iproute2_table_index",
            t.iproute2_table_index,
            DEFAULT_TABLE,
        )?,
        rule_index: index(
            "iproute2_rule_index",
            t.iproute2_rule_index,
            DEFAULT_RULE_INDEX,
        )?,
        strict: t.strict_route,
        route_address: prefixes(&t.route_address),
        route_exclude_address: prefixes(&t.route_exclude_address),
        include_interface: t.include_interface.iter().cloned().collect(),
        exclude_interface: t.exclude_interface.iter().cloned().collect(),
        include_uid: uid_ranges(
            "include_uid_range",
            &t.include_uid.iter().copied().collect::<Vec<_>>(),
            &t.include_uid_range.iter().cloned().collect::<Vec<_>>(),
        )?,
        exclude_uid: uid_ranges(
            "exclude_uid_range",
            &t.exclude_uid.iter().copied().collect::<Vec<_>>(),
            &t.exclude_uid_range.iter().cloned().collect::<Vec<_>>(),
        )?,
    }))
}

/// Checks the options and keeps what the runtime uses. The error names the field.
pub fn from_config(t: &TunInbound) -> Result<Settings, TunError> {
    refuse_unimplemented(t)?;
    let mtu = match t.mtu {
        0 => DEFAULT_MTU,
        m => u16::try_from(m)
            .ok()
            .filter(|m| *m >= 1280)
            .ok_or(TunError::Mtu(m))?,
    };
    let (mut inet4, mut inet6) = (Vec::new(), Vec::new());
    for p in t.address.iter() {
        match p.0.addr() {
            std::net::IpAddr::V4(a) => inet4.push((a, p.0.prefix_len())),
            std::net::IpAddr::V6(a) => inet6.push((a, p.0.prefix_len())),
        }
    }
    let stack = match t.stack {
        Some(TunStack::System) => "system",
        Some(TunStack::Gvisor) => "gvisor",
        Some(TunStack::Mixed) | Some(TunStack::Unset) | None => "mixed",
    };
    Ok(Settings {
        name: Some(t.interface_name.clone()).filter(|n| !n.is_empty()),
        mtu,
        inet4,
        inet6,
        udp_timeout: Some(t.udp_timeout.0)
            .filter(|d| !d.is_zero())
            .map(|d| d.to_std()),
        stack,
        auto_route: route_options(t)?,
        loopback: Loopback::new(t.loopback_address.iter().map(|a| a.0)),
    })
}

/// Fields whose effect sb does not implement yet. Each one set makes the build fail with
/// its name, so nobody runs a TUN believing, say, that routes were installed.
fn refuse_unimplemented(t: &TunInbound) -> Result<(), TunError> {
    let set: &[(&'static str, bool)] = &[
        ("auto_redirect", t.auto_redirect),
        ("route_address_set", !t.route_address_set.is_empty()),
        (
            "route_exclude_address_set",
            !t.route_exclude_address_set.is_empty(),
        ),
        ("include_android_user", !t.include_android_user.is_empty()),
        ("include_package", !t.include_package.is_empty()),
        ("exclude_package", !t.exclude_package.is_empty()),
        ("include_mac_address", !t.include_mac_address.is_empty()),
        ("exclude_mac_address", !t.exclude_mac_address.is_empty()),
        ("exclude_mptcp", t.exclude_mptcp),
        ("netns", !t.netns.is_empty()),
        ("dns_mode", t.dns_mode.is_some()),
        ("dns_address", !t.dns_address.is_empty()),
        ("udp_mapping", nat_behaviour_set(t.udp_mapping)),
        ("udp_filtering", nat_behaviour_set(t.udp_filtering)),
        ("udp_nat_max", t.udp_nat_max != 0),
        (
            "platform.http_proxy",
            t.platform
                .as_ref()
                .is_some_and(|p| p.http_proxy.as_ref().is_some_and(|h| h.enabled)),
        ),
    ];
    match set.iter().find(|(_, on)| *on) {
        Some((field, _)) => Err(TunError::NotImplemented(field)),
        None => Ok(()),
    }
}

/// A NAT behaviour other than the default (endpoint independent) is set.
fn nat_behaviour_set(b: Option<UdpNatBehavior>) -> bool {
    !matches!(
        b,
        None | Some(UdpNatBehavior::Unset) | Some(UdpNatBehavior::EndpointIndependent)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tun(json: &str) -> TunInbound {
        let text = format!(r#"{{"inbounds":[{{"type":"tun",{json}}}]}}"#);
        let loaded = sb_config::load_text("t.json", &text).unwrap();
        match &loaded.config.inbounds[0].kind {
            sb_config::model::inbound::InboundKind::Tun(t) => t.clone(),
            _ => panic!("not a tun"),
        }
    }

    #[test]
    fn defaults_are_gos() {
        let s = from_config(&tun(r#""address":["172.19.0.1/30","fdfe::1/126"]"#)).unwrap();
        assert_eq!(s.mtu, 65_535);
        assert_eq!(s.name, None);
        assert_eq!(s.inet4, vec![("172.19.0.1".parse().unwrap(), 30)]);
        assert_eq!(s.inet6, vec![("fdfe::1".parse().unwrap(), 126)]);
        assert_eq!(s.udp_timeout, None);
        assert_eq!(s.stack, "mixed");
    }

    #[test]
    fn fields_are_read() {
        let s = from_config(&tun(
            r#""address":"10.0.0.1/24","interface_name":"sbt0","mtu":9000,"udp_timeout":"30s","stack":"gvisor""#,
        ))
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("sbt0"));
        assert_eq!(s.mtu, 9000);
        assert_eq!(s.udp_timeout, Some(Duration::from_secs(30)));
        assert_eq!(s.stack, "gvisor");
        assert!(s.loopback.is_empty());
        let s = from_config(&tun(
            r#""address":"10.0.0.1/24","loopback_address":["10.7.0.1","fd00:7::1"]"#,
        ))
        .unwrap();
        let both = Loopback::new(["10.7.0.1".parse().unwrap(), "fd00:7::1".parse().unwrap()]);
        assert_eq!(s.loopback, both);
    }

    #[test]
    fn unimplemented_fields_are_refused_by_name() {
        for (json, field) in [
            (r#""auto_route":true,"auto_redirect":true"#, "auto_redirect"),
            (r#""include_package":"a.b""#, "include_package"),
            (r#""exclude_mptcp":true"#, "exclude_mptcp"),
            (r#""udp_mapping":"address_dependent""#, "udp_mapping"),
        ] {
            let e = from_config(&tun(&format!(r#""address":"10.0.0.1/24",{json}"#)))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("{field} is not implemented")), "{e}");
        }
    }

    #[test]
    fn auto_route_fields_are_read_with_gos_defaults() {
        let s = from_config(&tun(r#""address":"10.0.0.1/24""#)).unwrap();
        assert_eq!(s.auto_route, None, "no auto_route: nothing to install");
        let s = from_config(&tun(
            r#""address":"10.0.0.1/24","auto_route":true,"strict_route":true,
               "route_exclude_address":"10.9.0.0/16","exclude_uid":1000,"exclude_uid_range":"2000:2010",
               "include_interface":"eth0""#,
        ))
        .unwrap();
        let r = s.auto_route.unwrap();
        assert_eq!((r.table, r.rule_index, r.strict), (2022, 9000, true));
        assert_eq!(
            r.route_exclude_address,
            vec![("10.9.0.0".parse().unwrap(), 16)]
        );
        assert_eq!(r.exclude_uid, vec![(1000, 1000), (2000, 2010)]);
        assert_eq!(r.include_interface, vec!["eth0".to_string()]);
        let s = from_config(&tun(
            r#""address":"10.0.0.1/24","auto_route":true,"iproute2_table_index":3000,"iproute2_rule_index":7000"#,
        ))
        .unwrap();
        let r = s.auto_route.unwrap();
        assert_eq!((r.table, r.rule_index), (3000, 7000));
    }

    #[test]
    fn mtu_outside_what_a_device_takes_is_refused() {
        for mtu in ["70000", "576"] {
            let e = from_config(&tun(&format!(r#""address":"10.0.0.1/24","mtu":{mtu}"#)))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("mtu:"), "{e}");
        }
    }
}
