//! Starting and stopping a built instance. Start is all-or-nothing: remote rule sets are
//! downloaded first (a failed first download stops the start, naming the set), then every
//! endpoint comes up (Go starts endpoints before inbounds), then every inbound binds; if one
//! fails, the ones already started are closed and the error names the failing adapter's
//! tag, so sb never runs with part of its config silently missing. Once every inbound
//! listens, the endpoints' post-start work runs (it may need DNS through outbounds), then
//! each outbound's `start` (Go's post-start stage: a `urltest` group begins testing its
//! members in the background); `close` stops all of it again.

use crate::adapter::{Endpoint, Inbound};
use crate::dispatch::Dispatcher;
use crate::ruleset::{RuleSetError, RuleSets};
use std::io;
use std::sync::Arc;

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
}

/// What a built config starts from (the registry makes it).
pub struct Parts {
    /// Inbounds, in config order.
    pub inbounds: Vec<Arc<dyn Inbound>>,
    /// Endpoints, in config order (they are in the dispatcher's outbounds too).
    pub endpoints: Vec<Arc<dyn Endpoint>>,
    /// The dispatcher (router and outbounds).
    pub dispatcher: Arc<Dispatcher>,
    /// The rule sets.
    pub rule_sets: Arc<RuleSets>,
}

/// A running instance.
pub struct Instance {
    inbounds: Vec<Arc<dyn Inbound>>,
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
            endpoints,
            dispatcher,
            rule_sets,
        } = parts;
        rule_sets.start().await?;
        let handler: Arc<dyn crate::adapter::FlowHandler> = dispatcher.clone();
        let mut instance = Instance {
            inbounds: Vec::with_capacity(inbounds.len()),
            endpoints: Vec::with_capacity(endpoints.len()),
            dispatcher,
            rule_sets,
            background: Vec::new(),
        };
        for endpoint in endpoints {
            if let Err(error) = endpoint.clone().start_endpoint(handler.clone()).await {
                instance.close_started().await;
                return Err(StartError::Endpoint {
                    kind: endpoint.kind(),
                    tag: endpoint.tag().to_string(),
                    error,
                });
            }
            instance.endpoints.push(endpoint);
        }
        for inbound in inbounds {
            if let Err(error) = inbound.clone().start(handler.clone()).await {
                instance.close_started().await;
                return Err(StartError::Inbound {
                    kind: inbound.kind(),
                    tag: inbound.tag().to_string(),
                    error,
                });
            }
            instance.inbounds.push(inbound);
        }
        for i in 0..instance.endpoints.len() {
            let endpoint = instance.endpoints[i].clone();
            if let Err(error) = endpoint.post_start().await {
                instance.close_started().await;
                return Err(StartError::Endpoint {
                    kind: endpoint.kind(),
                    tag: endpoint.tag().to_string(),
                    error,
                });
            }
        }
        for outbound in instance.dispatcher.outbounds() {
            outbound.start();
        }
        Ok(instance)
    }

    /// Undoes a start that failed part way: closes what was started (no outbound `start`
    /// ran yet, so their `close` is not called).
    async fn close_started(&self) {
        for i in &self.inbounds {
            i.close().await;
        }
        for e in &self.endpoints {
            e.close_endpoint().await;
        }
        self.rule_sets.close();
    }

    /// Completes when an inbound stops serving on its own (its device failed), naming it;
    /// never while every inbound serves. `sb run` then stops with this error.
    pub async fn failed(&self) -> StartError {
        if self.inbounds.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.inbounds.iter().map(|i| {
            let (kind, tag) = (i.kind(), i.tag().to_string());
            let failed = i.failed();
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

    /// The inbounds, for tests and the API (listening addresses).
    pub fn inbounds(&self) -> &[Arc<dyn Inbound>] {
        &self.inbounds
    }

    /// Stops accepting on every inbound, stops refreshing rule sets and the outbounds' own
    /// work; returns when the inbounds' sockets are released.
    pub async fn close(&self) {
        for i in &self.inbounds {
            i.close().await;
        }
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
