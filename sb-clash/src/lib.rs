//! sb-clash: the Clash API (`experimental.clash_api`), the HTTP controller that dashboards
//! (zashboard, metacubexd, yacd) and GUI front-ends drive.
//!
//! It sits beside the running instance, not in the flow: it reads what the instance exposes
//! for it — the dispatcher's connection tracker and router, the selectors and URL-test
//! groups, the DNS module, the Clash mode holder — and acts on them (switch a selector or the
//! mode, close connections, flush caches). `sb run` starts it after the instance and hands
//! it the new instance's [`View`] on every reload, so a dashboard stays connected across
//! SIGHUP.
//!
//! Routes, status codes, bodies and headers follow Go sing-box 1.14.4, which the contract
//! tests (`tests/tests/clash_api.rs`) run side by side with sb; where sb differs it says so
//! in `docs/clash-api.md`.
//!
//! Layout: [`server`] accepts and serves HTTP/1.1, [`http`] holds the response helpers,
//! CORS and the secret check, [`routes`] maps paths to the handlers in `routes/*.rs`.

pub mod http;
pub mod routes;
pub mod server;

use arc_swap::ArcSwap;
use sb_adapters::outbound::selector::Selector;
use sb_adapters::outbound::urltest::UrlTest;
use sb_config::model::experimental::ClashApi as ClashApiConfig;
use sb_core::dispatch::Dispatcher;
use sb_core::dns::Dns;
use sb_core::router::ClashMode;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub use server::ClashApi;

/// What the API shows and acts on: one running instance (replaced on reload).
pub struct View {
    /// Routes flows; holds the connection tracker, the router and the outbounds.
    pub dispatcher: Arc<Dispatcher>,
    /// The DNS module (`/dns/query`, cache flushes).
    pub dns: Arc<Dns>,
    /// Selectors by tag.
    pub selectors: HashMap<String, Arc<Selector>>,
    /// URL-test groups by tag.
    pub url_tests: HashMap<String, Arc<UrlTest>>,
    /// The Clash mode.
    pub mode: Arc<ClashMode>,
    /// Every outbound and endpoint tag in config order.
    pub order: Vec<String>,
    /// The default outbound's tag.
    pub default_outbound: String,
    /// `log.level` as `/configs` shows it.
    pub log_level: String,
}

impl View {
    /// The view of a built instance.
    pub fn new(built: &sb_adapters::registry::Built, config: &sb_config::Config) -> View {
        View {
            dispatcher: built.dispatcher.clone(),
            dns: built.dns.clone(),
            selectors: built.selectors.clone(),
            url_tests: built.url_tests.clone(),
            mode: built.mode.clone(),
            order: built.outbound_order.clone(),
            default_outbound: built.default_outbound.clone(),
            log_level: log_level(config),
        }
    }
}

/// `/configs`' `log-level`: Go clamps trace (also the default) to debug, and everything
/// above error to error.
fn log_level(config: &sb_config::Config) -> String {
    use sb_config::model::log::LogLevel;
    let level = config.log.as_ref().and_then(|l| l.level);
    match level {
        None | Some(LogLevel::Unset | LogLevel::Trace | LogLevel::Debug) => "debug",
        Some(LogLevel::Info) => "info",
        Some(LogLevel::Warn | LogLevel::Warning) => "warn",
        Some(_) => "error",
    }
    .to_string()
}

/// The API's settings, checked.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen.
    pub listen: String,
    /// The Bearer secret; empty = no authentication.
    pub secret: String,
    /// `access_control_allow_origin` (`*` when empty).
    pub allow_origins: Vec<String>,
    /// `access_control_allow_private_network`.
    pub allow_private_network: bool,
    /// `external_ui`, served at `/ui/`.
    pub external_ui: Option<std::path::PathBuf>,
}

impl Options {
    /// The API's settings, or `None` when the config does not enable it.
    pub fn from_config(config: &sb_config::Config) -> Option<Options> {
        let c: &ClashApiConfig = config.experimental.as_ref()?.clash_api.as_ref()?;
        if c.external_controller.is_empty() {
            return None;
        }
        let origins: Vec<String> = c.access_control_allow_origin.0.clone();
        Some(Options {
            listen: c.external_controller.clone(),
            secret: c.secret.clone(),
            allow_origins: if origins.is_empty() {
                vec!["*".into()]
            } else {
                origins
            },
            allow_private_network: c.access_control_allow_private_network,
            external_ui: (!c.external_ui.is_empty()).then(|| c.external_ui.clone().into()),
        })
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClashError {
    /// `external_controller` is not `host:port`.
    #[error("external controller listen error: {0}: not host:port")]
    Address(String),
    /// Binding failed.
    #[error("external controller listen error: listen tcp {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The state every request handler reads.
pub struct Shared {
    /// The settings.
    pub options: Options,
    /// The running instance, swapped on reload.
    pub view: ArcSwap<View>,
    /// Where it listens (for logs and tests).
    pub local: SocketAddr,
    /// Log lines for `/logs`.
    pub logs: sb_core::log::LogHub,
    /// Delay test results for `/proxies`' `history`.
    pub history: routes::proxies::History,
    /// Turns true when the API closes; streams end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
}
