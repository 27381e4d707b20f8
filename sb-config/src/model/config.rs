//! The whole document: top-level keys, in the order Go's `format` writes them.

use super::dns::{self, Dns};
use super::endpoint::{self, Endpoint};
use super::experimental::{Experimental, CLASH_REMOVED, CLASH_REMOVED_MESSAGE};
use super::http_client::{self, HttpClient};
use super::inbound::{self, Inbound};
use super::log::Log;
use super::outbound::{self, Outbound};
use super::route::{self, Route};
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::{Kind, Node};
use crate::kinds;
use crate::object::{array, Obj};
use crate::path::Path;
use crate::refs::RefKind;
use serde_json::{Map, Value};

/// A decoded sing-box 1.14 config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// `$schema`, kept for `format`.
    pub schema: String,
    /// `log`.
    pub log: Option<Log>,
    /// `dns`.
    pub dns: Option<Dns>,
    /// `ntp` (accepted only when not enabled: sb has no NTP client).
    pub ntp: Option<Ntp>,
    /// `certificate` (trust store options).
    pub certificate: Option<Certificate>,
    /// `http_clients` (1.14): named HTTP clients for remote rule sets.
    pub http_clients: Vec<HttpClient>,
    /// `endpoints`.
    pub endpoints: Vec<Endpoint>,
    /// `inbounds`.
    pub inbounds: Vec<Inbound>,
    /// `outbounds`.
    pub outbounds: Vec<Outbound>,
    /// `route`.
    pub route: Option<Route>,
    /// `experimental`.
    pub experimental: Option<Experimental>,
}

const TOP_LEVEL_NOT_IMPLEMENTED: &[&str] = &["certificate_providers", "network_namespaces"];

/// Decodes the document root. Only a root that is not an object fails the call: every other
/// error is recorded in [`Ctx::errors`] and decoding goes on with the next element or section,
/// so the returned config is complete only when `ctx.errors` is empty.
pub fn decode(node: &Node, ctx: &mut Ctx) -> Result<Config, DecodeError> {
    let root = Path::root();
    let mut o = Obj::new(node, &root)?;
    let mut c = Config::default();
    let schema = o.take("$schema");
    c.schema = ctx.keep(schema).flatten().unwrap_or_default();
    let log = o.take("log");
    c.log = ctx.keep(log).flatten();
    if let Some((n, p)) = o.take_node("dns") {
        let dns = dns::decode(n, &p, ctx);
        c.dns = ctx.keep(dns);
    }
    if let Some((n, p)) = o.take_node("ntp") {
        let ntp = decode_ntp(n, &p, ctx);
        c.ntp = ctx.keep(ntp);
    }
    let certificate = decode_certificate(&mut o, ctx);
    c.certificate = ctx.keep(certificate).flatten();
    for key in TOP_LEVEL_NOT_IMPLEMENTED {
        if let Some((n, p)) = o.take_node(key) {
            if !matches!(&n.kind, Kind::Array(items) if items.is_empty()) {
                ctx.fail(
                    DecodeError::at(&p, n.span.start, format!("{key} is not implemented by sb"))
                        .mark_not_implemented(),
                );
            }
        }
    }
    let http_clients = array(&mut o, "http_clients", ctx, |n, p, i, ctx| {
        let c = http_client::decode(n, p, ctx)?;
        ctx.define(RefKind::HttpClient, &c.tag, i, n, p);
        Ok(c)
    });
    c.http_clients = ctx.keep(http_clients).unwrap_or_default();
    if let Some((n, p)) = o.take_node("services") {
        if let Err(e) = decode_services(n, &p) {
            ctx.fail(e);
        }
    }
    let endpoints = array(&mut o, "endpoints", ctx, |n, p, i, ctx| {
        let e = endpoint::decode(n, p, i, ctx)?;
        ctx.define(RefKind::Outbound, &e.tag, i, n, p);
        Ok(e)
    });
    c.endpoints = ctx.keep(endpoints).unwrap_or_default();
    let inbounds = array(&mut o, "inbounds", ctx, |n, p, i, ctx| {
        let e = inbound::decode(n, p, i, ctx)?;
        ctx.define(RefKind::Inbound, &e.tag, i, n, p);
        Ok(e)
    });
    c.inbounds = ctx.keep(inbounds).unwrap_or_default();
    let outbounds = array(&mut o, "outbounds", ctx, |n, p, i, ctx| {
        let e = outbound::decode(n, p, i, ctx)?;
        ctx.define(RefKind::Outbound, &e.tag, i, n, p);
        Ok(e)
    });
    c.outbounds = ctx.keep(outbounds).unwrap_or_default();
    if let Some((n, p)) = o.take_node("route") {
        let route = route::decode(n, &p, ctx);
        c.route = ctx.keep(route);
    }
    if let Some((n, p)) = o.take_node("experimental") {
        let experimental = decode_experimental(n, &p, ctx);
        c.experimental = ctx.keep(experimental);
    }
    for e in o.unknown_fields() {
        ctx.fail(e);
    }
    Ok(c)
}

/// `ntp`: decoded in full, then refused when enabled (sb has no NTP client).
fn decode_ntp(n: &Node, p: &Path, ctx: &mut Ctx) -> Result<Ntp, DecodeError> {
    let mut ntp = Obj::new(n, p)?;
    let dial = super::outbound::dial_fields(&mut ntp, ctx)?;
    let options: NtpOptions = ntp.group()?;
    ntp.finish()?;
    if options.enabled {
        return Err(ntp
            .error_at(
                "enabled",
                "ntp is not implemented by sb (sb uses the system clock)",
            )
            .mark_not_implemented());
    }
    Ok(Ntp { dial, options })
}

/// `certificate`, with the files it names read as Go's `check` does.
fn decode_certificate(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<Option<Certificate>, DecodeError> {
    let Some(cert) = o.take::<Certificate>("certificate")? else {
        return Ok(None);
    };
    if !matches!(
        cert.store.as_str(),
        "" | "system" | "mozilla" | "chrome" | "none"
    ) {
        return Err(o.error_at(
            "certificate",
            format!("unknown certificate store: {}", cert.store),
        ));
    }
    for path in cert.certificate_path.iter() {
        ctx.read_file(path).map_err(|e| {
            o.error_at(
                "certificate",
                format!("initializing certificate store: {e}"),
            )
        })?;
    }
    Ok(Some(cert))
}

/// `services`: sb implements none, so the first one is refused by its type.
fn decode_services(n: &Node, p: &Path) -> Result<(), DecodeError> {
    let services: Vec<Value> = crate::de::from_node(n, p)?;
    if let (Some(first), Kind::Array(items)) = (services.first(), &n.kind) {
        let ty = first.get("type").and_then(Value::as_str).unwrap_or("");
        let at = items.first().map_or(n.span.start, |i| i.span.start);
        return Err(if kinds::SERVICES_NOT_IMPLEMENTED.contains(&ty) {
            DecodeError::at(
                &p.index(0),
                at,
                format!("service type {ty:?} is not implemented by sb"),
            )
            .mark_not_implemented()
        } else {
            DecodeError::at(&p.index(0), at, format!("unknown service type {ty:?}"))
        });
    }
    Ok(())
}

/// `experimental`. `v2ray_api` is recorded as not implemented and the rest still decoded.
fn decode_experimental(n: &Node, p: &Path, ctx: &mut Ctx) -> Result<Experimental, DecodeError> {
    let mut e = Obj::new(n, p)?;
    if let Some(m) = e.peek("clash_api") {
        Obj::new(&m.value, &p.key("clash_api"))?.removed(CLASH_REMOVED, CLASH_REMOVED_MESSAGE)?;
        let api = Obj::new(&m.value, &p.key("clash_api"))?;
        api.reference(
            &mut ctx.refs,
            "external_ui_download_detour",
            RefKind::Outbound,
        );
    }
    if let Some(m) = e.peek("cache_file") {
        let cf = Obj::new(&m.value, &p.key("cache_file"))?;
        if let Some(s) = cf.peek("store_rdrc") {
            ctx.warn(&p.key("cache_file").key("store_rdrc"), s.key_span.start, "`store_rdrc` cache file option is deprecated in sing-box 1.14.0 and will be removed in sing-box 1.16.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-store-rdrc");
        }
    }
    if let Some(m) = e.peek("v2ray_api") {
        ctx.fail(
            DecodeError::at(
                &p.key("v2ray_api"),
                m.key_span.start,
                "v2ray_api is not implemented by sb",
            )
            .mark_not_implemented(),
        );
    }
    if let Some(m) = e.peek("debug") {
        ctx.warn(
            &p.key("debug"),
            m.key_span.start,
            "experimental.debug tunes Go's runtime and has no effect in sb",
        );
    }
    let exp: Experimental = e.group()?;
    e.finish()?;
    Ok(exp)
}

fn section(m: &mut Map<String, Value>, key: &str, v: Map<String, Value>) {
    m.insert(key.into(), Value::Object(v));
}

impl Config {
    /// The JSON value `format` writes, before zero values are dropped. Key order follows Go.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("$schema".into(), Value::String(self.schema.clone()));
        if let Some(l) = &self.log {
            m.insert("log".into(), serde_json::to_value(l).unwrap_or(Value::Null));
        }
        if let Some(d) = &self.dns {
            section(&mut m, "dns", d.to_json());
        }
        if let Some(n) = &self.ntp {
            let mut o = Map::new();
            super::typed::extend_json(&mut o, &n.options);
            super::typed::extend_json(&mut o, &n.dial);
            section(&mut m, "ntp", o);
        }
        if let Some(c) = &self.certificate {
            m.insert(
                "certificate".into(),
                serde_json::to_value(c).unwrap_or(Value::Null),
            );
        }
        m.insert(
            "http_clients".into(),
            Value::Array(
                self.http_clients
                    .iter()
                    .map(|c| Value::Object(c.to_json()))
                    .collect(),
            ),
        );
        m.insert(
            "endpoints".into(),
            Value::Array(
                self.endpoints
                    .iter()
                    .map(|e| Value::Object(e.to_json()))
                    .collect(),
            ),
        );
        m.insert(
            "inbounds".into(),
            Value::Array(
                self.inbounds
                    .iter()
                    .map(|e| Value::Object(e.to_json()))
                    .collect(),
            ),
        );
        m.insert(
            "outbounds".into(),
            Value::Array(
                self.outbounds
                    .iter()
                    .map(|e| Value::Object(e.to_json()))
                    .collect(),
            ),
        );
        if let Some(r) = &self.route {
            section(&mut m, "route", r.to_json());
        }
        if let Some(e) = &self.experimental {
            m.insert(
                "experimental".into(),
                serde_json::to_value(e).unwrap_or(Value::Null),
            );
        }
        Value::Object(m)
    }

    /// The tag an inbound is known by: its `tag`, or its index when empty (as Go does).
    pub fn inbound_tag(&self, index: usize) -> String {
        effective_tag(self.inbounds.get(index).map(|i| i.tag.as_str()), index)
    }

    /// The tag an outbound is known by.
    pub fn outbound_tag(&self, index: usize) -> String {
        effective_tag(self.outbounds.get(index).map(|i| i.tag.as_str()), index)
    }

    /// The effective tag of endpoint `index`.
    pub fn endpoint_tag(&self, index: usize) -> String {
        effective_tag(self.endpoints.get(index).map(|e| e.tag.as_str()), index)
    }
}

/// A written tag, or the index when it is empty.
pub fn effective_tag(tag: Option<&str>, index: usize) -> String {
    match tag {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => index.to_string(),
    }
}

/// `ntp`: parsed in full; sb accepts it only when disabled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ntp {
    /// How the NTP server is reached.
    pub dial: super::shared::DialFields,
    /// NTP options.
    pub options: NtpOptions,
}

/// `ntp` options besides dial fields.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NtpOptions {
    /// Enabled (refused by sb).
    pub enabled: bool,
    /// Sync interval.
    pub interval: crate::types::GoDuration,
    /// Set the system clock.
    pub write_to_system: bool,
    /// NTP server.
    pub server: String,
    /// NTP port.
    pub server_port: u16,
}

/// `certificate`: the trust store.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Certificate {
    /// `system`, `mozilla`, `chrome` or `none`.
    pub store: String,
    /// Extra certificates (PEM lines).
    pub certificate: crate::types::Listable<String>,
    /// Extra certificate files.
    pub certificate_path: crate::types::Listable<String>,
    /// Extra certificate directories.
    pub certificate_directory_path: crate::types::Listable<String>,
}
