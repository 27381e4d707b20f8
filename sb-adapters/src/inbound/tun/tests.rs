//! The packet pump, the stack and the flow layer driven by an in-memory device: crafted
//! IPv4/IPv6 TCP, UDP and ICMP packets go in, the stack's answers come out, and the flows
//! reach a handler with their real destinations. No TUN, no root.

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, FlowHandler, Responder};
use sb_core::flow::{FlowContext, Network};
use sb_core::netstack::{FlowSource, MemoryDevice, NetStack, PacketPool, RxBatch};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A handler that echoes every flow back and reports it.
struct Echo {
    flows: mpsc::UnboundedSender<FlowContext>,
}

impl FlowHandler for Echo {
    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        mut stream: BoxStream,
        _responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.flows.send(flow);
            let mut buf = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
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
            let mut buf = [0u8; 2048];
            while let Ok((n, dest)) = client.recv_from(&mut buf).await {
                if client.send_to(&buf[..n], &dest).await.is_err() {
                    break;
                }
            }
        })
    }
}

struct Harness {
    pool: PacketPool,
    inject: mpsc::UnboundedSender<Vec<u8>>,
    sent: mpsc::UnboundedReceiver<Vec<u8>>,
    flows: mpsc::UnboundedReceiver<FlowContext>,
    /// Stops the stack's tasks when the harness is dropped.
    _stack: NetStack,
}

fn start() -> Harness {
    start_with(super::loopback::Loopback::default())
}

fn start_with(loopback: super::loopback::Loopback) -> Harness {
    let (inject, incoming) = mpsc::unbounded_channel();
    let (outgoing, sent) = mpsc::unbounded_channel();
    let (flows_tx, flows) = mpsc::unbounded_channel();
    let device = Arc::new(MemoryDevice::new(incoming, Some(outgoing)));
    let source = FlowSource {
        tag: "tun-in".into(),
        kind: "tun",
        label: "inbound/tun[tun-in]".into(),
        handler: Arc::new(Echo { flows: flows_tx }),
        udp_timeout: Some(Duration::from_secs(7)),
    };
    let pool = PacketPool::for_mtu(1500);
    let stack = super::serve(
        device,
        RxBatch::new(1, 65_535, 0),
        1500,
        pool.clone(),
        loopback,
        source,
    )
    .unwrap();
    Harness {
        pool,
        inject,
        sent,
        flows,
        _stack: stack,
    }
}

impl Harness {
    async fn send(&self, pkt: Vec<u8>) {
        self.inject.send(pkt).unwrap();
    }
    /// The next packet sb writes to the device (bounded wait).
    async fn next_sent(&mut self) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(5), self.sent.recv())
            .await
            .expect("no packet from the stack within 5 s")
            .expect("device closed")
    }
    /// The next packet that carries a payload.
    async fn next_with_payload(&mut self) -> Vec<u8> {
        loop {
            let p = self.next_sent().await;
            let s = SlicedPacket::from_ip(&p).unwrap();
            if !transport_payload(&s).is_empty() {
                return p;
            }
        }
    }
    async fn next_flow(&mut self) -> FlowContext {
        tokio::time::timeout(Duration::from_secs(5), self.flows.recv())
            .await
            .expect("no flow within 5 s")
            .expect("handler gone")
    }
}

fn transport_payload<'a>(s: &SlicedPacket<'a>) -> &'a [u8] {
    match &s.transport {
        Some(TransportSlice::Tcp(t)) => t.payload(),
        Some(TransportSlice::Udp(u)) => u.payload(),
        _ => &[],
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn builder(
    src: SocketAddr,
    dst: SocketAddr,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => PacketBuilder::ipv4(a.octets(), b.octets(), 64),
        (IpAddr::V6(a), IpAddr::V6(b)) => PacketBuilder::ipv6(a.octets(), b.octets(), 64),
        _ => panic!("mixed families"),
    }
}

fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let b = builder(src, dst).udp(src.port(), dst.port());
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn tcp(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = builder(src, dst).tcp(src.port(), dst.port(), seq, 64_000);
    if syn {
        b = b.syn();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

/// Source and destination of a packet.
fn ends(p: &[u8]) -> (SocketAddr, SocketAddr) {
    let s = SlicedPacket::from_ip(p).unwrap();
    let (src, dst): (IpAddr, IpAddr) = match s.net.as_ref().unwrap() {
        etherparse::NetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        etherparse::NetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
    };
    let (sp, dp) = match s.transport.as_ref().unwrap() {
        TransportSlice::Tcp(t) => (t.source_port(), t.destination_port()),
        TransportSlice::Udp(u) => (u.source_port(), u.destination_port()),
        _ => (0, 0),
    };
    (SocketAddr::new(src, sp), SocketAddr::new(dst, dp))
}

async fn tcp_echo_through_the_stack(client: SocketAddr, server: SocketAddr) {
    let mut h = start();
    h.send(tcp(client, server, 1000, None, true, b"")).await;
    // SYN-ACK from the destination the client asked for.
    let synack = h.next_sent().await;
    assert_eq!(ends(&synack), (server, client));
    let s = SlicedPacket::from_ip(&synack).unwrap();
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("not tcp")
    };
    assert!(t.syn() && t.ack(), "expected SYN-ACK");
    assert_eq!(t.acknowledgment_number(), 1001);
    let server_seq = t.sequence_number().wrapping_add(1);
    h.send(tcp(client, server, 1001, Some(server_seq), false, b""))
        .await;
    h.send(tcp(
        client,
        server,
        1001,
        Some(server_seq),
        false,
        b"hello tun",
    ))
    .await;

    let flow = h.next_flow().await;
    assert_eq!(flow.network, Network::Tcp);
    assert_eq!(flow.inbound_type, "tun");
    assert_eq!(&*flow.inbound_tag, "tun-in");
    assert_eq!(flow.source, client);
    assert_eq!(flow.destination.socket_addr(), Some(server));

    let echoed = h.next_with_payload().await;
    assert_eq!(ends(&echoed), (server, client));
    let s = SlicedPacket::from_ip(&echoed).unwrap();
    assert_eq!(transport_payload(&s), b"hello tun");
}

#[tokio::test]
async fn tcp_handshake_and_data_over_ipv4() {
    tcp_echo_through_the_stack(addr("10.0.0.2:40000"), addr("198.51.100.7:80")).await;
}

#[tokio::test]
async fn tcp_handshake_and_data_over_ipv6() {
    tcp_echo_through_the_stack(addr("[fd00::2]:40000"), addr("[2001:db8::7]:443")).await;
}

#[tokio::test]
async fn udp_flows_are_keyed_by_source_and_destination() {
    let mut h = start();
    let client = addr("10.0.0.2:5353");
    let (a, b) = (addr("192.0.2.1:53"), addr("192.0.2.2:53"));
    h.send(udp(client, a, b"to a")).await;
    let flow = h.next_flow().await;
    assert_eq!(flow.network, Network::Udp);
    assert_eq!(flow.destination.socket_addr(), Some(a));
    assert_eq!(flow.udp_timeout, Some(Duration::from_secs(7)));
    let reply = h.next_sent().await;
    assert_eq!(ends(&reply), (a, client));
    assert_eq!(
        transport_payload(&SlicedPacket::from_ip(&reply).unwrap()),
        b"to a"
    );

    // Same pair: the same flow; another destination: a flow of its own.
    h.send(udp(client, a, b"again")).await;
    let reply = h.next_sent().await;
    assert_eq!(
        transport_payload(&SlicedPacket::from_ip(&reply).unwrap()),
        b"again"
    );
    h.send(udp(client, b, b"to b")).await;
    let flow = h.next_flow().await;
    assert_eq!(flow.destination.socket_addr(), Some(b));
    assert_eq!(ends(&h.next_sent().await), (b, client));
    assert!(
        h.flows.try_recv().is_err(),
        "one flow per (source, destination)"
    );
}

#[tokio::test]
async fn udp_over_ipv6() {
    let mut h = start();
    let (client, server) = (addr("[fd00::2]:9999"), addr("[2001:db8::1]:7"));
    h.send(udp(client, server, b"v6")).await;
    assert_eq!(h.next_flow().await.destination.socket_addr(), Some(server));
    let reply = h.next_sent().await;
    assert_eq!(ends(&reply), (server, client));
}

#[tokio::test]
async fn icmp_echo_is_answered() {
    let mut h = start();
    let b = PacketBuilder::ipv4([10, 0, 0, 2], [203, 0, 113, 9], 64).icmpv4_echo_request(7, 1);
    let mut ping = Vec::new();
    b.write(&mut ping, b"ping!").unwrap();
    h.send(ping).await;
    let reply = h.next_sent().await;
    let s = SlicedPacket::from_ip(&reply).unwrap();
    let Some(TransportSlice::Icmpv4(icmp)) = s.transport else {
        panic!("not icmp")
    };
    assert!(matches!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::EchoReply(e) if e.id == 7 && e.seq == 1
    ));
    let etherparse::NetSlice::Ipv4(v4) = s.net.unwrap() else {
        panic!("not v4")
    };
    assert_eq!(
        v4.header().source_addr(),
        std::net::Ipv4Addr::new(203, 0, 113, 9)
    );
}

/// The packet path recycles its buffers: each UDP datagram echoed one at a time takes
/// every buffer it needs from the pool, and once the first exchange has put them there
/// none is allocated again. Without the pool the device pump, the stack's writes and the
/// UDP halves each allocated one per packet. (Pings are routed as ICMP flows and answered
/// outside the stack, one small allocation per reply.)
#[tokio::test]
async fn packet_buffers_come_back_to_the_pool_instead_of_being_allocated_per_packet() {
    const N: u16 = 50;
    let mut h = start();
    for seq in 0..N {
        let b =
            PacketBuilder::ipv4([10, 0, 0, 2], [203, 0, 113, 9], 64).icmpv4_echo_request(7, seq);
        let mut ping = Vec::new();
        b.write(&mut ping, &[0x5a; 1000]).unwrap();
        h.send(ping).await;
        assert_eq!(h.next_sent().await.len(), 20 + 8 + 1000);
    }
    let (fresh, reused) = h.pool.stats();

    let (client, server) = (addr("10.0.0.2:5353"), addr("192.0.2.1:53"));
    for _ in 0..N {
        h.send(udp(client, server, &[0xa5; 1000])).await;
        let reply = h.next_sent().await;
        assert_eq!(
            transport_payload(&SlicedPacket::from_ip(&reply).unwrap()),
            [0xa5; 1000]
        );
    }
    let (fresh2, reused2) = h.pool.stats();
    // Four per datagram: its frame, its payload handed to the flow, the reply's payload
    // and the reply's frame.
    let taken = fresh2 + reused2 - fresh - reused;
    assert!(taken >= 4 * u64::from(N), "{taken} buffers taken");
    assert!(
        fresh2 - fresh <= 4,
        "{} buffers allocated for {N} datagrams",
        fresh2 - fresh
    );
}

#[tokio::test]
async fn malformed_packets_do_not_stop_the_pump() {
    let mut h = start();
    for junk in [
        vec![],
        vec![0x45],
        vec![0x60; 10],
        vec![0xff; 100],
        vec![0x45; 1500],
    ] {
        h.send(junk).await;
    }
    // A truncated UDP packet (header says more than there is).
    let mut cut = udp(addr("10.0.0.2:1"), addr("192.0.2.1:2"), b"0123456789");
    cut.truncate(cut.len() - 4);
    h.send(cut).await;
    let (client, server) = (addr("10.0.0.2:4444"), addr("192.0.2.1:7"));
    h.send(udp(client, server, b"still alive")).await;
    assert_eq!(h.next_flow().await.destination.socket_addr(), Some(server));
    let reply = h.next_sent().await;
    assert_eq!(ends(&reply), (server, client));
}

#[tokio::test]
async fn icmpv6_echo_is_answered() {
    let mut h = start();
    let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        ("fd00::2".parse().unwrap(), "2001:db8::9".parse().unwrap());
    let b = PacketBuilder::ipv6(src.octets(), dst.octets(), 64).icmpv6_echo_request(9, 3);
    let mut ping = Vec::new();
    b.write(&mut ping, b"ping6").unwrap();
    h.send(ping).await;
    let reply = h.next_sent().await;
    let s = SlicedPacket::from_ip(&reply).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = s.transport else {
        panic!("not icmpv6")
    };
    assert!(matches!(
        icmp.icmp_type(),
        etherparse::Icmpv6Type::EchoReply(e) if e.id == 9 && e.seq == 3
    ));
    let etherparse::NetSlice::Ipv6(v6) = s.net.unwrap() else {
        panic!("not v6")
    };
    assert_eq!(v6.header().source_addr(), dst);
}

/// Regression test for the smoltcp 0.12 panic that netstack-smoltcp 0.2.4 shipped with: a
/// client that allows SACK, whose sequence numbers wrap past 2^32, sending segments out of
/// order made smoltcp's SACK code overflow (`assembler.rs`, "attempt to add with overflow"
/// under overflow checks), which killed the stack's task and with it every TCP connection
/// on the TUN. smoltcp 0.13.1 fixes it; here the data arrives whole and in order, and the
/// stack still accepts connections afterwards.
#[tokio::test]
async fn out_of_order_segments_across_sequence_wrap_with_sack() {
    let mut h = start();
    let (client, server) = (addr("10.0.0.2:40001"), addr("198.51.100.7:80"));
    let isn: u32 = u32::MAX - 150;
    let b = builder(client, server)
        .tcp(client.port(), server.port(), isn, 64_000)
        .syn()
        .options(&[
            etherparse::TcpOptionElement::MaximumSegmentSize(1460),
            etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
        ])
        .unwrap();
    let mut syn = Vec::new();
    b.write(&mut syn, b"").unwrap();
    h.send(syn).await;
    let synack = h.next_sent().await;
    let s = SlicedPacket::from_ip(&synack).unwrap();
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("not tcp")
    };
    let server_seq = t.sequence_number().wrapping_add(1);
    let base = isn.wrapping_add(1);
    h.send(tcp(client, server, base, Some(server_seq), false, b""))
        .await;
    assert_eq!(h.next_flow().await.source, client);
    // Six 100-byte segments, numbered by their byte, sent out of order across the wrap.
    let chunk = |k: u32| vec![b'a' + k as u8; 100];
    for k in [3u32, 5, 2, 1, 0, 4] {
        let seq = base.wrapping_add(100 * k);
        h.send(tcp(client, server, seq, Some(server_seq), false, &chunk(k)))
            .await;
    }
    // The echo handler returns the bytes in order once the holes are filled.
    let mut echoed = Vec::new();
    while echoed.len() < 600 {
        let p = h.next_with_payload().await;
        let s = SlicedPacket::from_ip(&p).unwrap();
        echoed.extend_from_slice(transport_payload(&s));
    }
    let want: Vec<u8> = (0..6).flat_map(chunk).collect();
    assert_eq!(echoed, want);
    // The stack is alive: a new connection is answered.
    let other = addr("10.0.0.2:40002");
    h.send(tcp(other, server, 5, None, true, b"")).await;
    loop {
        let p = h.next_sent().await;
        if ends(&p) == (server, other) {
            break;
        }
    }
}

/// `loopback_address`: a TCP packet to the address comes straight back out of the device
/// with source and destination swapped (checksums still valid), and never becomes a flow;
/// TCP to other addresses still reaches the stack.
#[tokio::test]
async fn tcp_to_a_loopback_address_is_turned_around_and_is_no_flow() {
    let mut h = start_with(super::loopback::Loopback::new(["10.7.0.1"
        .parse::<IpAddr>()
        .unwrap()]));
    let (client, lo) = (addr("172.19.0.1:40000"), addr("10.7.0.1:9099"));
    h.send(tcp(client, lo, 1000, None, true, b"")).await;
    let back = h.next_sent().await;
    assert_eq!(
        ends(&back),
        (addr("10.7.0.1:40000"), addr("172.19.0.1:9099")),
        "the client's own port 9099 is the destination now"
    );
    let p = etherparse::PacketHeaders::from_ip_slice(&back).unwrap();
    let Some(etherparse::NetHeaders::Ipv4(ip, _)) = &p.net else {
        panic!("not ipv4")
    };
    assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
    let Some(etherparse::TransportHeader::Tcp(t)) = &p.transport else {
        panic!("not tcp")
    };
    assert_eq!(
        t.calc_checksum_ipv4(ip, p.payload.slice()).unwrap(),
        t.checksum
    );
    assert!(t.syn);
    // Another destination is served by the stack as before.
    tcp_handshake(&mut h, client, addr("10.7.0.2:9099")).await;
    // The only flow is that one: the turned-around SYN, sent first, made none.
    let flow = h.next_flow().await;
    assert_eq!(flow.destination.socket_addr(), Some(addr("10.7.0.2:9099")));
    assert!(h.flows.try_recv().is_err());
}

/// Sends a SYN, expects the stack's SYN-ACK and completes the handshake (a flow starts
/// only then).
async fn tcp_handshake(h: &mut Harness, client: SocketAddr, server: SocketAddr) {
    h.send(tcp(client, server, 1000, None, true, b"")).await;
    let synack = h.next_sent().await;
    assert_eq!(ends(&synack), (server, client));
    let server_seq = synack_seq(&synack, client).expect("SYN-ACK");
    h.send(tcp(client, server, 1001, Some(server_seq), false, b""))
        .await;
}

/// The SYN-ACK the stack sent for `client`'s SYN: its sequence number plus one.
fn synack_seq(p: &[u8], client: SocketAddr) -> Option<u32> {
    let s = SlicedPacket::from_ip(p).ok()?;
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        return None;
    };
    (t.syn() && t.ack() && ends(p).1 == client).then(|| t.sequence_number().wrapping_add(1))
}

/// No flow arrives within a short bounded wait.
async fn no_flow_yet(h: &mut Harness, what: &str) {
    let got = tokio::time::timeout(Duration::from_millis(300), h.flows.recv()).await;
    assert!(got.is_err(), "{what}: a flow arrived: {got:?}");
}

mod hardening;
