//! The connection tracker: every flow the dispatcher routes is registered here from the
//! routing decision until its relay ends, with what the Clash API shows for it (id,
//! metadata, outbound chain, matched rule, live byte counters) and a handle to close it.
//! The Clash API (`GET/DELETE /connections`), a selector's `interrupt_exist_connections`
//! and the shutdown path all act on flows through this table.

use crate::flow::FlowContext;
use crate::relay::Counters;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::Notify;

/// One live flow.
#[derive(Debug)]
pub struct Tracked {
    /// A UUID, as the Clash API names connections.
    pub id: String,
    /// The flow as it was when it was routed (destination, inbound, user, sniffed domain...).
    pub flow: FlowContext,
    /// Outbound tags from the one the flow leaves through to the one the rule chose, e.g.
    /// `["direct", "select"]` for a selector: the order Go's Clash API reports.
    pub chain: Vec<String>,
    /// The rule that routed it (`domain_suffix=[a.test] => route(direct)`), or `final`.
    pub rule: String,
    /// When it was routed.
    pub started: SystemTime,
    /// Bytes moved so far, written by the relay.
    pub counters: Arc<Counters>,
    close_requested: AtomicBool,
    close: Notify,
}

impl Tracked {
    /// Resolves once someone asked to close the flow (Clash API, selector switch).
    pub async fn closed(&self) {
        if self.close_requested.load(Ordering::Acquire) {
            return;
        }
        self.close.notified().await;
    }

    /// Whether a close was asked for.
    pub fn is_closed(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    fn request_close(&self) {
        self.close_requested.store(true, Ordering::Release);
        // `notify_one` keeps a permit when the flow is not waiting yet (still dialing).
        self.close.notify_one();
    }
}

/// The table of live flows, plus byte totals of the flows already closed.
#[derive(Debug, Default)]
pub struct Tracker {
    live: Mutex<HashMap<String, Arc<Tracked>>>,
    closed_up: AtomicU64,
    closed_down: AtomicU64,
}

/// Registration of one flow; dropping it removes the flow from the table.
#[derive(Debug)]
pub struct TrackGuard {
    tracker: Arc<Tracker>,
    entry: Arc<Tracked>,
}

impl TrackGuard {
    /// The tracked flow.
    pub fn entry(&self) -> &Arc<Tracked> {
        &self.entry
    }
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        let c = &self.entry.counters;
        self.tracker
            .closed_up
            .fetch_add(c.up.load(Ordering::Relaxed), Ordering::Relaxed);
        self.tracker
            .closed_down
            .fetch_add(c.down.load(Ordering::Relaxed), Ordering::Relaxed);
        if let Ok(mut live) = self.tracker.live.lock() {
            live.remove(&self.entry.id);
        }
    }
}

impl Tracker {
    /// Registers a routed flow.
    pub fn track(
        self: &Arc<Self>,
        flow: &FlowContext,
        chain: Vec<String>,
        rule: String,
    ) -> TrackGuard {
        let entry = Arc::new(Tracked {
            id: new_id(),
            flow: flow.clone(),
            chain,
            rule,
            started: SystemTime::now(),
            counters: Arc::default(),
            close_requested: AtomicBool::new(false),
            close: Notify::new(),
        });
        if let Ok(mut live) = self.live.lock() {
            live.insert(entry.id.clone(), entry.clone());
        }
        TrackGuard {
            tracker: self.clone(),
            entry,
        }
    }

    /// The live flows, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Tracked>> {
        let mut all: Vec<Arc<Tracked>> = self
            .live
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|t| t.started);
        all
    }

    /// How many flows are live.
    pub fn len(&self) -> usize {
        self.live.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Whether no flow is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks the flow `id` to close; false when there is no such live flow.
    pub fn close(&self, id: &str) -> bool {
        let entry = self.live.lock().ok().and_then(|l| l.get(id).cloned());
        entry.map(|e| e.request_close()).is_some()
    }

    /// Asks every live flow for which `pred` holds to close; returns how many.
    pub fn close_where(&self, pred: impl Fn(&Tracked) -> bool) -> usize {
        let chosen: Vec<Arc<Tracked>> = self
            .live
            .lock()
            .map(|l| l.values().filter(|t| pred(t)).cloned().collect())
            .unwrap_or_default();
        for t in &chosen {
            t.request_close();
        }
        chosen.len()
    }

    /// Bytes (up, down) moved by all flows since start, live ones included.
    pub fn totals(&self) -> (u64, u64) {
        let (mut up, mut down) = (
            self.closed_up.load(Ordering::Relaxed),
            self.closed_down.load(Ordering::Relaxed),
        );
        // Summed under the lock: no copy or sort of the table (the Clash API asks every
        // second, per stream, with thousands of flows live).
        if let Ok(live) = self.live.lock() {
            for t in live.values() {
                up += t.counters.up.load(Ordering::Relaxed);
                down += t.counters.down.load(Ordering::Relaxed);
            }
        }
        (up, down)
    }
}

/// A random (version 4) UUID in its text form.
fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Destination, Network};

    fn flow() -> FlowContext {
        FlowContext::new(
            Arc::from("in"),
            "mixed",
            Network::Tcp,
            "127.0.0.1:5000".parse().unwrap(),
            Destination::from_host("example.com", 443),
        )
    }

    #[test]
    fn ids_are_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(id, new_id());
    }

    #[tokio::test]
    async fn flows_are_listed_until_dropped_and_totals_keep_their_bytes() {
        let t = Arc::new(Tracker::default());
        let g = t.track(&flow(), vec!["direct".into()], "final".into());
        assert_eq!(t.len(), 1);
        g.entry().counters.up.fetch_add(10, Ordering::Relaxed);
        g.entry().counters.down.fetch_add(20, Ordering::Relaxed);
        assert_eq!(t.totals(), (10, 20));
        drop(g);
        assert!(t.is_empty());
        assert_eq!(t.totals(), (10, 20));
    }

    #[tokio::test]
    async fn close_wakes_the_flow_even_before_it_waits() {
        let t = Arc::new(Tracker::default());
        let a = t.track(&flow(), vec!["a".into()], "final".into());
        let b = t.track(&flow(), vec!["b".into(), "sel".into()], "final".into());
        assert!(t.close(&a.entry().id));
        assert!(!t.close("no-such-id"));
        // The permit is kept: the flow sees the close when it starts waiting.
        tokio::time::timeout(std::time::Duration::from_secs(5), a.entry().closed())
            .await
            .unwrap();
        assert!(!b.entry().is_closed());
        assert_eq!(t.close_where(|x| x.chain.iter().any(|c| c == "sel")), 1);
        assert!(b.entry().is_closed());
    }
}
