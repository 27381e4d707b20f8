//! The UDP relay with in-memory sides (hardening finding 15): a datagram the upstream cannot
//! send (no address for its name, too large) is dropped, and the association goes on.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::relay_udp;
use crate::adapter::{BoxFuture, BoxPacketConn, PacketConn};
use crate::flow::Destination;
use crate::relay::Counters;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A client that sends the queued datagrams, then waits (until the relay ends it).
struct Client(tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, Destination)>>);

impl PacketConn for Client {
    fn send_to<'a>(&'a self, _b: &'a [u8], _d: &'a Destination) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let (d, dest) = self
                .0
                .lock()
                .await
                .recv()
                .await
                .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "done"))?;
            buf[..d.len()].copy_from_slice(&d);
            Ok((d.len(), dest))
        })
    }
}

/// An upstream that cannot send to names ending in `.bad` (as a failed resolution) and
/// records what it sent; it never receives.
struct Upstream(Mutex<Vec<String>>);

impl PacketConn for Upstream {
    fn send_to<'a>(&'a self, _b: &'a [u8], dest: &'a Destination) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if dest.to_string().contains(".bad:") {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no address"));
            }
            self.0.lock().unwrap().push(dest.to_string());
            Ok(())
        })
    }
    fn recv_from<'a>(
        &'a self,
        _buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_datagram_that_cannot_be_sent_is_dropped_and_the_flow_goes_on() {
    let (tx, rx) = mpsc::channel(8);
    for dest in ["first.bad", "second.ok", "third.bad", "fourth.ok"] {
        tx.send((b"x".to_vec(), Destination::from_host(dest, 53)))
            .await
            .unwrap();
    }
    let client: BoxPacketConn = Arc::new(Client(tokio::sync::Mutex::new(rx)));
    let upstream = Arc::new(Upstream(Mutex::default()));
    let relay = tokio::spawn(relay_udp(
        client,
        upstream.clone(),
        Arc::new(Counters::default()),
        Duration::from_secs(60),
    ));
    // Idle for the timeout once the queue is drained: the relay ends on its own.
    let result = relay.await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        *upstream.0.lock().unwrap(),
        ["second.ok:53".to_string(), "fourth.ok:53".to_string()]
    );
}

/// The tunnel's socket gets the buffer it asks for (as root, past `rmem_max`); without
/// the privilege the kernel caps it, never below what the socket had.
#[tokio::test]
async fn a_tunnel_socket_grows_its_kernel_buffers() {
    let socket = super::DirectUdp::bind(&crate::dialer::DialOptions::default()).unwrap();
    let before = socket2::SockRef::from(&socket.socket)
        .recv_buffer_size()
        .unwrap();
    let got = socket.grow_buffers(4 << 20).unwrap();
    assert!(got >= before, "{got} < {before}");
    if nix::unistd::Uid::effective().is_root() {
        // Linux doubles the request for its bookkeeping.
        assert_eq!(got, 8 << 20);
    }
}

/// A run of datagrams handed to the socket at once arrives as the same datagrams, in order,
/// the shorter last one included, over IPv4 and IPv6 (one GSO send where the kernel can).
#[tokio::test]
async fn a_run_of_segments_arrives_as_its_datagrams() {
    let socket = super::DirectUdp::bind(&crate::dialer::DialOptions::default()).unwrap();
    for local in ["127.0.0.1:0", "[::1]:0"] {
        let receiver = tokio::net::UdpSocket::bind(local).await.unwrap();
        let dest = Destination::from_socket(receiver.local_addr().unwrap());
        let mut run = Vec::new();
        for i in 0..10u8 {
            run.extend_from_slice(&[i; 1200]);
        }
        run.extend_from_slice(&[10; 500]);
        socket.send_segments(&run, 1200, &dest).await.unwrap();
        let mut buf = [0u8; 2048];
        for i in 0..11u8 {
            let n = tokio::time::timeout(Duration::from_secs(5), receiver.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            let want = if i < 10 { 1200 } else { 500 };
            assert_eq!(n, want, "datagram {i} to {local}");
            assert!(buf[..n].iter().all(|&b| b == i), "datagram {i} to {local}");
        }
    }
    // Loopback segments in software: the kernel took the run as one GSO send.
    assert!(socket.gso.load(std::sync::atomic::Ordering::Relaxed));
}

/// What waits on the socket comes out in runs of at most the buffers given, each datagram in
/// its own buffer with its length and its sender (an IPv4 sender unmapped), in order; the
/// rest comes with the next call, and a datagram sent later is received on its own.
/// The socket's next run of datagrams (bounded wait).
async fn next_run(
    socket: &super::DirectUdp,
    bufs: &mut [Vec<u8>],
    got: &mut Vec<(usize, Destination)>,
) {
    tokio::time::timeout(Duration::from_secs(5), socket.recv_batch(bufs, got))
        .await
        .expect("a datagram within 5 s")
        .unwrap();
}

#[tokio::test]
async fn datagrams_waiting_are_received_in_runs() {
    let socket = super::DirectUdp::bind(&crate::dialer::DialOptions::default()).unwrap();
    let port = socket.socket.local_addr().unwrap().port();
    let v4 = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let v6 = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
    for i in 0..5u8 {
        let (from, to) = if i % 2 == 0 {
            (&v4, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        } else {
            (
                &v6,
                std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            )
        };
        from.send_to(&vec![i; 100 + usize::from(i)], to)
            .await
            .unwrap();
    }
    let mut bufs: Vec<Vec<u8>> = (0..3).map(|_| vec![0u8; 2048]).collect();
    let mut got = Vec::new();
    let mut seen = Vec::new();
    let mut runs = Vec::new();
    // Bounded: five datagrams come in at most five calls.
    for _ in 0..5 {
        if seen.len() == 5 {
            break;
        }
        next_run(&socket, &mut bufs, &mut got).await;
        assert!(
            !got.is_empty() && got.len() <= 3,
            "{} in one run",
            got.len()
        );
        runs.push(got.len());
        for ((n, from), buf) in got.iter().zip(&bufs) {
            seen.push((buf[..*n].to_vec(), from.socket_addr().unwrap()));
        }
    }
    // Loopback queues a datagram within its send: all five waited, so one call took three.
    assert_eq!(runs, [3, 2]);
    for (i, (data, from)) in seen.iter().enumerate() {
        let i = u8::try_from(i).unwrap();
        assert_eq!(data, &vec![i; 100 + usize::from(i)], "datagram {i}");
        let sender = if i % 2 == 0 { &v4 } else { &v6 };
        assert_eq!(
            *from,
            sender.local_addr().unwrap(),
            "sender of datagram {i}"
        );
    }
    v4.send_to(b"late", ("127.0.0.1", port)).await.unwrap();
    next_run(&socket, &mut bufs, &mut got).await;
    assert_eq!(got.len(), 1);
    assert_eq!(&bufs[0][..got[0].0], b"late");
}
