//! sb-core: the kernel of sb, between the config (sb-config) and the protocol adapters
//! (sb-adapters).
//!
//! A flow's path through it: an inbound accepts a connection and builds a [`flow::FlowContext`];
//! the [`dispatch::Dispatcher`] asks the [`router::Router`] for the first matching rule,
//! carries out non-final actions and asks again, then opens the chosen outbound through its
//! [`dialer::Dialer`] and hands both streams to the [`relay`]. Adapters implement the traits
//! of [`adapter`]; sb-core never names a protocol.

pub mod adapter;
pub mod conn_limit;
pub mod dialer;
pub mod dispatch;
pub mod dns;
pub mod flow;
pub mod http_client;
pub mod lifecycle;
pub mod log;
#[cfg(feature = "netstack")]
pub mod netstack;
pub mod procinfo;
pub mod relay;
pub mod resolve;
pub mod router;
pub mod ruleset;
pub mod sniff;
#[cfg(target_os = "linux")]
mod splice;
pub mod stream;
pub mod tls_stream;
pub mod tracker;
pub mod udp;

/// An OS error worded as Go words it (`connection refused`), without Rust's `(os error N)`.
pub fn error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text
        .find(" (os error ")
        .map_or(text.as_str(), |i| &text[..i])
        .to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// sb's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The sing-box config format version sb reads.
pub const SING_BOX_COMPAT: &str = "1.14.4";
