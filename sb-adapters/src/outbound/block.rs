//! The `block` outbound: every flow routed here is refused (Go logs "blocked connection").

use sb_core::adapter::{BoxFuture, BoxStream, Outbound};
use sb_core::flow::{Destination, FlowContext, Network};
use std::io;

/// A `block` outbound.
pub struct Block {
    tag: String,
}

impl Block {
    /// Builds it.
    pub fn new(tag: &str) -> Block {
        Block {
            tag: tag.to_string(),
        }
    }
}

impl Outbound for Block {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "block"
    }
    fn networks(&self) -> &'static [Network] {
        &[Network::Tcp, Network::Udp]
    }
    fn connect_tcp<'a>(
        &'a self,
        _flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            tracing::info!(target: "outbound", tag = %format!("outbound/block[{}]", self.tag), "blocked connection to {dest}");
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "blocked"))
        })
    }
}
