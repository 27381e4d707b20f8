//! The `mixed`, `socks` and `http` inbounds: one listener speaking SOCKS4/4a/5 and/or HTTP
//! proxy (CONNECT and plain-HTTP forwarding), with optional users. They sit at the start of
//! the flow: they accept, authenticate, read where the client wants to go, and hand the flow
//! to the dispatcher with a responder that answers in the client's protocol only once the
//! upstream is connected (Go answers CONNECT before dialing; sb does not).
//!
//! A CONNECT to a magic UoT domain (`sp.v2.udp-over-tcp.arpa`, `sp.udp-over-tcp.arpa`) is
//! served as a UDP flow carried on the stream (`inbound/uot.rs`), as Go's inbounds do.
//!
//! SOCKS5 UDP associations are served by `proxy/socks_udp.rs`.
//!
//! HTTP requests are served in a loop (`proxy/http_session.rs`): plain requests are
//! forwarded one flow each, with Go's keep-alive rules (`proxy/http_exchange.rs`), until a
//! CONNECT or upgrade request turns the connection into a tunnel.
//!
//! Limits: SOCKS5 BIND is answered "command not supported".

use super::listener;

mod http_exchange;
mod http_session;
mod socks_udp;
use crate::proto::uot::Version;
use crate::proto::{http, socks};
use sb_config::model::shared::{ListenFields, User};
use sb_core::adapter::{BoxFuture, BoxStream, ConnectFailure, FlowHandler, Inbound, Responder};
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::stream::Prefixed;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, error, info, Instrument};

/// Clients must finish the proxy handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which protocols the listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocols {
    /// SOCKS and HTTP (`mixed`).
    Mixed,
    /// SOCKS only (`socks`).
    Socks,
    /// HTTP only (`http`).
    Http,
}

/// A `mixed`, `socks` or `http` inbound.
pub struct ProxyInbound {
    tag: Arc<str>,
    kind: &'static str,
    protocols: Protocols,
    listen: ListenFields,
    users: Arc<Vec<User>>,
    serving: listener::Serving,
}

impl ProxyInbound {
    /// Builds the inbound (nothing is bound until `start`).
    pub fn new(
        tag: &str,
        protocols: Protocols,
        listen: ListenFields,
        users: Vec<User>,
    ) -> ProxyInbound {
        let kind = match protocols {
            Protocols::Mixed => "mixed",
            Protocols::Socks => "socks",
            Protocols::Http => "http",
        };
        ProxyInbound {
            tag: tag.into(),
            kind,
            protocols,
            listen,
            users: Arc::new(users),
            serving: listener::Serving::default(),
        }
    }
}

impl Inbound for ProxyInbound {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        self.serving.local()
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.serving.close())
    }
    fn start(self: Arc<Self>, handler: Arc<dyn FlowHandler>) -> BoxFuture<'static, io::Result<()>> {
        Box::pin(async move {
            let listener = listener::bind(&self.listen)?;
            let addr = listener.local_addr()?;
            self.serving.set_local(addr);
            info!(target: "inbound", tag = %format!("inbound/{}[{}]", self.kind, self.tag), "tcp server started at {addr}");
            // Reachable from beyond this machine with no users: anyone who reaches the
            // port can use the proxy. Allowed (a LAN proxy may want it), but said.
            if self.users.is_empty() && !addr.ip().is_loopback() {
                tracing::warn!(target: "inbound", tag = %format!("inbound/{}[{}]", self.kind, self.tag), "listening on {addr} without users: anyone who can reach it can use this proxy");
            }
            let me = self.clone();
            let task = tokio::spawn(listener::serve(listener, move |stream, peer| {
                let me = me.clone();
                let handler = handler.clone();
                async move {
                    if let Err(e) = listener::configure(&me.listen, &stream) {
                        debug!(target: "inbound", "configure accepted socket: {e}");
                    }
                    // The flow id exists from accept on, so every line of the flow carries it.
                    let id: u32 = rand::random();
                    let span = tracing::info_span!("flow", id);
                    me.connection(stream, peer, id, handler)
                        .instrument(span)
                        .await;
                }
            }));
            self.serving.add(task);
            Ok(())
        })
    }
}

impl ProxyInbound {
    fn label(&self) -> String {
        format!("inbound/{}[{}]", self.kind, self.tag)
    }

    async fn connection(
        self: Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        id: u32,
        handler: Arc<dyn FlowHandler>,
    ) {
        info!(target: "inbound", tag = %self.label(), "inbound connection from {peer}");
        let handshake =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, self.handshake(&mut stream, peer)).await;
        let (stream, accepted) = match handshake {
            Ok(Ok(Some(Handshake::Tcp(a)))) => (stream, a),
            Ok(Ok(Some(Handshake::Http(buf)))) => {
                match self.http_session(stream, buf, peer, id, &handler).await {
                    Some(tunnel) => tunnel,
                    None => return,
                }
            }
            Ok(Ok(Some(Handshake::Udp(assoc)))) => {
                self.udp_association(stream, peer, id, assoc, handler).await;
                return;
            }
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                debug!(target: "inbound", tag = %self.label(), "connection closed: {e}");
                return;
            }
            Err(_) => {
                debug!(target: "inbound", tag = %self.label(), "connection closed: handshake timeout");
                return;
            }
        };
        self.carry(stream, accepted, peer, id, handler).await;
    }

    /// Hands an accepted CONNECT-like request (the whole connection) to the dispatcher: a
    /// TCP flow, or a UDP flow when the destination is a magic UoT domain.
    async fn carry(
        &self,
        stream: TcpStream,
        accepted: Accepted,
        peer: SocketAddr,
        id: u32,
        handler: Arc<dyn FlowHandler>,
    ) {
        let uot = Version::of(&accepted.destination);
        let network = if uot.is_some() {
            Network::Udp
        } else {
            Network::Tcp
        };
        let mut flow = FlowContext::new(
            self.tag.clone(),
            self.kind,
            network,
            peer,
            accepted.destination,
        );
        flow.id = id;
        flow.user = accepted.user;
        flow.local = stream.local_addr().ok();
        let mut stream = Prefixed::wrap(accepted.prefix, stream);
        let mut responder = accepted.responder;
        let Some(version) = uot else {
            handler.handle_tcp(flow, stream, responder).await;
            return;
        };
        // A CONNECT to a magic UoT domain carries UDP: the client hears success at once (as
        // from Go, which answers before routing), then the stream's datagrams are the flow.
        flow.udp_timeout = super::udp_timeout(&self.listen);
        info!(target: "inbound", tag = %self.label(), "inbound connection to {}", flow.destination);
        if let Err(e) = responder.connected(&mut stream, None).await {
            debug!(target: "inbound", tag = %self.label(), "connection closed: {e}");
            return;
        }
        super::uot::serve(&self.label(), version, stream, flow, handler).await;
    }

    /// Reads the proxy request. `Ok(None)` when the connection was answered and closed
    /// (failed authentication, unsupported command).
    async fn handshake(
        &self,
        s: &mut TcpStream,
        peer: SocketAddr,
    ) -> io::Result<Option<Handshake>> {
        let mut buf = Vec::with_capacity(512);
        read_more(s, &mut buf).await?;
        let first = buf[0];
        let socks_ok = self.protocols != Protocols::Http;
        let http_ok = self.protocols != Protocols::Socks;
        match first {
            5 if socks_ok => self.socks5(s, buf).await,
            4 if socks_ok => Ok(self.socks4(s, buf, peer).await?.map(Handshake::Tcp)),
            // An HTTP request starts with a method token; anything else is refused at once
            // instead of waiting for a request head that will never come.
            c if http_ok && c.is_ascii_alphabetic() => Ok(Some(Handshake::Http(buf))),
            _ if http_ok => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an HTTP request",
            )),
            v => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown socks version {v}"),
            )),
        }
    }

    /// Whether `user`/`pass` is a configured user. Every user is compared, each in constant
    /// time over its bytes, so how long a refusal takes says nothing about how much of a
    /// name or password was right.
    fn check_user(&self, user: &str, pass: &str) -> bool {
        self.users.iter().fold(false, |found, u| {
            let name = constant_time_eq(u.username.as_bytes(), user.as_bytes());
            let word = constant_time_eq(u.password.as_bytes(), pass.as_bytes());
            found | (name & word)
        })
    }

    async fn socks5(&self, s: &mut TcpStream, mut buf: Vec<u8>) -> io::Result<Option<Handshake>> {
        let (greeting, n) = parse_loop(s, &mut buf, socks::greeting).await?;
        buf.drain(..n);
        if self.users.is_empty() {
            if !greeting.methods.contains(&0) {
                s.write_all(&[5, 0xff]).await?;
                return Ok(None);
            }
            s.write_all(&[5, 0]).await?;
        } else {
            if !greeting.methods.contains(&2) {
                s.write_all(&[5, 0xff]).await?;
                info!(target: "inbound", tag = %self.label(), "socks5: no acceptable authentication method offered");
                return Ok(None);
            }
            s.write_all(&[5, 2]).await?;
            let (cred, n) = parse_loop(s, &mut buf, socks::credentials).await?;
            buf.drain(..n);
            if !self.check_user(&cred.username, &cred.password) {
                s.write_all(&[1, 1]).await?;
                // The password is never logged.
                error!(target: "inbound", tag = %self.label(), "socks5: authentication failed, username={}", cred.username);
                return Ok(None);
            }
            s.write_all(&[1, 0]).await?;
            let (req, n) = parse_loop(s, &mut buf, socks::request).await?;
            buf.drain(..n);
            return self.socks5_request(s, req, Some(cred.username), buf).await;
        }
        let (req, n) = parse_loop(s, &mut buf, socks::request).await?;
        buf.drain(..n);
        self.socks5_request(s, req, None, buf).await
    }

    async fn socks5_request(
        &self,
        s: &mut TcpStream,
        req: socks::Request,
        user: Option<String>,
        rest: Vec<u8>,
    ) -> io::Result<Option<Handshake>> {
        if req.command == socks::Command::UdpAssociate {
            // The relay socket listens on the address the client reached us on.
            let local = s.local_addr()?;
            let socket = tokio::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?;
            let bound = socket.local_addr()?;
            s.write_all(&socks::reply(socks::code::SUCCEEDED, bound))
                .await?;
            return Ok(Some(Handshake::Udp(UdpAssociation {
                socket: Arc::new(socket),
                user,
            })));
        }
        if req.command != socks::Command::Connect {
            s.write_all(&socks::reply(
                socks::code::COMMAND_NOT_SUPPORTED,
                unspecified(),
            ))
            .await?;
            info!(target: "inbound", tag = %self.label(), "socks5: command {:?} is not supported by sb yet", req.command);
            return Ok(None);
        }
        Ok(Some(Handshake::Tcp(Accepted {
            destination: req.destination,
            user,
            prefix: rest,
            responder: Box::new(Socks5Reply),
        })))
    }

    async fn socks4(
        &self,
        s: &mut TcpStream,
        mut buf: Vec<u8>,
        _peer: SocketAddr,
    ) -> io::Result<Option<Accepted>> {
        let (req, n) = parse_loop(s, &mut buf, socks::request4).await?;
        buf.drain(..n);
        // SOCKS4 carries no password, so it cannot authenticate a configured user.
        if !self.users.is_empty() || req.command != 1 {
            s.write_all(&socks::reply4(false)).await?;
            return Ok(None);
        }
        Ok(Some(Accepted {
            destination: req.destination,
            user: None,
            prefix: buf,
            responder: Box::new(Socks4Reply),
        }))
    }
}

/// What a handshake asked for.
enum Handshake {
    /// A TCP flow.
    Tcp(Accepted),
    /// A SOCKS5 UDP association.
    Udp(UdpAssociation),
    /// HTTP: the bytes read so far, for the request loop.
    Http(Vec<u8>),
}

pub(super) use socks_udp::UdpAssociation;

/// The result of a successful handshake.
struct Accepted {
    destination: Destination,
    user: Option<String>,
    /// Bytes to deliver upstream before the client's further data.
    prefix: Vec<u8>,
    responder: Box<dyn Responder>,
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF"));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Reads until `parse` has a complete message (bounded by the parsers' own limits).
async fn parse_loop<T, E: std::fmt::Display>(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
) -> io::Result<(T, usize)> {
    loop {
        match parse(buf) {
            Ok(Some(done)) => return Ok(done),
            Ok(None) => {
                if buf.len() > http::MAX_HEAD + 4096 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request too large",
                    ));
                }
                read_more(s, buf).await?;
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }
}

/// Refused logins one connection may make before it is closed: a client that mistyped can
/// retry, a password guesser must reconnect for every few guesses.
pub(super) const MAX_FAILED_LOGINS: u32 = 3;

/// Equal bytes, compared without an early exit (only the lengths may differ in time).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `Proxy-Authorization: Basic base64(user:pass)`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = sb_config::base64::decode(token.trim())?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn socks5_code(why: &ConnectFailure) -> u8 {
    match why {
        ConnectFailure::Rejected => socks::code::NOT_ALLOWED,
        ConnectFailure::NoRoute(_) => socks::code::GENERAL_FAILURE,
        ConnectFailure::Dial(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => socks::code::CONNECTION_REFUSED,
            io::ErrorKind::TimedOut => socks::code::TTL_EXPIRED,
            io::ErrorKind::HostUnreachable => socks::code::HOST_UNREACHABLE,
            io::ErrorKind::NetworkUnreachable => socks::code::NETWORK_UNREACHABLE,
            _ => socks::code::GENERAL_FAILURE,
        },
    }
}

struct Socks5Reply;

impl Responder for Socks5Reply {
    fn connected<'a>(
        &'a mut self,
        s: &'a mut BoxStream,
        bound: Option<SocketAddr>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            s.write_all(&socks::reply(
                socks::code::SUCCEEDED,
                bound.unwrap_or_else(unspecified),
            ))
            .await
        })
    }
    fn failed<'a>(
        &'a mut self,
        s: &'a mut BoxStream,
        why: &'a ConnectFailure,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = s
                .write_all(&socks::reply(socks5_code(why), unspecified()))
                .await;
        })
    }
}

struct Socks4Reply;

impl Responder for Socks4Reply {
    fn connected<'a>(
        &'a mut self,
        s: &'a mut BoxStream,
        _bound: Option<SocketAddr>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { s.write_all(&socks::reply4(true)).await })
    }
    fn failed<'a>(
        &'a mut self,
        s: &'a mut BoxStream,
        _why: &'a ConnectFailure,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = s.write_all(&socks::reply4(false)).await;
        })
    }
}

/// The HTTP status a failed flow is answered with.
fn failure_status(why: &ConnectFailure) -> &'static str {
    match why {
        // Go answers a rejected flow like a failed dial.
        ConnectFailure::Rejected => "502 Bad Gateway",
        ConnectFailure::Dial(e) if e.kind() == io::ErrorKind::TimedOut => "504 Gateway Timeout",
        _ => "502 Bad Gateway",
    }
}
