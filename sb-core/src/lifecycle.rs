//! Starting and stopping a built instance. Start is all-or-nothing: if any inbound fails to
//! bind, the ones already started are closed and the error names the failing inbound's tag,
//! so sb never runs with part of its config silently missing.

use crate::adapter::{FlowHandler, Inbound};
use std::io;
use std::sync::Arc;

/// An error starting an instance, naming the adapter.
#[derive(Debug, thiserror::Error)]
#[error("start inbound/{kind}[{tag}]: {source}")]
pub struct StartError {
    /// Adapter type.
    pub kind: &'static str,
    /// Adapter tag.
    pub tag: String,
    /// What failed.
    #[source]
    pub source: io::Error,
}

/// A running instance.
pub struct Instance {
    inbounds: Vec<Arc<dyn Inbound>>,
}

impl Instance {
    /// Starts every inbound, or none.
    pub async fn start(
        inbounds: Vec<Arc<dyn Inbound>>,
        handler: Arc<dyn FlowHandler>,
    ) -> Result<Instance, StartError> {
        for (i, inbound) in inbounds.iter().enumerate() {
            if let Err(source) = inbound.clone().start(handler.clone()).await {
                for started in &inbounds[..i] {
                    started.close().await;
                }
                return Err(StartError {
                    kind: inbound.kind(),
                    tag: inbound.tag().to_string(),
                    source,
                });
            }
        }
        Ok(Instance { inbounds })
    }

    /// The inbounds, for tests and the API (listening addresses).
    pub fn inbounds(&self) -> &[Arc<dyn Inbound>] {
        &self.inbounds
    }

    /// Stops accepting on every inbound; returns when their sockets are released.
    pub async fn close(&self) {
        for i in &self.inbounds {
            i.close().await;
        }
    }
}
