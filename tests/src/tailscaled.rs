//! A real tailscaled 1.96.4 for the `tailscale` endpoint's tests: started in a namespace of
//! the test's own, in userspace-networking mode, with its Local API socket in a scratch
//! directory. `scripts/install-test-deps.sh` installs the binaries (hash-pinned).
//!
//! The namespace has loopback and a veth pair whose two ends are both inside it: tailscaled
//! pauses its control client while it sees no usable interface, so without one a login
//! against an unreachable coordination server would never even be tried. Nothing in the
//! namespace leads out of it.

use crate::netns::Netns;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/install-test-deps.sh` puts the daemon and its CLI.
pub const INSTALL_DIR: &str = "/opt/sb-tests/tailscale-1.96.4";
/// What tailscaled writes outside its state directory (removed after a test if it was not
/// there before).
const LOG_CONF: &str = "/var/lib/tailscale/tailscaled.log.conf";

/// The daemon binary: `$SB_TAILSCALED`, else the installed one.
pub fn binary() -> PathBuf {
    std::env::var_os("SB_TAILSCALED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(INSTALL_DIR).join("tailscaled"))
}

/// Why the real-daemon tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if let Some(why) = crate::netns::unavailable() {
        return Some(why);
    }
    let bin = binary();
    (!bin.is_file()).then(|| {
        format!(
            "{} is not installed (scripts/install-test-deps.sh installs tailscaled 1.96.4)",
            bin.display()
        )
    })
}

/// A namespace fit for tailscaled: loopback, and a veth pair with both ends inside.
pub fn namespace() -> Netns {
    let ns = Netns::new("sbts");
    ns.ip("link add tsv0 type veth peer name tsv1");
    ns.ip("addr add 10.213.0.1/24 dev tsv0");
    ns.ip("link set tsv0 up");
    ns.ip("link set tsv1 up");
    ns.ip("route add default via 10.213.0.2 dev tsv0");
    ns
}

/// A running tailscaled. Dropping it kills exactly its process.
pub struct Tailscaled {
    /// Its Local API socket.
    pub socket: PathBuf,
    child: Child,
    log: PathBuf,
    /// Whether the log config file existed before this daemon.
    log_conf_existed: bool,
}

impl Tailscaled {
    /// Starts a daemon in `ns` whose socket is `socket` and whose state goes under `dir`;
    /// returns once its Local API answers (bounded: 20 s).
    pub fn start(ns: &Netns, dir: &Path, socket: &Path) -> Tailscaled {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let log = dir.join("tailscaled.log");
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let log_conf_existed = Path::new(LOG_CONF).exists();
        let child = ns
            .command(&binary().to_string_lossy())
            .env("TS_NO_LOGS_NO_SUPPORT", "true")
            .arg("--tun=userspace-networking")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--statedir={}", dir.join("state").display()))
            .args(["--port=0", "--no-logs-no-support"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("tailscaled: {e}"));
        let mut daemon = Tailscaled {
            socket: socket.to_path_buf(),
            child,
            log,
            log_conf_existed,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while daemon.get("status?peers=false").0 != 200 {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("tailscaled exited ({status}):\n{}", daemon.log());
            }
            assert!(
                Instant::now() < deadline,
                "tailscaled's Local API did not answer within 20 s:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    /// The daemon's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /localapi/v0/<path>`: status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        local_api(&self.socket, "GET", path, None)
    }

    /// The daemon's prefs, parsed.
    pub fn prefs(&self) -> serde_json::Value {
        let (code, body) = self.get("prefs");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Its backend state (`NeedsLogin`, ...).
    pub fn state(&self) -> String {
        let (_, body) = self.get("status?peers=false");
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["BackendState"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for Tailscaled {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        if !self.log_conf_existed {
            let _ = std::fs::remove_file(LOG_CONF);
        }
    }
}

/// One Local API request over `socket` (HTTP/1.1, `Connection: close`): status and body.
/// Status 0 when the socket cannot be reached. Bounded by a 10 s socket timeout.
pub fn local_api(socket: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = body.unwrap_or("");
    let req = format!(
        "{method} /localapi/v0/{path} HTTP/1.1\r\nHost: local-tailscaled.sock\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    (
        code,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    )
}

/// The body of a chunked response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
