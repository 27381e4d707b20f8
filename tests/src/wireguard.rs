//! wireguard-go (Debian's) as a real WireGuard peer, in a network namespace the test created:
//! its interface, keys made with `wg genkey`, configured with `wg set`. Dropping it kills
//! exactly the process it started and removes its UAPI socket and key file.

use crate::netns::{self, Netns};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A key pair in WireGuard's base64.
#[derive(Clone)]
pub struct Keys {
    /// The private key.
    pub private: String,
    /// Its public key.
    pub public: String,
}

impl Keys {
    /// A new pair, from `wg genkey` and `wg pubkey`.
    pub fn generate() -> Keys {
        let out = Command::new("wg")
            .arg("genkey")
            .output()
            .unwrap_or_else(|e| panic!("wg genkey: {e}"));
        let private = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut child = Command::new("wg")
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("wg pubkey: {e}"));
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
            stdin
                .write_all(private.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wg pubkey: {e}"));
        let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(public.len(), 44, "wg pubkey gave {public:?}");
        Keys { private, public }
    }
}

/// Why wireguard-go cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if let Some(why) = netns::unavailable() {
        return Some(why);
    }
    crate::missing_tool(
        &["wireguard-go", "wg"],
        "Debian wireguard-go, wireguard-tools",
    )
}

/// A peer's settings for [`WgGo::start`].
pub struct PeerConfig<'a> {
    /// The peer's public key.
    pub public: &'a str,
    /// Its endpoint, if wireguard-go is to contact it first.
    pub endpoint: Option<SocketAddr>,
    /// Its allowed IPs, comma-separated.
    pub allowed_ips: &'a str,
    /// Keepalive seconds.
    pub keepalive: Option<u16>,
}

/// A running wireguard-go interface.
pub struct WgGo {
    child: Option<Child>,
    /// The interface name (unique across namespaces: the UAPI socket path is global).
    pub iface: String,
    /// Its keys.
    pub keys: Keys,
    /// Its UDP port (in the namespace).
    pub port: u16,
    dir: PathBuf,
    ns: String,
}

impl WgGo {
    /// Starts wireguard-go in `ns` with interface address `address` (e.g. `10.77.0.2/24`) and
    /// `peer`; returns once the interface is up.
    pub fn start(ns: &Netns, address: &str, peer: &PeerConfig<'_>) -> WgGo {
        WgGo::start_with(ns, Keys::generate(), address, peer)
    }

    /// As [`WgGo::start`], with these keys (a peer coming back after a restart).
    pub fn start_with(ns: &Netns, keys: Keys, address: &str, peer: &PeerConfig<'_>) -> WgGo {
        let iface = netns::unique("wg");
        let dir = std::env::temp_dir().join(format!("sb-wg-{iface}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let key_file = dir.join("private");
        std::fs::write(&key_file, &keys.private).unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(dir.join("log")).unwrap_or_else(|e| panic!("{e}"));
        let child = ns
            .command("wireguard-go")
            .args(["-f", &iface])
            .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start wireguard-go: {e}"));
        let mut wg = WgGo {
            child: Some(child),
            iface: iface.clone(),
            keys,
            port: 0,
            dir,
            ns: ns.name().to_string(),
        };
        let socket = wg.uapi_socket();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "wireguard-go did not create {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut set = vec![
            "wg".to_string(),
            "set".into(),
            iface.clone(),
            "private-key".into(),
            key_file.to_string_lossy().into_owned(),
            "peer".into(),
            peer.public.into(),
            "allowed-ips".into(),
            peer.allowed_ips.into(),
        ];
        if let Some(e) = peer.endpoint {
            set.extend(["endpoint".into(), e.to_string()]);
        }
        if let Some(k) = peer.keepalive {
            set.extend(["persistent-keepalive".into(), k.to_string()]);
        }
        let args: Vec<&str> = set.iter().map(String::as_str).collect();
        let out = ns.exec(&args);
        assert!(
            out.status.success(),
            "wg set: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ns.ip(&format!("addr add {address} dev {iface}"));
        ns.ip(&format!("link set {iface} up"));
        let out = ns.exec(&["wg", "show", &iface, "listen-port"]);
        wg.port = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("wg show listen-port: {e}"));
        wg
    }

    fn uapi_socket(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{}.sock", self.iface))
    }

    /// `wg show <iface> <what>`.
    pub fn show(&self, what: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "wg", "show", &self.iface, what])
            .output()
            .unwrap_or_else(|e| panic!("wg show: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (at most 20 s) until a handshake with the peer has completed.
    pub fn wait_handshake(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let latest = self.show("latest-handshakes");
            if latest.split_whitespace().nth(1).is_some_and(|t| t != "0") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no handshake within 20 s: {}\n{}",
                self.show("dump"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Bytes received from the peer so far.
    pub fn received(&self) -> u64 {
        self.show("transfer")
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// What wireguard-go logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Stops it (the interface goes with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.uapi_socket());
    }
}

impl Drop for WgGo {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
