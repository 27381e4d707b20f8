//! The connection tracker on live flows: a flow held open through sb is listed with its
//! chain, matched rule and byte counters; closing it by id ends it; a selector with
//! `interrupt_exist_connections` ends the flows through it when switched, one without does
//! not; UDP flows are tracked with their bytes too.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::Instance;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A TCP echo server on loopback, one thread per connection.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn config(echo: SocketAddr, interrupt: bool) -> String {
    format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "direct", "tag": "d", "listen_port": 0,
                           "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{{"type": "direct", "tag": "first"}}, {{"type": "direct", "tag": "second"}},
                          {{"type": "selector", "tag": "pick", "outbounds": ["first", "second"],
                            "interrupt_exist_connections": {interrupt}}}],
            "route": {{"rules": [{{"inbound": ["d"], "action": "route", "outbound": "pick"}}]}}}}"#,
        echo.port()
    )
}

/// Opens a flow through the direct inbound and proves it is relaying.
fn open_flow(sb: &Instance) -> TcpStream {
    let mut c = TcpStream::connect(sb.addr(0)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    c
}

/// True once the peer closed `c` (EOF or reset), within the read timeout.
fn closed_by_peer(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(c.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn a_live_flow_is_listed_with_chain_rule_and_bytes_and_closes_by_id() {
    let sb = Instance::start(&config(echo_server(), false));
    let mut c = open_flow(&sb);
    eventually("the flow to be listed with its bytes", || {
        sb.tracker.snapshot().first().is_some_and(|t| {
            t.counters.up.load(Ordering::Relaxed) == 4
                && t.counters.down.load(Ordering::Relaxed) == 4
        })
    });
    let flows = sb.tracker.snapshot();
    assert_eq!(flows.len(), 1);
    let t = &flows[0];
    assert_eq!(t.chain, ["first", "pick"]);
    // Go's Clash API text for the rule: its match fields, then the action.
    assert_eq!(t.rule, "inbound=d => route(pick)");
    assert_eq!(&*t.flow.inbound_tag, "d");

    assert!(sb.tracker.close(&t.id));
    assert!(closed_by_peer(&mut c), "the client still has a connection");
    eventually("the closed flow to leave the table", || {
        sb.tracker.is_empty()
    });
    assert_eq!(sb.tracker.totals(), (4, 4));
}

#[test]
fn switching_an_interrupting_selector_ends_its_flows() {
    let sb = Instance::start(&config(echo_server(), true));
    let mut c = open_flow(&sb);
    eventually("the flow to be listed", || sb.tracker.len() == 1);
    sb.selectors["pick"].select("second").unwrap();
    assert!(closed_by_peer(&mut c), "the flow survived the switch");
    eventually("the table to empty", || sb.tracker.is_empty());
    // New flows use the new member.
    let _c2 = open_flow(&sb);
    eventually("the new flow to be listed", || sb.tracker.len() == 1);
    assert_eq!(sb.tracker.snapshot()[0].chain, ["second", "pick"]);
}

#[test]
fn a_selector_without_interrupt_keeps_running_flows() {
    let sb = Instance::start(&config(echo_server(), false));
    let mut c = open_flow(&sb);
    eventually("the flow to be listed", || sb.tracker.len() == 1);
    sb.selectors["pick"].select("second").unwrap();
    c.write_all(b"pong").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"pong");
    assert_eq!(sb.tracker.snapshot()[0].chain, ["first", "pick"]);
}

#[test]
fn udp_flows_are_tracked_with_their_bytes() {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_addr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });
    let sb = Instance::start(&config(echo_addr, false));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.send_to(b"hello", sb.addr(0)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    eventually("the UDP flow's bytes", || {
        sb.tracker.snapshot().first().is_some_and(|t| {
            t.flow.network == sb_core::flow::Network::Udp
                && t.counters.up.load(Ordering::Relaxed) == 5
                && t.counters.down.load(Ordering::Relaxed) == 5
        })
    });
}

/// Hardening finding 6: a client that hangs up while its flow is still dialing cancels the
/// dial, instead of leaving it (and its tracker entry, socket and task) until
/// `connect_timeout` gives up.
#[test]
fn a_client_that_hangs_up_while_dialing_cancels_the_dial() {
    let tarpit = sb_tests::SynTarpit::start();
    let sb = Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "direct", "tag": "d", "listen_port": 0,
                           "override_address": "127.0.0.1", "override_port": {}}}],
            "outbounds": [{{"type": "direct", "tag": "out", "connect_timeout": "1m"}}]}}"#,
        tarpit.addr.port()
    ));
    let c = TcpStream::connect(sb.addr(0)).unwrap();
    eventually("the flow to be dialing", || sb.tracker.len() == 1);
    let hung_up = Instant::now();
    drop(c);
    eventually("the dial to be cancelled", || sb.tracker.is_empty());
    assert!(hung_up.elapsed() < Duration::from_secs(5));
}
