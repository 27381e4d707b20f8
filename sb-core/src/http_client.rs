//! A small HTTP/1.1 client for sb's own requests (remote rule sets; URL tests later), sent
//! through an outbound like any flow: the connection is `Outbound::connect_tcp`, so a
//! `download_detour` of `socks` reaches the server through that proxy. `https` URLs get TLS
//! from rustls (ring provider) with the webpki roots, plus any roots the caller adds.
//!
//! One request per connection (`Connection: close`), GET or HEAD, a size cap on the body
//! and one timeout over the whole exchange. No redirects, no compression, no HTTP/2: what
//! sb fetches does not need them.

pub mod response;
pub mod url;

use crate::adapter::{BoxStream, Outbound};
use crate::flow::{Destination, FlowContext, Network};
pub use response::Head;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
pub use url::HttpUrl;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be fetched.
    #[error("{0}")]
    Url(String),
    /// Connecting, TLS or reading failed.
    #[error("{}", crate::error_text(.0))]
    Io(#[from] std::io::Error),
    /// The server's answer is not valid HTTP/1.
    #[error("{0}")]
    Protocol(String),
    /// The body exceeds the cap.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// The whole exchange took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The TLS setup is invalid.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Request settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Over the whole exchange: connect, TLS, request, response.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body: usize,
    /// Root certificates trusted besides the webpki roots (a private CA, a test's own).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(60),
            max_body: 64 * 1024 * 1024,
            extra_roots: Vec::new(),
        }
    }
}

/// A response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status and headers.
    pub head: Head,
    /// The body (empty for HEAD).
    pub body: Vec<u8>,
}

/// An HTTP client bound to one outbound.
#[derive(Clone)]
pub struct HttpClient {
    outbound: Arc<dyn Outbound>,
    options: ClientOptions,
    /// What the requests are for, as their flows' inbound label (`rule-set:geoip`).
    purpose: Arc<str>,
    tls: Arc<rustls::ClientConfig>,
}

impl HttpClient {
    /// A client whose connections go through `outbound`.
    pub fn new(outbound: Arc<dyn Outbound>, options: ClientOptions) -> Result<Self, HttpError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in &options.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| HttpError::Tls(format!("bad root certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpClient {
            outbound,
            options,
            purpose: Arc::from("http-client"),
            tls: Arc::new(tls),
        })
    }

    /// Labels the client's flows with what they are for (`rule-set:<tag>`,
    /// `urltest:<group>`); see [`FlowContext::internal`]. `http-client` otherwise.
    pub fn with_purpose(mut self, purpose: impl Into<Arc<str>>) -> Self {
        self.purpose = purpose.into();
        self
    }

    /// `GET url` with extra request headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        self.request("GET", url, headers).await
    }

    /// `HEAD url`.
    pub async fn head(&self, url: &str) -> Result<Response, HttpError> {
        self.request("HEAD", url, &[]).await
    }

    async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        let url = HttpUrl::parse(url).map_err(HttpError::Url)?;
        let timeout = self.options.timeout;
        tokio::time::timeout(timeout, self.exchange(method, &url, headers))
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    async fn exchange(
        &self,
        method: &str,
        url: &HttpUrl,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        let dest = Destination::from_host(&url.host, url.port);
        let flow = FlowContext::internal(self.purpose.clone(), Network::Tcp, dest.clone());
        let stream = self.outbound.connect_tcp(&flow, &dest).await?;
        let stream: BoxStream = if url.tls {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|_| HttpError::Url(format!("bad TLS server name {:?}", url.host)))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, stream)
                .await?;
            crate::stream::Forward::boxed(tls)
        } else {
            stream
        };
        let mut stream = BufReader::new(stream);
        let mut req = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sb/{}\r\nAccept: */*\r\nConnection: close\r\n",
            url.target,
            url.host_header(),
            crate::VERSION
        );
        for (k, v) in headers {
            if [k, v].iter().any(|s| s.contains(['\r', '\n'])) {
                return Err(HttpError::Url(format!("bad request header {k:?}")));
            }
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.get_mut().write_all(req.as_bytes()).await?;
        stream.get_mut().flush().await?;
        let head = loop {
            let bytes = response::read_head(&mut stream).await?;
            let head = response::parse_head(&bytes).map_err(HttpError::Protocol)?;
            // Interim answers (100 Continue and the like) come before the real one.
            if !(100..200).contains(&head.status) || head.status == 101 {
                break head;
            }
        };
        let framing = response::framing(method, &head)?;
        let body = response::read_body(&mut stream, framing, self.options.max_body).await?;
        Ok(Response { head, body })
    }
}
