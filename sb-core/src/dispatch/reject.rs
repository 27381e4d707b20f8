//! Go's reject limiter, consulted by the decision loop when a `reject` rule matches: after
//! [`REJECT_BURST`] rejections of one rule within [`REJECT_WINDOW`], that rule drops flows
//! instead (unless `no_drop`), so a client retrying in a loop stops getting fast answers.
//! Times come from tokio's clock, so tests move through the window on paused time.

use sb_config::model::route_rule::RejectMethod;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Rejections of one rule answered within [`REJECT_WINDOW`] before it drops.
pub(super) const REJECT_BURST: usize = 50;
/// The window Go counts rejections in.
pub(super) const REJECT_WINDOW: Duration = Duration::from_secs(30);

/// Recent rejections per rule index.
#[derive(Default)]
pub(super) struct RejectLimiter {
    recent: Mutex<HashMap<usize, VecDeque<Instant>>>,
}

impl RejectLimiter {
    /// Whether this reject of rule `index` should be a drop, counting it.
    pub(super) fn is_drop(&self, index: usize, method: RejectMethod, no_drop: bool) -> bool {
        if method == RejectMethod::Drop {
            return true;
        }
        if no_drop {
            return false;
        }
        // A poisoned lock only means another flow panicked mid-count: answer, do not drop.
        let Ok(mut map) = self.recent.lock() else {
            return false;
        };
        let now = Instant::now();
        let q = map.entry(index).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > REJECT_WINDOW)
        {
            q.pop_front();
        }
        q.push_back(now);
        q.len() > REJECT_BURST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(l: &RejectLimiter, index: usize) -> bool {
        l.is_drop(index, RejectMethod::Default, false)
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_rejects_in_the_window_then_drops_until_the_window_passes() {
        let l = RejectLimiter::default();
        assert!(
            (0..REJECT_BURST).all(|_| !reject(&l, 0)),
            "the first 50 are answered"
        );
        assert!(reject(&l, 0), "the 51st within 30 s is dropped");
        assert!(!reject(&l, 1), "each rule counts its own rejections");
        tokio::time::advance(REJECT_WINDOW - Duration::from_secs(1)).await;
        assert!(reject(&l, 0), "still inside the window");
        // The burst is older than the window now; only the rejections since count.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!reject(&l, 0), "answered again once the window passed");
    }

    #[tokio::test(start_paused = true)]
    async fn rejects_spread_wider_than_the_window_never_drop() {
        let l = RejectLimiter::default();
        for _ in 0..200 {
            assert!(!reject(&l, 0));
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    #[test]
    fn drop_method_always_drops_and_no_drop_never_does() {
        let l = RejectLimiter::default();
        assert!(l.is_drop(0, RejectMethod::Drop, false));
        assert!((0..100).all(|_| !l.is_drop(1, RejectMethod::Default, true)));
    }
}
