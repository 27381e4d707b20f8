//! The `tailscale` endpoint in daemon mode: sb drives an existing `tailscaled` through its
//! Local API instead of embedding a Tailscale node (Go sing-box embeds `tsnet`). Where it
//! sits in the flow:
//!
//! ```text
//!  router ─> connect_tcp ─┬─ kernel-TUN daemon: a host socket (the kernel routes it to tailscale0)
//!                         └─ userspace daemon:  POST /localapi/v0/dial (Upgrade: ts-dial) ─> peer
//!  session.rs: Local API ─> prefs, start, login; IPN bus ─> view.rs (state, peers, routes)
//! ```
//!
//! - `settings.rs`: the config as prefs (MaskedPrefs) and the fields daemon mode ignores;
//!   `localapi.rs`: the Local API client over the unix socket; `wire.rs`: the JSON the
//!   daemon answers with; `session.rs`: the task that applies the config, logs in, follows
//!   the bus and reconnects; `view.rs`: state, routes and names for flows and
//!   `preferred_by` rules.
//! - A daemon that is absent at start does not stop sb: the endpoint says so, retries with
//!   backoff, and its flows fail at once with that reason until the daemon is up. A daemon
//!   that is there and refuses the config does stop sb's start (fail fast).
//! - No flows enter sb from the tailnet in daemon mode: peers reach the host through the
//!   daemon, not through sb (`docs/tailscale.md` lists this and the other gaps).

mod localapi;
mod session;
mod settings;
pub mod view;
pub mod wire;

pub use localapi::{decode_notify, Lines, LocalApi, LocalApiError, MAX_NOTIFY};
use sb_config::model::endpoint::TailscaleEndpoint;
use sb_config::model::shared::DialFields;
use sb_core::adapter::{
    BoxFuture, BoxPacketConn, BoxStream, Endpoint, FlowHandler, Outbound, PreferredRoutes,
};
use sb_core::dialer::{DialOptions, Dialer};
use sb_core::flow::{Destination, FlowContext, Network};
use session::Shared;
use settings::Settings;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::warn;
use view::View;

/// How long sb's start waits for the daemon before going on without it.
const FIRST_CONTACT: Duration = Duration::from_secs(10);

/// A `tailscale` endpoint.
pub struct Tailscale {
    tag: String,
    shared: Arc<Shared>,
    /// Fields of the config daemon mode ignores, warned about at start.
    ignored: Vec<(&'static str, &'static str)>,
    /// With a kernel-TUN daemon, flows are host sockets: the system's routes lead into the
    /// tailnet.
    host: Dialer,
    session: Mutex<Option<JoinHandle<()>>>,
}

impl Tailscale {
    /// An endpoint tagged `tag` with options `ts`; `dial` only matters to Go's embedded
    /// node (its control-plane connection), so it is reported as ignored when set.
    pub fn new(
        tag: &str,
        dial: &DialFields,
        ts: &TailscaleEndpoint,
    ) -> Result<Tailscale, LocalApiError> {
        let label: Arc<str> = Arc::from(format!("endpoint/tailscale[{tag}]"));
        let settings = Settings::new(ts);
        let mut ignored = settings.ignored.clone();
        if dial != &DialFields::default() {
            ignored.push((
                "dial fields",
                "tailscaled makes its own connections to the coordination server",
            ));
        }
        let api = LocalApi::new(&settings.socket).map_err(|e| LocalApiError::Protocol {
            call: "client",
            path: settings.socket.clone(),
            detail: e.to_string(),
        })?;
        Ok(Tailscale {
            tag: tag.to_string(),
            shared: Arc::new(Shared {
                label,
                settings,
                api,
                view: Arc::new(View::default()),
            }),
            ignored,
            host: Dialer::Direct(DialOptions::default()),
            session: Mutex::new(None),
        })
    }

    /// Fails a flow at once when the daemon cannot carry it now.
    fn ready(&self) -> io::Result<bool> {
        self.shared.view.read(|s| {
            if s.running() {
                Ok(s.tun)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("{}: {}", self.shared.label, s.why_not()),
                ))
            }
        })
    }

    /// `dest` with a MagicDNS or peer host name replaced by the peer's address (both modes:
    /// the host resolver may not know the tailnet's names, sing-box #2685).
    fn resolve(&self, dest: &Destination) -> Destination {
        if let Some(domain) = dest.domain() {
            let found = self.shared.view.read(|s| {
                s.lookup(domain).and_then(|ips| {
                    ips.iter()
                        .find(|ip| ip.is_ipv4())
                        .or_else(|| ips.first())
                        .copied()
                })
            });
            if let Some(ip) = found {
                return Destination::from_socket(std::net::SocketAddr::new(ip, dest.port));
            }
        }
        dest.clone()
    }
}

impl Outbound for Tailscale {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn kind(&self) -> &'static str {
        "tailscale"
    }

    fn networks(&self) -> &'static [Network] {
        &[Network::Tcp, Network::Udp]
    }

    fn preferred_routes(&self) -> Option<&dyn PreferredRoutes> {
        Some(&*self.shared.view)
    }

    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let tun = self.ready()?;
            let dest = self.resolve(dest);
            if tun {
                return self.host.connect_tcp(flow, &dest).await;
            }
            let host = match (dest.ip(), dest.domain()) {
                (Some(ip), _) => ip.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => String::new(),
            };
            self.shared.api.dial(&host, dest.port).await.map_err(|e| {
                let kind = match &e {
                    LocalApiError::Unreachable { .. } => io::ErrorKind::NotConnected,
                    _ => io::ErrorKind::ConnectionRefused,
                };
                io::Error::new(kind, format!("{}: {e}", self.shared.label))
            })
        })
    }

    fn connect_udp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        Box::pin(async move {
            if self.ready()? {
                return self.host.listen_udp(flow, &self.resolve(dest)).await;
            }
            // The Local API's dial is a byte stream: datagram boundaries would not survive.
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: tailscaled runs in userspace-networking mode, and its Local API carries \
                     no UDP for sb (run it with a TUN for UDP)",
                    self.shared.label
                ),
            ))
        })
    }
}

impl Endpoint for Tailscale {
    fn start_endpoint(
        self: Arc<Self>,
        _handler: Arc<dyn FlowHandler>,
    ) -> BoxFuture<'static, io::Result<()>> {
        Box::pin(async move {
            let label = &self.shared.label;
            for (field, why) in &self.ignored {
                warn!(target: "endpoint", "{label}: {field} is ignored when driving tailscaled: {why}");
            }
            let first = match tokio::time::timeout(FIRST_CONTACT, session::connect(&self.shared))
                .await
            {
                Ok(Ok(bus)) => Some(bus),
                // A daemon that refuses the config stops the start, naming the endpoint.
                Ok(Err(e)) if !e.unreachable() => {
                    return Err(io::Error::other(format!("{label}: {e}")));
                }
                Ok(Err(e)) => {
                    warn!(target: "endpoint", "{label}: {e}; sb starts without it and retries with backoff");
                    let text = e.to_string();
                    self.shared.view.update(|s| s.unreachable = Some(text));
                    None
                }
                Err(_) => {
                    let text = format!(
                        "tailscaled at {} did not answer within {FIRST_CONTACT:?}",
                        self.shared.api.socket().display()
                    );
                    warn!(target: "endpoint", "{label}: {text}; sb starts without it and retries with backoff");
                    self.shared.view.update(|s| s.unreachable = Some(text));
                    None
                }
            };
            let task = tokio::spawn(session::run(self.shared.clone(), first));
            if let Ok(mut slot) = self.session.lock() {
                *slot = Some(task);
            }
            Ok(())
        })
    }

    fn close_endpoint(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let task = self.session.lock().ok().and_then(|mut s| s.take());
            if let Some(task) = task {
                task.abort();
                let _ = task.await;
            }
        })
    }
}
