//! The WireGuard rows: iperf3 through sb's `wireguard` endpoint and through Go sing-box's,
//! against the same wireguard-go peer, next to wireguard-go talking to wireguard-go (the
//! ceiling: the same peer with a kernel-routed userspace interface on the client side).
//!
//! ```text
//!  client ns: iperf3 -c 127.0.0.1:P ─> proxy's direct inbound ─> wireguard endpoint ═╗
//!                                                                        UDP over veth ║
//!  server ns: iperf3 -s on 10.77.0.2 (wireguard-go's tunnel address) <═ wireguard-go ═╝
//! ```
//!
//! Every carrier gets fresh namespaces and a fresh wireguard-go (keys differ per carrier),
//! and every measurement a fresh one-off iperf3 server. The proxy's peak resident memory
//! (`VmHWM`) after all four runs is its memory under load. The client namespace has a
//! default route via the veth: Go's network monitor takes a namespace without one as
//! offline and brings its WireGuard device down.

use crate::proc::{self, Proc};
use crate::{Row, Settings, Subject};
use anyhow::{bail, Context, Result};
use sb_tests::netns::{self, Netns};
use sb_tests::wireguard::{self, Keys, PeerConfig, WgGo};
use std::fmt::Write as _;

const SERVER: &str = "10.77.0.2";
const IPERF_PORT: u16 = 5201;
/// The proxy's `direct` inbound (inside the client's own fresh namespace).
const PROXY_PORT: u16 = 5300;
/// The measurements: (parallel streams, `-R`).
const CASES: [(usize, bool); 4] = [(1, false), (1, true), (4, false), (4, true)];

/// What one carrier measured: Gbit/s per case, and the proxy's peak memory.
struct Measured {
    gbits: Vec<f64>,
    peak_mib: Option<f64>,
}

/// The rows: throughput per case (sb, Go; the ceiling in the name), then peak memory.
pub fn rows(subjects: &[Subject], s: &Settings, notes: &mut String) -> Result<Vec<Row>> {
    if let Some(why) = wireguard::unavailable() {
        bail!("the WireGuard rows need network namespaces, wireguard-go and wg: {why}");
    }
    let ceiling = measure(None, s).context("wireguard-go to wireguard-go")?;
    let mut by_subject = Vec::new();
    for subj in subjects {
        eprintln!("bench: WireGuard: {}", subj.name);
        match measure(Some(&subj.bin), s) {
            Ok(m) => by_subject.push(m),
            Err(e) if !s.smoke => {
                let _ = writeln!(notes, "- WireGuard, {}: failed: {e:#}", subj.name);
                by_subject.push(Measured {
                    gbits: vec![f64::NAN; CASES.len()],
                    peak_mib: None,
                });
            }
            Err(e) => return Err(e.context(format!("WireGuard, {}", subj.name))),
        }
    }
    let mut rows = Vec::new();
    for (i, (streams, reverse)) in CASES.iter().enumerate() {
        let way = if *reverse {
            "download (`-R`)"
        } else {
            "upload"
        };
        rows.push(Row {
            name: format!(
                "WireGuard endpoint, iperf3 {streams} stream(s), {way} (wireguard-go to wireguard-go: {:.2} Gbit/s)",
                ceiling.gbits.get(i).copied().unwrap_or(f64::NAN)
            ),
            unit: "Gbit/s",
            higher_better: true,
            values: by_subject
                .iter()
                .map(|m| m.gbits.get(i).copied().unwrap_or(f64::NAN))
                .collect(),
        });
    }
    rows.push(Row {
        name: "WireGuard endpoint: peak resident memory over the four iperf3 runs".into(),
        unit: "MiB",
        higher_better: false,
        values: by_subject
            .iter()
            .map(|m| m.peak_mib.unwrap_or(f64::NAN))
            .collect(),
    });
    Ok(rows)
}

fn config(keys: &Keys, peer: &WgGo) -> String {
    format!(
        r#"{{"log": {{"level": "warn"}},
            "inbounds": [{{"type": "direct", "tag": "in", "listen": "127.0.0.1", "listen_port": {PROXY_PORT},
                           "network": "tcp", "override_address": "{SERVER}", "override_port": {IPERF_PORT}}}],
            "endpoints": [{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"],
                            "private_key": "{}",
                            "peers": [{{"address": "10.200.0.2", "port": {}, "public_key": "{}",
                                        "allowed_ips": ["10.77.0.0/24"]}}]}}],
            "route": {{"rules": [{{"ip_cidr": ["10.77.0.0/24"], "outbound": "wg"}}]}}}}"#,
        keys.private, peer.port, peer.keys.public
    )
}

/// One carrier: `proxy` is sb's or Go's binary; `None` is wireguard-go on both sides.
fn measure(proxy: Option<&std::path::Path>, s: &Settings) -> Result<Measured> {
    let client = Netns::new("sbwc");
    let server = Netns::new("sbws");
    netns::veth(&client, &["10.200.0.1/24"], &server, &["10.200.0.2/24"]);
    client.ip("route add default via 10.200.0.2");
    let keys = Keys::generate();
    let peer = WgGo::start(
        &server,
        "10.77.0.2/24",
        &PeerConfig {
            public: &keys.public,
            endpoint: None,
            allowed_ips: "10.77.0.1/32",
            keepalive: None,
        },
    );
    // Dropped before the namespaces (declared after them).
    let mut client_wg = None;
    let mut running = None;
    let (host, port) = match proxy {
        None => {
            let endpoint = std::net::SocketAddr::from(([10, 200, 0, 2], peer.port));
            client_wg = Some(WgGo::start_with(
                &client,
                keys.clone(),
                "10.77.0.1/24",
                &PeerConfig {
                    public: &peer.keys.public,
                    endpoint: Some(endpoint),
                    allowed_ips: "10.77.0.2/32",
                    keepalive: None,
                },
            ));
            (SERVER.to_string(), IPERF_PORT)
        }
        Some(bin) => {
            let p = Proc::run_config_in(Some(client.name()), bin, &config(&keys, &peer))?;
            proc::wait_listening_quietly_in(&format!("/proc/{}/net", p.pid()), PROXY_PORT)?;
            running = Some(p);
            ("127.0.0.1".to_string(), PROXY_PORT)
        }
    };
    let mut gbits = Vec::new();
    for (streams, reverse) in CASES {
        let iperf = Proc::spawn_in(
            Some(server.name()),
            "iperf3",
            &["-s", "-1", "-B", SERVER, "-p", &IPERF_PORT.to_string()],
            None,
        )?;
        proc::wait_listening_quietly_in(&format!("/proc/{}/net", iperf.pid()), IPERF_PORT)?;
        let r = proc::iperf3_client(
            Some(client.name()),
            &host,
            port,
            streams,
            s.seconds,
            reverse,
        )?;
        gbits.push(r.bits_per_second / 1e9);
        drop(iperf);
        if let Some(why) = running.as_mut().and_then(Proc::exited) {
            bail!("the proxy stopped: {why}");
        }
    }
    let peak_mib = running.as_ref().map(Proc::peak_mib).transpose()?;
    drop(running);
    drop(client_wg);
    Ok(Measured { gbits, peak_mib })
}
