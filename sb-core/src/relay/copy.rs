//! The generic relay's bidirectional copy, for streams that are not two plain TCP sockets (an
//! SSH channel, a TLS stream, the TUN stack's connections). Unlike a copy that owns two
//! 64 KiB buffers per flow from its first byte, it holds memory only while a peer pushes back:
//! bytes are read into a buffer on the stack of the poll and written straight on; only when
//! the writer cannot take them all does the rest move into a heap buffer, which is kept while
//! the burst lasts and given back as soon as the reader has nothing more. An idle flow — most
//! of the flows a proxy holds — costs no buffer at all.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read at most per poll, and the size of a backlog buffer.
const CHUNK: usize = 64 * 1024;

/// One direction's state.
#[derive(Default)]
struct Dir {
    /// Bytes read but not yet written (`start..end`), while the writer pushes back.
    backlog: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    /// The reader reached EOF; the writer is being shut down.
    eof: bool,
    /// Done: EOF passed on.
    done: bool,
    /// Written since the last flush.
    need_flush: bool,
    /// Bytes moved.
    total: u64,
}

impl Dir {
    /// Moves bytes from `r` to `w` until it must wait; `Ready(Ok)` once EOF has been passed on.
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            // Write out the backlog first.
            if let Some(buf) = &self.backlog {
                while self.start < self.end {
                    let n = match Pin::new(&mut *w).poll_write(cx, &buf[self.start..self.end]) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
                        }
                        Poll::Ready(Ok(n)) => n,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    };
                    self.start += n;
                    self.need_flush = true;
                }
                self.start = 0;
                self.end = 0;
            }
            if self.eof {
                return match Pin::new(&mut *w).poll_shutdown(cx) {
                    Poll::Ready(Ok(())) => {
                        self.done = true;
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                };
            }
            match self.backlog.as_mut() {
                // In a burst: read straight into the backlog buffer.
                Some(buf) => {
                    let mut rb = ReadBuf::new(&mut buf[..]);
                    match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) => {
                            let n = rb.filled().len();
                            if n == 0 {
                                self.eof = true;
                            }
                            self.end = n;
                            self.total += n as u64;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {
                            // The burst is over: give the buffer back.
                            self.backlog = None;
                            return self.flush_then_wait(cx, w);
                        }
                    }
                }
                None => {
                    // Uninitialised: a reader fills what it reads (a socket writes into it
                    // directly). Zeroing 64 KiB for every read, when a read through a
                    // tunnel carries about a dozen KiB, was 1.5 % of sb's CPU samples in a
                    // WireGuard download (0.4 % after).
                    let mut stack = [MaybeUninit::<u8>::uninit(); CHUNK];
                    let mut rb = ReadBuf::uninit(&mut stack);
                    match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return self.flush_then_wait(cx, w),
                    };
                    let stack = rb.filled();
                    let n = stack.len();
                    if n == 0 {
                        self.eof = true;
                        continue;
                    }
                    self.total += n as u64;
                    let mut off = 0;
                    while off < n {
                        match Pin::new(&mut *w).poll_write(cx, &stack[off..n]) {
                            Poll::Ready(Ok(0)) => {
                                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
                            }
                            Poll::Ready(Ok(k)) => {
                                off += k;
                                self.need_flush = true;
                            }
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => {
                                // The writer pushes back: keep the rest on the heap.
                                let mut buf = vec![0u8; CHUNK].into_boxed_slice();
                                let rest = n - off;
                                buf[..rest].copy_from_slice(&stack[off..n]);
                                self.backlog = Some(buf);
                                self.start = 0;
                                self.end = rest;
                                return Poll::Pending;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Nothing to read: flush what was written (TLS and SSH writers buffer), then wait.
    fn flush_then_wait<W>(&mut self, cx: &mut Context<'_>, w: &mut W) -> Poll<io::Result<()>>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.need_flush {
            match Pin::new(&mut *w).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}

/// Copies `a` to `b` and `b` to `a` until both directions have passed their EOF on; returns
/// the bytes moved each way (a to b, b to a). An error in either direction ends both.
pub async fn copy_bidirectional<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut ab = Dir::default();
    let mut ba = Dir::default();
    std::future::poll_fn(|cx| {
        let up = ab.poll(cx, a, b)?;
        let down = ba.poll(cx, b, a)?;
        match (up, down) {
            (Poll::Ready(()), Poll::Ready(())) => Poll::Ready(Ok((ab.total, ba.total))),
            _ => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn moves_bytes_both_ways_with_backpressure_and_half_close() {
        // Tiny duplex pipes make the writer push back all the time.
        let (mut client, mut proxy_a) = tokio::io::duplex(1024);
        let (mut proxy_b, mut server) = tokio::io::duplex(1024);
        let relay =
            tokio::spawn(async move { copy_bidirectional(&mut proxy_a, &mut proxy_b).await });
        let up: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let down: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let c = tokio::spawn(async move {
            client.write_all(&up2).await.unwrap();
            client.shutdown().await.unwrap();
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, up);
        server.write_all(&down2).await.unwrap();
        server.shutdown().await.unwrap();
        assert_eq!(c.await.unwrap(), down);
        let (a, b) = relay.await.unwrap().unwrap();
        assert_eq!((a, b), (300_000, 200_000));
    }
}
