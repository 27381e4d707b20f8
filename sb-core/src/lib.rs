//! sb-core: the kernel of sb, between the config (sb-config) and the protocol adapters
//! (sb-adapters).
//!
//! A flow's path through it: an inbound accepts a connection and builds a [`flow::FlowContext`];
//! the [`dispatch::Dispatcher`] asks the [`router::Router`] for the first matching rule,
//! carries out non-final actions and asks again, then opens the chosen outbound through its
//! [`dialer::Dialer`] and hands both streams to the [`relay`]. Adapters implement the traits
//! of [`adapter`]; sb-core never names a protocol.

pub mod adapter;
pub mod dialer;
pub mod dispatch;
pub mod flow;
pub mod relay;
pub mod router;

/// sb's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The sing-box config format version sb reads.
pub const SING_BOX_COMPAT: &str = "1.14.4";
