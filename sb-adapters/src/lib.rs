//! sb-adapters: one module per protocol (inbounds, outbounds, endpoints), each behind a cargo
//! feature, and the one registry table that maps a config `type` to its builder.
//!
//! No adapter is built yet: every type is recognised and checked by sb-config, and the
//! runtime issue adds the builders here (see `docs/ARCHITECTURE.md`).
