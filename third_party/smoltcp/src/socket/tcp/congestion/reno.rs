use crate::{socket::tcp::RttEstimator, time::Instant};

use super::Controller;

// sb patch: upstream's Reno halved the window on a retransmission timeout, grew it by a
// whole acknowledgement per ACK even in congestion avoidance, and only noted duplicate
// ACKs. This one follows RFC 5681: slow start (at most 2 SMSS per ACK, RFC 3465) up to
// `ssthresh`, then one SMSS per window acknowledged; three duplicate ACKs halve the window
// (fast retransmit); a timeout sets `ssthresh` to half the window and restarts from one
// SMSS. The initial window is RFC 6928's. Together with the socket now keeping the data in
// flight within `window()` (see `Socket::cwnd_room`), a sender facing a burst loss slows
// down instead of resending its whole window into the same full queue.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reno {
    cwnd: usize,
    ssthresh: usize,
    mss: usize,
    rwnd: usize,
    /// Duplicate ACKs in a row; the third starts a fast retransmit.
    dup_acks: u8,
    /// Bytes acknowledged in congestion avoidance since the window last grew.
    acked: usize,
    /// Whether anything was acknowledged yet (the initial window follows the MSS until then).
    started: bool,
}

/// RFC 6928: min(10 * MSS, max(2 * MSS, 14600)).
fn initial_window(mss: usize) -> usize {
    (10 * mss).min((2 * mss).max(14_600))
}

impl Reno {
    pub fn new() -> Self {
        let mss = 536;
        Reno {
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            mss,
            rwnd: 64 * 1024,
            dup_acks: 0,
            acked: 0,
            started: false,
        }
    }

    /// Half the window, never under two segments (RFC 5681, equation 4).
    fn half(&self) -> usize {
        (self.cwnd / 2).max(2 * self.mss)
    }
}

impl Controller for Reno {
    fn window(&self) -> usize {
        self.cwnd
    }

    fn on_ack(&mut self, _now: Instant, len: usize, _rtt: &RttEstimator) {
        if len == 0 {
            return;
        }
        self.started = true;
        self.dup_acks = 0;
        if self.cwnd < self.ssthresh {
            // Slow start, with appropriate byte counting (L = 2 SMSS).
            self.cwnd = self.cwnd.saturating_add(len.min(2 * self.mss));
        } else {
            // Congestion avoidance: one SMSS per window acknowledged.
            self.acked = self.acked.saturating_add(len);
            if self.acked >= self.cwnd {
                self.acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
        // Growing past what the peer lets us send would only make a later burst larger.
        self.cwnd = self.cwnd.min(self.rwnd.max(initial_window(self.mss)));
    }

    fn on_duplicate_ack(&mut self, _now: Instant) {
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.dup_acks == 3 {
            // The socket retransmits now (its fast retransmit); `on_retransmit` follows.
            self.ssthresh = self.half();
        }
    }

    fn on_retransmit(&mut self, _now: Instant) {
        if self.dup_acks >= 3 {
            // Fast retransmit: continue from half the window.
            self.cwnd = self.ssthresh;
        } else {
            // Retransmission timeout: whatever was in flight is presumed lost.
            self.ssthresh = self.half();
            self.cwnd = self.mss;
        }
        self.acked = 0;
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
        if !self.started {
            self.cwnd = initial_window(self.mss);
        }
    }

    fn set_remote_window(&mut self, remote_window: usize) {
        if self.rwnd < remote_window {
            self.rwnd = remote_window;
        }
    }
}

#[cfg(test)]
mod test {
    use crate::time::Instant;

    use super::*;

    #[test]
    fn test_reno() {
        let remote_window = 64 * 1024;
        let now = Instant::from_millis(0);

        for i in 0..10 {
            for j in 0..9 {
                let mut reno = Reno::new();
                reno.set_mss(1480);

                // Set remote window.
                reno.set_remote_window(remote_window);

                reno.on_ack(now, 4096, &RttEstimator::default());

                let mut n = i;
                for _ in 0..j {
                    n *= i;
                }

                if i & 1 == 0 {
                    reno.on_retransmit(now);
                } else {
                    reno.on_duplicate_ack(now);
                }

                let elapsed = Instant::from_millis(1000);
                reno.on_ack(elapsed, n, &RttEstimator::default());

                let cwnd = reno.window();
                println!("Reno: elapsed = {}, cwnd = {}", elapsed, cwnd);

                assert!(cwnd >= reno.mss);
                assert!(reno.window() <= remote_window);
            }
        }
    }

    #[test]
    fn reno_min_cwnd() {
        let remote_window = 64 * 1024;
        let now = Instant::from_millis(0);

        let mut reno = Reno::new();
        reno.set_remote_window(remote_window);

        for _ in 0..100 {
            reno.on_retransmit(now);
            assert!(reno.window() >= reno.mss);
        }
    }

    #[test]
    fn reno_set_rwnd() {
        let mut reno = Reno::new();
        reno.set_remote_window(64 * 1024 * 1024);

        println!("{reno:?}");
    }

    // sb patch: the behaviour the patch above is for.

    fn acked(reno: &mut Reno, len: usize) {
        reno.on_ack(Instant::from_millis(0), len, &RttEstimator::default());
    }

    #[test]
    fn sb_initial_window_follows_the_mss_until_data_is_acked() {
        let mut reno = Reno::new();
        reno.set_mss(1460);
        assert_eq!(reno.window(), 14_600);
        reno.set_remote_window(1 << 20);
        acked(&mut reno, 1460);
        reno.set_mss(536);
        assert_eq!(
            reno.window(),
            14_600 + 1460,
            "the window no longer restarts"
        );
    }

    #[test]
    fn sb_a_timeout_restarts_from_one_segment_and_slow_starts_to_half() {
        let mut reno = Reno::new();
        reno.set_mss(1000);
        reno.set_remote_window(1 << 20);
        for _ in 0..100 {
            acked(&mut reno, 2000);
        }
        let before = reno.window();
        reno.on_retransmit(Instant::from_millis(0));
        assert_eq!(reno.window(), 1000);
        // Slow start: at most two segments per ACK, however much it acknowledges.
        acked(&mut reno, 50_000);
        assert_eq!(reno.window(), 3000);
        while reno.window() < before / 2 {
            acked(&mut reno, 2000);
        }
        assert_eq!(reno.ssthresh, before / 2);
        // Congestion avoidance: one segment per window acknowledged.
        let w = reno.window();
        for _ in 0..(w / 1000) {
            acked(&mut reno, 1000);
        }
        assert_eq!(reno.window(), w + 1000);
    }

    #[test]
    fn sb_three_duplicate_acks_halve_the_window_once() {
        let mut reno = Reno::new();
        reno.set_mss(1000);
        reno.set_remote_window(1 << 20);
        for _ in 0..20 {
            acked(&mut reno, 2000);
        }
        let before = reno.window();
        let now = Instant::from_millis(0);
        reno.on_duplicate_ack(now);
        reno.on_duplicate_ack(now);
        assert_eq!(
            reno.window(),
            before,
            "two duplicates are reordering, not loss"
        );
        reno.on_duplicate_ack(now);
        reno.on_retransmit(now);
        assert_eq!(reno.window(), before / 2);
        for _ in 0..10 {
            reno.on_duplicate_ack(now);
        }
        assert_eq!(reno.window(), before / 2);
    }

    #[test]
    fn sb_the_window_stays_within_what_the_peer_advertised() {
        let mut reno = Reno::new();
        reno.set_mss(1000);
        reno.set_remote_window(200_000);
        for _ in 0..1000 {
            acked(&mut reno, 2000);
        }
        assert_eq!(reno.window(), 200_000);
    }
}
