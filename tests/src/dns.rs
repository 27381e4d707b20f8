//! Real DNS peers for sb's DNS tests: dnsmasq ([`Dnsmasq`], plain DNS with a per-client query
//! log) and unbound ([`Unbound`], plain, DNS over TLS and DNS over HTTPS with a self-made CA),
//! two clients ([`query_udp`]/[`query_tcp`]/[`query_tls`] on hickory-proto, and the real
//! [`dig()`]), Go sing-box answering through a hijacked `direct` inbound ([`GoDns`]), and the
//! parity corpus ([`PARITY_QUERIES`] over [`parity_zone`]). Every server listens on a loopback
//! port picked for the test and is killed by its PID on drop.
//!
//! # What Go sing-box 1.14.4 does (observed; sb must match)
//!
//! Each is pinned by a test in `tests/tests/dns_peers.rs` (`go_dns_behaviours_sb_must_match`,
//! `go_udp_server_answers_the_parity_corpus_like_dnsmasq`, ...):
//!
//! - **hijack-dns on a `direct` inbound needs no `sniff`**: `{"inbound": "dns-in", "action":
//!   "hijack-dns"}` alone answers DNS over UDP and TCP. With `listen_port: 0` the TCP and UDP
//!   listeners get two different ports.
//! - **More than one DNS server needs `route.default_domain_resolver`** even with no outbound
//!   that resolves anything, or Go exits (`FATAL ... ENABLE_DEPRECATED_MISSING_DOMAIN_RESOLVER`).
//!   [`go::config`] sets it to the first server.
//! - **Answers are relayed as the upstream gave them**: rcode (NXDOMAIN, REFUSED for a name
//!   dnsmasq has no upstream for), flags (AA), the question's case (`A.TEST.` answered as
//!   such), record order aside. A CNAME the upstream did not chase is not chased by Go either
//!   (unbound's local data answers `alias.test A` with the CNAME alone, and so does Go). The
//!   HTTPS type is passed through like any other.
//! - **TTL**: the upstream's TTL is passed through on a fresh answer (300 stays 300); a cached
//!   answer's TTL counts down (300, then 297 three seconds later). `rewrite_ttl` on a route
//!   rule sets every record's TTL to its value.
//! - **Cache only for "simple" queries**: a plain query (one question, EDNS without options, as
//!   [`query_udp`] sends) is cached: the upstream is asked once. A query carrying an EDNS
//!   option (dig's default COOKIE) skips the cache and reaches the upstream every time. A
//!   cached answer carries an OPT record (udp 1232) even when the query had no EDNS (seen with
//!   `dig +noedns`; not pinned by a test).
//! - **`strategy: ipv4_only`**: AAAA is answered NOERROR, no records, AA set, no EDNS, and is
//!   never sent upstream (`dns: strategy rejected` in the debug log).
//! - **`reject`** (default method): REFUSED with a bare header: only QR set (no RD, RA, AA), no
//!   EDNS, no records; the same over TCP. **`reject` with `method: drop`**: no reply at all.
//! - **`predefined`**: answers exactly the configured records whatever the query type (an
//!   AAAA query for a name with `answer: ["pre.test. IN A 10.9.9.9"]` gets that A record),
//!   TTL 3600 when the zone text gives none, AA+RD+RA set, no EDNS; `rcode` as configured.
//! - **DNS rules**: `{"domain_suffix": "corp.test", "server": "corp"}` sends those names to
//!   `corp` only (the other server's query log never sees them).
//! - Go reuses one upstream UDP socket for its queries to a `udp` server (dnsmasq logs the
//!   same source port for successive queries; not pinned by a test).

pub mod behaviours;
pub mod ca;
pub mod client;
pub mod dig;
pub mod dnsmasq;
pub mod go;
pub mod parity;
pub mod unbound;
pub mod zone;

pub use ca::{TestCa, SERVER_NAME};
pub use client::{query_tcp, query_tls, query_udp, Answer};
pub use dig::{dig, dig_short, dig_with, DigAnswer, DigTransport};
pub use dnsmasq::{Dnsmasq, LoggedQuery};
pub use go::GoDns;
pub use hickory_proto::rr::RecordType;
pub use parity::{parity_zone, ParityQuery, PARITY_QUERIES};
pub use unbound::{Unbound, DOH_PATH};
pub use zone::{Record, Zone};

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;

/// A loopback port free (at this moment) for both UDP and TCP, for servers that must be told
/// a port rather than handed a socket. The caller retries on a bind failure.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP in 50 tries");
}

/// Why a peer program is missing (`None` when one of `paths` runs with `version_arg`), said
/// for a skip; under CI a missing peer is a failure.
fn missing_tool(name: &str, paths: &[&str], version_arg: &str) -> Option<String> {
    let found = paths.iter().any(|p| {
        std::process::Command::new(p)
            .arg(version_arg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    });
    if found {
        return None;
    }
    let why = format!("{name} is not installed (scripts/install-test-deps.sh installs it)");
    assert!(!super::in_ci(), "{why}");
    Some(why)
}

/// Why the DNS peers cannot run here: dnsmasq, unbound or dig missing.
pub fn unavailable() -> Option<String> {
    dnsmasq::unavailable()
        .or_else(unbound::unavailable)
        .or_else(|| missing_tool("dig", &["dig"], "-v"))
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A fresh directory for one server's files.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sb-{what}-{}-{}",
        std::process::id(),
        super::rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
