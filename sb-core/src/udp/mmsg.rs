//! Batched receive for a host UDP socket (`recvmmsg`): a tunnel's outer socket under load
//! gets its datagrams from the kernel in runs, one system call each instead of one per
//! datagram (the WireGuard endpoint's receive path; `send_gso` in `udp.rs` is the send
//! side's counterpart).

use super::unmapped;
use crate::flow::Destination;
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrIn6};
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
    let mut headers = MultiHeaders::<SockaddrIn6>::preallocate(bufs.len(), None);
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
        // The socket is IPv6 dual-stack, so every sender has an IPv6 (or mapped) address.
        // A message without one (not a datagram from a peer) keeps its place, as an empty
        // datagram from nowhere that no peer takes, so `got[i]` stays `bufs[i]`.
        let (bytes, from) = match msg.address {
            Some(addr) => (msg.bytes, unmapped(SocketAddr::V6(addr.into()))),
            None => (0, SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))),
        };
        got.push((bytes, Destination::from_socket(from)));
    }
    Ok(())
}
