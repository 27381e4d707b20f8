//! sb's own HTTP client, for the requests sb makes itself: remote rule-set downloads, URL
//! tests, and local APIs over unix sockets (Tailscale's). It sits beside the flow path, not
//! on it: its connections come from a [`Connector`] (an outbound's `connect_tcp`, so a
//! `download_detour` or a urltest member carries the request; a [`crate::dialer::Dialer`]
//! built from an `http_clients` entry's dial fields or `detour`; or a unix socket).
//!
//! What it does: any method, request headers and bodies (buffers or streams); `https` by
//! rustls through [`crate::tls_stream`] (the `tls` block's roots, `server_name`, `insecure`,
//! versions, ALPN; the webpki roots by default, plus roots a caller adds); HTTP/2 when the
//! server chooses `h2` by ALPN and the client's version allows it (Go's default), HTTP/1.1
//! otherwise and always for plain `http`; responses whose body is read as it arrives
//! ([`RequestBuilder::send`]) or collected under a size cap ([`RequestBuilder::fetch`],
//! [`HttpClient::get`]); HTTP/1.1 `Upgrade` ([`RequestBuilder::upgrade`] returns the
//! upgraded stream); one timeout over an exchange (to the response head for streamed
//! responses, to the body's end for collected ones). The wire format is hyper's
//! per-connection client (`hyper::client::conn`).
//!
//! What it does not do: keep or pool connections (each request opens one and closes it
//! with its response; what sb fetches is occasional), follow redirects, decompress, use
//! cookies or proxies of its own (a proxy is an outbound), HTTP/3, or h2c.

mod body;
pub mod config;
mod connector;
mod exchange;
pub mod url;

pub use body::{Body, RequestBody};
pub use connector::Connector;
pub use http::Method;
pub use url::HttpUrl;

use crate::adapter::{BoxStream, Outbound};
use rustls::pki_types::CertificateDer;
use sb_config::model::shared::OutboundTls;
use std::sync::Arc;
use std::time::Duration;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL or a header cannot be sent.
    #[error("{0}")]
    Url(String),
    /// Connecting, TLS or reading failed.
    #[error("{}", crate::error_text(.0))]
    Io(#[from] std::io::Error),
    /// The server's answer is not valid HTTP, or the connection broke mid-message.
    #[error("{0}")]
    Protocol(String),
    /// The body exceeds the cap.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// The exchange took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The TLS setup is invalid.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls_stream::TlsError),
    /// The TLS handshake took longer than `handshake_timeout`.
    #[error("TLS: handshake timed out after {0:?}")]
    TlsHandshakeTimeout(Duration),
    /// An upgrade was asked for and the server answered something else: its status,
    /// reason phrase and the start of its body (a local API's error text), trimmed.
    #[error("upgrade refused: {0} {1}{sep}{2}", sep = if .2.is_empty() { "" } else { ": " })]
    NotUpgraded(u16, String, String),
}

impl HttpError {
    /// hyper's error with its causes (its own text alone is often just "connection error").
    fn from_hyper(e: hyper::Error) -> HttpError {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        HttpError::Protocol(text)
    }
}

/// Which HTTP version a client asks for (Go's `version`; 3 is not available in sb).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 when the server chooses it by ALPN, else HTTP/1.1 (Go's default).
    #[default]
    Http2,
}

/// HTTP/2 connection settings (Go's HTTP2 fields that apply to a client which opens one
/// connection per request).
#[derive(Clone, Debug, Default)]
pub struct Http2Options {
    /// Initial stream flow-control window.
    pub stream_window: Option<u32>,
    /// Initial connection flow-control window.
    pub connection_window: Option<u32>,
    /// PING interval while the connection is open.
    pub keep_alive_period: Option<Duration>,
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Over one exchange: connect, TLS, request, response head, and the body when collected.
    pub timeout: Duration,
    /// Largest body [`HttpClient::get`] and [`RequestBuilder::fetch`] accept.
    pub max_body: usize,
    /// Root certificates trusted besides the others (a private CA, a test's own).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Version asked for.
    pub version: HttpVersion,
    /// With [`HttpVersion::Http2`]: fail when an `https` server does not choose `h2`.
    pub disable_version_fallback: bool,
    /// Headers sent with every request (a request's own headers win); `Host` names the
    /// request host.
    pub headers: Vec<(String, String)>,
    /// TLS for `https` URLs (`enabled` is not needed: the scheme decides).
    pub tls: OutboundTls,
    /// HTTP/2 settings.
    pub http2: Http2Options,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(60),
            max_body: 64 * 1024 * 1024,
            extra_roots: Vec::new(),
            version: HttpVersion::default(),
            disable_version_fallback: false,
            headers: Vec::new(),
            tls: OutboundTls::default(),
            http2: Http2Options::default(),
        }
    }
}

/// A response's status line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Reason phrase (the server's on HTTP/1.1, the standard one otherwise).
    pub reason: String,
    /// Headers in order, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The protocol the exchange used.
    pub version: http::Version,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head of `resp`.
    pub fn of<B>(resp: &http::Response<B>) -> Head {
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| resp.status().canonical_reason().map(str::to_string))
            .unwrap_or_default();
        Head {
            status: resp.status().as_u16(),
            reason,
            headers: resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            version: resp.version(),
        }
    }
}

/// A response with its body collected.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status and headers.
    pub head: Head,
    /// The body (empty for HEAD).
    pub body: Vec<u8>,
}

/// A response whose body is still to be read.
pub struct StreamResponse {
    /// Status and headers.
    pub head: Head,
    /// The body, read as it arrives.
    pub body: Body,
}

/// An HTTP client bound to one way of connecting.
#[derive(Clone)]
pub struct HttpClient {
    connector: Connector,
    options: Arc<ClientOptions>,
    /// What the requests are for, as their flows' inbound label (`rule-set:geoip`).
    purpose: Arc<str>,
    /// ALPN by the version asked for.
    tls: Arc<rustls::ClientConfig>,
    /// ALPN `http/1.1` only, for upgrades.
    tls_h1: Arc<rustls::ClientConfig>,
}

impl HttpClient {
    /// A client whose connections go through `outbound`.
    pub fn new(outbound: Arc<dyn Outbound>, options: ClientOptions) -> Result<Self, HttpError> {
        Self::with_connector(Connector::Outbound(outbound), options)
    }

    /// A client whose connections come from `connector`.
    pub fn with_connector(connector: Connector, options: ClientOptions) -> Result<Self, HttpError> {
        let alpn: &[&str] = match (options.version, options.disable_version_fallback) {
            (HttpVersion::Http1, _) => &["http/1.1"],
            (HttpVersion::Http2, false) => &["h2", "http/1.1"],
            (HttpVersion::Http2, true) => &["h2"],
        };
        let config = |alpn: &[&str]| {
            crate::tls_stream::client_config(&options.tls, &options.extra_roots, alpn)
                .map(Arc::new)
                .map_err(HttpError::from)
        };
        Ok(HttpClient {
            tls: config(alpn)?,
            tls_h1: config(&["http/1.1"])?,
            connector,
            options: Arc::new(options),
            purpose: Arc::from("http-client"),
        })
    }

    /// Labels the client's flows with what they are for (`rule-set:<tag>`,
    /// `urltest:<group>`); see [`crate::flow::FlowContext::internal`]. `http-client`
    /// otherwise.
    pub fn with_purpose(mut self, purpose: impl Into<Arc<str>>) -> Self {
        self.purpose = purpose.into();
        self
    }

    /// The client's settings.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// A request to `url`, sent by one of the builder's methods.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: RequestBody::empty(),
        }
    }

    /// `GET url` with extra request headers, body collected.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        let mut req = self.request(Method::GET, url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.fetch().await
    }

    /// `HEAD url`.
    pub async fn head(&self, url: &str) -> Result<Response, HttpError> {
        self.request(Method::HEAD, url).fetch().await
    }

    /// Runs `work` under the client's timeout.
    async fn timed<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, HttpError>>,
    ) -> Result<T, HttpError> {
        let after = self.options.timeout;
        tokio::time::timeout(after, work)
            .await
            .map_err(|_| HttpError::Timeout(after))?
    }
}

/// One HTTP/1.1 exchange on a stream the caller opened (and secured) itself: `req` goes as
/// it is (origin-form target; the caller sets `Host` and `Connection`), the response comes
/// back with its body unread. For protocols that negotiate HTTP themselves (DNS over HTTPS
/// after ALPN chose `http/1.1`).
pub async fn send_http1(
    stream: BoxStream,
    req: http::Request<RequestBody>,
) -> Result<StreamResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let req = http::Request::from_parts(parts, body.0);
    let (resp, guard) = exchange::send_h1(stream, req).await?;
    let (head, body) = exchange::split(resp, guard);
    Ok(StreamResponse { head, body })
}

/// A request being put together.
pub struct RequestBuilder<'a> {
    client: &'a HttpClient,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: RequestBody,
}

impl<'a> RequestBuilder<'a> {
    /// Adds a header (a later one of the same name replaces it).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<RequestBody>) -> Self {
        self.body = body.into();
        self
    }

    fn outgoing(self) -> Result<(&'a HttpClient, exchange::Outgoing), HttpError> {
        let url = HttpUrl::parse(&self.url).map_err(HttpError::Url)?;
        Ok((
            self.client,
            exchange::Outgoing {
                method: self.method,
                url,
                headers: self.headers,
                body: self.body,
            },
        ))
    }

    /// Sends the request; the timeout runs to the response head, the body is the caller's
    /// to read (and to time).
    pub async fn send(self) -> Result<StreamResponse, HttpError> {
        let (client, out) = self.outgoing()?;
        let (resp, guard) = client.timed(exchange::send(client, out, false)).await?;
        let (head, body) = exchange::split(resp, guard);
        Ok(StreamResponse { head, body })
    }

    /// Sends the request and collects the body under the client's `max_body`, all within
    /// the timeout.
    pub async fn fetch(self) -> Result<Response, HttpError> {
        let (client, out) = self.outgoing()?;
        client
            .timed(async {
                let (resp, guard) = exchange::send(client, out, false).await?;
                let (head, body) = exchange::split(resp, guard);
                let body = body.read_limited(client.options.max_body).await?;
                Ok(Response { head, body })
            })
            .await
    }

    /// Sends the request over HTTP/1.1 asking for an upgrade (set `Upgrade`; `Connection:
    /// upgrade` is added when missing) and returns the `101` head and the upgraded stream.
    /// Any other answer is [`HttpError::NotUpgraded`].
    pub async fn upgrade(self) -> Result<(Head, Upgraded), HttpError> {
        let (client, out) = self.outgoing()?;
        client
            .timed(async {
                // The guard stops the connection task once the upgrade has taken its socket.
                let (mut resp, guard) = exchange::send(client, out, true).await?;
                let head = Head::of(&resp);
                if head.status != 101 {
                    // What the server said why, as far as it fits in a log line.
                    let (_, body) = exchange::split(resp, guard);
                    let text = body.read_prefix(REFUSAL_TEXT).await;
                    let text = String::from_utf8_lossy(&text).trim().to_string();
                    return Err(HttpError::NotUpgraded(head.status, head.reason, text));
                }
                let _guard = guard;
                let upgraded = hyper::upgrade::on(&mut resp)
                    .await
                    .map_err(HttpError::from_hyper)?;
                Ok((
                    head,
                    crate::stream::Forward(hyper_util::rt::TokioIo::new(upgraded)),
                ))
            })
            .await
    }
}

/// Most of a refused upgrade's body kept for its error.
const REFUSAL_TEXT: usize = 1024;

/// The stream an HTTP upgrade handed over (bytes the server sent after its `101` first).
pub type Upgraded = crate::stream::Forward<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;
