//! The `udp` transport against a loopback server the test plays, and a spoofer beside it
//! (hardening finding 2): answers from another address, or with a pending query's id but
//! another question, must neither be taken nor fail the query.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::UdpTransport;
use crate::dialer::{DialOptions, Dialer};
use crate::dns::message::{addresses, encode, new_query, question, reply_with_ips};
use crate::dns::transport::Transport;
use crate::flow::Destination;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Receives one query: its message and who sent it.
async fn recv_query(server: &UdpSocket) -> (Message, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), server.recv_from(&mut buf))
        .await
        .expect("no query within 5 s")
        .unwrap();
    (Message::from_vec(&buf[..n]).unwrap(), from)
}

/// An answer to `query` with `ip` (its id, its question unless `other_name` says another).
fn answer(query: &Message, ip: &str, other_name: Option<&str>) -> Vec<u8> {
    let q = match other_name {
        Some(name) => {
            let mut m = new_query(name, RecordType::A).unwrap();
            m.metadata.id = query.metadata.id;
            return encode(&reply_with_ips(
                &m,
                question(&m).unwrap(),
                &[ip.parse().unwrap()],
                60,
            ))
            .unwrap();
        }
        None => question(query).unwrap(),
    };
    encode(&reply_with_ips(query, q, &[ip.parse().unwrap()], 60)).unwrap()
}

async fn transport() -> (UdpTransport, UdpSocket) {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let t = UdpTransport::new(
        "test-udp",
        Destination::from_socket(server.local_addr().unwrap()),
        Arc::new(Dialer::Direct(DialOptions::default())),
        Duration::from_secs(5),
    );
    (t, server)
}

fn ips(m: &Message) -> Vec<IpAddr> {
    addresses(m)
}

#[tokio::test]
async fn an_answer_from_another_address_is_not_taken() {
    let (t, server) = transport().await;
    let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let query = new_query("spoof.test", RecordType::A).unwrap();
    let ask = tokio::spawn(async move { t.exchange(&query).await });
    let (sent, client) = recv_query(&server).await;
    // The spoofer knows the id and the question (an on-path guess), and is first.
    spoofer
        .send_to(&answer(&sent, "6.6.6.6", None), client)
        .await
        .unwrap();
    server
        .send_to(&answer(&sent, "192.0.2.1", None), client)
        .await
        .unwrap();
    let got = ask.await.unwrap().unwrap();
    assert_eq!(ips(&got), ["192.0.2.1".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn a_pending_id_with_another_question_neither_answers_nor_fails_the_query() {
    let (t, server) = transport().await;
    let query = new_query("real.test", RecordType::A).unwrap();
    let ask = tokio::spawn(async move { t.exchange(&query).await });
    let (sent, client) = recv_query(&server).await;
    server
        .send_to(&answer(&sent, "6.6.6.6", Some("other.test")), client)
        .await
        .unwrap();
    server
        .send_to(&answer(&sent, "192.0.2.2", None), client)
        .await
        .unwrap();
    let got = ask.await.unwrap().unwrap();
    assert_eq!(ips(&got), ["192.0.2.2".parse::<IpAddr>().unwrap()]);
}
