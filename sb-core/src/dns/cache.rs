//! The DNS cache: answers kept for their TTL (the smallest of the answer), keyed by the
//! server and the question, at most `cache_capacity` entries (oldest dropped first); and
//! identical questions in flight merged, so a burst of lookups of one name costs one query.
//! Ages come from tokio's clock, so tests on paused time see answers expire.

use super::message::{age, min_ttl};
use hickory_proto::op::{Message, ResponseCode};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What an answer is cached under: server index, name as asked, type, class.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Key {
    /// The transport.
    pub server: usize,
    /// The question's name as asked.
    pub name: String,
    /// The question type.
    pub qtype: u16,
    /// The question class.
    pub qclass: u16,
}

struct Entry {
    answer: Message,
    stored: Instant,
    expires: Instant,
}

/// The answer of a merged query, as the waiters receive it.
pub type Shared = Result<Message, String>;

/// The cache.
pub struct Cache {
    capacity: usize,
    disable_expire: bool,
    entries: Mutex<(HashMap<Key, Entry>, VecDeque<Key>)>,
    inflight: Mutex<HashMap<Key, Vec<oneshot::Sender<Shared>>>>,
}

/// Go's default and smallest capacity.
pub const MIN_CAPACITY: usize = 1024;

/// A negative answer without an SOA is kept this long (avoids hammering a server over a
/// name that does not exist).
const NEGATIVE_TTL: u32 = 10;

/// The longest an answer stays cached, whatever its TTL (unbound's `cache-max-ttl`
/// default): a forged or careless answer cannot pin a name for years. The TTLs the client
/// sees are the answer's own, counted down.
pub const MAX_TTL: u32 = 86_400;

/// What [`Cache::join`] tells the caller to do.
pub enum Join {
    /// Ask the server, then call [`Cache::finish`].
    Lead,
    /// Wait for the query already in flight.
    Wait(oneshot::Receiver<Shared>),
}

impl Cache {
    /// A cache; `capacity` below Go's minimum is raised to it (Go ignores smaller values).
    pub fn new(capacity: u32, disable_expire: bool) -> Cache {
        Cache {
            capacity: (capacity as usize).max(MIN_CAPACITY),
            disable_expire,
            entries: Mutex::new((HashMap::new(), VecDeque::new())),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// Drops every cached answer (the Clash API's flush and mode switch); queries in flight
    /// still finish and are stored.
    pub fn clear(&self) {
        if let Ok(mut e) = self.entries.lock() {
            e.0.clear();
            e.1.clear();
        }
    }

    /// A fresh cached answer (TTLs lowered by the time spent in the cache).
    pub fn get(&self, key: &Key) -> Option<Message> {
        let mut guard = self.entries.lock().ok()?;
        let now = Instant::now();
        let e = guard.0.get(key)?;
        if !self.disable_expire && now >= e.expires {
            guard.0.remove(key);
            return None;
        }
        let mut m = e.answer.clone();
        if !self.disable_expire {
            let elapsed = u32::try_from(now.duration_since(e.stored).as_secs()).unwrap_or(u32::MAX);
            age(&mut m, elapsed);
        }
        Some(m)
    }

    /// Keeps an answer for its TTL. Server failures and empty-TTL answers are not kept.
    pub fn put(&self, key: Key, answer: &Message) {
        let ttl = match (answer.metadata.response_code, min_ttl(answer)) {
            (ResponseCode::NoError | ResponseCode::NXDomain, Some(t)) => t,
            (ResponseCode::NoError | ResponseCode::NXDomain, None) => NEGATIVE_TTL,
            _ => return,
        };
        if ttl == 0 {
            return;
        }
        let ttl = ttl.min(MAX_TTL);
        let Ok(mut guard) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        let (map, order) = &mut *guard;
        if !map.contains_key(&key) {
            order.push_back(key.clone());
        }
        map.insert(
            key,
            Entry {
                answer: answer.clone(),
                stored: now,
                expires: now + Duration::from_secs(u64::from(ttl)),
            },
        );
        // Drop the oldest entries past capacity (the order list may name replaced or
        // expired keys; each pop removes at most one entry, bounded by the list length).
        while map.len() > self.capacity {
            let Some(old) = order.pop_front() else { break };
            map.remove(&old);
        }
        if order.len() > self.capacity * 2 {
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Joins the query for `key`: the first caller leads, later ones wait for its answer.
    pub fn join(&self, key: &Key) -> Join {
        let Ok(mut inflight) = self.inflight.lock() else {
            return Join::Lead;
        };
        match inflight.get_mut(key) {
            Some(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Join::Wait(rx)
            }
            None => {
                inflight.insert(key.clone(), Vec::new());
                Join::Lead
            }
        }
    }

    /// The leader's answer goes to every waiter. Called also when the leader failed, so
    /// waiters are never left hanging (a cancelled leader drops the senders: waiters see
    /// that and ask themselves).
    pub fn finish(&self, key: &Key, result: &Shared) {
        let waiters = self
            .inflight
            .lock()
            .ok()
            .and_then(|mut m| m.remove(key))
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }

    /// Forgets a key's in-flight entry without answering (the leader was cancelled).
    pub fn abandon(&self, key: &Key) {
        if let Ok(mut m) = self.inflight.lock() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::message::{new_query, question, reply_with_ips};
    use hickory_proto::rr::RecordType;

    fn key(n: &str) -> Key {
        Key {
            server: 0,
            name: n.into(),
            qtype: 1,
            qclass: 1,
        }
    }

    #[test]
    fn keeps_for_ttl_and_caps_capacity() {
        let c = Cache::new(0, false);
        let a = answer_a(60);
        c.put(key("a.test"), &a);
        assert_eq!(c.get(&key("a.test")).unwrap().answers.len(), 1);
        assert!(c.get(&key("b.test")).is_none());
        for i in 0..(MIN_CAPACITY + 10) {
            c.put(key(&format!("n{i}")), &a);
        }
        let len = c.entries.lock().unwrap().0.len();
        assert_eq!(len, MIN_CAPACITY);
        assert!(c.get(&key("a.test")).is_none(), "oldest dropped first");
    }

    #[test]
    fn clear_drops_every_answer() {
        let c = Cache::new(0, false);
        c.put(key("a.test"), &answer_a(60));
        c.clear();
        assert!(c.get(&key("a.test")).is_none());
        c.put(key("a.test"), &answer_a(60));
        assert!(c.get(&key("a.test")).is_some(), "still caches afterwards");
    }

    #[test]
    fn merges_in_flight() {
        let c = Cache::new(0, false);
        assert!(matches!(c.join(&key("x")), Join::Lead));
        let Join::Wait(rx) = c.join(&key("x")) else {
            panic!("second caller must wait")
        };
        c.finish(&key("x"), &Err("boom".into()));
        assert_eq!(rx.blocking_recv().unwrap(), Err("boom".to_string()));
        assert!(matches!(c.join(&key("x")), Join::Lead));
    }

    /// An answer for `a.test` A (10.0.0.1) with `ttl`.
    fn answer_a(ttl: u32) -> Message {
        let q = new_query("a.test", RecordType::A).unwrap();
        reply_with_ips(
            &q,
            question(&q).unwrap(),
            &["10.0.0.1".parse().unwrap()],
            ttl,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_answer_expires_after_its_ttl_and_not_before() {
        let c = Cache::new(0, false);
        let a = answer_a(60);
        c.put(key("a.test"), &a);
        tokio::time::advance(Duration::from_secs(59)).await;
        let aged = c.get(&key("a.test")).expect("kept until its TTL is over");
        assert_eq!(
            min_ttl(&aged),
            Some(1),
            "TTLs lowered by the time spent cached"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(c.get(&key("a.test")).is_none(), "gone once the TTL is over");
    }

    #[tokio::test(start_paused = true)]
    async fn with_disable_expire_an_answer_outlives_its_ttl_unchanged() {
        let c = Cache::new(0, true);
        let a = answer_a(60);
        c.put(key("a.test"), &a);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let kept = c.get(&key("a.test")).expect("never expires");
        assert_eq!(min_ttl(&kept), Some(60));
    }

    /// Hardening finding 2: an answer (a forged one among them) cannot pin itself in the
    /// cache for years with a huge TTL: entries live at most `MAX_TTL`.
    #[tokio::test(start_paused = true)]
    async fn a_huge_ttl_is_kept_at_most_a_day() {
        let c = Cache::new(0, false);
        let a = answer_a(i32::MAX as u32);
        c.put(key("a.test"), &a);
        tokio::time::advance(Duration::from_secs(u64::from(MAX_TTL) - 1)).await;
        assert!(c.get(&key("a.test")).is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(c.get(&key("a.test")).is_none(), "gone after a day");
    }
}
