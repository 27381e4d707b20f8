//! The `wireguard` endpoint (userspace mode): a WireGuard interface inside sb, an outbound and
//! an inbound at once. Where it sits in the flow:
//!
//! ```text
//!  router ─> connect_tcp/connect_udp ─> userspace stack (sb-core netstack) ─┐
//!                                                                           TunnelDevice
//!  router <─ flows from peers (inbound tag = the endpoint's) <─ stack <─────┘   │
//!                                                      driver.rs (boringtun, UDP socket)
//!                                                                               │ peers
//! ```
//!
//! - `settings.rs`: the config's keys, peers and defaults; `routes.rs`: allowed-IPs routing
//!   (also the endpoint's `preferred_by` routes); `driver.rs`: the one loop that owns the
//!   peers' `Tunn`s and the outer UDP socket (run in the stack's task); `device.rs`: the
//!   tunnel as the stack's packet device.
//! - The outer socket is made by the endpoint's dial fields: bound to `listen_port` when set,
//!   else any port, or a UDP association through `detour`.
//! - Flows from peers enter the router with the endpoint's tag; a destination that is one of
//!   the endpoint's own addresses is rewritten to loopback, as in Go.
//! - Peers' endpoints given as domain names are resolved in the post-start stage, once DNS
//!   is up, through the dial fields' resolver.

mod batch;
mod device;
mod driver;
mod routes;
mod settings;
#[cfg(feature = "tun")]
mod system;

use device::{TunnelDevice, QUEUE};
use driver::{Command, Driver};
use routes::Routes;
use sb_config::model::endpoint::WireGuardEndpoint;
use sb_core::adapter::{
    BoxFuture, BoxPacketConn, BoxStream, Endpoint, FlowHandler, Outbound, PacketConn, PingVerdict,
    PreferredRoutes, Responder,
};
use sb_core::conn_limit::ConnBudget;
use sb_core::dialer::{resolve_with, Dialer};
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::netstack::{FlowSource, NetStack, Options, PacketPool, RxBatch, StackUdpSocket};
use settings::Settings;
pub use settings::SettingsError;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::debug;

/// Kernel buffer asked for the outer UDP socket, each way (wireguard-go asks 7 MiB).
const OUTER_BUFFER: usize = 4 << 20;

/// A `wireguard` endpoint.
pub struct WireGuard {
    tag: String,
    label: Arc<str>,
    settings: Settings,
    routes: Arc<Routes>,
    dialer: Dialer,
    running: Mutex<Option<Running>>,
}

/// What a started endpoint holds.
struct Running {
    /// The stack, whose task also runs the driver.
    stack: Arc<NetStack>,
    commands: mpsc::UnboundedSender<Command>,
    /// `system: true`: the kernel interface, and the dialer bound to it that the
    /// endpoint's outbound flows use.
    kernel: Option<Kernel>,
}

/// A `system: true` endpoint's interface and dialer.
struct Kernel {
    #[cfg(feature = "tun")]
    interface: system::System,
    dialer: Arc<Dialer>,
}

impl WireGuard {
    /// Builds it from the config: keys and peers are read now, nothing is bound until the
    /// endpoint starts.
    pub fn new(
        tag: &str,
        options: &WireGuardEndpoint,
        dialer: Dialer,
    ) -> Result<WireGuard, SettingsError> {
        let settings = Settings::from_config(options)?;
        Ok(WireGuard {
            tag: tag.to_string(),
            label: format!("endpoint/wireguard[{tag}]").into(),
            routes: Arc::new(Routes::new(&settings.peers)),
            settings,
            dialer,
            running: Mutex::new(None),
        })
    }

    /// With `system: true`, the dialer bound to the kernel interface.
    fn kernel_dialer(&self) -> Option<Arc<Dialer>> {
        self.running.lock().ok().and_then(|r| {
            r.as_ref()
                .and_then(|r| r.kernel.as_ref().map(|k| k.dialer.clone()))
        })
    }

    fn stack(&self) -> io::Result<Arc<NetStack>> {
        self.running
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.stack.clone()))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("{} is not started", self.label),
                )
            })
    }

    /// `dest` as an address, resolved through the dial fields' resolver.
    async fn address(&self, dest: &Destination) -> io::Result<SocketAddr> {
        resolve_with(self.dialer.resolver(), dest)
            .await?
            .into_iter()
            .find(|a| self.settings.local_address(a.ip()).is_some())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("{}: no address of {dest}'s family", self.label),
                )
            })
    }

    /// The endpoint's own address to send to `remote` from.
    fn local_for(&self, remote: SocketAddr) -> io::Result<SocketAddr> {
        self.settings
            .local_address(remote.ip())
            .map(|ip| SocketAddr::new(ip, 0))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("{}: no local address for {remote}", self.label),
                )
            })
    }

    /// With `system: true`, opens the kernel interface (its reads go to the driver through
    /// `to_driver`) and the dialer bound to it; returns them and the driver's side of it.
    #[cfg(feature = "tun")]
    fn open_kernel(
        &self,
        to_driver: &mpsc::Sender<Vec<u8>>,
    ) -> io::Result<(Option<Kernel>, Option<driver::ToSystem>)> {
        if !self.settings.system {
            return Ok((None, None));
        }
        let (queue, from_driver) = mpsc::channel(QUEUE);
        let interface = system::System::open(
            self.label.clone(),
            &system::Interface {
                name: &self.settings.name,
                mtu: self.settings.mtu,
                addresses: &self.settings.addresses,
            },
            to_driver.clone(),
            from_driver,
        )?;
        let opts = sb_core::dialer::DialOptions {
            bind_interface: Some(interface.name().to_string()),
            domain_resolver: self.dialer.resolver().cloned(),
            ..Default::default()
        };
        tracing::info!(target: "endpoint", tag = %self.label, "interface {} up", interface.name());
        Ok((
            Some(Kernel {
                interface,
                dialer: Arc::new(Dialer::Direct(opts)),
            }),
            Some(driver::ToSystem {
                queue,
                own: self.settings.addresses.clone(),
            }),
        ))
    }

    /// Without TUN support `system: true` was refused with the config.
    #[cfg(not(feature = "tun"))]
    fn open_kernel(
        &self,
        _to_driver: &mpsc::Sender<Vec<u8>>,
    ) -> io::Result<(Option<Kernel>, Option<driver::ToSystem>)> {
        Ok((None, None))
    }

    /// The outer socket: bound to `listen_port`, or made by the dial fields.
    async fn outer_socket(&self) -> io::Result<BoxPacketConn> {
        match (&self.dialer, self.settings.listen_port) {
            (Dialer::Direct(opts), port) => {
                let socket = sb_core::udp::DirectUdp::bind_port(opts, port)?;
                // The whole tunnel's traffic passes this one socket: with the default
                // buffer, a burst from the peer overflows it (measured: thousands of
                // drops in a 100 MiB download, each a loss inside the tunnel).
                match socket.grow_buffers(OUTER_BUFFER) {
                    Ok(got) => {
                        debug!(target: "endpoint", tag = %self.label, "outer socket buffer: {got} bytes")
                    }
                    Err(e) => {
                        debug!(target: "endpoint", tag = %self.label, "outer socket buffer: {e}")
                    }
                }
                Ok(Arc::new(socket))
            }
            _ => {
                let first = self
                    .settings
                    .peers
                    .iter()
                    .find_map(|p| p.endpoint.clone())
                    .map_or_else(
                        || Destination::from_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
                        |(host, port)| Destination::from_host(&host, port),
                    );
                let flow = FlowContext::internal(self.label.clone(), Network::Udp, first.clone());
                self.dialer.listen_udp(&flow, &first).await
            }
        }
    }
}

impl Outbound for WireGuard {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "wireguard"
    }
    fn networks(&self) -> &'static [Network] {
        &[Network::Tcp, Network::Udp]
    }
    fn preferred_routes(&self) -> Option<&dyn PreferredRoutes> {
        Some(self.routes.as_ref())
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            if let Some(kernel) = self.kernel_dialer() {
                return kernel.connect_tcp(flow, dest).await;
            }
            let stack = self.stack()?;
            let remote = self.address(dest).await?;
            let local = self.local_for(remote)?;
            let timeout = self.dialer.handshake_timeout();
            let stream = stack.connect_tcp(local, remote, timeout).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
    fn ping<'a>(
        &'a self,
        _flow: &'a FlowContext,
        dest: IpAddr,
        timeout: std::time::Duration,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if self.kernel_dialer().is_some() {
                // The replies would be for the interface's own address, which the kernel
                // takes: a system-mode endpoint has no ICMP of its own (as Go's). Pings
                // from the host itself (`ping -I <name>`) go through it.
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "ping through a system-mode endpoint",
                ));
            }
            let stack = self.stack()?;
            let local = self.local_for(SocketAddr::new(dest, 0))?;
            stack.ping(local.ip(), dest, timeout).await.map(|_| ())
        })
    }
    fn connect_udp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        Box::pin(async move {
            if let Some(kernel) = self.kernel_dialer() {
                return kernel.listen_udp(flow, dest).await;
            }
            let stack = self.stack()?;
            let remote = self.address(dest).await?;
            let socket = stack.bind_udp(self.local_for(remote)?)?;
            Ok(Arc::new(TunnelUdp {
                socket,
                resolver: self.dialer.resolver().cloned(),
            }) as BoxPacketConn)
        })
    }
}

impl Endpoint for WireGuard {
    fn start_endpoint(
        self: Arc<Self>,
        handler: Arc<dyn FlowHandler>,
    ) -> BoxFuture<'static, io::Result<()>> {
        Box::pin(async move {
            let outer = self.outer_socket().await?;
            let (to_stack, from_driver) = mpsc::channel(QUEUE);
            let (to_driver, from_stack) = mpsc::channel(QUEUE);
            let to_driver_for_kernel = to_driver.clone();
            let device = Arc::new(TunnelDevice::new(from_driver, to_driver));
            let mtu = self.settings.mtu;
            let source = FlowSource {
                tag: self.tag.as_str().into(),
                kind: "wireguard",
                label: self.label.clone(),
                handler: Arc::new(ToLoopback {
                    own: self.settings.addresses.iter().map(|a| a.addr()).collect(),
                    inner: handler,
                }),
                udp_timeout: Some(self.settings.udp_timeout),
            };
            let (commands, commands_rx) = mpsc::unbounded_channel();
            let (kernel, to_system) = self.open_kernel(&to_driver_for_kernel)?;
            let driver = Driver::new(
                self.label.clone(),
                outer,
                self.settings.private.clone(),
                &self.settings.peers,
                self.routes.clone(),
                to_stack,
                to_system,
            );
            let stack = NetStack::start(
                device,
                Options {
                    mtu,
                    pool: PacketPool::for_mtu(usize::from(mtu)),
                    batch: RxBatch::new(64, usize::from(mtu), 0),
                    reflect: None,
                    accept: Some(source),
                    max_udp_flows: sb_core::netstack::MAX_UDP_FLOWS,
                    connections: ConnBudget::process(),
                    // The driver and the stack trade every packet: one task for both.
                    beside: Some(Box::pin(driver.run(from_stack, commands_rx))),
                },
            )?;
            if let Ok(mut r) = self.running.lock() {
                *r = Some(Running {
                    stack: Arc::new(stack),
                    commands,
                    kernel,
                });
            }
            tracing::info!(target: "endpoint", tag = %self.label, "started");
            Ok(())
        })
    }

    fn post_start(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            for (i, peer) in self.settings.peers.iter().enumerate() {
                let Some((host, port)) = &peer.endpoint else {
                    continue;
                };
                if host.parse::<IpAddr>().is_ok() {
                    continue;
                }
                let dest = Destination::from_host(host, *port);
                let addr = resolve_with(self.dialer.resolver(), &dest)
                    .await
                    .and_then(|a| {
                        a.into_iter()
                            .next()
                            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
                    })
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("resolve peer {i} endpoint {host}: {e}"))
                    })?;
                if let Some(r) = self
                    .running
                    .lock()
                    .ok()
                    .and_then(|r| r.as_ref().map(|r| r.commands.clone()))
                {
                    let _ = r.send(Command::SetEndpoint(i, addr));
                }
            }
            Ok(())
        })
    }

    fn close_endpoint(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let running = self.running.lock().ok().and_then(|mut r| r.take());
            if let Some(r) = running {
                // Its task runs the driver: the outer socket is closed when this returns.
                r.stack.close().await;
                #[cfg(feature = "tun")]
                if let Some(k) = r.kernel {
                    k.interface.close().await;
                }
            }
        })
    }
}

/// Flows from peers to one of the endpoint's own addresses go to this host's loopback
/// instead (Go's endpoint does the same), so a peer can reach services sb's host runs.
struct ToLoopback {
    own: Vec<IpAddr>,
    inner: Arc<dyn FlowHandler>,
}

impl ToLoopback {
    fn rewrite(&self, flow: &mut FlowContext) {
        if let Some(addr) = flow.destination.socket_addr() {
            if self.own.contains(&addr.ip()) {
                let lo = if addr.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(Ipv6Addr::LOCALHOST)
                };
                flow.destination = Destination::from_socket(SocketAddr::new(lo, addr.port()));
            }
        }
    }
}

impl FlowHandler for ToLoopback {
    fn handle_tcp(
        self: Arc<Self>,
        mut flow: FlowContext,
        stream: BoxStream,
        responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        self.rewrite(&mut flow);
        self.inner.clone().handle_tcp(flow, stream, responder)
    }
    fn handle_udp(
        self: Arc<Self>,
        mut flow: FlowContext,
        client: BoxPacketConn,
    ) -> BoxFuture<'static, ()> {
        self.rewrite(&mut flow);
        self.inner.clone().handle_udp(flow, client)
    }
    fn handle_ping(self: Arc<Self>, mut flow: FlowContext) -> BoxFuture<'static, PingVerdict> {
        self.rewrite(&mut flow);
        self.inner.clone().handle_ping(flow)
    }
}

/// A UDP socket of the endpoint's stack as an outbound's packet connection.
struct TunnelUdp {
    socket: StackUdpSocket,
    resolver: Option<sb_core::resolve::DomainResolver>,
}

impl PacketConn for TunnelUdp {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let family = self.socket.local_addr().is_ipv4();
            let to = resolve_with(self.resolver.as_ref(), dest)
                .await?
                .into_iter()
                .find(|a| a.is_ipv4() == family)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        format!("no address of {dest} in this family"),
                    )
                })?;
            self.socket.send_to(buf, to).await
        })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let (n, from) = self.socket.recv_from(buf).await?;
            Ok((n, Destination::from_socket(from)))
        })
    }
}
