//! The Clash API rows: sb and Go sing-box each hold the same idle flows through their `ssh`
//! outbound (as the SSH rows do), then a dashboard's load is put on the API: a
//! `GET /connections` of the whole table, and one `/connections` WebSocket pushing it every
//! second while the proxy's CPU time is read from /proc. 9,000 flows, not 10,000: sb's
//! connection budget on this machine's 20,000 descriptors is 9,424 (docs/BENCHMARKS.md).

use crate::proc::{self, free_port, Proc};
use crate::{load, Row, Settings, Subject};
use anyhow::{bail, Context, Result};
use sb_tests::sshd::{self, Sshd};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// CPU time (user + system) the process `pid` has used so far.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the state field here;
    // the kernel counts them in USER_HZ, 100 on Linux.
    Ok(Duration::from_millis((ticks(11) + ticks(12)) * 10))
}

/// One `GET /connections`: the time to the whole answer, and its size.
fn get_connections(api: SocketAddr) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let mut s = TcpStream::connect(api)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(b"GET /connections HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    if !body.starts_with(b"HTTP/1.1 200") {
        bail!(
            "GET /connections: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok((start.elapsed(), body.len()))
}

/// Reads a `/connections` WebSocket for `window`; returns how many documents arrived.
fn stream_connections(api: SocketAddr, window: Duration) -> Result<usize> {
    let stream = TcpStream::connect(api)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let url = format!("ws://{api}/connections?interval=1000");
    let (mut ws, _) = tungstenite::client::client(url, stream).context("WebSocket handshake")?;
    let deadline = Instant::now() + window;
    let mut got = 0;
    while Instant::now() < deadline {
        match ws.read().context("WebSocket read")? {
            tungstenite::Message::Text(_) | tungstenite::Message::Binary(_) => got += 1,
            _ => {}
        }
    }
    let _ = ws.close(None);
    Ok(got)
}

/// Measures the Clash API rows; `target` answers one byte per connection, in its own process.
pub fn rows(
    subjects: &[Subject],
    s: &Settings,
    rt: &tokio::runtime::Runtime,
    target: SocketAddr,
    notes: &mut String,
) -> Result<Vec<Row>> {
    if let Some(why) = sshd::unavailable() {
        bail!("the Clash API rows need OpenSSH sshd: {why}");
    }
    let server = Sshd::start();
    let key = server.authorize("bench", &["-t", "ed25519", "-N", ""]);
    let n = s.hold.last().copied().unwrap_or(100);
    let window = Duration::from_secs(if s.smoke { 2 } else { 10 });
    let mut get = Row {
        name: format!("Clash API: GET /connections holding {n} flows (median of 5)"),
        unit: "ms",
        ..Default::default()
    };
    let mut cpu = Row {
        name: format!(
            "Clash API: CPU while a /connections WebSocket streams {n} flows (1 s pushes)"
        ),
        unit: "% of a core",
        ..Default::default()
    };
    for subj in subjects {
        eprintln!("bench: {}: clash api", subj.name);
        let (listen, api_port) = (free_port()?, free_port()?);
        let config = format!(
            r#"{{"log": {{"level": "warn"}},
                "inbounds": [{{"type": "mixed", "tag": "in", "listen": "127.0.0.1", "listen_port": {listen}}}],
                "outbounds": [{{"type": "ssh", "tag": "ssh", "server": "127.0.0.1", "server_port": {}, "private_key_path": "{}", "host_key": ["{}"]}}],
                "experimental": {{"clash_api": {{"external_controller": "127.0.0.1:{api_port}"}}}}}}"#,
            server.addr.port(),
            key.private.display(),
            server.host_key
        );
        let p = Proc::run_config(&subj.bin, &config)?;
        proc::wait_listening(listen)?;
        proc::wait_listening_quietly(api_port)?;
        let proxy = SocketAddr::from(([127, 0, 0, 1], listen));
        let api = SocketAddr::from(([127, 0, 0, 1], api_port));
        let (conns, failure) = rt.block_on(load::hold_parallel(proxy, target, n, 64));
        if let Some(why) = failure {
            let _ = writeln!(
                notes,
                "- {} (clash api) could not hold {n} flows: {why}",
                subj.name
            );
            get.values.push(f64::NAN);
            cpu.values.push(f64::NAN);
            continue;
        }
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let (t, bytes) = get_connections(api)?;
            times.push(t.as_secs_f64() * 1000.0);
            size = bytes;
        }
        times.sort_by(f64::total_cmp);
        get.values.push(times[2]);
        // Idle first, for the note: what the held flows cost without the API.
        let (idle_before, idle_at) = (cpu_time(p.pid())?, Instant::now());
        std::thread::sleep(window);
        let idle =
            (cpu_time(p.pid())? - idle_before).as_secs_f64() / idle_at.elapsed().as_secs_f64();
        let (before, at) = (cpu_time(p.pid())?, Instant::now());
        let pushes = stream_connections(api, window)?;
        let used = (cpu_time(p.pid())? - before).as_secs_f64() / at.elapsed().as_secs_f64();
        cpu.values.push(used * 100.0);
        let _ = writeln!(
            notes,
            "- {} (clash api): /connections is {:.1} MiB with {n} flows; {pushes} WebSocket pushes in {} s; idle CPU with the flows held and no API client: {:.1} % of a core",
            subj.name,
            size as f64 / (1024.0 * 1024.0),
            window.as_secs(),
            idle * 100.0
        );
        drop(conns);
        drop(p);
    }
    Ok(vec![get, cpu])
}
