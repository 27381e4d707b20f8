//! A SOCKS5 UDP association, the client side of RFC 1928 §7, for the `socks` outbound's UDP
//! flows: datagrams go to the server's relay address wrapped in the SOCKS UDP header, through
//! a socket the outbound's [`Dialer`](sb_core::dialer::Dialer) opened (so a `detour` carries
//! them too). The association lives as long as its TCP control connection: when the server
//! closes that, receiving fails and the flow ends. Datagrams from any address but the
//! relay's are dropped.

use crate::proto::socks_udp;
use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, PacketConn};
use sb_core::flow::Destination;
use std::io;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One UDP association.
pub struct Association {
    socket: BoxPacketConn,
    relay: Destination,
    closed: watch::Receiver<bool>,
    control: JoinHandle<()>,
}

impl Association {
    /// Wraps `socket` for datagrams to `relay`; `control` is the TCP connection the
    /// association was made on, watched for its end.
    pub fn new(socket: BoxPacketConn, relay: Destination, mut control: BoxStream) -> Association {
        let (tx, closed) = watch::channel(false);
        let control = tokio::spawn(async move {
            // The server sends nothing more on the control connection; any byte or EOF
            // both mean it is done with us (a well-behaved server only closes it).
            let mut b = [0u8; 64];
            loop {
                match control.read(&mut b).await {
                    Ok(n) if n > 0 => continue,
                    _ => break,
                }
            }
            let _ = tx.send(true);
        });
        Association {
            socket,
            relay,
            closed,
            control,
        }
    }
}

impl Drop for Association {
    fn drop(&mut self) {
        // Dropping the task closes the control connection, which ends the association on
        // the server.
        self.control.abort();
    }
}

fn ended() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "socks5: the server closed the UDP association",
    )
}

/// Whether `a` is `b` (IPv4-mapped IPv6 addresses compared as IPv4).
fn same_address(a: &Destination, b: &Destination) -> bool {
    use sb_core::flow::Host;
    a.port == b.port
        && match (&a.host, &b.host) {
            (Host::Ip(x), Host::Ip(y)) => x.to_canonical() == y.to_canonical(),
            (x, y) => x == y,
        }
}

impl PacketConn for Association {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if *self.closed.borrow() {
                return Err(ended());
            }
            let packet = socks_udp::encode(dest, buf)?;
            self.socket.send_to(&packet, &self.relay).await
        })
    }

    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let mut closed = self.closed.clone();
            loop {
                let (n, sender) = tokio::select! {
                    r = self.socket.recv_from(buf) => r?,
                    _ = closed.wait_for(|c| *c) => return Err(ended()),
                };
                // Only the relay speaks for the association: anyone else who learned the
                // socket's port could otherwise inject replies (RFC 1928 §7 has the client
                // drop them too).
                if !same_address(&sender, &self.relay) {
                    tracing::debug!(target: "outbound", "socks5: dropped a UDP datagram from {sender}, not the relay");
                    continue;
                }
                // A datagram without a valid header (or a fragment) is dropped, not fatal.
                let Ok(Some((from, offset))) = socks_udp::decode(&buf[..n]) else {
                    tracing::debug!(target: "outbound", "socks5: dropped a malformed UDP reply");
                    continue;
                };
                buf.copy_within(offset..n, 0);
                return Ok((n - offset, from));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    //! Hardening finding 2: a datagram that does not come from the relay is no reply, even
    //! with a well-formed SOCKS header.

    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use sb_core::dialer::DialOptions;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream, UdpSocket};

    #[tokio::test]
    async fn datagrams_not_from_the_relay_are_dropped() {
        let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let foreign = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // A control connection that stays open for the test.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let _server_side = listener.accept().await.unwrap();
        let socket: BoxPacketConn =
            Arc::new(sb_core::udp::DirectUdp::bind(&DialOptions::default()).unwrap());
        let assoc = Association::new(
            socket,
            Destination::from_socket(relay.local_addr().unwrap()),
            Box::new(control),
        );
        let peer = Destination::from_host("192.0.2.9", 53);
        assoc.send_to(b"query", &peer).await.unwrap();
        let mut buf = [0u8; 512];
        let (_, client) = relay.recv_from(&mut buf).await.unwrap();
        let forged = socks_udp::encode(&peer, b"forged").unwrap();
        foreign.send_to(&forged, client).await.unwrap();
        let real = socks_udp::encode(&peer, b"real").unwrap();
        relay.send_to(&real, client).await.unwrap();
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), assoc.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from), (&b"real"[..], peer));
    }
}
