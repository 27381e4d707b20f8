//! The Go half of the DNS parity tests: Go sing-box 1.14.4 running a test's `dns` section
//! behind a `direct` inbound on 127.0.0.1 whose only route rule is
//! `{"inbound": "dns-in", "action": "hijack-dns"}`, so any query sent to that inbound is
//! answered by Go's DNS module. The sb half runs the same `dns` section the same way and the
//! tests compare the answers.
//!
//! Observed with the 1.14.4 binary: the rule needs no `sniff` action before it, on UDP or
//! TCP (`router: match[0] inbound=dns-in => hijack-dns`, then `dns: exchange a.test. IN A`).
//! With `listen_port: 0` Go binds TCP and UDP on two different ports (it logs
//! `tcp server started at …` and `udp server started at …`), so [`GoDns`] exposes both.

use crate::GoSingBox;
use std::net::SocketAddr;

/// The tag of the hijacked inbound.
pub const INBOUND_TAG: &str = "dns-in";

/// Go sing-box answering DNS through its hijacked direct inbound. Dropping it kills Go.
pub struct GoDns {
    /// The running Go process (its log: [`GoSingBox::logged`]).
    pub go: GoSingBox,
    /// Where the inbound takes DNS over UDP.
    pub udp: SocketAddr,
    /// Where the inbound takes DNS over TCP.
    pub tcp: SocketAddr,
}

/// The whole Go config: `dns` (a JSON object text, e.g.
/// `{"servers": [{"type": "udp", "tag": "dm", "server": "127.0.0.1", "server_port": 5353}]}`)
/// plus the hijacked inbound, with debug logging so a test can read Go's DNS decisions.
///
/// With more than one DNS server Go 1.14.4 refuses to start unless
/// `route.default_domain_resolver` is set (`FATAL ... ENABLE_DEPRECATED_MISSING_DOMAIN_RESOLVER`,
/// even though no outbound resolves anything here), so it is set to the first server's tag.
pub fn config(dns: &str) -> String {
    let resolver = serde_json::from_str::<serde_json::Value>(dns)
        .ok()
        .and_then(|v| {
            let servers = v.get("servers")?.as_array()?;
            let tag = servers.first()?.get("tag")?.as_str()?.to_string();
            (servers.len() > 1).then_some(tag)
        })
        .map(|tag| format!(r#""default_domain_resolver": "{tag}","#))
        .unwrap_or_default();
    format!(
        r#"{{"log": {{"level": "debug"}},
            "dns": {dns},
            "inbounds": [{{"type": "direct", "tag": "{INBOUND_TAG}", "listen": "127.0.0.1", "listen_port": 0}}],
            "route": {{{resolver} "rules": [{{"inbound": "{INBOUND_TAG}", "action": "hijack-dns"}}]}}}}"#
    )
}

impl GoDns {
    /// Starts Go with [`config`]`(dns)` and waits until both listeners are up. `None` when the
    /// Go binary is not installed (outside CI).
    pub fn start(dns: &str) -> Option<GoDns> {
        let go = GoSingBox::start(&config(dns), 2)?;
        let find = |network: &str| {
            go.listening
                .iter()
                .copied()
                .find(|a| go.logged(&format!("{network} server started at {a}")))
                .unwrap_or_else(|| panic!("Go logged no {network} listener: {:?}", go.listening))
        };
        let (udp, tcp) = (find("udp"), find("tcp"));
        Some(GoDns { go, udp, tcp })
    }
}
