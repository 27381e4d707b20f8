//! The `tcp` and `tls` server types: DNS messages with a two-byte length prefix on a stream
//! (RFC 1035 4.2.2, RFC 7858). Connections are dialed through the server's [`Dialer`] and
//! kept for the next query when an exchange ends cleanly, so a busy resolver does not pay a
//! handshake (a TLS one in particular) per query; one query at a time per connection.

use super::message::{decode_answer, encode};
use super::transport::Transport;
use super::udp::dns_flow;
use super::DnsError;
use crate::adapter::{BoxFuture, BoxStream};
use crate::dialer::Dialer;
use crate::flow::{Destination, Network};
use hickory_proto::op::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Idle connections kept per server.
const POOL: usize = 4;

/// DNS over a stream: plain TCP or TLS.
pub struct StreamTransport {
    tag: String,
    kind: &'static str,
    server: Destination,
    dialer: Arc<Dialer>,
    tls: Option<super::tls::TlsClient>,
    timeout: Duration,
    idle: Mutex<Vec<BoxStream>>,
}

impl StreamTransport {
    /// DNS over TCP.
    pub fn tcp(tag: &str, server: Destination, dialer: Arc<Dialer>, timeout: Duration) -> Self {
        StreamTransport {
            tag: tag.to_string(),
            kind: "tcp",
            server,
            dialer,
            tls: None,
            timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// DNS over TLS.
    pub fn tls(
        tag: &str,
        server: Destination,
        dialer: Arc<Dialer>,
        tls: super::tls::TlsClient,
        timeout: Duration,
    ) -> Self {
        StreamTransport {
            kind: "tls",
            tls: Some(tls),
            ..StreamTransport::tcp(tag, server, dialer, timeout)
        }
    }

    fn io(&self, source: std::io::Error) -> DnsError {
        DnsError::Io {
            server: self.tag.clone(),
            source,
        }
    }

    async fn connect(&self) -> Result<BoxStream, DnsError> {
        let flow = dns_flow(&self.tag, Network::Tcp, &self.server);
        let stream = self
            .dialer
            .connect_tcp(&flow, &self.server)
            .await
            .map_err(|e| self.io(e))?;
        match &self.tls {
            None => Ok(stream),
            Some(tls) => tls.wrap(stream).await.map_err(|e| self.io(e)),
        }
    }

    async fn on(&self, stream: &mut BoxStream, query: &Message) -> Result<Message, DnsError> {
        let bytes = encode(query)?;
        let len = u16::try_from(bytes.len())
            .map_err(|_| DnsError::BadQuery("query longer than 65535 bytes".into()))?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.map_err(|e| self.io(e))?;
        stream.flush().await.map_err(|e| self.io(e))?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.map_err(|e| self.io(e))?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream
            .read_exact(&mut answer)
            .await
            .map_err(|e| self.io(e))?;
        decode_answer(&self.tag, &answer, query)
    }

    async fn run(&self, query: &Message) -> Result<Message, DnsError> {
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        if let Some(mut stream) = pooled {
            // A kept connection may have been closed by the server meanwhile: one retry on a
            // fresh connection covers that.
            if let Ok(m) = self.on(&mut stream, query).await {
                self.keep(stream);
                return Ok(m);
            }
        }
        let mut stream = self.connect().await?;
        let m = self.on(&mut stream, query).await?;
        self.keep(stream);
        Ok(m)
    }

    fn keep(&self, stream: BoxStream) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < POOL {
                idle.push(stream);
            }
        }
    }
}

impl Transport for StreamTransport {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        self.kind
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
