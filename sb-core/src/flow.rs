//! What sb knows about one flow while it moves from an inbound through the router to an
//! outbound: where it came from, where it goes, and what the router learned on the way.

use crate::procinfo::ProcessInfo;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// A destination host: an address, or a name still to be resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP address.
    Ip(IpAddr),
    /// A domain name (without a trailing dot).
    Domain(String),
}

/// Where a flow goes: host and port (Go's `Socksaddr`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The host.
    pub host: Host,
    /// The port.
    pub port: u16,
}

/// Why a name cannot be a destination: what a client sends as a host must be a name a DNS
/// query, a SOCKS request and an HTTP request line can all carry unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("empty name")]
    Empty,
    /// Longer than the 255 bytes a SOCKS5 address and a DNS name can hold.
    #[error("name of {0} bytes (at most 255)")]
    TooLong(usize),
    /// A control character, a space or DEL (CR and LF would start new header lines in an
    /// HTTP proxy request; NUL and ESC reach logs and C strings).
    #[error("name with a control character or space at byte {0}")]
    Control(usize),
}

/// Checks a host name a client sent (SOCKS5, SOCKS4a, HTTP CONNECT, an absolute URI).
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 255 {
        return Err(NameError::TooLong(name.len()));
    }
    match name.bytes().position(|b| b <= b' ' || b == 0x7f) {
        Some(at) => Err(NameError::Control(at)),
        None => Ok(()),
    }
}

impl Destination {
    /// A destination from a socket address.
    pub fn from_socket(addr: SocketAddr) -> Destination {
        Destination {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }

    /// A destination from a host string that may be an IP literal or a domain. Trailing
    /// dots go first, so `127.0.0.1.` is the address, not a domain that spells it (IP rules
    /// would not see that one, while its dial still went to the address).
    pub fn from_host(host: &str, port: u16) -> Destination {
        let name = host.trim_end_matches('.');
        let trimmed = name.trim_start_matches('[').trim_end_matches(']');
        let host = match trimmed.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Domain(name.to_ascii_lowercase()),
        };
        Destination { host, port }
    }

    /// The socket address, when the host is an IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Domain(_) => None,
        }
    }

    /// The domain, when the host is a name.
    pub fn domain(&self) -> Option<&str> {
        match &self.host {
            Host::Domain(d) => Some(d),
            Host::Ip(_) => None,
        }
    }

    /// The IP, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host {
            Host::Ip(ip) => Some(ip),
            Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Domain(d) => write!(f, "{d}:{}", self.port),
        }
    }
}

/// Transport network of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP echo (a ping from a TUN or an endpoint's peer, routed like a flow).
    Icmp,
}

impl Network {
    /// Lower-case name, as in configs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Tcp => "tcp",
            Network::Udp => "udp",
            Network::Icmp => "icmp",
        }
    }
}

/// The inbound type of the flows sb opens for itself ([`FlowContext::internal`]). No
/// config type has this name, so no configured inbound can be taken for it.
pub const INTERNAL: &str = "internal";

/// Everything the router may match on, and what routing decided so far.
#[derive(Clone, Debug)]
pub struct FlowContext {
    /// Random id shown in logs (`[id elapsed]`) and the Clash API, as Go does.
    pub id: u32,
    /// When the inbound accepted the flow.
    pub started: Instant,
    /// Tag of the inbound.
    pub inbound_tag: Arc<str>,
    /// Type of the inbound (`mixed`, `socks`, ...).
    pub inbound_type: &'static str,
    /// TCP or UDP.
    pub network: Network,
    /// The client.
    pub source: SocketAddr,
    /// The inbound's own address the client reached (the accepted socket's local address),
    /// when the inbound knows it; the process search uses it to tell the client's socket
    /// from the inbound's.
    pub local: Option<SocketAddr>,
    /// The destination (after any override).
    pub destination: Destination,
    /// The authenticated user, if the inbound has users.
    pub user: Option<String>,
    /// Protocol found by a `sniff` action.
    pub protocol: Option<&'static str>,
    /// Domain found by a `sniff` action (TLS SNI, HTTP Host, ...).
    pub sniffed_domain: Option<String>,
    /// IPs found for a domain destination by a `resolve` action.
    pub resolved: Vec<IpAddr>,
    /// Index of the rule whose action routed the flow (`None`: `route.final` or the default
    /// outbound), for the tracker and the Clash API.
    pub matched_rule: Option<usize>,
    /// Idle timeout of a UDP flow: the inbound's `udp_timeout`, replaced by a route option's;
    /// `None` means Go's default (5 min).
    pub udp_timeout: Option<std::time::Duration>,
    /// The local process that opened the flow, looked up once per flow when the router
    /// needs it (`None` otherwise, or when it was not found).
    pub process: Option<Arc<ProcessInfo>>,
}

impl FlowContext {
    /// A new flow with a fresh random id.
    pub fn new(
        inbound_tag: Arc<str>,
        inbound_type: &'static str,
        network: Network,
        source: SocketAddr,
        destination: Destination,
    ) -> FlowContext {
        FlowContext {
            id: rand::random(),
            started: Instant::now(),
            inbound_tag,
            inbound_type,
            network,
            source,
            local: None,
            destination,
            user: None,
            protocol: None,
            sniffed_domain: None,
            resolved: Vec::new(),
            matched_rule: None,
            udp_timeout: None,
            process: None,
        }
    }

    /// A flow sb opens for itself rather than for a client: a DNS server's queries, a lookup
    /// of sb's own, the HTTP client's requests (rule-set downloads, urltest probes). Its
    /// inbound is `internal[<purpose>]`, with `purpose` saying which part of sb and for what
    /// (`dns:<server>`, `resolver`, `rule-set:<tag>`, `urltest:<group>`, `http-client`), so
    /// logs and outbounds tell these flows apart; it has no source (`0.0.0.0:0`), and rules
    /// on `inbound` never match it (see [`FlowContext::is_internal`]).
    pub fn internal(
        purpose: impl Into<Arc<str>>,
        network: Network,
        destination: Destination,
    ) -> FlowContext {
        FlowContext::new(
            purpose.into(),
            INTERNAL,
            network,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            destination,
        )
    }

    /// Whether sb opened this flow for itself ([`FlowContext::internal`]): it came through no
    /// inbound, so its inbound tag is a label, not a configured inbound's.
    pub fn is_internal(&self) -> bool {
        self.inbound_type == INTERNAL
    }

    /// The domain rules match: the sniffed one, else the destination's.
    pub fn domain(&self) -> Option<&str> {
        self.sniffed_domain
            .as_deref()
            .or_else(|| self.destination.domain())
    }

    /// The IPs rules match: the destination's, else those found by `resolve`.
    pub fn ips(&self) -> Vec<IpAddr> {
        match self.destination.ip() {
            Some(ip) => vec![ip],
            None => self.resolved.clone(),
        }
    }

    /// Time since the flow started, formatted as Go does in logs (`0ms`, `1.2s`).
    pub fn elapsed_text(&self) -> String {
        let ms = self.started.elapsed().as_millis();
        if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{:.1}s", ms as f64 / 1000.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_print_like_go() {
        assert_eq!(
            Destination::from_host("Example.COM.", 443).to_string(),
            "example.com:443"
        );
        assert_eq!(Destination::from_host("::1", 80).to_string(), "[::1]:80");
        assert_eq!(Destination::from_host("[::1]", 80).to_string(), "[::1]:80");
        assert_eq!(
            Destination::from_host("127.0.0.1", 8).to_string(),
            "127.0.0.1:8"
        );
    }

    /// Found by the `socks` fuzz target (sb-adapters): the IP was looked for before the
    /// trailing dots went, so `127.0.0.1.` became the domain `127.0.0.1`.
    #[test]
    fn an_address_with_trailing_dots_is_that_address() {
        for (host, ip) in [
            ("127.0.0.1.", "127.0.0.1"),
            ("::.", "::"),
            ("[::1]..", "::1"),
        ] {
            assert_eq!(
                Destination::from_host(host, 1).host,
                Host::Ip(ip.parse().unwrap()),
                "{host}"
            );
        }
        assert_eq!(
            Destination::from_host("a.test.", 1).host,
            Host::Domain("a.test".into())
        );
    }

    #[test]
    fn internal_flows_say_which_part_of_sb_opened_them() {
        let f = FlowContext::internal("dns:local", Network::Udp, Destination::from_host("::1", 53));
        assert!(f.is_internal());
        assert_eq!((&*f.inbound_tag, f.inbound_type), ("dns:local", "internal"));
        assert!(f.source.ip().is_unspecified());
        let client = FlowContext::new(
            "internal".into(),
            "mixed",
            Network::Tcp,
            "127.0.0.1:1".parse().unwrap(),
            Destination::from_host("a.test", 80),
        );
        assert!(
            !client.is_internal(),
            "an inbound tagged \"internal\" is a real inbound"
        );
    }
}
