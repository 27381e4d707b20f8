//! UDP over TCP served by sb's proxy inbounds: sb's own `socks` outbound with
//! `udp_over_tcp` (versions 1 and 2) into sb's `mixed` inbound, and hand-written clients
//! that ask for the magic domain by HTTP CONNECT, SOCKS4a and SOCKS5 and then speak the UoT
//! framing byte by byte (connect and addressed framing, a bad frame, a bad request). Go
//! sing-box as the client is in `go_interop.rs`. Echo servers bind port 0 on loopback; every
//! read is bounded by a timeout.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::flow::Network;
use sb_tests::Instance;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// A UDP echo server that prefixes replies with `E:`.
fn echo() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let mut out = b"E:".to_vec();
            out.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&out, from);
        }
    });
    addr
}

/// sb's mixed inbound; flows whose domain is a magic UoT name go to the `uot` outbound, so
/// the chain shows that the name was the flow's domain (as Go records it).
fn server() -> Instance {
    Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct"}, {"type": "direct", "tag": "uot"}],
            "route": {"rules": [{"domain": ["sp.v2.udp-over-tcp.arpa", "sp.udp-over-tcp.arpa"], "outbound": "uot"}]}}"#,
    )
}

/// The UDP flows `sb` tracks now, as (destination, chain).
fn udp_flows(sb: &Instance) -> Vec<(String, Vec<String>)> {
    sb.tracker
        .snapshot()
        .iter()
        .filter(|t| t.flow.network == Network::Udp)
        .map(|t| (t.flow.destination.to_string(), t.chain.clone()))
        .collect()
}

#[test]
fn sb_socks_outbound_carries_uot_into_sb_mixed() {
    let e = echo();
    for (name, uot) in [("v2", "true"), ("v1", r#"{"enabled": true, "version": 1}"#)] {
        let server = server();
        let front = Instance::start(&format!(
            r#"{{"log": {{"disabled": true}},
                "inbounds": [{{"type": "direct", "tag": "d", "network": "udp", "listen_port": 0,
                               "override_address": "127.0.0.1", "override_port": {}}}],
                "outbounds": [{{"type": "socks", "tag": "up", "server": "127.0.0.1", "server_port": {}, "udp_over_tcp": {uot}}}]}}"#,
            e.port(),
            server.addr(0).port()
        ));
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 2048];
        for msg in ["one", "two"] {
            c.send_to(msg.as_bytes(), front.addr(0)).unwrap();
            let (n, _) = c
                .recv_from(&mut buf)
                .unwrap_or_else(|err| panic!("{name}: no reply: {err}"));
            assert_eq!(&buf[..n], format!("E:{msg}").as_bytes(), "{name}");
        }
        assert_eq!(
            udp_flows(&server),
            vec![(e.to_string(), vec!["uot".to_string()])],
            "{name}: the server carries one UDP flow to the echo server"
        );
    }
}

/// Reads exactly `n` bytes (bounded by the socket's read timeout).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).unwrap();
    b
}

/// A TCP connection to `proxy` that asked for `magic` by SOCKS5 and got success.
fn socks5_to(proxy: SocketAddr, magic: &str) -> TcpStream {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    let mut req = vec![5, 1, 0, 3, magic.len() as u8];
    req.extend_from_slice(magic.as_bytes());
    req.extend_from_slice(&[0, 0]);
    s.write_all(&req).unwrap();
    assert_eq!(read_n(&mut s, 10)[..2], [5, 0], "SOCKS5 success");
    s
}

/// `echo` in SOCKS5 address bytes (the request's form).
fn socks_addr(a: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(v4) = a else { panic!("v4") };
    let mut b = vec![1];
    b.extend_from_slice(&v4.ip().octets());
    b.extend_from_slice(&v4.port().to_be_bytes());
    b
}

/// `echo` in UoT address bytes (the datagrams' form).
fn uot_addr(a: SocketAddr) -> Vec<u8> {
    let mut b = socks_addr(a);
    b[0] = 0;
    b
}

fn length_prefixed(payload: &[u8]) -> Vec<u8> {
    let mut b = (payload.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(payload);
    b
}

#[test]
fn http_connect_and_socks4a_clients_speak_uot_by_hand() {
    let e = echo();
    let sb = server();
    let proxy = sb.addr(0);

    // HTTP CONNECT to the v2 name, then a "connect" request: datagrams are length-only.
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"CONNECT sp.v2.udp-over-tcp.arpa:0 HTTP/1.1\r\nHost: sp.v2.udp-over-tcp.arpa:0\r\n\r\n",
    )
    .unwrap();
    let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
    assert_eq!(read_n(&mut s, ok.len()), ok);
    let mut wire = vec![1];
    wire.extend(socks_addr(e));
    // Two datagrams in one write: the server must split them.
    wire.extend(length_prefixed(b"a"));
    wire.extend(length_prefixed(b"bc"));
    s.write_all(&wire).unwrap();
    assert_eq!(read_n(&mut s, 5), length_prefixed(b"E:a"));
    assert_eq!(read_n(&mut s, 6), length_prefixed(b"E:bc"));

    // SOCKS4a to the v1 name: no request, every datagram carries its address both ways.
    let mut s4 = TcpStream::connect(proxy).unwrap();
    s4.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = vec![4, 1, 0, 0, 0, 0, 0, 1, 0];
    req.extend_from_slice(b"sp.udp-over-tcp.arpa\0");
    s4.write_all(&req).unwrap();
    assert_eq!(read_n(&mut s4, 8)[..2], [0, 0x5a], "SOCKS4 granted");
    let mut frame = uot_addr(e);
    frame.extend(length_prefixed(b"v1"));
    // Sent a byte at a time, so the frame arrives split.
    for b in &frame {
        s4.write_all(&[*b]).unwrap();
    }
    let mut want = uot_addr(e);
    want.extend(length_prefixed(b"E:v1"));
    assert_eq!(read_n(&mut s4, want.len()), want);

    let mut flows = udp_flows(&sb);
    flows.sort();
    assert_eq!(
        flows,
        vec![
            (e.to_string(), vec!["uot".to_string()]),
            (e.to_string(), vec!["uot".to_string()]),
        ]
    );
}

/// Reads until the peer closes; true when it did (within the read timeout).
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) => return err.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn a_bad_frame_or_request_ends_the_uot_stream() {
    let e = echo();
    let sb = server();

    // A good datagram, then one with an address family UoT does not define.
    let mut s = socks5_to(sb.addr(0), "sp.v2.udp-over-tcp.arpa");
    let mut wire = vec![0];
    wire.extend(socks_addr(e));
    wire.extend(uot_addr(e));
    wire.extend(length_prefixed(b"ok"));
    s.write_all(&wire).unwrap();
    let mut want = uot_addr(e);
    want.extend(length_prefixed(b"E:ok"));
    assert_eq!(read_n(&mut s, want.len()), want);
    s.write_all(&[9, 1, 2, 3]).unwrap();
    assert!(closed_by_peer(&mut s), "a bad frame must end the stream");

    // A request whose SOCKS address type does not exist.
    let mut s = socks5_to(sb.addr(0), "sp.v2.udp-over-tcp.arpa");
    s.write_all(&[0, 9, 1, 2, 3, 4, 0, 53]).unwrap();
    assert!(closed_by_peer(&mut s), "a bad request must end the stream");

    // A legacy stream that closes inside its first datagram.
    let mut s = socks5_to(sb.addr(0), "sp.udp-over-tcp.arpa");
    s.write_all(&[0, 127, 0]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(
        closed_by_peer(&mut s),
        "a truncated datagram must end the stream"
    );
}
