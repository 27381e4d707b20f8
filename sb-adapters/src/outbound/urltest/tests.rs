//! The group on tokio's paused clock, with in-process members that answer the HTTP test
//! over in-memory streams after a delay the test sets (or refuse): the choice, the fallback
//! before and without results, the schedule's pauses when the group is idle, and UDP.

use super::*;
use sb_config::types::GoDuration;
use sb_core::stream::Forward;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const PROBE_HOST: &str = "probe.test";

/// A member: answers after `delay` (refuses when `None`), counts tests and flows apart.
struct Fake {
    tag: String,
    networks: &'static [Network],
    delay: Mutex<Option<Duration>>,
    probes: AtomicUsize,
    flows: AtomicUsize,
}

impl Fake {
    fn new(tag: &str, delay_ms: Option<u64>) -> Arc<Fake> {
        Arc::new(Fake {
            tag: tag.into(),
            networks: &[Network::Tcp],
            delay: Mutex::new(delay_ms.map(Duration::from_millis)),
            probes: AtomicUsize::new(0),
            flows: AtomicUsize::new(0),
        })
    }
    fn set(&self, delay_ms: Option<u64>) {
        *self.delay.lock().unwrap() = delay_ms.map(Duration::from_millis);
    }
    fn probes(&self) -> usize {
        self.probes.load(Ordering::SeqCst)
    }
}

impl Outbound for Fake {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn networks(&self) -> &'static [Network] {
        self.networks
    }
    fn connect_tcp<'a>(
        &'a self,
        _flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        let counter = if dest.domain() == Some(PROBE_HOST) {
            &self.probes
        } else {
            &self.flows
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        Box::pin(async move {
            let delay = delay.ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            tokio::time::sleep(delay).await;
            let (ours, theirs) = tokio::io::duplex(4096);
            tokio::spawn(answer_204(theirs));
            Ok(Forward::boxed(ours))
        })
    }
    fn connect_udp<'a>(
        &'a self,
        _flow: &'a FlowContext,
        _dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        let msg = format!("udp reached {}", self.tag);
        Box::pin(async move { Err(io::Error::other(msg)) })
    }
}

/// Reads one request head and answers `204 No Content`.
async fn answer_204(s: tokio::io::DuplexStream) {
    let mut s = BufReader::new(s);
    let mut line = String::new();
    while s.read_line(&mut line).await.unwrap_or(0) > 0 && line != "\r\n" {
        line.clear();
    }
    let _ = s
        .get_mut()
        .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        .await;
}

const INTERVAL: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(600);

fn group(members: &[&Arc<Fake>]) -> Arc<UrlTest> {
    let options = UrlTestOutbound {
        outbounds: members.iter().map(|m| m.tag.clone()).collect(),
        url: format!("http://{PROBE_HOST}/generate_204"),
        interval: GoDuration(INTERVAL.as_nanos() as i64),
        idle_timeout: GoDuration(IDLE.as_nanos() as i64),
        ..Default::default()
    };
    let g = UrlTest::new("g", &options);
    let all = members
        .iter()
        .map(|m| (m.tag.clone(), Arc::clone(*m) as Arc<dyn Outbound>))
        .collect();
    g.bind(&all, Arc::default());
    g
}

fn flow() -> (FlowContext, Destination) {
    let dest = Destination::from_host("flow.test", 80);
    let flow = FlowContext::new(
        Arc::from("in"),
        "test",
        Network::Tcp,
        std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        dest.clone(),
    );
    (flow, dest)
}

/// Lets virtual time pass (bounded) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn delay_of(g: &UrlTest, tag: &str) -> Option<u16> {
    match g.results().get(tag).map(|r| r.outcome.clone()) {
        Some(Outcome::Delay(ms)) => Some(ms),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn flows_use_the_first_member_until_results_come_and_the_round_picks_the_fastest() {
    let (slow, fast, dead) = (
        Fake::new("slow", Some(300)),
        Fake::new("fast", Some(20)),
        Fake::new("dead", None),
    );
    let g = group(&[&slow, &fast, &dead]);
    assert_eq!(g.now().as_deref(), Some("slow"));
    assert_eq!(g.group_now().as_deref(), Some("slow"));
    let (f, d) = flow();
    g.connect_tcp(&f, &d).await.unwrap();
    assert_eq!(slow.flows.load(Ordering::SeqCst), 1);

    g.start();
    // While the slow member is still being tested, flows use the best one so far.
    until("the fast member's result", || {
        delay_of(&g, "fast").is_some()
    })
    .await;
    assert_eq!(g.now().as_deref(), Some("fast"));
    until("the first round", || g.results().len() == 3).await;
    assert_eq!(g.now().as_deref(), Some("fast"));
    assert_eq!(g.group_now().as_deref(), Some("fast"));
    let (s, q) = (delay_of(&g, "slow").unwrap(), delay_of(&g, "fast").unwrap());
    assert!((300..310).contains(&s), "slow measured {s} ms");
    assert!((20..30).contains(&q), "fast measured {q} ms");
    assert!(matches!(
        g.results()["dead"].outcome,
        Outcome::Failed(ref e) if e.contains("refused")
    ));
    g.connect_tcp(&f, &d).await.unwrap();
    assert_eq!(fast.flows.load(Ordering::SeqCst), 1);
    g.close();
}

#[tokio::test(start_paused = true)]
async fn rounds_run_only_while_the_group_is_used() {
    let m = Fake::new("m", Some(10));
    let g = group(&[&m]);
    g.start();
    until("the first round", || m.probes() == 1).await;
    // Unused: no more rounds, however long.
    tokio::time::sleep(INTERVAL * 30).await;
    assert_eq!(m.probes(), 1);

    // A flow after a long pause: a round at once (the results are stale), then periodic.
    let (f, d) = flow();
    g.connect_tcp(&f, &d).await.unwrap();
    until("a round on use", || m.probes() == 2).await;
    for _ in 0..12 {
        tokio::time::sleep(INTERVAL / 2).await;
        g.connect_tcp(&f, &d).await.unwrap();
    }
    let used = m.probes();
    // Go skips a member whose result is younger than `interval`, so a member is tested
    // every other tick: at least 2 more rounds in 6 intervals.
    assert!(used >= 4, "{used} tests while in use");

    // Idle past idle_timeout: the ticks stop.
    tokio::time::sleep(IDLE + INTERVAL * 2).await;
    let stopped = m.probes();
    tokio::time::sleep(INTERVAL * 20).await;
    assert_eq!(m.probes(), stopped, "tests went on while idle");

    g.connect_tcp(&f, &d).await.unwrap();
    until("a round on use after idling", || m.probes() == stopped + 1).await;
    g.close();
    tokio::time::sleep(INTERVAL * 20).await;
    assert_eq!(m.probes(), stopped + 1, "tests went on after close");
}

#[tokio::test(start_paused = true)]
async fn when_all_fail_the_first_member_is_used_and_kept() {
    let (a, b) = (Fake::new("a", None), Fake::new("b", None));
    let g = group(&[&a, &b]);
    g.start();
    until("the first round", || g.results().len() == 2).await;
    assert_eq!(g.now().as_deref(), Some("a"));

    b.set(Some(5));
    let round = g.test_now().await;
    assert_eq!(round["b"], Outcome::Delay(5));
    assert_eq!(g.now().as_deref(), Some("b"));

    // All failing again: the fallback does not replace a chosen member.
    b.set(None);
    g.test_now().await;
    assert_eq!(g.now().as_deref(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_flow_discards_the_members_result() {
    let (a, b) = (Fake::new("a", Some(5)), Fake::new("b", Some(200)));
    let g = group(&[&a, &b]);
    let round = g.test_now().await;
    assert_eq!(round.len(), 2);
    assert_eq!(g.now().as_deref(), Some("a"));
    a.set(None);
    let (f, d) = flow();
    assert!(g.connect_tcp(&f, &d).await.is_err());
    assert!(matches!(g.results()["a"].outcome, Outcome::Failed(_)));
    g.test_now().await;
    assert_eq!(g.now().as_deref(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn udp_flows_use_the_fastest_member_that_carries_udp() {
    let tcp_only = Fake::new("tcp", Some(5));
    let both = Arc::new(Fake {
        tag: "both".into(),
        networks: &[Network::Tcp, Network::Udp],
        delay: Mutex::new(Some(Duration::from_millis(100))),
        probes: AtomicUsize::new(0),
        flows: AtomicUsize::new(0),
    });
    let g = group(&[&tcp_only, &both]);
    g.test_now().await;
    assert_eq!(g.now().as_deref(), Some("tcp"));
    let (f, d) = flow();
    let e = g.connect_udp(&f, &d).await.err().unwrap();
    assert_eq!(e.to_string(), "udp reached both");
}

#[tokio::test(start_paused = true)]
async fn the_first_choice_weighs_all_results_in_config_order() {
    // Go 1.14.4 too: during the round flows use the fast member (the only result so far);
    // the round's decision then keeps the earlier member, within the tolerance.
    let (slow, fast) = (Fake::new("slow", Some(300)), Fake::new("fast", Some(20)));
    let options = UrlTestOutbound {
        outbounds: vec!["slow".into(), "fast".into()],
        url: format!("http://{PROBE_HOST}/"),
        tolerance: 1000,
        ..Default::default()
    };
    let g = UrlTest::new("g", &options);
    let all = [&slow, &fast]
        .iter()
        .map(|m| (m.tag.clone(), Arc::clone(*m) as Arc<dyn Outbound>))
        .collect();
    g.bind(&all, Arc::default());
    g.start();
    until("the fast member's result", || {
        delay_of(&g, "fast").is_some()
    })
    .await;
    assert_eq!(g.now().as_deref(), Some("fast"));
    until("the first round", || g.results().len() == 2).await;
    assert_eq!(g.now().as_deref(), Some("slow"));
}
