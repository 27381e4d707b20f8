//! sb-core: the kernel of sb, between the config (sb-config) and the protocol adapters
//! (sb-adapters).
//!
//! It will hold the adapter traits (`Inbound`, `Outbound`; an endpoint is both), the flow
//! context, the `Dialer`, the rule router, the relay and the connection tracker. Today it
//! holds the build facts `sb version` prints; the runtime lands with the runtime issue
//! (see `docs/ARCHITECTURE.md`).

/// sb's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The sing-box config format version sb reads.
pub const SING_BOX_COMPAT: &str = "1.14.4";
