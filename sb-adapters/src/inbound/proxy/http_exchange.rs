//! One forwarded plain-HTTP request: it becomes a flow of its own (routed, dialed, tracked
//! and relayed by the dispatcher like any other), whose client side is an in-memory pipe,
//! as Go's HTTP proxy gives each request a pipe into its router. This side writes the
//! rewritten head and the request body into the pipe and reads the origin's response out
//! of it, passing each body on as it arrives (Content-Length, chunked or until close) with
//! a fixed-size buffer, so no body is ever held whole. Where each body ends decides whether
//! the client connection can carry another request.

use super::http_session::failure_response;
use super::{failure_status, ProxyInbound};
use crate::proto::chunked::Chunked;
use crate::proto::http_forward::{self as fwd, Body, Forward};
use sb_core::adapter::{AsyncStream, BoxFuture, BoxStream, ConnectFailure, FlowHandler, Responder};
use sb_core::flow::{FlowContext, Network};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::TcpStream;
use tracing::{debug, Instrument};

/// Bytes the pipe holds in each direction, and the copy buffer size.
const PIPE: usize = 64 * 1024;

/// One request on its way through a flow.
pub(super) struct Exchange<'a> {
    pub(super) inbound: &'a ProxyInbound,
    pub(super) peer: SocketAddr,
    pub(super) id: u32,
    pub(super) user: Option<String>,
    pub(super) method: &'a str,
    /// The client asked to keep the connection (Go's rule).
    pub(super) keep_alive: bool,
}

/// Which side of a copy failed.
enum CopyError {
    /// Reading (or the bytes read were not a valid body).
    Read(io::Error),
    /// Writing.
    Write(io::Error),
}

impl<'a> Exchange<'a> {
    /// Forwards the request and its response. True when the connection may carry another
    /// request (`buf` then holds whatever the client sent after this request).
    pub(super) async fn run(
        self,
        client: &mut TcpStream,
        buf: &mut Vec<u8>,
        forward: Forward,
        handler: &Arc<dyn FlowHandler>,
    ) -> bool {
        let mut flow = FlowContext::new(
            self.inbound.tag.clone(),
            self.inbound.kind,
            Network::Tcp,
            self.peer,
            forward.destination,
        );
        flow.id = self.id;
        flow.user = self.user.clone();
        flow.local = client.local_addr().ok();
        let (ours, theirs) = tokio::io::duplex(PIPE);
        let failure = Arc::new(Mutex::new(None));
        let routed = handler.clone().handle_tcp(
            flow,
            Box::new(FlowEnd(theirs)),
            Box::new(ExchangeReply(failure.clone())),
        );
        // The flow lives on its own task: it ends when this side drops the pipe.
        tokio::spawn(routed.in_current_span());

        let (mut from_origin, mut to_origin) = tokio::io::split(ours);
        let (mut from_client, mut to_client) = client.split();
        let send = async {
            to_origin
                .write_all(&forward.head)
                .await
                .map_err(CopyError::Write)?;
            copy_body(buf, &mut from_client, &mut to_origin, forward.body).await
        };
        let receive = self.respond(&mut from_origin, &mut to_client, &failure);
        tokio::pin!(send, receive);
        // The response may come before the request body is through (an early error); the
        // connection is reused only when both messages ended where their framing said.
        let mut sent = None;
        let keep = loop {
            tokio::select! {
                // The request side first: when both are ready, the body counts as sent.
                biased;
                r = &mut send, if sent.is_none() => match r {
                    // The client went away or sent a bad body: nobody to answer.
                    Err(CopyError::Read(e)) => {
                        debug!(target: "inbound", tag = %self.inbound.label(), "http: read request body: {e}");
                        return false;
                    }
                    // The flow is gone; the response side tells the client.
                    Err(CopyError::Write(_)) => sent = Some(false),
                    Ok(()) => sent = Some(true),
                },
                keep = &mut receive => break keep,
            }
        };
        keep && sent == Some(true)
    }

    /// Reads the origin's response from the pipe and passes it to the client. True when the
    /// response ended by its framing and the client asked for keep-alive.
    async fn respond<R, W>(
        &self,
        from: &mut R,
        to: &mut W,
        failure: &Mutex<Option<&'static str>>,
    ) -> bool
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut pending = Vec::new();
        loop {
            let resp = match read_response(from, &mut pending).await {
                Ok(r) => r,
                Err(e) => {
                    // No (valid) response: the flow failed, or the origin sent garbage.
                    debug!(target: "inbound", tag = %self.inbound.label(), "http: read response: {e}");
                    let status = failure
                        .lock()
                        .ok()
                        .and_then(|f| *f)
                        .unwrap_or("502 Bad Gateway");
                    let _ = to.write_all(&failure_response(status)).await;
                    return false;
                }
            };
            if resp.is_interim() {
                // `100 Continue` and friends go to the client; the real answer follows.
                if to.write_all(&fwd::forward_interim(&resp)).await.is_err() {
                    return false;
                }
                continue;
            }
            let body = match fwd::response_body(self.method, &resp) {
                Ok(b) if resp.status != 101 => b,
                _ => {
                    debug!(target: "inbound", tag = %self.inbound.label(), "http: unusable response (status {})", resp.status);
                    let _ = to.write_all(&failure_response("502 Bad Gateway")).await;
                    return false;
                }
            };
            let keep = self.keep_alive && body != Body::UntilClose;
            let head = fwd::forward_response(&resp, body, keep);
            if to.write_all(&head).await.is_err() {
                return false;
            }
            return match copy_body(&mut pending, from, to, body).await {
                Ok(()) => keep && to.flush().await.is_ok(),
                Err(CopyError::Read(e) | CopyError::Write(e)) => {
                    debug!(target: "inbound", tag = %self.inbound.label(), "http: response body: {e}");
                    false
                }
            };
        }
    }
}

/// Reads one response head; what followed it stays in `pending`.
async fn read_response<R: AsyncRead + Unpin>(
    from: &mut R,
    pending: &mut Vec<u8>,
) -> io::Result<fwd::ResponseHead> {
    loop {
        match fwd::parse_response(pending) {
            Ok(Some((head, n))) => {
                pending.drain(..n);
                return Ok(head);
            }
            Ok(None) => {
                let mut chunk = [0u8; 4096];
                let n = from.read(&mut chunk).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed before a response",
                    ));
                }
                pending.extend_from_slice(&chunk[..n]);
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Copies one body delimited by `body` from `pending` (bytes already read) and then `from`
/// to `to`. Bytes past the body's end stay in `pending` for the next message.
async fn copy_body<R, W>(
    pending: &mut Vec<u8>,
    from: &mut R,
    to: &mut W,
    body: Body,
) -> Result<(), CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut chunked = Chunked::new();
    let mut left = match body {
        Body::Empty => return Ok(()),
        Body::Length(n) => n,
        Body::Chunked | Body::UntilClose => 0,
    };
    let mut buf = std::mem::take(pending);
    loop {
        if !buf.is_empty() {
            let n = match body {
                Body::Chunked => chunked
                    .scan(&buf)
                    .map_err(|e| CopyError::Read(io::Error::new(io::ErrorKind::InvalidData, e)))?,
                Body::Length(_) => usize::try_from(left).unwrap_or(usize::MAX).min(buf.len()),
                Body::UntilClose | Body::Empty => buf.len(),
            };
            to.write_all(&buf[..n]).await.map_err(CopyError::Write)?;
            left = left.saturating_sub(n as u64);
            let ended = match body {
                Body::Chunked => chunked.is_done(),
                Body::Length(_) => left == 0,
                Body::UntilClose | Body::Empty => false,
            };
            if ended {
                *pending = buf.split_off(n);
                return Ok(());
            }
        }
        buf.clear();
        buf.resize(PIPE, 0);
        let n = from.read(&mut buf).await.map_err(CopyError::Read)?;
        buf.truncate(n);
        if n == 0 {
            return match body {
                Body::UntilClose => Ok(()),
                _ => Err(CopyError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a body",
                ))),
            };
        }
    }
}

/// The flow's end of the pipe. This side never half-closes the pipe during an exchange, so
/// an end of input means the exchange is over: it is reported as an error, which ends the
/// flow's relay at once instead of leaving the origin connection open until it idles out.
struct FlowEnd(DuplexStream);

impl AsyncRead for FlowEnd {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the HTTP proxy finished the request",
                )))
            }
            other => other,
        }
    }
}

impl AsyncWrite for FlowEnd {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncStream for FlowEnd {
    fn into_tcp(self: Box<Self>) -> Result<TcpStream, BoxStream> {
        Err(self)
    }
}

/// Tells the exchange why its flow failed (the answer is written to the real client, not
/// into the pipe); success needs no word, the response speaks for itself.
struct ExchangeReply(Arc<Mutex<Option<&'static str>>>);

impl Responder for ExchangeReply {
    fn connected<'a>(
        &'a mut self,
        _s: &'a mut BoxStream,
        _bound: Option<SocketAddr>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn failed<'a>(
        &'a mut self,
        _s: &'a mut BoxStream,
        why: &'a ConnectFailure,
    ) -> BoxFuture<'a, ()> {
        if let Ok(mut f) = self.0.lock() {
            *f = Some(failure_status(why));
        }
        Box::pin(async {})
    }
}
