//! How many connections the TCP inbounds (`mixed`, `socks`, `http`, `direct`) hold open at
//! once, for the whole process: the listener ([`super::listener`]) takes a permit before it
//! accepts, and the connection's task holds it until the flow ends.
//!
//! File descriptors are the resource: a proxied connection holds its client socket, its
//! upstream socket and, while bytes are spliced, pipes. The budget is what the open-file
//! limit leaves after a reserve, divided by the descriptors a connection may hold. Past it,
//! sb stops accepting and new connections wait in the kernel's listen backlog (a warning
//! says so, at most once a minute), instead of `accept` failing with "too many open files"
//! in a loop and every other socket (DNS, upstream dials) failing with it. Go sing-box has
//! no such bound.
//!
//! [`raise_open_file_limit`] (called by `sb run` at start) lifts the soft limit to the hard
//! one, as Go's runtime does for Go sing-box.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Descriptors kept for everything that is not an inbound connection: listeners, DNS
/// sockets, the runtime, log and cache files.
const RESERVE: u64 = 128;
/// Descriptors one connection may hold: its two sockets and a spliced pipe's two ends.
const PER_CONNECTION: u64 = 4;
/// The budget never goes below this, however low the limit.
const MIN_CONNECTIONS: u64 = 8;
/// How often the "limit reached" warning may repeat.
const WARN_EVERY: Duration = Duration::from_secs(60);

struct Budget {
    permits: Arc<Semaphore>,
    limit: usize,
    last_warning: Mutex<Option<Instant>>,
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

fn budget() -> &'static Budget {
    BUDGET.get_or_init(|| {
        let files = open_file_limit();
        let limit = files.map_or(u64::from(u16::MAX), |f| {
            (f.saturating_sub(RESERVE) / PER_CONNECTION).max(MIN_CONNECTIONS)
        });
        let limit = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let from = files.map_or_else(|| "no open-file limit".to_string(), |f| {
            format!("open-file limit {f}")
        });
        tracing::debug!(target: "inbound", "the TCP inbounds hold at most {limit} connections at once ({from})");
        Budget {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            last_warning: Mutex::new(None),
        }
    })
}

/// Fixes the budget now (it is logged once); the listener calls this before it starts.
pub fn init() {
    budget();
}

/// Waits for room for one more connection; the permit is held for the connection's life.
pub async fn admit() -> Option<OwnedSemaphorePermit> {
    let b = budget();
    if let Ok(p) = b.permits.clone().try_acquire_owned() {
        return Some(p);
    }
    let warn = b.last_warning.lock().is_ok_and(|mut last| {
        let now = Instant::now();
        let due = last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY);
        if due {
            *last = Some(now);
        }
        due
    });
    if warn {
        tracing::warn!(target: "inbound",
            "{} connections are open through the TCP inbounds, the most the open-file limit allows: new connections wait in the listen backlog until one ends (raise it with `ulimit -n` or LimitNOFILE=)",
            b.limit);
    }
    b.permits.clone().acquire_owned().await.ok()
}

/// The soft open-file limit, `None` when unlimited or unknown.
fn open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => Some(soft),
        _ => None,
    }
}

/// Raises the soft open-file limit to the hard one; returns the limits before and after
/// when it changed.
pub fn raise_open_file_limit() -> std::io::Result<Option<(u64, u64)>> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(None);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(Some((soft, hard)))
}
