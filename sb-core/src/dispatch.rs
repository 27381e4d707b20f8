//! The dispatcher: what happens to a flow between the inbound and the outbound. It walks the
//! router's rules (applying `route-options`, stopping at the first final action), opens the
//! chosen outbound, answers the client through the inbound's [`Responder`], and relays.

use crate::adapter::{BoxFuture, BoxStream, ConnectFailure, FlowHandler, Outbound, Responder};
use crate::flow::{Destination, FlowContext};
use crate::relay::{relay, Counters};
use crate::router::Router;
use sb_config::model::route_rule::{RejectMethod, RouteAction, RouteOptions};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, error, info, Instrument};

/// How long a TCP flow may stay silent in both directions before it is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Go switches a `reject` rule to `drop` after this many rejections in [`REJECT_WINDOW`]
/// (unless `no_drop`), so a client retrying in a loop stops getting fast answers.
const REJECT_BURST: usize = 50;
const REJECT_WINDOW: Duration = Duration::from_secs(30);

/// Routes and carries flows. One per running instance.
pub struct Dispatcher {
    router: Router,
    outbounds: HashMap<String, Arc<dyn Outbound>>,
    default_outbound: Arc<dyn Outbound>,
    rejects: Mutex<HashMap<usize, VecDeque<Instant>>>,
}

enum Decision {
    Route(Arc<dyn Outbound>),
    Reject { drop: bool },
    Fail(String),
}

impl Dispatcher {
    /// A dispatcher over built outbounds. `default_outbound` is `route.final`, else the first
    /// outbound (Go's rule).
    pub fn new(
        router: Router,
        outbounds: HashMap<String, Arc<dyn Outbound>>,
        default_outbound: Arc<dyn Outbound>,
    ) -> Dispatcher {
        Dispatcher {
            router,
            outbounds,
            default_outbound,
            rejects: Mutex::new(HashMap::new()),
        }
    }

    /// The router, for the Clash API.
    pub fn router(&self) -> &Router {
        &self.router
    }

    fn outbound(&self, tag: &str) -> Option<Arc<dyn Outbound>> {
        self.outbounds.get(tag).cloned()
    }

    /// Whether a reject of rule `index` should become a drop (Go's 50-in-30s rule).
    fn reject_is_drop(&self, index: usize, method: RejectMethod, no_drop: bool) -> bool {
        if method == RejectMethod::Drop {
            return true;
        }
        if no_drop {
            return false;
        }
        let Ok(mut map) = self.rejects.lock() else {
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

    fn decide(&self, flow: &mut FlowContext) -> Decision {
        let mut from = 0;
        while let Some(rule) = self.router.first_match(flow, from) {
            debug!(target: "router", "match[{}] {} => {}", rule.index, rule.description, action_text(&rule.action));
            match &rule.action {
                RouteAction::Route(target, opts) | RouteAction::Bypass(target, opts) => {
                    apply_options(flow, opts);
                    return match self.outbound(&target.outbound) {
                        Some(o) => Decision::Route(o),
                        None => Decision::Fail(format!("outbound not found: {}", target.outbound)),
                    };
                }
                RouteAction::RouteOptions(opts) => {
                    apply_options(flow, opts);
                    from = rule.index + 1;
                }
                RouteAction::Reject(r) => {
                    return Decision::Reject {
                        drop: self.reject_is_drop(rule.index, r.method, r.no_drop),
                    }
                }
                RouteAction::HijackDns => {
                    return Decision::Fail(
                        "hijack-dns needs the DNS module, not implemented by sb yet".into(),
                    )
                }
                RouteAction::Sniff(_) | RouteAction::Resolve(_) => {
                    // Refused when the router is built; never reached.
                    from = rule.index + 1;
                }
            }
        }
        match &self.router.final_outbound {
            Some(tag) => match self.outbound(tag) {
                Some(o) => Decision::Route(o),
                None => Decision::Fail(format!("outbound not found: {tag}")),
            },
            None => Decision::Route(self.default_outbound.clone()),
        }
    }

    async fn run_tcp(
        self: Arc<Self>,
        mut flow: FlowContext,
        mut stream: BoxStream,
        mut responder: Box<dyn Responder>,
    ) {
        info!(target: "inbound", tag = %inbound_label(&flow), "inbound connection to {}", flow.destination);
        let outbound = match self.decide(&mut flow) {
            Decision::Route(o) => o,
            Decision::Reject { drop } => {
                info!(target: "router", "rejected connection to {}", flow.destination);
                if !drop {
                    responder
                        .failed(&mut stream, &ConnectFailure::Rejected)
                        .await;
                }
                return;
            }
            Decision::Fail(why) => {
                error!(target: "router", "{why}");
                responder
                    .failed(&mut stream, &ConnectFailure::NoRoute(why))
                    .await;
                return;
            }
        };
        let label = format!("outbound/{}[{}]", outbound.kind(), outbound.tag());
        info!(target: "outbound", tag = %label, "outbound connection to {}", flow.destination);
        let dest = flow.destination.clone();
        let upstream = match outbound.connect_tcp(&flow, &dest).await {
            Ok(u) => u,
            Err(e) => {
                error!(target: "connection", "open connection to {dest} using {label}: {e}");
                responder
                    .failed(&mut stream, &ConnectFailure::Dial(e))
                    .await;
                return;
            }
        };
        if let Err(e) = responder.connected(&mut stream, None).await {
            debug!(target: "connection", "reply to client: {e}");
            return;
        }
        let counters = Arc::new(Counters::default());
        match relay(stream, upstream, counters, TCP_IDLE_TIMEOUT).await {
            Ok((up, down)) => debug!(target: "connection", up, down, "connection closed"),
            Err(e) => debug!(target: "connection", "connection closed: {e}"),
        }
    }
}

fn inbound_label(flow: &FlowContext) -> String {
    format!("inbound/{}[{}]", flow.inbound_type, flow.inbound_tag)
}

fn apply_options(flow: &mut FlowContext, opts: &RouteOptions) {
    if !opts.override_address.is_empty() {
        flow.destination = Destination::from_host(&opts.override_address, flow.destination.port);
    }
    if opts.override_port != 0 {
        flow.destination.port = opts.override_port;
    }
}

fn action_text(a: &RouteAction) -> String {
    match a {
        RouteAction::Route(t, _) => format!("route({})", t.outbound),
        RouteAction::Bypass(t, _) => format!("bypass({})", t.outbound),
        other => other.name().to_string(),
    }
}

impl FlowHandler for Dispatcher {
    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        stream: BoxStream,
        responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        let span = tracing::info_span!("flow", id = flow.id);
        Box::pin(self.run_tcp(flow, stream, responder).instrument(span))
    }
}
