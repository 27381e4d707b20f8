//! `inbounds[]`: where flows enter sb. Types `direct`, `mixed`, `socks`, `http`, `tun`.

use super::shared::{DomainResolver, InboundTls, ListenFields, User, LISTEN_REMOVED};
use super::tun::TunInbound;
use super::typed::{decode_typed, extend_json, reject_removed, typed_json, Family};
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
use crate::kinds;
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{DomainStrategy, GoDuration, Listable, Network};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One inbound.
#[derive(Clone, Debug, PartialEq)]
pub struct Inbound {
    /// The tag as written; empty means "its index" (see [`crate::Config::inbound_tag`]).
    pub tag: String,
    /// Type and options.
    pub kind: InboundKind,
}

/// The inbound types sb implements.
// Built once per config; boxing the larger variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum InboundKind {
    /// `direct`: a tunnel to a fixed or original destination.
    Direct(ListenFields, DirectInbound),
    /// `mixed`: SOCKS4/4a/5 and HTTP proxy on one port.
    Mixed(ListenFields, HttpMixedInbound),
    /// `socks`: SOCKS4/4a/5 proxy.
    Socks(ListenFields, SocksInbound),
    /// `http`: HTTP proxy.
    Http(ListenFields, HttpMixedInbound),
    /// `tun`: a TUN device with a userspace TCP/IP stack.
    Tun(TunInbound),
}

impl InboundKind {
    /// The `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            InboundKind::Direct(..) => "direct",
            InboundKind::Mixed(..) => "mixed",
            InboundKind::Socks(..) => "socks",
            InboundKind::Http(..) => "http",
            InboundKind::Tun(..) => "tun",
        }
    }

    /// The listen fields, for inbounds that listen on a socket.
    pub fn listen(&self) -> Option<&ListenFields> {
        match self {
            InboundKind::Direct(l, _)
            | InboundKind::Mixed(l, _)
            | InboundKind::Socks(l, _)
            | InboundKind::Http(l, _) => Some(l),
            InboundKind::Tun(_) => None,
        }
    }
}

/// `direct` inbound options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectInbound {
    /// `tcp`, `udp` or both (empty).
    pub network: Listable<Network>,
    /// Destination address to use instead of the original one.
    pub override_address: String,
    /// Destination port to use instead of the original one.
    pub override_port: u16,
}

/// `mixed` and `http` inbound options (Go's `HTTPMixedInboundOptions`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpMixedInbound {
    /// Accepted users; empty means no authentication.
    pub users: Vec<User>,
    /// Present in Go's options and schema but unused by Go's protocol code.
    pub domain_resolver: Option<DomainResolver>,
    /// Set the system proxy (desktop platforms).
    pub set_system_proxy: bool,
    /// Inbound TLS.
    pub tls: Option<InboundTls>,
}

/// `socks` inbound options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocksInbound {
    /// Accepted users; empty means no authentication.
    pub users: Vec<User>,
    /// Present in Go's options and schema but unused by Go's protocol code.
    pub domain_resolver: Option<DomainResolver>,
}

/// Go's `InboundOptions`: the fields rule actions replaced. Every inbound type still decodes
/// them (`tun` too) and refuses any that is set with Go's migration message; a zero value
/// (`"sniff": false`, as some clients write) is accepted silently, as in Go.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LegacyInbound {
    sniff: bool,
    sniff_override_destination: bool,
    sniff_timeout: GoDuration,
    domain_strategy: DomainStrategy,
    udp_disable_domain_unmapping: bool,
}

const LEGACY_INBOUND: &str = "legacy inbound fields are deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-legacy-inbound-fields-to-rule-actions";

impl LegacyInbound {
    /// Fails at the first field (in the document) that is set. Called after the rest of the
    /// object is decoded, because Go finds every decoding error before this one.
    fn check(&self, o: &Obj<'_>) -> Result<(), DecodeError> {
        let set = [
            ("sniff", self.sniff),
            (
                "sniff_override_destination",
                self.sniff_override_destination,
            ),
            ("sniff_timeout", !self.sniff_timeout.is_zero()),
            (
                "domain_strategy",
                self.domain_strategy != DomainStrategy::AsIs,
            ),
            (
                "udp_disable_domain_unmapping",
                self.udp_disable_domain_unmapping,
            ),
        ];
        let first = set
            .iter()
            .filter(|(_, on)| *on)
            .filter_map(|(key, _)| o.peek(key).map(|m| (*key, m.key_span.start)))
            .min_by_key(|(_, at)| *at);
        match first {
            Some((key, at)) => Err(DecodeError::at(&o.path().key(key), at, LEGACY_INBOUND)),
            None => Ok(()),
        }
    }
}

const FAMILY: Family = Family {
    noun: "inbound",
    implemented: kinds::INBOUNDS,
    missing: kinds::INBOUNDS_NOT_IMPLEMENTED,
    removed: &[],
};

fn listening<T: serde::de::DeserializeOwned>(
    o: &mut Obj<'_>,
    ctx: &mut Ctx,
) -> Result<(ListenFields, T), DecodeError> {
    reject_removed(o, LISTEN_REMOVED)?;
    o.reference(&mut ctx.refs, "detour", RefKind::Inbound);
    o.reference(&mut ctx.refs, "domain_resolver", RefKind::DnsServer);
    if let Some(m) = o.peek("domain_resolver") {
        if let crate::jsonc::Kind::Object(_) = m.value.kind {
            let inner = Obj::new(&m.value, &o.path().key("domain_resolver"))?;
            inner.reference(&mut ctx.refs, "server", RefKind::DnsServer);
        }
    }
    let listen = o.group()?;
    let opts = o.group()?;
    Ok((listen, opts))
}

/// Decodes `inbounds[index]`.
pub fn decode(
    node: &Node,
    path: &Path,
    index: usize,
    ctx: &mut Ctx,
) -> Result<Inbound, DecodeError> {
    let (tag, kind) = decode_typed(node, path, index, &FAMILY, ctx, |ty, o, ctx| {
        let kind = match ty {
            "direct" => {
                let (l, d): (ListenFields, DirectInbound) = listening(o, ctx)?;
                InboundKind::Direct(l, d)
            }
            "mixed" => {
                let (l, m): (ListenFields, HttpMixedInbound) = listening(o, ctx)?;
                if let Some(tls) = &m.tls {
                    super::check::inbound_tls(tls, ctx).map_err(|e| o.error_at("tls", e))?;
                }
                InboundKind::Mixed(l, m)
            }
            "socks" => {
                let (l, s) = listening(o, ctx)?;
                InboundKind::Socks(l, s)
            }
            "http" => {
                let (l, h): (ListenFields, HttpMixedInbound) = listening(o, ctx)?;
                if let Some(tls) = &h.tls {
                    super::check::inbound_tls(tls, ctx).map_err(|e| o.error_at("tls", e))?;
                }
                InboundKind::Http(l, h)
            }
            _ => InboundKind::Tun(super::tun::decode(o, ctx)?),
        };
        let legacy: LegacyInbound = o.group()?;
        o.finish()?;
        legacy.check(o)?;
        Ok(kind)
    })?;
    Ok(Inbound { tag, kind })
}

impl Inbound {
    /// The JSON object `format` writes (before zero values are dropped).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = typed_json(self.kind.type_name(), &self.tag);
        match &self.kind {
            InboundKind::Direct(l, d) => {
                extend_json(&mut m, l);
                extend_json(&mut m, d);
            }
            InboundKind::Mixed(l, h) | InboundKind::Http(l, h) => {
                extend_json(&mut m, l);
                extend_json(&mut m, h);
            }
            InboundKind::Socks(l, s) => {
                extend_json(&mut m, l);
                extend_json(&mut m, s);
            }
            InboundKind::Tun(t) => extend_json(&mut m, t),
        }
        m
    }
}
