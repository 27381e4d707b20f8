//! Why the DNS module could not be built from the `dns` section: [`BuildError`] names the
//! server or rule (Go's wording where it has one), and carries a typed reason from the
//! server's transport ([`ServerError`]) or the rule ([`RuleError`]). The registry hands it on
//! to `sb check` and `sb run` as it is.

use crate::router::RuleError as MatchError;

/// Why the DNS module could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A server is invalid.
    #[error("initialize DNS server[{index}] ({tag}): {reason}")]
    Server {
        /// Its index.
        index: usize,
        /// Its tag.
        tag: String,
        /// What is wrong.
        reason: ServerError,
    },
    /// `dns.final` names no server.
    #[error("initialize dns-transport: default DNS server not found: {0}")]
    NoDefault(String),
    /// `dns.final` (or the first server) is a FakeIP server.
    #[error("initialize dns-transport: default server cannot be fakeip")]
    FakeIpDefault,
    /// A rule is invalid or uses what sb does not implement.
    #[error("initialize dns-router: dns.rules[{index}]: {reason}")]
    Rule {
        /// The rule's index in `dns.rules`.
        index: usize,
        /// What is wrong.
        reason: RuleError,
    },
}

/// Why one `dns.servers` entry cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `local` with `prefer_go` or `neighbor_domain`.
    #[error("local: prefer_go/neighbor_domain are not implemented by sb")]
    LocalOptions,
    /// A `hosts` server's `predefined` address is not an IP.
    #[error("predefined {name}: {error}")]
    PredefinedAddress {
        /// The name it is for.
        name: String,
        /// Why it is not an address.
        error: std::net::AddrParseError,
    },
    /// A `hosts` file cannot be read.
    #[error("read {path}: {error}")]
    HostsFile {
        /// The file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// An `https` server's `method` is neither GET nor POST.
    #[error("https: unsupported method {0:?}")]
    HttpsMethod(String),
    /// A `fakeip` server's `inet4_range` is an IPv6 prefix.
    #[error("inet4_range is not an IPv4 prefix")]
    Inet4Range,
    /// A `fakeip` server's `inet6_range` is an IPv4 prefix.
    #[error("inet6_range is not an IPv6 prefix")]
    Inet6Range,
    /// The `tls` block cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why a `tls` block cannot be used (shared with the HTTP client: [`crate::tls_stream`]).
pub use crate::tls_stream::TlsError;

/// Why one `dns.rules` entry cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// `evaluate` or `respond`.
    #[error("the {0} action is not implemented by sb yet")]
    ActionNotImplemented(&'static str),
    /// `race` or `speculative` route options.
    #[error("race/speculative queries are not implemented by sb yet")]
    Race,
    /// The match fields (shared with route rules).
    #[error(transparent)]
    Match(#[from] MatchError),
    /// A `predefined` record does not parse.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// Why a zone-format record of a `predefined` answer does not parse.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// hickory's zone parser refused it.
    #[error("record {text:?}: {error}")]
    Parse {
        /// The record as written.
        text: String,
        /// The parser's reason.
        error: hickory_proto::serialize::txt::ParseError,
    },
    /// The text holds no record.
    #[error("record {0:?}: no record")]
    Empty(String),
}
