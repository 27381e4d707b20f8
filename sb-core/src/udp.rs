//! UDP flows: the relay between a client-side and an upstream [`PacketConn`], and the direct
//! UDP socket outbounds use. A UDP flow is routed once, by its first packet's destination
//! (as in Go); later packets to other destinations use the same upstream association.

use crate::adapter::{BoxFuture, BoxPacketConn, PacketConn};
use crate::dialer::{resolve_with, DialOptions};
use crate::flow::Destination;
use crate::relay::Counters;
use socket2::SockRef;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Go's default `udp_timeout`.
pub const UDP_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;

/// Relays until neither side sends for `idle`, or either side fails. Counts payload bytes
/// into `counters` (for the tracker) and returns them (up, down).
pub async fn relay_udp(
    client: BoxPacketConn,
    upstream: BoxPacketConn,
    counters: Arc<Counters>,
    idle: Duration,
) -> io::Result<(u64, u64)> {
    let activity = Arc::new(tokio::sync::Notify::new());
    let up = {
        let (client, upstream, counters, activity) = (
            client.clone(),
            upstream.clone(),
            counters.clone(),
            activity.clone(),
        );
        async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                let (n, dest) = client.recv_from(&mut buf).await?;
                if let Err(e) = upstream.send_to(&buf[..n], &dest).await {
                    dropped_or_fatal(e, &dest)?;
                    continue;
                }
                counters.up.fetch_add(n as u64, Ordering::Relaxed);
                activity.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        }
    };
    let down = {
        let (client, upstream, counters, activity) =
            (client, upstream, counters.clone(), activity.clone());
        async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                let (n, from) = upstream.recv_from(&mut buf).await?;
                if let Err(e) = client.send_to(&buf[..n], &from).await {
                    dropped_or_fatal(e, &from)?;
                    continue;
                }
                counters.down.fetch_add(n as u64, Ordering::Relaxed);
                activity.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        }
    };
    let idle_timer = async {
        loop {
            if tokio::time::timeout(idle, activity.notified())
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let result = tokio::select! {
        r = up => r,
        r = down => r,
        _ = idle_timer => Ok(()),
    };
    result.map(|()| {
        (
            counters.up.load(Ordering::Relaxed),
            counters.down.load(Ordering::Relaxed),
        )
    })
}

/// A failed send: `Ok` when only that datagram is lost (its name has no address, it is too
/// large, the peer's port answered ICMP unreachable, a family the socket cannot reach) and
/// the association goes on, as a network drops a packet; `Err` when the side itself is gone.
fn dropped_or_fatal(e: io::Error, to: &Destination) -> io::Result<()> {
    use io::ErrorKind as K;
    let per_packet = matches!(
        e.kind(),
        K::NotFound
            | K::InvalidInput
            | K::ConnectionRefused
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
            | K::PermissionDenied
            | K::WouldBlock
            | K::TimedOut
    ) || e.raw_os_error().is_some_and(transient_os_error);
    if per_packet {
        tracing::debug!(target: "connection", "udp: datagram to {to} dropped: {e}");
        Ok(())
    } else {
        Err(e)
    }
}

/// `EMSGSIZE` (a datagram larger than the path takes) and `ENOBUFS` (the socket's queue is
/// full for a moment): that datagram only.
#[cfg(target_os = "linux")]
fn transient_os_error(code: i32) -> bool {
    code == nix::libc::EMSGSIZE || code == nix::libc::ENOBUFS
}

#[cfg(not(target_os = "linux"))]
fn transient_os_error(_code: i32) -> bool {
    false
}

/// A client side whose first datagrams were already read (by a UDP sniff): they are handed
/// out again, in order, before anything new is read.
pub struct Replay {
    queued: std::sync::Mutex<std::collections::VecDeque<(Vec<u8>, Destination)>>,
    inner: BoxPacketConn,
}

impl Replay {
    /// Replays `queued`, then reads from `inner`.
    pub fn new(queued: Vec<(Vec<u8>, Destination)>, inner: BoxPacketConn) -> Replay {
        Replay {
            queued: std::sync::Mutex::new(queued.into()),
            inner,
        }
    }
}

impl PacketConn for Replay {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        self.inner.send_to(buf, dest)
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        let next = self.queued.lock().ok().and_then(|mut q| q.pop_front());
        match next {
            Some((pkt, dest)) => Box::pin(async move {
                let n = pkt.len().min(buf.len());
                buf[..n].copy_from_slice(&pkt[..n]);
                Ok((n, dest))
            }),
            None => self.inner.recv_from(buf),
        }
    }
}

/// A UDP socket of this host, for the `direct` outbound: one dual-stack socket per flow,
/// sending to any destination (domains resolved per packet, the last answer remembered).
pub struct DirectUdp {
    socket: UdpSocket,
    last: std::sync::Mutex<Option<(String, SocketAddr)>>,
    resolver: Option<crate::resolve::DomainResolver>,
    /// Cleared when the kernel refuses UDP GSO on this socket (then runs go one by one).
    gso: std::sync::atomic::AtomicBool,
}

/// Most datagrams the kernel takes in one GSO send (`UDP_MAX_SEGMENTS` of older kernels).
pub const GSO_MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO send (one IP packet's payload before segmentation).
pub const GSO_MAX_BYTES: usize = 65_000;

impl DirectUdp {
    /// Binds a dual-stack socket with the dial options (mark, interface).
    pub fn bind(opts: &DialOptions) -> io::Result<DirectUdp> {
        Self::bind_port(opts, 0)
    }

    /// Like [`DirectUdp::bind`], on `port` (0: any), for a listener that peers reach (the
    /// WireGuard endpoint's `listen_port`).
    pub fn bind_port(opts: &DialOptions, port: u16) -> io::Result<DirectUdp> {
        let std_sock = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        std_sock.set_only_v6(false)?;
        std_sock.set_nonblocking(true)?;
        let sock = SockRef::from(&std_sock);
        if opts.routing_mark != 0 {
            sock.set_mark(opts.routing_mark)?;
        }
        if let Some(dev) = &opts.bind_interface {
            sock.bind_device(Some(dev.as_bytes()))?;
        }
        std_sock.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
        let socket = UdpSocket::from_std(std_sock.into())?;
        Ok(DirectUdp {
            socket,
            last: std::sync::Mutex::new(None),
            resolver: opts.domain_resolver.clone(),
            gso: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The address the socket is bound to (its port, when bound to any).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Asks the kernel for `bytes` of receive and send buffer: for a socket that carries a
    /// whole tunnel (the WireGuard endpoint's), where the default (about 208 KiB) overflows
    /// in a burst and every datagram dropped is a loss for the flows inside. Root (or
    /// `CAP_NET_ADMIN`) may go past `net.core.rmem_max`/`wmem_max`; otherwise the kernel
    /// caps the request there. Returns the receive buffer size the kernel then reports.
    pub fn grow_buffers(&self, bytes: usize) -> io::Result<usize> {
        use nix::sys::socket::{setsockopt, sockopt};
        let forced = setsockopt(&self.socket, sockopt::RcvBufForce, &bytes)
            .and_then(|()| setsockopt(&self.socket, sockopt::SndBufForce, &bytes));
        let sock = SockRef::from(&self.socket);
        if forced.is_err() {
            sock.set_recv_buffer_size(bytes)?;
            sock.set_send_buffer_size(bytes)?;
        }
        sock.recv_buffer_size()
    }

    async fn target(&self, dest: &Destination) -> io::Result<SocketAddr> {
        let addr = match dest.domain() {
            None => dest
                .socket_addr()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?,
            Some(name) => {
                let cached = self
                    .last
                    .lock()
                    .ok()
                    .and_then(|l| l.clone())
                    .filter(|(n, _)| n == name);
                match cached {
                    Some((_, a)) => SocketAddr::new(a.ip(), dest.port),
                    None => {
                        let a = resolve_with(self.resolver.as_ref(), dest)
                            .await?
                            .into_iter()
                            .next()
                            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
                        if let Ok(mut l) = self.last.lock() {
                            *l = Some((name.to_string(), a));
                        }
                        a
                    }
                }
            }
        };
        // The socket is IPv6 dual-stack: IPv4 peers are written as mapped addresses.
        Ok(match addr {
            SocketAddr::V4(v4) => SocketAddr::from((v4.ip().to_ipv6_mapped(), v4.port())),
            v6 => v6,
        })
    }
}

impl DirectUdp {
    /// One `sendmsg` with `UDP_SEGMENT`: the kernel cuts `buf` into datagrams of `segment`
    /// bytes, so a run costs one system call instead of one per datagram.
    async fn send_gso(&self, buf: &[u8], segment: usize, to: SocketAddr) -> io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn6};
        use std::os::fd::AsRawFd;
        let SocketAddr::V6(v6) = to else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a mapped address",
            ));
        };
        let addr = SockaddrIn6::from(v6);
        let size = u16::try_from(segment)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        let iov = [std::io::IoSlice::new(buf)];
        let cmsg = [ControlMessage::UdpGsoSegments(&size)];
        loop {
            self.socket.writable().await?;
            let sent = self.socket.try_io(tokio::io::Interest::WRITABLE, || {
                sendmsg(
                    self.socket.as_raw_fd(),
                    &iov,
                    &cmsg,
                    MsgFlags::empty(),
                    Some(&addr),
                )
                .map_err(io::Error::from)
            });
            match sent {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Errors with which a kernel or device says it cannot do UDP GSO.
fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno) if libc_errno == nix::errno::Errno::EIO as i32
            || libc_errno == nix::errno::Errno::EINVAL as i32
            || libc_errno == nix::errno::Errno::ENOPROTOOPT as i32
            || libc_errno == nix::errno::Errno::EOPNOTSUPP as i32
    )
}

impl PacketConn for DirectUdp {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let to = self.target(dest).await?;
            self.socket.send_to(buf, to).await.map(|_| ())
        })
    }
    fn send_segments<'a>(
        &'a self,
        buf: &'a [u8],
        segment: usize,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let to = self.target(dest).await?;
            let one_by_one = buf.len() <= segment
                || segment == 0
                || buf.len() > GSO_MAX_BYTES
                || buf.len().div_ceil(segment) > GSO_MAX_SEGMENTS
                || !self.gso.load(Ordering::Relaxed);
            if !one_by_one {
                match self.send_gso(buf, segment, to).await {
                    Ok(()) => return Ok(()),
                    // The device or kernel cannot segment (no checksum offload, an old
                    // kernel): say so once and send one by one from now on.
                    Err(e) if gso_unsupported(&e) => {
                        self.gso.store(false, Ordering::Relaxed);
                        tracing::debug!(target: "outbound", "UDP GSO refused ({e}): sending datagrams one by one");
                    }
                    Err(e) => return Err(e),
                }
            }
            for datagram in buf.chunks(segment.max(1)) {
                self.socket.send_to(datagram, to).await?;
            }
            Ok(())
        })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let (n, from) = self.socket.recv_from(buf).await?;
            Ok((n, Destination::from_socket(unmapped(from))))
        })
    }
    fn recv_batch<'a>(
        &'a self,
        bufs: &'a mut [Vec<u8>],
        got: &'a mut Vec<(usize, Destination)>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(mmsg::recv_batch(&self.socket, bufs, got))
    }
}

/// The sender as the flow sees it: IPv4 peers of the dual-stack socket arrive as mapped
/// IPv6 addresses.
fn unmapped(from: SocketAddr) -> SocketAddr {
    match from {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => from,
        },
        v4 => v4,
    }
}

mod mmsg;
#[cfg(test)]
mod tests;
