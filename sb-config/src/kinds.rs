//! The type names Go sing-box 1.14 knows, split into what sb's config language decodes and
//! what it does not, so that every name Go accepts gets a precise answer instead of
//! "unknown type". A type listed as implemented here has a model and a decoder (its options
//! are checked and formatted as Go does); whether the runtime builds it is the registry's
//! answer (`sb_adapters::registry::check`), which `sb check` and `sb run` both ask (a build
//! without a cargo feature refuses that feature's types there).

/// Inbound types sb implements.
pub const INBOUNDS: &[&str] = &["direct", "mixed", "socks", "http", "tun"];
/// Inbound types Go 1.14 has and sb does not.
pub const INBOUNDS_NOT_IMPLEMENTED: &[&str] = &[
    "shadowsocks",
    "vmess",
    "trojan",
    "naive",
    "hysteria",
    "shadowtls",
    "tuic",
    "hysteria2",
    "vless",
    "anytls",
    "redirect",
    "tproxy",
    "snell",
    "cloudflared",
];

/// Outbound types sb implements.
pub const OUTBOUNDS: &[&str] = &[
    "direct", "block", "socks", "http", "selector", "urltest", "ssh", "tor",
];
/// Outbound types Go 1.14 has and sb does not.
pub const OUTBOUNDS_NOT_IMPLEMENTED: &[&str] = &[
    "shadowsocks",
    "vmess",
    "trojan",
    "naive",
    "hysteria",
    "shadowtls",
    "tuic",
    "hysteria2",
    "vless",
    "anytls",
    "snell",
    "bridge",
];

/// Endpoint types sb implements.
pub const ENDPOINTS: &[&str] = &["wireguard", "tailscale"];
/// Endpoint types Go 1.14 has and sb does not.
pub const ENDPOINTS_NOT_IMPLEMENTED: &[&str] = &["openvpn-client", "openvpn-server", "openconnect"];

/// DNS server types sb implements.
pub const DNS_SERVERS: &[&str] = &["local", "hosts", "udp", "tcp", "tls", "https", "fakeip"];
/// DNS server types Go 1.14 has and sb does not.
pub const DNS_SERVERS_NOT_IMPLEMENTED: &[&str] = &[
    "quic",
    "h3",
    "dhcp",
    "tailscale",
    "resolved",
    "mdns",
    "openvpn",
    "openconnect",
];

/// Service types Go 1.14 has; sb implements none yet.
pub const SERVICES_NOT_IMPLEMENTED: &[&str] = &[
    "derp",
    "resolved",
    "ssm-api",
    "ccm",
    "ocm",
    "api",
    "hysteria-realm",
    "usbip-client",
    "usbip-server",
    "oom-killer",
];

/// What a `type` string means for one adapter family.
#[derive(Debug, PartialEq, Eq)]
pub enum TypeName<'a> {
    /// sb implements it.
    Implemented(&'a str),
    /// Go has it; sb does not.
    NotImplemented(&'a str),
    /// Neither knows it.
    Unknown(&'a str),
}

/// Classifies `name` against a family's tables.
pub fn classify<'a>(name: &'a str, implemented: &[&str], missing: &[&str]) -> TypeName<'a> {
    if implemented.contains(&name) {
        TypeName::Implemented(name)
    } else if missing.contains(&name) {
        TypeName::NotImplemented(name)
    } else {
        TypeName::Unknown(name)
    }
}
