//! The process search against real sockets: this test process connects to a listener of its
//! own (TCP over IPv4, IPv6 and a dual-stack listener; UDP connected and unconnected), and
//! the search must name this process as the owner of the client socket the listener saw.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use sb_core::flow::Network;
use sb_core::procinfo::{find, ProcessInfo};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

fn me() -> (String, String) {
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let name = std::env::current_exe()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (exe.to_string_lossy().into_owned(), name)
}

fn assert_is_me(found: Option<ProcessInfo>, what: &str) {
    let p = found.unwrap_or_else(|| panic!("{what}: no process found"));
    let (path, name) = me();
    let uid = nix::unistd::getuid().as_raw();
    assert_eq!(p.pid, Some(std::process::id()), "{what}");
    assert_eq!(p.uid, uid, "{what}");
    assert_eq!(p.path.as_deref(), Some(path.as_str()), "{what}");
    assert_eq!(p.name.as_deref(), Some(name.as_str()), "{what}");
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .unwrap()
        .map(|u| u.name);
    assert_eq!(p.user, user, "{what}");
}

/// Connects to a listener on `bind`, and searches the accepted connection's peer as an
/// inbound would (its peer address and its own local address).
fn tcp_case(bind: &str, connect_ip: &str) -> Option<ProcessInfo> {
    let l = TcpListener::bind(bind).unwrap();
    let port = l.local_addr().unwrap().port();
    let _client = TcpStream::connect(format!("{connect_ip}:{port}")).unwrap();
    let (accepted, peer) = l.accept().unwrap();
    find(Network::Tcp, peer, Some(accepted.local_addr().unwrap())).unwrap()
}

#[test]
fn tcp_clients_over_ipv4_ipv6_and_dual_stack() {
    assert_is_me(tcp_case("127.0.0.1:0", "127.0.0.1"), "IPv4");
    assert_is_me(tcp_case("[::1]:0", "[::1]"), "IPv6");
    // A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1.
    assert_is_me(tcp_case("[::]:0", "127.0.0.1"), "IPv4 client of [::]");
    // Without the inbound's address, the source alone finds it.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_accepted, peer) = l.accept().unwrap();
    assert_is_me(find(Network::Tcp, peer, None).unwrap(), "no local address");
}

#[test]
fn listeners_other_networks_and_remote_clients_are_not_found() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = l.local_addr().unwrap();
    let _client = TcpStream::connect(server).unwrap();
    let (accepted, peer) = l.accept().unwrap();
    // A listener is no client, even when the search has only the source to go by.
    let idle = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        find(Network::Tcp, idle.local_addr().unwrap(), None).unwrap(),
        None
    );
    // The right network matters.
    assert_eq!(
        find(Network::Udp, peer, Some(accepted.local_addr().unwrap())).unwrap(),
        None
    );
    // A client that is not on this host.
    let remote: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    assert_eq!(find(Network::Tcp, remote, Some(server)).unwrap(), None);
}

#[test]
fn udp_clients_connected_or_not() {
    for (bind, client_bind) in [
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("[::1]:0", "[::1]:0"),
        ("127.0.0.1:0", "0.0.0.0:0"),
    ] {
        let server = UdpSocket::bind(bind).unwrap();
        let at = server.local_addr().unwrap();
        for connected in [false, true] {
            let client = UdpSocket::bind(client_bind).unwrap();
            if connected {
                client.connect(at).unwrap();
                client.send(b"x").unwrap();
            } else {
                client.send_to(b"x", at).unwrap();
            }
            let mut buf = [0u8; 8];
            let (_, peer) = server.recv_from(&mut buf).unwrap();
            assert_is_me(
                find(Network::Udp, peer, Some(at)).unwrap(),
                &format!("udp {client_bind} -> {bind}, connected: {connected}"),
            );
        }
    }
}
