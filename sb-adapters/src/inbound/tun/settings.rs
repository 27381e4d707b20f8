//! The `tun` inbound's options as the runtime uses them: checked once when the inbound is
//! built, so `sb run` refuses a config whose TUN fields sb cannot honour yet (naming the
//! field) instead of starting a TUN that silently behaves otherwise than Go's.

use sb_config::model::tun::{TunInbound, TunStack, UdpNatBehavior};
use std::net::{Ipv4Addr, Ipv6Addr};
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
}

/// Checks the options and keeps what the runtime uses. The error names the field.
pub fn from_config(t: &TunInbound) -> Result<Settings, String> {
    refuse_unimplemented(t)?;
    let mtu = match t.mtu {
        0 => DEFAULT_MTU,
        m => u16::try_from(m)
            .ok()
            .filter(|m| *m >= 1280)
            .ok_or_else(|| format!("mtu: {m} is outside 1280-65535, what a TUN device takes"))?,
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
    })
}

/// Fields whose effect sb does not implement yet. Each one set makes the build fail with
/// its name, so nobody runs a TUN believing, say, that routes were installed.
fn refuse_unimplemented(t: &TunInbound) -> Result<(), String> {
    let set: &[(&str, bool)] = &[
        ("auto_route", t.auto_route),
        ("strict_route", t.strict_route),
        ("auto_redirect", t.auto_redirect),
        ("route_address", !t.route_address.is_empty()),
        ("route_exclude_address", !t.route_exclude_address.is_empty()),
        ("route_address_set", !t.route_address_set.is_empty()),
        (
            "route_exclude_address_set",
            !t.route_exclude_address_set.is_empty(),
        ),
        ("include_interface", !t.include_interface.is_empty()),
        ("exclude_interface", !t.exclude_interface.is_empty()),
        ("include_uid", !t.include_uid.is_empty()),
        ("include_uid_range", !t.include_uid_range.is_empty()),
        ("exclude_uid", !t.exclude_uid.is_empty()),
        ("exclude_uid_range", !t.exclude_uid_range.is_empty()),
        ("include_android_user", !t.include_android_user.is_empty()),
        ("include_package", !t.include_package.is_empty()),
        ("exclude_package", !t.exclude_package.is_empty()),
        ("include_mac_address", !t.include_mac_address.is_empty()),
        ("exclude_mac_address", !t.exclude_mac_address.is_empty()),
        ("loopback_address", !t.loopback_address.is_empty()),
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
        Some((field, _)) => Err(format!(
            "{field} is not implemented by sb's tun inbound yet; remove it to run (routes into the device can be added by hand)"
        )),
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
    }

    #[test]
    fn unimplemented_fields_are_refused_by_name() {
        for (json, field) in [
            (r#""auto_route":true"#, "auto_route"),
            (r#""strict_route":true"#, "strict_route"),
            (
                r#""route_exclude_address":"10.0.0.0/8""#,
                "route_exclude_address",
            ),
            (r#""exclude_uid":1000"#, "exclude_uid"),
            (r#""include_interface":"eth0""#, "include_interface"),
            (r#""udp_mapping":"address_dependent""#, "udp_mapping"),
        ] {
            let e = from_config(&tun(&format!(r#""address":"10.0.0.1/24",{json}"#))).unwrap_err();
            assert!(e.starts_with(&format!("{field} is not implemented")), "{e}");
        }
    }

    #[test]
    fn mtu_outside_what_a_device_takes_is_refused() {
        for mtu in ["70000", "576"] {
            let e =
                from_config(&tun(&format!(r#""address":"10.0.0.1/24","mtu":{mtu}"#))).unwrap_err();
            assert!(e.starts_with("mtu:"), "{e}");
        }
    }
}
