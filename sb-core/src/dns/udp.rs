//! The `udp` server type. Queries share one datagram socket per server, opened through the
//! server's [`Dialer`] (a local socket, or a UDP association through a `detour` outbound):
//! each query goes out under an id no other pending query has, and a reader task hands every
//! answer to the query waiting for its id. Opening a socket per query would cost a socket, a
//! bind and an epoll registration each time (and, through a SOCKS detour, a whole UDP
//! ASSOCIATE). The socket is closed after a while without queries and opened again on the
//! next one; a socket error fails the queries waiting on it, and the next query opens a new
//! one. A truncated answer is asked again over TCP, as Go does.
//!
//! Spoofing (the socket is unconnected and shared): a datagram is an answer only if it comes
//! from the server's address (its port, for a server given by name, whose address the dialer
//! resolves) and carries a pending query's id *and* question; anything else is dropped and
//! the query keeps waiting, so a forged or stray datagram can neither answer a query nor
//! fail it. (Go's UDP transport reads from a connected socket, so the kernel filters the
//! source; sb's socket is shared by queries and may be a detour's UDP association.)

use super::message::{decode_answer, encode};
use super::stream::StreamTransport;
use super::transport::Transport;
use super::DnsError;
use crate::adapter::{BoxFuture, BoxPacketConn};
use crate::dialer::Dialer;
use crate::flow::{Destination, FlowContext, Network};
use hickory_proto::op::{Message, Query};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Largest answer read from a datagram (EDNS0 answers can be larger than 512 bytes).
const MAX_DATAGRAM: usize = 65_535;

/// A socket with no query pending for this long is closed.
const IDLE: Duration = Duration::from_secs(30);

/// A query waiting for its answer: its question and where the answer goes.
type Waiter = (Vec<Query>, oneshot::Sender<Vec<u8>>);

/// One shared socket and the queries waiting on it.
struct Shared {
    conn: BoxPacketConn,
    /// Whom answers must come from.
    server: Destination,
    pending: Mutex<HashMap<u16, Waiter>>,
    /// The reader stopped: the socket must not be used again.
    dead: AtomicBool,
}

impl Shared {
    /// Reads answers until the socket fails or stays idle with nothing pending.
    async fn read(self: Arc<Self>, tag: String) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match tokio::time::timeout(IDLE, self.conn.recv_from(&mut buf)).await {
                Err(_) => {
                    let idle = self.pending.lock().map_or(true, |p| p.is_empty());
                    if idle {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(target: "dns", "{tag}: socket closed: {e}");
                    break;
                }
                Ok(Ok((n, from))) => {
                    let Some(datagram) = buf.get(..n) else {
                        continue;
                    };
                    if !from_server(&from, &self.server) {
                        tracing::debug!(target: "dns", "{tag}: dropped a datagram from {from}, not the server");
                        continue;
                    }
                    self.deliver(datagram, &tag);
                }
            }
        }
        self.dead.store(true, Ordering::Release);
        // Waiters see their sender dropped and fail (or retry on a new socket).
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
    }
}

impl Shared {
    /// Hands `datagram` to the query waiting for its id and question; anything else (a late
    /// or stray answer, a forged one) is dropped and leaves the waiting query alone.
    fn deliver(&self, datagram: &[u8], tag: &str) {
        let Ok(message) = Message::from_vec(datagram) else {
            tracing::debug!(target: "dns", "{tag}: dropped a datagram that is no DNS message");
            return;
        };
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let id = message.metadata.id;
        if pending
            .get(&id)
            .is_none_or(|(question, _)| *question != message.queries)
        {
            tracing::debug!(target: "dns", "{tag}: dropped an answer for no pending query (id {id})");
            return;
        }
        if let Some((_, tx)) = pending.remove(&id) {
            let _ = tx.send(datagram.to_vec());
        }
    }
}

/// Whether a datagram from `from` can be the server's: its address and port, or only its
/// port when the server is a name (the dialer resolved it; the address is not known here).
fn from_server(from: &Destination, server: &Destination) -> bool {
    use crate::flow::Host;
    let canonical = |ip: &std::net::IpAddr| ip.to_canonical();
    from.port == server.port
        && match (&from.host, &server.host) {
            (Host::Ip(a), Host::Ip(b)) => canonical(a) == canonical(b),
            (_, Host::Domain(_)) => true,
            (Host::Domain(_), Host::Ip(_)) => false,
        }
}

/// Removes a query's pending entry when it ends without an answer (timeout, cancel).
struct Pending<'a> {
    shared: &'a Shared,
    id: u16,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.shared.pending.lock() {
            p.remove(&self.id);
        }
    }
}

/// DNS over UDP.
pub struct UdpTransport {
    tag: String,
    server: Destination,
    dialer: Arc<Dialer>,
    timeout: Duration,
    /// TCP to the same server, for truncated answers.
    tcp: StreamTransport,
    socket: tokio::sync::Mutex<Option<Arc<Shared>>>,
}

impl UdpTransport {
    /// A transport to `server` through `dialer`.
    pub fn new(tag: &str, server: Destination, dialer: Arc<Dialer>, timeout: Duration) -> Self {
        UdpTransport {
            tag: tag.to_string(),
            tcp: StreamTransport::tcp(tag, server.clone(), dialer.clone(), timeout),
            server,
            dialer,
            timeout,
            socket: tokio::sync::Mutex::new(None),
        }
    }

    fn io(&self, source: std::io::Error) -> DnsError {
        DnsError::Io {
            server: self.tag.clone(),
            source,
        }
    }

    /// The live shared socket, opened if there is none.
    async fn socket(&self) -> Result<Arc<Shared>, DnsError> {
        let mut slot = self.socket.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.dead.load(Ordering::Acquire)) {
            return Ok(s.clone());
        }
        let flow = dns_flow(&self.tag, Network::Udp, &self.server);
        let conn = self
            .dialer
            .listen_udp(&flow, &self.server)
            .await
            .map_err(|e| self.io(e))?;
        let shared = Arc::new(Shared {
            conn,
            server: self.server.clone(),
            pending: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
        });
        tokio::spawn(shared.clone().read(self.tag.clone()));
        *slot = Some(shared.clone());
        Ok(shared)
    }

    /// One query on the shared socket; `Ok(None)` when the socket went away under it (the
    /// caller tries once more on a new one).
    async fn once(&self, query: &Message) -> Result<Option<Message>, DnsError> {
        let shared = self.socket().await?;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut p = shared
                .pending
                .lock()
                .map_err(|_| self.io(std::io::Error::other("pending queries poisoned")))?;
            // 65,536 ids and at most a few thousand pending: a free one is found at once.
            let Some(id) = (0..64)
                .map(|_| rand::random::<u16>())
                .find(|id| !p.contains_key(id))
            else {
                return Err(self.io(std::io::Error::other("too many pending queries")));
            };
            p.insert(id, (query.queries.clone(), tx));
            id
        };
        let _pending = Pending {
            shared: &shared,
            id,
        };
        if shared.dead.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut sent = query.clone();
        sent.metadata.id = id;
        let bytes = encode(&sent)?;
        if let Err(e) = shared.conn.send_to(&bytes, &self.server).await {
            shared.dead.store(true, Ordering::Release);
            return Err(self.io(e));
        }
        let Ok(raw) = rx.await else {
            return Ok(None);
        };
        let mut answer = decode_answer(&self.tag, &raw, &sent)?;
        if answer.queries != sent.queries {
            return Err(DnsError::BadResponse {
                server: self.tag.clone(),
                message: "answer is for another question".into(),
            });
        }
        answer.metadata.id = query.metadata.id;
        Ok(Some(answer))
    }

    async fn run(&self, query: &Message) -> Result<Message, DnsError> {
        for _ in 0..2 {
            if let Some(answer) = self.once(query).await? {
                return Ok(answer);
            }
        }
        Err(self.io(std::io::Error::other("socket closed while waiting")))
    }
}

/// The flow a transport's own connection is opened as (its detour sees this context).
pub fn dns_flow(tag: &str, network: Network, dest: &Destination) -> FlowContext {
    FlowContext::internal(format!("dns:{tag}"), network, dest.clone())
}

impl Transport for UdpTransport {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "udp"
    }
    fn exchange<'a>(&'a self, query: &'a Message) -> BoxFuture<'a, Result<Message, DnsError>> {
        Box::pin(async move {
            let answer = tokio::time::timeout(self.timeout, self.run(query))
                .await
                .map_err(|_| DnsError::Timeout {
                    server: self.tag.clone(),
                    after: self.timeout,
                })??;
            if answer.metadata.truncation {
                return self.tcp.exchange(query).await;
            }
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests;
