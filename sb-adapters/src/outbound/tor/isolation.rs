//! Stream isolation: flows from different inbounds, or from different authenticated users
//! of one inbound, never share a Tor circuit (so one user's traffic cannot be linked to
//! another's by the exit). Flows with the same inbound and user may share one, as a Tor
//! Browser tab's requests do.

use arti_client::isolation::IsolationHelper;
use sb_core::flow::FlowContext;
use std::sync::Arc;

/// The isolation key of a flow: its inbound and its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowIsolation {
    inbound: Arc<str>,
    user: Option<Arc<str>>,
}

impl FlowIsolation {
    /// The key of `flow`.
    pub fn of(flow: &FlowContext) -> FlowIsolation {
        FlowIsolation {
            inbound: flow.inbound_tag.clone(),
            user: flow.user.as_deref().map(Arc::from),
        }
    }
}

impl IsolationHelper for FlowIsolation {
    fn compatible_same_type(&self, other: &Self) -> bool {
        self == other
    }
    fn join_same_type(&self, other: &Self) -> Option<Self> {
        (self == other).then(|| self.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use sb_core::flow::{Destination, Network};

    fn flow(inbound: &str, user: Option<&str>) -> FlowContext {
        let mut f = FlowContext::new(
            inbound.into(),
            "mixed",
            Network::Tcp,
            "127.0.0.1:1".parse().unwrap(),
            Destination::from_host("example.com", 80),
        );
        f.user = user.map(str::to_string);
        f
    }

    #[test]
    fn users_and_inbounds_are_kept_apart() {
        let a = FlowIsolation::of(&flow("in", Some("alice")));
        let a2 = FlowIsolation::of(&flow("in", Some("alice")));
        let b = FlowIsolation::of(&flow("in", Some("bob")));
        let anon = FlowIsolation::of(&flow("in", None));
        let other = FlowIsolation::of(&flow("in2", Some("alice")));
        assert!(a.compatible_same_type(&a2));
        assert_eq!(a.join_same_type(&a2), Some(a.clone()));
        for different in [&b, &anon, &other] {
            assert!(!a.compatible_same_type(different));
            assert_eq!(a.join_same_type(different), None);
        }
    }
}
