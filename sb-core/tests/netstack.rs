//! The shared userspace stack with two stacks joined by an in-memory device pair: one opens
//! TCP connections, UDP sockets and pings into its device, the other accepts them as flows
//! (as a TUN or an endpoint's inbound side does). 100 MiB are hashed through one TCP
//! connection, UDP is echoed, pings are answered, and a dial into a silent device times out.

#![cfg(feature = "netstack")]
// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, FlowHandler, Responder};
use sb_core::conn_limit::ConnBudget;
use sb_core::flow::FlowContext;
use sb_core::netstack::{FlowSource, MemoryDevice, NetStack, Options, PacketPool, RxBatch};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const MTU: u16 = 1500;

/// The accepting side's flows: TCP answers the SHA-256 of everything read, UDP echoes.
struct Server {
    flows: mpsc::UnboundedSender<FlowContext>,
}

impl FlowHandler for Server {
    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        mut stream: BoxStream,
        _responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.flows.send(flow);
            let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => hash.update(&buf[..n]),
                }
            }
            let _ = stream.write_all(hash.finish().as_ref()).await;
            let _ = stream.shutdown().await;
        })
    }
    fn handle_udp(
        self: Arc<Self>,
        flow: FlowContext,
        client: BoxPacketConn,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.flows.send(flow);
            let mut buf = vec![0u8; 2048];
            while let Ok((n, dest)) = client.recv_from(&mut buf).await {
                if client.send_to(&buf[..n], &dest).await.is_err() {
                    break;
                }
            }
        })
    }
}

fn options(accept: Option<FlowSource>) -> Options {
    Options {
        mtu: MTU,
        pool: PacketPool::for_mtu(usize::from(MTU)),
        batch: RxBatch::new(1, usize::from(MTU), 0),
        reflect: None,
        accept,
        max_udp_flows: sb_core::netstack::MAX_UDP_FLOWS,
        connections: ConnBudget::process(),
        beside: None,
    }
}

/// The accepting side's owner: flows go to [`Server`], reported on `flows`.
fn source(flows: mpsc::UnboundedSender<FlowContext>) -> FlowSource {
    FlowSource {
        tag: "peer".into(),
        kind: "test",
        label: "endpoint/test[peer]".into(),
        handler: Arc::new(Server { flows }),
        udp_timeout: None,
    }
}

/// A dialing stack and an accepting one, joined; the accepting side's flows are reported.
fn pair() -> (NetStack, NetStack, mpsc::UnboundedReceiver<FlowContext>) {
    let (a, b) = MemoryDevice::pair();
    let (flows_tx, flows) = mpsc::unbounded_channel();
    let source = source(flows_tx);
    let dialer = NetStack::start(Arc::new(a), options(None)).unwrap();
    let acceptor = NetStack::start(Arc::new(b), options(Some(source))).unwrap();
    (dialer, acceptor, flows)
}

/// Like [`pair`], with a tap on what the accepting stack sends: for each TCP packet, its
/// destination port and the window it advertises in bytes (scaled as its SYN said).
fn tapped_pair() -> (
    NetStack,
    NetStack,
    mpsc::UnboundedReceiver<FlowContext>,
    mpsc::UnboundedReceiver<(u16, u64)>,
) {
    let (to_dialer, dialer_in) = mpsc::unbounded_channel::<Vec<u8>>();
    let (to_acceptor, acceptor_in) = mpsc::unbounded_channel();
    let (tap, mut tapped) = mpsc::unbounded_channel::<Vec<u8>>();
    let (windows_tx, windows) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut shifts = std::collections::HashMap::new();
        while let Some(p) = tapped.recv().await {
            if let Some(w) = advertised_window(&p, &mut shifts) {
                let _ = windows_tx.send(w);
            }
            if to_dialer.send(p).is_err() {
                break;
            }
        }
    });
    let (flows_tx, flows) = mpsc::unbounded_channel();
    let source = source(flows_tx);
    let dialer = MemoryDevice::new(dialer_in, Some(to_acceptor));
    let acceptor = MemoryDevice::new(acceptor_in, Some(tap));
    let dialer = NetStack::start(Arc::new(dialer), options(None)).unwrap();
    let acceptor = NetStack::start(Arc::new(acceptor), options(Some(source))).unwrap();
    (dialer, acceptor, flows, windows)
}

/// (destination port, window in bytes) of an IPv4 TCP packet; a SYN's window scale option
/// is remembered per port (a SYN's own window is not scaled).
fn advertised_window(
    p: &[u8],
    shifts: &mut std::collections::HashMap<u16, u32>,
) -> Option<(u16, u64)> {
    if p.first()? >> 4 != 4 || *p.get(9)? != 6 {
        return None;
    }
    let tcp = p.get(usize::from(p[0] & 0x0f) * 4..)?;
    let port = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    let window = u64::from(u16::from_be_bytes([*tcp.get(14)?, *tcp.get(15)?]));
    if tcp.get(13)? & 0x02 != 0 {
        let mut options = tcp.get(20..usize::from(tcp.get(12)? >> 4) * 4)?;
        while let [kind, rest @ ..] = options {
            match kind {
                0 => break,
                1 => options = rest,
                _ => {
                    let len = usize::from(*rest.first()?).max(2);
                    if *kind == 3 {
                        shifts.insert(port, u32::from(*rest.get(1)?));
                    }
                    options = options.get(len..)?;
                }
            }
        }
        return Some((port, window));
    }
    Some((port, window << shifts.get(&port).copied().unwrap_or(0)))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialed_tcp_connection_carries_100_mib_hashed() {
    let (dialer, _acceptor, mut flows) = pair();
    let mut conn = dialer
        .connect_tcp(addr("10.0.0.1:0"), addr("10.0.0.2:8080"), WAIT)
        .await
        .unwrap();
    let local = conn.local_addr();
    assert_eq!(local.ip(), addr("10.0.0.1:0").ip());
    assert!((49152..=65535).contains(&local.port()), "{local}");
    assert_eq!(conn.peer_addr(), addr("10.0.0.2:8080"));
    let flow = tokio::time::timeout(WAIT, flows.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*flow.inbound_tag, "peer");
    assert_eq!(flow.inbound_type, "test");
    assert_eq!(flow.source, local);
    assert_eq!(flow.destination.socket_addr(), Some(addr("10.0.0.2:8080")));

    const TOTAL: usize = 100 << 20;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    let mut x: u32 = 0x9e37_79b9;
    while sent < TOTAL {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        conn.write_all(&chunk).await.unwrap();
        hash.update(&chunk);
        sent += chunk.len();
    }
    expect_hash_back(&mut conn, hash).await;
}

/// Closes `conn`'s sending half and checks that the acceptor's answer is `hash` of what
/// was sent.
async fn expect_hash_back<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    conn: &mut S,
    hash: ring::digest::Context,
) {
    conn.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, hash.finish().as_ref());
}

#[tokio::test]
async fn a_bound_udp_socket_is_echoed_from_the_address_it_sent_to() {
    let (dialer, _acceptor, mut flows) = pair();
    let sock = dialer.bind_udp(addr("10.0.0.1:0")).unwrap();
    for (i, server) in ["10.0.0.2:7", "10.0.0.3:53"].iter().enumerate() {
        let msg = format!("datagram {i}");
        sock.send_to(msg.as_bytes(), addr(server)).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
        assert_eq!(from, addr(server));
        let flow = flows.recv().await.unwrap();
        assert_eq!(flow.source, sock.local_addr());
    }
    // IPv6 too, and the same port twice is refused while the first is bound.
    let v6 = dialer.bind_udp(addr("[fd00::1]:4000")).unwrap();
    assert_eq!(
        dialer
            .bind_udp(addr("[fd00::1]:4000"))
            .err()
            .map(|e| e.kind()),
        Some(io::ErrorKind::AddrInUse)
    );
    v6.send_to(b"six", addr("[fd00::2]:7")).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = tokio::time::timeout(WAIT, v6.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"six"[..], addr("[fd00::2]:7")));
    drop(v6);
    assert!(
        dialer.bind_udp(addr("[fd00::1]:4000")).is_ok(),
        "unbound when dropped"
    );
}

#[tokio::test]
async fn pings_are_answered_by_the_other_stack() {
    let (dialer, _acceptor, _flows) = pair();
    for (local, remote) in [("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")] {
        let rtt = dialer
            .ping(local.parse().unwrap(), remote.parse().unwrap(), WAIT)
            .await
            .unwrap();
        assert!(rtt < WAIT);
    }
}

#[tokio::test]
async fn dialing_into_a_silent_device_times_out() {
    let (_far, incoming) = mpsc::unbounded_channel();
    let silent = MemoryDevice::new(incoming, None);
    let stack = NetStack::start(Arc::new(silent), options(None)).unwrap();
    let e = stack
        .connect_tcp(
            addr("10.0.0.1:0"),
            addr("10.0.0.2:80"),
            Duration::from_millis(300),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    let e = stack
        .ping(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
}

/// Hardening finding 7: the NAT of accepted UDP flows is bounded: past the bound, datagrams
/// of new (source, destination) pairs are dropped until flows end.
#[tokio::test]
async fn accepted_udp_flows_are_bounded() {
    let (a, b) = MemoryDevice::pair();
    let (flows_tx, mut flows) = mpsc::unbounded_channel();
    let source = source(flows_tx);
    let dialer = NetStack::start(Arc::new(a), options(None)).unwrap();
    let mut bounded = options(Some(source));
    bounded.max_udp_flows = 3;
    let _acceptor = NetStack::start(Arc::new(b), bounded).unwrap();
    let sock = dialer.bind_udp(addr("10.0.0.1:0")).unwrap();
    for port in 1..=5u16 {
        sock.send_to(b"x", SocketAddr::new("10.0.0.2".parse().unwrap(), port))
            .await
            .unwrap();
    }
    let mut seen = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), flows.recv()).await {
        seen += 1;
    }
    assert_eq!(seen, 3);
}

/// Hardening finding 7: connections the stack accepts count against the connection budget;
/// past it, a new one is closed at once and the open ones go on; once one ends, new ones
/// are taken again.
#[tokio::test]
async fn accepted_tcp_connections_are_bounded_by_the_budget() {
    let (a, b) = MemoryDevice::pair();
    let (flows_tx, mut flows) = mpsc::unbounded_channel();
    let source = source(flows_tx);
    let dialer = NetStack::start(Arc::new(a), options(None)).unwrap();
    let mut bounded = options(Some(source));
    bounded.connections = ConnBudget::new(2);
    let _acceptor = NetStack::start(Arc::new(b), bounded).unwrap();
    let dial = |port: u16| {
        dialer.connect_tcp(
            addr("10.0.0.1:0"),
            SocketAddr::new("10.0.0.2".parse().unwrap(), port),
            WAIT,
        )
    };
    let mut first = dial(1).await.unwrap();
    let _second = dial(2).await.unwrap();
    for _ in 0..2 {
        tokio::time::timeout(WAIT, flows.recv())
            .await
            .unwrap()
            .unwrap();
    }
    // The third completes its handshake and is closed: it reads an end (or a reset).
    let mut third = dial(3).await.unwrap();
    let mut b = [0u8; 32];
    let r = tokio::time::timeout(WAIT, third.read(&mut b))
        .await
        .unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    // One ends (the server answers its hash and closes); a new one is taken.
    first.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, first.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.len(), 32);
    drop(first);
    let mut fourth = dial(4).await.unwrap();
    let flow = tokio::time::timeout(WAIT, flows.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flow.destination.socket_addr().map(|a| a.port()), Some(4));
    fourth.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, fourth.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.len(), 32);
}

/// Sends 16 MiB through `conn` and checks that the acceptor answers their SHA-256.
async fn send_16_mib_hashed<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(conn: &mut S) {
    const TOTAL: usize = 16 << 20;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    for _ in 0..TOTAL / chunk.len() {
        conn.write_all(&chunk).await.unwrap();
        hash.update(&chunk);
    }
    expect_hash_back(conn, hash).await;
}

/// A connection's buffers start small and grow with its traffic: an idle connection keeps
/// advertising at most 64 KiB, one carrying 16 MiB comes to advertise more than the 320 KiB
/// netstack-smoltcp used to give every connection, and what it carried arrives intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_transfer_grows_the_window_an_idle_connection_keeps_it_small() {
    let (dialer, _acceptor, mut flows, mut windows) = tapped_pair();
    let mut idle = dialer
        .connect_tcp(addr("10.0.0.1:0"), addr("10.0.0.2:8080"), WAIT)
        .await
        .unwrap();
    let idle_port = idle.local_addr().port();
    idle.write_all(&[7u8; 1000]).await.unwrap();
    let mut bulk = dialer
        .connect_tcp(addr("10.0.0.1:0"), addr("10.0.0.2:8080"), WAIT)
        .await
        .unwrap();
    let bulk_port = bulk.local_addr().port();
    for _ in 0..2 {
        tokio::time::timeout(WAIT, flows.recv())
            .await
            .unwrap()
            .unwrap();
    }
    send_16_mib_hashed(&mut bulk).await;
    let (mut idle_max, mut bulk_max) = (0, 0);
    while let Ok((port, window)) = windows.try_recv() {
        if port == idle_port {
            idle_max = idle_max.max(window);
        } else if port == bulk_port {
            bulk_max = bulk_max.max(window);
        }
    }
    assert!(idle_max > 0 && idle_max <= 64 * 1024, "idle: {idle_max}");
    assert!(bulk_max > 320 * 1024, "bulk: {bulk_max}");
    assert!(bulk_max <= 1 << 20, "bulk: {bulk_max}");
}

/// Connections receiving at once share one receive budget: of two bulk transfers started
/// together, both come to advertise more than the initial 64 KiB, and the one that ends
/// first never more than half the 1 MiB a lone one may grow to (a path does not take more
/// in flight for having more connections on it); the other may take the whole budget once
/// it is alone. Both arrive intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transfers_at_once_share_the_receive_budget() {
    let (dialer, _acceptor, mut flows, mut windows) = tapped_pair();
    let mut transfers = Vec::new();
    for _ in 0..2 {
        let conn = dialer
            .connect_tcp(addr("10.0.0.1:0"), addr("10.0.0.2:8080"), WAIT)
            .await
            .unwrap();
        transfers.push(conn);
    }
    for _ in 0..2 {
        tokio::time::timeout(WAIT, flows.recv())
            .await
            .unwrap()
            .unwrap();
    }
    let ports: Vec<u16> = transfers.iter().map(|c| c.local_addr().port()).collect();
    let tasks: Vec<_> = transfers
        .into_iter()
        .map(|mut conn| tokio::spawn(async move { send_16_mib_hashed(&mut conn).await }))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut max = [0u64; 2];
    while let Ok((port, window)) = windows.try_recv() {
        if let Some(i) = ports.iter().position(|p| *p == port) {
            max[i] = max[i].max(window);
        }
    }
    assert!(
        max.iter().all(|m| *m > 64 * 1024),
        "a transfer never grew its window: {max:?}"
    );
    assert!(
        max.iter().any(|m| *m <= 512 * 1024),
        "both took more than their share: {max:?}"
    );
}
