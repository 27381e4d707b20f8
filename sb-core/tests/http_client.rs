//! sb's HTTP client against real servers on loopback: plain HTTP with fixed-length and
//! chunked bodies, HEAD, status codes, the body cap and the timeout; HTTPS with a
//! certificate made for the test (trusted through `extra_roots`, refused without it).

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::adapter::{BoxFuture, BoxStream, Outbound};
use sb_core::flow::{Destination, FlowContext, Host};
use sb_core::http_client::{ClientOptions, HttpClient, HttpError};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Dials the destination directly and counts its connections.
struct Dial(AtomicUsize);

impl Outbound for Dial {
    fn tag(&self) -> &str {
        "dial"
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn connect_tcp<'a>(
        &'a self,
        _f: &'a FlowContext,
        d: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let s = match &d.host {
                Host::Ip(ip) => TcpStream::connect((*ip, d.port)).await?,
                Host::Domain(n) => TcpStream::connect((n.as_str(), d.port)).await?,
            };
            Ok(Box::new(s) as BoxStream)
        })
    }
}

/// Reads a request head and returns its first line and headers.
async fn read_request<S: AsyncRead + Unpin>(s: &mut BufReader<S>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.unwrap() == 0 || line == "\r\n" {
            return lines;
        }
        lines.push(line.trim_end().to_string());
    }
}

/// Answers by path: `/len`, `/chunked`, `/big` (chunked, 1 MiB), `/304`, `/silent` (never
/// answers), anything else 404. Echoes the request head in an `X-Req` header.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(s: S) {
    let mut s = BufReader::new(s);
    let req = read_request(&mut s).await;
    let target = req[0].split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let echo = req.join("|");
    let answer: Vec<u8> = match path.as_str() {
        "/len" => format!("HTTP/1.1 200 OK\r\nX-Req: {echo}\r\nContent-Length: 5\r\n\r\nhello").into(),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"v1\"\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n"
            .to_vec(),
        "/big" => {
            let mut a = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..16 {
                a.extend(b"10000\r\n");
                a.extend(vec![b'x'; 0x10000]);
                a.extend(b"\r\n");
            }
            a.extend(b"0\r\n\r\n");
            a
        }
        "/304" => b"HTTP/1.1 304 Not Modified\r\n\r\n".to_vec(),
        "/silent" => {
            let mut rest = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest).await;
            return;
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let _ = s.get_mut().write_all(&answer).await;
    let _ = s.get_mut().shutdown().await;
}

async fn http_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s));
        }
    });
    addr
}

fn client(options: ClientOptions) -> (HttpClient, Arc<Dial>) {
    let dial = Arc::new(Dial(AtomicUsize::new(0)));
    (HttpClient::new(dial.clone(), options).unwrap(), dial)
}

#[tokio::test]
async fn plain_http() {
    let a = http_server().await;
    let (c, dial) = client(ClientOptions::default());
    let r = c
        .get(
            &format!("http://127.0.0.1:{}/len?q=1", a.port()),
            &[("If-None-Match", "\"e\"")],
        )
        .await
        .unwrap();
    assert_eq!((r.head.status, r.body.as_slice()), (200, &b"hello"[..]));
    let req = r.head.header("x-req").unwrap();
    assert!(req.starts_with("GET /len?q=1 HTTP/1.1|"), "{req}");
    assert!(
        req.contains(&format!("Host: 127.0.0.1:{}", a.port())),
        "{req}"
    );
    assert!(req.contains("If-None-Match: \"e\""), "{req}");

    let r = c
        .get(&format!("http://localhost:{}/chunked", a.port()), &[])
        .await
        .unwrap();
    assert_eq!(r.body, b"abcdefg");
    assert_eq!(r.head.header("etag"), Some("\"v1\""));

    let r = c
        .head(&format!("http://127.0.0.1:{}/len", a.port()))
        .await
        .unwrap();
    assert_eq!((r.head.status, r.body.len()), (200, 0));
    let r = c
        .get(&format!("http://127.0.0.1:{}/304", a.port()), &[])
        .await
        .unwrap();
    assert_eq!((r.head.status, r.body.len()), (304, 0));
    let r = c
        .get(&format!("http://127.0.0.1:{}/nope", a.port()), &[])
        .await
        .unwrap();
    assert_eq!(r.head.status, 404);
    let r = c
        .get(&format!("http://127.0.0.1:{}/big", a.port()), &[])
        .await
        .unwrap();
    assert_eq!(r.body.len(), 16 * 0x10000);
    assert_eq!(
        dial.0.load(Ordering::SeqCst),
        6,
        "one connection per request"
    );
}

#[tokio::test]
async fn body_cap_and_timeout() {
    let a = http_server().await;
    let (c, _) = client(ClientOptions {
        max_body: 100_000,
        timeout: Duration::from_millis(300),
        ..Default::default()
    });
    let e = c
        .get(&format!("http://127.0.0.1:{}/big", a.port()), &[])
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::TooLarge(100_000)), "{e}");
    let e = c
        .get(&format!("http://127.0.0.1:{}/silent", a.port()), &[])
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::Timeout(_)), "{e}");
    let e = c.get("ftp://127.0.0.1/x", &[]).await.unwrap_err();
    assert!(matches!(e, HttpError::Url(_)), "{e}");
}

#[tokio::test]
async fn https_with_a_private_root() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = key.cert.der().clone();
    let pkey = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], pkey)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    serve(tls).await;
                }
            });
        }
    });
    let url = format!("https://localhost:{port}/chunked");

    let (trusting, _) = client(ClientOptions {
        extra_roots: vec![cert],
        ..Default::default()
    });
    let r = trusting.get(&url, &[]).await.unwrap();
    assert_eq!((r.head.status, r.body.as_slice()), (200, &b"abcdefg"[..]));

    let (strict, _) = client(ClientOptions::default());
    let e = strict.get(&url, &[]).await.unwrap_err().to_string();
    assert!(e.contains("certificate"), "{e}");
}
