//! The `socks` outbound: flows carried by a SOCKS5, SOCKS4a or SOCKS4 server, reached through
//! the outbound's own [`Dialer`] (so `detour` chains work). UDP flows use SOCKS5 UDP
//! ASSOCIATE ([`super::socks_udp`]), or with `udp_over_tcp` ride a TCP stream to the magic
//! UoT address ([`super::uot`]); SOCKS4 carries no UDP.

use super::socks_udp::Association;
use super::uot;
use crate::proto::socks;
use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, Outbound};
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext, Host, Network};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which SOCKS version the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// SOCKS4: IPv4 destinations only (domains are resolved here first).
    V4,
    /// SOCKS4a: domains resolved by the server.
    V4a,
    /// SOCKS5.
    V5,
}

/// A `socks` outbound.
pub struct Socks {
    tag: String,
    server: Destination,
    version: Version,
    user: Option<(String, String)>,
    dialer: Dialer,
    networks: &'static [Network],
    uot: Option<uot::Version>,
}

impl Socks {
    /// Builds it. `networks` is the config's `network` (both when empty); `uot` the
    /// `udp_over_tcp` version when enabled.
    pub fn new(
        tag: &str,
        server: Destination,
        version: Version,
        user: Option<(String, String)>,
        dialer: Dialer,
        networks: &'static [Network],
        uot: Option<uot::Version>,
    ) -> Socks {
        Socks {
            tag: tag.to_string(),
            server,
            version,
            user,
            dialer,
            networks,
            uot,
        }
    }

    /// Method negotiation and, when the server asks, RFC 1929 authentication.
    async fn negotiate5(&self, s: &mut BoxStream) -> io::Result<()> {
        let methods: &[u8] = if self.user.is_some() {
            &[5, 2, 0, 2]
        } else {
            &[5, 1, 0]
        };
        s.write_all(methods).await?;
        let mut m = [0u8; 2];
        s.read_exact(&mut m).await?;
        match (m, &self.user) {
            ([5, 0], _) => {}
            ([5, 2], Some((u, p))) => {
                s.write_all(&socks::credentials_request(u, p)).await?;
                let mut r = [0u8; 2];
                s.read_exact(&mut r).await?;
                if r[1] != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "socks5: authentication failed",
                    ));
                }
            }
            ([5, 0xff], _) => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "socks5: no acceptable authentication method",
                ))
            }
            (other, _) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("socks5: unexpected method reply {other:?}"),
                ))
            }
        }
        Ok(())
    }

    /// Sends a SOCKS5 request (`CONNECT` or `UDP ASSOCIATE`) and returns the bound address
    /// of a successful reply.
    async fn request5(&self, s: &mut BoxStream, request: &[u8]) -> io::Result<Destination> {
        s.write_all(request).await?;
        let mut buf = Vec::with_capacity(32);
        let (code, bound) = loop {
            if let Some(((code, bound), _)) = socks::reply5(&buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
            {
                break (code, bound);
            }
            // A reply is at most 4 + 1 + 255 + 2 bytes; anything longer is not SOCKS5.
            if buf.len() > 262 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "socks5: reply too long",
                ));
            }
            let mut b = [0u8; 64];
            let n = s.read(&mut b).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "socks5: connection closed during handshake",
                ));
            }
            buf.extend_from_slice(&b[..n]);
        };
        reply_error(code).map(|()| bound)
    }

    async fn handshake5(&self, s: &mut BoxStream, dest: &Destination) -> io::Result<()> {
        self.negotiate5(s).await?;
        self.request5(s, &socks::connect_request(dest)?)
            .await
            .map(drop)
    }

    /// A UDP ASSOCIATE: the control connection stays open for the association's life.
    async fn associate(&self, flow: &FlowContext, dest: &Destination) -> io::Result<BoxPacketConn> {
        let mut control = self.dialer.connect_tcp(flow, &self.server).await?;
        let any = Destination::from_host("0.0.0.0", 0);
        let request = socks::udp_associate_request(&any)?;
        let handshake = async {
            self.negotiate5(&mut control).await?;
            self.request5(&mut control, &request).await
        };
        let mut relay = self
            .dialer
            .bounded("socks UDP associate", handshake)
            .await?;
        // A server bound to the wildcard address means "my address": the one we dialed.
        if relay.ip().is_some_and(|ip| ip.is_unspecified()) {
            relay.host = self.server.host.clone();
        }
        if let Host::Domain(_) = relay.host {
            relay = sb_core::dialer::resolve(&relay)
                .await?
                .first()
                .copied()
                .map(Destination::from_socket)
                .unwrap_or(relay);
        }
        let socket = self.dialer.listen_udp(flow, &relay).await?;
        let _ = dest;
        Ok(Arc::new(Association::new(socket, relay, control)))
    }

    async fn handshake4(&self, s: &mut BoxStream, dest: &Destination) -> io::Result<()> {
        let user = self.user.as_ref().map_or("", |(u, _)| u.as_str());
        let dest = if self.version == Version::V4 && dest.domain().is_some() {
            // SOCKS4 cannot name a domain: resolve it here, IPv4 only.
            let addrs = sb_core::dialer::resolve(dest).await?;
            let v4 = addrs.into_iter().find(|a| a.is_ipv4()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "socks4: no IPv4 address for the destination",
                )
            })?;
            Destination::from_socket(v4)
        } else {
            dest.clone()
        };
        let req = socks::connect_request4(&dest, user).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "socks4 cannot reach IPv6 destinations",
            )
        })?;
        s.write_all(&req).await?;
        let mut r = [0u8; 8];
        s.read_exact(&mut r).await?;
        if r[1] == 0x5a {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("socks4: request rejected ({:#x})", r[1]),
            ))
        }
    }
}

/// The error for a SOCKS5 reply code.
fn reply_error(code: u8) -> io::Result<()> {
    use io::ErrorKind as K;
    let (kind, what) = match code {
        0 => return Ok(()),
        1 => (K::Other, "general SOCKS server failure"),
        2 => (K::PermissionDenied, "connection not allowed by ruleset"),
        3 => (K::NetworkUnreachable, "network unreachable"),
        4 => (K::HostUnreachable, "host unreachable"),
        5 => (K::ConnectionRefused, "connection refused"),
        6 => (K::TimedOut, "TTL expired"),
        7 => (K::Unsupported, "command not supported"),
        8 => (K::Unsupported, "address type not supported"),
        _ => (K::Other, "unknown error"),
    };
    Err(io::Error::new(kind, format!("socks5: {what}")))
}

impl Outbound for Socks {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "socks"
    }
    fn networks(&self) -> &'static [Network] {
        self.networks
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let mut s = self.dialer.connect_tcp(flow, &self.server).await?;
            let handshake = async {
                match self.version {
                    Version::V5 => self.handshake5(&mut s, dest).await,
                    Version::V4 | Version::V4a => self.handshake4(&mut s, dest).await,
                }
            };
            self.dialer.bounded("socks handshake", handshake).await?;
            Ok(s)
        })
    }
    fn connect_udp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        Box::pin(async move {
            if !self.networks.contains(&Network::Udp) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "outbound/socks[{}]: UDP is not enabled in `network`",
                        self.tag
                    ),
                ));
            }
            if let Some(version) = self.uot {
                let magic = version.magic_destination();
                let stream = self.connect_tcp(flow, &magic).await?;
                return uot::open(stream, version, dest).await;
            }
            match self.version {
                Version::V5 => self.associate(flow, dest).await,
                Version::V4 | Version::V4a => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "socks4 cannot carry UDP",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    //! Hardening finding 6: a server that accepts the connection and then says nothing must
    //! not hold the flow forever.

    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use sb_core::dialer::DialOptions;
    use std::time::Duration;

    /// A server that accepts and never answers; returns its address.
    pub(crate) async fn tarpit() -> Destination {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        Destination::from_socket(addr)
    }

    #[tokio::test]
    async fn a_silent_server_times_out_within_connect_timeout() {
        let opts = DialOptions {
            connect_timeout: Duration::from_millis(300),
            ..DialOptions::default()
        };
        let socks = Socks::new(
            "s",
            tarpit().await,
            Version::V5,
            None,
            Dialer::Direct(opts),
            &[Network::Tcp],
            None,
        );
        let flow =
            FlowContext::internal("test", Network::Tcp, Destination::from_host("a.test", 80));
        let dest = Destination::from_host("a.test", 80);
        let r = tokio::time::timeout(Duration::from_secs(5), socks.connect_tcp(&flow, &dest))
            .await
            .expect("the handshake must end by itself");
        assert_eq!(r.err().map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
    }
}
