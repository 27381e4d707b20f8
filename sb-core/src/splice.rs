//! Linux `splice(2)` between two TCP sockets: bytes move socket -> pipe -> socket inside the
//! kernel, never copied to user space. Pipes come from a small pool and go back once drained,
//! so descriptors are used only while data is in flight (an idle flow holds none; a held flow
//! costs no more descriptors than its two sockets).

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes moved per splice call (the default pipe capacity).
const CHUNK: usize = 64 * 1024;
/// Idle pipes kept for reuse.
const POOL_MAX: usize = 64;

static POOL: Mutex<Vec<(OwnedFd, OwnedFd)>> = Mutex::new(Vec::new());

fn take_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    if let Some(p) = POOL.lock().ok().and_then(|mut v| v.pop()) {
        return Ok(p);
    }
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn give_pipe(p: (OwnedFd, OwnedFd)) {
    if let Ok(mut v) = POOL.lock() {
        if v.len() < POOL_MAX {
            v.push(p);
        }
    }
}

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

/// One direction: splices until EOF (then half-closes `to`) or an error.
pub async fn pipe(
    from: &TcpStream,
    to: &TcpStream,
    counter: &AtomicU64,
    activity: &AtomicU64,
    epoch: tokio::time::Instant,
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        from.readable().await?;
        let (pr, pw) = take_pipe()?;
        let moved = from.try_io(Interest::READABLE, || {
            splice(from, None, &pw, None, CHUNK, FLAGS).map_err(io::Error::from)
        });
        let n = match moved {
            Ok(0) => {
                give_pipe((pr, pw));
                let _ = socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write);
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                give_pipe((pr, pw));
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(&pr, None, to, None, left, FLAGS).map_err(io::Error::from)
            }) {
                Ok(w) => left -= w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // The pipe may still hold bytes: it is dropped, not returned to the pool.
                Err(e) => return Err(e),
            }
        }
        give_pipe((pr, pw));
        total += n as u64;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}
