//! DNS messages as sb reads them (`sb_core::dns::message` over hickory-proto's wire format):
//! every query a client sends to hijack-dns and every answer an upstream server returns is
//! decoded by `Message::from_vec`, then read and rewritten by sb's helpers (the one
//! question and its domain, the reply built from a query, the addresses and TTLs of an
//! answer, the TTL rewrites of the cache and `rewrite_ttl`, the answer check against the
//! query it answers).
//!
//! Checked: no panic; a reply sb builds to a decoded query encodes and decodes back as a
//! response with the query's id and question; `set_ttl` makes every TTL the one given and
//! `age` never raises one; a decoded response passes `decode_answer` for a query with its id.

#![no_main]

use hickory_proto::op::{Message, MessageType, ResponseCode};
use libfuzzer_sys::fuzz_target;
use sb_core::dns::message;

fn ttls(m: &Message) -> Vec<u32> {
    m.answers
        .iter()
        .chain(&m.authorities)
        .chain(&m.additionals)
        .map(|r| r.ttl)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::from_vec(data) else {
        return;
    };
    if let Ok(q) = message::question(&m) {
        let _ = message::domain_of(q);
        let _ = message::reply_with_ips(&m, q, &message::addresses(&m), 60);
    }
    let _ = (message::has_edns_options(&m), message::addresses(&m));
    let _ = message::rcode_text(m.metadata.response_code);

    for reply in [
        message::reply(&m, ResponseCode::ServFail),
        message::local_reply(&m, ResponseCode::NoError),
        message::bare_reply(&m, ResponseCode::Refused),
    ] {
        // hickory refuses to encode some decoded names (hijack-dns then sends nothing).
        let Ok(bytes) = message::encode(&reply) else {
            continue;
        };
        let back = Message::from_vec(&bytes).expect("a reply sb encoded decodes");
        assert_eq!(back.metadata.id, m.metadata.id);
        assert_eq!(back.metadata.message_type, MessageType::Response);
        assert_eq!(back.queries, m.queries);
    }

    let before = ttls(&m);
    let mut aged = m.clone();
    message::age(&mut aged, data.len() as u32);
    assert!(ttls(&aged).iter().zip(&before).all(|(a, b)| a <= b));
    let mut set = m.clone();
    message::set_ttl(&mut set, 7);
    assert!(ttls(&set).iter().all(|&t| t == 7));
    if let Some(min) = message::min_ttl(&set) {
        assert_eq!(min, 7);
    }

    let mut query = Message::query();
    query.metadata.id = m.metadata.id;
    let checked = message::decode_answer("fuzz", data, &query);
    assert_eq!(
        checked.is_ok(),
        m.metadata.message_type == MessageType::Response
    );
});
