//! A real unbound serving a [`Zone`] from `local-data` over plain DNS (UDP and TCP), DNS over
//! TLS and DNS over HTTPS (HTTP/2, `/dns-query`; Debian builds unbound with libnghttp2), with a
//! server certificate from a fresh [`TestCa`]. sb's and Go's `tls` and `https` DNS transports
//! are tested against it.
//!
//! unbound cannot take an inherited socket either: three free ports are found by binding port
//! 0 and closing, and a start that fails is retried on new ports a bounded number of times.
//! Readiness is a plain query answered (unbound opens all its listeners before it serves).

use super::{client, free_port, temp_dir, TestCa, Zone};
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TRIES: usize = 5;

/// The DoH path unbound serves (its `http-endpoint` default, and Go's `path` default).
pub const DOH_PATH: &str = "/dns-query";

/// A running unbound; killed (by its PID) and waited for on drop.
pub struct Unbound {
    child: Child,
    dir: PathBuf,
    /// Plain DNS, UDP and TCP.
    pub plain: SocketAddr,
    /// DNS over TLS.
    pub tls: SocketAddr,
    /// DNS over HTTPS (HTTP/2 only), path [`DOH_PATH`].
    pub https: SocketAddr,
    /// The CA that signed its certificate, and the name in the certificate.
    pub ca: TestCa,
    /// Its log file (`log-queries: yes`).
    pub log: PathBuf,
}

/// Why unbound cannot run here (outside CI the tests skip and print this).
pub fn unavailable() -> Option<String> {
    super::missing_tool("unbound", &["unbound", "/usr/sbin/unbound"], "-V")
}

impl Unbound {
    /// Starts unbound serving `zone` and waits (at most 10 s) until it answers. Panics with
    /// unbound's own error when it cannot start.
    pub fn start(zone: &Zone) -> Unbound {
        let dir = temp_dir("unbound");
        let ca = TestCa::create(&dir);
        let log = dir.join("unbound.log");
        let mut last_error = String::new();
        for _ in 0..START_TRIES {
            let [plain, tls, https] = [free_port(), free_port(), free_port()];
            let conf = dir.join("unbound.conf");
            std::fs::write(&conf, config(&dir, &ca, zone, [plain, tls, https]))
                .unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
            let mut child = Command::new(binary())
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start unbound: {e}"));
            let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
            match wait_ready(&mut child, addr(plain), &log) {
                Ok(()) => {
                    return Unbound {
                        child,
                        dir,
                        plain: addr(plain),
                        tls: addr(tls),
                        https: addr(https),
                        ca,
                        log,
                    }
                }
                Err(e) => last_error = e,
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("unbound did not start after {START_TRIES} tries: {last_error}");
    }

    /// Whether its log has a line containing `needle` (queries are logged as
    /// `info: 127.0.0.1 a.test. A IN`).
    pub fn logged(&self, needle: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|t| t.lines().any(|l| l.contains(needle)))
    }

    /// `dns.servers` entries (tag `up`) that reach this unbound: plain `tcp`, `tls`, and
    /// `https` with POST and with GET, the TLS ones trusting [`Unbound::ca`]. `(name, entry)`.
    pub fn server_entries(&self) -> Vec<(&'static str, String)> {
        let tls = format!(
            r#""tls": {{"enabled": true, "server_name": "{}", "certificate_path": "{}"}}"#,
            self.ca.server_name,
            self.ca.ca_path.display()
        );
        let entry = |ty: &str, port: u16, extra: &str| {
            format!(
                r#"{{"type": "{ty}", "tag": "up", "server": "127.0.0.1", "server_port": {port}{extra}}}"#
            )
        };
        vec![
            ("tcp", entry("tcp", self.plain.port(), "")),
            ("tls", entry("tls", self.tls.port(), &format!(", {tls}"))),
            (
                "https",
                entry(
                    "https",
                    self.https.port(),
                    &format!(r#", {tls}, "path": "{DOH_PATH}""#),
                ),
            ),
            (
                "https GET",
                entry(
                    "https",
                    self.https.port(),
                    &format!(r#", "method": "GET", {tls}, "path": "{DOH_PATH}""#),
                ),
            ),
        ]
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The whole configuration: no chroot, user switch, daemon or remote control; the zone's local
/// data, and every other name refused (the readiness probe is refused too: any answer will do).
fn config(
    dir: &std::path::Path,
    ca: &TestCa,
    zone: &Zone,
    [plain, tls, https]: [u16; 3],
) -> String {
    let mut c = String::from("server:\n");
    let mut line = |l: String| {
        c.push_str("    ");
        c.push_str(&l);
        c.push('\n');
    };
    line(format!("directory: \"{}\"", dir.display()));
    line("chroot: \"\"".into());
    line("username: \"\"".into());
    line("pidfile: \"\"".into());
    line("do-daemonize: no".into());
    line("use-syslog: no".into());
    line(format!(
        "logfile: \"{}\"",
        dir.join("unbound.log").display()
    ));
    line("log-queries: yes".into());
    line("verbosity: 1".into());
    line("do-ip6: no".into());
    line(format!("interface: 127.0.0.1@{plain}"));
    line(format!("interface: 127.0.0.1@{tls}"));
    line(format!("interface: 127.0.0.1@{https}"));
    line(format!("tls-port: {tls}"));
    line(format!("https-port: {https}"));
    line(format!("tls-service-pem: \"{}\"", ca.cert_path.display()));
    line(format!("tls-service-key: \"{}\"", ca.key_path.display()));
    line(format!("http-endpoint: \"{DOH_PATH}\""));
    line("access-control: 127.0.0.0/8 allow".into());
    line("module-config: \"iterator\"".into());
    // Everything outside the zone is REFUSED, as dnsmasq does with no upstream: unbound never
    // recurses to the Internet from a test.
    line("local-zone: \".\" refuse".into());
    for l in zone.unbound_lines() {
        line(l);
    }
    c.push_str("remote-control:\n    control-enable: no\n");
    c
}

/// Polls with real queries until one is answered, unbound exits, or 10 s pass.
fn wait_ready(child: &mut Child, plain: SocketAddr, log: &std::path::Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            let logged = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "unbound exited ({status}): {} {}",
                err.trim(),
                logged.trim()
            ));
        }
        let probe = client::query_udp_timeout(
            plain,
            "sb-ready-probe.invalid",
            RecordType::A,
            Duration::from_millis(200),
        );
        if probe.is_ok() {
            return Ok(());
        }
    }
    Err("unbound answered no query within 10 s".into())
}

fn binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/unbound").exists() {
        "/usr/sbin/unbound"
    } else {
        "unbound"
    }
}
