//! A stand-in for tailscaled's Local API that serves the answers recorded from a real
//! tailscaled 1.96.4 (`tests/fixtures/tailscale/`), for what a real daemon cannot show
//! here without a coordination server: a login that completes, the Running state, peers,
//! login URLs and dials to peers. It is used *in addition to* the real daemon's tests.
//!
//! It speaks HTTP/1.1 on a unix socket as the daemon does: `Host` must be
//! `local-tailscaled.sock` (else 403), the IPN bus is a chunked stream of `ipn.Notify`
//! lines (built from the recorded lines, only `State`/`BrowseToURL` changed), prefs edits
//! apply MaskedPrefs, and `POST dial` answers `101` with `Upgrade: ts-dial` and then
//! carries the bytes to the loopback server the test mapped the peer address to. Every
//! request is recorded for the test to read.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, oneshot};

/// The login URL the replayed daemon announces.
pub const LOGIN_URL: &str = "https://login.tailscale.invalid/a/5b1e7ed0c0ffee";

/// How the replayed daemon behaves.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// A login with an auth key completes at once; without one the daemon announces
    /// [`LOGIN_URL`] and waits for [`Replay::approve`].
    pub accept_auth_key: bool,
    /// Answer every prefs edit with 400 and this error.
    pub refuse_prefs: Option<String>,
    /// Answer everything with 404 (something that is not tailscaled on the socket).
    pub not_tailscaled: bool,
    /// Peer addresses (`100.100.0.2:80`) and where the dial really goes (a loopback server).
    pub dial_targets: HashMap<String, SocketAddr>,
}

/// One request the replay answered.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path after `/localapi/v0/`, query included.
    pub path: String,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: String,
}

struct State {
    scenario: Scenario,
    status: Value,
    prefs: Value,
    auth_key: Option<String>,
    requests: Vec<Request>,
}

/// A running replay server. Dropping it stops it and removes its socket.
pub struct Replay {
    /// Its socket.
    pub socket: PathBuf,
    state: Arc<Mutex<State>>,
    bus: broadcast::Sender<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A recorded fixture.
pub fn fixture(name: &str) -> String {
    let path = crate::workspace()
        .join("tests/fixtures/tailscale")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A bus line: the recorded initial notification with `set` applied and `SessionID` gone
/// (only the first line of a watch has one).
fn notify(set: &[(&str, Value)]) -> String {
    let mut n = fixture_json("notify-initial.json");
    if let Some(o) = n.as_object_mut() {
        o.remove("SessionID");
        o.insert("State".into(), Value::Null);
        for (k, v) in set {
            o.insert(k.to_string(), v.clone());
        }
    }
    n.to_string()
}

fn state_number(name: &str) -> i64 {
    match name {
        "NeedsLogin" => 2,
        "Stopped" => 4,
        "Starting" => 5,
        "Running" => 6,
        _ => 0,
    }
}

impl Replay {
    /// Starts serving on `socket` as a fresh, never logged-in daemon.
    pub fn start(socket: &Path, scenario: Scenario) -> Replay {
        let _ = std::fs::remove_file(socket);
        let state = Arc::new(Mutex::new(State {
            scenario,
            status: fixture_json("status-needs-login.json"),
            prefs: fixture_json("prefs-fresh.json"),
            auth_key: None,
            requests: Vec::new(),
        }));
        let (bus, _) = broadcast::channel(64);
        let (stop, stopped) = oneshot::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (st, tx, path) = (state.clone(), bus.clone(), socket.to_path_buf());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            rt.block_on(async move {
                let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
                let _ = ready_tx.send(());
                let serve = async {
                    loop {
                        let Ok((conn, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(serve(conn, st.clone(), tx.clone()));
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("replay server did not start: {e}"));
        Replay {
            socket: socket.to_path_buf(),
            state,
            bus,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// The prefs as the replayed daemon has them.
    pub fn prefs(&self) -> Value {
        self.state
            .lock()
            .map(|s| s.prefs.clone())
            .unwrap_or(Value::Null)
    }

    /// Completes a pending login (the user visited the URL): the daemon goes Running.
    pub fn approve(&self) {
        go_running(&self.state, &self.bus);
    }

    /// Logs the node out, as `tailscale logout` does.
    pub fn logout(&self) {
        logout(&self.state, &self.bus);
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn go_running(state: &Mutex<State>, bus: &broadcast::Sender<String>) {
    if let Ok(mut s) = state.lock() {
        s.status = fixture_json("status-running.json");
        s.prefs["LoggedOut"] = json!(false);
    }
    let _ = bus.send(notify(&[("State", json!(state_number("Starting")))]));
    let _ = bus.send(notify(&[
        ("State", json!(state_number("Running"))),
        ("LoginFinished", json!({})),
    ]));
}

fn logout(state: &Mutex<State>, bus: &broadcast::Sender<String>) {
    if let Ok(mut s) = state.lock() {
        s.status = fixture_json("status-needs-login.json");
        s.prefs["LoggedOut"] = json!(true);
        s.prefs["WantRunning"] = json!(false);
    }
    let _ = bus.send(notify(&[("State", json!(state_number("NeedsLogin")))]));
}

/// Reads one request head and body.
async fn read_request(conn: &mut BufReader<UnixStream>) -> Option<Request> {
    let mut line = String::new();
    conn.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if conn.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(1 << 20)];
    conn.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path: target
            .strip_prefix("/localapi/v0/")
            .unwrap_or(&target)
            .to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn respond(conn: &mut BufReader<UnixStream>, code: u16, reason: &str, body: &str) {
    let kind = if body.starts_with('{') {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nTailscale-Version: 1.96.4-replay\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = conn.get_mut().write_all(head.as_bytes()).await;
    let _ = conn.get_mut().write_all(body.as_bytes()).await;
}

async fn serve(conn: UnixStream, state: Arc<Mutex<State>>, bus: broadcast::Sender<String>) {
    let mut conn = BufReader::new(conn);
    let Some(req) = read_request(&mut conn).await else {
        return;
    };
    let (not_tailscaled, refuse) = {
        let Ok(mut s) = state.lock() else { return };
        s.requests.push(req.clone());
        (s.scenario.not_tailscaled, s.scenario.refuse_prefs.clone())
    };
    if not_tailscaled {
        return respond(&mut conn, 404, "Not Found", "404 page not found\n").await;
    }
    if req.headers.get("host").map(String::as_str) != Some("local-tailscaled.sock") {
        return respond(&mut conn, 403, "Forbidden", "invalid localapi request\n").await;
    }
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET", "status") => {
            let body = state
                .lock()
                .map(|s| s.status.to_string())
                .unwrap_or_default();
            respond(&mut conn, 200, "OK", &body).await
        }
        ("GET", "prefs") => {
            let body = state
                .lock()
                .map(|s| s.prefs.to_string())
                .unwrap_or_default();
            respond(&mut conn, 200, "OK", &body).await
        }
        ("PATCH", "prefs") => {
            if let Some(error) = refuse {
                let body = json!({ "Error": error }).to_string();
                return respond(&mut conn, 400, "Bad Request", &body).await;
            }
            let edit: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
            let body = state
                .lock()
                .map(|mut s| {
                    for (k, v) in edit.as_object().into_iter().flatten() {
                        if !k.ends_with("Set") && edit[format!("{k}Set")] == json!(true) {
                            s.prefs[k] = v.clone();
                        }
                    }
                    s.prefs.to_string()
                })
                .unwrap_or_default();
            respond(&mut conn, 200, "OK", &body).await
        }
        ("POST", "start") => {
            let opts: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
            if let Ok(mut s) = state.lock() {
                if let Some(prefs) = opts.get("UpdatePrefs").filter(|p| p.is_object()) {
                    s.prefs = prefs.clone();
                }
                s.auth_key = opts["AuthKey"].as_str().map(str::to_string);
            }
            respond(&mut conn, 204, "No Content", "").await
        }
        ("POST", "login-interactive") => {
            let with_key = state
                .lock()
                .map(|s| s.auth_key.is_some() && s.scenario.accept_auth_key)
                .unwrap_or(false);
            respond(&mut conn, 204, "No Content", "").await;
            if with_key {
                go_running(&state, &bus);
            } else {
                if let Ok(mut s) = state.lock() {
                    s.status["AuthURL"] = json!(LOGIN_URL);
                }
                let _ = bus.send(notify(&[("BrowseToURL", json!(LOGIN_URL))]));
            }
        }
        ("POST", "logout") => {
            respond(&mut conn, 204, "No Content", "").await;
            logout(&state, &bus);
        }
        ("GET", "watch-ipn-bus") => watch(conn, &state, bus.subscribe()).await,
        ("POST", "dial") => dial(conn, &state, &req).await,
        _ => respond(&mut conn, 404, "Not Found", "404 page not found\n").await,
    }
}

/// The IPN bus: the initial state (and a pending login URL), then every notification.
async fn watch(
    mut conn: BufReader<UnixStream>,
    state: &Mutex<State>,
    mut rx: broadcast::Receiver<String>,
) {
    let (initial, url) = match state.lock() {
        Ok(s) => (
            state_number(s.status["BackendState"].as_str().unwrap_or("")),
            s.status["AuthURL"].as_str().unwrap_or("").to_string(),
        ),
        Err(_) => return,
    };
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    let w = conn.get_mut();
    if w.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut first = fixture_json("notify-initial.json");
    first["State"] = json!(initial);
    if !url.is_empty() {
        first["BrowseToURL"] = json!(url);
    }
    let mut line = first.to_string();
    loop {
        line.push('\n');
        let chunk = format!("{:x}\r\n{line}\r\n", line.len());
        if w.write_all(chunk.as_bytes()).await.is_err() {
            return;
        }
        line = match rx.recv().await {
            Ok(l) => l,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
    }
}

/// `POST dial`: 101 and the bytes carried to the mapped loopback server, or the daemon's
/// 502 text.
async fn dial(mut conn: BufReader<UnixStream>, state: &Mutex<State>, req: &Request) {
    let host = req.headers.get("dial-host").cloned().unwrap_or_default();
    let port = req.headers.get("dial-port").cloned().unwrap_or_default();
    let upgrade = req.headers.get("upgrade").map(String::as_str) == Some("ts-dial");
    if !upgrade
        || req
            .headers
            .get("connection")
            .map(|c| c.to_ascii_lowercase())
            != Some("upgrade".into())
    {
        return respond(&mut conn, 400, "Bad Request", "bad ts-dial upgrade\n").await;
    }
    let (running, target) = match state.lock() {
        Ok(s) => (
            s.status["BackendState"] == json!("Running"),
            s.scenario
                .dial_targets
                .get(&format!("{host}:{port}"))
                .copied(),
        ),
        Err(_) => return,
    };
    let target = match (running, target) {
        (true, Some(t)) => tokio::net::TcpStream::connect(t).await.ok(),
        _ => None,
    };
    let Some(mut upstream) = target else {
        let text = format!("dial failure: dial tcp {host}:{port}: connect: no route to host\n");
        return respond(&mut conn, 502, "Bad Gateway", &text).await;
    };
    let head =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ts-dial\r\n\r\n";
    if conn.get_mut().write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
}
