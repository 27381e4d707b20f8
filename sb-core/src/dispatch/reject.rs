//! Go's reject limiter, consulted by the decision loop when a `reject` rule matches: after
//! [`REJECT_BURST`] rejections of one rule within [`REJECT_WINDOW`], that rule drops flows
//! instead (unless `no_drop`), so a client retrying in a loop stops getting fast answers.

use sb_config::model::route_rule::RejectMethod;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
