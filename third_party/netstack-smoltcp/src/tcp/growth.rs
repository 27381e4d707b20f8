//! sb: how a connection's buffers are sized. Each starts small and grows with the traffic
//! through it, up to the configured size; connections growing their receive buffers at
//! once share that size (`receive_share`). See SB_PATCH.md.

use smoltcp::{
    socket::tcp::{Socket as TcpSocket, SocketBuffer as TcpSocketBuffer},
    storage::RingBuffer,
};
use tracing::trace;

use super::{TcpSocketControl, TcpSocketState};

/// sb: a connection's four buffers (smoltcp's receive and send buffers and the two rings
/// between them and the `TcpStream`) start at this size, or the configured size if that is
/// smaller, and grow with the traffic (`grow`) up to the configured size. An idle or short
/// connection then holds 4 x 64 KiB, not 4 x the maximum, while a bulk transfer gets the
/// large window it needs: one stream through a tunnel is bound by window / round trip.
pub(super) const INITIAL_BUFFER: usize = 64 * 1024;

/// sb: a buffer doubles when twice its capacity went through it within this period, the
/// sign of a flow its window holds back (a flow that moves a window per round trip moves
/// many per second); a slow long-lived flow never grows its buffers.
const GROWTH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// sb: bytes moved through a connection's buffers since `since`.
pub(super) struct Growth {
    since: std::time::Instant,
    pub(super) received: usize,
    pub(super) sent: usize,
}

impl Growth {
    pub(super) fn new() -> Growth {
        Growth {
            since: std::time::Instant::now(),
            received: 0,
            sent: 0,
        }
    }
}

/// sb: a socket with the initial buffers, whose window scale allows `max_recv`.
pub(super) fn new_socket((max_recv, max_send): (u32, u32)) -> TcpSocket<'static> {
    let mut socket = TcpSocket::new(
        TcpSocketBuffer::new(vec![0u8; initial(max_recv)]),
        TcpSocketBuffer::new(vec![0u8; initial(max_send)]),
    );
    socket.set_rx_capacity_max(max_recv as usize);
    socket
}

/// sb: a connection's control block with the initial rings.
pub(super) fn new_control((max_recv, max_send): (u32, u32)) -> TcpSocketControl {
    TcpSocketControl {
        send_buffer: RingBuffer::new(vec![0u8; initial(max_send)]),
        send_waker: None,
        recv_buffer: RingBuffer::new(vec![0u8; initial(max_recv)]),
        recv_waker: None,
        recv_state: TcpSocketState::Normal,
        send_state: TcpSocketState::Normal,
        local: None,
        growth: Growth::new(),
        recv_held: false,
    }
}

pub(super) fn initial(max: u32) -> usize {
    (max as usize).min(INITIAL_BUFFER)
}

/// sb: what one connection's receive buffer may grow to when `grown` connections (itself
/// included) have grown theirs: an equal share of `budget`, and never less than the
/// initial size.
///
/// The stack's connections mostly share one path (a WireGuard endpoint's flows all cross
/// its tunnel), and what a path can take in flight does not grow with the number of
/// connections on it: every window past that only fills the queue in front of the slowest
/// hop until it drops. So the configured receive size is what one connection may grow to
/// and what all growing connections share.
pub(super) fn receive_share(budget: u32, grown: usize) -> usize {
    (budget as usize / grown.max(1)).max(initial(budget))
}

/// sb: doubles the receive side (smoltcp's buffer and the ring after it) when twice its
/// capacity went through it within `GROWTH_PERIOD`, up to `recv_share`, the send side
/// likewise up to its maximum; then starts a new period when this one is over.
pub(super) fn grow(
    socket: &mut TcpSocket<'static>,
    control: &mut TcpSocketControl,
    (recv_share, max_send): (usize, u32),
    now: std::time::Instant,
) {
    let (rx, tx) = (socket.recv_capacity(), socket.send_capacity());
    let g = &mut control.growth;
    let next_rx = if g.received >= 2 * rx {
        (2 * rx).min(recv_share).max(rx)
    } else {
        rx
    };
    let next_tx = if g.sent >= 2 * tx {
        (2 * tx).min(max_send as usize).max(tx)
    } else {
        tx
    };
    if next_rx > rx {
        g.received = 0;
    }
    if next_tx > tx {
        g.sent = 0;
    }
    if now.duration_since(g.since) >= GROWTH_PERIOD {
        *g = Growth {
            since: now,
            received: 0,
            sent: 0,
        };
    }
    if next_rx > rx || next_tx > tx {
        socket.grow_buffers(next_rx, next_tx);
        control.recv_buffer.grow(next_rx);
        control.send_buffer.grow(next_tx);
        trace!("TCP buffers grown to {next_rx} (receive) and {next_tx} (send)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sb: growing connections split the receive budget evenly, never below the initial
    /// size; a budget under the initial size is every connection's size.
    #[test]
    fn growing_connections_share_the_receive_budget() {
        let mib = 1 << 20;
        assert_eq!(receive_share(mib, 0), 1 << 20);
        assert_eq!(receive_share(mib, 1), 1 << 20);
        assert_eq!(receive_share(mib, 4), 256 * 1024);
        assert_eq!(receive_share(mib, 100), INITIAL_BUFFER);
        assert_eq!(receive_share(32 * 1024, 3), 32 * 1024);
    }
}
