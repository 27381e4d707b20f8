//! A private Tor network for the `tor` outbound's tests, made of Debian's `tor`: three
//! directory authorities (also relays), three middle relays, one exit and one reference
//! C-tor client, all on 127.0.0.1 of a network namespace the test creates, which reaches
//! nothing but itself (so the exit's `accept *:*` policy reaches nothing outside). An
//! HTTP server in the namespace is what the clients fetch; one more tor publishes it as an
//! onion service.
//!
//! Start it once per test binary ([`TorNet::start`]) and run the scenarios against it: a
//! cold network takes about a minute before its reference client gets through the exit.
//! [`TorNet::start`] returns only then (a client that starts earlier can cache a consensus
//! without a usable exit and stay stuck). Dropping it kills exactly the processes it
//! started and deletes the namespace.

use crate::netns::Netns;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on the reference client's bootstrap.
const BOOTSTRAP_LIMIT: Duration = Duration::from_secs(300);
/// Bound on the first fetch through the exit once the reference client has bootstrapped.
const EXIT_LIMIT: Duration = Duration::from_secs(180);

/// The nodes: nickname and role.
const NODES: &[(&str, Role)] = &[
    ("a0", Role::Authority),
    ("a1", Role::Authority),
    ("a2", Role::Authority),
    ("r0", Role::Relay),
    ("r1", Role::Relay),
    ("r2", Role::Relay),
    ("e0", Role::Exit),
    ("c0", Role::Client),
    ("h0", Role::Onion),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Authority,
    Relay,
    Exit,
    Client,
    /// A client that hosts an onion service for the HTTP server.
    Onion,
}

/// One node's identity and ports.
struct Node {
    nick: &'static str,
    role: Role,
    dir: PathBuf,
    or_port: u16,
    dir_port: u16,
    /// RSA identity fingerprint (hex).
    fingerprint: String,
    /// ed25519 identity (unpadded base64).
    ed25519: String,
    /// An authority's v3 identity (hex).
    v3ident: String,
}

/// Why the Tor tests cannot run here (`None`: they can).
pub fn unavailable() -> Option<String> {
    if let Some(why) = crate::netns::unavailable() {
        return Some(why);
    }
    crate::missing_tool(
        &["tor", "tor-gencert", "curl"],
        "scripts/install-test-deps.sh installs it",
    )
}

/// A running test network.
pub struct TorNet {
    /// The namespace every node (and the HTTP server) is in.
    pub ns: Netns,
    dir: PathBuf,
    children: Vec<(String, Child)>,
    /// The reference client's SOCKS port.
    pub socks: u16,
    /// The HTTP server's port ([`crate::serve_http`] paths, plus `/bytes/<n>`).
    pub http: u16,
    /// arti's config for this network (`[tor_network]`, `[path_rules]`, `[address_filter]`).
    pub arti_toml: PathBuf,
    /// The authorities as `DirAuthority` lines (tor's `--DirAuthority` argument).
    pub dir_authorities: Vec<String>,
    /// How long the network took to carry the reference client's first fetch.
    pub ready_after: Duration,
    /// Every relay's OR port (what a client's relay connections go to).
    pub or_ports: Vec<u16>,
}

impl TorNet {
    /// Generates the network, starts every node and returns once the reference client has
    /// fetched from the HTTP server through the exit (bounded; panics with the nodes' logs).
    pub fn start() -> TorNet {
        let ns = Netns::new("tor");
        // A default route into a veth pair whose both ends stay in the namespace (nothing
        // answers there): Go sing-box, the detour's SOCKS server in the tests, takes a
        // namespace without a default interface for offline and refuses to dial.
        let (va, vb) = (crate::netns::unique("tva"), crate::netns::unique("tvb"));
        ns.ip(&format!("link add {va} type veth peer name {vb}"));
        ns.ip(&format!("addr add 10.98.0.1/24 dev {va}"));
        ns.ip(&format!("link set {va} up"));
        ns.ip(&format!("link set {vb} up"));
        ns.ip(&format!("route add default via 10.98.0.2 dev {va}"));
        let dir = std::env::temp_dir().join(format!("sb-tornet-{}", crate::netns::unique("n")));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut ports = ns.free_tcp_ports(NODES.len() * 2 + 1).into_iter();
        let mut next = || ports.next().unwrap_or_else(|| panic!("out of ports"));
        let http = serve_in(&ns);
        let mut nodes = Vec::new();
        for &(nick, role) in NODES {
            let node_dir = dir.join(nick);
            std::fs::create_dir_all(node_dir.join("keys"))
                .unwrap_or_else(|e| panic!("{}: {e}", node_dir.display()));
            set_mode(&node_dir, 0o700);
            let mut node = Node {
                nick,
                role,
                dir: node_dir,
                or_port: next(),
                dir_port: next(),
                fingerprint: String::new(),
                ed25519: String::new(),
                v3ident: String::new(),
            };
            make_keys(&mut node);
            nodes.push(node);
        }
        let socks = next();
        let dir_authorities: Vec<String> = nodes
            .iter()
            .filter(|n| n.role == Role::Authority)
            .map(|n| {
                format!(
                    "{} orport={} no-v2 v3ident={} 127.0.0.1:{} {}",
                    n.nick, n.or_port, n.v3ident, n.dir_port, n.fingerprint
                )
            })
            .collect();
        std::fs::write(dir.join("resolv.conf"), "nameserver 127.0.0.1\n")
            .unwrap_or_else(|e| panic!("{e}"));
        // Every relay but the exit may be a guard: with one exit, a client whose guard is
        // the exit can build no exit circuit (arti kept e0 as its guard once and failed
        // every stream for 30 s: "rejected 3/4 as not exiting to desired ports; 1/1 as in
        // same family as already selected").
        let guards: Vec<String> = nodes
            .iter()
            .filter(|n| matches!(n.role, Role::Authority | Role::Relay))
            .map(|n| format!("${}", n.fingerprint))
            .collect();
        let guards = guards.join(",");
        for node in &nodes {
            let torrc = torrc(node, &dir, socks, http, &dir_authorities, &guards);
            std::fs::write(node.dir.join("torrc"), torrc).unwrap_or_else(|e| panic!("{e}"));
        }
        let arti_toml = dir.join("arti.toml");
        std::fs::write(&arti_toml, arti_config(&nodes)).unwrap_or_else(|e| panic!("{e}"));
        let mut net = TorNet {
            ns,
            dir,
            children: Vec::new(),
            socks,
            http,
            arti_toml,
            dir_authorities,
            ready_after: Duration::ZERO,
            or_ports: nodes
                .iter()
                .filter(|n| n.role != Role::Client)
                .map(|n| n.or_port)
                .collect(),
        };
        let started = Instant::now();
        for node in &nodes {
            let log =
                std::fs::File::create(node.dir.join("stdout")).unwrap_or_else(|e| panic!("{e}"));
            let child = net
                .ns
                .command("tor")
                .args(["-f", &node.dir.join("torrc").to_string_lossy(), "--quiet"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start tor ({}): {e}", node.nick));
            net.children.push((node.nick.to_string(), child));
        }
        net.wait_ready(started);
        net.ready_after = started.elapsed();
        net
    }

    /// Waits until the reference client bootstrapped and fetched through the exit.
    fn wait_ready(&mut self, started: Instant) {
        let notice = self.dir.join("c0/notice.log");
        loop {
            let text = std::fs::read_to_string(&notice).unwrap_or_default();
            if text.contains("Bootstrapped 100%") {
                break;
            }
            self.assert_alive();
            assert!(
                started.elapsed() < BOOTSTRAP_LIMIT,
                "the reference client did not bootstrap in {BOOTSTRAP_LIMIT:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        let bootstrapped = Instant::now();
        loop {
            let (code, body) = self.fetch_via_reference("/ready");
            if code == 0 && body.contains("hello /ready") {
                return;
            }
            self.assert_alive();
            assert!(
                bootstrapped.elapsed() < EXIT_LIMIT,
                "no fetch through the exit within {EXIT_LIMIT:?} (curl {code}):\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Fetches `path` from the HTTP server through the reference C-tor client.
    pub fn fetch_via_reference(&self, path: &str) -> (i32, String) {
        self.fetch_via_reference_at("127.0.0.1", self.http, path)
    }

    /// Fetches `path` from `host:port` through the reference C-tor client.
    pub fn fetch_via_reference_at(&self, host: &str, port: u16, path: &str) -> (i32, String) {
        let out = self.ns.exec(&[
            "curl",
            "-s",
            "--max-time",
            "20",
            "--socks5-hostname",
            &format!("127.0.0.1:{}", self.socks),
            &format!("http://{host}:{port}{path}"),
        ]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// A node's `info` log (the exit's shows the streams it opened).
    pub fn info_log(&self, nick: &str) -> String {
        std::fs::read_to_string(self.dir.join(nick).join("info.log")).unwrap_or_default()
    }

    /// A fresh, empty directory under the network's (for a client's data directory).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let d = self.dir.join(crate::netns::unique(name));
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        set_mode(&d, 0o700);
        d
    }

    /// The onion service's address (`<name>.onion`), once the service is reachable through
    /// the reference client (bounded; panics with the logs).
    pub fn onion(&self) -> String {
        let started = Instant::now();
        let hostname = self.dir.join("h0/hs/hostname");
        loop {
            let name = std::fs::read_to_string(&hostname).unwrap_or_default();
            let name = name.trim();
            if !name.is_empty() {
                let (code, body) = self.fetch_via_reference_at(name, 80, "/onion");
                if code == 0 && body == "hello /onion" {
                    return name.to_string();
                }
            }
            assert!(
                started.elapsed() < EXIT_LIMIT,
                "the onion service was not reachable within {EXIT_LIMIT:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A TCP port free on the namespace's loopback now.
    pub fn free_port(&self) -> u16 {
        self.ns.free_tcp_ports(1)[0]
    }

    /// The process ids of the network's own tor nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, c)| c.id()).collect()
    }

    /// tor's arguments that make a client of this network (Go sing-box's `extra_args`).
    pub fn client_args(&self) -> Vec<String> {
        let mut args = vec!["--TestingTorNetwork".to_string(), "1".to_string()];
        for (i, a) in self.dir_authorities.iter().enumerate() {
            args.push(
                if i == 0 {
                    "--DirAuthority"
                } else {
                    "+DirAuthority"
                }
                .to_string(),
            );
            args.push(a.clone());
        }
        for a in ["--PathsNeededToBuildCircuits", "0.67", "--Sandbox", "0"] {
            args.push(a.to_string());
        }
        args
    }

    /// Stops the authorities, so no client can bootstrap any more.
    pub fn stop_authorities(&mut self) {
        for (nick, child) in &mut self.children {
            if nick.starts_with('a') {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn assert_alive(&mut self) {
        for (nick, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join(nick.as_str()).join("stdout"))
                    .unwrap_or_default();
                panic!("tor node {nick} exited ({status}): {log}");
            }
        }
    }

    /// The tail of every node's notice log.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (nick, _) in NODES {
            let text =
                std::fs::read_to_string(self.dir.join(nick).join("notice.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(8)..];
            out.push_str(&format!("--- {nick}\n{}\n", tail.join("\n")));
        }
        out
    }
}

impl Drop for TorNet {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Kills every tor process whose data directory is `dir` (a scratch directory of the
/// caller's, so only processes it started: the tor a proxy under test spawned); how many
/// there were.
pub fn kill_tor_of(dir: &Path) -> usize {
    let needle = format!("--DataDirectory {}", dir.display());
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if args.contains(&needle) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            killed += 1;
        }
    }
    killed
}

/// Starts the HTTP server in `ns`; its port.
fn serve_in(ns: &Netns) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    ns.spawn(move || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let _ = tx.send(l.local_addr().map(|a| a.port()));
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || crate::serve_http(conn, |path| format!("hello {path}")));
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("HTTP server did not start: {e}"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn run(cmd: &mut Command, input: Option<&str>) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An authority's certificate and every relay's identity keys.
fn make_keys(node: &mut Node) {
    let keys = node.dir.join("keys");
    if node.role == Role::Authority {
        run(
            Command::new("tor-gencert")
                .args(["--create-identity-key", "--passphrase-fd", "0", "-i"])
                .arg(keys.join("authority_identity_key"))
                .arg("-s")
                .arg(keys.join("authority_signing_key"))
                .arg("-c")
                .arg(keys.join("authority_certificate"))
                .args(["-m", "12", "-a", &format!("127.0.0.1:{}", node.dir_port)]),
            Some("passphrase\n"),
        );
        let cert = std::fs::read_to_string(keys.join("authority_certificate"))
            .unwrap_or_else(|e| panic!("{e}"));
        node.v3ident = cert
            .lines()
            .find_map(|l| l.strip_prefix("fingerprint "))
            .unwrap_or_else(|| panic!("no fingerprint in the authority certificate"))
            .trim()
            .to_string();
    }
    if matches!(node.role, Role::Client | Role::Onion) {
        return;
    }
    // --list-fingerprint makes the relay's identity keys (RSA and ed25519) and prints them.
    let out = run(
        Command::new("tor")
            .args(["--ignore-missing-torrc", "-f"])
            .arg(node.dir.join("nonexistent"))
            .args(["--orport", "1", "--datadirectory"])
            .arg(&node.dir)
            .arg("--list-fingerprint"),
        None,
    );
    let last = out.trim().lines().last().unwrap_or_default();
    node.fingerprint = last.split_whitespace().skip(1).collect();
    assert!(
        node.fingerprint.len() == 40 && node.fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
        "unexpected fingerprint output: {out}"
    );
    let ed = std::fs::read_to_string(node.dir.join("fingerprint-ed25519"))
        .unwrap_or_else(|e| panic!("{e}"));
    node.ed25519 = ed.split_whitespace().nth(1).unwrap_or_default().to_string();
}

/// A node's torrc (the options of a chutney-style test network). Each node exits with the
/// test process (`__OwningControllerProcess`), also when it is killed. Every relay assumes its
/// ORPort reachable: a relay publishes its descriptor only after a reachability self-test,
/// which needs circuits through relays the first consensus may not list yet, and on a
/// loopback network that chicken-and-egg sometimes never resolved.
fn torrc(
    node: &Node,
    net: &Path,
    socks: u16,
    http: u16,
    authorities: &[String],
    guards: &str,
) -> String {
    let dir = node.dir.display();
    let mut t = format!(
        "TestingTorNetwork 1\nPathsNeededToBuildCircuits 0.67\nTestingDirAuthVoteExit *\n\
         TestingDirAuthVoteHSDir *\nTestingDirAuthVoteGuard {guards}\nTestingDirAuthVoteGuardIsStrict 1\n\
         TestingMinExitFlagThreshold 0\n\
         V3AuthNIntervalsValid 2\nDataDirectory {dir}\nNickname {}\nShutdownWaitLength 0\n\
         ConnLimit 60\nLog notice file {dir}/notice.log\nLog info file {dir}/info.log\n\
         ProtocolWarnings 1\nSafeLogging 0\nLogTimeGranularity 1\nSandbox 0\n\
         __OwningControllerProcess {}\n",
        node.nick,
        std::process::id()
    );
    match node.role {
        Role::Client => t.push_str(&format!("SocksPort 127.0.0.1:{socks}\n")),
        Role::Onion => t.push_str(&format!(
            "SocksPort 0\nHiddenServiceDir {dir}/hs\nHiddenServicePort 80 127.0.0.1:{http}\n"
        )),
        _ => {
            t.push_str(&format!(
                "SocksPort 0\nORPort 127.0.0.1:{}\nDirPort 127.0.0.1:{}\nAddress 127.0.0.1\nAssumeReachable 1\n\
                 ContactInfo {}@test.invalid\nServerDNSDetectHijacking 0\nServerDNSTestAddresses\n\
                 ServerDNSResolvConfFile {}/resolv.conf\n",
                node.or_port,
                node.dir_port,
                node.nick,
                net.display()
            ));
            if node.role == Role::Exit {
                t.push_str(
                    "ExitRelay 1\nExitPolicyRejectPrivate 0\nExitPolicy accept 127.0.0.0/8:*\n\
                     ExitPolicy accept private:*\nExitPolicy accept *:*\n",
                );
            } else {
                t.push_str("ExitRelay 0\n");
            }
        }
    }
    if node.role == Role::Authority {
        t.push_str(
            "AuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\n\
             TestingV3AuthInitialVotingInterval 20\nTestingV3AuthInitialVoteDelay 4\n\
             TestingV3AuthInitialDistDelay 4\nV3AuthVotingInterval 20\nV3AuthVoteDelay 4\n\
             V3AuthDistDelay 4\n",
        );
    }
    for a in authorities {
        t.push_str(&format!("DirAuthority {a}\n"));
    }
    t
}

/// arti's view of the network: its authorities and their directory caches, and the path
/// rules a network on one address needs.
fn arti_config(nodes: &[Node]) -> String {
    let auths: Vec<&Node> = nodes.iter().filter(|n| n.role == Role::Authority).collect();
    let mut t = String::from(
        "[path_rules]\n# /33 and /129: no two relays share a family (all are on 127.0.0.1)\n\
         ipv4_subnet_family_prefix = 33\nipv6_subnet_family_prefix = 129\n\n\
         [address_filter]\nallow_local_addrs = true\n\n\
         # C tor on a testing network makes the onion-service time period one shared-random\n\
         # run: 24 votes of 20 s = 8 minutes. arti must use the same to find descriptors.\n\
         [override_net_params]\nhsdir_interval = 8\n\n[tor_network]\nfallback_caches = [\n",
    );
    for a in &auths {
        t.push_str(&format!(
            "  {{ rsa_identity = \"{}\", ed_identity = \"{}\", orports = [\"127.0.0.1:{}\"] }},\n",
            a.fingerprint, a.ed25519, a.or_port
        ));
    }
    t.push_str("]\n\n[tor_network.authorities]\nv3idents = [\n");
    for a in &auths {
        t.push_str(&format!("  \"{}\",\n", a.v3ident));
    }
    t.push_str("]\n");
    t
}
