//! A real dnsmasq on a loopback port, serving a [`Zone`] over UDP and TCP and logging every
//! query with the client's address, so a test can assert not only the answer but WHO asked
//! (a DNS `detour` through a SOCKS server must show the SOCKS server's address, not sb's).
//!
//! dnsmasq cannot take an inherited socket, so the port is found by binding 127.0.0.1:0 (UDP
//! and TCP on the same number), closing, and handing the number over; another process may
//! take it in between, so a start that fails to bind is retried on a new port a bounded
//! number of times. Readiness is a real query answered, never a sleep.

use super::{client, free_port, temp_dir, Zone};
use hickory_proto::rr::RecordType;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How many ports a start tries before giving up.
const BIND_TRIES: usize = 5;

/// One query dnsmasq logged (`query[A] a.test from 127.0.0.2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedQuery {
    /// The query type as dnsmasq prints it (`A`, `AAAA`, `TXT`, `type=65`, ...).
    pub qtype: String,
    /// The queried name, as the client spelt it, without a trailing dot.
    pub name: String,
    /// The client's address.
    pub from: IpAddr,
}

/// A running dnsmasq; killed (by its PID) and waited for on drop.
pub struct Dnsmasq {
    child: Child,
    dir: PathBuf,
    /// Where it answers, UDP and TCP.
    pub addr: SocketAddr,
    /// Its query log file.
    pub log: PathBuf,
}

/// Why dnsmasq cannot run here (outside CI the tests skip and print this).
pub fn unavailable() -> Option<String> {
    super::missing_tool("dnsmasq", &["dnsmasq", "/usr/sbin/dnsmasq"], "--version")
}

impl Dnsmasq {
    /// Starts dnsmasq serving `zone` on 127.0.0.1 and waits (at most 10 s) until it answers.
    /// Panics with dnsmasq's own error when it cannot start.
    pub fn start(zone: &Zone) -> Dnsmasq {
        let dir = temp_dir("dnsmasq");
        let log = dir.join("queries.log");
        let mut last_error = String::new();
        for _ in 0..BIND_TRIES {
            let port = free_port();
            let mut cmd = Command::new(binary());
            cmd.args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--log-queries=extra",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--log-facility={}", log.display()))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .args(zone.dnsmasq_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
            // As root dnsmasq would switch to `nobody`, which then cannot write the log in
            // the test's directory.
            if super::is_root() {
                cmd.arg("--user=root");
            }
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start dnsmasq: {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match wait_ready(&mut child, addr, zone) {
                Ok(()) => {
                    return Dnsmasq {
                        child,
                        dir,
                        addr,
                        log,
                    }
                }
                Err(e) => last_error = e,
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("dnsmasq did not start after {BIND_TRIES} ports: {last_error}");
    }

    /// Every query logged so far, in order.
    pub fn queries(&self) -> Vec<LoggedQuery> {
        std::fs::read_to_string(&self.log)
            .map(|text| text.lines().filter_map(parse_query_line).collect())
            .unwrap_or_default()
    }

    /// Waits (at most `timeout`) until a query for `name` (any case, trailing dot ignored) of
    /// type `qtype` is in the log, and returns it. dnsmasq writes the log as it answers, but
    /// the test reads a file another process writes, so it polls the file, bounded.
    pub fn wait_query(&self, name: &str, qtype: &str, timeout: Duration) -> Option<LoggedQuery> {
        let name = name.trim_end_matches('.');
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .queries()
                .into_iter()
                .find(|q| q.qtype == qtype && q.name.eq_ignore_ascii_case(name));
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls with real queries until one is answered, dnsmasq exits (its stderr is the error) or
/// 10 s pass.
fn wait_ready(child: &mut Child, addr: SocketAddr, zone: &Zone) -> Result<(), String> {
    let probe = zone
        .zones
        .first()
        .map(|z| format!("sb-ready-probe.{z}"))
        .unwrap_or_else(|| "sb-ready-probe.test".into());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            return Err(format!("dnsmasq exited ({status}): {}", err.trim()));
        }
        let answered =
            client::query_udp_timeout(addr, &probe, RecordType::A, Duration::from_millis(200));
        if answered.is_ok() {
            return Ok(());
        }
    }
    Err("dnsmasq answered no query within 10 s".into())
}

fn binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        "/usr/sbin/dnsmasq"
    } else {
        "dnsmasq"
    }
}

/// Reads one `--log-queries=extra` line:
/// `Nov 22 05:26:32 dnsmasq[13740]: 1 127.0.0.1/34390 query[A] a.test from 127.0.0.1`.
pub fn parse_query_line(line: &str) -> Option<LoggedQuery> {
    let rest = line.split(" query[").nth(1)?;
    let (qtype, rest) = rest.split_once("] ")?;
    let (name, from) = rest.split_once(" from ")?;
    Some(LoggedQuery {
        qtype: qtype.to_string(),
        name: name.trim_end_matches('.').to_string(),
        from: from.trim().parse().ok()?,
    })
}
