//! The HTTP side of the proxy inbounds: the requests of one client connection, in turn, as
//! Go's HTTP proxy serves them. Each request is authenticated on its own. A plain request
//! (`GET http://host/path`) is forwarded as one routed flow (`http_exchange.rs`) and the
//! connection waits for the next one when the client asked for keep-alive; a CONNECT, or a
//! request that upgrades the protocol, hands the whole connection to one flow and ends the
//! loop.

use super::{
    basic_credentials, failure_status, Accepted, ProxyInbound, HANDSHAKE_TIMEOUT, MAX_FAILED_LOGINS,
};
use crate::proto::http::{self, Head};
use crate::proto::http_forward::{self as fwd, Body};
use sb_core::adapter::{BoxFuture, BoxStream, ConnectFailure, FlowHandler, Responder};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, error};

/// The client connection the requests come on: who, its flow id, and its refused logins.
struct Client {
    peer: SocketAddr,
    id: u32,
    failed_logins: u32,
}

/// What one request leaves the connection to do.
enum Step {
    /// Read the next request.
    Next,
    /// Close the connection.
    Close,
    /// Hand the whole connection to a flow.
    Tunnel(Accepted),
}

impl ProxyInbound {
    /// Serves the HTTP requests on `s` (`buf`: bytes already read) until the connection ends
    /// (`None`) or a CONNECT/upgrade request asks for a tunnel (returned with the stream).
    pub(super) async fn http_session(
        &self,
        mut s: TcpStream,
        mut buf: Vec<u8>,
        peer: SocketAddr,
        id: u32,
        handler: &Arc<dyn FlowHandler>,
    ) -> Option<(TcpStream, Accepted)> {
        let mut client = Client {
            peer,
            id,
            failed_logins: 0,
        };
        loop {
            // A client gets the handshake timeout for each head, idle time included.
            // After a reload (the inbound closed), this connection takes no new request: the
            // client reconnects to the new instance, whose users and rules then apply.
            // Biased, the close first: a request that arrived by the time this task runs
            // again must not win a coin toss against a reload that came before it.
            let closed = self.serving.closed();
            let read = tokio::select! {
                biased;
                () = closed => {
                    debug!(target: "inbound", tag = %self.label(), "connection closed: the inbound was closed (reload)");
                    return None;
                }
                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_head(&mut s, &mut buf)) => r,
            };
            let head = match read {
                Ok(Ok((head, n))) => {
                    buf.drain(..n);
                    head
                }
                Ok(Err(e)) => {
                    debug!(target: "inbound", tag = %self.label(), "connection closed: {e}");
                    return None;
                }
                Err(_) => {
                    debug!(target: "inbound", tag = %self.label(), "connection closed: read http request: timeout");
                    return None;
                }
            };
            match self
                .request(&mut s, &mut buf, head, &mut client, handler)
                .await
            {
                Ok(Step::Next) => continue,
                Ok(Step::Close) => return None,
                Ok(Step::Tunnel(accepted)) => return Some((s, accepted)),
                Err(e) => {
                    debug!(target: "inbound", tag = %self.label(), "connection closed: {e}");
                    return None;
                }
            }
        }
    }

    /// One request whose head has been read; `buf` holds what followed it.
    async fn request(
        &self,
        s: &mut TcpStream,
        buf: &mut Vec<u8>,
        head: Head,
        client: &mut Client,
        handler: &Arc<dyn FlowHandler>,
    ) -> io::Result<Step> {
        let keep_alive = fwd::keep_alive(&head);
        let mut user = None;
        if !self.users.is_empty() {
            match head
                .header("Proxy-Authorization")
                .and_then(basic_credentials)
            {
                Some((u, p)) if self.check_user(&u, &p) => user = Some(u),
                other => {
                    // As Go: a client that may retry on this connection (keep-alive, no
                    // body) keeps it, a few times; anyone else is told and closed.
                    client.failed_logins += 1;
                    let retry = keep_alive
                        && fwd::request_body(&head) == Ok(Body::Empty)
                        && client.failed_logins < MAX_FAILED_LOGINS;
                    s.write_all(fwd::proxy_auth_required(retry)).await?;
                    if retry {
                        return Ok(Step::Next);
                    }
                    if let Some((u, _)) = other {
                        // The password is never logged.
                        error!(target: "inbound", tag = %self.label(), "http: authentication failed, username={u}");
                    }
                    return Ok(Step::Close);
                }
            }
        }
        if head.method.eq_ignore_ascii_case("CONNECT") {
            let Some(destination) = http::authority(&head.target, 443) else {
                s.write_all(BAD_REQUEST).await?;
                return Ok(Step::Close);
            };
            return Ok(Step::Tunnel(Accepted {
                destination,
                user,
                prefix: std::mem::take(buf),
                responder: Box::new(HttpReply { connect: true }),
            }));
        }
        if fwd::is_upgrade(&head) {
            let Ok((destination, mut prefix)) = fwd::upgrade_request(&head) else {
                s.write_all(BAD_REQUEST).await?;
                return Ok(Step::Close);
            };
            // The origin's answer (101 or not) and everything after it are relayed as is.
            prefix.append(buf);
            return Ok(Step::Tunnel(Accepted {
                destination,
                user,
                prefix,
                responder: Box::new(HttpReply { connect: false }),
            }));
        }
        let forward = match fwd::forward_request(&head) {
            Ok(f) => f,
            Err(e) => {
                debug!(target: "inbound", tag = %self.label(), "http: {e}");
                s.write_all(BAD_REQUEST).await?;
                return Ok(Step::Close);
            }
        };
        let exchange = super::http_exchange::Exchange {
            inbound: self,
            peer: client.peer,
            id: client.id,
            user,
            method: &head.method,
            keep_alive,
        };
        Ok(if exchange.run(s, buf, forward, handler).await {
            Step::Next
        } else {
            Step::Close
        })
    }
}

/// Reads until `buf` holds a whole request head (looking at each byte once, see
/// [`http::HeadEnd`]) and parses it.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(Head, usize)> {
    let mut end = http::HeadEnd::default();
    loop {
        if end.find(buf).is_some() {
            return http::parse_head(buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "request head"));
        }
        if buf.len() > http::MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        super::read_more(s, buf).await?;
    }
}

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Answers a CONNECT (or an upgrade request, which needs no answer of its own) once its
/// flow is connected or has failed.
pub(super) struct HttpReply {
    /// CONNECT: say `200 Connection established` on success.
    pub(super) connect: bool,
}

impl Responder for HttpReply {
    fn connected<'a>(
        &'a mut self,
        s: &'a mut BoxStream,
        _bound: Option<SocketAddr>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if self.connect {
                s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await?;
            }
            Ok(())
        })
    }
    fn failed<'a>(
        &'a mut self,
        s: &'a mut BoxStream,
        why: &'a ConnectFailure,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = s.write_all(&failure_response(failure_status(why))).await;
        })
    }
}

/// An empty answer with `status` that ends the connection.
pub(super) fn failure_response(status: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
}
