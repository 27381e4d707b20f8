//! The registry's errors. An adapter's error keeps its section, index and tag as fields until
//! it is shown, so callers (the CLI, tests, a future API) can tell a type sb lacks from a
//! config sb refuses without comparing text.

/// Why one adapter cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// Go has the type; sb does not implement it.
    #[error("type {0:?} is not implemented by sb")]
    NotImplemented(&'static str),
    /// sb implements the type, but this build was made without its cargo feature.
    #[error("type {ty:?} needs the cargo feature {feature:?}")]
    NeedsFeature {
        /// The config `type`.
        ty: &'static str,
        /// The cargo feature that builds it.
        feature: &'static str,
    },
    /// The registry refuses an adapter's options (a field sb cannot honour yet, a missing
    /// server); the text is the registry's.
    #[error("{0}")]
    Options(String),
    /// The `ssh` outbound refuses its options (a key it cannot read, an unknown algorithm).
    /// Boxed: russh's key errors are large, and every build result carries this type.
    #[error(transparent)]
    Ssh(Box<crate::outbound::ssh::SshError>),
    /// The `tun` inbound refuses its options (a field sb does not implement, a bad MTU).
    #[cfg(feature = "tun")]
    #[error(transparent)]
    Tun(#[from] crate::inbound::tun::settings::TunError),
    /// The `tor` outbound refuses its options.
    #[cfg(feature = "tor")]
    #[error(transparent)]
    Tor(#[from] crate::outbound::tor::TorError),
    /// The `wireguard` endpoint refuses its options.
    #[cfg(feature = "wireguard")]
    #[error(transparent)]
    WireGuard(#[from] crate::endpoint::wireguard::SettingsError),
}

impl From<crate::outbound::ssh::SshError> for AdapterError {
    fn from(e: crate::outbound::ssh::SshError) -> AdapterError {
        AdapterError::Ssh(Box::new(e))
    }
}

impl From<String> for AdapterError {
    fn from(message: String) -> AdapterError {
        AdapterError::Options(message)
    }
}

impl From<&str> for AdapterError {
    fn from(message: &str) -> AdapterError {
        AdapterError::Options(message.to_string())
    }
}

/// The config section an adapter is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `inbounds`.
    Inbounds,
    /// `outbounds`.
    Outbounds,
    /// `endpoints`.
    Endpoints,
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Section::Inbounds => "inbounds",
            Section::Outbounds => "outbounds",
            Section::Endpoints => "endpoints",
        })
    }
}

/// An error building an instance, naming the adapter as Go does (`outbounds[2] (tag "x"): ...`).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An adapter could not be built.
    #[error("{section}[{index}] (tag {tag:?}): {reason}")]
    Adapter {
        /// Where it is in the config.
        section: Section,
        /// Index in the section.
        index: usize,
        /// Effective tag.
        tag: String,
        /// What is wrong (shown in this error's text, so not chained as its source: a
        /// report that prints the chain would say it twice).
        reason: AdapterError,
    },
    /// An outbound or endpoint depends on itself through group members or detours (Go's text).
    #[error("circular outbound dependency: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// The router could not be built.
    #[error(transparent)]
    Router(#[from] sb_core::router::RouterError),
    /// An `http_clients` entry asks for what sb cannot do.
    #[error("http_clients[{index}] (tag {tag:?}): {message}")]
    HttpClient {
        /// Index in `http_clients`.
        index: usize,
        /// Its tag.
        tag: String,
        /// The field refused and why.
        message: String,
    },
    /// A rule set could not be loaded.
    #[error(transparent)]
    RuleSet(#[from] sb_core::ruleset::RuleSetError),
    /// The cache file cannot be used.
    #[error(transparent)]
    CacheFile(#[from] crate::cache_file::CacheFileError),
    /// The DNS module could not be built.
    #[error(transparent)]
    Dns(#[from] sb_core::dns::BuildError),
}
