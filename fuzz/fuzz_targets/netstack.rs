//! IP packets from a TUN client into sb's userspace stack (`sb_core::netstack`, feature
//! `netstack`, over the vendored netstack-smoltcp and smoltcp): each input is up to 16
//! packets written into a running stack's in-memory device (`MemoryDevice`), with flows
//! accepted by a handler that echoes what it reads, a UDP socket bound in the stack, and a
//! TCP connection the stack is opening into the device. So the pump, the ICMP reply check,
//! the fragment and address filters, smoltcp's IPv4/IPv6/TCP/ICMP code, the accept path
//! (a flow only once the handshake completes), the UDP NAT and its bound sockets all see
//! the packets.
//!
//! Each packet is led by a two-byte length and a control byte: bit 0 makes its length
//! fields and checksums right (`sb_fuzz::ip::fix`), bit 1 also sets a TCP segment's
//! acknowledgment number to follow the last segment the stack sent (its initial sequence
//! number is random), so inputs can complete handshakes and carry data.
//!
//! The stack runs on one current-thread tokio runtime made once; each input gets a new
//! stack (so an input alone reproduces what it does) and, after each packet, the runtime
//! runs until the stack's tasks have nothing left to do (bounded; no real sleeps).
//!
//! Checked: no panic (the stack's tasks would die with it, and sb with them), and the stack
//! is still running after the input.

#![no_main]

use futures::FutureExt;
use libfuzzer_sys::fuzz_target;
use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, FlowHandler, Responder};
use sb_core::flow::FlowContext;
use sb_core::netstack::{FlowSource, MemoryDevice, NetStack, Options, PacketPool, RxBatch};
use sb_fuzz::{ip, length_prefixed};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

const MTU: u16 = 1500;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// Accepted flows: TCP echoes what it reads, UDP echoes each datagram, until the input ends.
struct Echo {
    stop: watch::Receiver<bool>,
}

impl FlowHandler for Echo {
    fn handle_tcp(
        self: Arc<Self>,
        _flow: FlowContext,
        mut stream: BoxStream,
        _responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        let mut stop = self.stop.clone();
        Box::pin(async move {
            let echo = async {
                let mut buf = [0u8; 2048];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                let _ = stream.shutdown().await;
            };
            tokio::select! {
                () = echo => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        })
    }

    fn handle_udp(
        self: Arc<Self>,
        _flow: FlowContext,
        client: BoxPacketConn,
    ) -> BoxFuture<'static, ()> {
        let mut stop = self.stop.clone();
        Box::pin(async move {
            let echo = async {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, from)) = client.recv_from(&mut buf).await {
                    if client.send_to(&buf[..n], &from).await.is_err() {
                        return;
                    }
                }
            };
            tokio::select! {
                () = echo => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        })
    }
}

/// Lets the stack's tasks run until they wait on something that only a new packet (or
/// time) brings: yields until the device has been quiet for a few rounds, at most 256.
async fn settle(out: &mut mpsc::UnboundedReceiver<Vec<u8>>, sent: &mut Vec<Vec<u8>>) {
    let mut quiet = 0;
    for _ in 0..256 {
        tokio::task::yield_now().await;
        let before = sent.len();
        while let Ok(p) = out.try_recv() {
            sent.push(p);
        }
        quiet = if sent.len() == before { quiet + 1 } else { 0 };
        if quiet >= 8 {
            break;
        }
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

async fn run(data: &[u8]) {
    let (to_stack, incoming) = mpsc::unbounded_channel();
    let (outgoing, mut from_stack) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    let accept = FlowSource {
        tag: "tun-in".into(),
        kind: "tun",
        label: "inbound/tun[tun-in]".into(),
        handler: Arc::new(Echo { stop }),
        udp_timeout: None,
    };
    let options = Options {
        mtu: MTU,
        pool: PacketPool::for_mtu(usize::from(MTU)),
        batch: RxBatch::new(1, usize::from(MTU), 0),
        reflect: None,
        accept: Some(accept),
        max_udp_flows: 64,
        // A small budget of its own: an input may open connections past it.
        connections: sb_core::conn_limit::ConnBudget::new(64),
        beside: None,
    };
    let device = Arc::new(MemoryDevice::new(incoming, Some(outgoing)));
    let stack = NetStack::start(device, options).expect("the stack starts");
    // The owner's side: a bound UDP socket, and a connection being opened into the device
    // (the fuzzer's SYN-ACK may complete it).
    let socket = stack.bind_udp(addr("10.0.0.2:5353")).expect("a free port");
    // Fused: polled after each packet, also once it is done.
    let mut connecting = Box::pin(
        stack
            .connect_tcp(
                addr("10.0.0.2:40000"),
                addr("10.0.0.9:80"),
                Duration::from_secs(3600),
            )
            .fuse(),
    );

    // Asked for (its SYN sent) before the first packet comes in.
    let _ = (&mut connecting).now_or_never();
    let mut sent = Vec::new();
    settle(&mut from_stack, &mut sent).await;
    for piece in length_prefixed(data, 16) {
        let Some((&control, packet)) = piece.split_first() else {
            continue;
        };
        let mut packet = packet.to_vec();
        if control & 2 != 0 {
            if let Some(seen) = sent.iter().rev().find_map(|p| ip::tcp(p)) {
                ip::set_ack(&mut packet, seen.next());
            }
        }
        if control & 3 != 0 {
            ip::fix(&mut packet);
        }
        if to_stack.send(packet).is_err() {
            break;
        }
        settle(&mut from_stack, &mut sent).await;
        let _ = (&mut connecting).now_or_never();
        let mut buf = [0u8; 2048];
        let _ = socket.recv_from(&mut buf).now_or_never();
    }
    assert!(
        stack.stopped().now_or_never().is_none(),
        "the stack stopped on its own"
    );
    let _ = stop_tx.send(true);
    drop(connecting);
    settle(&mut from_stack, &mut sent).await;
    stack.close().await;
}

fuzz_target!(|data: &[u8]| {
    RUNTIME.block_on(run(data));
});
