//! The `sb` command line as a user meets it: exit codes, silence on success, error lines,
//! format/merge output, version and generate.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sb(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sb"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run sb")
}

/// A fresh directory under the target dir for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_is_silent_on_success() {
    let dir = scratch("check-ok");
    std::fs::write(
        dir.join("config.json"),
        r#"{"outbounds": [{"type": "direct", "tag": "d"}]}"#,
    )
    .unwrap();
    let out = sb(&dir, &["check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn check_fails_with_location() {
    let dir = scratch("check-bad");
    std::fs::write(dir.join("c.json"), "{\n  \"outbound\": []\n}\n").unwrap();
    let out = sb(&dir, &["check", "-c", "c.json", "--disable-color"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "FATAL[0000] c.json:2:3: outbound: unknown field \"outbound\" (did you mean \"outbounds\"?)\n"
    );
}

#[test]
fn missing_config_file_is_reported() {
    let dir = scratch("check-missing");
    let out = sb(&dir, &["check", "--disable-color"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("FATAL[0000] read config at config.json: "),
        "{err}"
    );
}

#[test]
fn check_reads_stdin() {
    let dir = scratch("check-stdin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sb"))
        .current_dir(&dir)
        .args(["check", "-c", "stdin", "--disable-color"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"log\": {\"level\": \"loud\"}}")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("FATAL[0000] stdin:1:19: log.level: unknown value \"loud\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn warnings_do_not_fail_check() {
    let dir = scratch("check-warn");
    std::fs::write(
        dir.join("config.json"),
        r#"{"dns": {"servers": [{"type": "local"}], "independent_cache": true}}"#,
    )
    .unwrap();
    let out = sb(&dir, &["check", "--disable-color"]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).starts_with("WARN[0000] config.json:1:42: dns.independent_cache: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn format_matches_go_normalisation() {
    let dir = scratch("format");
    std::fs::write(
        dir.join("config.json"),
        "// keep me\n{\"inbounds\": [{\"type\": \"mixed\", \"udp_timeout\": 300, \"tcp_fast_open\": false}],\n \"route\": {\"rules\": [{\"domain\": [\"a.com\"], \"action\": \"route\", \"outbound\": \"d\"}]},\n \"outbounds\": [{\"type\": \"direct\", \"tag\": \"d\", \"routing_mark\": 8227}],}\n",
    )
    .unwrap();
    let out = sb(&dir, &["format"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = r#"// keep me
{
  "inbounds": [
    {
      "type": "mixed",
      "udp_timeout": "5m0s"
    }
  ],
  "outbounds": [
    {
      "type": "direct",
      "tag": "d",
      "routing_mark": "0x2023"
    }
  ],
  "route": {
    "rules": [
      {
        "domain": "a.com",
        "outbound": "d"
      }
    ]
  }
}
"#;
    // Like Go, stdout gets the document and an empty line; -w writes the document.
    assert_eq!(text(&out.stdout), format!("{expected}\n"));
    // -w writes the same text back, and a second run changes nothing.
    assert!(sb(&dir, &["format", "-w"]).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join("config.json")).unwrap(),
        expected
    );
}

#[test]
fn merge_sorts_and_concatenates() {
    let dir = scratch("merge");
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(
        dir.join("conf.d/20-b.json"),
        r#"{"outbounds": [{"type": "block", "tag": "b"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.d/10-a.json"),
        r#"{"log": {"level": "info"}, "outbounds": [{"type": "direct", "tag": "a"}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("conf.d/notes.txt"), "not a config").unwrap();
    let out = sb(&dir, &["merge", "out.json", "-C", "conf.d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::canonicalize(dir.join("out.json")).unwrap();
    assert_eq!(text(&out.stderr), format!("{}\n", written.display()));
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    assert_eq!(
        merged,
        serde_json::json!({"log": {"level": "info"}, "outbounds": [{"type": "direct", "tag": "a"}, {"type": "block", "tag": "b"}]})
    );
}

/// Hardening finding 14: a merged config holds every secret of its parts; it is written
/// for its owner only.
#[test]
fn merge_writes_the_file_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("merge-mode");
    std::fs::write(
        dir.join("a.json"),
        r#"{"outbounds": [{"type": "socks", "tag": "s", "server": "127.0.0.1", "server_port": 1080, "password": "p"}]}"#,
    )
    .unwrap();
    let out = sb(&dir, &["merge", "out.json", "-c", "a.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(dir.join("out.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn directory_flag_changes_working_directory() {
    let dir = scratch("chdir");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/config.json"), "{}").unwrap();
    let out = sb(&dir, &["check", "-D", "etc"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A running `sb run`, killed on drop so a failing test leaves nothing behind.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn start(dir: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sb"))
            .current_dir(dir)
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits (at most 20 s) for a line containing `needle`; returns it.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line containing {needle:?}: {e}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mixed_config(level: &str) -> String {
    format!(
        r#"{{"log": {{"level": "{level}"}}, "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}], "outbounds": [{{"type": "direct", "tag": "d"}}]}}"#
    )
}

#[test]
fn run_serves_until_sigterm_and_exits_0() {
    let dir = scratch("run-term");
    std::fs::write(dir.join("config.json"), mixed_config("info")).unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("tcp server started at");
    assert!(
        line.starts_with("INFO[0000] inbound/mixed[m]: tcp server started at 127.0.0.1:"),
        "{line}"
    );
    sb.wait_for("sb started");
    sb.signal("-TERM");
    let status = sb.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A DNS query for `name` (type A) with `id`.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Asks `server` once; the answer's id, within 5 s.
fn ask(server: std::net::SocketAddr, id: u16) -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.send_to(&dns_query(id, "pinned.test"), server).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).expect("no DNS answer within 5 s");
    assert!(n >= 12);
    u16::from_be_bytes([buf[0], buf[1]])
}

/// Hardening finding 1: a UDP flow still alive (a DNS query through a `direct` inbound's
/// hijack-dns) held the inbound's socket past `close`, so the reload could not bind the port
/// again and sb exited ("Address already in use"). Go reloads the same config fine.
#[test]
fn sighup_reloads_with_live_udp_flows_on_the_same_port() {
    let dir = scratch("run-hup-udp");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"log": {{"level": "info"}},
                "inbounds": [{{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": {port}, "network": "udp"}}],
                "dns": {{"servers": [{{"type": "hosts", "tag": "h", "predefined": {{"other.test": "192.0.2.9"}}}}],
                        "rules": [{{"domain": ["pinned.test"], "action": "predefined", "answer": ["pinned.test. 300 IN A 192.0.2.1"]}}]}},
                "route": {{"rules": [{{"inbound": "dns-in", "action": "hijack-dns"}}]}}}}"#
        ),
    )
    .unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    sb.wait_for("sb started");
    let server: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(ask(server, 0x1234), 0x1234);
    sb.signal("-HUP");
    let line = sb.wait_for("reload");
    assert!(line.contains("sb reloaded"), "{line}");
    assert_eq!(ask(server, 0x4321), 0x4321);
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}

/// Hardening finding 12: an inbound reachable beyond this machine without users is an open
/// proxy for anyone who can reach it; sb says so at start (Go starts it silently).
#[test]
fn run_warns_about_an_open_proxy() {
    let dir = scratch("run-open-proxy");
    std::fs::write(
        dir.join("config.json"),
        r#"{"log": {"level": "warn"}, "inbounds": [{"type": "mixed", "tag": "open", "listen": "0.0.0.0", "listen_port": 0},
            {"type": "mixed", "tag": "closed", "listen": "0.0.0.0", "listen_port": 0, "users": [{"username": "u", "password": "p"}]},
            {"type": "mixed", "tag": "local", "listen_port": 0}]}"#,
    )
    .unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("without users");
    assert!(
        line.starts_with("WARN[0000] inbound/mixed[open]: listening on 0.0.0.0:"),
        "{line}"
    );
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
    let rest: Vec<String> = sb.lines.try_iter().collect();
    assert!(
        !rest.iter().any(|l| l.contains("without users")),
        "only the open one is warned about: {rest:?}"
    );
}

/// One request on a keep-alive connection to the HTTP proxy; the status line, or `None`
/// when the proxy closed the connection.
fn proxied_get(
    c: &mut std::net::TcpStream,
    origin: std::net::SocketAddr,
    auth: &str,
) -> Option<String> {
    use std::io::{Read, Write};
    let req = format!(
        "GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
    );
    c.write_all(req.as_bytes()).ok()?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    // Read the body so the next response starts clean.
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).ok()?;
    text.lines().next().map(str::to_string)
}

/// Hardening finding 8: a keep-alive connection accepted before a reload kept the old users
/// and rules for every later request. After the reload, the old connection takes no new
/// request (the client reconnects, to the new config); users removed by the reload are out.
#[test]
fn after_sighup_an_old_keep_alive_connection_takes_no_new_request() {
    let origin = sb_tests::hello_origin();
    let dir = scratch("run-hup-users");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = |user: &str| {
        format!(
            r#"{{"log": {{"level": "info"}}, "inbounds": [{{"type": "mixed", "tag": "m", "listen": "127.0.0.1", "listen_port": {port},
                "users": [{{"username": "{user}", "password": "p"}}]}}]}}"#
        )
    };
    std::fs::write(dir.join("config.json"), config("old")).unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    sb.wait_for("sb started");
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    // b2xkOnA= is base64("old:p").
    let first = proxied_get(&mut c, origin, "b2xkOnA=");
    assert!(
        first.as_deref().is_some_and(|l| l.contains(" 200 ")),
        "{first:?}"
    );
    std::fs::write(dir.join("config.json"), config("new")).unwrap();
    sb.signal("-HUP");
    sb.wait_for("sb reloaded");
    assert_eq!(
        proxied_get(&mut c, origin, "b2xkOnA="),
        None,
        "the old connection served a request after the reload"
    );
    let mut fresh = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    fresh
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        proxied_get(&mut fresh, origin, "b2xkOnA=")
            .as_deref()
            .map(|l| &l[..12]),
        Some("HTTP/1.1 407")
    );
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}

#[test]
fn sighup_with_a_bad_config_keeps_the_old_one_running() {
    let dir = scratch("run-hup");
    std::fs::write(dir.join("config.json"), mixed_config("info")).unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("tcp server started at");
    let addr = line.rsplit(' ').next().unwrap().to_string();
    sb.wait_for("sb started");
    std::fs::write(
        dir.join("config.json"),
        r#"{"inbounds": [{"type": "mixd"}]}"#,
    )
    .unwrap();
    sb.signal("-HUP");
    let err = sb.wait_for("reload service");
    assert!(err.contains("unknown inbound type \"mixd\""), "{err}");
    // Still serving on the old address.
    std::net::TcpStream::connect(&addr).unwrap();
    // A good config is taken.
    std::fs::write(dir.join("config.json"), mixed_config("info")).unwrap();
    sb.signal("-HUP");
    sb.wait_for("sb reloaded");
    sb.signal("-INT");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}

#[test]
fn check_and_run_refuse_adapters_without_a_runtime_alike() {
    let dir = scratch("run-unbuilt");
    std::fs::write(
        dir.join("config.json"),
        r#"{"outbounds": [{"type": "direct"}, {"type": "tor", "tag": "box"}]}"#,
    )
    .unwrap();
    let want = "FATAL[0000] initialize: outbounds[1] (tag \"box\"): type \"tor\" is not implemented by sb\n";
    for command in ["check", "run"] {
        let out = sb(&dir, &[command, "--disable-color"]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert_eq!(text(&out.stderr), want, "{command}");
    }
}

#[test]
fn check_reports_every_config_error_go_first() {
    let dir = scratch("check-many-errors");
    std::fs::write(
        dir.join("config.json"),
        r#"{"outbounds": [{"type": "vmess", "tag": "v"}, {"type": "direct", "tag": "c", "bogus": 1}]}"#,
    )
    .unwrap();
    let out = sb(&dir, &["check", "--disable-color"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    // Go decodes the vmess outbound and stops at the unknown field: that is the FATAL line.
    assert!(
        lines[0].starts_with("FATAL[0000] ")
            && lines[0].ends_with(r#"outbounds[1].bogus (tag "c"): unknown field "bogus""#),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("ERROR[0000] also: ")
            && lines[1]
                .ends_with(r#"outbounds[0] (tag "v"): type "vmess" is not implemented by sb"#),
        "{stderr}"
    );
}

#[test]
fn check_reports_every_adapter_it_cannot_run() {
    let dir = scratch("check-unbuilt-all");
    std::fs::write(
        dir.join("config.json"),
        r#"{"outbounds": [{"type": "tor", "tag": "t"}, {"type": "socks", "tag": "s", "server": "127.0.0.1", "server_port": 1080, "detour": "wg"}],
            "endpoints": [{"type": "wireguard", "tag": "wg", "detour": "s", "private_key": "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4="}]}"#,
    )
    .unwrap();
    let out = sb(&dir, &["check", "--disable-color"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        concat!(
            "FATAL[0000] initialize: outbounds[0] (tag \"t\"): type \"tor\" is not implemented by sb\n",
            "ERROR[0000] also: initialize: endpoints[0] (tag \"wg\"): type \"wireguard\" is not implemented by sb\n",
            "ERROR[0000] also: initialize: circular outbound dependency: s -> wg -> s\n",
        )
    );
}

#[test]
fn run_refuses_tun_fields_it_does_not_implement() {
    let dir = scratch("run-tun-auto-route");
    std::fs::write(
        dir.join("config.json"),
        r#"{"inbounds": [{"type": "tun", "tag": "t", "address": "172.19.0.1/30", "exclude_mptcp": true}]}"#,
    )
    .unwrap();
    // `check` builds what `run` builds (without starting it), so both refuse.
    for command in ["check", "run"] {
        let out = sb(&dir, &[command, "--disable-color"]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert_eq!(
            text(&out.stderr),
            "FATAL[0000] initialize: inbounds[0] (tag \"t\"): exclude_mptcp is not implemented by sb's tun inbound yet; remove it to run\n",
            "{command}"
        );
    }
}

#[test]
fn run_fails_fast_when_a_port_is_taken() {
    let dir = scratch("run-port");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"inbounds": [{{"type": "socks", "tag": "s", "listen_port": {port}}}]}}"#),
    )
    .unwrap();
    let out = sb(&dir, &["run", "--disable-color"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("FATAL[0000] start service: start inbound/socks[s]: "),
        "{err}"
    );
}

#[test]
fn version_name() {
    let out = sb(Path::new("."), &["version", "-n"]);
    assert_eq!(text(&out.stdout).trim(), env!("CARGO_PKG_VERSION"));
    let full = text(&sb(Path::new("."), &["version"]).stdout);
    assert!(
        full.starts_with(&format!("sb version {}\n", env!("CARGO_PKG_VERSION"))),
        "{full}"
    );
}

#[test]
fn generate_uuid_and_rand() {
    let u = text(&sb(Path::new("."), &["generate", "uuid"]).stdout);
    assert!(uuid_like(u.trim()), "{u}");
    let hex = text(&sb(Path::new("."), &["generate", "rand", "16", "--hex"]).stdout);
    assert_eq!(hex.trim().len(), 32);
    assert!(hex.trim().chars().all(|c| c.is_ascii_hexdigit()));
    let b64 = text(&sb(Path::new("."), &["generate", "rand", "3", "--base64"]).stdout);
    assert_eq!(b64.trim().len(), 4);
    let raw = sb(Path::new("."), &["generate", "rand", "7"]).stdout;
    assert_eq!(raw.len(), 7);
}

fn uuid_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn generate_wg_keypair_is_a_real_pair() {
    let out = text(&sb(Path::new("."), &["generate", "wg-keypair"]).stdout);
    let mut lines = out.lines();
    let private = lines.next().unwrap().strip_prefix("PrivateKey: ").unwrap();
    let public = lines.next().unwrap().strip_prefix("PublicKey: ").unwrap();
    let sk: [u8; 32] = sb_config::base64::decode_go(private)
        .unwrap()
        .try_into()
        .unwrap();
    let derived = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(sk));
    assert_eq!(sb_config::base64::encode(derived.as_bytes()), public);
}

#[test]
fn usage_errors_exit_1_like_go() {
    let out = sb(Path::new("."), &["bogus"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    let dir = scratch("pipe");
    std::fs::write(dir.join("config.json"), r#"{"log": {"level": "info"}}"#).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sb"))
        .current_dir(&dir)
        .arg("format")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stderr), "");
    assert!(
        out.status.code() == Some(0) || out.status.code().is_none(),
        "{:?}",
        out.status
    );
}

#[test]
fn run_says_which_parts_it_ignores() {
    let dir = scratch("run-ignored");
    std::fs::write(
        dir.join("config.json"),
        r#"{"log": {"level": "warn"},
            "experimental": {"clash_api": {"external_controller": "127.0.0.1:9090"}},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}]}"#,
    )
    .unwrap();
    let mut sb = Running::start(&dir, &["run", "--disable-color"]);
    let line = sb.wait_for("clash_api:");
    assert_eq!(
        line,
        "WARN[0000] experimental.clash_api: the Clash API is not implemented by sb yet; nothing listens on external_controller"
    );
    sb.signal("-TERM");
    assert_eq!(sb.child.wait().unwrap().code(), Some(0));
}
