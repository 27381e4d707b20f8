//! The `local` DNS server against a real resolver: the `sb` binary runs inside a network
//! namespace the test creates, where `ip netns exec` puts the namespace's own
//! `/etc/netns/<name>/resolv.conf` over `/etc/resolv.conf` — naming a dnsmasq the test runs
//! in that namespace on its port 53. A query sent to sb's hijacked `direct` inbound is
//! answered by dnsmasq through `local`. Root only (skipped with a reason outside CI, a failure
//! under CI); the namespace, its resolv.conf directory and both processes are removed also
//! when the test fails.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::netns::{self, Netns};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A child process killed and waited for on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/etc/netns/<ns>/`, removed on drop.
struct EtcDir(PathBuf);

impl Drop for EtcDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn local_server_asks_the_resolver_of_resolv_conf() {
    if !netns::available() {
        return;
    }
    if let Some(why) = sb_tests::dns::dnsmasq::unavailable() {
        sb_tests::skip(&why);
        return;
    }
    let ns = Netns::new("sdl");
    ns.ip("link set lo up");
    let etc = EtcDir(PathBuf::from(format!("/etc/netns/{}", ns.name())));
    std::fs::create_dir_all(&etc.0).unwrap();
    std::fs::write(etc.0.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();

    // dnsmasq on the namespace's own port 53: nothing else listens there.
    let _dnsmasq = Killed(
        ns.command("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--port=53",
                "--user=root",
                "--local=/test/",
                "--address=/local.test/10.55.0.1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("sb-dns-local-{}", ns.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"log": {"level": "debug"},
            "dns": {"servers": [{"type": "local", "tag": "l"}]},
            "inbounds": [{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": 5300}],
            "route": {"rules": [{"inbound": "dns-in", "action": "hijack-dns"}]}}"#,
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("stderr")).unwrap();
    let _sb = Killed(
        ns.command(env!("CARGO_BIN_EXE_sb"))
            .args(["run", "-c", &config.to_string_lossy(), "--disable-color"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // Both start in the background: ask until sb answers (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let out = ns.exec(&[
            "dig",
            "@127.0.0.1",
            "-p",
            "5300",
            "local.test",
            "A",
            "+short",
            "+time=1",
            "+tries=1",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !text.is_empty() && !text.starts_with(';') {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no answer through local; sb said: {}",
            std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer, "10.55.0.1");
    let _ = std::fs::remove_dir_all(&dir);
}
