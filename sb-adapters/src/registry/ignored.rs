//! What the config asks for that the runtime does not act on yet, printed by `sb run` as
//! warnings so nobody believes it is in effect, and `route.auto_detect_interface`'s lookup
//! (which degrades to such a warning when there is no default route).

use sb_config::Config;

/// One line per part of the config the runtime accepts but does not act on.
pub(super) fn ignored_parts(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &config.experimental {
        if let Some(c) = &e.clash_api {
            for (field, set) in [
                (
                    "external_ui_download_url",
                    !c.external_ui_download_url.is_empty(),
                ),
                (
                    "external_ui_download_detour",
                    !c.external_ui_download_detour.is_empty(),
                ),
            ] {
                if set {
                    out.push(format!("experimental.clash_api.{field}: sb does not download dashboards; serve the files in external_ui yourself"));
                }
            }
        }
        if e.cache_file
            .as_ref()
            .is_some_and(|c| c.enabled && c.store_rdrc)
        {
            out.push("experimental.cache_file.store_rdrc: sb does not keep rejected DNS responses; nothing is stored for it".into());
        }
        if e.cache_file
            .as_ref()
            .is_some_and(|c| c.enabled && c.store_dns)
        {
            out.push("experimental.cache_file.store_dns: sb does not keep DNS answers across restarts; nothing is stored for it".into());
        }
    }
    out.extend(routing_loops(config));
    out.extend(wireguard_fields(config));
    if let Some(r) = &config.route {
        // The process search reads /proc; elsewhere process fields never match.
        if r.options.find_process && !cfg!(target_os = "linux") {
            out.push("route.find_process has no effect on this platform in sb".into());
        }
    }
    out
}

/// The `wireguard` endpoint's fields that tune Go's wireguard-go and have no counterpart in
/// sb's driver (one task, no per-flow NAT table of its own).
fn wireguard_fields(config: &Config) -> Vec<String> {
    use sb_config::model::endpoint::EndpointKind;
    let mut out = Vec::new();
    for (i, ep) in config.endpoints.iter().enumerate() {
        let EndpointKind::WireGuard(_, wg) = &ep.kind else {
            continue;
        };
        let tag = sb_config::model::config::effective_tag(Some(&ep.tag), i);
        let set = [
            ("workers", wg.workers != 0),
            ("udp_mapping", wg.udp_mapping.is_some()),
            ("udp_filtering", wg.udp_filtering.is_some()),
            ("udp_nat_max", wg.udp_nat_max != 0),
        ];
        for (field, _) in set.iter().filter(|(_, on)| *on) {
            out.push(format!(
                "endpoints[{i}] (tag {tag:?}).{field}: not applied by sb's WireGuard endpoint"
            ));
        }
    }
    out
}

/// `route.auto_detect_interface`: the interface of the main table's default route, read
/// over netlink before any TUN is up, to bind every direct dial and UDP socket to (Go's way
/// of keeping sb's own traffic out of its TUN: SO_BINDTODEVICE wins over the policy rules).
/// `route.default_interface` takes precedence. Unlike Go, the interface is read once at
/// build and not followed when the default route changes. Returns the interface, or a
/// warning line when there is none.
pub(super) fn detect_interface(config: &Config) -> Result<Option<String>, String> {
    let Some(r) = config.route.as_ref().map(|r| &r.options) else {
        return Ok(None);
    };
    if !r.auto_detect_interface || !r.default_interface.is_empty() {
        return Ok(None);
    }
    match crate::netlink::default_interface() {
        Ok(Some(name)) => {
            tracing::info!(target: "network", "updated default interface {name}");
            Ok(Some(name))
        }
        Ok(None) => Err("route.auto_detect_interface: no default route in the main table; outbound sockets are not bound to an interface".into()),
        Err(e) => Err(format!("route.auto_detect_interface: reading the default route: {e}; outbound sockets are not bound to an interface")),
    }
}

/// A `tun` inbound with `auto_route` sends every connection of the machine into the TUN,
/// sb's own included, unless they are bound to the real interface or marked: without
/// `route.auto_detect_interface`, `default_interface` or `default_mark` they loop. Go's
/// `check` accepts such a config without a word; sb warns at start with the fix (a dial-level `bind_interface` or
/// `routing_mark` on every outbound would also do, so it is not refused).
fn routing_loops(config: &Config) -> Vec<String> {
    use sb_config::model::inbound::InboundKind;
    let way_out = config.route.as_ref().is_some_and(|r| {
        let o = &r.options;
        o.auto_detect_interface || !o.default_interface.is_empty() || o.default_mark.0 != 0
    });
    if way_out {
        return Vec::new();
    }
    config
        .inbounds
        .iter()
        .enumerate()
        .filter(|(_, ib)| matches!(&ib.kind, InboundKind::Tun(t) if t.auto_route))
        .map(|(i, _)| {
            format!(
                "inbounds[{i}] (tag {:?}): auto_route without route.auto_detect_interface, route.default_interface or route.default_mark: sb's own connections enter the TUN again and loop; set \"auto_detect_interface\": true in route",
                config.inbound_tag(i)
            )
        })
        .collect()
}
