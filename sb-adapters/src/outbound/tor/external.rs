//! The `tor` outbound's external mode (`executable_path` set), as Go sing-box runs it: sb
//! starts that `tor` with a control port and an automatic SOCKS port, network disabled;
//! over the control port it points tor's own upstream (`Socks5Proxy`) at a SOCKS5 listener
//! of sb's with random credentials, whose connections sb dials with the outbound's dial
//! fields (`tor/upstream.rs`); it applies `torrc`, enables the network and follows the
//! bootstrap in the background. Flows are SOCKS5 connections to tor's SOCKS port, with the
//! flow's inbound and user as the SOCKS credentials: tor isolates streams by them
//! (`IsolateSOCKSAuth`), so different users never share a circuit.
//!
//! tor is made to exit with sb: `__OwningControllerProcess` names sb's pid and the control
//! connection takes ownership, so neither a crash nor a SIGKILL of sb leaves tor running.

mod control;

use super::status::Status;
use super::upstream::Upstream;
use crate::proto::tor_control::quote;
use control::Control;
use sb_core::adapter::BoxStream;
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Bound on tor writing its control port file after it was started.
const CONTROL_FILE_WAIT: Duration = Duration::from_secs(30);
/// How often the bootstrap phase is asked for while it is below 100%.
const PROGRESS_POLL: Duration = Duration::from_millis(500);

/// What the external mode needs from the config.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The tor executable.
    pub executable: PathBuf,
    /// Extra command-line arguments, after sb's.
    pub extra_args: Vec<String>,
    /// torrc options applied over the control port.
    pub torrc: BTreeMap<String, String>,
    /// tor's DataDirectory.
    pub data_directory: PathBuf,
}

/// One outbound's external tor.
pub struct External {
    tag: String,
    settings: Settings,
    status: watch::Sender<Status<SocketAddr>>,
}

impl External {
    /// Not started yet.
    pub fn new(tag: &str, settings: Settings) -> External {
        External {
            tag: tag.to_string(),
            settings,
            status: watch::Sender::new(Status::default()),
        }
    }

    /// Starts tor and follows its bootstrap; returns when tor exits or the task is aborted
    /// (which kills tor: the child is killed on drop).
    pub async fn run(&self, dialer: Arc<Dialer>) {
        let who = format!("outbound/tor[{}]", self.tag);
        if let Err(e) = self.serve(dialer, &who).await {
            tracing::error!(target: "outbound", "{who}: {e}");
            self.status.send_modify(|s| {
                s.failed = Some(e.to_string().into());
                s.ready = false;
            });
        }
    }

    async fn serve(&self, dialer: Arc<Dialer>, who: &str) -> io::Result<()> {
        let dir = &self.settings.data_directory;
        prepare_directory(dir)?;
        let upstream = Upstream::start(&self.tag, dialer).await?;
        let control_file = dir.join("control-port");
        let _ = std::fs::remove_file(&control_file);
        let mut child = self.spawn(&control_file)?;
        forward_log(&mut child, who.to_string());
        let control_addr = tokio::select! {
            found = wait_control_file(&control_file) => found?,
            status = child.wait() => {
                return Err(io::Error::other(format!("tor exited before it opened its control port ({})", status?)));
            }
        };
        let cookie = std::fs::read(dir.join("control_auth_cookie"))
            .map_err(|e| io::Error::new(e.kind(), format!("read tor's control cookie: {e}")))?;
        let mut control = Control::connect(control_addr, &cookie).await?;
        control.ok("TAKEOWNERSHIP").await?;
        // tor's own connections to the network go through sb (the upstream listener).
        let (user, pass) = upstream.credentials();
        control
            .ok(&format!(
                "RESETCONF Socks5Proxy={} Socks5ProxyUsername={} Socks5ProxyPassword={}",
                quote(&upstream.addr().to_string()),
                quote(user),
                quote(pass)
            ))
            .await?;
        for (key, value) in &self.settings.torrc {
            // Go skips these too: the upstream proxy is sb's.
            if matches!(
                key.as_str(),
                "Socks5Proxy" | "Socks5ProxyUsername" | "Socks5ProxyPassword"
            ) {
                continue;
            }
            control
                .ok(&format!("SETCONF {key}={}", quote(value)))
                .await
                .map_err(|e| io::Error::other(format!("set {key}={value}: {e}")))?;
        }
        control.ok("SETCONF DisableNetwork=0").await?;
        let socks = control
            .ok("GETINFO net/listeners/socks")
            .await?
            .value("net/listeners/socks")
            .and_then(|v| v.split_whitespace().next().and_then(|a| a.parse().ok()))
            .ok_or_else(|| io::Error::other("get socks proxy address"))?;
        self.status.send_modify(|s| s.handle = Some(socks));
        let progress = async {
            let mut said = u8::MAX;
            loop {
                let reply = control.ok("GETINFO status/bootstrap-phase").await?;
                let phase = reply.value("status/bootstrap-phase").unwrap_or_default();
                let percent = progress_of(&phase).unwrap_or(0);
                if percent != said {
                    tracing::info!(target: "outbound", "{who}: bootstrap {percent}%");
                    said = percent;
                }
                self.status.send_modify(|s| {
                    s.percent = percent;
                    s.ready |= percent >= 100;
                });
                if percent >= 100 {
                    tracing::info!(target: "outbound", "{who}: Tor bootstrapped");
                    return Ok::<_, io::Error>(control);
                }
                tokio::time::sleep(PROGRESS_POLL).await;
            }
        };
        // The control connection stays open: closing it would end tor (ownership).
        let _control = tokio::select! {
            c = progress => c?,
            status = child.wait() => return Err(io::Error::other(format!("tor exited ({})", status?))),
        };
        let status = child.wait().await?;
        Err(io::Error::other(format!("tor exited ({status})")))
    }

    fn spawn(&self, control_file: &Path) -> io::Result<Child> {
        let s = &self.settings;
        let dir = &s.data_directory;
        let mut cmd = Command::new(&s.executable);
        cmd.arg("--DataDirectory")
            .arg(dir)
            .args(["--ControlPort", "auto", "--ControlPortWriteToFile"])
            .arg(control_file)
            .args(["--CookieAuthentication", "1", "--SocksPort", "auto"])
            .args(["--DisableNetwork", "1", "--Log", "notice stdout"])
            .args(["__OwningControllerProcess", &std::process::id().to_string()])
            .arg("-f")
            .arg(dir.join("torrc"))
            .args(&s.extra_args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("start {}: {e}", s.executable.display())))
    }

    /// Opens a stream to `dest` through tor's SOCKS port, isolated by the flow's inbound
    /// and user (the SOCKS credentials).
    pub async fn connect(
        &self,
        flow: &FlowContext,
        dest: &Destination,
        wait: Duration,
    ) -> io::Result<BoxStream> {
        let socks = super::status::ready(&self.status, wait).await?;
        let user = flow.user.as_deref().unwrap_or("");
        let isolation = Some((flow.inbound_tag.to_string(), format!("user:{user}")));
        let client = crate::outbound::socks::Socks::new(
            &self.tag,
            Destination::from_socket(socks),
            crate::outbound::socks::Version::V5,
            isolation,
            Dialer::Direct(Default::default()),
            &[sb_core::flow::Network::Tcp],
            None,
        );
        sb_core::adapter::Outbound::connect_tcp(&client, flow, dest).await
    }

    /// Forgets the running tor (the task that owns it is aborted by the outbound).
    pub fn stop(&self) {
        self.status.send_modify(|s| {
            s.ready = false;
            s.handle = None;
        });
    }
}

/// tor's DataDirectory with an (empty) torrc, as Go makes them.
fn prepare_directory(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
    let torrc = dir.join("torrc");
    match std::fs::metadata(&torrc) {
        Ok(m) if m.is_dir() => Err(io::Error::other(format!(
            "Tor configuration path is a directory: {}",
            torrc.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::write(&torrc, ""),
        Err(e) => Err(e),
    }
}

/// Waits (bounded) for the `PORT=host:port` line tor writes to `file`.
async fn wait_control_file(file: &Path) -> io::Result<SocketAddr> {
    let deadline = tokio::time::Instant::now() + CONTROL_FILE_WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Some(addr) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("PORT="))
                .and_then(|a| a.parse().ok())
            {
                return Ok(addr);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "tor wrote no control port to {} within {CONTROL_FILE_WAIT:?}",
                    file.display()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `PROGRESS=NN` of a bootstrap phase line.
fn progress_of(phase: &str) -> Option<u8> {
    phase
        .split_whitespace()
        .find_map(|w| w.strip_prefix("PROGRESS="))
        .and_then(|p| p.parse::<u8>().ok())
        .map(|p| p.min(100))
}

/// tor's own log lines (stdout, stderr) as sb's: warnings and errors at their level, the
/// rest at debug (Go logs them at trace and info).
fn forward_log(child: &mut Child, who: String) {
    let out = child.stdout.take();
    let err = child.stderr.take();
    for pipe in [
        out.map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        err.map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let who = who.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("[err]") {
                    tracing::error!(target: "outbound", "{who}: tor: {line}");
                } else if line.contains("[warn]") {
                    tracing::warn!(target: "outbound", "{who}: tor: {line}");
                } else {
                    tracing::debug!(target: "outbound", "{who}: tor: {line}");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::progress_of;

    #[test]
    fn bootstrap_progress_is_read_from_the_phase_line() {
        assert_eq!(
            progress_of(r#"NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded""#),
            Some(75)
        );
        assert_eq!(
            progress_of("NOTICE BOOTSTRAP PROGRESS=100 TAG=done"),
            Some(100)
        );
        assert_eq!(progress_of("garbage"), None);
    }
}
