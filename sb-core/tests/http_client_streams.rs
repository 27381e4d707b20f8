//! sb's HTTP client beyond GET and HEAD, against hand-written servers: a GET over a unix
//! socket (Tailscale's Local API is reached that way), a body read chunk by chunk while the
//! server is still sending, a POST with a body, an HTTP/1.1 upgrade whose stream then echoes,
//! and HTTP/2 chosen by ALPN (or refused when fallback is disabled).

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::http_client::{ClientOptions, Connector, HttpClient, HttpError, HttpVersion, Method};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Reads a request head: the request line and headers, without line ends.
async fn read_head<S: AsyncRead + Unpin>(s: &mut BufReader<S>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.unwrap() == 0 || line == "\r\n" {
            return lines;
        }
        lines.push(line.trim_end().to_string());
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A direct TCP client (the connector is what the other tests vary).
fn tcp_client(options: ClientOptions) -> HttpClient {
    let dialer = sb_core::dialer::Dialer::Direct(Default::default());
    HttpClient::with_connector(Connector::Dialer(Arc::new(dialer)), options).unwrap()
}

#[cfg(unix)]
#[tokio::test]
async fn get_over_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("sb-http-client-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut s = BufReader::new(s);
        let head = read_head(&mut s).await;
        let body = format!("{}|{}", head[0], header(&head, "host").unwrap_or(""));
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.get_mut().write_all(answer.as_bytes()).await.unwrap();
    });
    let client =
        HttpClient::with_connector(Connector::Unix(path.clone()), ClientOptions::default())
            .unwrap();
    let r = client
        .get("http://local-tailscaled.sock/localapi/v0/status", &[])
        .await
        .unwrap();
    assert_eq!(r.head.status, 200);
    assert_eq!(r.head.header("content-type"), Some("text/plain"));
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        "GET /localapi/v0/status HTTP/1.1|local-tailscaled.sock"
    );
    server.await.unwrap();
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn body_is_read_while_the_server_still_sends() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut s = BufReader::new(s);
        read_head(&mut s).await;
        let s = s.get_mut();
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .await
            .unwrap();
        // The rest only once the client has seen the first chunk.
        wait.await.unwrap();
        s.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await.unwrap();
    });
    let client = tcp_client(ClientOptions::default());
    let mut r = client
        .request(Method::GET, &format!("http://127.0.0.1:{port}/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.head.status, 200);
    assert_eq!(
        r.body.chunk().await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    go_on.send(()).unwrap();
    assert_eq!(
        r.body.chunk().await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(r.body.chunk().await.unwrap(), None);
}

#[tokio::test]
async fn post_with_a_body() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut s = BufReader::new(s);
        let head = read_head(&mut s).await;
        let len: usize = header(&head, "content-length").unwrap().parse().unwrap();
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.unwrap();
        let echo = format!(
            "{}|{}|{}",
            head[0],
            header(&head, "content-type").unwrap_or(""),
            String::from_utf8(body).unwrap()
        );
        let answer = format!(
            "HTTP/1.1 201 Made\r\nContent-Length: {}\r\n\r\n{echo}",
            echo.len()
        );
        s.get_mut().write_all(answer.as_bytes()).await.unwrap();
    });
    let client = tcp_client(ClientOptions::default());
    let r = client
        .request(Method::POST, &format!("http://127.0.0.1:{port}/echo"))
        .header("Content-Type", "text/plain")
        .body("hello, post")
        .fetch()
        .await
        .unwrap();
    assert_eq!((r.head.status, r.head.reason.as_str()), (201, "Made"));
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        "POST /echo HTTP/1.1|text/plain|hello, post"
    );
}

#[tokio::test]
async fn upgrade_hands_over_the_stream() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut s = BufReader::new(s);
        let head = read_head(&mut s).await;
        assert_eq!(header(&head, "upgrade"), Some("echo"));
        assert_eq!(header(&head, "connection"), Some("upgrade"));
        s.get_mut()
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
            )
            .await
            .unwrap();
        // Echo until the client closes.
        let mut buf = [0u8; 64];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.get_mut().write_all(&buf[..n]).await.unwrap();
        }
    });
    let client = tcp_client(ClientOptions::default());
    let (head, mut stream) = client
        .request(Method::GET, &format!("http://127.0.0.1:{port}/up"))
        .header("Upgrade", "echo")
        .upgrade()
        .await
        .unwrap();
    assert_eq!(head.status, 101);
    assert_eq!(head.header("upgrade"), Some("echo"));
    for word in ["ping", "pong, longer"] {
        stream.write_all(word.as_bytes()).await.unwrap();
        let mut back = vec![0u8; word.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, word.as_bytes());
    }
    stream.shutdown().await.unwrap();

    // A server that does not switch is an error naming its answer.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut s = BufReader::new(s);
        read_head(&mut s).await;
        let _ = s
            .get_mut()
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let e = client
        .request(Method::GET, &format!("http://127.0.0.1:{port}/up"))
        .header("Upgrade", "echo")
        .upgrade()
        .await
        .err()
        .unwrap();
    assert!(matches!(e, HttpError::NotUpgraded(400, _, _)), "{e}");
}

/// An HTTPS server offering only `alpn`; on `h2` it answers every stream with "h2 ok".
async fn tls_server(alpn: &[&[u8]]) -> (u16, rustls::pki_types::CertificateDer<'static>) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = key.cert.der().clone();
    let pkey = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], pkey)
        .unwrap();
    server.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                let Ok(mut conn) = h2::server::handshake(tls).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    let resp = http::Response::builder().status(200).body(()).unwrap();
                    let mut send = respond.send_response(resp, false).unwrap();
                    send.send_data(bytes::Bytes::from_static(b"h2 ok"), true)
                        .unwrap();
                }
            });
        }
    });
    (port, cert)
}

#[tokio::test]
async fn http2_when_the_server_chooses_it() {
    let (port, cert) = tls_server(&[b"h2"]).await;
    let client = tcp_client(ClientOptions {
        extra_roots: vec![cert.clone()],
        ..Default::default()
    });
    let r = client
        .get(&format!("https://localhost:{port}/x"), &[])
        .await
        .unwrap();
    assert_eq!(r.head.version, http::Version::HTTP_2);
    assert_eq!((r.head.status, r.body.as_slice()), (200, &b"h2 ok"[..]));

    // A server that only speaks HTTP/1.1 is refused when fallback is disabled.
    let (port, cert) = tls_server(&[b"http/1.1"]).await;
    let strict = tcp_client(ClientOptions {
        extra_roots: vec![cert],
        version: HttpVersion::Http2,
        disable_version_fallback: true,
        ..Default::default()
    });
    let e = strict
        .get(&format!("https://localhost:{port}/x"), &[])
        .await
        .unwrap_err();
    assert!(!matches!(e, HttpError::Timeout(_)), "{e}");
}
