//! Builds [`Dns`] from the `dns` section: one transport per `dns.servers` entry (with Go's
//! default ports), the rules, `final`, the cache, and the `predefined` answers parsed once.
//! Dialers come from the caller (the registry applies dial fields, `detour` and
//! `domain_resolver` the same way it does for outbounds).

use super::cache::Cache;
use super::client::{Parts, Predefined};
use super::fakeip::{FakeIp, FakeIpTransport};
use super::hosts::HostsTransport;
use super::https::{HttpsOptions, HttpsTransport};
use super::local::LocalTransport;
use super::rules::compile_rules;
use super::stream::StreamTransport;
use super::tls::TlsClient;
use super::transport::BoxTransport;
use super::udp::UdpTransport;
use super::{BuildError, Dns, RecordError, RuleError, ServerError, DEFAULT_TIMEOUT};
use crate::dialer::Dialer;
use crate::flow::Destination;
use crate::router::rule::RuleSets;
use crate::router::ClashMode;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::txt::Parser;
use ipnet::IpNet;
use sb_config::model::dns::{Dns as DnsSection, DnsAction};
use sb_config::model::dns_record::Record as RecordText;
use sb_config::model::dns_server::{DnsServerKind, ServerAddr};
use sb_config::model::shared::DialFields;
use sb_config::types::Listable;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Builds the module. `dialer` makes a server's dialer from its dial fields.
pub fn build(
    section: Option<&DnsSection>,
    dialer: &dyn Fn(&DialFields) -> Dialer,
    sets: &RuleSets,
    clash_mode: Arc<ClashMode>,
) -> Result<Arc<Dns>, BuildError> {
    let default_section = DnsSection::default();
    let section = section.unwrap_or(&default_section);
    let o = &section.options;
    let timeout = if o.timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        o.timeout.to_std()
    };
    let mut transports: Vec<BoxTransport> = Vec::new();
    for (index, s) in section.servers.iter().enumerate() {
        let tag = if s.tag.is_empty() {
            index.to_string()
        } else {
            s.tag.clone()
        };
        let err = |reason: ServerError| BuildError::Server {
            index,
            tag: tag.clone(),
            reason,
        };
        transports.push(server(&tag, &s.kind, dialer, timeout).map_err(err)?);
    }
    if transports.is_empty() {
        // No servers: Go's automatic `local`.
        transports.push(Arc::new(LocalTransport::new(
            "local",
            Arc::new(dialer(&DialFields::default())),
            timeout,
            "/etc/resolv.conf".into(),
        )));
    }
    let default = if o.final_.is_empty() {
        0
    } else {
        transports
            .iter()
            .position(|t| t.tag() == o.final_)
            .ok_or_else(|| BuildError::NoDefault(o.final_.clone()))?
    };
    if transports
        .get(default)
        .is_some_and(|t| t.fakeip().is_some())
    {
        return Err(BuildError::FakeIpDefault);
    }
    let rules = compile_rules(&section.rules, sets)
        .map_err(|(index, reason)| BuildError::Rule { index, reason })?;
    let mut predefined = HashMap::new();
    for (i, r) in section.rules.iter().enumerate() {
        if let DnsAction::Predefined(p) = &r.action {
            let parse = |l: &Listable<RecordText>| -> Result<Vec<Record>, BuildError> {
                l.iter()
                    .map(|t| {
                        parse_record(&t.0).map_err(|e| BuildError::Rule {
                            index: i,
                            reason: RuleError::Record(e),
                        })
                    })
                    .collect()
            };
            let rcode = match &p.rcode {
                None => ResponseCode::NoError,
                Some(r) => ResponseCode::from(0, r.code().unwrap_or(0) as u8),
            };
            predefined.insert(
                i,
                Predefined {
                    rcode,
                    answer: parse(&p.answer)?,
                    ns: parse(&p.ns)?,
                    extra: parse(&p.extra)?,
                },
            );
        }
    }
    let capacity = o.cache_capacity.max(1024) as usize;
    Ok(Dns::new(Parts {
        transports,
        default,
        rules,
        predefined,
        strategy: o.strategy,
        cache: (!o.disable_cache).then(|| Cache::new(o.cache_capacity, o.disable_expire)),
        client_subnet: o.client_subnet.as_ref().map(|c| c.net),
        reverse_capacity: if o.reverse_mapping { capacity } else { 0 },
        configured: !section.servers.is_empty(),
        clash_mode,
    }))
}

/// One zone-format record (`a.test. 60 IN A 10.0.0.1`).
pub fn parse_record(text: &str) -> Result<Record, RecordError> {
    let (_, sets) = Parser::new(text, None, Some(Name::root()))
        .parse()
        .map_err(|error| RecordError::Parse {
            text: text.to_string(),
            error,
        })?;
    let mut records = sets
        .into_values()
        .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>());
    let first = records
        .next()
        .ok_or_else(|| RecordError::Empty(text.to_string()))?;
    Ok(first)
}

fn destination(a: &ServerAddr, default_port: u16) -> Destination {
    let port = if a.server_port == 0 {
        default_port
    } else {
        a.server_port
    };
    match a.server.parse::<IpAddr>() {
        Ok(ip) => Destination::from_socket((ip, port).into()),
        Err(_) => Destination::from_host(&a.server, port),
    }
}

fn server(
    tag: &str,
    kind: &DnsServerKind,
    dialer: &dyn Fn(&DialFields) -> Dialer,
    timeout: std::time::Duration,
) -> Result<BoxTransport, ServerError> {
    Ok(match kind {
        DnsServerKind::Local(d, l) => {
            if l.prefer_go || !l.neighbor_domain.is_empty() {
                return Err(ServerError::LocalOptions);
            }
            Arc::new(LocalTransport::new(
                tag,
                Arc::new(dialer(d)),
                timeout,
                "/etc/resolv.conf".into(),
            ))
        }
        DnsServerKind::Hosts(h) => {
            let files: Vec<String> = if h.path.is_empty() {
                vec!["/etc/hosts".into()]
            } else {
                h.path.iter().cloned().collect()
            };
            let predefined = h
                .predefined
                .iter()
                .map(|(name, ips)| {
                    let ips = ips
                        .iter()
                        .map(|s| {
                            s.parse::<IpAddr>()
                                .map_err(|error| ServerError::PredefinedAddress {
                                    name: name.clone(),
                                    error,
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((name.clone(), ips))
                })
                .collect::<Result<Vec<_>, ServerError>>()?;
            Arc::new(HostsTransport::new(tag, &files, &predefined)?)
        }
        DnsServerKind::Udp(d, a) => Arc::new(UdpTransport::new(
            tag,
            destination(a, 53),
            Arc::new(dialer(d)),
            timeout,
        )),
        DnsServerKind::Tcp(d, a) => Arc::new(StreamTransport::tcp(
            tag,
            destination(a, 53),
            Arc::new(dialer(d)),
            timeout,
        )),
        DnsServerKind::Tls(d, a, t) => {
            let tls = TlsClient::new(t.tls.as_ref(), &a.server, &["dot"])?;
            Arc::new(StreamTransport::tls(
                tag,
                destination(a, 853),
                Arc::new(dialer(d)),
                tls,
                timeout,
            ))
        }
        DnsServerKind::Https(d, a, t, h) => {
            let tls = TlsClient::new(t.tls.as_ref(), &a.server, &["h2", "http/1.1"])?;
            let dest = destination(a, 443);
            let host_name = t
                .tls
                .as_ref()
                .map(|t| t.server_name.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| a.server.clone());
            let host = match (host_name.parse::<IpAddr>(), dest.port) {
                (Ok(IpAddr::V6(v6)), 443) => format!("[{v6}]"),
                (Ok(IpAddr::V6(v6)), p) => format!("[{v6}]:{p}"),
                (_, 443) => host_name,
                (_, p) => format!("{host_name}:{p}"),
            };
            let method = h.method.to_ascii_uppercase();
            if !method.is_empty() && method != "GET" && method != "POST" {
                return Err(ServerError::HttpsMethod(h.method.clone()));
            }
            let options = HttpsOptions {
                host,
                path: if h.path.is_empty() {
                    "/dns-query".into()
                } else {
                    h.path.clone()
                },
                get: method == "GET",
                headers: h
                    .headers
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                    .collect(),
            };
            Arc::new(HttpsTransport::new(
                tag,
                dest,
                Arc::new(dialer(d)),
                tls,
                options,
                timeout,
            ))
        }
        DnsServerKind::FakeIp(f) => {
            let v4 = match f.inet4_range.as_ref().map(|p| p.0) {
                Some(IpNet::V4(n)) => Some(n),
                Some(IpNet::V6(_)) => return Err(ServerError::Inet4Range),
                None => None,
            };
            let v6 = match f.inet6_range.as_ref().map(|p| p.0) {
                Some(IpNet::V6(n)) => Some(n),
                Some(IpNet::V4(_)) => return Err(ServerError::Inet6Range),
                None => None,
            };
            Arc::new(FakeIpTransport(Arc::new(FakeIp::new(tag, v4, v6))))
        }
    })
}
