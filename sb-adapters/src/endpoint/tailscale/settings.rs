//! The `tailscale` endpoint's config as what sb asks of tailscaled: the prefs it sets
//! (a MaskedPrefs edit: each field with `<Field>Set: true`), the auth key it logs in with,
//! and the fields daemon mode cannot honour (warned about at start, never silently).
//!
//! The config is the whole truth for the fields it maps, as it is for Go's embedded node: a
//! field the config leaves out is set to its default on the daemon too (`accept_routes`
//! absent turns route acceptance off), except `hostname` and `control_url`, which keep the
//! daemon's own when empty.

use sb_config::model::endpoint::TailscaleEndpoint;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;

/// Where tailscaled's Local API listens by default on Linux.
pub const DEFAULT_SOCKET: &str = "/var/run/tailscale/tailscaled.sock";

/// The endpoint's settings.
#[derive(Clone)]
pub struct Settings {
    /// The Local API socket.
    pub socket: PathBuf,
    /// The pre-authentication key; never logged.
    pub auth_key: Option<String>,
    /// Coordination server, when the config names one.
    pub control_url: Option<String>,
    /// Host name, when the config names one.
    pub hostname: Option<String>,
    /// `accept_routes`.
    pub accept_routes: bool,
    /// `exit_node`: an IP, a name (resolved from the tailnet's peers), or none.
    pub exit_node: ExitNode,
    /// `exit_node_allow_lan_access`.
    pub exit_node_allow_lan_access: bool,
    /// `advertise_routes`, with the two default routes when `advertise_exit_node`.
    pub advertise_routes: Vec<String>,
    /// `advertise_tags`.
    pub advertise_tags: Vec<String>,
    /// Fields set in the config that daemon mode ignores, with why.
    pub ignored: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The auth key is a secret: only whether there is one.
        f.debug_struct("Settings")
            .field("socket", &self.socket)
            .field("auth_key", &self.auth_key.as_ref().map(|_| "<set>"))
            .field("control_url", &self.control_url)
            .field("hostname", &self.hostname)
            .field("exit_node", &self.exit_node)
            .finish_non_exhaustive()
    }
}

/// `exit_node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitNode {
    /// None: any exit node set on the daemon is cleared.
    None,
    /// By tailnet address.
    Ip(IpAddr),
    /// By name: a peer's host name or MagicDNS name, resolved to its node ID from status.
    Name(String),
}

impl Settings {
    /// The settings of `ts`.
    pub fn new(ts: &TailscaleEndpoint) -> Settings {
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        let exit_node = match ts.exit_node.trim() {
            "" => ExitNode::None,
            s => s
                .parse::<IpAddr>()
                .map(ExitNode::Ip)
                .unwrap_or_else(|_| ExitNode::Name(s.to_string())),
        };
        let mut advertise_routes: Vec<String> = ts
            .advertise_routes
            .0
            .iter()
            .map(|p| p.0.trunc().to_string())
            .collect();
        if ts.advertise_exit_node {
            // How tailscaled expresses "offer to be an exit node" (`tailscale up
            // --advertise-exit-node` does the same).
            for default in ["0.0.0.0/0", "::/0"] {
                if !advertise_routes.iter().any(|r| r == default) {
                    advertise_routes.push(default.to_string());
                }
            }
        }
        Settings {
            socket: PathBuf::from(some(&ts.tailscaled_socket).unwrap_or(DEFAULT_SOCKET.into())),
            auth_key: some(&ts.auth_key),
            control_url: some(&ts.control_url),
            hostname: some(&ts.hostname),
            accept_routes: ts.accept_routes,
            exit_node,
            exit_node_allow_lan_access: ts.exit_node_allow_lan_access,
            advertise_routes,
            advertise_tags: ts.advertise_tags.0.clone(),
            ignored: ignored(ts),
        }
    }

    /// The MaskedPrefs edit for the mapped fields; `exit_id` is the node ID `exit_node`
    /// names when it is a name and status resolved it. `WantRunning` is not among them:
    /// `start` sets it, once the coordination server's URL is in place (an edit that set
    /// both at once has the daemon try its default server first).
    pub fn masked_prefs(&self, exit_id: Option<&str>) -> Value {
        let mut m = Map::new();
        let mut set = |field: &str, value: Value| {
            m.insert(field.to_string(), value);
            m.insert(format!("{field}Set"), Value::Bool(true));
        };
        if let Some(url) = &self.control_url {
            set("ControlURL", json!(url));
        }
        if let Some(name) = &self.hostname {
            set("Hostname", json!(name));
        }
        set("RouteAll", json!(self.accept_routes));
        set(
            "ExitNodeAllowLANAccess",
            json!(self.exit_node_allow_lan_access),
        );
        set("AdvertiseRoutes", json!(self.advertise_routes));
        set("AdvertiseTags", json!(self.advertise_tags));
        match (&self.exit_node, exit_id) {
            (ExitNode::None, _) => {
                set("ExitNodeID", json!(""));
                set("ExitNodeIP", json!(""));
            }
            (ExitNode::Ip(ip), _) => {
                set("ExitNodeID", json!(""));
                set("ExitNodeIP", json!(ip.to_string()));
            }
            (ExitNode::Name(_), Some(id)) => {
                set("ExitNodeIP", json!(""));
                set("ExitNodeID", json!(id));
            }
            // Not resolvable yet (not logged in): set when the peers are known.
            (ExitNode::Name(_), None) => {}
        }
        Value::Object(m)
    }

    /// Compares the prefs the daemon answered an edit with against the edit: the first
    /// field it did not keep, as `Field (asked X, has Y)`.
    pub fn verify(masked: &Value, prefs: &Value) -> Result<(), String> {
        let Some(asked) = masked.as_object() else {
            return Ok(());
        };
        for (field, want) in asked {
            if field.ends_with("Set") {
                continue;
            }
            let has = prefs.get(field).unwrap_or(&Value::Null);
            if !same(want, has, field) {
                return Err(format!("{field} (asked {want}, has {has})"));
            }
        }
        Ok(())
    }
}

/// Whether the daemon kept `want`: `null` and an empty list are the same, and an exit
/// node asked for by IP may already have been turned into its node ID.
fn same(want: &Value, has: &Value, field: &str) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
    match field {
        _ if empty(want) && empty(has) => true,
        "ExitNodeIP" => want == has || has.as_str() == Some(""),
        "ControlURL" => {
            want.as_str().map(|s| s.trim_end_matches('/'))
                == has.as_str().map(|s| s.trim_end_matches('/'))
        }
        _ => want == has,
    }
}

/// The fields set in `ts` that a daemon-driving endpoint cannot honour.
fn ignored(ts: &TailscaleEndpoint) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let mut note = |set: bool, field: &'static str, why: &'static str| {
        if set {
            out.push((field, why));
        }
    };
    note(
        !ts.state_directory.is_empty(),
        "state_directory",
        "tailscaled keeps its own state (its --statedir)",
    );
    note(
        ts.ephemeral,
        "ephemeral",
        "tailscaled decides (run it with --state=mem:, or log in with an ephemeral auth key)",
    );
    note(
        ts.listen_port != 0,
        "listen_port",
        "tailscaled picks its WireGuard port (its --port)",
    );
    note(
        ts.relay_server_port != 0 || !ts.relay_server_static_endpoints.0.is_empty(),
        "relay_server_*",
        "tailscaled runs its peer relay itself (`tailscale set --relay-server-port`)",
    );
    note(
        ts.system_interface || !ts.system_interface_name.is_empty() || ts.system_interface_mtu != 0,
        "system_interface*",
        "tailscaled's --tun decides whether there is a system interface",
    );
    note(
        ts.udp_timeout != Default::default(),
        "udp_timeout",
        "tailscaled times its own UDP sessions",
    );
    note(
        ts.ssh_server.is_some(),
        "ssh_server",
        "Tailscale SSH is tailscaled's (`tailscale set --ssh`)",
    );
    note(
        !ts.taildrop_directory.is_empty(),
        "taildrop_directory",
        "Taildrop is tailscaled's",
    );
    out
}

#[cfg(test)]
mod tests;
