//! Helpers over hickory's `Message` for what the DNS module does to every query and answer:
//! read the single question, build replies with a response code, read the addresses out of
//! an answer, compute and rewrite TTLs.

use super::DnsError;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::net::IpAddr;

/// The one question of a query (sb answers exactly one, as Go does).
pub fn question(query: &Message) -> Result<&Query, DnsError> {
    match query.queries.as_slice() {
        [q] => Ok(q),
        [] => Err(DnsError::BadQuery("no question".into())),
        _ => Err(DnsError::BadQuery("more than one question".into())),
    }
}

/// The question's name as rules match it: lower case, without the trailing dot.
pub fn domain_of(q: &Query) -> String {
    let mut s = q.name().to_lowercase().to_ascii();
    if s.len() > 1 && s.ends_with('.') {
        s.pop();
    }
    s
}

/// A query for `domain` and `qtype` with recursion desired and a random id.
pub fn new_query(domain: &str, qtype: RecordType) -> Result<Message, DnsError> {
    let mut name =
        Name::from_utf8(domain).map_err(|e| DnsError::BadQuery(format!("{domain:?}: {e}")))?;
    name.set_fqdn(true);
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name, qtype));
    Ok(m)
}

/// An empty reply to `query` with `rcode` (the question copied, RD copied, RA set).
pub fn reply(query: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.queries = query.queries.clone();
    m
}

/// A reply sb makes up itself (an address family the strategy leaves out, `predefined`):
/// authoritative, as Go sets it, RD copied, RA set, no EDNS.
pub fn local_reply(query: &Message, rcode: ResponseCode) -> Message {
    let mut m = reply(query, rcode);
    m.metadata.authoritative = true;
    m
}

/// A `reject` answer as Go gives it: the rcode on a bare header (only QR; no RD, RA, AA) with
/// the question, no EDNS.
pub fn bare_reply(query: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    m.queries = query.queries.clone();
    m
}

/// Whether the query carries EDNS options (client subnet, cookie...). Go caches only queries
/// without any, and so does sb: a client-subnet answer is for that subnet only.
pub fn has_edns_options(query: &Message) -> bool {
    query
        .edns
        .as_ref()
        .is_some_and(|e| !e.options().as_ref().is_empty())
}

/// A NOERROR reply carrying `ips` (those of the question's family) as answers.
pub fn reply_with_ips(query: &Message, q: &Query, ips: &[IpAddr], ttl: u32) -> Message {
    let mut m = reply(query, ResponseCode::NoError);
    for ip in ips {
        let data = match (q.query_type(), ip) {
            (RecordType::A, IpAddr::V4(v4)) => RData::A((*v4).into()),
            (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA((*v6).into()),
            _ => continue,
        };
        let mut r = Record::from_rdata(q.name().clone(), ttl, data);
        r.dns_class = DNSClass::IN;
        m.add_answer(r);
    }
    m
}

/// The A/AAAA addresses in an answer's answer section.
pub fn addresses(m: &Message) -> Vec<IpAddr> {
    m.answers.iter().filter_map(|r| r.data.ip_addr()).collect()
}

/// The smallest TTL over the answer and authority sections (what a cache may keep the answer
/// for); `None` when there is no record to take it from.
pub fn min_ttl(m: &Message) -> Option<u32> {
    m.answers
        .iter()
        .chain(m.authorities.iter())
        .map(|r| r.ttl)
        .min()
}

/// Sets every record's TTL (the `rewrite_ttl` rule option; also a cached answer's remaining
/// lifetime).
pub fn set_ttl(m: &mut Message, ttl: u32) {
    for r in m
        .answers
        .iter_mut()
        .chain(m.authorities.iter_mut())
        .chain(m.additionals.iter_mut())
    {
        r.ttl = ttl;
    }
}

/// Lowers every TTL by `elapsed` seconds, never below zero (a cached answer served later).
pub fn age(m: &mut Message, elapsed: u32) {
    for r in m
        .answers
        .iter_mut()
        .chain(m.authorities.iter_mut())
        .chain(m.additionals.iter_mut())
    {
        r.ttl = r.ttl.saturating_sub(elapsed);
    }
}

/// Encodes a message; hickory only fails on messages sb built wrongly.
pub fn encode(m: &Message) -> Result<Vec<u8>, DnsError> {
    m.to_vec()
        .map_err(|e| DnsError::BadQuery(format!("encode: {e}")))
}

/// Decodes a server's answer to `query`, checking it is an answer to that question.
pub fn decode_answer(server: &str, bytes: &[u8], query: &Message) -> Result<Message, DnsError> {
    let m = Message::from_vec(bytes).map_err(|e| DnsError::BadResponse {
        server: server.to_string(),
        message: e.to_string(),
    })?;
    if m.metadata.message_type != MessageType::Response {
        return Err(DnsError::BadResponse {
            server: server.to_string(),
            message: "not a response".into(),
        });
    }
    if m.metadata.id != query.metadata.id {
        return Err(DnsError::BadResponse {
            server: server.to_string(),
            message: "response id does not match the query".into(),
        });
    }
    Ok(m)
}

/// The response code in Go's spelling (`NXDOMAIN`, `SERVFAIL`...), for errors and logs.
pub fn rcode_text(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_and_domain() {
        let q = new_query("Example.COM", RecordType::AAAA).unwrap();
        let question = question(&q).unwrap();
        assert_eq!(domain_of(question), "example.com");
        assert_eq!(question.query_type(), RecordType::AAAA);
        let r = reply_with_ips(
            &q,
            question,
            &["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            60,
        );
        assert_eq!(addresses(&r), vec!["::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(min_ttl(&r), Some(60));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let q = new_query("a.test", RecordType::A).unwrap();
        for bytes in [&b""[..], &[0u8; 5][..], &[0xffu8; 40][..]] {
            assert!(decode_answer("s", bytes, &q).is_err());
        }
    }
}
