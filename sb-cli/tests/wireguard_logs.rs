//! The real `sb` binary's WireGuard log lines, against Debian's wireguard-go in a network
//! namespace the test creates (root only; skipped with the reason outside CI, a failure
//! under CI): a completed handshake at `info`, and a wrong key as a clear warning with no
//! handshake.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::netns::Netns;
use sb_tests::wireguard::{self, Keys, PeerConfig, WgGo};
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `sb run` in `ns`, its stderr lines on a channel; killed on drop.
struct Sb {
    child: Child,
    lines: mpsc::Receiver<String>,
    dir: std::path::PathBuf,
}

impl Sb {
    fn start(ns: &Netns, config: &str) -> Sb {
        let dir = std::env::temp_dir().join(format!("sb-wg-logs-{}", ns.name()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        let mut child = ns
            .command(env!("CARGO_BIN_EXE_sb"))
            .args([
                "run",
                "-c",
                &dir.join("config.json").to_string_lossy(),
                "--disable-color",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Sb { child, lines, dir }
    }

    /// Waits (at most 20 s) for a line containing `needle`; the lines before it too.
    fn wait_for(&self, needle: &str) -> (String, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return (line, before),
                Ok(line) => before.push(line),
                Err(e) => panic!("no line containing {needle:?} ({e}); saw {before:#?}"),
            }
        }
    }
}

impl Drop for Sb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(sb: &Keys, peer_public: &str, peer_port: u16) -> String {
    format!(
        r#"{{"log": {{"level": "info"}},
            "endpoints": [{{"type": "wireguard", "tag": "wg", "address": ["10.77.0.1/32"],
                            "private_key": "{}",
                            "peers": [{{"address": "127.0.0.1", "port": {peer_port}, "public_key": "{peer_public}",
                                        "allowed_ips": ["10.77.0.2/32"], "persistent_keepalive_interval": 1}}]}}]}}"#,
        sb.private
    )
}

#[test]
fn handshakes_are_logged_and_a_wrong_key_is_said_clearly() {
    if let Some(why) = wireguard::unavailable() {
        sb_tests::skip(&format!("CI must run the WireGuard log tests: {why}"));
        return;
    }
    let ns = Netns::new("wgl");
    let sb_keys = Keys::generate();

    // The right keys: one handshake, said at info with the peer's key start.
    let wg = WgGo::start(
        &ns,
        "10.77.0.2/24",
        &PeerConfig {
            public: &sb_keys.public,
            endpoint: None,
            allowed_ips: "10.77.0.1/32",
            keepalive: None,
        },
    );
    let sb = Sb::start(&ns, &config(&sb_keys, &wg.keys.public, wg.port));
    let (line, _) = sb.wait_for("handshake");
    let short: String = wg.keys.public.chars().take(8).collect();
    assert!(
        line.starts_with("INFO[")
            && line.ends_with(&format!(
                "endpoint/wireguard[wg]: peer({short}): handshake completed"
            )),
        "{line}"
    );
    drop(sb);

    // wireguard-go expects another key: sb's handshakes go unanswered, and sb says so.
    let stranger = Keys::generate();
    let sb = Sb::start(&ns, &config(&stranger, &wg.keys.public, wg.port));
    let (line, before) = sb.wait_for("handshake");
    assert!(
        line.starts_with("WARN[")
            && line.contains(&format!("peer({short}): handshake did not complete (no answer: a wrong key, or the peer is down); retrying")),
        "{line}"
    );
    assert!(
        !before.iter().any(|l| l.contains("handshake completed")),
        "{before:?}"
    );
    // The private key never shows.
    assert!(!before.iter().any(|l| l.contains(&stranger.private)));
}
