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
//! and every measurement a fresh one-off iperf3 server. On two cores the wireguard-go peer
//! takes most of the CPU and a single run of either proxy moves by a fifth, so a full run
//! measures in rounds (ceiling, sb, Go, again and again: a slow minute hits every carrier
//! alike) and the rows are each carrier's median; the raw figures of every round go to the
//! notes. Two quieter figures sit beside throughput: the proxy's CPU time (user + system,
//! `/proc/<pid>/stat`) per GB that iperf3 received, which the peer's saturation of the cores
//! does not hide, and its peak resident memory (`VmHWM`) after all its runs. The client
//! namespace has a default route via the veth: Go's network monitor takes a namespace
//! without one as offline and brings its WireGuard device down.

use crate::proc::{self, Proc};
use crate::stats::median;
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
/// Linux reports `utime` and `stime` in `USER_HZ` ticks, 100 per second on every architecture
/// it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// What one carrier measured in one round.
struct Measured {
    /// Gbit/s per case.
    gbits: Vec<f64>,
    /// Bytes iperf3 received, per case.
    bytes: Vec<u64>,
    /// The proxy's CPU seconds per case (`None` for the ceiling).
    cpu_seconds: Option<Vec<f64>>,
    /// Datagrams the UDP sockets of (client, server) namespace dropped for a full receive
    /// buffer, per case: where the tunnel lost packets.
    drops: Vec<(u64, u64)>,
    peak_mib: Option<f64>,
}

impl Measured {
    fn failed() -> Measured {
        Measured {
            gbits: vec![f64::NAN; CASES.len()],
            bytes: Vec::new(),
            cpu_seconds: None,
            drops: Vec::new(),
            peak_mib: None,
        }
    }

    /// CPU seconds per GB (10^9 bytes) received over all cases.
    fn cpu_per_gb(&self) -> f64 {
        let bytes: u64 = self.bytes.iter().sum();
        match &self.cpu_seconds {
            Some(cpu) if bytes > 0 => cpu.iter().sum::<f64>() / (bytes as f64 / 1e9),
            _ => f64::NAN,
        }
    }
}

/// The rows: median throughput per case (sb, Go; the ceiling's in the name), CPU time per
/// GB, then peak memory.
pub fn rows(subjects: &[Subject], s: &Settings, notes: &mut String) -> Result<Vec<Row>> {
    if let Some(why) = wireguard::unavailable() {
        bail!("the WireGuard rows need network namespaces, wireguard-go and wg: {why}");
    }
    let mut ceiling: Vec<Measured> = Vec::new();
    let mut by_subject: Vec<Vec<Measured>> = subjects.iter().map(|_| Vec::new()).collect();
    for round in 1..=s.rounds {
        eprintln!("bench: WireGuard round {round}/{}: ceiling", s.rounds);
        ceiling.push(measure(None, s).context("wireguard-go to wireguard-go")?);
        for (subj, runs) in subjects.iter().zip(by_subject.iter_mut()) {
            eprintln!("bench: WireGuard round {round}/{}: {}", s.rounds, subj.name);
            match measure(Some(&subj.bin), s) {
                Ok(m) => runs.push(m),
                Err(e) if !s.smoke => {
                    let _ = writeln!(
                        notes,
                        "- WireGuard, {}, round {round}: failed: {e:#}",
                        subj.name
                    );
                    runs.push(Measured::failed());
                }
                Err(e) => return Err(e.context(format!("WireGuard, {}", subj.name))),
            }
        }
    }
    write_rounds(subjects, &ceiling, &by_subject, notes);
    let mut rows = Vec::new();
    for (i, (streams, reverse)) in CASES.iter().enumerate() {
        let way = if *reverse {
            "download (`-R`)"
        } else {
            "upload"
        };
        let gbits = |runs: &[Measured]| median(runs.iter().map(|m| m.gbits[i]));
        rows.push(Row {
            name: format!(
                "WireGuard endpoint, iperf3 {streams} stream(s), {way} (wireguard-go to wireguard-go: {:.2} Gbit/s)",
                gbits(&ceiling)
            ),
            unit: "Gbit/s",
            higher_better: true,
            values: by_subject.iter().map(|runs| gbits(runs)).collect(),
        });
    }
    rows.push(Row {
        name: "WireGuard endpoint: the proxy's CPU time per GB received over the four iperf3 runs"
            .into(),
        unit: "s/GB",
        higher_better: false,
        values: by_subject
            .iter()
            .map(|runs| median(runs.iter().map(Measured::cpu_per_gb)))
            .collect(),
    });
    rows.push(Row {
        name: "WireGuard endpoint: peak resident memory over the four iperf3 runs".into(),
        unit: "MiB",
        higher_better: false,
        values: by_subject
            .iter()
            .map(|runs| {
                runs.iter()
                    .filter_map(|m| m.peak_mib)
                    .fold(f64::NAN, f64::max)
            })
            .collect(),
    });
    Ok(rows)
}

/// Every round's raw figures, for the notes under the table.
fn write_rounds(
    subjects: &[Subject],
    ceiling: &[Measured],
    by_subject: &[Vec<Measured>],
    notes: &mut String,
) {
    let _ = writeln!(
        notes,
        "- WireGuard rounds (Gbit/s for 1 stream up, 1 down, 4 up, 4 down; the proxy's CPU \
         s/GB; UDP receive-buffer drops in the client / server namespace per case):"
    );
    let carriers = std::iter::once(("wireguard-go", ceiling)).chain(
        subjects
            .iter()
            .zip(by_subject)
            .map(|(s, r)| (s.name, r.as_slice())),
    );
    for (name, runs) in carriers {
        for (round, m) in runs.iter().enumerate() {
            let gbits: Vec<String> = m.gbits.iter().map(|g| format!("{g:.2}")).collect();
            let drops: Vec<String> = m.drops.iter().map(|(c, s)| format!("{c}/{s}")).collect();
            let _ = writeln!(
                notes,
                "  - {name}, round {}: {}; {:.2} s/GB; drops {}",
                round + 1,
                gbits.join(", "),
                m.cpu_per_gb(),
                drops.join(", ")
            );
        }
    }
}

/// CPU seconds (user + system, all threads) a process has used so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let rest = stat.rsplit_once(')').context("/proc/<pid>/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .context("utime/stime in /proc/<pid>/stat")
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

/// `RcvbufErrors` of `/proc/net/snmp`'s `Udp` lines inside `ns`: datagrams dropped because a
/// socket's receive buffer was full.
fn udp_drops(ns: &Netns) -> u64 {
    let out = ns.exec(&["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
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

/// One round of one carrier: `proxy` is sb's or Go's binary; `None` is wireguard-go on both
/// sides.
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
    let pid = running.as_ref().map(Proc::pid);
    let mut m = Measured {
        gbits: Vec::new(),
        bytes: Vec::new(),
        cpu_seconds: pid.map(|_| Vec::new()),
        drops: Vec::new(),
        peak_mib: None,
    };
    for (streams, reverse) in CASES {
        let iperf = Proc::spawn_in(
            Some(server.name()),
            "iperf3",
            &["-s", "-1", "-B", SERVER, "-p", &IPERF_PORT.to_string()],
            None,
        )?;
        proc::wait_listening_quietly_in(&format!("/proc/{}/net", iperf.pid()), IPERF_PORT)?;
        let drops_before = (udp_drops(&client), udp_drops(&server));
        let cpu_before = pid.map(cpu_seconds).transpose()?;
        let r = proc::iperf3_client(
            Some(client.name()),
            &host,
            port,
            streams,
            s.seconds,
            reverse,
        )?;
        if let (Some(pid), Some(before), Some(cpu)) = (pid, cpu_before, m.cpu_seconds.as_mut()) {
            cpu.push(cpu_seconds(pid)? - before);
        }
        m.drops.push((
            udp_drops(&client).saturating_sub(drops_before.0),
            udp_drops(&server).saturating_sub(drops_before.1),
        ));
        m.gbits.push(r.bits_per_second / 1e9);
        m.bytes.push(r.bytes);
        drop(iperf);
        if let Some(why) = running.as_mut().and_then(Proc::exited) {
            bail!("the proxy stopped: {why}");
        }
    }
    m.peak_mib = running.as_ref().map(Proc::peak_mib).transpose()?;
    drop(running);
    drop(client_wg);
    Ok(m)
}
