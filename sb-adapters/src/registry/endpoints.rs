//! The endpoint table: one exhaustive `match` from a config endpoint to the closure that
//! builds it (an adapter that is an outbound and an inbound at once, sb-core's
//! [`Endpoint`]). sb-config decodes and checks `wireguard` and `tailscale` fully (Go's
//! construct-time checks included). `wireguard` is built when the cargo feature is on;
//! `tailscale`'s runtime comes with its own issue, so it is refused here, in `sb check` and
//! `sb run` alike.

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
        EndpointKind::WireGuard(dial, wg) => wireguard::builder(dial, wg),
        EndpointKind::Tailscale(..) => Err(AdapterError::NotImplemented("tailscale")),
    }
}

#[cfg(feature = "wireguard")]
mod wireguard {
    use super::{AdapterError, Builder};
    use crate::endpoint::wireguard::WireGuard;
    use sb_config::model::endpoint::WireGuardEndpoint;
    use sb_config::model::shared::DialFields;
    use std::sync::Arc;

    pub(super) fn builder<'a>(
        dial: &'a DialFields,
        wg: &'a WireGuardEndpoint,
    ) -> Result<Builder<'a>, AdapterError> {
        Ok(Box::new(move |tag, ctx| {
            Ok(Arc::new(WireGuard::new(tag, wg, ctx.dialer(dial))?))
        }))
    }
}

#[cfg(not(feature = "wireguard"))]
mod wireguard {
    use super::{AdapterError, Builder};
    use sb_config::model::endpoint::WireGuardEndpoint;
    use sb_config::model::shared::DialFields;

    pub(super) fn builder<'a>(
        _: &'a DialFields,
        _: &'a WireGuardEndpoint,
    ) -> Result<Builder<'a>, AdapterError> {
        Err(AdapterError::NeedsFeature {
            ty: "wireguard",
            feature: "wireguard",
        })
    }
}
