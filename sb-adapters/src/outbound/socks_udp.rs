//! A SOCKS5 UDP association, the client side of RFC 1928 §7, for the `socks` outbound's UDP
//! flows: datagrams go to the server's relay address wrapped in the SOCKS UDP header, through
//! a socket the outbound's [`Dialer`](sb_core::dialer::Dialer) opened (so a `detour` carries
//! them too). The association lives as long as its TCP control connection: when the server
//! closes that, receiving fails and the flow ends.

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
            let packet = socks_udp::encode(dest, buf);
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
                let (n, _) = tokio::select! {
                    r = self.socket.recv_from(buf) => r?,
                    _ = closed.wait_for(|c| *c) => return Err(ended()),
                };
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
