//! The driver against a second boringtun tunnel played by the test over loopback UDP: what
//! leaves sb's socket, message by message.

use super::{Command, Driver};
use crate::endpoint::wireguard::routes::Routes;
use crate::endpoint::wireguard::settings::PeerSettings;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use sb_core::adapter::BoxPacketConn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// An IPv4 UDP packet from sb's tunnel address to the peer's.
fn packet(payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + 8 + payload.len()).unwrap();
    let mut p = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x30, 0x39, 0x00, 0x07]);
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// The next datagram the peer's socket gets (bounded wait).
async fn next(socket: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("a datagram from sb within 5 s")
        .unwrap();
    buf.truncate(n);
    buf
}

/// A packet sb has to send before any session exists, to a peer with no known endpoint
/// (a server-side peer), leaves once the peer's handshake completes: sb answers the
/// peer's initiation with a response and nothing else (a second initiation of sb's own
/// would cross the peer's handshake), and the peer's first data message releases it.
#[tokio::test]
async fn a_packet_waiting_for_the_peers_handshake_leaves_after_its_first_data() {
    let sb_secret = StaticSecret::from([1u8; 32]);
    let peer_secret = StaticSecret::from([2u8; 32]);
    let outer = sb_core::udp::DirectUdp::bind(&sb_core::dialer::DialOptions::default()).unwrap();
    let sb_port = outer.local_addr().unwrap().port();
    let outer: BoxPacketConn = Arc::new(outer);
    let settings = PeerSettings {
        public: PublicKey::from(&peer_secret),
        psk: None,
        allowed_ips: vec!["10.0.0.2/32".parse().unwrap()],
        endpoint: None,
        keepalive: None,
        reserved: None,
    };
    let routes = Arc::new(Routes::new(std::slice::from_ref(&settings)));
    let (to_stack, mut from_driver) = mpsc::channel(16);
    let (to_driver, from_stack) = mpsc::channel(16);
    let (_commands, commands_rx) = mpsc::unbounded_channel::<Command>();
    let driver = Driver::new(
        "test".into(),
        outer,
        sb_secret.clone(),
        &[settings],
        routes,
        to_stack,
        None,
    );
    let running = tokio::spawn(driver.run(from_stack, commands_rx));

    // The packet waits: no session, and nowhere to send an initiation.
    let waiting = packet(b"waited");
    to_driver.send(waiting.clone()).await.unwrap();

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sb = SocketAddr::from(([127, 0, 0, 1], sb_port));
    let mut peer = Tunn::new(
        peer_secret,
        PublicKey::from(&sb_secret),
        None,
        None,
        9,
        None,
    );
    let mut out = vec![0u8; 2048];
    let TunnResult::WriteToNetwork(init) = peer.format_handshake_initiation(&mut out, false) else {
        panic!("the peer makes an initiation");
    };
    socket.send_to(init, sb).await.unwrap();

    let response = next(&socket).await;
    assert_eq!(response.first(), Some(&2), "a handshake response first");
    let TunnResult::WriteToNetwork(keepalive) = peer.decapsulate(None, &response, &mut out) else {
        panic!("the peer takes sb's response");
    };
    assert_eq!(
        keepalive.first(),
        Some(&4),
        "the peer's first data: a keepalive"
    );
    socket.send_to(keepalive, sb).await.unwrap();

    let data = next(&socket).await;
    assert_eq!(
        data.first(),
        Some(&4),
        "after the response, the waiting packet as data (not an initiation of sb's own)"
    );
    match peer.decapsulate(None, &data, &mut out) {
        TunnResult::WriteToTunnelV4(p, _) => assert_eq!(p, waiting.as_slice()),
        _ => panic!("the waiting packet, decrypted"),
    }
    assert!(
        from_driver.try_recv().is_err(),
        "nothing came from the peer's tunnel"
    );
    running.abort();
}
