//! sb: the stream side of a connection: what a `TcpStream` reads from and writes to (the
//! rings in its `TcpSocketControl`), and when it wakes the socket task that moves them to and
//! from smoltcp.

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{SharedControl, SharedNotify, TcpSocketState};

pub struct TcpStream {
    pub(super) src_addr: SocketAddr,
    pub(super) dst_addr: SocketAddr,
    pub(super) notify: SharedNotify,
    pub(super) control: SharedControl,
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let mut control = self.control.lock();

        if matches!(control.recv_state, TcpSocketState::Normal) {
            control.recv_state = TcpSocketState::Close;
        }

        if matches!(control.send_state, TcpSocketState::Normal) {
            control.send_state = TcpSocketState::Close;
        }

        self.notify.notify_one();
    }
}

impl TcpStream {
    pub fn local_addr(&self) -> &SocketAddr {
        &self.src_addr
    }

    pub fn remote_addr(&self) -> &SocketAddr {
        &self.dst_addr
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut control = self.control.lock();

        // Read from buffer
        if control.recv_buffer.is_empty() {
            // If socket is already closed / half closed, just return EOF directly.
            if matches!(control.recv_state, TcpSocketState::Closed) {
                return Ok(()).into();
            }

            // Nothing could be read. Wait for notify.
            if let Some(old_waker) = control.recv_waker.replace(cx.waker().clone()) {
                if !old_waker.will_wake(cx.waker()) {
                    old_waker.wake();
                }
            }

            return Poll::Pending;
        }

        // sb: initialise (zero) only what the ring fills, not the whole buffer the caller
        // offers (a relay reads into 64 KiB and gets a few packets' worth).
        let len = buf.remaining().min(control.recv_buffer.len());
        let recv_buf = buf.initialize_unfilled_to(len);
        let n = control.recv_buffer.dequeue_slice(recv_buf);
        buf.advance(n);

        // sb: the socket task drains smoltcp's buffer into the ring on every poll, so a
        // read only gives it work when it had to leave data behind; waking it for every
        // read cost a poll of the whole interface per read (and, on a multi-threaded
        // runtime, a wake across threads).
        if n > 0 && std::mem::take(&mut control.recv_held) {
            self.notify.notify_one();
        }

        Ok(()).into()
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut control = self.control.lock();

        // If state == Close | Closing | Closed, the TCP stream WR half is closed.
        if !matches!(control.send_state, TcpSocketState::Normal) {
            return Err(std::io::ErrorKind::BrokenPipe.into()).into();
        }

        // Write to buffer

        if control.send_buffer.is_full() {
            if let Some(old_waker) = control.send_waker.replace(cx.waker().clone()) {
                if !old_waker.will_wake(cx.waker()) {
                    old_waker.wake();
                }
            }

            return Poll::Pending;
        }

        // sb: the socket task moves the ring into smoltcp on every poll until smoltcp's
        // buffer is full, and polls again when an acknowledgement makes room; so only data
        // written into an empty ring is news to it.
        let was_empty = control.send_buffer.is_empty();
        let n = control.send_buffer.enqueue_slice(buf);

        if n > 0 && was_empty {
            self.notify.notify_one();
        }

        Ok(n).into()
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Ok(()).into()
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut control = self.control.lock();

        if matches!(control.send_state, TcpSocketState::Closed) {
            return Ok(()).into();
        }

        // SHUT_WR
        if matches!(control.send_state, TcpSocketState::Normal) {
            control.send_state = TcpSocketState::Close;
        }

        if let Some(old_waker) = control.send_waker.replace(cx.waker().clone()) {
            if !old_waker.will_wake(cx.waker()) {
                old_waker.wake();
            }
        }

        self.notify.notify_one();

        Poll::Pending
    }
}
