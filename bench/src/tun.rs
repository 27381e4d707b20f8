//! The TUN rows: iperf3 through a `tun` inbound, for sb and for Go sing-box with its
//! `gvisor` and its `system` stack, next to the same path without any proxy.
//!
//! ```text
//!  client ns: iperf3 -c ─> auto_route rules ─> TUN ─> proxy ─> direct outbound ─> veth ─┐
//!  server ns: iperf3 -s on 198.18.7.1 (an address on lo, reached by the default route) <─┘
//! ```
//!
//! The server address is not on the veth's subnet on purpose: auto_route's rules look up
//! the main table with `suppress_prefixlength 0`, so on-link destinations bypass the TUN;
//! only traffic that needs the default route enters it. Every subject gets fresh
//! namespaces (deleted on return, also on error), so no proxy inherits rules another left
//! behind, and each measurement gets a fresh one-off iperf3 server. After each proxied run
//! the TUN's byte counters must have grown by at least what iperf3 moved: a run that went
//! around the proxy fails instead of reporting the veth's speed.

use crate::proc::{self, Proc};
use crate::{Settings, Subject};
use anyhow::{anyhow, bail, Context, Result};
use sb_tests::netns::{self, Netns};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const TUN: &str = "sbbench0";
const SERVER_IP: [u8; 4] = [198, 18, 7, 1];
const IPERF_PORT: u16 = 5201;
/// A listener in the server namespace that the readiness probe connects to (never accepted:
/// the kernel completes the handshake from the backlog).
const PROBE_PORT: u16 = 5202;

/// The measurements, in column order: (parallel streams, `-R`).
const CASES: [(usize, bool); 4] = [(1, false), (1, true), (4, false), (4, true)];

/// What carries the client's traffic in one line of the table.
struct Carrier<'a> {
    label: String,
    /// The proxy and the `stack` value of its config; `None`: no proxy (plain veth).
    proxy: Option<(&'a Path, Option<&'static str>)>,
}

/// The TUN table: one line per carrier (Gbit/s per case), then the sb/Go ratios.
pub struct TunTable {
    lines: Vec<(String, Vec<f64>)>,
}

fn config(stack: Option<&str>) -> String {
    let stack = stack.map_or(String::new(), |s| format!(r#", "stack": "{s}""#));
    format!(
        r#"{{"log": {{"level": "warn"}},
            "inbounds": [{{"type": "tun", "tag": "tun-in", "interface_name": "{TUN}",
                          "address": ["172.19.0.1/30"], "auto_route": true{stack}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"auto_detect_interface": true}}}}"#
    )
}

/// Measures every carrier; `subjects` are sb then Go sing-box (as in [`crate::subjects`]).
/// A carrier that fails is reported as a failed line with the reason in `notes` (in smoke
/// mode the error is returned: there the point is to prove the harness works).
pub fn table(subjects: &[Subject], s: &Settings, notes: &mut String) -> Result<TunTable> {
    if let Some(why) = netns::unavailable() {
        bail!("the TUN rows need network namespaces: {why}");
    }
    let (Some(sb), Some(go)) = (subjects.first(), subjects.get(1)) else {
        bail!("the TUN rows need sb and Go sing-box");
    };
    let carriers = [
        Carrier {
            label: "plain veth, no proxy (the ceiling)".into(),
            proxy: None,
        },
        Carrier {
            label: "sb (`stack` unset: its userspace stack, smoltcp)".into(),
            proxy: Some((&sb.bin, None)),
        },
        Carrier {
            label: "Go sing-box, `\"stack\": \"gvisor\"`".into(),
            proxy: Some((&go.bin, Some("gvisor"))),
        },
        Carrier {
            label: "Go sing-box, `\"stack\": \"system\"`".into(),
            proxy: Some((&go.bin, Some("system"))),
        },
    ];
    let mut lines = Vec::new();
    for c in &carriers {
        eprintln!("bench: TUN: {}", c.label);
        let values = match measure(c, s) {
            Ok(v) => v,
            Err(e) if !s.smoke => {
                let _ = writeln!(notes, "- TUN, {}: failed: {e:#}", c.label);
                vec![f64::NAN; CASES.len()]
            }
            Err(e) => return Err(e.context(format!("TUN, {}", c.label))),
        };
        lines.push((c.label.clone(), values));
    }
    Ok(TunTable { lines })
}

/// The client and server namespaces joined by a veth; the client's only way to the
/// server's address is its default route via the veth.
struct Net {
    client: Netns,
    server: Netns,
    _probe: TcpListener,
}

fn net() -> Result<Net> {
    let client = Netns::new("sbtc");
    let server = Netns::new("sbts");
    netns::veth(&client, &["10.200.0.1/24"], &server, &["10.200.0.2/24"]);
    server.ip(&format!("addr add {}/32 dev lo", ip(SERVER_IP)));
    client.ip("route add default via 10.200.0.2");
    let probe = server
        .spawn(|| TcpListener::bind(SocketAddr::from((SERVER_IP, PROBE_PORT))))
        .join()
        .map_err(|_| anyhow!("the probe listener's thread panicked"))?
        .context("probe listener in the server namespace")?;
    Ok(Net {
        client,
        server,
        _probe: probe,
    })
}

fn ip(a: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

/// One carrier's Gbit/s for every case, in fresh namespaces.
fn measure(c: &Carrier, s: &Settings) -> Result<Vec<f64>> {
    let net = net()?;
    // Declared after `net`, so dropped (killed and reaped) before the namespaces go.
    let _proxy = match c.proxy {
        None => None,
        Some((bin, stack)) => {
            let mut p = Proc::run_config_in(Some(net.client.name()), bin, &config(stack))?;
            wait_ready(&net, &mut p)?;
            Some(p)
        }
    };
    let mut values = Vec::new();
    for (streams, reverse) in CASES {
        let server = Proc::spawn_in(
            Some(net.server.name()),
            "iperf3",
            &[
                "-s",
                "-1",
                "-B",
                &ip(SERVER_IP),
                "-p",
                &IPERF_PORT.to_string(),
            ],
            None,
        )?;
        proc::wait_listening_quietly_in(&format!("/proc/{}/net", server.pid()), IPERF_PORT)?;
        let before = tun_bytes(&net.client)?;
        let r = proc::iperf3_client(
            Some(net.client.name()),
            &ip(SERVER_IP),
            IPERF_PORT,
            streams,
            s.seconds,
            reverse,
        )?;
        let through_tun = tun_bytes(&net.client)?.saturating_sub(before);
        if c.proxy.is_some() && through_tun < r.bytes {
            bail!(
                "iperf3 moved {} bytes but only {through_tun} passed the TUN: the traffic went around the proxy",
                r.bytes
            );
        }
        values.push(r.bits_per_second / 1e9);
        drop(server);
    }
    Ok(values)
}

/// Waits (bounded) until the proxy has installed its rules and routes and a connection to
/// the server's address completes through the TUN.
fn wait_ready(net: &Net, p: &mut Proc) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    // The rules go in last in both implementations (`9010: nop` closes the set); before
    // they are in, a probe would leave by the veth and prove nothing.
    loop {
        if let Some(why) = p.exited() {
            bail!("the proxy stopped: {why}");
        }
        let rules = output(&net.client, &["ip", "rule", "show"])?;
        let routes = output(&net.client, &["ip", "route", "show", "table", "all"])?;
        if rules.contains("9010:") && routes.contains(&format!("default via 172.19.0.2 dev {TUN}"))
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the proxy did not install its rules and routes in 20 s:\n{rules}{routes}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let target = SocketAddr::from((SERVER_IP, PROBE_PORT));
    let probe = net.client.spawn(move || loop {
        match TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    });
    probe
        .join()
        .map_err(|_| anyhow!("the probe thread panicked"))?
        .context("connect through the TUN")?;
    if let Some(why) = p.exited() {
        bail!("the proxy stopped: {why}");
    }
    Ok(())
}

/// Bytes the TUN device has passed in both directions (`ip -s -j link`).
fn tun_bytes(ns: &Netns) -> Result<u64> {
    let text = output(ns, &["ip", "-s", "-j", "link", "show", "dev", TUN]);
    // No proxy, no device: nothing passed it.
    let Ok(text) = text else { return Ok(0) };
    let v: serde_json::Value = serde_json::from_str(&text).context("ip -j link output")?;
    let stats = &v[0]["stats64"];
    match (stats["rx"]["bytes"].as_u64(), stats["tx"]["bytes"].as_u64()) {
        (Some(rx), Some(tx)) => Ok(rx.saturating_add(tx)),
        _ => bail!("no byte counters for {TUN}: {text}"),
    }
}

/// Runs `cmd` in `ns`; its stdout, or an error with its stderr.
fn output(ns: &Netns, cmd: &[&str]) -> Result<String> {
    let o = ns.exec(cmd);
    if !o.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

impl TunTable {
    /// The table in Markdown: Gbit/s per carrier and case, then sb / Go for each Go stack.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "| TUN inbound, iperf3 (Gbit/s, higher is better) |");
        for (streams, reverse) in CASES {
            let way = if reverse { "download (`-R`)" } else { "upload" };
            let plural = if streams == 1 { "" } else { "s" };
            let _ = write!(out, " {streams} stream{plural}, {way} |");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "|---{}", "|---".repeat(CASES.len()) + "|");
        for (label, values) in &self.lines {
            let cells: Vec<String> = values
                .iter()
                .map(|v| {
                    if v.is_nan() {
                        "failed (see below)".into()
                    } else {
                        format!("{v:.2}")
                    }
                })
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        let sb = self.lines.get(1).map(|l| &l.1);
        for (name, go) in [("gvisor", 2), ("system", 3)] {
            let go = self.lines.get(go).map(|l| &l.1);
            let (Some(sb), Some(go)) = (sb, go) else {
                continue;
            };
            let cells: Vec<String> = sb
                .iter()
                .zip(go)
                .map(|(a, b)| {
                    if a.is_nan() || b.is_nan() || *b == 0.0 {
                        "–".into()
                    } else {
                        format!("{:.2}×", a / b)
                    }
                })
                .collect();
            let _ = writeln!(out, "| sb / Go {name} | {} |", cells.join(" | "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_line_per_carrier_and_a_ratio_per_go_stack() {
        let t = TunTable {
            lines: vec![
                ("veth".into(), vec![10.0; 4]),
                ("sb".into(), vec![2.0, 3.0, f64::NAN, 4.0]),
                ("gvisor".into(), vec![1.0, 2.0, 1.0, 0.0]),
                ("system".into(), vec![4.0, 3.0, 2.0, 1.0]),
            ],
        };
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 4 + 2, "{text}");
        assert!(lines[0].contains("4 streams, download (`-R`)"), "{text}");
        assert_eq!(lines[3], "| sb | 2.00 | 3.00 | failed (see below) | 4.00 |");
        assert_eq!(lines[6], "| sb / Go gvisor | 2.00× | 1.50× | – | – |");
        assert_eq!(lines[7], "| sb / Go system | 0.50× | 1.00× | – | 4.00× |");
    }
}
