//! Field groups shared by many adapters: listen fields (inbounds), dial fields (outbounds,
//! endpoints, DNS servers), users, `domain_resolver`, TLS blocks and HTTP headers.

use crate::types::{DomainStrategy, FwMark, GoDuration, Ip, Listable, Prefix, UdpTimeout};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Listen fields of every listening inbound (`shared/listen.md`). Defaults are Go's and are
/// applied by the runtime; here a zero value means "not written".
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenFields {
    /// Address to bind; 127.0.0.1 when omitted (Go's observed behaviour).
    pub listen: Option<Ip>,
    /// Port; 0 picks a free one.
    pub listen_port: u16,
    /// Interface to bind to.
    pub bind_interface: String,
    /// `SO_MARK` of the listener.
    pub routing_mark: FwMark,
    /// `SO_REUSEADDR`.
    pub reuse_addr: bool,
    /// Network namespace.
    pub netns: String,
    /// Turns TCP keep-alive off.
    pub disable_tcp_keep_alive: bool,
    /// Keep-alive idle time; 5m when zero.
    pub tcp_keep_alive: GoDuration,
    /// Keep-alive probe interval; 75s when zero.
    pub tcp_keep_alive_interval: GoDuration,
    /// TCP Fast Open.
    pub tcp_fast_open: bool,
    /// Multipath TCP.
    pub tcp_multi_path: bool,
    /// Allow UDP fragmentation (a pointer in Go: a written `false` is kept by `format`).
    #[serde(serialize_with = "crate::types::keep_some")]
    pub udp_fragment: Option<bool>,
    /// UDP session idle timeout; 5m when zero.
    pub udp_timeout: UdpTimeout,
    /// Hand accepted connections to another inbound.
    pub detour: String,
}

/// Fields Go removed from listen options, with Go's messages. The legacy inbound fields
/// (`sniff`, ...) are not here: every inbound type has them, see `inbound::LegacyInbound`.
pub const LISTEN_REMOVED: &[(&[&str], &str)] = &[(
    &["proxy_protocol", "proxy_protocol_accept_no_header"],
    "Proxy Protocol is deprecated and removed in sing-box 1.6.0",
)];

/// How an adapter reaches its own server (`shared/dial.md`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialFields {
    /// Dial through this outbound; all other fields are then ignored.
    pub detour: String,
    /// Interface to bind to.
    pub bind_interface: String,
    /// IPv4 source address.
    pub inet4_bind_address: Option<Ip>,
    /// IPv6 source address.
    pub inet6_bind_address: Option<Ip>,
    /// `IP_BIND_ADDRESS_NO_PORT`.
    pub bind_address_no_port: bool,
    /// Android VPN protect socket path.
    pub protect_path: String,
    /// `SO_MARK`.
    pub routing_mark: FwMark,
    /// `SO_REUSEADDR`.
    pub reuse_addr: bool,
    /// Network namespace.
    pub netns: String,
    /// TCP connect timeout; 5s when zero.
    pub connect_timeout: GoDuration,
    /// TCP Fast Open.
    pub tcp_fast_open: bool,
    /// Multipath TCP.
    pub tcp_multi_path: bool,
    /// Turns TCP keep-alive off.
    pub disable_tcp_keep_alive: bool,
    /// Keep-alive idle time; 5m when zero.
    pub tcp_keep_alive: GoDuration,
    /// Keep-alive probe interval; 75s when zero.
    pub tcp_keep_alive_interval: GoDuration,
    /// Allow UDP fragmentation (a pointer in Go: a written `false` is kept by `format`).
    #[serde(serialize_with = "crate::types::keep_some")]
    pub udp_fragment: Option<bool>,
    /// DNS server (and options) used to resolve the server address.
    pub domain_resolver: Option<DomainResolver>,
    /// Graphical clients only.
    pub network_strategy: Option<NetworkStrategy>,
    /// Graphical clients only.
    pub network_type: Listable<InterfaceType>,
    /// Graphical clients only.
    pub fallback_network_type: Listable<InterfaceType>,
    /// Happy-eyeballs delay; 300ms when zero.
    pub fallback_delay: GoDuration,
    /// Deprecated since 1.12. Outbounds, endpoints and `ntp` refuse it (see [`DIAL_REMOVED`]);
    /// only DNS servers accept it, as Go 1.14 does, and sb's runtime never reads it (see
    /// `dns_server`). Last, as in Go's `DialerOptions`, so `format` writes it where Go does.
    pub domain_strategy: DomainStrategy,
}

/// Go's message for a dial `domain_strategy` it would use (Go 1.14.4 then refuses the config).
pub const LEGACY_DOMAIN_STRATEGY: &str = "legacy domain strategy options is deprecated in sing-box 1.12.0 and will be removed in sing-box 1.14.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-domain-strategy-options";

/// The dial field Go 1.14 refuses, with Go's message.
pub const DIAL_REMOVED: &[(&[&str], &str)] = &[(&["domain_strategy"], LEGACY_DOMAIN_STRATEGY)];

/// `network_strategy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkStrategy {
    /// Default.
    Default,
    /// Hybrid.
    Hybrid,
    /// Fallback.
    Fallback,
}

/// `network_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceType {
    /// Wi-Fi.
    Wifi,
    /// Cellular.
    Cellular,
    /// Ethernet.
    Ethernet,
    /// Other.
    Other,
}

/// `domain_resolver`: a DNS server tag, or the tag with resolution options.
/// `format` writes the bare tag when only `server` is set, as Go does.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainResolverOptions {
    /// DNS server tag.
    pub server: String,
    /// Address family preference.
    pub strategy: DomainStrategy,
    /// Bypass the cache.
    pub disable_cache: bool,
    /// Bypass the optimistic cache (1.14).
    pub disable_optimistic_cache: bool,
    /// Rewrite answer TTLs (a pointer in Go: a written 0 is kept).
    #[serde(serialize_with = "crate::types::keep_some")]
    pub rewrite_ttl: Option<u32>,
    /// EDNS client subnet.
    pub client_subnet: Option<crate::types::Cidr>,
    /// Query timeout (1.14).
    pub timeout: GoDuration,
}

/// See [`DomainResolverOptions`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DomainResolver(pub DomainResolverOptions);

impl<'de> Deserialize<'de> for DomainResolver {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DomainResolver;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DNS server tag or an object with \"server\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DomainResolver, E> {
                Ok(DomainResolver(DomainResolverOptions {
                    server: s.to_string(),
                    ..Default::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<DomainResolver, A::Error> {
                let o =
                    DomainResolverOptions::deserialize(de::value::MapAccessDeserializer::new(m))?;
                if o.server.is_empty() {
                    return Err(de::Error::custom("empty domain_resolver.server"));
                }
                Ok(DomainResolver(o))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for DomainResolver {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let only_server = DomainResolverOptions {
            server: self.0.server.clone(),
            ..Default::default()
        };
        if self.0 == only_server {
            s.serialize_str(&self.0.server)
        } else {
            self.0.serialize(s)
        }
    }
}

/// A user of a proxy inbound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct User {
    /// User name.
    pub username: String,
    /// Password. Never logged.
    pub password: String,
}

/// HTTP headers: each value one string or a list.
pub type Headers = BTreeMap<String, Listable<String>>;

/// Outbound TLS (client) options. sb does not speak TLS on proxy outbounds yet; the block is
/// parsed exactly so that configs using it get a precise error instead of "unknown field".
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundTls {
    /// Enable TLS.
    pub enabled: bool,
    /// TLS engine.
    pub engine: String,
    /// Do not send SNI.
    pub disable_sni: bool,
    /// SNI / verification name.
    pub server_name: String,
    /// Skip verification.
    pub insecure: bool,
    /// ALPN protocols.
    pub alpn: Listable<String>,
    /// Minimum version.
    pub min_version: Option<TlsVersion>,
    /// Maximum version.
    pub max_version: Option<TlsVersion>,
    /// Cipher suites.
    pub cipher_suites: Listable<String>,
    /// Curves.
    pub curve_preferences: Listable<String>,
    /// Trusted certificate (PEM lines).
    pub certificate: Listable<String>,
    /// Trusted certificate file.
    pub certificate_path: String,
    /// Pinned public keys.
    pub certificate_public_key_sha256: Listable<serde_json::Value>,
    /// Client certificate (PEM lines).
    pub client_certificate: Listable<String>,
    /// Client certificate file.
    pub client_certificate_path: String,
    /// Client key (PEM lines).
    pub client_key: Listable<String>,
    /// Client key file.
    pub client_key_path: String,
    /// ClientHello fragmentation.
    pub fragment: bool,
    /// Fragment fallback delay.
    pub fragment_fallback_delay: GoDuration,
    /// TLS record fragmentation.
    pub record_fragment: bool,
    /// Spoofed ClientHello.
    pub spoof: String,
    /// Spoof method.
    pub spoof_method: String,
    /// kTLS transmit.
    pub kernel_tx: bool,
    /// kTLS receive.
    pub kernel_rx: bool,
    /// Handshake timeout.
    pub handshake_timeout: GoDuration,
    /// ECH.
    pub ech: Option<OutboundEch>,
    /// uTLS.
    pub utls: Option<OutboundUtls>,
    /// Reality.
    pub reality: Option<OutboundReality>,
}

/// Outbound `tls.ech`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundEch {
    /// Enabled.
    pub enabled: bool,
    /// ECH config (PEM lines).
    pub config: Listable<String>,
    /// ECH config file.
    pub config_path: String,
    /// Name to query the ECH config for.
    pub query_server_name: String,
}

/// Outbound `tls.utls`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundUtls {
    /// Enabled.
    pub enabled: bool,
    /// Browser fingerprint.
    pub fingerprint: String,
}

/// Outbound `tls.reality`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundReality {
    /// Enabled.
    pub enabled: bool,
    /// Server public key.
    pub public_key: String,
    /// Short id.
    pub short_id: String,
}

/// Inbound `tls.ech`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundEch {
    /// Enabled.
    pub enabled: bool,
    /// ECH key (PEM lines).
    pub key: Listable<String>,
    /// ECH key file.
    pub key_path: String,
}

/// Inbound TLS (server) options, parsed for the same reason as [`OutboundTls`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundTls {
    /// Enable TLS.
    pub enabled: bool,
    /// Server name.
    pub server_name: String,
    /// Unused on servers.
    pub insecure: bool,
    /// ALPN protocols.
    pub alpn: Listable<String>,
    /// Minimum version.
    pub min_version: Option<TlsVersion>,
    /// Maximum version.
    pub max_version: Option<TlsVersion>,
    /// Cipher suites.
    pub cipher_suites: Listable<String>,
    /// Curves.
    pub curve_preferences: Listable<String>,
    /// Certificate (PEM lines).
    pub certificate: Listable<String>,
    /// Certificate file.
    pub certificate_path: String,
    /// Client authentication mode.
    pub client_authentication: String,
    /// Client CA (PEM lines).
    pub client_certificate: Listable<String>,
    /// Client CA files.
    pub client_certificate_path: Listable<String>,
    /// Pinned client keys.
    pub client_certificate_public_key_sha256: Listable<serde_json::Value>,
    /// Key (PEM lines).
    pub key: Listable<String>,
    /// Key file.
    pub key_path: String,
    /// kTLS transmit.
    pub kernel_tx: bool,
    /// kTLS receive.
    pub kernel_rx: bool,
    /// Handshake timeout.
    pub handshake_timeout: GoDuration,
    /// Certificate provider.
    pub certificate_provider: Option<serde_json::Value>,
    /// ECH.
    pub ech: Option<InboundEch>,
    /// Reality (server side; kept as written: sb has no Reality server).
    pub reality: Option<BTreeMap<String, serde_json::Value>>,
}

/// TLS protocol versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum TlsVersion {
    /// TLS 1.0
    #[serde(rename = "1.0")]
    V10,
    /// TLS 1.1
    #[serde(rename = "1.1")]
    V11,
    /// TLS 1.2
    #[serde(rename = "1.2")]
    V12,
    /// TLS 1.3
    #[serde(rename = "1.3")]
    V13,
}

/// A list of prefixes.
pub type Prefixes = Listable<Prefix>;
