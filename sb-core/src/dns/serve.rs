//! `hijack-dns`: the dispatcher hands a DNS flow here instead of to an outbound, and the DNS
//! module answers it. UDP flows carry one query per datagram (each answered on its own
//! task, so a slow server does not hold up the next query); TCP flows carry length-prefixed
//! messages, answered in order. A query dropped by a rule gets no answer; a server failure
//! gets SERVFAIL so the client does not wait for its own timeout. A UDP answer larger than
//! the client can take (512 bytes, or its EDNS0 size) is cut to the answer records that fit,
//! with the TC bit set, as Go does (miekg/dns `Truncate`): the client asks again over TCP.

use super::message::{encode, reply};
use super::{Dns, DnsError};
use crate::adapter::{BoxPacketConn, BoxStream};
use crate::flow::FlowContext;
use hickory_proto::op::{Message, ResponseCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

/// The answer to one raw query, or `None` when nothing must be sent; `udp` cuts it to what
/// the client can take.
///
/// Public, and hidden from the docs, only so the `hijack_dns` fuzz target (`fuzz/`) can feed
/// it raw queries; sb calls it from [`serve_udp`] and [`serve_tcp`].
#[doc(hidden)]
pub async fn answer(dns: &Dns, flow: &FlowContext, raw: &[u8], udp: bool) -> Option<Vec<u8>> {
    let query = match Message::from_vec(raw) {
        Ok(q) => q,
        Err(e) => {
            debug!(target: "dns", "bad query from {}: {e}", flow.source);
            return None;
        }
    };
    let m = match dns.exchange(flow, &query).await {
        Ok(m) => m,
        Err(DnsError::Dropped) => return None,
        Err(DnsError::BadQuery(why)) => {
            debug!(target: "dns", "bad query from {}: {why}", flow.source);
            reply(&query, ResponseCode::FormErr)
        }
        Err(e) => {
            tracing::error!(target: "dns", "exchange: {e}");
            reply(&query, ResponseCode::ServFail)
        }
    };
    let out = encode(&m).ok()?;
    if !udp {
        return Some(out);
    }
    let limit = udp_limit(&query);
    if out.len() <= limit {
        return Some(out);
    }
    truncate(m, limit)
}

/// The largest UDP answer the client takes: 512 bytes, or its EDNS0 payload size (never
/// below 512, RFC 6891 §6.2.5).
fn udp_limit(query: &Message) -> usize {
    usize::from(query.max_payload())
}

/// `m` cut to fit `limit` bytes: authority and additional records go, then as many answer
/// records as fit are kept (found by halving), and TC is set.
fn truncate(mut m: Message, limit: usize) -> Option<Vec<u8>> {
    m.metadata.truncation = true;
    m.authorities.clear();
    m.additionals.clear();
    let answers = std::mem::take(&mut m.answers);
    let (mut lo, mut hi) = (0usize, answers.len());
    // The most answers that fit: lo always fits (none at all, at worst).
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        m.answers = answers[..mid].to_vec();
        match encode(&m) {
            Ok(b) if b.len() <= limit => lo = mid,
            _ => hi = mid - 1,
        }
    }
    m.answers = answers[..lo].to_vec();
    encode(&m).ok().filter(|b| b.len() <= limit)
}

/// Queries of one UDP flow worked on at once, at most: each waits on an upstream, so a
/// client flooding queries at a slow server would otherwise hold a task per query. Past it,
/// new queries are dropped (DNS clients retry) until answers come back.
pub const MAX_QUERIES_PER_FLOW: usize = 256;

/// Answers the queries of a UDP flow until it has been idle for `idle`.
pub async fn serve_udp(dns: Arc<Dns>, flow: FlowContext, conn: BoxPacketConn, idle: Duration) {
    let mut buf = vec![0u8; 65_535];
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let got = tokio::time::timeout(idle, conn.recv_from(&mut buf)).await;
        let (n, dest) = match got {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                debug!(target: "dns", "packet connection closed: {e}");
                break;
            }
            Err(_) => break,
        };
        // Reap finished answers first, so the bound counts only queries still in progress.
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= MAX_QUERIES_PER_FLOW {
            debug!(target: "dns", "{} queries in progress for {}: one dropped", tasks.len(), flow.source);
            continue;
        }
        let Some(raw) = buf.get(..n).map(<[u8]>::to_vec) else {
            continue;
        };
        let (dns, flow, conn) = (dns.clone(), flow.clone(), conn.clone());
        tasks.spawn(async move {
            if let Some(out) = answer(&dns, &flow, &raw, true).await {
                if let Err(e) = conn.send_to(&out, &dest).await {
                    debug!(target: "dns", "write answer: {e}");
                }
            }
        });
        // Reap finished answers so the set does not grow with a long-lived flow.
        while tasks.try_join_next().is_some() {}
    }
    // Answers still being worked on finish before the flow goes away.
    while tasks.join_next().await.is_some() {}
}

/// Answers length-prefixed queries on a stream until the client closes it.
pub async fn serve_tcp(dns: Arc<Dns>, flow: FlowContext, mut stream: BoxStream, idle: Duration) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut raw = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut raw).await.is_err() {
            return;
        }
        let Some(out) = answer(&dns, &flow, &raw, false).await else {
            continue;
        };
        let Ok(n) = u16::try_from(out.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&n.to_be_bytes());
        framed.extend_from_slice(&out);
        if stream.write_all(&framed).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}
