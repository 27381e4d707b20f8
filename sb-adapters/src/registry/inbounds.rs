//! The inbound table: one exhaustive `match` from a config inbound to the closure that
//! builds it. A type sb has no runtime for, or that this build left out, is answered here
//! and nowhere else, so `sb check` and `sb run` give the same verdict.

use super::error::AdapterError;
use crate::inbound::direct::DirectIn;
use crate::inbound::proxy::{Protocols, ProxyInbound};
use sb_config::model::inbound::{HttpMixedInbound, InboundKind};
use sb_config::model::shared::ListenFields;
use sb_core::adapter::Inbound;
use std::sync::Arc;

/// Builds one inbound, given its effective tag.
pub(super) type Builder<'a> = Box<dyn FnOnce(&str) -> Result<Arc<dyn Inbound>, AdapterError> + 'a>;

/// The builder for `kind`, or why there is none.
pub(super) fn builder(kind: &InboundKind) -> Result<Builder<'_>, AdapterError> {
    Ok(match kind {
        InboundKind::Mixed(l, h) => http_like(Protocols::Mixed, l, h),
        InboundKind::Http(l, h) => http_like(Protocols::Http, l, h),
        InboundKind::Socks(l, s) => Box::new(move |tag| {
            Ok(Arc::new(ProxyInbound::new(
                tag,
                Protocols::Socks,
                l.clone(),
                s.users.clone(),
            )))
        }),
        InboundKind::Direct(l, d) => {
            Box::new(move |tag| Ok(Arc::new(DirectIn::new(tag, l.clone(), d.clone()))))
        }
        InboundKind::Tun(t) => tun::builder(t)?,
    })
}

fn http_like<'a>(
    protocols: Protocols,
    listen: &'a ListenFields,
    h: &'a HttpMixedInbound,
) -> Builder<'a> {
    Box::new(move |tag| {
        if h.tls.as_ref().is_some_and(|t| t.enabled) {
            return Err("inbound TLS is not implemented by sb yet".into());
        }
        Ok(Arc::new(ProxyInbound::new(
            tag,
            protocols,
            listen.clone(),
            h.users.clone(),
        )))
    })
}

#[cfg(feature = "tun")]
mod tun {
    use super::{AdapterError, Builder};
    use crate::inbound::tun::TunIn;
    use sb_config::model::tun::TunInbound;
    use std::sync::Arc;

    pub(super) fn builder(t: &TunInbound) -> Result<Builder<'_>, AdapterError> {
        Ok(Box::new(move |tag| Ok(Arc::new(TunIn::new(tag, t)?))))
    }
}

#[cfg(not(feature = "tun"))]
mod tun {
    use super::{AdapterError, Builder};
    use sb_config::model::tun::TunInbound;

    pub(super) fn builder(_: &TunInbound) -> Result<Builder<'_>, AdapterError> {
        Err(AdapterError::NeedsFeature {
            ty: "tun",
            feature: "tun",
        })
    }
}
