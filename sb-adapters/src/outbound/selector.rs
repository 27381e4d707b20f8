//! The `selector` outbound: one of several outbounds, chosen by the user at runtime (the Clash
//! API's `PUT /proxies/{name}` will call [`Selector::select`]). Flows use the member selected
//! when they start; with `interrupt_exist_connections` a switch also ends the running flows
//! whose chain passes through the selector (found in the connection tracker).

use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, Outbound};
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::tracker::Tracker;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, OnceLock, RwLock};

/// Why a selector cannot switch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The tag is not one of the group's members (Go's text, without the tag).
    #[error("not found")]
    NotAMember(String),
}

/// A `selector` outbound.
pub struct Selector {
    tag: String,
    members: Vec<String>,
    selected: RwLock<String>,
    interrupt: bool,
    outbounds: OnceLock<HashMap<String, Arc<dyn Outbound>>>,
    tracker: OnceLock<Arc<Tracker>>,
}

impl Selector {
    /// Builds it; `default` (or the first member) is selected. With `interrupt`, a switch
    /// closes the flows running through the selector.
    pub fn new(tag: &str, members: Vec<String>, default: &str, interrupt: bool) -> Selector {
        let first = if default.is_empty() {
            members.first().cloned().unwrap_or_default()
        } else {
            default.to_string()
        };
        Selector {
            tag: tag.to_string(),
            members,
            selected: RwLock::new(first),
            interrupt,
            outbounds: OnceLock::new(),
            tracker: OnceLock::new(),
        }
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

    /// The selected member.
    pub fn selected(&self) -> String {
        self.selected.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Selects `tag`, which must be a member (Go: `Selector update error: not found`).
    pub fn select(&self, tag: &str) -> Result<(), SelectError> {
        if !self.members.iter().any(|m| m == tag) {
            return Err(SelectError::NotAMember(tag.to_string()));
        }
        let changed = match self.selected.write() {
            Ok(mut s) => {
                let changed = *s != tag;
                *s = tag.to_string();
                changed
            }
            Err(_) => false,
        };
        tracing::info!(target: "outbound", tag = %format!("outbound/selector[{}]", self.tag), "selected {tag}");
        if changed && self.interrupt {
            if let Some(t) = self.tracker.get() {
                let n = t.close_where(|f| f.chain.contains(&self.tag));
                tracing::debug!(target: "outbound", "interrupted {n} connections");
            }
        }
        Ok(())
    }

    fn current(&self) -> io::Result<Arc<dyn Outbound>> {
        let tag = self.selected();
        self.outbounds
            .get()
            .and_then(|m| m.get(&tag).cloned())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("selector {}: member {tag} is not available", self.tag),
                )
            })
    }
}

impl Outbound for Selector {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "selector"
    }
    fn networks(&self) -> &'static [Network] {
        &[Network::Tcp, Network::Udp]
    }
    fn group_now(&self) -> Option<String> {
        Some(self.selected())
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move { self.current()?.connect_tcp(flow, dest).await })
    }
    fn connect_udp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        Box::pin(async move { self.current()?.connect_udp(flow, dest).await })
    }
    fn ping<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: std::net::IpAddr,
        timeout: std::time::Duration,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { self.current()?.ping(flow, dest, timeout).await })
    }
}
