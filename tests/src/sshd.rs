//! A real OpenSSH `sshd` for the SSH outbound's tests. The test owns the listening socket
//! (bound to 127.0.0.1 port 0) and runs `sshd -i` (inetd mode) for each connection it
//! accepts, so the port is the OS's choice, every session is counted, and "the server goes
//! away" is exact: [`Sshd::down`] closes the listener and kills every sshd it started (by
//! the PIDs it remembers), [`Sshd::up`] listens on the same port again.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The local account with a password that `scripts/install-test-deps.sh` creates.
pub const PASSWORD_USER: &str = "sbtest";
/// Its password.
pub const PASSWORD: &str = "sb-test-password";

/// Why sshd cannot run here (outside CI the tests skip and print this).
pub fn unavailable() -> Option<String> {
    if !Path::new("/usr/sbin/sshd").exists() {
        return Some(
            "OpenSSH sshd is not installed (scripts/install-test-deps.sh installs it)".into(),
        );
    }
    // sshd -i must run as root to switch to the logged-in user.
    let uid = Command::new("id").arg("-u").output().ok();
    if uid.is_none_or(|o| String::from_utf8_lossy(&o.stdout).trim() != "0") {
        return Some("sshd needs root".into());
    }
    if Command::new("id")
        .arg(PASSWORD_USER)
        .output()
        .map_or(true, |o| !o.status.success())
    {
        return Some(format!(
            "user {PASSWORD_USER} is missing (scripts/install-test-deps.sh creates it)"
        ));
    }
    None
}

/// A key pair made by ssh-keygen for the test.
pub struct KeyPair {
    /// Private key file.
    pub private: PathBuf,
    /// Public key, authorized_keys form.
    pub public: String,
}

struct Server {
    listener_thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

/// One test sshd.
pub struct Sshd {
    dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its host key, authorized_keys form (for `host_key`).
    pub host_key: String,
    children: Arc<Mutex<Vec<Child>>>,
    accepted: Arc<AtomicUsize>,
    server: Mutex<Option<Server>>,
}

fn keygen(dir: &Path, name: &str, args: &[&str]) -> KeyPair {
    let private = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-f"])
        .arg(&private)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e}"));
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(private.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", private.display())))
        .unwrap_or_else(|e| panic!("public key: {e}"));
    KeyPair {
        private,
        public: public.trim().to_string(),
    }
}

impl Sshd {
    /// Starts a server with a fresh ed25519 host key; panics with the reason when sshd
    /// cannot run (call [`unavailable`] first).
    pub fn start() -> Sshd {
        let dir = std::env::temp_dir().join(format!(
            "sb-sshd-{}-{}",
            std::process::id(),
            super::rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        // sshd reads authorized_keys as the logging-in user: the directory must be open.
        set_mode(&dir, 0o755);
        let host = keygen(&dir, "host_ed25519", &["-t", "ed25519", "-N", ""]);
        std::fs::write(dir.join("authorized_keys"), "").unwrap_or_else(|e| panic!("{e}"));
        set_mode(&dir.join("authorized_keys"), 0o644);
        let config = format!(
            "HostKey {host}\nAuthorizedKeysFile {dir}/authorized_keys\nPidFile none\nUsePAM no\n\
             StrictModes no\nPasswordAuthentication yes\nPubkeyAuthentication yes\n\
             KbdInteractiveAuthentication no\nPermitRootLogin yes\nAllowTcpForwarding yes\n\
             PermitOpen any\nLogLevel DEBUG1\n",
            host = host.private.display(),
            dir = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::create_dir_all("/run/sshd");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let sshd = Sshd {
            dir,
            addr,
            host_key: host.public,
            children: Arc::default(),
            accepted: Arc::default(),
            server: Mutex::new(None),
        };
        sshd.serve(listener);
        sshd
    }

    /// A new client key pair (`ssh-keygen` arguments such as `-t ecdsa -m PKCS8 -N pass`),
    /// allowed to log in.
    pub fn authorize(&self, name: &str, args: &[&str]) -> KeyPair {
        let kp = keygen(&self.dir, name, args);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("authorized_keys"))
            .unwrap_or_else(|e| panic!("{e}"));
        writeln!(f, "{}", kp.public).unwrap_or_else(|e| panic!("{e}"));
        kp
    }

    /// A key pair sshd does not know.
    pub fn stranger(&self, name: &str) -> KeyPair {
        keygen(&self.dir, name, &["-t", "ed25519", "-N", ""])
    }

    /// How many connections sshd has accepted so far.
    pub fn sessions(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The server's log (all sshd processes, `-e`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn serve(&self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (children, accepted, dir) = (
            self.children.clone(),
            self.accepted.clone(),
            self.dir.clone(),
        );
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("sshd.log"));
                let (Ok(input), Ok(log)) = (conn.try_clone(), log) else {
                    continue;
                };
                let child = Command::new("/usr/sbin/sshd")
                    .args(["-i", "-e", "-f"])
                    .arg(dir.join("sshd_config"))
                    .stdin(Stdio::from(std::os::fd::OwnedFd::from(input)))
                    .stdout(Stdio::from(std::os::fd::OwnedFd::from(conn)))
                    .stderr(Stdio::from(log))
                    .spawn();
                match child {
                    Ok(c) => children.lock().unwrap_or_else(|e| e.into_inner()).push(c),
                    Err(e) => eprintln!("start sshd: {e}"),
                }
            }
        });
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(Server {
            listener_thread: Some(thread),
            stop,
        });
    }

    /// The server goes away: no more listening, and every sshd it ran is killed (so the
    /// client sees its sessions end).
    pub fn down(&self) {
        if let Some(mut s) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            s.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so it sees the flag and drops the listener.
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = s.listener_thread.take() {
                let _ = t.join();
            }
        }
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        for c in children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        children.clear();
    }

    /// Listens again on the same port.
    pub fn up(&self) {
        let listener =
            TcpListener::bind(self.addr).unwrap_or_else(|e| panic!("rebind {}: {e}", self.addr));
        self.serve(listener);
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{e}"));
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
