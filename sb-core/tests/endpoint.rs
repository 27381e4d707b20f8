//! The `Endpoint` seam with an in-process endpoint: the lifecycle brings it up before the
//! inbounds, runs its post-start work after them and closes it; the flows it hands in enter
//! the router under its tag; `preferred_by` asks it for its preferred routes, and a rule
//! naming an outbound without any is refused with Go's text.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::adapter::{
    BoxFuture, BoxStream, Endpoint, FlowHandler, Inbound, NoReply, Outbound, PreferredRoutes,
};
use sb_core::dispatch::{Decision, Dispatcher};
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::lifecycle::{Instance, Parts};
use sb_core::router::{ClashMode, Router};
use sb_core::ruleset::{OutboundLookup, RuleSets};
use sb_core::stream::Forward;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What happened, in order, across the adapters of one test.
type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, what: String) {
    log.lock().unwrap().push(what);
}

/// An outbound that records the destinations it is asked to dial, then fails the dial.
struct Recording {
    tag: &'static str,
    log: Log,
}

impl Outbound for Recording {
    fn tag(&self) -> &str {
        self.tag
    }
    fn kind(&self) -> &'static str {
        "recording"
    }
    fn start(&self) {
        note(&self.log, format!("outbound {} start", self.tag));
    }
    fn connect_tcp<'a>(
        &'a self,
        _f: &'a FlowContext,
        d: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        note(&self.log, format!("{} dials {d}", self.tag));
        Box::pin(async { Err(io::Error::other("recording outbound does not dial")) })
    }
}

/// An endpoint whose peers are 10.9.0.0/16 and `*.tailnet.test`.
struct TestEndpoint {
    log: Log,
    handler: Mutex<Option<Arc<dyn FlowHandler>>>,
}

impl PreferredRoutes for TestEndpoint {
    fn preferred_domain(&self, domain: &str) -> bool {
        domain.ends_with(".tailnet.test")
    }
    fn preferred_address(&self, ip: IpAddr) -> bool {
        matches!(ip, IpAddr::V4(v4) if v4.octets()[..2] == [10, 9])
    }
}

impl Outbound for TestEndpoint {
    fn tag(&self) -> &str {
        "ep"
    }
    fn kind(&self) -> &'static str {
        "test-endpoint"
    }
    fn start(&self) {
        note(&self.log, "outbound ep start".into());
    }
    fn preferred_routes(&self) -> Option<&dyn PreferredRoutes> {
        Some(self)
    }
    fn connect_tcp<'a>(
        &'a self,
        _f: &'a FlowContext,
        d: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        note(&self.log, format!("ep dials {d}"));
        Box::pin(async { Err(io::Error::other("test endpoint does not dial")) })
    }
}

impl Endpoint for TestEndpoint {
    fn start_endpoint(
        self: Arc<Self>,
        handler: Arc<dyn FlowHandler>,
    ) -> BoxFuture<'static, io::Result<()>> {
        note(&self.log, "endpoint start".into());
        *self.handler.lock().unwrap() = Some(handler);
        Box::pin(async { Ok(()) })
    }
    fn post_start(&self) -> BoxFuture<'_, io::Result<()>> {
        note(&self.log, "endpoint post-start".into());
        Box::pin(async { Ok(()) })
    }
    fn close_endpoint(&self) -> BoxFuture<'_, ()> {
        note(&self.log, "endpoint close".into());
        Box::pin(async {})
    }
}

impl TestEndpoint {
    /// A peer opens a TCP connection to `dest` through the tunnel.
    async fn peer_connects(&self, dest: Destination) {
        let handler = self.handler.lock().unwrap().clone().expect("started");
        let flow = FlowContext::new(
            "ep".into(),
            "test-endpoint",
            Network::Tcp,
            "10.9.0.2:40000".parse().unwrap(),
            dest,
        );
        let (ours, _theirs) = tokio::io::duplex(64);
        handler
            .handle_tcp(flow, Forward::boxed(ours), Box::new(NoReply))
            .await;
    }
}

/// An inbound that only records its start and close.
struct QuietInbound(Log);

impl Inbound for QuietInbound {
    fn tag(&self) -> &str {
        "in"
    }
    fn kind(&self) -> &'static str {
        "quiet"
    }
    fn start(self: Arc<Self>, _h: Arc<dyn FlowHandler>) -> BoxFuture<'static, io::Result<()>> {
        note(&self.0, "inbound start".into());
        Box::pin(async { Ok(()) })
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        note(&self.0, "inbound close".into());
        Box::pin(async {})
    }
}

/// The route section's text as a checked config, with `ep` standing in the config as a
/// WireGuard endpoint (its runtime twin is the test endpoint).
fn route(route: &str) -> sb_config::Config {
    let config = format!(
        r#"{{"outbounds": [{{"type": "direct", "tag": "a"}}],
            "endpoints": [{{"type": "wireguard", "tag": "ep",
                "private_key": "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4="}}],
            "route": {route}}}"#
    );
    sb_config::load_text("endpoint.json", &config)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn no_sets() -> RuleSets {
    let none: OutboundLookup = Arc::new(|_: &str| None);
    RuleSets::build(&[], none).unwrap()
}

fn parts(route_text: &str) -> (Arc<TestEndpoint>, Parts, Log) {
    let log = Log::default();
    let ep = Arc::new(TestEndpoint {
        log: log.clone(),
        handler: Mutex::default(),
    });
    let a: Arc<dyn Outbound> = Arc::new(Recording {
        tag: "a",
        log: log.clone(),
    });
    let outbounds: HashMap<String, Arc<dyn Outbound>> =
        HashMap::from([("a".into(), a.clone()), ("ep".into(), ep.clone() as _)]);
    let config = route(route_text);
    let sets = no_sets();
    let router = Router::with_outbounds(
        config.route.as_ref(),
        Arc::new(ClashMode::new("Rule")),
        &sets.matchers(),
        &outbounds,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let parts = Parts {
        inbounds: vec![Arc::new(QuietInbound(log.clone()))],
        inbound_configs: Vec::new(),
        endpoints: vec![ep.clone()],
        dispatcher: Arc::new(Dispatcher::new(router, outbounds, a)),
        rule_sets: Arc::new(sets),
    };
    (ep, parts, log)
}

#[tokio::test]
async fn lifecycle_starts_the_endpoint_before_inbounds_and_post_starts_it_after() {
    let (_ep, parts, log) = parts(r#"{"rules": []}"#);
    let instance = Instance::start(parts).await.unwrap();
    let mut started = log.lock().unwrap().clone();
    // Outbounds' own start runs in map order; only the stages' order matters.
    started[3..].sort();
    assert_eq!(
        started,
        [
            "endpoint start",
            "inbound start",
            "endpoint post-start",
            "outbound a start",
            "outbound ep start",
        ]
    );
    log.lock().unwrap().clear();
    instance.close().await;
    assert_eq!(
        log.lock().unwrap()[..2],
        ["inbound close".to_string(), "endpoint close".to_string()]
    );
}

#[tokio::test]
async fn flows_from_the_endpoint_enter_the_router_under_its_tag() {
    let (ep, parts, log) =
        parts(r#"{"rules": [{"inbound": "ep", "outbound": "ep"}], "final": "a"}"#);
    let _instance = Instance::start(parts).await.unwrap();
    ep.peer_connects(Destination::from_host("203.0.113.7", 80))
        .await;
    assert!(
        log.lock()
            .unwrap()
            .contains(&"ep dials 203.0.113.7:80".to_string()),
        "{:?}",
        log.lock().unwrap()
    );
}

#[test]
fn preferred_by_asks_the_endpoint() {
    let (_ep, parts, _log) = parts(r#"{"rules": [{"preferred_by": "ep", "outbound": "ep"}]}"#);
    let d = parts.dispatcher;
    let decide = |dst: &str| {
        let mut flow = FlowContext::new(
            "in".into(),
            "quiet",
            Network::Tcp,
            "127.0.0.1:40000".parse().unwrap(),
            Destination::from_host(dst, 443),
        );
        match d.decide(&mut flow) {
            Decision::Route(o) => o.tag().to_string(),
            _ => "other".into(),
        }
    };
    assert_eq!(decide("10.9.3.4"), "ep");
    assert_eq!(decide("db.tailnet.test"), "ep");
    assert_eq!(decide("10.8.3.4"), "a");
    assert_eq!(decide("example.com"), "a");
}

#[test]
fn preferred_by_an_outbound_without_routes_is_refused_with_gos_text() {
    let config = route(r#"{"rules": [{"preferred_by": ["ep", "a"], "outbound": "a"}]}"#);
    let log = Log::default();
    let outbounds: HashMap<String, Arc<dyn Outbound>> = HashMap::from([
        (
            "a".into(),
            Arc::new(Recording {
                tag: "a",
                log: log.clone(),
            }) as Arc<dyn Outbound>,
        ),
        (
            "ep".into(),
            Arc::new(TestEndpoint {
                log,
                handler: Mutex::default(),
            }) as Arc<dyn Outbound>,
        ),
    ]);
    let e = Router::with_outbounds(
        config.route.as_ref(),
        Arc::new(ClashMode::new("Rule")),
        &no_sets().matchers(),
        &outbounds,
    )
    .unwrap_err();
    // Go 1.14.4: `initialize rule[0]: outbound type does not support preferred routes: direct`.
    assert_eq!(
        e.to_string(),
        "route.rules[0]: outbound type does not support preferred routes: recording"
    );
}
