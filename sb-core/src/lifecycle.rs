//! Starting and stopping a built instance. Start is all-or-nothing: remote rule sets are
//! downloaded first (a failed first download stops the start, naming the set), then every
//! inbound binds; if one fails, the ones already started are closed and the error names the
//! failing inbound's tag, so sb never runs with part of its config silently missing. Once
//! every inbound listens, each outbound's `start` runs (Go's post-start stage: a `urltest`
//! group begins testing its members in the background); `close` stops that work again.

use crate::adapter::Inbound;
use crate::dispatch::Dispatcher;
use crate::ruleset::{RuleSetError, RuleSets};
use std::io;
use std::sync::Arc;

/// An error starting an instance, naming the adapter or rule set.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An inbound could not start.
    #[error("start inbound/{kind}[{tag}]: {source}")]
    Inbound {
        /// Adapter type.
        kind: &'static str,
        /// Adapter tag.
        tag: String,
        /// What failed.
        #[source]
        source: io::Error,
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

/// A running instance.
pub struct Instance {
    inbounds: Vec<Arc<dyn Inbound>>,
    dispatcher: Arc<Dispatcher>,
    rule_sets: Arc<RuleSets>,
    background: Vec<Arc<dyn Background>>,
}

impl Instance {
    /// Loads the rule sets, then starts every inbound, or none, then the outbounds' own work.
    pub async fn start(
        inbounds: Vec<Arc<dyn Inbound>>,
        dispatcher: Arc<Dispatcher>,
        rule_sets: Arc<RuleSets>,
    ) -> Result<Instance, StartError> {
        rule_sets.start().await?;
        for (i, inbound) in inbounds.iter().enumerate() {
            if let Err(source) = inbound.clone().start(dispatcher.clone()).await {
                for started in &inbounds[..i] {
                    started.close().await;
                }
                rule_sets.close();
                return Err(StartError::Inbound {
                    kind: inbound.kind(),
                    tag: inbound.tag().to_string(),
                    source,
                });
            }
        }
        for outbound in dispatcher.outbounds() {
            outbound.start();
        }
        Ok(Instance {
            inbounds,
            dispatcher,
            rule_sets,
            background: Vec::new(),
        })
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
        for outbound in self.dispatcher.outbounds() {
            outbound.close();
        }
        self.rule_sets.close();
        for b in &self.background {
            b.close();
        }
    }
}
