//! The adapter interface: what an inbound, an outbound and an endpoint (both at once) must
//! provide. Adapters live in sb-adapters; sb-core only sees these traits, held as
//! `Arc<dyn Outbound>` / `Arc<dyn Inbound>`.

use crate::flow::{Destination, FlowContext, Network};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

mod route_error;
pub use route_error::RouteError;

/// A boxed future, so the adapter traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream one side of a flow is carried on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The plain TCP socket underneath, when there is nothing on top of it. The relay uses
    /// it to copy in the kernel (`splice`) instead of through user space.
    fn into_tcp(self: Box<Self>) -> Result<TcpStream, Box<dyn AsyncStream>>;
}

impl AsyncStream for TcpStream {
    fn into_tcp(self: Box<Self>) -> Result<TcpStream, Box<dyn AsyncStream>> {
        Ok(*self)
    }
}

/// A boxed [`AsyncStream`].
pub type BoxStream = Box<dyn AsyncStream>;

/// A datagram socket one side of a UDP flow is carried on. Every packet carries its peer:
/// the destination when sending upstream, the sender when receiving from upstream.
pub trait PacketConn: Send + Sync + 'static {
    /// Sends one datagram to `dest`.
    fn send_to<'a>(&'a self, buf: &'a [u8], dest: &'a Destination)
        -> BoxFuture<'a, io::Result<()>>;
    /// Receives one datagram and who sent it (for the client side: where it is going).
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>>;
    /// Sends `buf` as datagrams of `segment` bytes each (the last may be shorter), all to
    /// `dest`: a tunnel's run of packets to one peer. A socket that can hand the kernel the
    /// whole run at once (UDP GSO) does; the default sends them one by one.
    fn send_segments<'a>(
        &'a self,
        buf: &'a [u8],
        segment: usize,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            for datagram in buf.chunks(segment.max(1)) {
                self.send_to(datagram, dest).await?;
            }
            Ok(())
        })
    }
    /// Receives at least one datagram and then what else is already waiting, up to
    /// `bufs.len()`, each into its own buffer: a tunnel's socket under load. `got` is
    /// cleared, then holds each datagram's length and sender, in order (datagram `i` is in
    /// `bufs[i]`). A socket that can take the run from the kernel in one call (`recvmmsg`)
    /// does; the default receives one.
    fn recv_batch<'a>(
        &'a self,
        bufs: &'a mut [Vec<u8>],
        got: &'a mut Vec<(usize, Destination)>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            got.clear();
            if let Some(first) = bufs.first_mut() {
                got.push(self.recv_from(first).await?);
            }
            Ok(())
        })
    }
}

/// A shared [`PacketConn`].
pub type BoxPacketConn = Arc<dyn PacketConn>;

/// Where flows leave sb: `direct`, `block`, `socks`, `http`, `selector`, `ssh`, an endpoint...
pub trait Outbound: Send + Sync + 'static {
    /// The tag (its index when the config left it empty).
    fn tag(&self) -> &str;
    /// The config `type`.
    fn kind(&self) -> &'static str;
    /// The networks it can carry.
    fn networks(&self) -> &'static [Network] {
        &[Network::Tcp]
    }
    /// For a group (`selector`, `urltest`): the member flows use now. The tracker follows it
    /// to report a flow's chain of outbounds.
    fn group_now(&self) -> Option<String> {
        None
    }
    /// Called once the instance has started (Go's post-start stage), inside the runtime.
    /// Outbounds with work of their own (a `urltest` group's first test round) spawn it
    /// here; it must not block the start.
    fn start(&self) {}
    /// Called when the instance closes: stops the work `start` spawned.
    fn close(&self) {}
    /// The addresses and domains this outbound is the preferred way to (Go's
    /// `OutboundWithPreferredRoutes`: a WireGuard peer's allowed IPs, a tailnet's names), for
    /// the `preferred_by` rule field. `None` for outbounds that have no such routes; a rule
    /// naming one is refused when the router is built, as in Go.
    fn preferred_routes(&self) -> Option<&dyn PreferredRoutes> {
        None
    }
    /// Opens a TCP stream to `dest` on behalf of `flow`.
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>>;
    /// Sends an ICMP echo request to `dest` on behalf of `flow` and waits at most `timeout`
    /// for the reply. Outbounds that cannot carry ICMP keep this default (`Unsupported`):
    /// the ping is then answered where it arrived.
    fn ping<'a>(
        &'a self,
        _flow: &'a FlowContext,
        _dest: IpAddr,
        _timeout: std::time::Duration,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async { Err(io::Error::from(io::ErrorKind::Unsupported)) })
    }
    /// Opens a UDP association for `flow`, whose first packet goes to `dest`. Outbounds
    /// that cannot carry UDP keep this default, which fails the flow with a clear error.
    fn connect_udp<'a>(
        &'a self,
        _flow: &'a FlowContext,
        _dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        let msg = format!(
            "outbound/{}[{}] does not carry UDP",
            self.kind(),
            self.tag()
        );
        Box::pin(async move { Err(io::Error::new(io::ErrorKind::Unsupported, msg)) })
    }
}

/// Where an outbound is the preferred route to (see [`Outbound::preferred_routes`]).
pub trait PreferredRoutes: Send + Sync {
    /// Whether flows to `domain` should go through this outbound.
    fn preferred_domain(&self, domain: &str) -> bool;
    /// Whether flows to `ip` should go through this outbound.
    fn preferred_address(&self, ip: IpAddr) -> bool;
}

/// An adapter that is an outbound and an inbound at once (Go's `adapter.Endpoint`:
/// `wireguard`, `tailscale`). The router dials it like any outbound; the flows its peers open
/// enter the router with the endpoint's tag as their inbound. Its tag lives in the outbound
/// namespace.
///
/// The lifecycle calls, in order: [`Endpoint::start_endpoint`] before any inbound listens
/// (Go's start stage: bring the tunnel up), [`Endpoint::post_start`] once every inbound
/// listens (Go's post-start stage: work that needs DNS, such as resolving peers' names),
/// [`Outbound::start`] with the other outbounds, and [`Endpoint::close_endpoint`] at close.
pub trait Endpoint: Outbound {
    /// Brings the endpoint up; flows from its peers go to `handler`. Fails fast (a socket
    /// that cannot be bound) so sb refuses to start without it.
    fn start_endpoint(
        self: Arc<Self>,
        handler: Arc<dyn FlowHandler>,
    ) -> BoxFuture<'static, io::Result<()>>;
    /// Work that needs the rest of the instance running (DNS through outbounds).
    fn post_start(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Stops the endpoint and releases its sockets before returning.
    fn close_endpoint(&self) -> BoxFuture<'_, ()>;
}

/// What an inbound hands accepted flows to (implemented by the dispatcher in sb-core).
pub trait FlowHandler: Send + Sync + 'static {
    /// Routes and carries one TCP flow. `responder` tells the client how the upstream
    /// connection went, in the inbound's protocol (SOCKS reply, HTTP status).
    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        stream: BoxStream,
        responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()>;
    /// Routes and carries one UDP flow: packets read from `client` carry their destination,
    /// replies are written back with their source. Returns when the flow ends (idle for the
    /// UDP timeout, or either side failed).
    fn handle_udp(
        self: Arc<Self>,
        flow: FlowContext,
        client: BoxPacketConn,
    ) -> BoxFuture<'static, ()>;
    /// Routes one ICMP echo request (`flow.network` is ICMP, the destination's port 0) and
    /// says whether the client gets its echo reply. The default answers every ping where it
    /// arrived, as a userspace stack does on its own.
    fn handle_ping(self: Arc<Self>, _flow: FlowContext) -> BoxFuture<'static, PingVerdict> {
        Box::pin(async { PingVerdict::Answer })
    }
}

/// What becomes of an ICMP echo request ([`FlowHandler::handle_ping`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingVerdict {
    /// Answer it: the echo came back through the chosen outbound, or the outbound cannot
    /// carry ICMP and the ping is answered where it arrived.
    Answer,
    /// No answer: a rule rejected it, or the destination did not answer in time.
    Drop,
}

/// Why a flow could not be connected, in the terms protocols reply with.
#[derive(Debug)]
pub enum ConnectFailure {
    /// A rule rejected the flow.
    Rejected,
    /// No route (unknown outbound, unsupported network, unknown FakeIP address...).
    NoRoute(RouteError),
    /// The outbound failed to connect.
    Dial(io::Error),
}

/// Lets the inbound answer its client once the upstream is (or is not) connected.
pub trait Responder: Send + 'static {
    /// The upstream is connected (`bound` is the local address used upstream, if known).
    fn connected<'a>(
        &'a mut self,
        stream: &'a mut BoxStream,
        bound: Option<SocketAddr>,
    ) -> BoxFuture<'a, io::Result<()>>;
    /// The flow will not be connected.
    fn failed<'a>(
        &'a mut self,
        stream: &'a mut BoxStream,
        why: &'a ConnectFailure,
    ) -> BoxFuture<'a, ()>;
}

/// A responder for inbounds whose protocol has no reply (`direct`, `tun`).
pub struct NoReply;

impl Responder for NoReply {
    fn connected<'a>(
        &'a mut self,
        _stream: &'a mut BoxStream,
        _bound: Option<SocketAddr>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn failed<'a>(
        &'a mut self,
        _stream: &'a mut BoxStream,
        _why: &'a ConnectFailure,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Where flows enter sb. `start` binds and begins accepting; it fails fast (bad address,
/// port in use) so that sb refuses to start rather than run without the inbound.
pub trait Inbound: Send + Sync + 'static {
    /// The tag.
    fn tag(&self) -> &str;
    /// The config `type`.
    fn kind(&self) -> &'static str;
    /// Binds and starts accepting; flows go to `handler`.
    fn start(self: Arc<Self>, handler: Arc<dyn FlowHandler>) -> BoxFuture<'static, io::Result<()>>;
    /// Stops accepting and releases the listening socket before returning, so a reload can
    /// bind the same address again. Flows already accepted are not interrupted.
    fn close(&self) -> BoxFuture<'_, ()>;
    /// The address it listens on, once started.
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// Completes if the inbound stops serving on its own after it started (its device
    /// failed), with why, so the instance stops sb with an error instead of running without
    /// it. The default (an inbound that cannot fail so) never completes.
    fn failed(&self) -> BoxFuture<'static, io::Error> {
        Box::pin(std::future::pending())
    }
}
