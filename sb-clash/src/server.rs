//! The listener: accepts controller connections and serves HTTP/1.1 on each (Go's plain
//! `http.Server`, no TLS), with upgrades for the WebSocket routes. Every request passes CORS
//! first (preflights are answered without a secret, as Go does), then the static UI (outside
//! the secret check, as in Go), then [`crate::routes`], which checks the secret for the
//! paths it knows.

use crate::http::{self as h, Cors, Reply};
use crate::{ClashError, Options, Shared, View};
use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use sb_core::log::LogHub;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How many controller connections are served at once; more wait in the kernel's backlog.
/// A bound, so dashboards (each tab holds four WebSockets) cannot use up the descriptors
/// the proxied flows need.
pub const MAX_CONNECTIONS: usize = 1024;

/// A request's headers must arrive within this time (a slow or silent client cannot hold
/// one of the connection slots by never finishing its request).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The running API.
pub struct ClashApi {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ClashApi {
    /// Binds `options.listen` and serves `view` until [`ClashApi::close`].
    /// `logs` is the hub the process's log layer writes to (for `/logs`).
    pub async fn start(options: Options, view: View, logs: LogHub) -> Result<ClashApi, ClashError> {
        let listener = bind(&options.listen).await?;
        let local = listener.local_addr().map_err(|source| ClashError::Listen {
            addr: options.listen.clone(),
            source,
        })?;
        if options.secret.is_empty() && !local.ip().is_loopback() {
            warn!(target: "clash-api", "listening on {local}, reachable from other hosts, without a secret: anyone who reaches it can switch your outbounds and read your connections; set experimental.clash_api.secret");
        }
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            options,
            view: ArcSwap::from_pointee(view),
            local,
            logs,
            history: Default::default(),
            closing: stopped.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        info!(target: "clash-api", "restful api listening at {local}");
        Ok(ClashApi { shared, stop, task })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Shows a new instance (after a reload).
    pub fn update(&self, view: View) {
        self.shared.history.retain(&view.order);
        self.shared.view.store(Arc::new(view));
    }

    /// Stops listening and ends every controller connection (streams included).
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `host:port` (an empty host: every address, as Go's `net.Listen`).
async fn bind(listen: &str) -> Result<TcpListener, ClashError> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| ClashError::Address(listen.to_string()))?;
    let port: u16 = port
        .parse()
        .map_err(|_| ClashError::Address(listen.to_string()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    TcpListener::bind((host, port))
        .await
        .map_err(|source| ClashError::Listen {
            addr: listen.to_string(),
            source,
        })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p,
            _ = stopped.changed() => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: the listener itself is fine.
                warn!(target: "clash-api", "accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| serve(shared.clone(), req));
            let mut builder = http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

/// One request, through CORS, the UI, the secret check and the routes.
async fn serve(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let o = &shared.options;
    let cors = Cors {
        origins: &o.allow_origins,
        private_network: o.allow_private_network,
    };
    if Cors::is_preflight(req.method(), req.headers()) {
        return Ok(cors.preflight(req.headers()));
    }
    let headers = req.headers().clone();
    let mut response = if let Some(r) = crate::routes::ui::serve(o, &req).await {
        r
    } else {
        let authorized = h::authorized(&o.secret, req.uri(), req.headers());
        crate::routes::route(&shared, req, authorized).await
    };
    cors.decorate(&headers, &mut response);
    Ok(response)
}
