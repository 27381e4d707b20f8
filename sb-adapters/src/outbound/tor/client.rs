//! The arti client of one `tor` outbound and its bootstrap, run in the background: sb starts
//! at once, the progress is logged as a percentage, and flows that arrive before Tor is
//! ready wait (bounded) for it. A failed bootstrap is retried with a backoff and never
//! stops sb; flows meanwhile fail with `Tor is not bootstrapped yet (NN%)`.

use super::bridge::SbTcp;
use super::status::Status;
use arti_client::config::TorClientConfig;
use arti_client::{BootstrapBehavior, TorClient};
use futures::StreamExt;
use sb_core::dialer::Dialer;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tor_rtcompat::tokio::TokioRustlsRuntime;
use tor_rtcompat::{CompoundRuntime, RuntimeSubstExt};

/// arti's tokio + rustls runtime with sb's TCP provider.
pub type Runtime = CompoundRuntime<
    TokioRustlsRuntime,
    TokioRustlsRuntime,
    TokioRustlsRuntime,
    SbTcp,
    TokioRustlsRuntime,
    TokioRustlsRuntime,
    TokioRustlsRuntime,
>;

/// The arti client.
pub type Client = TorClient<Runtime>;

/// How long a flow waits for the bootstrap before it fails.
pub const BOOTSTRAP_WAIT: Duration = Duration::from_secs(30);
/// First and largest wait between failed bootstrap attempts.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The background work of one outbound's client.
pub struct Tor {
    tag: String,
    status: watch::Sender<Status<Arc<Client>>>,
}

impl Tor {
    /// A client not started yet.
    pub fn new(tag: &str) -> Tor {
        Tor {
            tag: tag.to_string(),
            status: watch::Sender::new(Status::default()),
        }
    }

    /// Makes the client and bootstraps it; runs until the bootstrap succeeded (the client
    /// then keeps itself up to date in its own tasks) or the task is aborted at close.
    pub async fn run(&self, config: TorClientConfig, dialer: Arc<Dialer>) {
        let who = format!("outbound/tor[{}]", self.tag);
        let client = match make(&self.tag, config, dialer).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(target: "outbound", "{who}: cannot start Tor: {e}");
                self.status.send_modify(|s| s.failed = Some(e.into()));
                return;
            }
        };
        self.status.send_modify(|s| s.handle = Some(client.clone()));
        let progress = self.follow(client.clone(), who.clone());
        let bootstrap = async {
            let mut wait = RETRY_MIN;
            loop {
                match client.bootstrap().await {
                    Ok(()) => {
                        self.status.send_modify(|s| {
                            s.ready = true;
                            s.percent = 100;
                        });
                        tracing::info!(target: "outbound", "{who}: Tor bootstrapped");
                        return;
                    }
                    Err(e) => {
                        let e = report(&e);
                        tracing::warn!(target: "outbound", "{who}: bootstrap failed: {e}; retrying in {wait:?}");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(RETRY_MAX);
                    }
                }
            }
        };
        tokio::pin!(progress);
        tokio::select! {
            () = bootstrap => {}
            () = &mut progress => {}
        }
        // Later events only refresh the percentage (a consensus going stale and back).
        progress.await;
    }

    /// Logs each new bootstrap percentage and what arti says blocks it.
    async fn follow(&self, client: Arc<Client>, who: String) {
        let mut events = client.bootstrap_events();
        let mut blocked_said = String::new();
        while let Some(event) = events.next().await {
            let percent = (event.as_frac().clamp(0.0, 1.0) * 100.0) as u8;
            let ready = event.ready_for_traffic();
            let before = self.status.borrow().percent;
            self.status.send_modify(|s| {
                s.percent = percent;
                s.ready |= ready;
            });
            if percent != before {
                tracing::info!(target: "outbound", "{who}: bootstrap {percent}%");
            }
            match event.blocked() {
                Some(b) => {
                    let text = b.to_string();
                    if text != blocked_said {
                        tracing::warn!(target: "outbound", "{who}: bootstrap blocked: {text}");
                        blocked_said = text;
                    }
                }
                None => blocked_said.clear(),
            }
        }
    }

    /// The client once it is ready for streams, waiting at most [`BOOTSTRAP_WAIT`].
    pub async fn ready(&self) -> io::Result<Arc<Client>> {
        super::status::ready(&self.status, BOOTSTRAP_WAIT).await
    }

    /// Drops the client: its tasks end with it.
    pub fn stop(&self) {
        self.status.send_modify(|s| {
            s.handle = None;
            s.ready = false;
        });
    }
}

/// Makes the (not yet bootstrapped) arti client on sb's runtime and dialer.
async fn make(
    tag: &str,
    config: TorClientConfig,
    dialer: Arc<Dialer>,
) -> Result<Arc<Client>, String> {
    // arti's TLS to relays is rustls, which needs a process-wide crypto provider; sb's own
    // TLS names ring explicitly, so installing ring as the default changes nothing else.
    // An error means one is installed already, which serves as well.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = TokioRustlsRuntime::current().map_err(|e| e.to_string())?;
    let runtime = base.with_tcp_provider(SbTcp::new(tag, dialer));
    TorClient::with_runtime(runtime)
        .config(config)
        .bootstrap_behavior(BootstrapBehavior::Manual)
        .create_unbootstrapped_async()
        .await
        .map_err(|e| report(&e))
}

/// An error with its causes, as arti's own reports print them (`a: b: c`).
pub fn report(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
