//! The namespace lab for TUN tests with `auto_route`, and "the proxy under test": one
//! scenario runs against sb in process, the `sb` binary, or Go sing-box 1.14.4 (any stack)
//! with the same config, so that parity is one function, not copies.
//!
//! ```text
//!  client ns: programs ─> the proxy's rules (9000..9010) ─> table 2022 ─> TUN ─> proxy
//!             proxy's direct outbound, bound to the uplink (auto_detect_interface) ─┐
//!  remote ns: HTTP :8080 on 198.18.7.1 .3 .4, fd99::1 .3; UDP echo :7007 on  <──────┘
//!             198.18.7.1 and fd99::1
//! ```
//!
//! The client namespace has only default routes via the veth (the uplink); the test adds no
//! rule of its own. Every namespace, process and thread is owned by a value whose `Drop`
//! removes it, so a failing test leaves nothing behind.

use crate::netns::{self, Netns};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The TUN's name in every lab config.
pub const TUN: &str = "sblab0";

/// Client and remote namespaces joined by a veth (`10.200.0.0/24`, `fd20::/64`).
pub struct Lab {
    /// Where the proxy and the programs run.
    pub client: Netns,
    /// Where the servers run.
    pub remote: Netns,
}

impl Lab {
    /// The lab, or `None` (with the reason printed) where namespace tests cannot run.
    pub fn new() -> Option<Lab> {
        if !netns::available() {
            return None;
        }
        let client = Netns::new("slc");
        let remote = Netns::new("slr");
        netns::veth(
            &client,
            &["10.200.0.1/24", "fd20::1/64"],
            &remote,
            &["10.200.0.2/24", "fd20::2/64"],
        );
        for a in [
            "198.18.7.1/32",
            "198.18.7.3/32",
            "198.18.7.4/32",
            "fd99::1/128",
            "fd99::3/128",
        ] {
            let nodad = if a.contains(':') { " nodad" } else { "" };
            remote.ip(&format!("addr add {a} dev lo{nodad}"));
        }
        client.ip("route add default via 10.200.0.2");
        client.ip("-6 route add default via fd20::2");
        remote
            .spawn(servers)
            .join()
            .unwrap_or_else(|_| panic!("the remote servers did not start"));
        Some(Lab { client, remote })
    }

    /// A third namespace behind the client (`10.20<n>.0.2/24`, default route via the
    /// client, which forwards): a LAN the client is the router of. Returns it and the
    /// name of its interface in the client namespace.
    pub fn lan(&self, n: u8) -> (Netns, String) {
        let lan = Netns::new("sll");
        let (in_client, _) = netns::veth(
            &self.client,
            &[&format!("10.20{n}.0.1/24")],
            &lan,
            &[&format!("10.20{n}.0.2/24")],
        );
        lan.ip(&format!("route add default via 10.20{n}.0.1"));
        // Forwarded packets that bypass the proxy keep the LAN's source: the remote needs
        // the way back.
        self.remote
            .ip(&format!("route add 10.20{n}.0.0/24 via 10.200.0.1"));
        let o = self
            .client
            .exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (lan, in_client)
    }
}

/// Binds the remote servers (on the calling thread, inside the remote namespace) and serves
/// them on threads of their own.
fn servers() {
    let l = TcpListener::bind(("::", 8080)).unwrap_or_else(|e| panic!("bind :8080: {e}"));
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || hello_server(conn));
        }
    });
    // One socket per address, so the answer comes from the address asked.
    for ip in ["198.18.7.1", "fd99::1"] {
        let u = UdpSocket::bind((ip, 7007)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = u.recv_from(&mut buf) {
                let mut out = b"echo:".to_vec();
                out.extend_from_slice(&buf[..n]);
                let _ = u.send_to(&out, from);
            }
        });
    }
}

/// One HTTP/1.0 exchange answering `hello <path> from <peer address>`: the peer shows
/// whether a connection came from the proxy's outbound or straight from the client.
pub fn hello_server(conn: std::net::TcpStream) {
    let peer = conn
        .peer_addr()
        .map(|a| a.ip().to_canonical().to_string())
        .unwrap_or_default();
    crate::serve_http(conn, |path| format!("hello {path} from {peer}"));
}

/// Binds an HTTP server answering like the remote one on `[::]:port` in `ns`, served
/// until the test process ends.
pub fn serve_hello_in(ns: &Netns, port: u16) {
    let l = ns
        .spawn(move || TcpListener::bind(("::", port)))
        .join()
        .unwrap_or_else(|_| panic!("bind thread"))
        .unwrap_or_else(|e| panic!("bind :{port}: {e}"));
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || hello_server(conn));
        }
    });
}

/// A lab config: the TUN (`extra` appended to its fields) with `auto_route` and
/// `auto_detect_interface`; TCP to 198.18.7.3, .4 and fd99::3 and anything to port 53 is
/// rejected by a rule, so a refused connection proves it went through the proxy.
pub fn config(stack: &str, extra: &str) -> String {
    format!(
        r#"{{
  "log": {{ "level": "warn" }},
  "inbounds": [{{
    "type": "tun", "tag": "tun-in", "interface_name": "{TUN}", "stack": "{stack}",
    "address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"], "auto_route": true{extra}
  }}],
  "outbounds": [{{ "type": "direct", "tag": "direct" }}],
  "route": {{
    "auto_detect_interface": true,
    "rules": [
      {{ "ip_cidr": ["198.18.7.3/32", "198.18.7.4/32", "fd99::3/128"], "action": "reject" }},
      {{ "port": 53, "action": "reject" }}
    ]
  }}
}}"#
    )
}

/// Runs a command in `ns` and returns its stdout (panics on failure).
pub fn out(ns: &Netns, cmd: &[&str]) -> String {
    let o = ns.exec(cmd);
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ip rule` (v4, v6) and the table-2022 routes (v4 `---` v6) of `ns`.
pub fn state(ns: &Netns) -> (String, String, String) {
    let routes = |fam: &str| -> String {
        let o = ns.exec(&["ip", fam, "route", "show", "table", "2022"]);
        let err = String::from_utf8_lossy(&o.stderr);
        // A table that never held a route does not exist yet: empty.
        assert!(
            o.status.success() || err.contains("does not exist"),
            "{err}"
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    };
    (
        out(ns, &["ip", "rule", "show"]),
        out(ns, &["ip", "-6", "rule", "show"]),
        format!("{}---\n{}", routes("-4"), routes("-6")),
    )
}

/// curl in `ns` (as `user` when given, via `runuser`), bounded to 10 s: (exit code, body).
pub fn curl_as(ns: &Netns, user: Option<&str>, url: &str) -> (i32, String) {
    let mut cmd: Vec<&str> = Vec::new();
    if let Some(u) = user {
        cmd.extend(["runuser", "-u", u, "--"]);
    }
    cmd.extend(["curl", "-s", "-g", "--max-time", "10", url]);
    let o = ns.exec(&cmd);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// curl in `ns` as root.
pub fn curl(ns: &Netns, url: &str) -> (i32, String) {
    curl_as(ns, None, url)
}

/// The proxy under test.
#[derive(Clone, Debug)]
pub enum Proxy {
    /// sb built into this test process, started on a thread inside the namespace.
    InProcess,
    /// A binary run as `<bin> run -c config.json` inside the namespace: the `sb` binary or
    /// Go sing-box.
    Binary {
        /// What the reports call it (`sb`, `go`).
        name: &'static str,
        /// The executable.
        bin: PathBuf,
    },
}

impl Proxy {
    /// Go sing-box 1.14.4, or `None` (with the reason printed; a failure under CI) when it
    /// is not installed.
    pub fn go() -> Option<Proxy> {
        crate::go_sing_box().map(|bin| Proxy::Binary { name: "go", bin })
    }

    /// Starts it in `ns` with `config` and returns once its rules and routes are
    /// installed (bounded: 20 s).
    pub fn start(&self, ns: &Netns, config: &str) -> Running {
        match self {
            Proxy::InProcess => Running::in_process(ns, config.to_string()),
            Proxy::Binary { name, bin } => Running::process(ns, name, bin, config),
        }
    }
}

/// A reload request to an in-process instance: the config and where to answer.
type Reload = (String, mpsc::Sender<Result<(), String>>);

/// A started proxy. Dropping it stops it: in process, a graceful close; a process is
/// killed (SIGKILL) and waited for, unless [`Running::terminate`] ended it already.
pub struct Running {
    tracker: Option<Arc<sb_core::tracker::Tracker>>,
    /// In process: reload requests (config, answer); closing it stops the instance.
    stop: Option<mpsc::Sender<Reload>>,
    thread: Option<std::thread::JoinHandle<()>>,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

impl Running {
    fn in_process(ns: &Netns, config: String) -> Running {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, requests) = mpsc::channel::<Reload>();
        let thread = ns.spawn(move || {
            let instance = crate::Instance::start(&config);
            let _ = ready_tx.send(instance.tracker.clone());
            let mut instance = instance;
            while let Ok((config, answer)) = requests.recv() {
                let _ = answer.send(instance.reload(&config));
            }
            drop(instance);
        });
        let tracker = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("sb did not start in the namespace: {e}"));
        Running {
            tracker: Some(tracker),
            stop: Some(stop),
            thread: Some(thread),
            child: None,
            dir: None,
        }
    }

    fn process(ns: &Netns, name: &str, bin: &std::path::Path, config: &str) -> Running {
        let dir = std::env::temp_dir().join(format!(
            "sb-tunlab-{}-{}",
            std::process::id(),
            netns::unique(name)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let file = dir.join("config.json");
        std::fs::write(&file, config).unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(dir.join("stderr"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        // `ip netns exec` execs the program: the child's pid is the proxy's.
        let child = ns
            .command(&bin.to_string_lossy())
            .args(["run", "-c", &file.to_string_lossy(), "--disable-color"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut running = Running {
            tracker: None,
            stop: None,
            thread: None,
            child: Some(child),
            dir: Some(dir),
        };
        running.wait_installed(ns, name, config);
        running
    }

    /// Polls (bounded) until every rule set and table-2022 route the config asks for
    /// exists: the `nop` anchor and the default route of each family with a TUN address,
    /// and the `unreachable` rule of a family strict_route closes.
    fn wait_installed(&mut self, ns: &Netns, name: &str, config: &str) {
        let tun = serde_json::from_str::<serde_json::Value>(config)
            .ok()
            .and_then(|c| c.get("inbounds")?.get(0).cloned())
            .unwrap_or_default();
        let has_v6 = tun
            .get("address")
            .and_then(|a| a.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|p| p.as_str().is_some_and(|p| p.contains(':')))
            });
        let strict = tun.get("strict_route").and_then(|s| s.as_bool()) == Some(true);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (r4, r6, routes) = state(ns);
            let (routes4, routes6) = routes.split_once("---\n").unwrap_or_default();
            let v4 = r4.contains("from all nop") && !routes4.is_empty();
            let v6 = if has_v6 {
                r6.contains("from all nop") && !routes6.is_empty()
            } else {
                !strict || r6.contains("unreachable")
            };
            if v4 && v6 {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{name} exited early ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not install its rules: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reloads `config` as SIGHUP does (in process only); the error of a failed reload,
    /// after which the previous config runs again.
    pub fn reload(&self, config: &str) -> Result<(), String> {
        let Some(stop) = &self.stop else {
            panic!("reload runs in process only")
        };
        let (answer, answered) = mpsc::channel();
        stop.send((config.to_string(), answer))
            .unwrap_or_else(|e| panic!("sb's thread is gone: {e}"));
        answered
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no answer to the reload: {e}"))
    }

    /// sb's tracker (in process only).
    pub fn tracker(&self) -> Option<&Arc<sb_core::tracker::Tracker>> {
        self.tracker.as_ref()
    }

    /// What a process wrote to stderr so far (empty in process).
    pub fn log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("stderr")).ok())
            .unwrap_or_default()
    }

    /// The process's pid (`None` in process).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM (in process: a graceful close) and waits, at most 20 s, for the end.
    pub fn terminate(mut self) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        let Some(mut child) = self.child.take() else {
            self.stop_in_process();
            return ExitStatus::from_raw(0);
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .unwrap_or_else(|e| panic!("SIGTERM: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("wait: {e}")) {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no exit within 20 s of SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits at most `limit` for the process to end on its own; `None` if it still runs
    /// (or runs in process).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("wait: {e}")) {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and waits for the end (a crash: nothing is cleaned up).
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop_in_process(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_in_process();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sends one UDP datagram from `ns` and returns the answer (`None`: none within 3 s).
pub fn udp_exchange(ns: &Netns, to: &str, payload: &'static [u8]) -> Option<Vec<u8>> {
    let to: std::net::SocketAddr = to.parse().unwrap_or_else(|e| panic!("{to}: {e}"));
    ns.spawn(move || {
        let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(bind).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        s.send_to(payload, to).ok()?;
        let mut buf = [0u8; 2048];
        let (n, from) = s.recv_from(&mut buf).ok()?;
        (from == to).then(|| buf[..n].to_vec())
    })
    .join()
    .unwrap_or(None)
}
