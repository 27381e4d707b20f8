//! The `wireguard` endpoint against a real peer: Debian's wireguard-go in a network namespace
//! the test creates, with an HTTP server and a UDP echo on its tunnel address. sb runs in
//! the same namespace; the tunnel's outer UDP goes over the namespace's loopback. Root
//! only (skipped with the reason outside CI; a failure under CI).
//!
//! ```text
//!  curl ─> sb mixed ─> router ─> endpoint wg (10.77.0.1) ═ UDP ═ wireguard-go (10.77.0.2) ─> HTTP, UDP echo
//!  curl on 10.77.0.2 ─> wireguard-go ═ UDP ═ endpoint wg ─> router ─> direct ─> 127.0.0.1 (own address → loopback)
//!  system: true (sb in a namespace of its own, a veth to the peer's):
//!  curl ─> sb mixed ─> router ─> kernel socket bound to interface ─> endpoint wg ═ UDP ═ wireguard-go
//! ```

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::netns::Netns;
use sb_tests::tun_lab::{Proxy, Running};
use sb_tests::wireguard::{self, Keys, PeerConfig, WgGo};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

/// The namespace, or `None` (outside CI) with the reason printed.
fn lab() -> Option<Netns> {
    if let Some(why) = wireguard::unavailable() {
        sb_tests::skip(&format!("CI must run the WireGuard tests: {why}"));
        return None;
    }
    let ns = Netns::new("wgt");
    // A default route into a veth pair whose both ends stay in the namespace (nothing
    // answers there): Go sing-box's network monitor takes a namespace without a default
    // interface for "offline" and brings its WireGuard device down ("network: missing
    // default interface"). (This kernel has no dummy interfaces.)
    ns.ip("link add sbva type veth peer name sbvb");
    ns.ip("addr add 10.99.0.1/24 dev sbva");
    ns.ip("link set sbva up");
    ns.ip("link set sbvb up");
    ns.ip("route add default via 10.99.0.2 dev sbva");
    Some(ns)
}

/// A port nothing in `ns` uses now (the namespace is the test's own).
fn free_port(ns: &Netns, udp: bool) -> u16 {
    ns.spawn(move || {
        if udp {
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        }
    })
    .join()
    .unwrap()
}

/// An HTTP server (`hello from origin <path>`, `/big`) on `ip` in `ns`.
fn http_server(ns: &Netns, ip: &'static str) -> SocketAddr {
    ns.spawn(move || {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                std::thread::spawn(move || {
                    sb_tests::serve_http(conn, |path| format!("hello from origin {path}"))
                });
            }
        });
        addr
    })
    .join()
    .unwrap()
}

/// A UDP echo on `ip` in `ns`.
fn udp_echo(ns: &Netns, ip: &'static str) -> SocketAddr {
    ns.spawn(move || {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        });
        addr
    })
    .join()
    .unwrap()
}

fn curl(ns: &Netns, args: &[&str]) -> (bool, String) {
    let mut all = vec!["curl", "-sS", "--max-time", "20"];
    all.extend_from_slice(args);
    let out = ns.exec(&all);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn start_sb(ns: &Netns, config: &str) -> Running {
    Proxy::InProcess.start(ns, config)
}

/// wireguard-go at `10.77.0.2/24` in `ns`, peered with new keys for sb (`10.77.0.1`, which
/// contacts it first), with an HTTP server and a UDP echo on its tunnel address.
struct Peer {
    sb_keys: Keys,
    wg: WgGo,
    http: SocketAddr,
    echo: SocketAddr,
}

fn peer_with_services(ns: &Netns) -> Peer {
    let sb_keys = Keys::generate();
    let wg = WgGo::start(
        ns,
        "10.77.0.2/24",
        &PeerConfig {
            public: &sb_keys.public,
            endpoint: None,
            allowed_ips: "10.77.0.1/32",
            keepalive: None,
        },
    );
    Peer {
        sb_keys,
        wg,
        http: http_server(ns, "10.77.0.2"),
        echo: udp_echo(ns, "10.77.0.2"),
    }
}

/// sb with a mixed inbound on `mixed`, a UDP `direct` inbound on `udp_in` forwarding to
/// `echo` (behind the peer), and `endpoint` (a `wireguard` endpoint tagged `wg`) as the
/// route for the tunnel's `10.77.0.0/24`.
fn client_config(mixed: u16, udp_in: u16, echo: SocketAddr, endpoint: &str) -> String {
    format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {mixed}}},
                         {{"type": "direct", "tag": "u", "listen": "127.0.0.1", "listen_port": {udp_in}, "network": "udp",
                           "override_address": "{}", "override_port": {}}}],
            "endpoints": [{endpoint}],
            "route": {{"rules": [{{"ip_cidr": ["10.77.0.0/24"], "outbound": "wg"}}]}}}}"#,
        echo.ip(),
        echo.port()
    )
}

/// Sends `payload` to the UDP inbound on `port` of `ns`'s loopback and returns the answer.
fn udp_round_trip(ns: &Netns, port: u16, payload: &'static [u8]) -> Vec<u8> {
    ns.spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.send_to(payload, ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    })
    .join()
    .unwrap()
}

#[test]
fn tcp_and_udp_reach_a_wireguard_go_peer_through_the_endpoint() {
    let Some(ns) = lab() else { return };
    let Peer {
        sb_keys,
        wg,
        http,
        echo,
    } = peer_with_services(&ns);
    let (mixed, udp_in) = (free_port(&ns, false), free_port(&ns, true));
    let endpoint = format!(
        r#"{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"], "private_key": "{}",
             "peers": [{{"address": "127.0.0.1", "port": {}, "public_key": "{}",
                         "allowed_ips": ["10.77.0.0/24"]}}]}}"#,
        sb_keys.private, wg.port, wg.keys.public
    );
    let config = client_config(mixed, udp_in, echo, &endpoint);
    let _sb = start_sb(&ns, &config);
    let proxy = format!("socks5h://127.0.0.1:{mixed}");
    let (ok, body) = curl(&ns, &["-x", &proxy, &format!("http://{http}/hello")]);
    assert!(
        ok && body == "hello from origin /hello",
        "{body}\n{}",
        wg.log()
    );
    assert!(
        wg.show("latest-handshakes").split_whitespace().nth(1) != Some("0"),
        "no handshake: {}",
        wg.show("dump")
    );

    // 100 MiB, every byte checked.
    let file = std::env::temp_dir().join(format!("sb-wg-big-{}", std::process::id()));
    let (ok, body) = curl(
        &ns,
        &[
            "-x",
            &proxy,
            "-o",
            &file.to_string_lossy(),
            &format!("http://{http}/big"),
        ],
    );
    assert!(ok, "{body}");
    sb_tests::assert_big_file(&file);

    // 100 MiB the other way: sb's stack is the sender into the tunnel, the peer checks
    // every byte.
    sb_tests::write_big_file(&file);
    let (ok, body) = curl(
        &ns,
        &[
            "-x",
            &proxy,
            "--max-time",
            "60",
            "--data-binary",
            &format!("@{}", file.to_string_lossy()),
            &format!("http://{http}/upload"),
        ],
    );
    let _ = std::fs::remove_file(&file);
    assert!(
        ok && body == format!("uploaded {} bytes, all as sent", sb_tests::BIG),
        "upload: {body}\n{}",
        wg.show("dump")
    );

    // UDP through the direct inbound, to the echo behind the tunnel.
    let echoed = udp_round_trip(&ns, udp_in, b"ping through wireguard");
    assert_eq!(echoed, b"ping through wireguard");
}

#[test]
fn a_wireguard_go_peer_dials_into_the_endpoint() {
    let Some(ns) = lab() else { return };
    let sb_keys = Keys::generate();
    let listen = free_port(&ns, true);
    let wg = WgGo::start(
        &ns,
        "10.77.0.2/24",
        &PeerConfig {
            public: &sb_keys.public,
            endpoint: Some(SocketAddr::from(([127, 0, 0, 1], listen))),
            allowed_ips: "10.77.0.1/32",
            keepalive: Some(1),
        },
    );
    // Served on the namespace's loopback: a flow to the endpoint's own address lands there.
    let local = http_server(&ns, "127.0.0.1");
    let config = format!(
        r#"{{"log": {{"disabled": true}},
            "endpoints": [{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"], "listen_port": {listen},
                            "private_key": "{}",
                            "peers": [{{"public_key": "{}", "allowed_ips": ["10.77.0.2/32"]}}]}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"final": "direct"}}}}"#,
        sb_keys.private, wg.keys.public
    );
    let _sb = start_sb(&ns, &config);
    let (ok, body) = curl(&ns, &[&format!("http://10.77.0.1:{}/in", local.port())]);
    assert!(
        ok && body == "hello from origin /in",
        "{body}\n{}",
        wg.log()
    );
}

/// `system: true`: sb's endpoint as a kernel interface. sb runs in a namespace of its own
/// (joined to the peer's by a veth), so the peer's tunnel address is not also a local
/// address of sb's host. TCP and UDP from sb's inbounds go out through the interface (the
/// kernel dials, bound to it), the host's own ping goes through it, a flow from the peer to
/// the endpoint's address reaches a server of sb's host, and the interface goes with sb.
#[test]
fn a_system_endpoint_is_a_kernel_interface() {
    let Some(peer_ns) = lab() else { return };
    let sb_ns = Netns::new("wgs");
    sb_tests::netns::veth(&sb_ns, &["10.98.0.1/24"], &peer_ns, &["10.98.0.2/24"]);
    let Peer {
        sb_keys,
        wg,
        http,
        echo,
    } = peer_with_services(&peer_ns);
    let host_server = http_server(&sb_ns, "0.0.0.0");
    let name = sb_tests::netns::unique("wgk");
    let (mixed, udp_in) = (free_port(&sb_ns, false), free_port(&sb_ns, true));
    let endpoint = format!(
        r#"{{"type": "wireguard", "tag": "wg", "system": true, "name": "{name}",
             "address": ["10.77.0.1/24"], "private_key": "{}",
             "peers": [{{"address": "10.98.0.2", "port": {}, "public_key": "{}",
                         "allowed_ips": ["10.77.0.0/24"]}}]}}"#,
        sb_keys.private, wg.port, wg.keys.public
    );
    let config = client_config(mixed, udp_in, echo, &endpoint);
    let sb = start_sb(&sb_ns, &config);
    let link = sb_ns.exec(&["ip", "-o", "addr", "show", "dev", &name]);
    assert!(
        String::from_utf8_lossy(&link.stdout).contains("10.77.0.1/24"),
        "interface {name}: {}{}",
        String::from_utf8_lossy(&link.stdout),
        String::from_utf8_lossy(&link.stderr)
    );

    let (ok, body) = curl(
        &sb_ns,
        &[
            "-x",
            &format!("socks5h://127.0.0.1:{mixed}"),
            &format!("http://{http}/kernel"),
        ],
    );
    assert!(
        ok && body == "hello from origin /kernel",
        "{body}\n{}",
        wg.log()
    );
    let echoed = udp_round_trip(&sb_ns, udp_in, b"udp through the interface");
    assert_eq!(echoed, b"udp through the interface");
    let ping = sb_ns.exec(&["ping", "-c", "1", "-W", "5", "-I", &name, "10.77.0.2"]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    // The peer reaches a server of sb's host at the endpoint's own address (the reply
    // finds its way back by the address's prefix route: sb adds no routes, as Go adds none).
    let (ok, body) = curl(
        &peer_ns,
        &[&format!("http://10.77.0.1:{}/host", host_server.port())],
    );
    assert!(ok && body == "hello from origin /host", "{body}");

    drop(sb);
    let gone = sb_ns.exec(&["ip", "link", "show", "dev", &name]);
    assert!(!gone.status.success(), "{name} outlived sb");
}

/// Go sing-box's own `wireguard` endpoint (wireguard-go inside) as the peer, both ways: sb
/// dials through the tunnel to Go, whose endpoint hands the flow to its router (its own
/// address becomes loopback), and Go dials through the tunnel to sb, whose endpoint does
/// the same.
#[test]
fn sb_and_go_sing_box_endpoints_interoperate_both_ways() {
    let Some(ns) = lab() else { return };
    let (sb_keys, go_keys) = (Keys::generate(), Keys::generate());
    let (sb_port, go_port) = (free_port(&ns, true), free_port(&ns, true));
    let local = http_server(&ns, "127.0.0.1");
    let endpoint = |me: &str,
                    keys: &Keys,
                    port: u16,
                    peer: &Keys,
                    peer_ip: &str,
                    peer_port: u16| {
        format!(
            r#"{{"type": "wireguard", "tag": "wg", "address": ["{me}/32"], "listen_port": {port},
                 "private_key": "{}",
                 "peers": [{{"address": "127.0.0.1", "port": {peer_port}, "public_key": "{}",
                             "allowed_ips": ["{peer_ip}/32"]}}]}}"#,
            keys.private, peer.public
        )
    };
    let config = |endpoint: String| {
        format!(
            r#"{{"log": {{"level": "debug"}},
                "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": 0}}],
                "endpoints": [{endpoint}],
                "outbounds": [{{"type": "direct", "tag": "direct"}}],
                "route": {{"rules": [{{"ip_cidr": ["10.77.0.0/24"], "outbound": "wg"}}], "final": "direct"}}}}"#
        )
    };
    let go_config = config(endpoint(
        "10.77.0.2",
        &go_keys,
        go_port,
        &sb_keys,
        "10.77.0.1",
        sb_port,
    ));
    let Some(go) = sb_tests::GoSingBox::start_in(&ns, &go_config, 1) else {
        return;
    };
    let sb_mixed = free_port(&ns, false);
    let sb_config = config(endpoint(
        "10.77.0.1",
        &sb_keys,
        sb_port,
        &go_keys,
        "10.77.0.2",
        go_port,
    ))
    .replace(
        r#""listen_port": 0"#,
        &format!(r#""listen_port": {sb_mixed}"#),
    );
    let _sb = start_sb(&ns, &sb_config);

    // sb -> Go: Go's own address, so Go's router sends it to this namespace's loopback.
    let (ok, body) = curl(
        &ns,
        &[
            "-x",
            &format!("socks5h://127.0.0.1:{sb_mixed}"),
            &format!("http://10.77.0.2:{}/from-sb", local.port()),
        ],
    );
    assert!(
        ok && body == "hello from origin /from-sb",
        "{body}\n{}",
        go.log_text()
    );

    // Go -> sb: sb's own address, so sb's router sends it to loopback.
    let (ok, body) = curl(
        &ns,
        &[
            "-x",
            &format!("socks5h://{}", go.listening[0]),
            &format!("http://10.77.0.1:{}/from-go", local.port()),
        ],
    );
    assert!(ok && body == "hello from origin /from-go", "{body}");
}

/// A peer that restarts (a new process, a new port, the same keys) is reached again once it
/// has handshaken anew: sb follows it to its new address (roaming). And sb's
/// `persistent_keepalive_interval` shows on the wire as messages while nothing else flows.
#[test]
fn a_restarted_peer_is_reached_again_and_keepalives_flow() {
    let Some(ns) = lab() else { return };
    let sb_keys = Keys::generate();
    let listen = free_port(&ns, true);
    let peer = |keepalive| PeerConfig {
        public: &sb_keys.public,
        endpoint: Some(SocketAddr::from(([127, 0, 0, 1], listen))),
        allowed_ips: "10.77.0.1/32",
        keepalive,
    };
    // wireguard-go's own keepalive (it makes it contact sb first) is far apart, so what
    // arrives each second below is sb's.
    let mut first = WgGo::start(&ns, "10.77.0.2/24", &peer(Some(25)));
    let peer_keys = first.keys.clone();
    let http = http_server(&ns, "10.77.0.2");
    let mixed = free_port(&ns, false);
    let config = format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {mixed}}}],
            "endpoints": [{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"], "listen_port": {listen},
                            "private_key": "{}",
                            "peers": [{{"public_key": "{}", "allowed_ips": ["10.77.0.2/32"],
                                        "persistent_keepalive_interval": 1}}]}}],
            "route": {{"rules": [{{"ip_cidr": ["10.77.0.0/24"], "outbound": "wg"}}]}}}}"#,
        sb_keys.private, peer_keys.public
    );
    let _sb = start_sb(&ns, &config);
    let proxy = format!("socks5h://127.0.0.1:{mixed}");
    first.wait_handshake();
    let (ok, body) = curl(&ns, &["-x", &proxy, &format!("http://{http}/first")]);
    assert!(ok && body == "hello from origin /first", "{body}");

    // Keepalives: with no flow, sb's messages keep arriving (32-byte keepalives, each
    // interval), bounded wait.
    let before = first.received();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while first.received() < before + 64 {
        assert!(
            std::time::Instant::now() < deadline,
            "no keepalives from sb: {} -> {}",
            before,
            first.received()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    first.stop();
    let second = WgGo::start_with(&ns, peer_keys, "10.77.0.2/24", &peer(Some(25)));
    second.wait_handshake();
    let (ok, body) = curl(&ns, &["-x", &proxy, &format!("http://{http}/again")]);
    assert!(
        ok && body == "hello from origin /again",
        "{body}\n{}",
        second.log()
    );
}

/// TUN -> router -> WireGuard: a program in the client namespace reaches the wireguard-go
/// peer's tunnel address through sb's `tun` inbound, whose flow the router gives to the
/// endpoint. The server sees the endpoint's address, so the flow went through the tunnel.
#[test]
fn tun_flows_are_routed_into_the_tunnel() {
    if let Some(why) = wireguard::unavailable() {
        sb_tests::skip(&format!("CI must run the WireGuard tests: {why}"));
        return;
    }
    let Some(lab) = sb_tests::tun_lab::Lab::new() else {
        return;
    };
    let sb_keys = Keys::generate();
    let wg = WgGo::start(
        &lab.remote,
        "10.77.0.2/24",
        &PeerConfig {
            public: &sb_keys.public,
            endpoint: None,
            allowed_ips: "10.77.0.1/32",
            keepalive: None,
        },
    );
    let config = format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "tun", "tag": "tun-in", "interface_name": "sbwg0", "address": ["172.19.0.1/30"]}}],
            "endpoints": [{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"],
                            "private_key": "{}",
                            "peers": [{{"address": "10.200.0.2", "port": {}, "public_key": "{}",
                                        "allowed_ips": ["10.77.0.0/24"]}}]}}],
            "route": {{"rules": [{{"ip_cidr": ["10.77.0.0/24"], "outbound": "wg"}}]}}}}"#,
        sb_keys.private, wg.port, wg.keys.public
    );
    let _sb = start_sb(&lab.client, &config);
    // Only the tunnel's network enters the TUN; sb's own UDP leaves by the veth.
    lab.client.ip("route add 10.77.0.0/24 dev sbwg0");
    let (ok, body) = curl(&lab.client, &["http://10.77.0.2:8080/tun-wg"]);
    assert!(
        ok && body == "hello /tun-wg from 10.77.0.1",
        "{body}\n{}",
        wg.log()
    );

    // Ping is routed too (Go 1.13+): the echo goes through the tunnel and the reply
    // comes back from the peer; an address with no host behind the peer stays silent
    // instead of being answered by sb's stack.
    let ping = |to: &str| {
        lab.client
            .exec(&["ping", "-c", "1", "-W", "3", to])
            .status
            .success()
    };
    assert!(ping("10.77.0.2"), "no echo through the tunnel");
    assert!(!ping("10.77.0.9"), "a ping to nobody was answered");
}
