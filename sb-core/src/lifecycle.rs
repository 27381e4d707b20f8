//! Starting and stopping a built instance. Start is all-or-nothing: remote rule sets are
//! downloaded first (a failed first download stops the start, naming the set), then every
//! endpoint comes up (Go starts endpoints before inbounds), then every inbound binds; if one
//! fails, the ones already started are closed and the error names the failing adapter's
//! tag, so sb never runs with part of its config silently missing. Once every inbound
//! listens, the endpoints' post-start work runs (it may need DNS through outbounds), then
//! each outbound's `start` (Go's post-start stage: a `urltest` group begins testing its
//! members in the background); `close` stops all of it again.
//!
//! A reload (`reload.rs`) builds the next instance before the running one stops: inbounds
//! whose config did not change keep running (their flows are switched to the new
//! dispatcher, `switch.rs`), remote rule sets that did not change keep their rules.

mod reload;
mod switch;

pub use reload::ReloadFailed;

use crate::adapter::{Endpoint, Inbound};
use crate::dispatch::Dispatcher;
use crate::ruleset::{RuleSetError, RuleSets};
use std::io;
use std::sync::Arc;
use switch::Switch;

/// An error starting an instance, naming the adapter or rule set.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An inbound could not start.
    #[error("start inbound/{kind}[{tag}]: {error}")]
    Inbound {
        /// Adapter type.
        kind: &'static str,
        /// Adapter tag.
        tag: String,
        /// What failed (in this error's text, so not chained as its source: a report that
        /// prints the chain would say it twice).
        error: io::Error,
    },
    /// An endpoint could not start (or its post-start work failed).
    #[error("start endpoint/{kind}[{tag}]: {error}")]
    Endpoint {
        /// Adapter type.
        kind: &'static str,
        /// Adapter tag.
        tag: String,
        /// What failed (in the text, not chained).
        error: io::Error,
    },
    /// An inbound stopped serving on its own after the start.
    #[error("inbound/{kind}[{tag}] stopped: {error}")]
    Stopped {
        /// Adapter type.
        kind: &'static str,
        /// Adapter tag.
        tag: String,
        /// Why (in the text, not chained).
        error: io::Error,
    },
    /// A rule set could not be loaded.
    #[error("start router: {0}")]
    RuleSet(#[from] RuleSetError),
}

/// Work an instance runs beside its flows (the cache file's saver): started when attached,
/// closed with the instance after the inbounds stop.
pub trait Background: Send + Sync + 'static {
    /// Starts its tasks.
    fn start(self: Arc<Self>);
    /// Stops them and finishes its work (a last save).
    fn close(&self);
    /// Finishes the work pending now (a save) and goes on: a reload reads what it wrote.
    fn flush(&self) {}
}

/// An inbound's whole config (type, tag, listen fields, users, TUN settings): what decides
/// whether a reload keeps it running.
pub type InboundConfig = sb_config::model::inbound::Inbound;

/// What a built config starts from (the registry makes it).
pub struct Parts {
    /// Inbounds, in config order.
    pub inbounds: Vec<Arc<dyn Inbound>>,
    /// Each inbound's config, in the same order, when known. An inbound whose config is the
    /// same in the next config keeps running across a reload (its listening sockets, TUN
    /// device and routes stay; its next flows go to the new config). Left empty, every
    /// inbound is rebuilt.
    pub inbound_configs: Vec<InboundConfig>,
    /// Endpoints, in config order (they are in the dispatcher's outbounds too).
    pub endpoints: Vec<Arc<dyn Endpoint>>,
    /// The dispatcher (router and outbounds).
    pub dispatcher: Arc<Dispatcher>,
    /// The rule sets.
    pub rule_sets: Arc<RuleSets>,
}

/// A started inbound, with the config it was built from and the switch its flows go through.
struct Running {
    inbound: Arc<dyn Inbound>,
    config: Option<InboundConfig>,
    handler: Arc<Switch>,
}

/// An inbound to bring up: a new one to start, or one a reload keeps running.
enum Bring {
    Start(Arc<dyn Inbound>, Option<InboundConfig>),
    Keep(Running),
}

/// A running instance.
pub struct Instance {
    inbounds: Vec<Running>,
    endpoints: Vec<Arc<dyn Endpoint>>,
    dispatcher: Arc<Dispatcher>,
    rule_sets: Arc<RuleSets>,
    background: Vec<Arc<dyn Background>>,
}

impl Instance {
    /// Loads the rule sets, brings the endpoints up, starts every inbound, or none, then the
    /// endpoints' post-start work and the outbounds' own work.
    pub async fn start(parts: Parts) -> Result<Instance, StartError> {
        let Parts {
            inbounds,
            inbound_configs,
            endpoints,
            dispatcher,
            rule_sets,
        } = parts;
        rule_sets.start_after(None).await?;
        let mut configs = inbound_configs.into_iter();
        let bring = inbounds
            .into_iter()
            .map(|i| Bring::Start(i, configs.next()))
            .collect();
        let mut instance = Instance::empty(dispatcher, rule_sets);
        if let Err((error, _)) = instance.bring_up(endpoints, bring).await {
            instance.rule_sets.close();
            return Err(error);
        }
        Ok(instance)
    }

    fn empty(dispatcher: Arc<Dispatcher>, rule_sets: Arc<RuleSets>) -> Instance {
        Instance {
            inbounds: Vec::new(),
            endpoints: Vec::new(),
            dispatcher,
            rule_sets,
            background: Vec::new(),
        }
    }

    /// Endpoints, then inbounds (kept ones as they are), then the endpoints' post-start work
    /// and the outbounds' `start`. On failure, what was started is closed again and the kept
    /// inbounds are handed back, still running.
    async fn bring_up(
        &mut self,
        endpoints: Vec<Arc<dyn Endpoint>>,
        inbounds: Vec<Bring>,
    ) -> Result<(), (StartError, Vec<Running>)> {
        let handler = self.dispatcher.clone();
        let mut kept = Vec::new();
        let mut failure = None;
        for endpoint in endpoints {
            if let Err(error) = endpoint.clone().start_endpoint(handler.clone()).await {
                failure = Some(StartError::Endpoint {
                    kind: endpoint.kind(),
                    tag: endpoint.tag().to_string(),
                    error,
                });
                break;
            }
            self.endpoints.push(endpoint);
        }
        let mut inbounds = inbounds.into_iter();
        if failure.is_none() {
            for bring in inbounds.by_ref() {
                let (inbound, config) = match bring {
                    Bring::Keep(running) => {
                        kept.push(self.inbounds.len());
                        self.inbounds.push(running);
                        continue;
                    }
                    Bring::Start(inbound, config) => (inbound, config),
                };
                let switch = Switch::new(handler.clone());
                if let Err(error) = inbound.clone().start(switch.clone()).await {
                    failure = Some(StartError::Inbound {
                        kind: inbound.kind(),
                        tag: inbound.tag().to_string(),
                        error,
                    });
                    break;
                }
                self.inbounds.push(Running {
                    inbound,
                    config,
                    handler: switch,
                });
            }
        }
        if failure.is_none() {
            for i in 0..self.endpoints.len() {
                let endpoint = self.endpoints[i].clone();
                if let Err(error) = endpoint.post_start().await {
                    failure = Some(StartError::Endpoint {
                        kind: endpoint.kind(),
                        tag: endpoint.tag().to_string(),
                        error,
                    });
                    break;
                }
            }
        }
        if let Some(error) = failure {
            // Kept inbounds not reached yet go back too.
            let mut handed_back: Vec<Running> = inbounds
                .filter_map(|b| match b {
                    Bring::Keep(r) => Some(r),
                    Bring::Start(..) => None,
                })
                .collect();
            for (i, running) in std::mem::take(&mut self.inbounds).into_iter().enumerate() {
                if kept.contains(&i) {
                    handed_back.push(running);
                } else {
                    running.inbound.close().await;
                }
            }
            for e in std::mem::take(&mut self.endpoints) {
                e.close_endpoint().await;
            }
            return Err((error, handed_back));
        }
        // Every part is up: the kept inbounds' next flows go to this instance.
        for i in kept {
            self.inbounds[i].handler.point_at(handler.clone());
        }
        for outbound in self.dispatcher.outbounds() {
            outbound.start();
        }
        Ok(())
    }

    /// Completes when an inbound stops serving on its own (its device failed), naming it;
    /// never while every inbound serves. `sb run` then stops with this error.
    pub async fn failed(&self) -> StartError {
        if self.inbounds.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.inbounds.iter().map(|r| {
            let (kind, tag) = (r.inbound.kind(), r.inbound.tag().to_string());
            let failed = r.inbound.failed();
            Box::pin(async move {
                let error = failed.await;
                StartError::Stopped { kind, tag, error }
            })
        });
        futures_select_all(waits).await
    }

    /// Starts `b` and closes it with the instance.
    pub fn attach(&mut self, b: Arc<dyn Background>) {
        b.clone().start();
        self.background.push(b);
    }

    /// Flushes the background work (the cache file is saved now).
    pub fn flush_background(&self) {
        for b in &self.background {
            b.flush();
        }
    }

    /// The inbounds, for tests and the API (listening addresses).
    pub fn inbounds(&self) -> Vec<Arc<dyn Inbound>> {
        self.inbounds.iter().map(|r| r.inbound.clone()).collect()
    }

    /// Stops accepting on every inbound, stops refreshing rule sets and the outbounds' own
    /// work; returns when the inbounds' sockets are released.
    pub async fn close(&self) {
        for r in &self.inbounds {
            r.inbound.close().await;
        }
        self.close_rest().await;
    }

    /// Everything but the inbounds.
    async fn close_rest(&self) {
        for e in &self.endpoints {
            e.close_endpoint().await;
        }
        for outbound in self.dispatcher.outbounds() {
            outbound.close();
        }
        self.rule_sets.close();
        for b in &self.background {
            b.close();
        }
    }
}

/// The first of `futures` to complete (without the `futures` crate, which sb-core only has
/// with the `netstack` feature).
async fn futures_select_all<F>(
    futures: impl IntoIterator<Item = std::pin::Pin<Box<F>>>,
) -> F::Output
where
    F: std::future::Future + ?Sized,
{
    let mut all: Vec<_> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for f in all.iter_mut() {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
