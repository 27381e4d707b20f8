//! HTTP clients (sing-box 1.14): the top-level `http_clients[]` entries, and the
//! `http_client` field of remote rule sets, which names one of them or is an inline object of
//! the same options. The runtime (sb-adapters' registry) builds them on sb-core's HTTP
//! client; this module only decodes, checks and formats them as Go does.
//!
//! Which fields exist depends on `version`: 1 has none beyond the common ones, 2 (the
//! default) adds the HTTP/2 fields, 3 the QUIC fields (the HTTP/2 ones plus
//! `initial_packet_size` and `disable_path_mtu_discovery`); any other field is unknown, as in
//! Go. `format` writes an unset `version` as 2, Go's default.

use super::outbound::dial_fields;
use super::shared::{DialFields, Headers, OutboundTls};
use super::typed::extend_json;
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::{Kind, Node};
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{keep_some, GoDuration, MemoryBytes};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Go's default `version`.
pub const DEFAULT_VERSION: u8 = 2;

/// One `http_clients[]` entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpClient {
    /// Its tag (required).
    pub tag: String,
    /// What it does.
    pub options: HttpClientOptions,
}

/// The options of an HTTP client, named or inline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpClientOptions {
    /// The common fields.
    pub common: CommonFields,
    /// Go's `version`, with 0 read as [`DEFAULT_VERSION`].
    pub version: u8,
    /// HTTP/2 fields (versions 2 and 3).
    pub http2: Http2Fields,
    /// QUIC-only fields (version 3).
    pub quic: QuicFields,
    /// TLS for `https` URLs.
    pub tls: Option<OutboundTls>,
    /// How connections are made.
    pub dial: DialFields,
}

/// The fields every version has.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommonFields {
    /// `go` (the default) or `apple`; Go checks it when the client is built.
    pub engine: String,
    /// Do not fall back to a lower HTTP version.
    pub disable_version_fallback: bool,
    /// Headers sent with every request; `Host` names the request host.
    pub headers: Headers,
}

/// HTTP/2 (and QUIC) connection fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http2Fields {
    /// Close a connection idle this long.
    pub idle_timeout: GoDuration,
    /// PING interval.
    pub keep_alive_period: GoDuration,
    /// Initial stream receive window.
    #[serde(serialize_with = "keep_some")]
    pub stream_receive_window: Option<MemoryBytes>,
    /// Initial connection receive window.
    #[serde(serialize_with = "keep_some")]
    pub connection_receive_window: Option<MemoryBytes>,
    /// Streams per connection.
    pub max_concurrent_streams: i64,
}

/// Fields only HTTP/3 has.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuicFields {
    /// First packet size.
    pub initial_packet_size: i64,
    /// Turn off path MTU discovery.
    pub disable_path_mtu_discovery: bool,
}

/// A remote rule set's `http_client`: a tag of `http_clients`, or inline options.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpClientRef {
    /// The tag of an `http_clients` entry.
    Tag(String),
    /// Options of its own.
    Inline(Box<HttpClientOptions>),
}

/// Decodes the options in `o` (everything but `tag`).
fn decode_options(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<HttpClientOptions, DecodeError> {
    let version: i64 = o.take("version")?.unwrap_or(0);
    let version = match version {
        0 => DEFAULT_VERSION,
        1..=3 => version as u8,
        v => return Err(o.error(format!("unknown HTTP version: {v}"))),
    };
    let common: CommonFields = o.group()?;
    let (http2, quic) = match version {
        1 => Default::default(),
        2 => (o.group()?, QuicFields::default()),
        _ => (o.group()?, o.group()?),
    };
    let tls: Option<OutboundTls> = o.take("tls")?;
    let dial = dial_fields(o, ctx)?;
    o.finish()?;
    Ok(HttpClientOptions {
        common,
        version,
        http2,
        quic,
        tls,
        dial,
    })
}

/// Decodes `http_clients[index]`.
pub fn decode(node: &Node, path: &Path, ctx: &mut Ctx) -> Result<HttpClient, DecodeError> {
    let mut o = Obj::new(node, path)?;
    let tag: String = o.take("tag")?.unwrap_or_default();
    if tag.is_empty() {
        return Err(o.error("missing http client tag"));
    }
    let options = decode_options(&mut o, ctx).map_err(|e| e.with_tag(&tag))?;
    Ok(HttpClient { tag, options })
}

/// Decodes an `http_client` member: a tag (recorded as a reference), an inline object, or
/// nothing. As in Go, an empty string, `null`, and an object holding only empty objects and
/// arrays all mean "not set".
pub fn decode_ref(
    node: &Node,
    path: &Path,
    ctx: &mut Ctx,
) -> Result<Option<HttpClientRef>, DecodeError> {
    match &node.kind {
        Kind::Null => Ok(None),
        Kind::String(s) if s.is_empty() => Ok(None),
        Kind::String(s) => {
            ctx.refs.add_node(RefKind::HttpClient, node, path);
            Ok(Some(HttpClientRef::Tag(s.clone())))
        }
        Kind::Object(_) if hollow(node) => Ok(None),
        Kind::Object(_) => {
            let mut o = Obj::new(node, path)?;
            Ok(Some(HttpClientRef::Inline(Box::new(decode_options(
                &mut o, ctx,
            )?))))
        }
        _ => Err(DecodeError::at(
            path,
            node.span.start,
            format!(
                "expected an http_clients tag or an object, found {}",
                node.describe()
            ),
        )),
    }
}

/// True for an object or array made only of empty objects and arrays.
fn hollow(node: &Node) -> bool {
    match &node.kind {
        Kind::Object(members) => members.iter().all(|m| hollow(&m.value)),
        Kind::Array(items) => items.iter().all(hollow),
        _ => false,
    }
}

impl HttpClientOptions {
    /// The JSON object `format` writes (Go's key order).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("engine".into(), Value::String(self.common.engine.clone()));
        m.insert("version".into(), Value::from(self.version));
        extend_json(&mut m, &self.common);
        if let Some(tls) = &self.tls {
            m.insert(
                "tls".into(),
                serde_json::to_value(tls).unwrap_or(Value::Null),
            );
        }
        extend_json(&mut m, &self.dial);
        if self.version != 1 {
            extend_json(&mut m, &self.http2);
        }
        if self.version == 3 {
            extend_json(&mut m, &self.quic);
        }
        m
    }
}

impl HttpClient {
    /// The JSON object `format` writes.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("tag".into(), Value::String(self.tag.clone()));
        m.extend(self.options.to_json());
        m
    }
}

impl HttpClientRef {
    /// The JSON value `format` writes.
    pub fn to_json(&self) -> Value {
        match self {
            HttpClientRef::Tag(t) => Value::String(t.clone()),
            HttpClientRef::Inline(o) => Value::Object(o.to_json()),
        }
    }
}
