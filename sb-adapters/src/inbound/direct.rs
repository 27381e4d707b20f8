//! The `direct` inbound: a TCP tunnel. Each accepted connection becomes a flow to
//! `override_address:override_port` (either part defaulting to the address the client
//! connected to), which the router then sends on. UDP datagrams on the same address become
//! UDP flows to the same destination, one per client address.

use super::listener;
use sb_config::model::inbound::DirectInbound;
use sb_config::model::shared::ListenFields;
use sb_config::types::Network as ConfigNetwork;
use sb_core::adapter::{BoxFuture, FlowHandler, Inbound, NoReply};
use sb_core::flow::{Destination, FlowContext, Network};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{info, Instrument};

/// A `direct` inbound.
pub struct DirectIn {
    tag: Arc<str>,
    listen: ListenFields,
    options: DirectInbound,
    serving: listener::Serving,
}

impl DirectIn {
    /// Builds it (every option it has is valid as sb-config checked it: nothing to refuse).
    pub fn new(tag: &str, listen: ListenFields, options: DirectInbound) -> DirectIn {
        DirectIn {
            tag: tag.into(),
            listen,
            options,
            serving: listener::Serving::default(),
        }
    }

    fn serves(&self, n: ConfigNetwork) -> bool {
        self.options.network.is_empty() || self.options.network.iter().any(|x| *x == n)
    }

    fn destination(&self, local: SocketAddr) -> Destination {
        let mut d = if self.options.override_address.is_empty() {
            Destination::from_socket(local)
        } else {
            Destination::from_host(&self.options.override_address, local.port())
        };
        if self.options.override_port != 0 {
            d.port = self.options.override_port;
        }
        d
    }
}

impl Inbound for DirectIn {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "direct"
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        self.serving.local()
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.serving.close())
    }
    fn start(self: Arc<Self>, handler: Arc<dyn FlowHandler>) -> BoxFuture<'static, io::Result<()>> {
        Box::pin(async move {
            let label = format!("inbound/direct[{}]", self.tag);
            let mut addr = None;
            if self.serves(ConfigNetwork::Tcp) {
                let listener = listener::bind(&self.listen)?;
                let local = listener.local_addr()?;
                addr = Some(local);
                info!(target: "inbound", tag = %label, "tcp server started at {local}");
                let me = self.clone();
                let handler = handler.clone();
                let label = label.clone();
                let task = tokio::spawn(listener::serve(listener, move |stream, peer| {
                    let me = me.clone();
                    let handler = handler.clone();
                    let label = label.clone();
                    async move {
                        let _ = listener::configure(&me.listen, &stream);
                        let at = stream.local_addr().unwrap_or(local);
                        let mut flow = FlowContext::new(
                            me.tag.clone(),
                            "direct",
                            Network::Tcp,
                            peer,
                            me.destination(at),
                        );
                        flow.local = Some(at);
                        let span = tracing::info_span!("flow", id = flow.id);
                        async move {
                            info!(target: "inbound", tag = %label, "inbound connection from {peer}");
                            handler.handle_tcp(flow, Box::new(stream), Box::new(NoReply)).await;
                        }
                        .instrument(span)
                        .await;
                    }
                }));
                self.serving.add(task);
            }
            if self.serves(ConfigNetwork::Udp) {
                // The same address as TCP, so one `listen_port: 0` gives one port for both.
                let bind_to = addr.unwrap_or_else(|| {
                    SocketAddr::new(
                        self.listen.listen.map_or(listener::DEFAULT_LISTEN, |i| i.0),
                        self.listen.listen_port,
                    )
                });
                let socket = Arc::new(tokio::net::UdpSocket::bind(bind_to).await?);
                let local = socket.local_addr()?;
                addr.get_or_insert(local);
                info!(target: "inbound", tag = %label, "udp server started at {local}");
                let dest = self.destination(local);
                self.serving.add_udp(&socket);
                let task = tokio::spawn(super::udp_nat::serve(
                    socket,
                    self.tag.clone(),
                    "direct",
                    dest,
                    handler,
                    super::udp_timeout(&self.listen),
                    super::udp_nat::MAX_SESSIONS,
                ));
                self.serving.add(task);
            }
            if let Some(a) = addr {
                self.serving.set_local(a);
            }
            Ok(())
        })
    }
}
