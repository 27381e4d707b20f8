//! How an adapter reaches the network: connect to a destination directly with the dial
//! fields applied (`bind_interface`, `routing_mark`, `connect_timeout`, keep-alive, happy
//! eyeballs with `fallback_delay`), or through another outbound (`detour`). Every adapter that
//! opens connections of its own — the direct outbound, proxy clients, SSH, Tor, WireGuard's
//! UDP socket, DNS transports — goes through a [`Dialer`], so chaining works the same way
//! everywhere.

use crate::adapter::{BoxPacketConn, BoxStream, Outbound};
use crate::flow::{Destination, FlowContext, Host};
use socket2::SockRef;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Socket options for direct connections.
#[derive(Clone, Debug)]
pub struct DialOptions {
    /// `SO_BINDTODEVICE`.
    pub bind_interface: Option<String>,
    /// `SO_MARK` (0 = none).
    pub routing_mark: u32,
    /// Per-attempt connect timeout.
    pub connect_timeout: Duration,
    /// Keep-alive idle time and interval; `None` disables keep-alive.
    pub keep_alive: Option<(Duration, Duration)>,
    /// Happy-eyeballs delay before the next address is tried in parallel.
    pub fallback_delay: Duration,
    /// Source address for IPv4.
    pub inet4_bind: Option<IpAddr>,
    /// Source address for IPv6.
    pub inet6_bind: Option<IpAddr>,
    /// `SO_REUSEADDR`.
    pub reuse_addr: bool,
    /// `TCP_FASTOPEN_CONNECT`: data rides the SYN when the server gave a cookie before.
    pub tcp_fast_open: bool,
    /// `IP_BIND_ADDRESS_NO_PORT`: with a bind address, pick the source port at connect
    /// time, so many flows from one address do not exhaust ephemeral ports.
    pub bind_address_no_port: bool,
    /// How domain destinations are resolved (`domain_resolver`); the system resolver when
    /// `None`.
    pub domain_resolver: Option<crate::resolve::DomainResolver>,
}

impl Default for DialOptions {
    fn default() -> Self {
        DialOptions {
            bind_interface: None,
            routing_mark: 0,
            connect_timeout: Duration::from_secs(5),
            keep_alive: Some((Duration::from_secs(300), Duration::from_secs(75))),
            fallback_delay: Duration::from_millis(300),
            inet4_bind: None,
            inet6_bind: None,
            reuse_addr: false,
            tcp_fast_open: false,
            bind_address_no_port: false,
            domain_resolver: None,
        }
    }
}

/// An outbound tag resolved after every outbound is built (outbounds may refer to each other
/// in any order).
#[derive(Debug, Default)]
pub struct Detour {
    /// The tag written in `detour`.
    pub tag: String,
    target: OnceLock<Arc<dyn Outbound>>,
}

impl std::fmt::Debug for dyn Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "outbound/{}[{}]", self.kind(), self.tag())
    }
}

impl Detour {
    /// A detour to `tag`, to be bound later.
    pub fn new(tag: &str) -> Detour {
        Detour {
            tag: tag.to_string(),
            target: OnceLock::new(),
        }
    }
    /// Binds the detour to its outbound (done once, at start).
    pub fn bind(&self, outbound: Arc<dyn Outbound>) {
        let _ = self.target.set(outbound);
    }
}

/// How an adapter reaches its own server.
#[derive(Debug)]
pub enum Dialer {
    /// From this host, with socket options.
    Direct(DialOptions),
    /// Through another outbound (bound after every outbound is built).
    Detour(Arc<Detour>),
}

impl Dialer {
    /// The `domain_resolver` names are resolved with (`None`: the system's; a detour's
    /// dialer resolves nothing itself).
    pub fn resolver(&self) -> Option<&crate::resolve::DomainResolver> {
        match self {
            Dialer::Direct(opts) => opts.domain_resolver.as_ref(),
            Dialer::Detour(_) => None,
        }
    }

    /// How long a proxy protocol's handshake over a connection from this dialer may take
    /// (a SOCKS reply, an HTTP CONNECT answer): the dial fields' `connect_timeout`, Go's 5 s
    /// default otherwise (and through a detour, whose own dial has its own bound).
    pub fn handshake_timeout(&self) -> Duration {
        match self {
            Dialer::Direct(opts) => opts.connect_timeout,
            Dialer::Detour(_) => DialOptions::default().connect_timeout,
        }
    }

    /// Runs `handshake` within [`Dialer::handshake_timeout`]; past it, a `TimedOut` error
    /// naming `what` (a tarpit server must not hold a flow forever).
    pub async fn bounded<T>(
        &self,
        what: &str,
        handshake: impl std::future::Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        let limit = self.handshake_timeout();
        match tokio::time::timeout(limit, handshake).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: no answer within {limit:?}"),
            )),
        }
    }

    /// Opens a TCP connection to `dest`.
    pub async fn connect_tcp(
        &self,
        flow: &FlowContext,
        dest: &Destination,
    ) -> io::Result<BoxStream> {
        match self {
            Dialer::Direct(opts) => Ok(Box::new(connect_direct(opts, dest).await?)),
            Dialer::Detour(d) => {
                let target = d.target.get().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!("detour outbound {:?} is not bound", d.tag),
                    )
                })?;
                target.connect_tcp(flow, dest).await
            }
        }
    }
}

impl Dialer {
    /// Opens a UDP socket for `flow`, whose first packet goes to `dest`: a local socket with
    /// the dial options, or a UDP association through the detour outbound.
    pub async fn listen_udp(
        &self,
        flow: &FlowContext,
        dest: &Destination,
    ) -> io::Result<BoxPacketConn> {
        match self {
            Dialer::Direct(opts) => Ok(Arc::new(crate::udp::DirectUdp::bind(opts)?)),
            Dialer::Detour(d) => {
                let target = d.target.get().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!("detour outbound {:?} is not bound", d.tag),
                    )
                })?;
                target.connect_udp(flow, dest).await
            }
        }
    }
}

/// Resolves `dest` to socket addresses with the system resolver.
pub async fn resolve(dest: &Destination) -> io::Result<Vec<SocketAddr>> {
    resolve_with(None, dest).await
}

/// Resolves `dest` with a dialer's `domain_resolver`, or the system resolver without one.
pub async fn resolve_with(
    resolver: Option<&crate::resolve::DomainResolver>,
    dest: &Destination,
) -> io::Result<Vec<SocketAddr>> {
    match &dest.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, dest.port)]),
        Host::Domain(d) if resolver.is_some() => {
            let r = resolver.ok_or_else(|| io::Error::other("no resolver"))?;
            Ok(r.lookup(d)
                .await?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, dest.port))
                .collect())
        }
        Host::Domain(d) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((d.as_str(), dest.port))
                .await?
                .collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("lookup {d}: no addresses"),
                ));
            }
            Ok(addrs)
        }
    }
}

/// Connects directly, trying the resolved addresses with happy eyeballs: the next address
/// starts after `fallback_delay` if the previous one has not connected yet; the first to
/// connect wins.
pub async fn connect_direct(opts: &DialOptions, dest: &Destination) -> io::Result<TcpStream> {
    let addrs = resolve_with(opts.domain_resolver.as_ref(), dest).await?;
    let mut attempts = tokio::task::JoinSet::new();
    let mut last_err = None;
    let mut pending = addrs.into_iter();
    let mut running = 0usize;
    loop {
        if let Some(addr) = pending.next() {
            let opts = opts.clone();
            attempts.spawn(async move { connect_one(&opts, addr).await });
            running += 1;
        }
        if running == 0 {
            return Err(last_err.unwrap_or_else(no_address));
        }
        let more = pending.len() > 0;
        let next = if more {
            tokio::time::timeout(opts.fallback_delay, attempts.join_next())
                .await
                .ok()
                .flatten()
        } else {
            attempts.join_next().await
        };
        match next {
            Some(Ok(Ok(stream))) => return Ok(stream),
            Some(Ok(Err(e))) => {
                running -= 1;
                last_err = Some(e);
            }
            Some(Err(join)) => {
                running -= 1;
                last_err = Some(io::Error::other(join.to_string()));
            }
            None if !more => {
                return Err(last_err.unwrap_or_else(no_address));
            }
            None => {}
        }
    }
}

/// The destination resolved to no address at all (the resolver's own error is kept when
/// there is one): `NotFound`, as a lookup that found nothing.
fn no_address() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
}

async fn connect_one(opts: &DialOptions, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let sock = SockRef::from(&socket);
    if opts.routing_mark != 0 {
        sock.set_mark(opts.routing_mark)?;
    }
    if let Some(dev) = &opts.bind_interface {
        sock.bind_device(Some(dev.as_bytes()))?;
    }
    if opts.reuse_addr {
        socket.set_reuseaddr(true)?;
    }
    let bind = if addr.is_ipv4() {
        opts.inet4_bind
    } else {
        opts.inet6_bind
    };
    set_linux_options(&socket, opts, bind.is_some())?;
    if let Some(ip) = bind {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some((idle, interval)) = opts.keep_alive {
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval);
        sock.set_tcp_keepalive(&ka)?;
    }
    let stream = tokio::time::timeout(opts.connect_timeout, socket.connect(addr))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("dial tcp {addr}: i/o timeout"),
            )
        })?
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("dial tcp {addr}: connect: {}", crate::error_text(&e)),
            )
        })?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The Linux-only socket options of a dial.
#[cfg(target_os = "linux")]
fn set_linux_options(socket: &TcpSocket, opts: &DialOptions, binds: bool) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    if opts.tcp_fast_open {
        setsockopt(socket, sockopt::TcpFastOpenConnect, &true)?;
    }
    if opts.bind_address_no_port && binds {
        setsockopt(socket, sockopt::IpBindAddressNoPort, &true)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_linux_options(_socket: &TcpSocket, _opts: &DialOptions, _binds: bool) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_and_reports_refusal() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dest = Destination::from_socket(addr);
        connect_direct(&DialOptions::default(), &dest)
            .await
            .unwrap();
        drop(listener);
        let e = connect_direct(&DialOptions::default(), &dest)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(
            e.to_string().starts_with(&format!("dial tcp {addr}: ")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn falls_back_to_the_next_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // "localhost" resolves to ::1 and 127.0.0.1 here; only IPv4 listens.
        let dest = Destination::from_host("localhost", port);
        let stream = connect_direct(&DialOptions::default(), &dest)
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap().port(), port);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn fast_open_and_bind_address_no_port_reach_the_socket() {
        use nix::sys::socket::{getsockopt, sockopt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dest = Destination::from_socket(listener.local_addr().unwrap());
        let plain = connect_direct(&DialOptions::default(), &dest)
            .await
            .unwrap();
        assert!(!getsockopt(&plain, sockopt::TcpFastOpenConnect).unwrap());
        assert!(!getsockopt(&plain, sockopt::IpBindAddressNoPort).unwrap());
        let opts = DialOptions {
            tcp_fast_open: true,
            bind_address_no_port: true,
            inet4_bind: Some("127.0.0.1".parse().unwrap()),
            ..DialOptions::default()
        };
        let s = connect_direct(&opts, &dest).await.unwrap();
        assert!(getsockopt(&s, sockopt::TcpFastOpenConnect).unwrap());
        assert!(getsockopt(&s, sockopt::IpBindAddressNoPort).unwrap());
        assert_eq!(s.local_addr().unwrap().ip().to_string(), "127.0.0.1");
    }
}
