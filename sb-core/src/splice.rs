//! Linux `splice(2)` between two TCP sockets: bytes move socket -> pipe -> socket inside the
//! kernel, never copied to user space. Pipes come from a small pool and go back once drained,
//! so descriptors are used only while data is in flight (an idle flow holds none; a held flow
//! costs no more descriptors than its two sockets). At most `LARGE_PIPES_MAX` pipes are
//! enlarged to `PIPE_SIZE`; a flow whose receiver stalls holds at most one pipe per direction.

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

static POOL: Mutex<Vec<Pipe>> = Mutex::new(Vec::new());
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
        if self.capacity > DEFAULT_PIPE {
            LARGE_PIPES.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn take_pipe() -> io::Result<Pipe> {
    if let Some(p) = POOL.lock().ok().and_then(|mut v| v.pop()) {
        return Ok(p);
    }
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
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
    Ok(Pipe {
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
    loop {
        if !eof {
            let p = match held.take() {
                Some(p) => p,
                None => take_pipe()?,
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

#[cfg(test)]
mod tests {
    //! Hardening finding 7: pipes of flows whose receiver stopped reading stay full, so
    //! enlarged pipes are bounded in number, whatever the number of flows.

    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn enlarged_pipes_are_bounded() {
        let held: Vec<Pipe> = (0..LARGE_PIPES_MAX + 8)
            .map(|_| take_pipe().unwrap())
            .collect();
        let large = held.iter().filter(|p| p.capacity > DEFAULT_PIPE).count();
        assert!(large <= LARGE_PIPES_MAX, "{large} enlarged pipes");
        assert!(held.iter().all(|p| p.capacity >= DEFAULT_PIPE));
    }
}
