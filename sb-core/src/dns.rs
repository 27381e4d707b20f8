//! sb's DNS module: the `dns` section of the config, on hickory-proto's wire format.
//!
//! Where it sits: a query reaches [`Dns::exchange`] from three places — a flow the router
//! sent to `hijack-dns` ([`serve`]), a domain an outbound or the `resolve` action must turn
//! into addresses ([`Dns::lookup_for`], the [`crate::resolve::Resolver`] seam), and FakeIP
//! addresses mapped back to domains before routing ([`Dns::fake_domain`]). The DNS rules
//! ([`rules`]) pick a server or answer themselves (`reject`, `predefined`); the [`cache`]
//! answers repeated questions and merges identical ones in flight; the chosen [`Transport`]
//! carries the query. Every transport that talks to a server dials through sb's
//! [`crate::dialer::Dialer`], so a server's `detour` sends its queries through an outbound
//! like any other flow.

pub mod build;
pub mod cache;
pub mod client;
mod error;
pub mod fakeip;
pub mod hosts;
pub mod https;
pub mod local;
pub mod message;
pub mod rules;
pub mod serve;
pub mod stream;
pub mod tls;
pub mod transport;
pub mod udp;

pub use build::build;
pub use client::Dns;
pub use error::{BuildError, RecordError, RuleError, ServerError, TlsError};
pub use transport::{BoxTransport, Transport};

use std::time::Duration;

/// Why a query got no answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// Reaching the server failed.
    #[error("{server}: {}", crate::error_text(.source))]
    Io {
        /// The server tag.
        server: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The server's answer could not be read.
    #[error("{server}: bad response: {message}")]
    BadResponse {
        /// The server tag.
        server: String,
        /// What is wrong with it.
        message: String,
    },
    /// No answer in time.
    #[error("{server}: timed out after {after:?}")]
    Timeout {
        /// The server tag.
        server: String,
        /// The limit.
        after: Duration,
    },
    /// A rule rejected the query with `method: drop`: no answer is sent at all.
    #[error("dropped by DNS rule")]
    Dropped,
    /// The query is not one sb answers (no question, several questions...).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// A lookup found no address.
    #[error("lookup {domain}: {why}")]
    NoAddress {
        /// The domain.
        domain: String,
        /// The response code or `no such host`.
        why: String,
    },
}

impl From<DnsError> for std::io::Error {
    fn from(e: DnsError) -> std::io::Error {
        let kind = match &e {
            DnsError::Timeout { .. } => std::io::ErrorKind::TimedOut,
            DnsError::NoAddress { .. } => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e.to_string())
    }
}

/// Go's default time for one query (`dns.timeout` when unset).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// TTL of answers sb makes up itself (hosts, FakeIP, predefined without a TTL): Go's 600 s.
pub const DEFAULT_TTL: u32 = 600;
