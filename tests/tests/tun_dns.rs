//! DNS through the `tun` inbound, in network namespaces the test creates (root only; skipped
//! with a reason outside CI, a failure under CI):
//!
//! ```text
//!  client ns: dig @10.200.0.2 ─> auto_route (port 53 always enters) ─> sbdns0 ─> sb
//!             sb: sniff → protocol dns → hijack-dns → hosts / fakeip answer
//!             curl http://<fake address>:8080 ─> sbdns0 ─> sb maps it back to the domain
//!             and asks the next proxy for the domain (socks outbound) over the veth ─┐
//!  remote ns: next proxy (sb, socks on 10.200.0.2:1080) resolves web.fake.test      <─┘
//!             itself and connects to HTTP on 10.200.0.2:8080; no DNS server at all
//! ```
//!
//! The client side cannot resolve `web.fake.test` (no server it has knows it), and the fake
//! address leads nowhere in the remote namespace: the page arrives only if the next proxy
//! was asked for the domain.
//! The remote namespace runs no resolver, so every answer the client gets is the proxy's.
//! The same scenario runs against sb (in process) and Go sing-box 1.14.4 (gvisor stack).

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::netns::{self, Netns};
use sb_tests::tun_lab::Proxy;
use sb_tests::Instance;
use std::net::TcpListener;

const CONFIG: &str = r#"{
  "log": {"disabled": true},
  "dns": {
    "servers": [
      {"type": "hosts", "tag": "h", "predefined": {"plain.test": "10.77.0.1"}},
      {"type": "fakeip", "tag": "f", "inet4_range": "198.18.0.0/15", "inet6_range": "fc00::/18"}
    ],
    "rules": [{"inbound": "tun-in", "domain_suffix": "fake.test", "server": "f"}]
  },
  "inbounds": [{"type": "tun", "tag": "tun-in", "interface_name": "sbdns0", "stack": "gvisor",
                "address": ["172.19.0.1/30"], "auto_route": true}],
  "outbounds": [{"type": "socks", "tag": "next", "server": "10.200.0.2", "server_port": 1080}],
  "route": {
    "auto_detect_interface": true,
    "default_domain_resolver": "h",
    "rules": [{"action": "sniff"}, {"protocol": "dns", "action": "hijack-dns"}]
  }
}"#;

/// `dig` in `ns`: the answer lines' data (`+short`), or the error text.
fn dig(ns: &Netns, name: &str, qtype: &str, tcp: bool) -> Vec<String> {
    let mut args = vec![
        "dig",
        "@10.200.0.2",
        name,
        qtype,
        "+short",
        "+time=2",
        "+tries=1",
    ];
    if tcp {
        args.push("+tcp");
    }
    let out = ns.exec(&args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The scenario against `proxy`.
fn hijack_and_fakeip(proxy: &Proxy) {
    let client = Netns::new("sdc");
    let remote = Netns::new("sdr");
    netns::veth(&client, &["10.200.0.1/24"], &remote, &["10.200.0.2/24"]);
    client.ip("route add default via 10.200.0.2");
    remote
        .spawn(|| {
            let l = TcpListener::bind("10.200.0.2:8080").unwrap();
            std::thread::spawn(move || {
                for conn in l.incoming().flatten() {
                    std::thread::spawn(move || {
                        sb_tests::serve_http(conn, |path| format!("remote says {path}"))
                    });
                }
            });
        })
        .join()
        .unwrap();
    let next = remote
        .spawn(|| {
            Instance::start(
                r#"{"log": {"disabled": true},
                    "dns": {"servers": [{"type": "hosts", "tag": "h", "predefined": {"web.fake.test": "10.200.0.2"}}]},
                    "inbounds": [{"type": "socks", "tag": "s", "listen": "10.200.0.2", "listen_port": 1080}],
                    "outbounds": [{"type": "direct", "tag": "d"}]}"#,
            )
        })
        .join()
        .unwrap();
    let running = proxy.start(&client, CONFIG);

    // Queries to the uplink's resolver address enter the TUN and are answered by the proxy.
    assert_eq!(dig(&client, "plain.test", "A", false), vec!["10.77.0.1"]);
    assert_eq!(dig(&client, "plain.test", "A", true), vec!["10.77.0.1"]);

    // FakeIP: the client gets a fake address and connects to it through the TUN.
    let fake = dig(&client, "web.fake.test", "A", false);
    assert_eq!(fake.len(), 1, "{fake:?}\n{}", running.log());
    assert!(fake[0].starts_with("198.18."), "{fake:?}");
    let url = format!("http://{}:8080/hello", fake[0]);
    let out = client.exec(&["curl", "-s", "--max-time", "10", &url]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "remote says /hello",
        "curl: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        running.log()
    );
    // An address from the range nobody was given is refused, not dialed.
    let out = client.exec(&["curl", "-s", "--max-time", "5", "http://198.19.0.77:8080/"]);
    assert!(!out.status.success());
    if let Some(tracker) = running.tracker() {
        assert!(tracker.snapshot().iter().all(|f| !f
            .flow
            .destination
            .to_string()
            .starts_with("198.19.0.77")));
    }
    drop(running);
    drop(next);
}

#[test]
fn sb_tun_dns_is_hijacked_and_fakeip_reaches_the_domain() {
    if !netns::available() {
        return;
    }
    hijack_and_fakeip(&Proxy::InProcess);
}

#[test]
fn go_tun_dns_is_hijacked_and_fakeip_reaches_the_domain() {
    if !netns::available() {
        return;
    }
    let Some(go) = Proxy::go() else { return };
    hijack_and_fakeip(&go);
}
