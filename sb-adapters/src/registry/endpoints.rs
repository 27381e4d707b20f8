//! The endpoint table: one exhaustive `match` from a config endpoint to the closure that
//! builds it (an adapter that is an outbound and an inbound at once, sb-core's
//! [`Endpoint`]). sb-config decodes and checks `wireguard` and `tailscale` fully (Go's
//! construct-time checks included); each is built when its cargo feature is on, and refused
//! by name otherwise, in `sb check` and `sb run` alike.

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
        EndpointKind::Tailscale(dial, ts) => tailscale::builder(dial, ts),
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

#[cfg(feature = "tailscale")]
mod tailscale {
    use super::{AdapterError, Builder};
    use crate::endpoint::tailscale::Tailscale;
    use sb_config::model::endpoint::TailscaleEndpoint;
    use sb_config::model::shared::DialFields;
    use std::sync::Arc;

    pub(super) fn builder<'a>(
        dial: &'a DialFields,
        ts: &'a TailscaleEndpoint,
    ) -> Result<Builder<'a>, AdapterError> {
        Ok(Box::new(move |tag, _| {
            Ok(Arc::new(
                Tailscale::new(tag, dial, ts).map_err(|e| AdapterError::Options(e.to_string()))?,
            ))
        }))
    }
}

#[cfg(not(feature = "tailscale"))]
mod tailscale {
    use super::{AdapterError, Builder};
    use sb_config::model::endpoint::TailscaleEndpoint;
    use sb_config::model::shared::DialFields;

    pub(super) fn builder<'a>(
        _: &'a DialFields,
        _: &'a TailscaleEndpoint,
    ) -> Result<Builder<'a>, AdapterError> {
        Err(AdapterError::NeedsFeature {
            ty: "tailscale",
            feature: "tailscale",
        })
    }
}
