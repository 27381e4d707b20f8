//! The `urltest` outbound: a group that carries each flow through the member that answered
//! its URL test fastest (Go's `URLTest` group).
//!
//! Every member is tested with an HTTP `HEAD` of `url` sent through it ([`probe`]); the
//! results pick the member ([`select`]): the fastest, unless the current one is within
//! `tolerance` ms of it; a failed member is never picked; when all fail at the first round,
//! the first member is used. Until the first round has finished, flows use the best member
//! tested so far, else the first one (as Go). The first round runs in the background
//! when the instance has started; later rounds run every `interval`, but only while the group
//! is used: after `idle_timeout` without a flow the rounds stop, and the next flow starts
//! them again (`schedule.rs`). With `interrupt_exist_connections`, a change of member closes
//! the flows running through the group (found in the connection tracker, as the selector
//! does).
//!
//! The last results and [`UrlTest::test_now`] are there for the Clash API (`/proxies`,
//! `/group/{name}/delay`).

pub mod probe;
mod schedule;
pub mod select;
#[cfg(test)]
mod tests;

use sb_config::model::outbound::UrlTestOutbound;
use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, Outbound};
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::tracker::Tracker;
use select::Candidate;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, SystemTime};

/// Go's default test URL.
pub const DEFAULT_URL: &str = "https://www.gstatic.com/generate_204";
/// Go's default `interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3 * 60);
/// Go's default `tolerance`, in milliseconds.
pub const DEFAULT_TOLERANCE: u16 = 50;
/// Go's default `idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Go tests at most this many members at once.
const CONCURRENCY: usize = 10;

/// How a member's last test went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It answered; the delay in milliseconds.
    Delay(u16),
    /// It did not (or a flow through it failed to connect since): why.
    Failed(String),
}

/// A member's last test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    /// When it finished.
    pub time: SystemTime,
    /// How it went.
    pub outcome: Outcome,
    /// When it finished, on the runtime's clock (for the age of a result).
    at: tokio::time::Instant,
}

/// A `urltest` outbound.
pub struct UrlTest {
    tag: String,
    members: Vec<String>,
    url: String,
    interval: Duration,
    tolerance: u16,
    idle_timeout: Duration,
    interrupt: bool,
    /// The members' outbounds in config order, once every outbound is built.
    outbounds: OnceLock<Vec<(String, Arc<dyn Outbound>)>>,
    tracker: OnceLock<Arc<Tracker>>,
    state: Mutex<State>,
    /// Held for a whole test round: background rounds skip while one runs, `test_now` waits.
    round: tokio::sync::Mutex<()>,
    /// Itself, for the tasks it spawns (they must not keep it alive).
    me: Weak<UrlTest>,
}

/// What changes while the group runs.
#[derive(Default)]
struct State {
    selected_tcp: Option<String>,
    selected_udp: Option<String>,
    results: HashMap<String, TestResult>,
    schedule: schedule::Schedule,
}

impl UrlTest {
    /// Builds it from its options; zero values take Go's defaults.
    pub fn new(tag: &str, options: &UrlTestOutbound) -> Arc<UrlTest> {
        let or = |d: Duration, default: Duration| if d.is_zero() { default } else { d };
        Arc::new_cyclic(|me| UrlTest {
            tag: tag.to_string(),
            members: options.outbounds.clone(),
            url: if options.url.is_empty() {
                DEFAULT_URL.to_string()
            } else {
                options.url.clone()
            },
            interval: or(options.interval.to_std(), DEFAULT_INTERVAL),
            tolerance: if options.tolerance == 0 {
                DEFAULT_TOLERANCE
            } else {
                options.tolerance
            },
            idle_timeout: or(options.idle_timeout.to_std(), DEFAULT_IDLE_TIMEOUT),
            interrupt: options.interrupt_exist_connections,
            outbounds: OnceLock::new(),
            tracker: OnceLock::new(),
            state: Mutex::default(),
            round: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    /// Resolves the member tags once every outbound is built, and takes the tracker of the
    /// flows it may have to interrupt.
    pub fn bind(&self, all: &HashMap<String, Arc<dyn Outbound>>, tracker: Arc<Tracker>) {
        let _ = self.tracker.set(tracker);
        let _ = self
            .outbounds
            .set(super::resolve_members(&self.members, all));
    }

    /// The members, in config order.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The URL the members are tested with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The member TCP flows use now, as Go's Clash API shows it in `now`: the one the tests
    /// chose; before the first round has finished, the best one tested so far, else the
    /// first member (`None` only when no member carries TCP or UDP).
    pub fn now(&self) -> Option<String> {
        let st = self.lock();
        st.selected_tcp
            .clone()
            .or_else(|| st.selected_udp.clone())
            .or_else(|| self.choose(&st, Network::Tcp).map(|(t, _)| t.to_string()))
    }

    /// The last test of every member tested so far.
    pub fn results(&self) -> HashMap<String, TestResult> {
        self.lock().results.clone()
    }

    /// Tests every member now (waiting for a round already running to finish first),
    /// updates the choice, and returns this round's outcomes. Go's `/group/{name}/delay`
    /// skips members tested within `interval`; this tests them all, which is what a user
    /// asking for a test expects.
    pub async fn test_now(&self) -> HashMap<String, Outcome> {
        let _round = self.round.lock().await;
        self.run_round(true).await
    }

    /// A background round (Go's `CheckOutbounds(false)`): skipped while another round runs,
    /// and members whose last success is younger than `interval` are not tested again.
    async fn check(&self) {
        if let Ok(_round) = self.round.try_lock() {
            self.run_round(false).await;
        }
    }

    /// Tests the members (all, or the stale ones) concurrently, records the outcomes and
    /// updates the choice. The caller holds `round`.
    async fn run_round(&self, force: bool) -> HashMap<String, Outcome> {
        let due: Vec<(String, Arc<dyn Outbound>)> = {
            let st = self.lock();
            self.bound()
                .iter()
                .filter(|(tag, _)| force || !fresh(st.results.get(tag), self.interval))
                .cloned()
                .collect()
        };
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut tests = tokio::task::JoinSet::new();
        for (tag, member) in due {
            let (url, limit, group) = (self.url.clone(), limit.clone(), self.tag.clone());
            tests.spawn(async move {
                let _permit = limit.acquire_owned().await;
                (tag, probe::probe(&group, member, &url).await)
            });
        }
        let mut outcomes = HashMap::new();
        while let Some(done) = tests.join_next().await {
            let Ok((tag, result)) = done else { continue };
            let outcome = match result {
                Ok(ms) => {
                    tracing::debug!(target: "outbound", tag = %self.log_tag(), "outbound {tag} available: {ms}ms");
                    Outcome::Delay(ms)
                }
                Err(e) => {
                    tracing::debug!(target: "outbound", tag = %self.log_tag(), "outbound {tag} unavailable: {e}");
                    Outcome::Failed(e.to_string())
                }
            };
            self.record(&tag, outcome.clone());
            outcomes.insert(tag, outcome);
        }
        self.update();
        outcomes
    }

    fn record(&self, tag: &str, outcome: Outcome) {
        let result = TestResult {
            time: SystemTime::now(),
            outcome,
            at: tokio::time::Instant::now(),
        };
        self.lock().results.insert(tag.to_string(), result);
    }

    /// Re-decides the TCP and UDP members from the results; interrupts flows if either
    /// changed from an earlier decision (not on the first one).
    fn update(&self) {
        let switched = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let tcp = self.choose(st, Network::Tcp);
            let udp = self.choose(st, Network::Udp);
            let mut switched = false;
            for (slot, choice) in [(&mut st.selected_tcp, tcp), (&mut st.selected_udp, udp)] {
                if let Some(next) = select::update(slot.as_deref(), choice) {
                    switched |= slot.is_some();
                    *slot = Some(next.to_string());
                }
            }
            switched.then(|| st.selected_tcp.clone())
        };
        let Some(now) = switched else { return };
        tracing::debug!(target: "outbound", tag = %self.log_tag(), "switched to {}", now.unwrap_or_default());
        if self.interrupt {
            if let Some(t) = self.tracker.get() {
                let n = t.close_where(|f| f.chain.contains(&self.tag));
                tracing::debug!(target: "outbound", tag = %self.log_tag(), "interrupted {n} connections");
            }
        }
    }

    /// The member the results pick for `network`, starting from the current one.
    fn choose<'a>(&'a self, st: &State, network: Network) -> Option<(&'a str, bool)> {
        let candidates: Vec<Candidate<'a>> = self
            .bound()
            .iter()
            .map(|(tag, o)| Candidate {
                tag,
                carries: o.networks().contains(&network),
                delay: match st.results.get(tag).map(|r| &r.outcome) {
                    Some(Outcome::Delay(ms)) => Some(*ms),
                    _ => None,
                },
            })
            .collect();
        let current = match network {
            // A ping follows the member TCP flows use.
            Network::Tcp | Network::Icmp => st.selected_tcp.as_deref(),
            Network::Udp => st.selected_udp.as_deref(),
        };
        select::select(&candidates, current, self.tolerance)
    }

    /// The member a new flow of `network` uses: the chosen one, else what the results (or
    /// the first-member fallback) say now.
    fn current(&self, network: Network) -> io::Result<Arc<dyn Outbound>> {
        let tag = {
            let st = self.lock();
            let chosen = match network {
                Network::Tcp | Network::Icmp => st.selected_tcp.clone(),
                Network::Udp => st.selected_udp.clone(),
            };
            chosen.or_else(|| self.choose(&st, network).map(|(t, _)| t.to_string()))
        };
        tag.and_then(|t| self.bound().iter().find(|(m, _)| *m == t))
            .map(|(_, o)| o.clone())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("urltest {}: missing supported outbound", self.tag),
                )
            })
    }

    /// A flow through `member` failed to connect: its result no longer counts (Go deletes
    /// it), so the next round's decision passes it over unless it recovers.
    fn connect_failed(&self, member: &str, e: &io::Error) {
        tracing::debug!(target: "outbound", tag = %self.log_tag(), "outbound {member}: {e}");
        self.record(member, Outcome::Failed(sb_core::error_text(e)));
    }

    fn bound(&self) -> &[(String, Arc<dyn Outbound>)] {
        self.outbounds.get().map_or(&[], Vec::as_slice)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log_tag(&self) -> String {
        format!("outbound/urltest[{}]", self.tag)
    }
}

/// Whether a result is a success younger than `interval` (Go does not test those again).
fn fresh(result: Option<&TestResult>, interval: Duration) -> bool {
    result.is_some_and(|r| matches!(r.outcome, Outcome::Delay(_)) && r.at.elapsed() < interval)
}

impl Outbound for UrlTest {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "urltest"
    }
    fn networks(&self) -> &'static [Network] {
        &[Network::Tcp, Network::Udp]
    }
    fn group_now(&self) -> Option<String> {
        self.now()
    }
    fn start(&self) {
        self.start_schedule();
    }
    fn close(&self) {
        self.close_schedule();
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            self.touch();
            let member = self.current(Network::Tcp)?;
            let stream = member.connect_tcp(flow, dest).await;
            stream.inspect_err(|e| self.connect_failed(member.tag(), e))
        })
    }
    fn connect_udp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        Box::pin(async move {
            self.touch();
            let member = self.current(Network::Udp)?;
            let conn = member.connect_udp(flow, dest).await;
            conn.inspect_err(|e| self.connect_failed(member.tag(), e))
        })
    }
    fn ping<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: std::net::IpAddr,
        timeout: std::time::Duration,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.touch();
            self.current(Network::Icmp)?.ping(flow, dest, timeout).await
        })
    }
}
