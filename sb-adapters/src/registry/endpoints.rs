//! The endpoint table: one exhaustive `match` from a config endpoint to the closure that
//! builds it (an adapter that is an outbound and an inbound at once, sb-core's
//! [`Endpoint`]). sb-config decodes and checks `wireguard` and `tailscale` fully (Go's
//! construct-time checks included); their runtimes come with their own issues, so both are
//! refused here, in `sb check` and `sb run` alike.

use super::dial::DialCtx;
use super::error::AdapterError;
use sb_config::model::endpoint::EndpointKind;
use sb_core::adapter::Endpoint;
use std::sync::Arc;

/// Builds one endpoint, given its effective tag.
pub(super) type Builder<'a> =
    Box<dyn FnOnce(&str, &DialCtx<'_>) -> Result<Arc<dyn Endpoint>, AdapterError> + 'a>;

/// The builder for `kind`, or why there is none.
pub(super) fn builder(kind: &EndpointKind) -> Result<Builder<'_>, AdapterError> {
    match kind {
        EndpointKind::WireGuard(..) => Err(AdapterError::NotImplemented("wireguard")),
        EndpointKind::Tailscale(..) => Err(AdapterError::NotImplemented("tailscale")),
    }
}
