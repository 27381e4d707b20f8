//! The outbound table: one exhaustive `match` from a config outbound to the closure that
//! builds it. Groups come back as their own types so the registry can bind their members
//! and hand them to the Clash API without a side channel.

use super::dial::DialCtx;
use super::error::AdapterError;
use crate::outbound::block::Block;
use crate::outbound::direct::Direct;
use crate::outbound::http::HttpProxy;
use crate::outbound::selector::Selector;
use crate::outbound::socks::{Socks, Version};
use crate::outbound::ssh::Ssh;
use crate::outbound::uot;
use crate::outbound::urltest::UrlTest;
use sb_config::model::outbound::SshOutbound;
use sb_config::model::outbound::{HttpOutbound, OutboundKind, SocksOutbound, SocksVersion};
use sb_config::model::shared::DialFields;
use sb_config::types::{Listable, Network as ConfigNetwork};
use sb_core::adapter::Outbound;
use sb_core::flow::{Destination, Network};
use std::sync::Arc;

/// A built outbound, groups kept as their own types.
pub(super) enum Made {
    /// Any outbound that is not a group.
    Plain(Arc<dyn Outbound>),
    /// A `selector`.
    Selector(Arc<Selector>),
    /// A `urltest` group.
    UrlTest(Arc<UrlTest>),
}

impl Made {
    /// The outbound the dispatcher routes to.
    pub fn outbound(&self) -> Arc<dyn Outbound> {
        match self {
            Made::Plain(o) => o.clone(),
            Made::Selector(s) => s.clone(),
            Made::UrlTest(u) => u.clone(),
        }
    }
}

/// Builds one outbound, given its effective tag.
pub(super) type Builder<'a> =
    Box<dyn FnOnce(&str, &DialCtx<'_>) -> Result<Made, AdapterError> + 'a>;

/// The builder for `kind`, or why there is none.
pub(super) fn builder(kind: &OutboundKind) -> Result<Builder<'_>, AdapterError> {
    Ok(match kind {
        OutboundKind::Direct(d) => {
            Box::new(move |tag, ctx| Ok(Made::Plain(Arc::new(Direct::new(tag, ctx.dialer(d))))))
        }
        OutboundKind::Block => Box::new(|tag, _| Ok(Made::Plain(Arc::new(Block::new(tag))))),
        OutboundKind::Socks(d, s) => Box::new(move |tag, ctx| socks(tag, d, s, ctx)),
        OutboundKind::Http(d, h) => Box::new(move |tag, ctx| http(tag, d, h, ctx)),
        OutboundKind::Ssh(d, s) => Box::new(move |tag, ctx| ssh(tag, d, s, ctx)),
        OutboundKind::Selector(s) => Box::new(move |tag, _| {
            Ok(Made::Selector(Arc::new(Selector::new(
                tag,
                s.outbounds.clone(),
                &s.default,
                s.interrupt_exist_connections,
            ))))
        }),
        OutboundKind::UrlTest(u) => Box::new(move |tag, _| Ok(Made::UrlTest(UrlTest::new(tag, u)))),
        OutboundKind::Tor(d, t) => tor::builder(d, t)?,
    })
}

/// A proxy server's address from `server` / `server_port`.
fn server(host: &str, port: u16) -> Result<Destination, AdapterError> {
    if host.is_empty() {
        return Err("missing server address".into());
    }
    if port == 0 {
        return Err("missing server port".into());
    }
    Ok(Destination::from_host(host, port))
}

fn credentials(user: &str, pass: &str) -> Option<(String, String)> {
    (!user.is_empty()).then(|| (user.to_string(), pass.to_string()))
}

/// A config `network` list as the networks an outbound carries (both when empty).
fn networks(list: &Listable<ConfigNetwork>) -> &'static [Network] {
    let (tcp, udp) = (
        list.iter().any(|n| *n == ConfigNetwork::Tcp),
        list.iter().any(|n| *n == ConfigNetwork::Udp),
    );
    match (tcp, udp) {
        (true, false) => &[Network::Tcp],
        (false, true) => &[Network::Udp],
        _ => &[Network::Tcp, Network::Udp],
    }
}

fn socks(
    tag: &str,
    d: &DialFields,
    s: &SocksOutbound,
    ctx: &DialCtx<'_>,
) -> Result<Made, AdapterError> {
    let uot = match s.udp_over_tcp {
        Some(u) if u.0.enabled => Some(
            uot::Version::from_config(u.0.version)
                .ok_or_else(|| format!("udp_over_tcp: unknown version {}", u.0.version))?,
        ),
        _ => None,
    };
    let version = match s.version {
        Some(SocksVersion::V4) => Version::V4,
        Some(SocksVersion::V4a) => Version::V4a,
        _ => Version::V5,
    };
    let server = server(&s.server, s.server_port)?;
    Ok(Made::Plain(Arc::new(Socks::new(
        tag,
        server,
        version,
        credentials(&s.username, &s.password),
        ctx.dialer(d),
        networks(&s.network),
        uot,
    ))))
}

fn http(
    tag: &str,
    d: &DialFields,
    h: &HttpOutbound,
    ctx: &DialCtx<'_>,
) -> Result<Made, AdapterError> {
    if h.tls.as_ref().is_some_and(|t| t.enabled) {
        return Err("TLS to the HTTP proxy is not implemented by sb yet".into());
    }
    if !h.path.is_empty() {
        return Err("`path` on the http outbound is not implemented by sb yet".into());
    }
    let headers = h
        .headers
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect();
    let server = server(&h.server, h.server_port)?;
    Ok(Made::Plain(Arc::new(HttpProxy::new(
        tag,
        server,
        credentials(&h.username, &h.password),
        headers,
        ctx.dialer(d),
    ))))
}

fn ssh(
    tag: &str,
    d: &DialFields,
    s: &SshOutbound,
    ctx: &DialCtx<'_>,
) -> Result<Made, AdapterError> {
    // Go's default port.
    let port = if s.server_port == 0 {
        22
    } else {
        s.server_port
    };
    let server = server(&s.server, port)?;
    Ok(Made::Plain(Arc::new(Ssh::new(
        tag,
        server,
        s,
        ctx.dialer(d),
    )?)))
}

#[cfg(feature = "tor")]
mod tor {
    use super::{AdapterError, Builder, Made};
    use crate::outbound::tor::Tor;
    use sb_config::model::outbound::TorOutbound;
    use sb_config::model::shared::DialFields;
    use std::sync::Arc;

    pub(super) fn builder<'a>(
        dial: &'a DialFields,
        t: &'a TorOutbound,
    ) -> Result<Builder<'a>, AdapterError> {
        Ok(Box::new(move |tag, ctx| {
            Ok(Made::Plain(Arc::new(Tor::new(tag, t, ctx.dialer(dial))?)))
        }))
    }
}

#[cfg(not(feature = "tor"))]
mod tor {
    use super::{AdapterError, Builder};
    use sb_config::model::outbound::TorOutbound;
    use sb_config::model::shared::DialFields;

    pub(super) fn builder<'a>(
        _: &'a DialFields,
        _: &'a TorOutbound,
    ) -> Result<Builder<'a>, AdapterError> {
        Err(AdapterError::NeedsFeature {
            ty: "tor",
            feature: "tor",
        })
    }
}
