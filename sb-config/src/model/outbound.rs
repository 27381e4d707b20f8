//! `outbounds[]`: how flows leave sb. Types `direct`, `block`, `socks`, `http`, `selector`,
//! `urltest`, `ssh`, `tor`.

use super::shared::{DialFields, Headers, OutboundTls, DIAL_REMOVED};
use super::typed::{decode_typed, extend_json, reject_removed, typed_json, Family};
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::{Kind, Node};
use crate::kinds;
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{GoDuration, Listable, Network};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One outbound.
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound {
    /// The tag as written; empty means "its index".
    pub tag: String,
    /// Type and options.
    pub kind: OutboundKind,
}

/// The outbound types sb implements.
// Built once per config; boxing the larger variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum OutboundKind {
    /// `direct`: connect to the destination from this host.
    Direct(DialFields),
    /// `block`: refuse every flow.
    Block,
    /// `socks`: through a SOCKS4/4a/5 server.
    Socks(DialFields, SocksOutbound),
    /// `http`: through an HTTP CONNECT proxy.
    Http(DialFields, HttpOutbound),
    /// `selector`: one of several outbounds, switchable at runtime.
    Selector(SelectorOutbound),
    /// `urltest`: the fastest of several outbounds.
    UrlTest(UrlTestOutbound),
    /// `ssh`: `direct-tcpip` channels of one SSH session.
    Ssh(DialFields, SshOutbound),
    /// `tor`: the Tor network.
    Tor(DialFields, TorOutbound),
}

impl OutboundKind {
    /// The `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            OutboundKind::Direct(..) => "direct",
            OutboundKind::Block => "block",
            OutboundKind::Socks(..) => "socks",
            OutboundKind::Http(..) => "http",
            OutboundKind::Selector(..) => "selector",
            OutboundKind::UrlTest(..) => "urltest",
            OutboundKind::Ssh(..) => "ssh",
            OutboundKind::Tor(..) => "tor",
        }
    }

    /// The dial fields, for outbounds that dial.
    pub fn dial(&self) -> Option<&DialFields> {
        match self {
            OutboundKind::Direct(d)
            | OutboundKind::Socks(d, _)
            | OutboundKind::Http(d, _)
            | OutboundKind::Ssh(d, _)
            | OutboundKind::Tor(d, _) => Some(d),
            _ => None,
        }
    }
}

/// `socks` outbound options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocksOutbound {
    /// Server address.
    pub server: String,
    /// Server port.
    pub server_port: u16,
    /// Protocol version; 5 when unset.
    pub version: Option<SocksVersion>,
    /// User name.
    pub username: String,
    /// Password. Never logged.
    pub password: String,
    /// `tcp`, `udp` or both (empty).
    pub network: Listable<Network>,
    /// UDP over TCP.
    pub udp_over_tcp: Option<UdpOverTcp>,
}

/// SOCKS versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum SocksVersion {
    /// `""`: not set (5).
    #[serde(rename = "")]
    Unset,
    /// SOCKS4.
    #[serde(rename = "4")]
    V4,
    /// SOCKS4a.
    #[serde(rename = "4a")]
    V4a,
    /// SOCKS5.
    #[serde(rename = "5")]
    V5,
}

/// `udp_over_tcp`: a boolean, or `{enabled, version}`. `format` writes the boolean form when
/// the version is the default (0 or 2), as Go does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UdpOverTcpOptions {
    /// Enabled.
    pub enabled: bool,
    /// Protocol version (1 or 2; 0 means 2).
    pub version: u8,
}

/// See [`UdpOverTcpOptions`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpOverTcp(pub UdpOverTcpOptions);

impl<'de> Deserialize<'de> for UdpOverTcp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Go fills in the default version when the bool form is used, which is why a
        // written `false` survives `format` while `{}` does not.
        crate::types::bool_or_object(d, |enabled| UdpOverTcpOptions {
            enabled,
            version: 2,
        })
        .map(UdpOverTcp)
    }
}

impl Serialize for UdpOverTcp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        if o == UdpOverTcpOptions::default() {
            s.serialize_bool(false)
        } else if o.version == 0 || o.version == 2 {
            crate::types::Keep(&o.enabled).serialize(s)
        } else {
            o.serialize(s)
        }
    }
}

/// `http` outbound options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpOutbound {
    /// Server address.
    pub server: String,
    /// Server port.
    pub server_port: u16,
    /// User name.
    pub username: String,
    /// Password. Never logged.
    pub password: String,
    /// TLS to the proxy.
    pub tls: Option<OutboundTls>,
    /// Request path.
    pub path: String,
    /// Extra request headers.
    pub headers: Headers,
}

/// `selector` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectorOutbound {
    /// Members (outbound/endpoint tags).
    pub outbounds: Vec<String>,
    /// Member selected at start; the first when empty.
    pub default: String,
    /// Close existing connections when the selection changes.
    pub interrupt_exist_connections: bool,
}

/// `urltest` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlTestOutbound {
    /// Members (outbound/endpoint tags).
    pub outbounds: Vec<String>,
    /// Probe URL; `https://www.gstatic.com/generate_204` when empty.
    pub url: String,
    /// Probe interval; 3m when zero.
    pub interval: GoDuration,
    /// Milliseconds a new best must beat the current one by; 50 when zero.
    pub tolerance: u16,
    /// Stop probing after this long without use; 30m when zero.
    pub idle_timeout: GoDuration,
    /// Close existing connections when the selection changes.
    pub interrupt_exist_connections: bool,
}

/// `ssh` outbound options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SshOutbound {
    /// Server address.
    pub server: String,
    /// Server port; 22 when zero.
    pub server_port: u16,
    /// User; `root` when empty.
    pub user: String,
    /// Password. Never logged.
    pub password: String,
    /// Private key text (lines joined with `\n`). Never logged.
    pub private_key: Listable<String>,
    /// Private key file (`$ENV` and `~` expanded).
    pub private_key_path: String,
    /// Key passphrase. Never logged.
    pub private_key_passphrase: String,
    /// Accepted host keys, authorized_keys format; empty accepts any (with a warning).
    pub host_key: Listable<String>,
    /// Host key algorithms.
    pub host_key_algorithms: Listable<String>,
    /// Client version string; random OpenSSH 7.x/8.x when empty.
    pub client_version: String,
    /// Ciphers (1.14).
    pub cipher: Listable<String>,
    /// MACs (1.14).
    pub mac: Listable<String>,
    /// Key exchange algorithms (1.14).
    pub kex_algorithm: Listable<String>,
}

/// `tor` outbound options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TorOutbound {
    /// Go starts this tor binary; sb runs Tor in process and does not use it.
    pub executable_path: String,
    /// Extra tor arguments (Go only).
    pub extra_args: Vec<String>,
    /// State and cache directory; recommended, or every start bootstraps from scratch.
    pub data_directory: String,
    /// torrc options.
    pub torrc: BTreeMap<String, String>,
    /// sb only: the path of a TOML file in arti's own config format (`[tor_network]`,
    /// `[path_rules]`, `[storage]` ...) for Tor in process, layered under what sb derives
    /// from the fields above. Go sing-box does not know it.
    pub arti_config: String,
}

const FAMILY: Family = Family {
    noun: "outbound",
    implemented: kinds::OUTBOUNDS,
    missing: kinds::OUTBOUNDS_NOT_IMPLEMENTED,
    removed: &[
        ("dns", "dns outbound is deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, use rule actions instead"),
        ("wireguard", "WireGuard outbound is deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, use WireGuard endpoint instead"),
    ],
};

/// Records the references inside dial fields and rejects removed ones.
pub fn dial_fields(o: &mut Obj<'_>, ctx: &mut Ctx) -> Result<DialFields, DecodeError> {
    reject_removed(o, DIAL_REMOVED)?;
    dial_fields_with_strategy(o, ctx)
}

/// Like [`dial_fields`], but decodes the deprecated `domain_strategy` instead of refusing it:
/// Go 1.14 accepts it in DNS servers, whose decoder decides what it means there.
pub fn dial_fields_with_strategy(
    o: &mut Obj<'_>,
    ctx: &mut Ctx,
) -> Result<DialFields, DecodeError> {
    // Go silently drops `"domain_resolver": {}` in dial fields.
    if let Some(m) = o.peek("domain_resolver") {
        if matches!(&m.value.kind, Kind::Object(ms) if ms.is_empty()) {
            o.take_node("domain_resolver");
        }
    }
    o.reference(&mut ctx.refs, "detour", RefKind::Outbound);
    domain_resolver_ref(o, "domain_resolver", ctx)?;
    o.group()
}

/// Records the DNS server named by a `domain_resolver`-shaped member (string or object).
pub fn domain_resolver_ref(o: &Obj<'_>, key: &str, ctx: &mut Ctx) -> Result<(), DecodeError> {
    if let Some(m) = o.peek(key) {
        match m.value.kind {
            Kind::Object(_) => {
                let inner = Obj::new(&m.value, &o.path().key(key))?;
                inner.reference(&mut ctx.refs, "server", RefKind::DnsServer);
            }
            _ => o.reference(&mut ctx.refs, key, RefKind::DnsServer),
        }
    }
    Ok(())
}

/// Decodes `outbounds[index]`.
pub fn decode(
    node: &Node,
    path: &Path,
    index: usize,
    ctx: &mut Ctx,
) -> Result<Outbound, DecodeError> {
    let (tag, kind) = decode_typed(node, path, index, &FAMILY, ctx, |ty, o, ctx| {
        let kind = match ty {
            "direct" => {
                o.removed(
                    &["override_address", "override_port"],
                    "destination override fields in direct outbound are deprecated in sing-box 1.11.0 and removed in sing-box 1.13.0, use route options instead",
                )?;
                o.removed(
                    &["proxy_protocol"],
                    "Proxy Protocol is deprecated and removed in sing-box 1.6.0",
                )?;
                if o.has("detour") {
                    return Err(o.error_at("detour", "`detour` is not supported in direct context"));
                }
                OutboundKind::Direct(dial_fields(o, ctx)?)
            }
            "block" => OutboundKind::Block,
            "socks" => OutboundKind::Socks(dial_fields(o, ctx)?, o.group()?),
            "http" => {
                let dial = dial_fields(o, ctx)?;
                let http: HttpOutbound = o.group()?;
                if let Some(tls) = &http.tls {
                    super::check::outbound_tls(tls, ctx).map_err(|e| o.error_at("tls", e))?;
                }
                OutboundKind::Http(dial, http)
            }
            "selector" => {
                o.reference(&mut ctx.refs, "outbounds", RefKind::Outbound);
                o.reference(&mut ctx.refs, "default", RefKind::Outbound);
                let s: SelectorOutbound = o.group()?;
                if s.outbounds.is_empty() {
                    return Err(o.error_at("outbounds", "missing tags"));
                }
                if !s.default.is_empty() && !s.outbounds.contains(&s.default) {
                    return Err(o.error_at(
                        "default",
                        format!(
                            "default outbound {:?} is not one of the selector's outbounds",
                            s.default
                        ),
                    ));
                }
                OutboundKind::Selector(s)
            }
            "urltest" => {
                o.reference(&mut ctx.refs, "outbounds", RefKind::Outbound);
                let u: UrlTestOutbound = o.group()?;
                if u.outbounds.is_empty() {
                    return Err(o.error_at("outbounds", "missing tags"));
                }
                let interval = if u.interval.is_zero() {
                    GoDuration::from_secs(180)
                } else {
                    u.interval
                };
                let idle = if u.idle_timeout.is_zero() {
                    GoDuration::from_secs(1800)
                } else {
                    u.idle_timeout
                };
                if interval > idle {
                    return Err(o.error_at(
                        "interval",
                        "interval must be less or equal than idle_timeout",
                    ));
                }
                OutboundKind::UrlTest(u)
            }
            "ssh" => {
                let dial = dial_fields(o, ctx)?;
                let ssh: SshOutbound = o.group()?;
                // Go parses the key when the outbound is built, so `check` sees a bad one.
                // The SSH adapter parses it fully; this catches text that holds no key.
                let (key, key_field) = if !ssh.private_key.is_empty() {
                    (Some(ssh.private_key.0.join("\n")), "private_key")
                } else if !ssh.private_key_path.is_empty() {
                    let text = ctx.read_file(&ssh.private_key_path).map_err(|e| {
                        o.error_at("private_key_path", format!("read private key: {e}"))
                    })?;
                    (text, "private_key_path")
                } else {
                    (None, "")
                };
                for line in ssh.host_key.iter() {
                    super::check::ssh_host_key(line).map_err(|e| o.error_at("host_key", e))?;
                }
                if let Some(text) = key {
                    if !(text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----")) {
                        return Err(o.error_at(key_field, "parse private key: ssh: no key found"));
                    }
                }
                OutboundKind::Ssh(dial, ssh)
            }
            "tor" => OutboundKind::Tor(dial_fields(o, ctx)?, o.group()?),
            // `kinds::OUTBOUNDS` names a type this decoder does not know: a bug, reported
            // instead of decoding the object as something else.
            other => return Err(o.error(format!("type {other:?} has no decoder in sb"))),
        };
        o.finish()?;
        Ok(kind)
    })?;
    Ok(Outbound { tag, kind })
}

impl Outbound {
    /// The JSON object `format` writes (before zero values are dropped).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = typed_json(self.kind.type_name(), &self.tag);
        match &self.kind {
            OutboundKind::Direct(d) => extend_json(&mut m, d),
            OutboundKind::Block => {}
            OutboundKind::Socks(d, s) => {
                extend_json(&mut m, d);
                extend_json(&mut m, s);
            }
            OutboundKind::Http(d, h) => {
                extend_json(&mut m, d);
                extend_json(&mut m, h);
            }
            OutboundKind::Selector(s) => extend_json(&mut m, s),
            OutboundKind::UrlTest(u) => extend_json(&mut m, u),
            OutboundKind::Ssh(d, s) => {
                extend_json(&mut m, d);
                extend_json(&mut m, s);
            }
            OutboundKind::Tor(d, t) => {
                extend_json(&mut m, d);
                extend_json(&mut m, t);
            }
        }
        m
    }
}
