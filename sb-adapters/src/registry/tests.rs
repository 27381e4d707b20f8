//! The registry's verdicts on configs this build cannot run: the texts `sb check` and
//! `sb run` both print, an endpoint's detour in the cycle check, and a type left out by a
//! cargo feature.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{build, check, AdapterError, BuildError, Section};

const KEY: &str = "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4=";

fn config(text: &str) -> sb_config::Config {
    sb_config::load_text("registry.json", text)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn texts(errors: &[BuildError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn types_left_out_of_the_build_are_refused_by_name_every_one_of_them() {
    let c = config(&format!(
        r#"{{"outbounds": [{{"type": "direct"}}, {{"type": "tor", "tag": "t"}}],
            "endpoints": [{{"type": "wireguard", "tag": "wg", "private_key": "{KEY}"}},
                          {{"type": "tailscale", "tag": "ts"}}]}}"#
    ));
    let errors = check(&c);
    let expected: Vec<&str> = [
        (!cfg!(feature = "tor"))
            .then_some(r#"outbounds[1] (tag "t"): type "tor" needs the cargo feature "tor""#),
        (!cfg!(feature = "wireguard")).then_some(
            r#"endpoints[0] (tag "wg"): type "wireguard" needs the cargo feature "wireguard""#,
        ),
        (!cfg!(feature = "tailscale")).then_some(
            r#"endpoints[1] (tag "ts"): type "tailscale" needs the cargo feature "tailscale""#,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(texts(&errors), expected);
    if cfg!(feature = "tailscale") {
        return;
    }
    // Typed: a caller tells "left out of this build" from "sb refuses its options" without
    // the text.
    assert!(matches!(
        errors.last(),
        Some(BuildError::Adapter {
            section: Section::Endpoints,
            index: 1,
            reason: AdapterError::NeedsFeature {
                ty: "tailscale",
                feature: "tailscale"
            },
            ..
        })
    ));
    // `build` stops at the first of the same errors.
    let first = build(&c).err().map(|e| e.to_string());
    assert_eq!(first.as_deref(), Some(texts(&errors)[0].as_str()));
}

#[test]
fn an_endpoint_detour_cycle_is_refused_with_gos_text() {
    // Go 1.14.4 `run` on this config: `start service: start outbound: circular outbound
    // dependency: s -> wg -> s` (its `check` accepts it; sb's refuses it).
    let c = config(&format!(
        r#"{{"endpoints": [{{"type": "wireguard", "tag": "wg", "detour": "s", "private_key": "{KEY}"}}],
            "outbounds": [{{"type": "socks", "tag": "s", "server": "127.0.0.1", "server_port": 1080, "detour": "wg"}}]}}"#
    ));
    let errors = texts(&check(&c));
    assert_eq!(
        errors.last().map(String::as_str),
        Some("circular outbound dependency: s -> wg -> s"),
        "{errors:?}"
    );
}

#[test]
fn runnable_configs_have_nothing_to_report() {
    let c = config(
        r#"{"inbounds": [{"type": "mixed", "listen_port": 0}, {"type": "direct", "listen_port": 0, "network": "udp"}],
            "outbounds": [{"type": "selector", "tag": "s", "outbounds": ["d", "b"]}, {"type": "direct", "tag": "d"}, {"type": "block", "tag": "b"}]}"#,
    );
    assert!(check(&c).is_empty(), "{:?}", texts(&check(&c)));
}

const TUN: &str = r#"{"inbounds": [{"type": "tun", "tag": "t", "address": "172.19.0.1/30"}]}"#;

#[cfg(not(feature = "tun"))]
#[test]
fn tun_left_out_of_the_build_names_its_feature() {
    assert_eq!(
        texts(&check(&config(TUN))),
        [r#"inbounds[0] (tag "t"): type "tun" needs the cargo feature "tun""#]
    );
}

#[cfg(feature = "tun")]
#[test]
fn tun_in_the_build_is_runnable() {
    assert!(check(&config(TUN)).is_empty());
}

/// (Needs a build with the `tun` inbound.)
///
/// Hardening finding 16: with `auto_route` and nothing that keeps sb's own connections out
/// of its TUN (`route.auto_detect_interface`, `default_interface` or `default_mark`), every
/// connection sb makes enters the TUN again and loops. sb warns at start, naming the fix.
#[cfg(feature = "tun")]
#[test]
fn auto_route_without_a_way_out_is_warned_about_with_the_fix() {
    let looping = config(
        r#"{"inbounds": [{"type": "tun", "tag": "t", "address": "172.19.0.1/30", "auto_route": true}]}"#,
    );
    let built = build(&looping).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        built.ignored.iter().any(|w| w
            == r#"inbounds[0] (tag "t"): auto_route without route.auto_detect_interface, route.default_interface or route.default_mark: sb's own connections enter the TUN again and loop; set "auto_detect_interface": true in route"#),
        "{:?}",
        built.ignored
    );
    for way_out in [r#""default_interface": "eth0""#, r#""default_mark": 9011"#] {
        let fine = config(&format!(
            r#"{{"inbounds": [{{"type": "tun", "tag": "t", "address": "172.19.0.1/30", "auto_route": true}}],
                "route": {{{way_out}}}}}"#
        ));
        let built = build(&fine).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !built.ignored.iter().any(|w| w.contains("loop")),
            "{way_out}: {:?}",
            built.ignored
        );
    }
}

/// The WireGuard fields that tune Go's wireguard-go are accepted and said to be without
/// effect, never silently dropped.
#[cfg(feature = "wireguard")]
#[test]
fn wireguard_fields_without_effect_are_warned_about() {
    let c = config(&format!(
        r#"{{"endpoints": [{{"type": "wireguard", "tag": "wg", "private_key": "{KEY}", "workers": 2, "udp_nat_max": 10}}]}}"#
    ));
    let built = build(&c).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        built
            .ignored
            .iter()
            .filter(|w| w.starts_with("endpoints[0]"))
            .collect::<Vec<_>>(),
        [
            r#"endpoints[0] (tag "wg").workers: not applied by sb's WireGuard endpoint"#,
            r#"endpoints[0] (tag "wg").udp_nat_max: not applied by sb's WireGuard endpoint"#,
        ]
    );
}

/// The Clash API's dashboard download is not done by sb; setting it is said so at start.
#[test]
fn a_dashboard_download_url_is_warned_about() {
    let c = config(
        r#"{"experimental": {"clash_api": {"external_controller": "127.0.0.1:0", "external_ui": "ui",
            "external_ui_download_url": "https://example.invalid/ui.zip"}}}"#,
    );
    let built = build(&c).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        built
            .ignored
            .iter()
            .filter(|w| w.contains("clash_api"))
            .collect::<Vec<_>>(),
        ["experimental.clash_api.external_ui_download_url: sb does not download dashboards; serve the files in external_ui yourself"]
    );
}
