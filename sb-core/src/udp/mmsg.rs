//! Batched receive for a host UDP socket (`recvmmsg`): a tunnel's outer socket under load
//! gets its datagrams from the kernel in runs, one system call each instead of one per
//! datagram (the WireGuard endpoint's receive path; `send_gso` in `udp.rs` is the send
//! side's counterpart).

use super::unmapped;
use crate::flow::Destination;
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::net::UdpSocket;

/// Waits until `socket` is readable, then takes up to `bufs.len()` datagrams at once. `got`
/// is cleared, then holds each one's length and sender (datagram `i` in `bufs[i]`); at
/// least one on success.
pub(super) async fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    got: &mut Vec<(usize, Destination)>,
) -> io::Result<()> {
    got.clear();
    if bufs.is_empty() {
        return Ok(());
    }
    loop {
        socket.readable().await?;
        let taken = socket.try_io(tokio::io::Interest::READABLE, || take(socket, bufs, got));
        match taken {
            Ok(()) if !got.is_empty() => return Ok(()),
            // Readiness was stale (another reader, a datagram with a bad checksum).
            Ok(()) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One non-blocking `recvmmsg`. The kernel's headers (raw pointers into `bufs`) live only
/// inside this call, so the future around it stays `Send`.
fn take(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    got: &mut Vec<(usize, Destination)>,
) -> io::Result<()> {
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(bufs.len(), None);
    let mut slices: Vec<[IoSliceMut<'_>; 1]> = bufs
        .iter_mut()
        .map(|b| [IoSliceMut::new(b.as_mut_slice())])
        .collect();
    let received = recvmmsg(
        socket.as_raw_fd(),
        &mut headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(io::Error::from)?;
    for msg in received {
        // A dual-stack socket's IPv4 senders arrive mapped; an IPv4 socket's as IPv4. A
        // message without a sender (not a datagram from a peer) keeps its place, as an
        // empty datagram from nowhere that no peer takes, so `got[i]` stays `bufs[i]`.
        let from = msg.address.as_ref().and_then(sender);
        let (bytes, from) = match from {
            Some(from) => (msg.bytes, from),
            None => (0, SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))),
        };
        got.push((bytes, Destination::from_socket(from)));
    }
    Ok(())
}

/// The sender's address, IPv4 senders of a dual-stack socket unmapped.
fn sender(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v6) = addr.as_sockaddr_in6() {
        return Some(unmapped(SocketAddr::V6((*v6).into())));
    }
    addr.as_sockaddr_in().map(|v4| SocketAddr::V4((*v4).into()))
}
