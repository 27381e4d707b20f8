//! Processes under test: spawning, waiting for a port, memory and descriptor readings, iperf3.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
pub struct Proc {
    child: Child,
    _dir: Option<TempDir>,
}

/// Any child process, killed (and reaped) on drop.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Proc {
    /// Spawns `bin args` with stdout/stderr discarded.
    pub fn spawn(bin: &str, args: &[&str], dir: Option<TempDir>) -> Result<Proc> {
        let child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {bin}"))?;
        Ok(Proc { child, _dir: dir })
    }

    /// Runs `bin run -c <config>` in a fresh directory.
    pub fn run_config(bin: &Path, config: &str) -> Result<Proc> {
        let dir =
            std::env::temp_dir().join(format!("sb-bench-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("config.json");
        std::fs::write(&file, config)?;
        let bin = bin.to_string_lossy().into_owned();
        let f = file.to_string_lossy().into_owned();
        Proc::spawn(&bin, &["run", "-c", &f], Some(TempDir(dir)))
    }

    /// Resident memory in MiB.
    pub fn rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("VmRSS")?;
        Ok(kb / 1024.0)
    }

    /// Open file descriptors.
    pub fn fd_count(&self) -> Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))?.count())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now (the harness then hands it to a server; a race with
/// another program is possible but harmless for a benchmark, which would fail loudly).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits (at most 10 s) until something accepts on `port`.
pub fn wait_listening(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("nothing listens on port {port} after 10 s")
}

/// Waits (at most 10 s) until a socket listens on `port`, without connecting to it (a probe
/// connection would count as a client for servers such as iperf3).
pub fn wait_listening_quietly(port: u16) -> Result<()> {
    let needle = format!(":{port:04X} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            // Columns: sl local_address rem_address st ...; st 0A is LISTEN.
            if text.lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).contains(&needle) && cols[3] == "0A"
            }) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("nothing listens on port {port} after 10 s")
}

/// iperf3 client to `port` for `seconds` with `streams`; received bits per second.
pub fn iperf3(port: u16, streams: usize, seconds: u64) -> Result<f64> {
    let out = Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            &seconds.to_string(),
            "-P",
            &streams.to_string(),
            "-J",
        ])
        .output()
        .context("run iperf3 (apt-get install iperf3)")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("iperf3 -J output")?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .with_context(|| format!("iperf3 result: {}", v["error"]))
}
