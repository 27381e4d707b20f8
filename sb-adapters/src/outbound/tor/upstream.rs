//! The external tor's way out: a SOCKS5 listener of sb's on loopback, with a random user
//! and password (so no other local program can use it), that tor's `Socks5Proxy` points
//! at. Every connection tor makes to the network arrives here and is dialed with the
//! outbound's [`Dialer`] (its `detour`, `bind_interface`, `routing_mark`), as Go's
//! proxybridge does. It is sb's own `socks` inbound with a handler that dials instead of
//! routing: these connections are the outbound's own traffic, not flows for the router.

use crate::inbound::proxy::{Protocols, ProxyInbound};
use sb_config::model::shared::{ListenFields, User};
use sb_core::adapter::{
    BoxFuture, BoxPacketConn, BoxStream, ConnectFailure, FlowHandler, Inbound, Responder,
};
use sb_core::dialer::Dialer;
use sb_core::flow::FlowContext;
use sb_core::relay::{relay_any, Counters};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// The running listener (closed on drop).
pub struct Upstream {
    inbound: Arc<ProxyInbound>,
    user: String,
    pass: String,
    addr: SocketAddr,
}

impl Upstream {
    /// Listens on a free loopback port with fresh credentials.
    pub async fn start(tag: &str, dialer: Arc<Dialer>) -> io::Result<Upstream> {
        let user = random_token();
        let pass = random_token();
        let inbound = Arc::new(ProxyInbound::new(
            &format!("tor-upstream:{tag}"),
            Protocols::Socks,
            ListenFields::default(),
            vec![User {
                username: user.clone(),
                password: pass.clone(),
            }],
        ));
        inbound.clone().start(Arc::new(Dial { dialer })).await?;
        let addr = inbound
            .local_addr()
            .ok_or_else(|| io::Error::other("the upstream listener has no address"))?;
        Ok(Upstream {
            inbound,
            user,
            pass,
            addr,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its user and password.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.user, &self.pass)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let inbound = self.inbound.clone();
        // Closing waits for the accept loop; the runtime may be going away with sb.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { inbound.close().await });
        }
    }
}

/// 128 random bits as hex.
fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Dials each connection with the outbound's dialer and relays it.
struct Dial {
    dialer: Arc<Dialer>,
}

impl FlowHandler for Dial {
    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        mut stream: BoxStream,
        mut responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let dest = flow.destination.clone();
            let upstream = match self.dialer.connect_tcp(&flow, &dest).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(target: "outbound", "tor relay connection to {dest} failed: {e}");
                    responder
                        .failed(&mut stream, &ConnectFailure::Dial(e))
                        .await;
                    return;
                }
            };
            tracing::debug!(target: "outbound", "tor relay connection to {dest}");
            if responder.connected(&mut stream, None).await.is_err() {
                return;
            }
            let _ = relay_any(
                stream,
                upstream,
                Arc::new(Counters::default()),
                sb_core::dispatch::TCP_IDLE_TIMEOUT,
            )
            .await;
        })
    }

    fn handle_udp(
        self: Arc<Self>,
        _flow: FlowContext,
        _client: BoxPacketConn,
    ) -> BoxFuture<'static, ()> {
        // tor's upstream proxy carries TCP only; the socks inbound answers the client.
        Box::pin(async {})
    }
}
