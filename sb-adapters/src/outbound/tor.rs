//! The `tor` outbound: TCP flows carried as Tor streams by arti, Tor's Rust client, in sb's
//! own process. The router hands a flow here; the exit relay opens the connection, so a
//! domain destination is resolved by the exit (sb does no DNS for it) and `.onion`
//! destinations reach onion services. Every connection arti makes to the Tor network is
//! dialed by sb with the outbound's dial fields (`tor/bridge.rs`), so `detour` carries Tor's
//! own traffic too.
//!
//! ```text
//! inbound ─> router ─> tor outbound ─> arti stream (isolated per inbound and user)
//!                                        └─ relay TLS ─> SbTcp ─> Dialer (direct / detour)
//! ```
//!
//! The client bootstraps in the background (`tor/client.rs`): sb starts at once, and a flow
//! that arrives before Tor is ready waits for it, bounded. Tor carries no UDP: the outbound
//! says it carries TCP only, so UDP flows routed here fail at once.
//!
//! With `executable_path`, Tor is an external `tor` process instead, driven as Go sing-box
//! drives it (`tor/external.rs`); its own connections leave through sb's dialer too
//! (`tor/upstream.rs`).

mod bridge;
mod client;
mod external;
mod isolation;
mod settings;
mod status;
mod upstream;

use arti_client::{ErrorKind as ArtiKind, HasKind, StreamPrefs, TorAddr};
use sb_config::model::outbound::TorOutbound;
use sb_core::adapter::{BoxFuture, BoxStream, Outbound};
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext, Host};
use sb_core::stream::Forward;
pub use settings::TorError;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tor_proto::client::stream::ClientStreamCtrl;

/// Bound on opening one stream once Tor is ready (a circuit may have to be built first;
/// arti bounds each step itself, this bounds the whole).
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Where Tor runs.
enum Engine {
    /// arti, in process.
    Arti {
        config: Box<arti_client::TorClientConfig>,
        client: Arc<client::Tor>,
    },
    /// An external tor process.
    External(Arc<external::External>),
}

/// Pause between attempts to open a stream that failed for want of a path.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Most attempts per stream (the whole is bounded by [`STREAM_TIMEOUT`] too).
const MAX_ATTEMPTS: u32 = 30;

/// Whether a failed stream may succeed once arti knows more of the network: no path or
/// exit yet, a transient failure. Refusals by the destination or the exit are final.
fn retryable(kind: ArtiKind) -> bool {
    matches!(
        kind,
        ArtiKind::NoPath
            | ArtiKind::NoExit
            | ArtiKind::TransientFailure
            | ArtiKind::CircuitCollapse
    )
}

/// A `tor` outbound.
pub struct Tor {
    tag: String,
    engine: Engine,
    dialer: Arc<Dialer>,
    scratch: Option<PathBuf>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Tor {
    /// Builds it: the options are checked now (an unknown torrc or arti key stops the
    /// start, naming it); Tor itself starts with the instance.
    pub fn new(tag: &str, o: &TorOutbound, dialer: Dialer) -> Result<Tor, TorError> {
        let s = settings::Settings::from_config(tag, o)?;
        let engine = match s.mode {
            settings::Mode::Arti(config) => Engine::Arti {
                config,
                client: Arc::new(client::Tor::new(tag)),
            },
            settings::Mode::External(e) => {
                Engine::External(Arc::new(external::External::new(tag, e)))
            }
        };
        Ok(Tor {
            tag: tag.to_string(),
            engine,
            dialer: Arc::new(dialer),
            scratch: s.scratch,
            task: Mutex::new(None),
        })
    }

    fn task(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::AbortHandle>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A flow's destination as arti takes it: a name goes to the exit as is; an IP address
/// too (arti calls that "dangerous" because the client may have leaked a DNS lookup for
/// it, which is the router's business, not this outbound's).
fn target(dest: &Destination) -> io::Result<TorAddr> {
    use arti_client::{DangerouslyIntoTorAddr, IntoTorAddr};
    let addr = match &dest.host {
        Host::Domain(d) => (d.as_str(), dest.port).into_tor_addr(),
        Host::Ip(ip) => (*ip, dest.port).into_tor_addr_dangerously(),
    };
    addr.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("tor: {dest}: {e}")))
}

/// An arti stream error in the kinds the inbounds answer with.
fn stream_error(e: &arti_client::Error, dest: &Destination, percent: u8) -> io::Error {
    let kind = match e.kind() {
        ArtiKind::BootstrapRequired => return status::not_bootstrapped(percent),
        ArtiKind::RemoteConnectionRefused => io::ErrorKind::ConnectionRefused,
        ArtiKind::RemoteHostNotFound | ArtiKind::OnionServiceNotFound => io::ErrorKind::NotFound,
        ArtiKind::TorNetworkTimeout | ArtiKind::RemoteNetworkTimeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(
        kind,
        format!("tor: connect to {dest}: {}", client::report(e)),
    )
}

impl Outbound for Tor {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "tor"
    }
    fn start(&self) {
        let dialer = self.dialer.clone();
        let task = match &self.engine {
            Engine::Arti { config, client } => {
                let (client, config) = (client.clone(), config.as_ref().clone());
                tokio::spawn(async move { client.run(config, dialer).await })
            }
            Engine::External(e) => {
                let e = e.clone();
                tokio::spawn(async move { e.run(dialer).await })
            }
        };
        if let Some(old) = self.task().replace(task.abort_handle()) {
            old.abort();
        }
    }
    fn close(&self) {
        if let Some(task) = self.task().take() {
            task.abort();
        }
        match &self.engine {
            Engine::Arti { client, .. } => client.stop(),
            Engine::External(e) => e.stop(),
        }
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let client = match &self.engine {
                Engine::Arti { client, .. } => client,
                Engine::External(e) => {
                    return tokio::time::timeout(
                        STREAM_TIMEOUT,
                        e.connect(flow, dest, client::BOOTSTRAP_WAIT),
                    )
                    .await
                    .map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("tor: connect to {dest}: no stream within {STREAM_TIMEOUT:?}"),
                        )
                    })?;
                }
            };
            let target = target(dest)?;
            let tor = client.ready().await?;
            let mut prefs = StreamPrefs::new();
            prefs.set_isolation(isolation::FlowIsolation::of(flow));
            let open = async {
                // A client that has just bootstrapped may not know a usable exit yet (its
                // microdescriptors still arrive): such a stream waits for one, as C tor
                // holds a SOCKS request until a circuit exists, instead of failing at once.
                let mut attempt = 0u32;
                loop {
                    attempt += 1;
                    match tor.connect_with_prefs(target.clone(), &prefs).await {
                        Ok(stream) => return Ok(stream),
                        Err(e) if retryable(e.kind()) && attempt < MAX_ATTEMPTS => {
                            tracing::debug!(target: "outbound", "outbound/tor[{}]: [{}] stream to {dest}: {}; retrying", self.tag, flow.id, client::report(&e));
                            tokio::time::sleep(RETRY_DELAY).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let stream = tokio::time::timeout(STREAM_TIMEOUT, open)
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("tor: connect to {dest}: no stream within {STREAM_TIMEOUT:?}"),
                    )
                })?
                .map_err(|e| {
                    let percent = (tor.bootstrap_status().as_frac() * 100.0) as u8;
                    stream_error(&e, dest, percent)
                })?;
            // Which circuit carries the flow: the isolation between users is visible here.
            if let Some(tunnel) = stream.client_stream_ctrl().and_then(|c| c.tunnel()) {
                let user = flow.user.as_deref().unwrap_or("-");
                tracing::debug!(target: "outbound",
                    "outbound/tor[{}]: [{}] stream to {dest} for inbound {} user {user} on circuit {}",
                    self.tag, flow.id, flow.inbound_tag, tunnel.unique_id());
            }
            Ok(Forward::boxed(stream))
        })
    }
}
