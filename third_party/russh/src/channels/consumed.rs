// sb patch (see SB_PATCH.md): consumption-based flow control for client channels.
//
// Upstream russh returned window to the server as soon as data arrived, then awaited
// room in the channel's bounded queue: one channel whose reader stopped reading blocked
// the whole session. With this patch the session only debits the window when data
// arrives; the channel's reader counts the bytes it hands to the application here, and
// the session returns them to the server (CHANNEL_WINDOW_ADJUST) in batches of at least
// half the window, as OpenSSH does. Nothing on this path blocks or can be lost: the
// counter is an atomic, and the wake-up goes through an unbounded queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes the reader handed to the application that the session has not yet returned to
/// the server's window. Shared by the channel's reader and the session.
#[derive(Debug, Default)]
pub(crate) struct Consumed(AtomicU32);

impl Consumed {
    /// Adds `n` consumed bytes; true when the total reached `threshold` with this call,
    /// i.e. when the caller must wake the session (once per batch).
    pub(crate) fn add(&self, n: u32, threshold: u32) -> bool {
        let old = match self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(n))
            }) {
            Ok(v) | Err(v) => v,
        };
        old < threshold && old.saturating_add(n) >= threshold
    }

    /// Takes the whole count (the session is about to return it to the window).
    pub(crate) fn take(&self) -> u32 {
        self.0.swap(0, Ordering::AcqRel)
    }
}

/// The reader's end: where to count consumed bytes, and how to wake the session.
pub(crate) struct Reporter {
    consumed: Arc<Consumed>,
    threshold: u32,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl Reporter {
    /// `wake` must not block; it is called when at least `threshold` bytes are waiting.
    pub(crate) fn new(
        consumed: Arc<Consumed>,
        threshold: u32,
        wake: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            consumed,
            threshold: threshold.max(1),
            wake,
        }
    }

    /// `n` bytes left the channel's queue for the application (or were discarded by it).
    pub(crate) fn report(&self, n: usize) {
        if n == 0 {
            return;
        }
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if self.consumed.add(n, self.threshold) {
            (self.wake)();
        }
    }
}

/// Half the window, the batch size of window adjustments (never zero).
pub(crate) fn batch(window_size: u32) -> u32 {
    (window_size / 2).max(1)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn wakes_once_per_batch_and_take_starts_a_new_one() {
        let consumed = Arc::new(Consumed::default());
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let r = Reporter::new(
            consumed.clone(),
            100,
            Box::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        );
        r.report(0);
        r.report(60);
        assert_eq!(wakes.load(Ordering::SeqCst), 0);
        r.report(40);
        r.report(500);
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        assert_eq!(consumed.take(), 600);
        r.report(99);
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        r.report(1);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_count_saturates() {
        let consumed = Consumed::default();
        assert!(consumed.add(u32::MAX, 10));
        assert!(!consumed.add(u32::MAX, 10));
        assert_eq!(consumed.take(), u32::MAX);
        assert_eq!(batch(0), 1);
        assert_eq!(batch(2097152), 1048576);
    }
}
