//! The Tailscale rows: what the `tailscale` endpoint (daemon mode) costs sb. Go sing-box
//! has no counterpart to run (its reference binary is built without Tailscale, and its
//! endpoint embeds a node rather than driving a daemon), so the rows compare sb with the
//! endpoint against sb without it. The daemon is the test suite's replay of a real
//! tailscaled's recorded Local API answers (`sb_tests::ts_replay`): no coordination server
//! can run here, so no real daemon reaches Running.
//!
//! Measured: start-up (spawn to accepting) with and without the endpoint; spawn to the
//! first flow through the tailnet answered (the endpoint connects, configures the daemon,
//! logs in with an auth key and sees Running); and the time to open a flow and read its
//! first byte, through `direct` and through the endpoint (a `POST /localapi/v0/dial`
//! upgrade per flow, carried by the replay to the same loopback server).

use crate::load;
use crate::proc::{self, Proc};
use crate::stats::median;
use crate::Subject;
use anyhow::{bail, Context, Result};
use sb_tests::ts_replay::{Replay, Scenario};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The tailnet address the replay maps to the loopback target.
const PEER: &str = "100.100.0.2";
/// Bound on sb reaching the tailnet after its start.
const FIRST_FLOW: Duration = Duration::from_secs(20);

/// The Tailscale table.
pub struct TailscaleTable {
    lines: Vec<(String, &'static str, f64, f64)>,
    runs: usize,
    flows: usize,
}

fn config(listen: u16, socket: Option<&Path>) -> String {
    let endpoint = match socket {
        Some(s) => format!(
            r#""endpoints": [{{"type": "tailscale", "tag": "ts", "tailscaled_socket": "{}",
                               "auth_key": "tskey-auth-bench"}}],
               "route": {{"rules": [{{"ip_cidr": ["100.64.0.0/10"], "outbound": "ts"}}],
                          "final": "direct"}},"#,
            s.display()
        ),
        None => String::new(),
    };
    format!(
        r#"{{"log": {{"level": "warn"}}, {endpoint}
            "inbounds": [{{"type": "mixed", "listen": "127.0.0.1", "listen_port": {listen}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}]}}"#
    )
}

/// A fresh replayed daemon (never logged in) that maps `PEER:port` to `target`.
fn replay(dir: &Path, target: SocketAddr) -> Replay {
    let scenario = Scenario {
        accept_auth_key: true,
        dial_targets: [(format!("{PEER}:{}", target.port()), target)].into(),
        ..Scenario::default()
    };
    Replay::start(&dir.join("tailscaled.sock"), scenario)
}

/// Measures the rows with sb (the first subject).
pub fn table(
    subjects: &[Subject],
    smoke: bool,
    rt: &tokio::runtime::Runtime,
) -> Result<TailscaleTable> {
    let Some(sb) = subjects.first() else {
        bail!("the Tailscale rows need sb");
    };
    let runs = if smoke { 1 } else { 5 };
    let flows = if smoke { 100 } else { 2000 };
    let target = rt.block_on(load::one_byte_server())?;
    let tailnet_target: SocketAddr = format!("{PEER}:{}", target.port()).parse()?;
    let dir =
        proc::TempDir(std::env::temp_dir().join(format!("sb-bench-ts-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;

    let (mut plain, mut with, mut first) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("bench: Tailscale: start-up, run {}/{runs}", run + 1);
        let listen = proc::free_port()?;
        let started = Instant::now();
        let p = Proc::run_config(&sb.bin, &config(listen, None))?;
        proc::wait_listening(listen)?;
        plain.push(started.elapsed().as_secs_f64() * 1e3);
        p.terminate(Duration::from_secs(5));

        let daemon = replay(&dir.0, target);
        let listen = proc::free_port()?;
        let started = Instant::now();
        let p = Proc::run_config(&sb.bin, &config(listen, Some(&daemon.socket)))?;
        proc::wait_listening(listen)?;
        with.push(started.elapsed().as_secs_f64() * 1e3);
        let proxy = SocketAddr::from(([127, 0, 0, 1], listen));
        loop {
            if rt
                .block_on(load::latency(Some(proxy), tailnet_target, 1))
                .is_ok()
            {
                break;
            }
            if started.elapsed() > FIRST_FLOW {
                bail!("no flow reached the tailnet within {FIRST_FLOW:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        first.push(started.elapsed().as_secs_f64() * 1e3);
        p.terminate(Duration::from_secs(5));
    }

    eprintln!("bench: Tailscale: per-flow latency, {flows} flows each way");
    let daemon = replay(&dir.0, target);
    let listen = proc::free_port()?;
    let p = Proc::run_config(&sb.bin, &config(listen, Some(&daemon.socket)))?;
    proc::wait_listening(listen)?;
    let proxy = SocketAddr::from(([127, 0, 0, 1], listen));
    let deadline = Instant::now() + FIRST_FLOW;
    while rt
        .block_on(load::latency(Some(proxy), tailnet_target, 1))
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("no flow reached the tailnet within {FIRST_FLOW:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (d50, d99) = rt
        .block_on(load::latency(Some(proxy), target, flows))
        .context("flows through direct")?;
    let (t50, t99) = rt
        .block_on(load::latency(Some(proxy), tailnet_target, flows))
        .context("flows through the endpoint")?;
    p.terminate(Duration::from_secs(5));

    let plain_ms = median(plain);
    Ok(TailscaleTable {
        lines: vec![
            ("Start-up time (spawn to accepting)".into(), "ms", plain_ms, median(with)),
            (
                "Spawn to the first flow through the tailnet answered (connect, prefs, auth-key login)".into(),
                "ms",
                f64::NAN,
                median(first),
            ),
            ("New flow, open to first byte, p50 (direct vs Local API dial)".into(), "µs", d50, t50),
            ("New flow, open to first byte, p99 (direct vs Local API dial)".into(), "µs", d99, t99),
        ],
        runs,
        flows,
    })
}

impl TailscaleTable {
    /// The table as Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Tailscale endpoint, daemon mode, against the replayed tailscaled (sb only: Go's reference binary has no Tailscale; medians of {} start-ups, {} sequential flows per latency row):\n",
            self.runs, self.flows
        );
        let _ = writeln!(
            out,
            "| measurement | sb without the endpoint (direct) | sb with the endpoint | with / without |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for (name, unit, a, b) in &self.lines {
            let show = |v: f64| {
                if v.is_nan() {
                    "–".to_string()
                } else {
                    format!("{v:.2} {unit}")
                }
            };
            let ratio = if a.is_nan() || *a == 0.0 {
                "–".to_string()
            } else {
                format!("{:.2}×", b / a)
            };
            let _ = writeln!(out, "| {name} | {} | {} | {ratio} |", show(*a), show(*b));
        }
        out
    }
}
