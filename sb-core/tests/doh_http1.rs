//! DNS over HTTPS falling back to HTTP/1.1 (the server's ALPN offers only `http/1.1`): the
//! query goes as a POST through the HTTP client's HTTP/1.1 exchange and the answer comes back
//! with its id restored.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sb_config::model::shared::OutboundTls;
use sb_core::dialer::Dialer;
use sb_core::dns::https::{HttpsOptions, HttpsTransport};
use sb_core::dns::tls::TlsClient;
use sb_core::dns::transport::Transport;
use sb_core::flow::Destination;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::test]
async fn doh_over_http1() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let pem = key.cert.pem();
    let cert = key.cert.der().clone();
    let pkey = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], pkey)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let served = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut s = BufReader::new(acceptor.accept(s).await.unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let len: usize = head
            .iter()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        let mut wire = vec![0; len];
        s.read_exact(&mut wire).await.unwrap();
        let query = Message::from_vec(&wire).unwrap();
        let mut answer = query.clone();
        answer.metadata.message_type = MessageType::Response;
        let name = query.queries[0].name().clone();
        answer.add_answer(Record::from_rdata(
            name,
            60,
            RData::A("192.0.2.7".parse().unwrap()),
        ));
        let body = answer.to_vec().unwrap();
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend(body);
        s.get_mut().write_all(&out).await.unwrap();
        s.get_mut().shutdown().await.unwrap();
        head
    });
    let tls = OutboundTls {
        enabled: true,
        server_name: "localhost".into(),
        certificate: sb_config::types::Listable(vec![pem]),
        ..Default::default()
    };
    let transport = HttpsTransport::new(
        "doh",
        Destination::from_host("127.0.0.1", port),
        Arc::new(Dialer::Direct(Default::default())),
        TlsClient::new(Some(&tls), "127.0.0.1", &["h2", "http/1.1"]).unwrap(),
        HttpsOptions {
            host: "localhost".into(),
            path: "/dns-query".into(),
            get: false,
            headers: vec![("X-Test".into(), "1".into())],
        },
        Duration::from_secs(5),
    );
    let mut query = Message::query();
    query.metadata.id = 4321;
    query.add_query(Query::query(
        Name::from_ascii("example.com.").unwrap(),
        RecordType::A,
    ));
    let answer = transport.exchange(&query).await.unwrap();
    assert_eq!(answer.metadata.id, 4321);
    assert_eq!(answer.answers.len(), 1);
    let head = served.await.unwrap();
    assert_eq!(head[0], "POST /dns-query HTTP/1.1");
    for want in [
        "Host: localhost",
        "Content-Type: application/dns-message",
        "X-Test: 1",
    ] {
        assert!(head.iter().any(|l| l == want), "{want} in {head:?}");
    }
}
