//! Network namespaces for tests that need routes or TUN devices (root only). Each
//! [`Netns`] has a unique name and is deleted when dropped, also when the test panics;
//! [`Netns::spawn`] runs code on a thread that has entered the namespace, so sockets, TUN
//! devices and a whole in-process sb instance (its runtime threads inherit the namespace
//! from the thread that builds it) live there.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why namespace tests cannot run here (`None`: they can). Outside CI the tests skip and
/// print it; under CI it is a failure.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok();
    if uid.is_none_or(|o| String::from_utf8_lossy(&o.stdout).trim() != "0") {
        return Some("network namespace tests need root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 (`ip`) is not installed".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

/// True when the test may run; prints why not, or panics under CI.
pub fn available() -> bool {
    match unavailable() {
        None => true,
        Some(why) => {
            crate::skip(&why);
            false
        }
    }
}

/// A network namespace owned by the test.
pub struct Netns {
    name: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A short name unique to this process and call (interface names must stay under 16 bytes).
pub fn unique(prefix: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

fn check(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Netns {
    /// Creates a namespace with its loopback up.
    pub fn new(prefix: &str) -> Netns {
        let ns = Netns {
            name: unique(prefix),
        };
        check(Command::new("ip").args(["netns", "add", &ns.name]));
        ns.ip("link set lo up");
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip <args>` inside the namespace (whitespace-separated args); panics on failure.
    pub fn ip(&self, args: &str) {
        check(
            Command::new("ip")
                .args(["-n", &self.name])
                .args(args.split_whitespace()),
        );
    }

    /// Runs a command inside the namespace and returns what it did.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd))
    }

    /// A command that runs inside the namespace, for the caller to finish and spawn.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// `n` distinct TCP ports free on the namespace's loopback now (the namespace is the
    /// test's own, so nothing else takes them).
    pub fn free_tcp_ports(&self, n: usize) -> Vec<u16> {
        self.spawn(move || {
            let held: Vec<std::net::TcpListener> = (0..n)
                .map(|_| {
                    std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"))
                })
                .collect();
            held.iter()
                .map(|l| l.local_addr().unwrap_or_else(|e| panic!("{e}")).port())
                .collect()
        })
        .join()
        .unwrap_or_else(|_| panic!("port probe thread failed"))
    }

    /// Runs `f` on a new thread that has entered the namespace.
    pub fn spawn<T, F>(&self, f: F) -> std::thread::JoinHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace removes its interfaces (and the peer end of a veth).
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// Joins `a` and `b` with a veth pair: `a_addrs` / `b_addrs` are `ip addr` arguments such as
/// `10.1.0.1/24` or `fd01::1/64` (IPv6 is added without duplicate address detection, so it
/// is usable at once). Returns the interface names (in `a`, in `b`).
pub fn veth(a: &Netns, a_addrs: &[&str], b: &Netns, b_addrs: &[&str]) -> (String, String) {
    let (va, vb) = (unique("va"), unique("vb"));
    check(Command::new("ip").args([
        "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns", &b.name,
    ]));
    for (ns, dev, addrs) in [(a, &va, a_addrs), (b, &vb, b_addrs)] {
        for addr in addrs {
            let nodad = if addr.contains(':') { " nodad" } else { "" };
            ns.ip(&format!("addr add {addr} dev {dev}{nodad}"));
        }
        ns.ip(&format!("link set {dev} up"));
    }
    (va, vb)
}
