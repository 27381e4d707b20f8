//! How many connections sb's inbounds hold open at once, for the whole process. The TCP
//! listener of `mixed`, `socks`, `http` and `direct` takes a permit before it accepts; the
//! userspace stack (TUN, endpoints) takes one for each connection it accepts; the
//! connection's task holds it until the flow ends.
//!
//! File descriptors are the resource: a proxied connection holds its client socket (not
//! for a userspace-stack flow) and its upstream socket; pipes for splicing are shared by all
//! connections, at most `splice::PIPES_MAX` of them (a connection that finds none copies
//! through user space). The budget is what the open-file limit leaves after a reserve and
//! the pipes, divided by the two descriptors of a connection. Past it, a listener stops accepting (new connections wait in the
//! kernel's listen backlog) and the userspace stack closes new connections at once; a
//! warning says so, at most once a minute. Without it, `accept` fails with "too many open
//! files" in a loop and every other socket (DNS, upstream dials) fails with it. Go sing-box
//! has no such bound.
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
/// Descriptors one connection holds: its two sockets.
const PER_CONNECTION: u64 = 2;
/// Descriptors the splice pipes may hold, all together (two per pipe).
const PIPES: u64 = 2 * crate::splice::PIPES_MAX as u64;
/// The budget never goes below this, however low the limit.
const MIN_CONNECTIONS: u64 = 8;
/// How often the "limit reached" warning may repeat.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A number of connections that may be open at once.
pub struct ConnBudget {
    permits: Arc<Semaphore>,
    limit: usize,
    last_warning: Mutex<Option<Instant>>,
}

static PROCESS: OnceLock<Arc<ConnBudget>> = OnceLock::new();

impl ConnBudget {
    /// A budget of `limit` connections (tests; sb itself uses [`ConnBudget::process`]).
    pub fn new(limit: usize) -> Arc<ConnBudget> {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Arc::new(ConnBudget {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            last_warning: Mutex::new(None),
        })
    }

    /// The process's budget, from the open-file limit when first asked for (and logged then).
    pub fn process() -> Arc<ConnBudget> {
        PROCESS
            .get_or_init(|| {
                let files = open_file_limit();
                let limit = files.map_or(u64::from(u16::MAX), |f| {
                    (f.saturating_sub(RESERVE + PIPES) / PER_CONNECTION).max(MIN_CONNECTIONS)
                });
                let from = files.map_or_else(
                    || "no open-file limit".to_string(),
                    |f| format!("open-file limit {f}"),
                );
                let budget = ConnBudget::new(usize::try_from(limit).unwrap_or(usize::MAX));
                tracing::debug!(target: "inbound", "the inbounds hold at most {} connections at once ({from})", budget.limit);
                budget
            })
            .clone()
    }

    /// The number of connections.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits for room for one more connection; the permit is held for the connection's
    /// life. `None` only if the budget was closed, which it never is.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        if let Some(p) = self.try_admit_quietly() {
            return Some(p);
        }
        self.warn("new connections wait in the listen backlog until one ends");
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Room for one more connection now, or `None` (warned about) when the budget is spent.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        let p = self.try_admit_quietly();
        if p.is_none() {
            self.warn("new connections from the userspace stack are closed until one ends");
        }
        p
    }

    fn try_admit_quietly(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    fn warn(&self, what: &str) {
        let due = self.last_warning.lock().is_ok_and(|mut last| {
            let now = Instant::now();
            let due = last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY);
            if due {
                *last = Some(now);
            }
            due
        });
        if due {
            tracing::warn!(target: "inbound",
                "{} connections are open through the inbounds, the most the open-file limit allows: {what} (raise it with `ulimit -n` or LimitNOFILE=)",
                self.limit);
        }
    }
}

/// The soft open-file limit, `None` when unlimited or unknown.
#[cfg(target_os = "linux")]
fn open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => Some(soft),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Raises the soft open-file limit to the hard one; returns the limits before and after
/// when it changed.
#[cfg(target_os = "linux")]
pub fn raise_open_file_limit() -> std::io::Result<Option<(u64, u64)>> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(None);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(Some((soft, hard)))
}

/// Raises the soft open-file limit (Linux only; elsewhere the limit is left as it is).
#[cfg(not(target_os = "linux"))]
pub fn raise_open_file_limit() -> std::io::Result<Option<(u64, u64)>> {
    Ok(None)
}
