//! `/dns/query?name=&type=`: one lookup through sb's DNS module (its rules, cache and
//! servers, as a flow's lookup would go), answered in Go's JSON form of the DNS message.

use crate::http::{self as h, Body};
use crate::View;
use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};
use http::{Response, StatusCode};
use serde_json::{json, Map, Value};
use std::str::FromStr;
use std::time::Duration;

/// How long a lookup may take (Go's `C.DNSTimeout`).
const TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /dns/query`.
pub async fn query(view: &View, uri: &http::Uri) -> Response<Body> {
    let name = h::query(uri, "name").unwrap_or_default();
    let qtype = h::query(uri, "type").filter(|t| !t.is_empty());
    let Ok(qtype) = RecordType::from_str(qtype.as_deref().unwrap_or("A")) else {
        return h::error(StatusCode::BAD_REQUEST, "invalid query type");
    };
    let domain = if name.is_empty() { "." } else { name.as_str() };
    let msg = match sb_core::dns::message::new_query(domain, qtype) {
        Ok(m) => m,
        Err(e) => return h::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let flow = sb_core::dns::client::own_flow(domain);
    let answer = match tokio::time::timeout(TIMEOUT, view.dns.exchange(&flow, &msg)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return h::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => {
            return h::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "context deadline exceeded",
            )
        }
    };
    h::json(StatusCode::OK, &render(&answer))
}

/// Go's rendering of a DNS message (`Status`, `Question`, the flags, `Answer`/`Authority`/
/// `Additional` when not empty).
pub fn render(m: &Message) -> Value {
    let meta = &m.metadata;
    let questions: Vec<Value> = m
        .queries
        .iter()
        .map(|q| {
            json!({
                "Name": q.name().to_ascii(),
                "Qtype": u16::from(q.query_type()),
                "Qclass": u16::from(q.query_class()),
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("Status".into(), u16::from(meta.response_code).into());
    out.insert("Question".into(), questions.into());
    out.insert("Server".into(), "internal".into());
    out.insert("TC".into(), meta.truncation.into());
    out.insert("RD".into(), meta.recursion_desired.into());
    out.insert("RA".into(), meta.recursion_available.into());
    out.insert("AD".into(), meta.authentic_data.into());
    out.insert("CD".into(), meta.checking_disabled.into());
    for (key, records) in [
        ("Answer", &m.answers),
        ("Authority", &m.authorities),
        ("Additional", &m.additionals),
    ] {
        if !records.is_empty() {
            out.insert(
                key.into(),
                records.iter().map(record).collect::<Vec<_>>().into(),
            );
        }
    }
    Value::Object(out)
}

fn record(r: &Record) -> Value {
    json!({
        "name": r.name.to_ascii(),
        "type": u16::from(r.record_type()),
        "TTL": r.ttl,
        "data": r.data.to_string(),
    })
}
