//! The Tor rows: one private Tor network (`sb_tests::tor_net`: Debian `tor` authorities,
//! relays and exit in a namespace of their own), and three carriers through it side by
//! side: sb with Tor in process (arti), sb driving an external tor, and Go sing-box driving
//! the same external tor (its only way). Each runs as a process in the network's namespace
//! with a mixed inbound; curl fetches from the network's HTTP server through it.
//!
//! ```text
//!  curl ─> proxy's mixed inbound ─> tor outbound ─> relays ─> exit ─> HTTP server
//! ```
//!
//! Measured per carrier: the time from spawning the proxy to the first answer through it
//! with an empty data directory (bootstrap included) and again with the directory the first
//! run left (warm), time to first byte of later small fetches (median of several), the
//! throughput of one download, and the peak resident memory of the proxy plus the tor
//! process it started (for the external carriers) over the warm run.

use crate::proc::Proc;
use crate::Subject;
use anyhow::{bail, Context, Result};
use sb_tests::tor_net::{self, TorNet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bound on a proxy's first answer (bootstrap included).
const FIRST_ANSWER: Duration = Duration::from_secs(180);

/// One measurement, per carrier.
struct Line {
    name: &'static str,
    unit: &'static str,
    higher_better: bool,
    values: [f64; 3],
}

/// The Tor table.
pub struct TorTable {
    lines: Vec<Line>,
    network_ready: Duration,
    download: usize,
}

/// How a carrier runs Tor.
#[derive(Clone, Copy)]
enum Mode {
    Arti,
    External,
}

/// What one carrier measured.
struct Measured {
    cold_s: f64,
    warm_s: f64,
    ttfb_ms: f64,
    mib_s: f64,
    peak_mib: f64,
}

/// Measures the three carriers on one network.
pub fn table(subjects: &[Subject], smoke: bool, notes: &mut String) -> Result<TorTable> {
    if let Some(why) = tor_net::unavailable() {
        bail!("the Tor rows need root, network namespaces and Debian's tor: {why}");
    }
    let (sb, go) = match subjects {
        [sb, go, ..] => (sb, go),
        _ => bail!("the Tor rows need sb and Go sing-box"),
    };
    eprintln!("bench: Tor: starting the private Tor network");
    let net = TorNet::start();
    let download = if smoke { 1 << 20 } else { 16 << 20 };
    let carriers = [
        ("sb, arti in process", &sb.bin, Mode::Arti),
        ("sb, external tor", &sb.bin, Mode::External),
        ("Go sing-box, external tor", &go.bin, Mode::External),
    ];
    let mut results = Vec::new();
    for (name, bin, mode) in carriers {
        eprintln!("bench: Tor: {name}");
        match measure(&net, bin, mode, download, smoke) {
            Ok(m) => results.push(m),
            Err(e) if !smoke => {
                let _ = writeln!(notes, "- Tor, {name}: failed: {e:#}");
                results.push(Measured {
                    cold_s: f64::NAN,
                    warm_s: f64::NAN,
                    ttfb_ms: f64::NAN,
                    mib_s: f64::NAN,
                    peak_mib: f64::NAN,
                });
            }
            Err(e) => return Err(e.context(format!("Tor, {name}"))),
        }
    }
    let pick =
        |f: fn(&Measured) -> f64| -> [f64; 3] { [f(&results[0]), f(&results[1]), f(&results[2])] };
    let lines = vec![
        Line {
            name: "Start to first answer, empty data directory (bootstrap)",
            unit: "s",
            higher_better: false,
            values: pick(|m| m.cold_s),
        },
        Line {
            name: "Start to first answer, warm data directory",
            unit: "s",
            higher_better: false,
            values: pick(|m| m.warm_s),
        },
        Line {
            name: "Time to first byte of a small fetch (median)",
            unit: "ms",
            higher_better: false,
            values: pick(|m| m.ttfb_ms),
        },
        Line {
            name: "Download throughput",
            unit: "MiB/s",
            higher_better: true,
            values: pick(|m| m.mib_s),
        },
        Line {
            name: "Peak resident memory, proxy + its tor process",
            unit: "MiB",
            higher_better: false,
            values: pick(|m| m.peak_mib),
        },
    ];
    Ok(TorTable {
        lines,
        network_ready: net.ready_after,
        download,
    })
}

impl TorTable {
    /// The table in Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Tor outbound on a private Tor network ({:.0} s until its reference client fetched through the exit; download of {} MiB):\n",
            self.network_ready.as_secs_f64(),
            self.download >> 20
        );
        let _ = writeln!(
            out,
            "| measurement | sb, arti in process | sb, external tor | Go sing-box 1.14.4, external tor | arti / Go | sb external / Go | better |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for l in &self.lines {
            let show = |v: f64| {
                if v.is_nan() {
                    "failed (see below)".to_string()
                } else {
                    format!("{v:.2} {}", l.unit)
                }
            };
            let ratio = |a: f64, b: f64| {
                if a.is_nan() || b.is_nan() || b == 0.0 {
                    "–".to_string()
                } else {
                    format!("{:.2}×", a / b)
                }
            };
            let [a, e, g] = l.values;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                l.name,
                show(a),
                show(e),
                show(g),
                ratio(a, g),
                ratio(e, g),
                if l.higher_better { "higher" } else { "lower" }
            );
        }
        out
    }
}

/// The proxy's config: a mixed inbound on `port`, the tor outbound in `mode`.
fn config(net: &TorNet, port: u16, mode: Mode, data: &Path) -> String {
    let tor = match mode {
        Mode::Arti => format!(
            r#"{{"type": "tor", "tag": "tor", "data_directory": "{}", "arti_config": "{}"}}"#,
            data.display(),
            net.arti_toml.display()
        ),
        Mode::External => format!(
            r#"{{"type": "tor", "tag": "tor", "executable_path": "tor", "extra_args": {}, "data_directory": "{}"}}"#,
            serde_json::to_string(&net.client_args()).unwrap_or_default(),
            data.display()
        ),
    };
    format!(
        r#"{{"log": {{"level": "warn"}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {port}}}],
            "outbounds": [{tor}]}}"#
    )
}

/// curl through the proxy on `port`: (HTTP status, time to first byte in s, bytes/s).
fn fetch(net: &TorNet, port: u16, path: &str, limit: u64) -> (u16, f64, f64) {
    let out = net.ns.exec(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        &limit.to_string(),
        "-w",
        "%{http_code} %{time_starttransfer} %{speed_download}",
        "-x",
        &format!("socks5h://127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{}{path}", net.http),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = text.split_whitespace();
    let code = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let ttfb = it.next().and_then(|c| c.parse().ok()).unwrap_or(f64::NAN);
    let speed = it.next().and_then(|c| c.parse().ok()).unwrap_or(f64::NAN);
    (code, ttfb, speed)
}

/// Starts the proxy and waits for its first answer; the process, its port and the seconds
/// it took.
fn start(net: &TorNet, bin: &Path, mode: Mode, data: &Path) -> Result<(Proc, u16, f64)> {
    let port = net.free_port();
    let started = Instant::now();
    let mut p = Proc::run_config_in(Some(net.ns.name()), bin, &config(net, port, mode, data))?;
    loop {
        let (code, _, _) = fetch(net, port, "/first", 10);
        if code == 200 {
            return Ok((p, port, started.elapsed().as_secs_f64()));
        }
        if let Some(why) = p.exited() {
            bail!("the proxy {why}");
        }
        if started.elapsed() > FIRST_ANSWER {
            bail!("no answer through the proxy within {FIRST_ANSWER:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops the proxy as a user would (SIGTERM), then kills a tor it may have left behind.
fn stop(p: Proc, data: &Path) {
    p.terminate(Duration::from_secs(10));
    tor_net::kill_tor_of(data);
}

fn measure(net: &TorNet, bin: &Path, mode: Mode, download: usize, smoke: bool) -> Result<Measured> {
    let data = net.scratch("bench");
    let (p, _, cold_s) = start(net, bin, mode, &data).context("empty data directory")?;
    stop(p, &data);
    let (p, port, warm_s) = start(net, bin, mode, &data).context("warm data directory")?;
    let mut ttfb = Vec::new();
    for i in 0..if smoke { 3 } else { 11 } {
        let (code, t, _) = fetch(net, port, &format!("/small{i}"), 60);
        if code != 200 {
            bail!("small fetch {i} failed (HTTP {code})");
        }
        ttfb.push(t * 1000.0);
    }
    ttfb.sort_by(f64::total_cmp);
    let (code, _, speed) = fetch(net, port, &format!("/bytes/{download}"), 300);
    if code != 200 {
        bail!("the download failed (HTTP {code})");
    }
    let peak_mib = p.peak_mib_with_children()?;
    stop(p, &data);
    Ok(Measured {
        cold_s,
        warm_s,
        ttfb_ms: ttfb[ttfb.len() / 2],
        mib_s: speed / 1048576.0,
        peak_mib,
    })
}
