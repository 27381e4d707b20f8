//! The task that drives one tailscaled: connect to its Local API, apply the config's prefs
//! and log in the way `tailscale up` does (prefs, `start` with the auth key, then
//! `login-interactive` when the node has never logged in), then follow the IPN bus for as
//! long as the daemon is there: state changes and login URLs are logged, the view of peers
//! and routes is refreshed. A daemon that is absent or goes away is retried with backoff
//! (1 s doubling to 30 s); what failed is logged once per change, not on every retry.

use super::localapi::{mask, Bus, LocalApi, LocalApiError};
use super::settings::{ExitNode, Settings};
use super::view::View;
use super::wire::{self, Notify, Status};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, error, info, warn};

/// First and longest wait between attempts to reach the daemon.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// While running, status is read again this often (peers come and go without a state
/// change; the bus is not asked for network maps, which are large).
const REFRESH: Duration = Duration::from_secs(30);

/// What the session shares with the endpoint.
pub struct Shared {
    /// `endpoint/tailscale[tag]`, the prefix of every log line.
    pub label: Arc<str>,
    pub settings: Settings,
    pub api: LocalApi,
    pub view: Arc<View>,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A Local API call failed.
    #[error(transparent)]
    Api(#[from] LocalApiError),
    /// The daemon took a prefs edit but did not keep a field.
    #[error("tailscaled did not keep the prefs sb set: {0}")]
    NotKept(String),
}

impl SessionError {
    /// Whether the daemon is simply not there (retried quietly), rather than refusing.
    pub fn unreachable(&self) -> bool {
        matches!(self, SessionError::Api(LocalApiError::Unreachable { .. }))
    }
}

/// The first connection, made while sb starts: the daemon's bus, opened and configured.
pub async fn connect(shared: &Shared) -> Result<Bus, SessionError> {
    // The watch opens first, so no state change between the calls below is missed.
    let bus = shared
        .api
        .watch(mask::INITIAL_STATE | mask::INITIAL_HEALTH_STATE | mask::NO_PRIVATE_KEYS)
        .await?;
    let status = shared.api.status(true).await?;
    shared.view.set_status(&status);
    info!(
        target: "endpoint",
        "{}: tailscaled {} at {} ({}), state {}",
        shared.label,
        status.version,
        shared.api.socket().display(),
        if status.tun { "kernel TUN" } else { "userspace networking: flows go through its Local API" },
        status.backend_state
    );
    configure(shared, &status).await?;
    Ok(bus)
}

/// Applies the prefs, and starts and logs in the daemon when it is not running.
async fn configure(shared: &Shared, status: &Status) -> Result<(), SessionError> {
    let state = status.backend_state.as_str();
    let exit_id = exit_node_id(shared);
    let masked = shared.settings.masked_prefs(exit_id.as_deref());
    let prefs = shared.api.edit_prefs(&masked).await?;
    Settings::verify(&masked, &prefs).map_err(SessionError::NotKept)?;
    debug!(target: "endpoint", "{}: prefs applied", shared.label);
    if matches!(state, "Running" | "Starting") {
        return Ok(());
    }
    // `start` replaces the prefs whole: send back what the daemon has after the edit.
    let mut prefs = prefs;
    prefs["WantRunning"] = serde_json::Value::Bool(true);
    let mut options = serde_json::json!({ "UpdatePrefs": prefs });
    if let Some(key) = &shared.settings.auth_key {
        options["AuthKey"] = serde_json::Value::String(key.clone());
    }
    shared.api.start(&options).await?;
    if !status.have_node_key {
        // A node without a node key waits in NeedsLogin until asked, auth key or not
        // (sing-box #3414's "Authkey is set; but state is NoState"): ask, as `tailscale up`
        // does.
        info!(
            target: "endpoint",
            "{}: logging in{}",
            shared.label,
            if shared.settings.auth_key.is_some() { " with the auth key" } else { "" }
        );
        shared.api.login_interactive().await?;
    }
    Ok(())
}

/// The node ID of `exit_node` given by name, when the peers are known.
fn exit_node_id(shared: &Shared) -> Option<String> {
    let ExitNode::Name(name) = &shared.settings.exit_node else {
        return None;
    };
    let key = name.trim_end_matches('.').to_ascii_lowercase();
    shared.view.read(|s| s.node_ids.get(&key).cloned())
}

/// Runs the session for as long as the endpoint lives, starting from `first` (the bus
/// [`connect`] opened) when there is one.
pub async fn run(shared: Arc<Shared>, mut first: Option<Bus>) {
    let mut wait = BACKOFF.0;
    let mut last_failure = String::new();
    loop {
        let bus = match first.take() {
            Some(bus) => Ok(bus),
            None => connect(&shared).await,
        };
        let result = match bus {
            Ok(bus) => {
                wait = BACKOFF.0;
                last_failure.clear();
                follow(&shared, bus).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                warn!(target: "endpoint", "{}: tailscaled closed its IPN bus; reconnecting", shared.label)
            }
            Err(e) => {
                let text = e.to_string();
                shared.view.update(|s| {
                    if e.unreachable() {
                        s.unreachable = Some(text.clone());
                    } else {
                        s.last_error = Some(text.clone());
                    }
                });
                if text != last_failure {
                    if e.unreachable() {
                        warn!(target: "endpoint", "{}: {text}; retrying with backoff", shared.label);
                    } else {
                        error!(target: "endpoint", "{}: {text}; retrying with backoff", shared.label);
                    }
                    last_failure = text;
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(BACKOFF.1);
    }
}

/// Follows the bus until the daemon closes it.
async fn follow(shared: &Shared, mut bus: Bus) -> Result<(), SessionError> {
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.tick().await;
    // The state as the bus last said it (status may run ahead of the bus).
    let mut state = shared.view.read(|s| s.backend_state.clone());
    loop {
        let notify = tokio::select! {
            n = bus.next() => match n? {
                Some(n) => n,
                None => return Ok(()),
            },
            _ = refresh.tick() => {
                if shared.view.read(|s| s.running()) {
                    refresh_status(shared).await?;
                }
                continue;
            }
        };
        handle(shared, notify, &mut state).await?;
    }
}

/// Reads status into the view; sets a by-name exit node once it can be resolved.
async fn refresh_status(shared: &Shared) -> Result<(), SessionError> {
    let status = shared.api.status(true).await?;
    shared.view.set_status(&status);
    if let ExitNode::Name(name) = &shared.settings.exit_node {
        if status.backend_state == "Running" {
            match exit_node_id(shared) {
                Some(id) => {
                    let prefs = shared.api.prefs().await?;
                    if prefs.get("ExitNodeID").and_then(|v| v.as_str()) != Some(id.as_str()) {
                        let masked = shared.settings.masked_prefs(Some(&id));
                        let prefs = shared.api.edit_prefs(&masked).await?;
                        Settings::verify(&masked, &prefs).map_err(SessionError::NotKept)?;
                        info!(target: "endpoint", "{}: exit node {name} is node {id}", shared.label);
                    }
                }
                None => warn!(
                    target: "endpoint",
                    "{}: exit node {name:?} is not among the tailnet's peers",
                    shared.label
                ),
            }
        }
    }
    Ok(())
}

/// Acts on one notification.
async fn handle(shared: &Shared, n: Notify, state: &mut String) -> Result<(), SessionError> {
    if let Some(url) = n.browse_to_url.as_deref().filter(|u| !u.is_empty()) {
        // The progress a user waits on: where to log in.
        warn!(target: "endpoint", "{}: to log in, visit {url}", shared.label);
        shared.view.update(|s| s.auth_url = Some(url.to_string()));
    }
    if let Some(msg) = n.err_message.as_deref().filter(|m| !m.is_empty()) {
        error!(target: "endpoint", "{}: tailscaled: {msg}", shared.label);
        shared.view.update(|s| s.last_error = Some(msg.to_string()));
    }
    if let Some(health) = &n.health {
        let login = health
            .warnings
            .as_ref()
            .and_then(|w| w.get("login-state"))
            .map(|w| w.text.clone());
        let changed = shared.view.read(|s| s.last_error != login);
        if changed {
            if let Some(text) = &login {
                warn!(target: "endpoint", "{}: {text}", shared.label);
            }
            shared.view.update(|s| s.last_error = login);
        }
    }
    if n.login_finished.is_some() {
        info!(target: "endpoint", "{}: login finished", shared.label);
    }
    if let Some(number) = n.state {
        let name = wire::state_name(number);
        refresh_status(shared).await?;
        if state != name {
            info!(target: "endpoint", "{}: state {state} -> {name}", shared.label);
            *state = name.to_string();
        }
        if name == "Running" {
            shared.view.update(|s| {
                s.auth_url = None;
                s.last_error = None;
            });
        }
    } else if n.net_map.is_some() {
        refresh_status(shared).await?;
    }
    Ok(())
}
