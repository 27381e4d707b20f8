//! Where a Tor client is, as flows see it, for both ways of running Tor: the handle a flow
//! needs (arti's client, or the external tor's SOCKS address) once there is one, the
//! bootstrap percentage, and why Tor could not start. A flow waits on it, bounded.

use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The state one outbound's Tor publishes.
#[derive(Clone)]
pub struct Status<H> {
    /// What a flow uses, once Tor runs.
    pub handle: Option<H>,
    /// Bootstrap progress, 0 to 100.
    pub percent: u8,
    /// Ready for streams (stays set once reached).
    pub ready: bool,
    /// Why Tor could not start or stopped.
    pub failed: Option<Arc<str>>,
}

impl<H> Default for Status<H> {
    fn default() -> Self {
        Status {
            handle: None,
            percent: 0,
            ready: false,
            failed: None,
        }
    }
}

/// The handle once Tor is ready for streams, waiting at most `wait`; past it, the
/// `Tor is not bootstrapped yet (NN%)` error.
pub async fn ready<H: Clone>(status: &watch::Sender<Status<H>>, wait: Duration) -> io::Result<H> {
    let mut rx = status.subscribe();
    let _ = tokio::time::timeout(wait, async {
        rx.wait_for(|s| s.failed.is_some() || (s.ready && s.handle.is_some()))
            .await
            .map(|_| ())
    })
    .await;
    let now = status.borrow().clone();
    if let Some(why) = now.failed {
        return Err(io::Error::other(format!("Tor could not start: {why}")));
    }
    match (now.ready, now.handle) {
        (true, Some(h)) => Ok(h),
        _ => Err(not_bootstrapped(now.percent)),
    }
}

/// The error of a flow that Tor cannot carry yet.
pub fn not_bootstrapped(percent: u8) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("Tor is not bootstrapped yet ({percent}%)"),
    )
}
