//! Processes under test: spawning (also inside a network namespace), waiting for a port,
//! memory and descriptor readings, iperf3.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
pub struct Proc {
    child: Child,
    dir: Option<TempDir>,
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
        Proc::spawn_in(None, bin, args, dir)
    }

    /// Spawns `bin args` inside the network namespace `netns` (through `ip netns exec`, which
    /// execs the program, so the child's PID is the program's own and killing it on drop
    /// ends exactly that program).
    pub fn spawn_in(
        netns: Option<&str>,
        bin: &str,
        args: &[&str],
        dir: Option<TempDir>,
    ) -> Result<Proc> {
        let mut cmd = in_netns(netns, bin);
        // The proxies' warnings go to a file in their directory: read back when one fails.
        let stderr = match &dir {
            Some(d) => Stdio::from(std::fs::File::create(d.0.join("stderr.log"))?),
            None => Stdio::null(),
        };
        let child = cmd
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("start {bin}"))?;
        Ok(Proc { child, dir })
    }

    /// Runs `bin run -c <config>` in a fresh directory.
    pub fn run_config(bin: &Path, config: &str) -> Result<Proc> {
        Proc::run_config_in(None, bin, config)
    }

    /// Runs `bin run -c <config>` in a fresh directory, inside `netns` if given.
    pub fn run_config_in(netns: Option<&str>, bin: &Path, config: &str) -> Result<Proc> {
        let dir =
            std::env::temp_dir().join(format!("sb-bench-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("config.json");
        std::fs::write(&file, config)?;
        let bin = bin.to_string_lossy().into_owned();
        let f = file.to_string_lossy().into_owned();
        Proc::spawn_in(netns, &bin, &["run", "-c", &f], Some(TempDir(dir)))
    }

    /// The process ID (its `/proc/<pid>/net` shows the sockets of its namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(why)` once the process has exited: its status and the end of its stderr.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok().flatten()?;
        let log = self
            .dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.0.join("stderr.log")).ok())
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Some(format!("exited with {status}: {}", tail.join(" / ")))
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

    /// Peak resident memory in MiB (`VmHWM`).
    pub fn peak_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("VmHWM")?;
        Ok(kb / 1024.0)
    }

    /// Peak resident memory in MiB of the process and of its direct children (the tor
    /// process a proxy started), each its own `VmHWM`.
    pub fn peak_mib_with_children(&self) -> Result<f64> {
        let mut total = self.peak_mib()?;
        let pid = self.child.id();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace() {
                let status =
                    std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
                let kb: f64 = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                total += kb / 1024.0;
            }
        }
        Ok(total)
    }

    /// Sends SIGTERM and waits at most `limit` for the exit (SIGKILL on drop after that).
    pub fn terminate(mut self, limit: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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
    wait_listening_quietly_in("/proc/net", port)
}

/// [`wait_listening_quietly`] for the sockets listed under `net_dir`: `/proc/net` for this
/// process's namespace, `/proc/<pid>/net` for the namespace of `pid`.
pub fn wait_listening_quietly_in(net_dir: &str, port: u16) -> Result<()> {
    let needle = format!(":{port:04X} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for table in ["tcp", "tcp6"] {
            let text = std::fs::read_to_string(format!("{net_dir}/{table}")).unwrap_or_default();
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

/// iperf3 client to `port` on loopback for `seconds` with `streams`; received bits per second.
pub fn iperf3(port: u16, streams: usize, seconds: u64) -> Result<f64> {
    Ok(iperf3_client(None, "127.0.0.1", port, streams, seconds, false)?.bits_per_second)
}

/// What one iperf3 client run measured (at the receiving end).
pub struct IperfResult {
    /// Received bits per second over the whole run.
    pub bits_per_second: f64,
    /// Bytes received in the run.
    pub bytes: u64,
}

/// iperf3 client (inside `netns` if given) to `host`:`port` for `seconds` with `streams`,
/// `-R` (server sends) when `reverse`; what the receiving side counted.
pub fn iperf3_client(
    netns: Option<&str>,
    host: &str,
    port: u16,
    streams: usize,
    seconds: u64,
    reverse: bool,
) -> Result<IperfResult> {
    let mut cmd = in_netns(netns, "iperf3");
    cmd.args([
        "-c",
        host,
        "-p",
        &port.to_string(),
        "-t",
        &seconds.to_string(),
        "-P",
        &streams.to_string(),
        // A proxy that never answers fails the run instead of hanging it.
        "--connect-timeout",
        "10000",
        "-J",
    ]);
    if reverse {
        cmd.arg("-R");
    }
    let out = cmd
        .output()
        .context("run iperf3 (apt-get install iperf3)")?;
    parse_iperf3(&out.stdout)
}

/// Reads the receiving side's totals from iperf3's `-J` output (its `error` when it failed).
fn parse_iperf3(json: &[u8]) -> Result<IperfResult> {
    let v: serde_json::Value = serde_json::from_slice(json).context("iperf3 -J output")?;
    let sum = &v["end"]["sum_received"];
    match (sum["bits_per_second"].as_f64(), sum["bytes"].as_u64()) {
        (Some(bits_per_second), Some(bytes)) => Ok(IperfResult {
            bits_per_second,
            bytes,
        }),
        _ => bail!("iperf3 result: {}", v["error"]),
    }
}

/// A command for `program`, run inside `netns` when given.
fn in_netns(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn iperf3_totals_and_errors() {
        let ok = br#"{"start": {}, "intervals": [],
            "end": {"sum_sent": {"bytes": 10, "bits_per_second": 80.0},
                    "sum_received": {"bytes": 9, "bits_per_second": 72.5}}}"#;
        let r = parse_iperf3(ok).unwrap();
        assert_eq!((r.bytes, r.bits_per_second), (9, 72.5));
        let failed = br#"{"start": {}, "intervals": [], "end": {},
            "error": "unable to connect to server: Connection refused"}"#;
        let e = parse_iperf3(failed).err().unwrap().to_string();
        assert!(e.contains("Connection refused"), "{e}");
        assert!(parse_iperf3(b"").is_err());
    }
}
