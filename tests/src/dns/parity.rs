//! The DNS parity corpus: one zone ([`parity_zone`]) and the queries asked of it
//! ([`PARITY_QUERIES`]), each with the answer dnsmasq gives directly. The Go half
//! (`tests/tests/dns_peers.rs`) proves Go sing-box, with a `udp`/`tcp`/`tls`/`https` server
//! pointing at that zone, gives the same answers through a hijacked inbound; the sb half asks
//! sb the same queries and compares with Go and with these expectations.

use super::Zone;
use hickory_proto::rr::RecordType;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One parity query and its expected shape (TTLs aside).
#[derive(Clone, Copy, Debug)]
pub struct ParityQuery {
    /// The name asked, as sent (case kept).
    pub name: &'static str,
    /// The type asked.
    pub qtype: RecordType,
    /// Expected response code mnemonic.
    pub rcode: &'static str,
    /// Expected answer section as [`super::Answer::records`] prints it, sorted.
    pub answers: &'static [&'static str],
}

/// TTL of every record of [`parity_zone`].
pub const PARITY_TTL: u32 = 300;

/// The zone every parity server serves: `test.` with the records the queries need, and
/// `corp.test.` names for DNS-rule tests (`*.corp.test` to one server, the rest to another).
pub fn parity_zone() -> Zone {
    let mut zone = Zone::new("test")
        .a("a.test", Ipv4Addr::new(10, 0, 0, 1))
        .aaaa("aaaa.test", Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1))
        .a("both.test", Ipv4Addr::new(10, 0, 0, 2))
        .aaaa("both.test", Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2))
        .a("multi.test", Ipv4Addr::new(10, 0, 1, 1))
        .a("multi.test", Ipv4Addr::new(10, 0, 1, 2))
        .a("multi.test", Ipv4Addr::new(10, 0, 1, 3))
        .cname("alias.test", "a.test")
        .cname("chain.test", "alias.test")
        .txt("txt.test", &["hello world", "second"])
        .mx("mx.test", 10, "mail.test")
        .a("mail.test", Ipv4Addr::new(10, 0, 0, 25))
        .a("x.corp.test", Ipv4Addr::new(10, 1, 0, 1))
        .with(super::Record::Srv {
            name: "_sip._udp.test".into(),
            priority: 1,
            weight: 2,
            port: 5060,
            target: "a.test".into(),
        });
    zone.ttl = PARITY_TTL;
    zone
}

const fn q(
    name: &'static str,
    qtype: RecordType,
    rcode: &'static str,
    answers: &'static [&'static str],
) -> ParityQuery {
    ParityQuery {
        name,
        qtype,
        rcode,
        answers,
    }
}

/// The parity queries against [`parity_zone`] with dnsmasq's direct answers.
pub const PARITY_QUERIES: &[ParityQuery] = &[
    q("a.test", RecordType::A, "NOERROR", &["a.test. A 10.0.0.1"]),
    q("a.test", RecordType::AAAA, "NOERROR", &[]),
    q(
        "aaaa.test",
        RecordType::AAAA,
        "NOERROR",
        &["aaaa.test. AAAA fd00::1"],
    ),
    q("aaaa.test", RecordType::A, "NOERROR", &[]),
    q(
        "both.test",
        RecordType::A,
        "NOERROR",
        &["both.test. A 10.0.0.2"],
    ),
    q(
        "both.test",
        RecordType::AAAA,
        "NOERROR",
        &["both.test. AAAA fd00::2"],
    ),
    q(
        "multi.test",
        RecordType::A,
        "NOERROR",
        &[
            "multi.test. A 10.0.1.1",
            "multi.test. A 10.0.1.2",
            "multi.test. A 10.0.1.3",
        ],
    ),
    q(
        "alias.test",
        RecordType::A,
        "NOERROR",
        &["a.test. A 10.0.0.1", "alias.test. CNAME a.test."],
    ),
    q(
        "chain.test",
        RecordType::A,
        "NOERROR",
        &[
            "a.test. A 10.0.0.1",
            "alias.test. CNAME a.test.",
            "chain.test. CNAME alias.test.",
        ],
    ),
    q(
        "chain.test",
        RecordType::AAAA,
        "NOERROR",
        &["alias.test. CNAME a.test.", "chain.test. CNAME alias.test."],
    ),
    q(
        "alias.test",
        RecordType::CNAME,
        "NOERROR",
        &["alias.test. CNAME a.test."],
    ),
    q(
        "txt.test",
        RecordType::TXT,
        "NOERROR",
        &["txt.test. TXT \"hello world\" \"second\""],
    ),
    q("txt.test", RecordType::A, "NOERROR", &[]),
    q(
        "mx.test",
        RecordType::MX,
        "NOERROR",
        &["mx.test. MX 10 mail.test."],
    ),
    q("a.test", RecordType::MX, "NOERROR", &[]),
    q(
        "mail.test",
        RecordType::A,
        "NOERROR",
        &["mail.test. A 10.0.0.25"],
    ),
    q(
        "_sip._udp.test",
        RecordType::SRV,
        "NOERROR",
        &["_sip._udp.test. SRV 1 2 5060 a.test."],
    ),
    q(
        "1.0.0.10.in-addr.arpa",
        RecordType::PTR,
        "NOERROR",
        &["1.0.0.10.in-addr.arpa. PTR a.test."],
    ),
    q("nope.test", RecordType::A, "NXDOMAIN", &[]),
    q("nope.test", RecordType::AAAA, "NXDOMAIN", &[]),
    q("sub.a.test", RecordType::A, "NXDOMAIN", &[]),
    q(
        "x.corp.test",
        RecordType::A,
        "NOERROR",
        &["x.corp.test. A 10.1.0.1"],
    ),
    q("A.TEST", RecordType::A, "NOERROR", &["A.TEST. A 10.0.0.1"]),
    q("a.test", RecordType::HTTPS, "NOERROR", &[]),
    q("outside.example", RecordType::A, "REFUSED", &[]),
];
