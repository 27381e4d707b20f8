//! Linux `splice(2)` between two TCP sockets: bytes move socket -> pipe -> socket inside the
//! kernel, never copied to user space. Pipes come from a small pool and go back once drained,
//! so descriptors are used only while data is in flight (an idle flow holds none; a held flow
//! costs no more descriptors than its two sockets). At most `LARGE_PIPES_MAX` pipes are
//! enlarged to `PIPE_SIZE`; a flow whose receiver stalls holds at most one pipe per direction.
//!
//! At most [`PIPES_MAX`] pipes exist at once (the connection budget of `conn_limit.rs` keeps
//! their descriptors aside). A direction that finds none free, or whose pipe the kernel
//! refuses (the open-file limit reached), copies that burst through a user-space buffer
//! instead: the flow goes on, only slower.

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe capacity asked for (`F_SETPIPE_SZ`). A bigger pipe lets one splice call move
/// what a fast sender queued (the socket buffers hold megabytes), so a bulk flow needs fewer
/// system calls per byte; the kernel only backs the pages actually in flight. When the
/// request is refused (`pipe-max-size`), the default 64 KiB pipe is used.
const PIPE_SIZE: usize = 1 << 20;
/// Idle pipes kept for reuse.
const POOL_MAX: usize = 64;
/// The kernel's default pipe capacity.
const DEFAULT_PIPE: usize = 64 * 1024;
/// Enlarged pipes alive at once. A flow whose receiver stopped reading keeps its pipe full;
/// without a bound, many stalled flows would pin `PIPE_SIZE` of kernel memory each (root is
/// not held by `pipe-user-pages-soft`). Past it, new pipes keep the default capacity.
const LARGE_PIPES_MAX: usize = 64;

/// Pipes alive at once, pooled or in use: each holds two descriptors, which the connection
/// budget sets aside (`conn_limit.rs`).
pub const PIPES_MAX: usize = 512;
/// Bytes one user-space copy step moves when no pipe is available.
const COPY_CHUNK: usize = 16 * 1024;

static POOL: Mutex<Vec<Pipe>> = Mutex::new(Vec::new());
/// Pipes alive now, pooled or in use.
static PIPES: AtomicUsize = AtomicUsize::new(0);
/// Enlarged pipes alive now, pooled or in use.
static LARGE_PIPES: AtomicUsize = AtomicUsize::new(0);

/// A pipe and its capacity.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        PIPES.fetch_sub(1, Ordering::Relaxed);
        if self.capacity > DEFAULT_PIPE {
            LARGE_PIPES.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A pipe from the pool or a new one; `None` when [`PIPES_MAX`] are alive or the kernel
/// refuses one (the caller copies through user space instead).
fn take_pipe() -> Option<Pipe> {
    if let Some(p) = POOL.lock().ok().and_then(|mut v| v.pop()) {
        return Some(p);
    }
    PIPES
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < PIPES_MAX).then_some(n + 1)
        })
        .ok()?;
    let Ok((read, write)) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC) else {
        PIPES.fetch_sub(1, Ordering::Relaxed);
        return None;
    };
    let mut capacity = DEFAULT_PIPE;
    // Claim one of the enlarged slots first; give it back if the kernel refuses.
    let claimed = LARGE_PIPES
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < LARGE_PIPES_MAX).then_some(n + 1)
        })
        .is_ok();
    if claimed {
        capacity = fcntl(write.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32))
            .ok()
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(DEFAULT_PIPE);
        if capacity <= DEFAULT_PIPE {
            LARGE_PIPES.fetch_sub(1, Ordering::Relaxed);
        }
    }
    Some(Pipe {
        read,
        write,
        capacity,
    })
}

/// Returns an empty pipe to the pool (a pipe that may hold bytes is dropped instead).
fn give_pipe(p: Pipe) {
    if let Ok(mut v) = POOL.lock() {
        if v.len() < POOL_MAX {
            v.push(p);
        }
    }
}

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

/// One direction: splices until EOF (then half-closes `to`) or an error. The pipe is held
/// while bytes flow and handed back whenever the source has nothing more for now, so an idle
/// flow holds no pipe. Reads fill the pipe as far as the source allows before the writes
/// drain it, which batches small segments of a busy flow into large splices.
pub async fn pipe(
    from: &TcpStream,
    to: &TcpStream,
    counter: &AtomicU64,
    activity: &AtomicU64,
    epoch: tokio::time::Instant,
) -> io::Result<u64> {
    let mut total = 0u64;
    let mut held: Option<Pipe> = None;
    let mut buffered = 0usize;
    let mut eof = false;
    let mut chunk: Vec<u8> = Vec::new();
    loop {
        if !eof {
            let p = match held.take() {
                Some(p) => p,
                None => match take_pipe() {
                    Some(p) => p,
                    None => {
                        // No pipe now, and none holds bytes of this direction: one burst
                        // through user space keeps the order and the flow going.
                        let n = copy_step(from, to, &mut chunk).await?;
                        if n == 0 {
                            eof = true;
                        } else {
                            total += n as u64;
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            activity.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                        }
                        continue;
                    }
                },
            };
            let room = p.capacity - buffered;
            let moved = if room == 0 {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                from.try_io(Interest::READABLE, || {
                    splice(from, None, &p.write, None, room, FLAGS).map_err(io::Error::from)
                })
            };
            match moved {
                Ok(0) => eof = true,
                Ok(n) => {
                    buffered += n;
                    total += n as u64;
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    activity.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if buffered == 0 {
                        // Nothing in flight: give the pipe back while waiting.
                        give_pipe(p);
                        from.readable().await?;
                        continue;
                    }
                }
                Err(e) => return Err(e),
            }
            held = Some(p);
        }
        if buffered > 0 {
            let Some(p) = held.as_ref() else {
                return Err(io::Error::other("splice: bytes buffered without a pipe"));
            };
            match to.try_io(Interest::WRITABLE, || {
                splice(&p.read, None, to, None, buffered, FLAGS).map_err(io::Error::from)
            }) {
                Ok(w) => buffered -= w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Room left in the pipe: keep reading while the writer is blocked, so
                    // the sender is not stalled by one slow write.
                    if !eof && held.as_ref().is_some_and(|p| buffered < p.capacity) {
                        tokio::select! {
                            r = to.writable() => r?,
                            r = from.readable() => r?,
                        }
                    } else {
                        to.writable().await?;
                    }
                }
                // The pipe may still hold bytes: it is dropped, not returned to the pool.
                Err(e) => return Err(e),
            }
        } else if eof {
            if let Some(p) = held.take() {
                give_pipe(p);
            }
            let _ = socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write);
            return Ok(total);
        }
    }
}

/// Reads what `from` has (waiting for it) and writes all of it to `to`; 0 at EOF.
async fn copy_step(from: &TcpStream, to: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.resize(COPY_CHUNK, 0);
    let n = loop {
        from.readable().await?;
        match from.try_read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    let mut written = 0;
    while written < n {
        to.writable().await?;
        match to.try_write(&buf[written..n]) {
            Ok(w) => written += w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    //! Hardening finding 7: pipes of flows whose receiver stopped reading stay full, so
    //! enlarged pipes are bounded in number, whatever the number of flows.

    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn without_a_free_pipe_a_flow_is_copied_through_user_space() {
        // Take every pipe there may be (other tests may hold some): none is left.
        let mut held = Vec::new();
        while let Some(p) = take_pipe() {
            held.push(p);
        }
        assert!(held.len() <= PIPES_MAX);
        assert!(take_pipe().is_none());
        let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(l1.local_addr().unwrap()).await.unwrap();
        let (from, _) = l1.accept().await.unwrap();
        let to = TcpStream::connect(l2.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = l2.accept().await.unwrap();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
        });
        let (counter, activity) = (AtomicU64::new(0), AtomicU64::new(0));
        let relay = pipe(&from, &to, &counter, &activity, tokio::time::Instant::now());
        let read = async {
            use tokio::io::AsyncReadExt;
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got
        };
        let (moved, got) = tokio::join!(relay, read);
        writer.await.unwrap();
        assert_eq!(moved.unwrap(), body.len() as u64);
        assert_eq!(got, body);
        assert_eq!(counter.load(Ordering::Relaxed), body.len() as u64);
        drop(held);
    }

    #[test]
    fn enlarged_pipes_are_bounded() {
        // Other tests may hold pipes at the same time: take what there is, up to the count.
        let held: Vec<Pipe> = (0..LARGE_PIPES_MAX + 8)
            .map_while(|_| take_pipe())
            .collect();
        let large = held.iter().filter(|p| p.capacity > DEFAULT_PIPE).count();
        assert!(large <= LARGE_PIPES_MAX, "{large} enlarged pipes");
        assert!(held.iter().all(|p| p.capacity >= DEFAULT_PIPE));
    }
}
