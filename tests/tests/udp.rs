//! UDP flows end to end: a SOCKS5 UDP ASSOCIATE echo through the mixed inbound, and the
//! `direct` inbound forwarding datagrams to an override destination. Echo servers bind port 0
//! on loopback; every receive is bounded by a timeout.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::Instance;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// A UDP echo server that prefixes replies with `tag`.
fn echo(tag: &'static str) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let mut out = tag.as_bytes().to_vec();
            out.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&out, from);
        }
    });
    addr
}

fn socks_udp_header(dest: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(d) = dest else {
        panic!("v4 only")
    };
    let mut h = vec![0, 0, 0, 1];
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// A SOCKS5 UDP ASSOCIATE through `proxy`, by hand: the control connection (read timeout
/// 10 s) and the relay address the proxy answered.
fn associate(proxy: SocketAddr) -> (TcpStream, SocketAddr) {
    let mut control = TcpStream::connect(proxy).unwrap();
    control
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    control.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    control.read_exact(&mut m).unwrap();
    control.write_all(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
    let mut reply = [0u8; 10];
    control.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0, "UDP ASSOCIATE refused: {reply:?}");
    let relay = SocketAddr::from((
        [reply[4], reply[5], reply[6], reply[7]],
        u16::from_be_bytes([reply[8], reply[9]]),
    ));
    (control, relay)
}

#[test]
fn socks5_udp_associate_echo() {
    let a = echo("A:");
    let b = echo("B:");
    let sb = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct"}]}"#,
    );
    let (_control, relay) = associate(sb.addr(0));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for (i, dest, tag) in [(0, a, "A:"), (1, a, "A:"), (2, b, "B:")] {
        let mut pkt = socks_udp_header(dest);
        pkt.extend_from_slice(format!("ping {i}").as_bytes());
        client.send_to(&pkt, relay).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, relay);
        // The reply's header names the echo server that sent it.
        assert_eq!(&buf[..10], &socks_udp_header(dest)[..]);
        assert_eq!(&buf[10..n], format!("{tag}ping {i}").as_bytes());
    }
}

#[test]
fn direct_inbound_forwards_datagrams() {
    let target = echo("E:");
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "direct", "tag": "d", "listen_port": 0, "network": "udp",
                          "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}]}}"#,
        target.port()
    ));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..20 {
        client
            .send_to(format!("datagram {i}").as_bytes(), sb.addr(0))
            .unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, sb.addr(0));
        assert_eq!(&buf[..n], format!("E:datagram {i}").as_bytes());
    }
}

#[test]
fn direct_inbound_carries_tcp_and_udp_on_one_port() {
    let target_udp = echo("U:");
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "direct", "tag": "d", "listen_port": 0, "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}]}}"#,
        target_udp.port()
    ));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.send_to(b"x", sb.addr(0)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"U:x");
    // TCP is served on the same port.
    TcpStream::connect(sb.addr(0)).unwrap();
}

/// Sends `msg` to sb's `direct` inbound at `front` and returns the reply.
fn round_trip(front: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.send_to(msg, front).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = c
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no UDP reply through sb: {e}"));
    buf[..n].to_vec()
}

/// A `direct` inbound forwarding datagrams to `echo`, routed to the outbound `outbounds[0]`.
fn udp_front(echo: SocketAddr, outbounds: &str) -> Instance {
    Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "direct", "tag": "d", "network": "udp", "listen_port": 0,
                           "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{outbounds}]}}"#,
        echo.port()
    ))
}

#[test]
fn socks_outbound_carries_udp_with_udp_associate() {
    let e = echo("E:");
    // The SOCKS server is a second sb (mixed inbound, direct outbound).
    let server = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct"}]}"#,
    );
    let s = server.addr(0);
    let front = udp_front(
        e,
        &format!(
            r#"{{"type": "socks", "tag": "up", "server": "127.0.0.1", "server_port": {}}}"#,
            s.port()
        ),
    );
    assert_eq!(round_trip(front.addr(0), b"one"), b"E:one");
    assert_eq!(round_trip(front.addr(0), b"two"), b"E:two");
    // The flows really went through the SOCKS server: it tracked UDP flows of its own.
    assert!(
        server
            .tracker
            .snapshot()
            .iter()
            .any(|t| t.flow.network == sb_core::flow::Network::Udp),
        "the SOCKS server saw no UDP flow"
    );
}

#[test]
fn socks_udp_through_a_detour_and_tcp_only_refusal() {
    let e = echo("E:");
    let server = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct"}]}"#,
    );
    let s = server.addr(0);
    // `outer` reaches the SOCKS server through `inner`, which is itself a SOCKS client of
    // the same server: the association's datagrams travel inside inner's association.
    let front = udp_front(
        e,
        &format!(
            r#"{{"type": "socks", "tag": "outer", "server": "127.0.0.1", "server_port": {p}, "detour": "inner"}},
               {{"type": "socks", "tag": "inner", "server": "127.0.0.1", "server_port": {p}}}"#,
            p = s.port()
        ),
    );
    assert_eq!(round_trip(front.addr(0), b"via"), b"E:via");
    let udp_flows = server
        .tracker
        .snapshot()
        .iter()
        .filter(|t| t.flow.network == sb_core::flow::Network::Udp)
        .count();
    assert_eq!(udp_flows, 2, "expected the inner and the outer association");

    // `network: tcp` means no UDP: the flow fails instead of leaving some other way.
    let tcp_only = udp_front(
        e,
        &format!(
            r#"{{"type": "socks", "tag": "up", "server": "127.0.0.1", "server_port": {}, "network": "tcp"}}"#,
            s.port()
        ),
    );
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    c.send_to(b"x", tcp_only.addr(0)).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        c.recv_from(&mut buf).is_err(),
        "a tcp-only outbound carried UDP"
    );
}

#[test]
fn udp_timeout_from_the_inbound_and_from_route_options() {
    let e = echo("E:");
    let inbound = |tag: &str, timeout: &str| {
        format!(
            r#"{{"type": "direct", "tag": "{tag}", "network": "udp", "listen_port": 0, "udp_timeout": "{timeout}",
                 "override_address": "127.0.0.1", "override_port": {}}}"#,
            e.port()
        )
    };
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{}, {}, {}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"rules": [{{"inbound": "override", "action": "route-options", "udp_timeout": "1s"}}]}}}}"#,
        inbound("short", "1s"),
        inbound("long", "1h"),
        inbound("override", "1h"),
    ));
    for i in 0..3 {
        assert_eq!(round_trip(sb.addr(i), b"x"), b"E:x");
    }
    let live = |tag: &str| {
        sb.tracker
            .snapshot()
            .iter()
            .any(|t| &*t.flow.inbound_tag == tag)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while live("short") || live("override") {
        assert!(
            std::time::Instant::now() < deadline,
            "1 s UDP flows still open after 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(live("long"), "the flow with a 1 h timeout ended early");
}

/// Bytes from a hex file of the sniffer's captured samples.
fn sample(name: &str) -> Vec<u8> {
    let path = sb_tests::workspace()
        .join("sb-core/src/sniff/testdata")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let digits: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|c| (c as char).to_digit(16).unwrap() as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

#[test]
fn udp_flows_are_sniffed_and_routed_by_protocol_and_quic_sni() {
    let e = echo("E:");
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "direct", "tag": "d", "network": "udp", "listen_port": 0,
                           "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{{"type": "block", "tag": "block"}}, {{"type": "direct", "tag": "dns-out"}},
                          {{"type": "direct", "tag": "quic-out"}}],
            "route": {{"rules": [{{"action": "sniff"}},
                                 {{"protocol": "dns", "outbound": "dns-out"}},
                                 {{"protocol": "quic", "domain": "example.com", "outbound": "quic-out"}}],
                      "final": "block"}}}}"#,
        e.port()
    ));
    let chain_of = |c: &UdpSocket| {
        let port = c.local_addr().unwrap().port();
        sb.tracker
            .snapshot()
            .iter()
            .find(|t| t.flow.source.port() == port)
            .map(|t| (t.flow.protocol, t.chain.clone()))
    };
    // A DNS query, as `dig` sent it.
    let dns = hex_bytes("6b6c01200001000000000001074578616d706c6503434f4d000001000100002904d000000000000c000a0008f26c3fcd5506ba9a");
    // The client Initial of RFC 9001 appendix A.2 (SNI example.com).
    let quic = sample("rfc9001_a2_client_initial.hex");
    for (payload, want) in [(dns, ("dns", "dns-out")), (quic, ("quic", "quic-out"))] {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.send_to(&payload, sb.addr(0)).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = c
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{want:?}: no reply: {e}"));
        // The sniffed datagram itself was relayed, unchanged.
        assert_eq!(&buf[2..n], &payload[..], "{want:?}");
        let (protocol, chain) = chain_of(&c).unwrap();
        assert_eq!(protocol, Some(want.0));
        assert_eq!(chain, [want.1]);
    }
    // Anything else is not sniffed and falls to `block`: no reply.
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    c.send_to(b"just some bytes", sb.addr(0)).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        c.recv_from(&mut buf).is_err(),
        "an unsniffed flow was not blocked"
    );
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// Hardening finding 7: a UDP ASSOCIATE whose client never sends a datagram held its relay
/// socket and control connection forever. It ends after the inbound's `udp_timeout`, as an
/// idle association does.
#[test]
fn an_association_that_never_carries_a_datagram_ends() {
    let sb = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0, "udp_timeout": "1s"}],
            "outbounds": [{"type": "direct", "tag": "direct"}]}"#,
    );
    let (mut control, _relay) = associate(sb.addr(0));
    // Nothing is sent: sb closes the control connection once the association idled out.
    let mut b = [0u8; 1];
    let n = control
        .read(&mut b)
        .expect("the association must end within 10 s, not hold on");
    assert_eq!(n, 0);
}
