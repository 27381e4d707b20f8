//! The config as prefs: every mapped field, the exit node forms, and the read-back check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::json;

/// The settings of an endpoint with options `json` (an object's fields), decoded as
/// `sb check` decodes them.
fn settings(json: &str) -> Settings {
    let fields = json
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    let sep = if fields.is_empty() { "" } else { "," };
    let text = format!(r#"{{"endpoints": [{{"type": "tailscale", "tag": "ts"{sep} {fields}}}]}}"#);
    let loaded = sb_config::load_text("t.json", &text).unwrap();
    match &loaded.config.endpoints[0].kind {
        sb_config::model::endpoint::EndpointKind::Tailscale(_, ts) => Settings::new(ts),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_mapped_field_becomes_a_masked_pref() {
    let s = settings(
        r#"{"hostname": "sb-node", "control_url": "http://127.0.0.1:9",
            "accept_routes": true, "exit_node_allow_lan_access": true,
            "advertise_routes": ["10.9.0.0/24"], "advertise_exit_node": true,
            "advertise_tags": ["tag:sb"], "auth_key": "tskey-auth-secret"}"#,
    );
    let m = s.masked_prefs(None);
    for (field, value) in [
        ("Hostname", json!("sb-node")),
        ("ControlURL", json!("http://127.0.0.1:9")),
        ("RouteAll", json!(true)),
        ("ExitNodeAllowLANAccess", json!(true)),
        (
            "AdvertiseRoutes",
            json!(["10.9.0.0/24", "0.0.0.0/0", "::/0"]),
        ),
        ("AdvertiseTags", json!(["tag:sb"])),
        ("ExitNodeID", json!("")),
        ("ExitNodeIP", json!("")),
    ] {
        assert_eq!(m[field], value, "{field}");
        assert_eq!(m[format!("{field}Set")], json!(true), "{field}Set");
    }
    // The key is a secret: not in the prefs, not in Debug.
    assert!(!m.to_string().contains("secret"));
    assert!(!format!("{s:?}").contains("secret"));
}

#[test]
fn empty_hostname_and_control_url_keep_the_daemons_own() {
    let m = settings("{}").masked_prefs(None);
    assert!(m.get("Hostname").is_none() && m.get("ControlURL").is_none());
    assert_eq!(m["RouteAll"], json!(false));
    assert_eq!(m["AdvertiseRoutes"], json!([]));
}

#[test]
fn an_exit_node_by_ip_or_by_name() {
    let m = settings(r#"{"exit_node": "100.64.0.9"}"#).masked_prefs(None);
    assert_eq!(
        (&m["ExitNodeIP"], &m["ExitNodeID"]),
        (&json!("100.64.0.9"), &json!(""))
    );
    let s = settings(r#"{"exit_node": "exit-box"}"#);
    assert_eq!(s.exit_node, ExitNode::Name("exit-box".into()));
    // Not resolvable yet: the exit node fields are left alone until the peers are known.
    assert!(s.masked_prefs(None).get("ExitNodeID").is_none());
    let m = s.masked_prefs(Some("nExit1CNTRL"));
    assert_eq!(
        (&m["ExitNodeID"], &m["ExitNodeIP"]),
        (&json!("nExit1CNTRL"), &json!(""))
    );
}

#[test]
fn the_read_back_names_the_first_field_not_kept() {
    let s = settings(r#"{"hostname": "sb-node", "exit_node": "100.64.0.9"}"#);
    let m = s.masked_prefs(None);
    let mut prefs = json!({"Hostname": "sb-node", "RouteAll": false,
        "ExitNodeAllowLANAccess": false, "AdvertiseRoutes": null, "AdvertiseTags": null,
        "ExitNodeID": "", "ExitNodeIP": "100.64.0.9"});
    assert_eq!(Settings::verify(&m, &prefs), Ok(()));
    // The daemon turned the IP into the node's ID: kept.
    prefs["ExitNodeIP"] = json!("");
    prefs["ExitNodeID"] = json!("nExit1CNTRL");
    assert!(
        Settings::verify(&m, &prefs).is_err(),
        "ExitNodeID was asked to be empty"
    );
    prefs["ExitNodeID"] = json!("");
    prefs["Hostname"] = json!("other");
    assert_eq!(
        Settings::verify(&m, &prefs),
        Err(r#"Hostname (asked "sb-node", has "other")"#.to_string())
    );
}

#[test]
fn fields_of_an_embedded_node_are_listed_as_ignored() {
    let s = settings(
        r#"{"state_directory": "ts", "ephemeral": true, "udp_timeout": "1m",
            "system_interface": true, "relay_server_port": 4000, "listen_port": 41641,
            "ssh_server": true, "taildrop_directory": "/tmp"}"#,
    );
    let fields: Vec<&str> = s.ignored.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        fields,
        [
            "state_directory",
            "ephemeral",
            "listen_port",
            "relay_server_*",
            "system_interface*",
            "udp_timeout",
            "ssh_server",
            "taildrop_directory"
        ]
    );
    assert!(settings("{}").ignored.is_empty());
}

#[test]
fn the_socket_defaults_to_the_systems() {
    assert_eq!(settings("{}").socket, PathBuf::from(DEFAULT_SOCKET));
    let s = settings(r#"{"tailscaled_socket": "/run/ts/ts.sock"}"#);
    assert_eq!(s.socket, PathBuf::from("/run/ts/ts.sock"));
}
