//! The `https` server type (DNS over HTTPS, RFC 8484): `POST` of `application/dns-message`
//! (or `GET` with `?dns=` when `method` says so) to `path` (`/dns-query`), with the server's
//! extra `headers`. TLS offers `h2` then `http/1.1`: over HTTP/2 one connection carries every
//! query concurrently and is kept; a server that only speaks HTTP/1.1 gets one request per
//! connection. Connections are dialed through the server's [`Dialer`].

use super::message::{decode_answer, encode};
use super::tls::TlsClient;
use super::transport::Transport;
use super::udp::dns_flow;
use super::DnsError;
use crate::adapter::{BoxFuture, BoxStream};
use crate::dialer::Dialer;
use crate::flow::{Destination, Network};
use crate::http_client::{send_http1, HttpError, RequestBody};
use bytes::Bytes;
use hickory_proto::op::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Largest answer accepted.
const MAX_ANSWER: usize = 65_535;

/// What the transport sends.
#[derive(Clone, Debug)]
pub struct HttpsOptions {
    /// The `Host` / `:authority`.
    pub host: String,
    /// Request path (with any query string of its own).
    pub path: String,
    /// `GET` or `POST`.
    pub get: bool,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

/// DNS over HTTPS.
pub struct HttpsTransport {
    tag: String,
    server: Destination,
    dialer: Arc<Dialer>,
    tls: TlsClient,
    options: HttpsOptions,
    timeout: Duration,
    h2: Mutex<Option<h2::client::SendRequest<Bytes>>>,
}

impl HttpsTransport {
    /// A transport to `server`.
    pub fn new(
        tag: &str,
        server: Destination,
        dialer: Arc<Dialer>,
        tls: TlsClient,
        options: HttpsOptions,
        timeout: Duration,
    ) -> Self {
        HttpsTransport {
            tag: tag.to_string(),
            server,
            dialer,
            tls,
            options,
            timeout,
            h2: Mutex::new(None),
        }
    }

    fn io(&self, source: std::io::Error) -> DnsError {
        DnsError::Io {
            server: self.tag.clone(),
            source,
        }
    }

    fn bad(&self, message: impl Into<String>) -> DnsError {
        DnsError::BadResponse {
            server: self.tag.clone(),
            message: message.into(),
        }
    }

    async fn connect(&self) -> Result<(BoxStream, bool), DnsError> {
        let flow = dns_flow(&self.tag, Network::Tcp, &self.server);
        let stream = self
            .dialer
            .connect_tcp(&flow, &self.server)
            .await
            .map_err(|e| self.io(e))?;
        self.tls.wrap_alpn(stream).await.map_err(|e| self.io(e))
    }

    /// The request target: the path, plus `dns=` for GET.
    fn target(&self, wire: &[u8]) -> String {
        if !self.options.get {
            return self.options.path.clone();
        }
        let sep = if self.options.path.contains('?') {
            '&'
        } else {
            '?'
        };
        let b64 = sb_config::base64::encode_url_no_pad(wire);
        format!("{}{sep}dns={b64}", self.options.path)
    }

    async fn run(&self, query: &Message) -> Result<Message, DnsError> {
        // RFC 8484 4.1: id 0 makes answers cacheable by HTTP caches; the caller's id is
        // put back on the answer.
        let mut q = query.clone();
        q.metadata.id = 0;
        let wire = encode(&q)?;
        let body = self.h2_or_h1(&wire).await?;
        let mut answer = decode_answer(&self.tag, &body, &q)?;
        answer.metadata.id = query.metadata.id;
        Ok(answer)
    }

    async fn h2_or_h1(&self, wire: &[u8]) -> Result<Vec<u8>, DnsError> {
        let mut slot = self.h2.lock().await;
        let sender = match slot.as_ref() {
            Some(s) => s.clone(),
            None => {
                let (stream, h2) = self.connect().await?;
                if !h2 {
                    drop(slot);
                    return self.h1(stream, wire).await;
                }
                let (sender, conn) = h2::client::handshake(stream)
                    .await
                    .map_err(|e| self.bad(format!("http2: {e}")))?;
                let tag = self.tag.clone();
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(target: "dns", "{tag}: http2 connection closed: {e}");
                    }
                });
                *slot = Some(sender.clone());
                sender
            }
        };
        drop(slot);
        match self.h2_request(sender, wire).await {
            Ok(body) => Ok(body),
            Err(e) => {
                // The kept connection is broken: forget it so the next query dials again.
                *self.h2.lock().await = None;
                Err(e)
            }
        }
    }

    async fn h2_request(
        &self,
        sender: h2::client::SendRequest<Bytes>,
        wire: &[u8],
    ) -> Result<Vec<u8>, DnsError> {
        let mut sender = sender
            .ready()
            .await
            .map_err(|e| self.bad(format!("http2: {e}")))?;
        let uri = format!("https://{}{}", self.options.host, self.target(wire));
        let mut req = http::Request::builder()
            .method(if self.options.get { "GET" } else { "POST" })
            .uri(uri)
            .header("accept", "application/dns-message");
        if !self.options.get {
            req = req.header("content-type", "application/dns-message");
        }
        for (k, v) in &self.options.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(())
            .map_err(|e| self.bad(format!("request: {e}")))?;
        let (response, mut send) = sender
            .send_request(req, self.options.get)
            .map_err(|e| self.bad(format!("http2: {e}")))?;
        if !self.options.get {
            send.send_data(Bytes::copy_from_slice(wire), true)
                .map_err(|e| self.bad(format!("http2: {e}")))?;
        }
        let response = response
            .await
            .map_err(|e| self.bad(format!("http2: {e}")))?;
        if response.status() != http::StatusCode::OK {
            return Err(self.bad(format!("unexpected status: {}", response.status())));
        }
        let mut body = response.into_body();
        let mut out = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| self.bad(format!("http2: {e}")))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if out.len() + chunk.len() > MAX_ANSWER {
                return Err(self.bad("answer larger than 65535 bytes"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn h1(&self, stream: BoxStream, wire: &[u8]) -> Result<Vec<u8>, DnsError> {
        let method = if self.options.get { "GET" } else { "POST" };
        let mut req = http::Request::builder()
            .method(method)
            .uri(self.target(wire))
            .header("host", &self.options.host)
            .header("accept", "application/dns-message")
            .header("connection", "close");
        if !self.options.get {
            req = req
                .header("content-type", "application/dns-message")
                .header("content-length", wire.len());
        }
        for (k, v) in &self.options.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let body = if self.options.get {
            RequestBody::empty()
        } else {
            RequestBody::from(wire.to_vec())
        };
        let req = req
            .body(body)
            .map_err(|e| self.bad(format!("request: {e}")))?;
        let http_err = |e: HttpError| match e {
            HttpError::Io(e) => self.io(e),
            e => self.bad(e.to_string()),
        };
        let resp = send_http1(stream, req).await.map_err(http_err)?;
        if resp.head.status != 200 {
            return Err(self.bad(format!("unexpected status: {}", resp.head.status)));
        }
        resp.body.read_limited(MAX_ANSWER).await.map_err(http_err)
    }
}

impl Transport for HttpsTransport {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "https"
    }
    fn exchange<'a>(&'a self, query: &'a Message) -> BoxFuture<'a, Result<Message, DnsError>> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.run(query))
                .await
                .map_err(|_| DnsError::Timeout {
                    server: self.tag.clone(),
                    after: self.timeout,
                })?
        })
    }
}
