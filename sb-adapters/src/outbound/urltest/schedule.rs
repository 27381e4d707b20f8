//! When a `urltest` group tests its members (Go's `PostStart`, `Touch` and `loopCheck`):
//!
//! - when the instance has started, one round in the background, so the start is not held
//!   up by slow or dead members;
//! - from the first flow through the group on, a round every `interval`;
//! - a tick that finds the group unused for longer than `idle_timeout` stops the rounds; the
//!   next flow starts them again, with a round at once if the last use is older than
//!   `interval` (the results are stale by then).
//!
//! The tasks hold only a weak reference to the group and are aborted when it closes. Times
//! are read from tokio's clock, so tests can run the schedule on paused time.

use super::UrlTest;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio::time::MissedTickBehavior;

/// The schedule's part of the group's state.
#[derive(Default)]
pub(super) struct Schedule {
    /// The instance has started (flows before that do not start the rounds).
    started: bool,
    /// The instance has closed: nothing starts again.
    closed: bool,
    /// When the group was last used (or the rounds were started).
    last_active: Option<Instant>,
    /// The first round, spawned at start.
    first: Option<JoinHandle<()>>,
    /// The periodic rounds, while the group is in use.
    periodic: Option<JoinHandle<()>>,
}

impl UrlTest {
    /// Go's `PostStart`: the first round, in the background.
    pub(super) fn start_schedule(&self) {
        let mut st = self.lock();
        if st.schedule.started || st.schedule.closed {
            return;
        }
        st.schedule.started = true;
        st.schedule.last_active = Some(Instant::now());
        let me = self.me.clone();
        st.schedule.first = Some(tokio::spawn(async move {
            if let Some(group) = me.upgrade() {
                group.check().await;
            }
        }));
    }

    /// Stops every round, running or planned.
    pub(super) fn close_schedule(&self) {
        let mut st = self.lock();
        st.schedule.closed = true;
        for task in [st.schedule.first.take(), st.schedule.periodic.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }

    /// A flow uses the group (Go's `Touch`): keep the rounds going, or start them again.
    pub(super) fn touch(&self) {
        let mut st = self.lock();
        let s = &mut st.schedule;
        if !s.started || s.closed {
            return;
        }
        if s.periodic.is_some() {
            s.last_active = Some(Instant::now());
            return;
        }
        let me = self.me.clone();
        s.periodic = Some(tokio::spawn(periodic(me, self.interval, self.idle_timeout)));
    }

    /// How long since the group was last used.
    fn idle_for(&self) -> std::time::Duration {
        self.lock()
            .schedule
            .last_active
            .map_or(std::time::Duration::MAX, |t| t.elapsed())
    }

    /// At a tick: if the group has been unused for `idle_timeout`, the periodic rounds end
    /// (decided under the lock, so a flow arriving now sees them ended and starts new ones).
    fn stop_if_idle(&self, idle_timeout: std::time::Duration) -> bool {
        let mut st = self.lock();
        let idle = st
            .schedule
            .last_active
            .is_none_or(|t| t.elapsed() > idle_timeout);
        if idle {
            st.schedule.periodic = None;
        }
        idle
    }

    fn mark_active(&self) {
        self.lock().schedule.last_active = Some(Instant::now());
    }
}

/// The periodic rounds; returns once the group has been idle for `idle_timeout` at a tick,
/// or the group is gone.
async fn periodic(
    me: std::sync::Weak<UrlTest>,
    interval: std::time::Duration,
    idle_timeout: std::time::Duration,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if let Some(group) = me.upgrade() {
        if group.idle_for() > interval {
            group.mark_active();
            group.check().await;
        }
    }
    loop {
        ticker.tick().await;
        let Some(group): Option<Arc<UrlTest>> = me.upgrade() else {
            return;
        };
        if group.stop_if_idle(idle_timeout) {
            tracing::debug!(target: "outbound", tag = %group.log_tag(), "idle: URL tests paused until the next flow");
            return;
        }
        group.check().await;
    }
}
