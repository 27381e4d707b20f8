//! `dns.servers[]`: DNS transports (1.12+ typed format). Types `local`, `hosts`, `udp`, `tcp`,
//! `tls`, `https`, `fakeip`.

use super::outbound::dial_fields_with_strategy as dial_fields;
use super::shared::{DialFields, Headers, OutboundTls, LEGACY_DOMAIN_STRATEGY};
use super::typed::{decode_typed, extend_json, typed_json, Family};
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
use crate::kinds;
use crate::path::Path;
use crate::types::{DomainStrategy, Listable, Prefix};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One DNS server.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsServer {
    /// The tag as written; empty means "its index".
    pub tag: String,
    /// Type and options.
    pub kind: DnsServerKind,
}

/// The DNS server types sb implements.
// Built once per config; boxing the larger variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum DnsServerKind {
    /// The system resolver.
    Local(DialFields, LocalServer),
    /// A hosts file and predefined answers.
    Hosts(HostsServer),
    /// DNS over UDP.
    Udp(DialFields, ServerAddr),
    /// DNS over TCP.
    Tcp(DialFields, ServerAddr),
    /// DNS over TLS.
    Tls(DialFields, ServerAddr, TlsField),
    /// DNS over HTTPS.
    Https(DialFields, ServerAddr, TlsField, HttpsServer),
    /// Fake addresses mapped back to domains.
    FakeIp(FakeIpServer),
}

impl DnsServerKind {
    /// The `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            DnsServerKind::Local(..) => "local",
            DnsServerKind::Hosts(..) => "hosts",
            DnsServerKind::Udp(..) => "udp",
            DnsServerKind::Tcp(..) => "tcp",
            DnsServerKind::Tls(..) => "tls",
            DnsServerKind::Https(..) => "https",
            DnsServerKind::FakeIp(..) => "fakeip",
        }
    }

    /// The dial fields of transports that dial.
    pub fn dial(&self) -> Option<&DialFields> {
        match self {
            DnsServerKind::Local(d, _)
            | DnsServerKind::Udp(d, _)
            | DnsServerKind::Tcp(d, _)
            | DnsServerKind::Tls(d, ..)
            | DnsServerKind::Https(d, ..) => Some(d),
            _ => None,
        }
    }
}

/// `local` fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalServer {
    /// Go only: use Go's resolver instead of the platform's.
    pub prefer_go: bool,
    /// Neighbor domains (1.14).
    pub neighbor_domain: Listable<String>,
}

/// `hosts` fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostsServer {
    /// Hosts files; `/etc/hosts` when empty.
    pub path: Listable<String>,
    /// Domain -> addresses.
    pub predefined: BTreeMap<String, Listable<String>>,
}

/// `server` and `server_port`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerAddr {
    /// Address or domain.
    pub server: String,
    /// Port; the transport's default when zero.
    pub server_port: u16,
}

/// `tls` of TLS-based transports.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsField {
    /// TLS options.
    pub tls: Option<OutboundTls>,
}

/// `https` extra fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsServer {
    /// Request path; `/dns-query` when empty.
    pub path: String,
    /// HTTP method (`GET` or `POST`).
    pub method: String,
    /// Extra headers.
    pub headers: Headers,
}

/// `fakeip` fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeIpServer {
    /// IPv4 pool, e.g. `198.18.0.0/15`.
    pub inet4_range: Option<Prefix>,
    /// IPv6 pool, e.g. `fc00::/18`.
    pub inet6_range: Option<Prefix>,
}

const FAMILY: Family = Family {
    noun: "DNS server",
    implemented: kinds::DNS_SERVERS,
    missing: kinds::DNS_SERVERS_NOT_IMPLEMENTED,
    removed: &[],
};

const LEGACY: &str = "legacy DNS server formats are deprecated in sing-box 1.12.0 and removed in sing-box 1.14.0, checkout migration: https://sing-box.sagernet.org/migration/#migrate-to-new-dns-server-formats";

fn server_addr(
    o: &mut crate::object::Obj<'_>,
    dial: &DialFields,
) -> Result<ServerAddr, DecodeError> {
    let a: ServerAddr = o.group()?;
    if a.server.is_empty() {
        return Err(o.error("missing server address"));
    }
    // A server given by name needs a resolver of its own; `route.default_domain_resolver`
    // does not apply to DNS servers (Go's rule, #3232).
    if a.server.parse::<std::net::IpAddr>().is_err()
        && dial.domain_resolver.is_none()
        && dial.detour.is_empty()
    {
        return Err(o.error_at(
            "server",
            "missing domain resolver for domain server address",
        ));
    }
    Ok(a)
}

/// The deprecated dial `domain_strategy` of a DNS server. Go 1.14 uses it in one case only: as
/// the strategy for resolving the server's own name through a `domain_resolver` that sets
/// none; that use is the deprecated feature, and Go 1.14.4 refuses it (sb gives Go's text).
/// Everywhere else Go ignores it silently; sb accepts it with a warning saying so. `server`
/// is the server address, `None` for `local`, which has no name to resolve.
fn legacy_strategy(
    o: &crate::object::Obj<'_>,
    ctx: &mut Ctx,
    dial: &DialFields,
    server: Option<&str>,
) -> Result<(), DecodeError> {
    let Some(m) = o.peek("domain_strategy") else {
        return Ok(());
    };
    if dial.domain_strategy == DomainStrategy::AsIs {
        return Ok(());
    }
    let path = o.path().key("domain_strategy");
    let resolver = dial
        .domain_resolver
        .as_ref()
        .map(|r| &r.0)
        .filter(|r| !r.server.is_empty());
    let reason = match (server, resolver) {
        (None, _) => "a `local` server has no server name to resolve",
        (Some(s), _) if s.parse::<std::net::IpAddr>().is_ok() => "`server` is an IP address",
        (Some(_), Some(r)) if r.strategy != DomainStrategy::AsIs => {
            "`domain_resolver.strategy` is set and is used instead"
        }
        (Some(_), Some(_)) => {
            return Err(DecodeError::at(
                &path,
                m.key_span.start,
                LEGACY_DOMAIN_STRATEGY,
            ))
        }
        (Some(_), None) => "the `detour` outbound resolves the server's name",
    };
    ctx.warn(
        &path,
        m.key_span.start,
        format!(
            "`domain_strategy` has no effect in this DNS server: Go 1.14 uses it only as the \
             strategy for resolving the server's own name through `domain_resolver`, and \
             {reason}; sb's runtime ignores it (set `domain_resolver.strategy` to choose how \
             the server's name is resolved)"
        ),
    );
    Ok(())
}

/// Decodes `dns.servers[index]`.
pub fn decode(
    node: &Node,
    path: &Path,
    index: usize,
    ctx: &mut Ctx,
) -> Result<DnsServer, DecodeError> {
    // A server with `address` and no `type` is the pre-1.12 format, removed in 1.14.
    let probe = crate::object::Obj::new(node, path)?;
    if !probe.has("type") && probe.has("address") {
        return Err(probe.error(LEGACY));
    }
    let (tag, kind) = decode_typed(node, path, index, &FAMILY, ctx, |ty, o, ctx| {
        let kind = match ty {
            "local" => {
                let dial = dial_fields(o, ctx)?;
                legacy_strategy(o, ctx, &dial, None)?;
                let local: LocalServer = o.group()?;
                if let Some(bad) = local.neighbor_domain.iter().find(|d| !d.starts_with('.')) {
                    return Err(o.error_at(
                        "neighbor_domain",
                        format!("neighbor_domain entry must start with '.': {bad}"),
                    ));
                }
                DnsServerKind::Local(dial, local)
            }
            "hosts" => {
                let h: HostsServer = o.group()?;
                for (domain, ips) in &h.predefined {
                    if let Some(bad) = ips
                        .iter()
                        .find(|ip| ip.parse::<std::net::IpAddr>().is_err())
                    {
                        return Err(o.error_at(
                            "predefined",
                            format!("{domain}: invalid IP address {bad:?}"),
                        ));
                    }
                }
                DnsServerKind::Hosts(h)
            }
            "udp" => {
                let d = dial_fields(o, ctx)?;
                let a = server_addr(o, &d)?;
                legacy_strategy(o, ctx, &d, Some(&a.server))?;
                DnsServerKind::Udp(d, a)
            }
            "tcp" => {
                let d = dial_fields(o, ctx)?;
                let a = server_addr(o, &d)?;
                legacy_strategy(o, ctx, &d, Some(&a.server))?;
                DnsServerKind::Tcp(d, a)
            }
            "tls" => {
                let d = dial_fields(o, ctx)?;
                let a = server_addr(o, &d)?;
                legacy_strategy(o, ctx, &d, Some(&a.server))?;
                let t: TlsField = o.group()?;
                if let Some(tls) = &t.tls {
                    super::check::outbound_tls(tls, ctx).map_err(|e| o.error_at("tls", e))?;
                }
                DnsServerKind::Tls(d, a, t)
            }
            "https" => {
                let d = dial_fields(o, ctx)?;
                let a = server_addr(o, &d)?;
                legacy_strategy(o, ctx, &d, Some(&a.server))?;
                let t: TlsField = o.group()?;
                if let Some(tls) = &t.tls {
                    super::check::outbound_tls(tls, ctx).map_err(|e| o.error_at("tls", e))?;
                }
                DnsServerKind::Https(d, a, t, o.group()?)
            }
            _ => {
                let f: FakeIpServer = o.group()?;
                if f.inet4_range.is_none() && f.inet6_range.is_none() {
                    return Err(o.error("missing inet4_range or inet6_range"));
                }
                DnsServerKind::FakeIp(f)
            }
        };
        o.finish()?;
        Ok(kind)
    })?;
    Ok(DnsServer { tag, kind })
}

impl DnsServer {
    /// The JSON object `format` writes.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = typed_json(self.kind.type_name(), &self.tag);
        match &self.kind {
            DnsServerKind::Local(d, l) => {
                extend_json(&mut m, d);
                extend_json(&mut m, l);
            }
            DnsServerKind::Hosts(h) => extend_json(&mut m, h),
            DnsServerKind::Udp(d, a) | DnsServerKind::Tcp(d, a) => {
                extend_json(&mut m, d);
                extend_json(&mut m, a);
            }
            DnsServerKind::Tls(d, a, t) => {
                extend_json(&mut m, d);
                extend_json(&mut m, a);
                extend_json(&mut m, t);
            }
            DnsServerKind::Https(d, a, t, h) => {
                extend_json(&mut m, d);
                extend_json(&mut m, a);
                extend_json(&mut m, t);
                extend_json(&mut m, h);
            }
            DnsServerKind::FakeIp(f) => extend_json(&mut m, f),
        }
        m
    }
}
