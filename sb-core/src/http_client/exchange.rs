//! One exchange on one connection: open the stream (connector, then TLS for `https`, with
//! the ALPN the client's version asks for), hand it to hyper's per-connection client
//! (HTTP/2 when ALPN chose `h2`, else HTTP/1.1), send the request, and return the response
//! head with its body still on the wire. The connection is never reused: HTTP/1.1 requests
//! say `Connection: close` (unless they ask for an upgrade), and an HTTP/2 connection carries
//! one stream and ends with its body.

use super::body::{Body, ConnGuard, RequestBody};
use super::{HttpClient, HttpError, HttpUrl, HttpVersion};
use crate::adapter::BoxStream;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::{Method, Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;

/// The protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

/// A request as the builder collected it.
pub(super) struct Outgoing {
    pub method: Method,
    pub url: HttpUrl,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
}

/// Opens the connection for `url`; `h1_only` for upgrades (HTTP/2 has no `Upgrade`).
async fn open(
    client: &HttpClient,
    url: &HttpUrl,
    h1_only: bool,
) -> Result<(BoxStream, Proto), HttpError> {
    let stream = client
        .connector
        .connect(&url.host, url.port, &client.purpose)
        .await?;
    if !url.tls {
        // Plain HTTP is HTTP/1.1 whatever the version (Go does not speak h2c either).
        return Ok((stream, Proto::H1));
    }
    let opts = &client.options;
    let name_text = if opts.tls.server_name.is_empty() {
        url.host.as_str()
    } else {
        opts.tls.server_name.as_str()
    };
    let name = ServerName::try_from(name_text.to_string())
        .map_err(|_| HttpError::Url(format!("bad TLS server name {name_text:?}")))?;
    let config = if h1_only {
        client.tls_h1.clone()
    } else {
        client.tls.clone()
    };
    let handshake = crate::tls_stream::connect(config, name, stream);
    let tls = if opts.tls.handshake_timeout.is_zero() {
        handshake.await?
    } else {
        let after = opts.tls.handshake_timeout.to_std();
        tokio::time::timeout(after, handshake)
            .await
            .map_err(|_| HttpError::TlsHandshakeTimeout(after))??
    };
    let proto = if tls.alpn() == Some(b"h2") {
        Proto::H2
    } else {
        Proto::H1
    };
    if proto == Proto::H1
        && !h1_only
        && opts.version == HttpVersion::Http2
        && opts.disable_version_fallback
    {
        return Err(HttpError::Protocol(
            "the server did not choose HTTP/2 and disable_version_fallback is set".into(),
        ));
    }
    Ok((Box::new(tls), proto))
}

/// Builds the hyper request: origin-form target and `Host` on HTTP/1.1, absolute URI (so
/// `:authority`) on HTTP/2. A `Host` header among the client's or the request's headers
/// names the request host, as Go's client does.
fn request(
    client: &HttpClient,
    out: Outgoing,
    proto: Proto,
    upgrade: bool,
) -> Result<Request<BoxBody<Bytes, std::io::Error>>, HttpError> {
    let mut headers = http::HeaderMap::new();
    let bad = |k: &str| HttpError::Url(format!("bad request header {k:?}"));
    let ua = format!("sb/{}", crate::VERSION);
    let defaults = vec![
        ("user-agent".to_string(), ua),
        ("accept".to_string(), "*/*".to_string()),
    ];
    // Each source replaces the names it sets (the request's over the client's over sb's
    // defaults); a name repeated within one source is sent once per value.
    for source in [&defaults, &client.options.headers, &out.headers] {
        let mut parsed = Vec::with_capacity(source.len());
        for (k, v) in source {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad(k))?;
            let value = HeaderValue::from_str(v).map_err(|_| bad(k))?;
            parsed.push((name, value));
        }
        for (name, _) in &parsed {
            headers.remove(name);
        }
        for (name, value) in parsed {
            headers.append(name, value);
        }
    }
    let host = match headers.remove(HOST) {
        Some(h) => h.to_str().map_err(|_| bad("Host"))?.to_string(),
        None => out.url.host_header(),
    };
    let uri = match proto {
        Proto::H1 => {
            headers.insert(HOST, HeaderValue::from_str(&host).map_err(|_| bad("Host"))?);
            if upgrade && !headers.contains_key(CONNECTION) {
                headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            } else if !upgrade {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            out.url.target.clone()
        }
        Proto::H2 => {
            // Connection-specific headers are not allowed on HTTP/2.
            headers.remove(CONNECTION);
            headers.remove(UPGRADE);
            let scheme = if out.url.tls { "https" } else { "http" };
            format!("{scheme}://{host}{}", out.url.target)
        }
    };
    let mut req = Request::builder()
        .method(out.method)
        .uri(uri)
        .body(out.body.0)
        .map_err(|e| HttpError::Url(e.to_string()))?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// Sends `out` and returns the response with its body unread.
pub(super) async fn send(
    client: &HttpClient,
    out: Outgoing,
    upgrade: bool,
) -> Result<(Response<Incoming>, ConnGuard), HttpError> {
    let (stream, proto) = open(client, &out.url, upgrade).await?;
    let req = request(client, out, proto, upgrade)?;
    match proto {
        Proto::H1 => send_h1(stream, req).await,
        Proto::H2 => {
            let io = TokioIo::new(stream);
            let h2 = &client.options.http2;
            let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
            builder.timer(TokioTimer::new());
            if let Some(w) = h2.stream_window {
                builder.initial_stream_window_size(w);
            }
            if let Some(w) = h2.connection_window {
                builder.initial_connection_window_size(w);
            }
            if let Some(period) = h2.keep_alive_period {
                builder.keep_alive_interval(period);
            }
            let (mut sender, conn) = builder.handshake(io).await.map_err(HttpError::from_hyper)?;
            let task = tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::trace!("http client connection: {e}");
                }
            });
            let resp = sender.send_request(req).await;
            let guard = ConnGuard {
                task: Some(task),
                _h2: Some(sender),
            };
            Ok((resp.map_err(HttpError::from_hyper)?, guard))
        }
    }
}

/// HTTP/1.1 on `stream`: `req` as it is, the response with its body unread. The connection
/// task also completes an upgrade when the server answers `101`.
pub(super) async fn send_h1(
    stream: BoxStream,
    req: Request<BoxBody<Bytes, std::io::Error>>,
) -> Result<(Response<Incoming>, ConnGuard), HttpError> {
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        // Servers are case-insensitive, but people reading captures are not.
        .title_case_headers(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(HttpError::from_hyper)?;
    let task = tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::trace!("http client connection: {e}");
        }
    });
    let guard = ConnGuard {
        task: Some(task),
        _h2: None,
    };
    let resp = sender
        .send_request(req)
        .await
        .map_err(HttpError::from_hyper)?;
    Ok((resp, guard))
}

/// The response head and its streaming body.
pub(super) fn split(resp: Response<Incoming>, guard: ConnGuard) -> (super::Head, Body) {
    let head = super::Head::of(&resp);
    (head, Body::new(resp.into_body(), guard))
}
