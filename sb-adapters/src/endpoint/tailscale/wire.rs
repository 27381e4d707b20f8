//! The parts of tailscaled's Local API answers the endpoint reads: `status`, the IPN bus's
//! `Notify` lines and the health warnings inside them. Field names are tailscaled 1.96's
//! (`ipn/ipnstate`, `ipn/backend.go`), as recorded from a real daemon
//! (`tests/fixtures/tailscale/`). Every field is optional and unknown fields are ignored: a
//! newer daemon that adds or drops fields still decodes, and what is missing reads as empty.

use serde::Deserialize;
use std::collections::BTreeMap;

/// `GET /localapi/v0/status`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Status {
    /// The daemon's version (`1.96.4-t…`).
    pub version: String,
    /// Whether the daemon drives a kernel TUN (false in userspace-networking mode).
    #[serde(rename = "TUN")]
    pub tun: bool,
    /// `NoState`, `NeedsLogin`, `NeedsMachineAuth`, `Stopped`, `Starting`, `Running`.
    pub backend_state: String,
    /// Whether the node has a node key (has logged in before); absent when false.
    pub have_node_key: bool,
    /// Where to log in, while the daemon waits for that.
    #[serde(rename = "AuthURL")]
    pub auth_url: String,
    /// This node's tailnet addresses.
    #[serde(rename = "TailscaleIPs")]
    pub tailscale_ips: Option<Vec<String>>,
    /// This node.
    #[serde(rename = "Self")]
    pub self_: Option<PeerStatus>,
    /// Health messages, one line each.
    pub health: Option<Vec<String>>,
    /// The tailnet's MagicDNS suffix (`tail1234.ts.net`), empty without one.
    #[serde(rename = "MagicDNSSuffix")]
    pub magic_dns_suffix: String,
    /// The other nodes, keyed by node key.
    pub peer: Option<BTreeMap<String, PeerStatus>>,
}

/// One node in `status` (`ipnstate.PeerStatus`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PeerStatus {
    /// Stable node ID (what `ExitNodeID` names).
    #[serde(rename = "ID")]
    pub id: String,
    /// The node's own host name.
    pub host_name: String,
    /// MagicDNS name, with a trailing dot.
    #[serde(rename = "DNSName")]
    pub dns_name: String,
    /// Tailnet addresses.
    #[serde(rename = "TailscaleIPs")]
    pub tailscale_ips: Option<Vec<String>>,
    /// Every prefix routed to the node (its addresses, approved subnet routes, and the
    /// default routes when it is the exit node in use).
    #[serde(rename = "AllowedIPs")]
    pub allowed_ips: Option<Vec<String>>,
    /// Subnet routes the node is the primary router for.
    pub primary_routes: Option<Vec<String>>,
    /// Whether the node is this node's exit node now.
    pub exit_node: bool,
    /// Whether the node offers to be an exit node.
    pub exit_node_option: bool,
    /// Whether the coordination server sees the node online.
    pub online: bool,
}

/// `ipn.State`, as the bus numbers it.
pub fn state_name(n: i64) -> &'static str {
    match n {
        0 => "NoState",
        1 => "InUseOtherUser",
        2 => "NeedsLogin",
        3 => "NeedsMachineAuth",
        4 => "Stopped",
        5 => "Starting",
        6 => "Running",
        _ => "unknown",
    }
}

/// One line of `GET /localapi/v0/watch-ipn-bus` (`ipn.Notify`); only what changed is set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Notify {
    /// A new backend state (`ipn.State`).
    pub state: Option<i64>,
    /// A URL the user must visit to log in.
    #[serde(rename = "BrowseToURL")]
    pub browse_to_url: Option<String>,
    /// An error the daemon reports to its front-ends.
    pub err_message: Option<String>,
    /// Set (to an empty object) when an interactive login finished.
    pub login_finished: Option<serde_json::Value>,
    /// A new network map (peers changed); only sent when the watch asks for it.
    pub net_map: Option<serde_json::Value>,
    /// The daemon's health, whole, when it changed.
    pub health: Option<Health>,
}

/// `health.State`: the warnings now active, keyed by code (`login-state`, `warming-up`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Health {
    /// Active warnings; `null` when there are none.
    pub warnings: Option<BTreeMap<String, Warning>>,
}

/// One health warning.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Warning {
    /// `low`, `medium`, `high`.
    pub severity: String,
    /// Its text, for a person.
    pub text: String,
}

/// The JSON error body the Local API answers a refused request with (`{"Error": "..."}`),
/// or the text as it is.
pub fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(rename = "Error")]
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

#[cfg(test)]
mod tests;
