//! Plain-HTTP forwarding through the mixed inbound's HTTP proxy with keep-alive, as Go's
//! HTTP proxy does it: several requests on one client connection (curl says "Re-using
//! existing connection"), each routed as its own flow to its own origin connection, which
//! sb closes as soon as the response is through; request bodies by length and chunked
//! (including a 3 MiB body behind `Expect: 100-continue`); chunked, length, HEAD, 204 and
//! close-delimited responses; HTTP/1.0 clients; pipelined raw requests followed by a
//! CONNECT; a 407 a client may retry on the same connection. The origin is a small
//! HTTP/1.1 server in this file; every port is picked by the OS and every wait is bounded.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::Instance;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP/1.1 origin. It keeps each connection open after answering, as keep-alive
/// servers do, and even after the proxy's half-close: only the proxy can end the flow.
struct Origin {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

/// FNV-1a, to report a request body without echoing megabytes.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn origin(name: &'static str) -> Origin {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let held = Arc::new(Mutex::new(Vec::new()));
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let held = held.clone();
            std::thread::spawn(move || {
                if let Some(open) = serve(name, conn) {
                    held.lock().unwrap().push(open);
                }
            });
        }
    });
    Origin { addr, accepted }
}

/// Answers requests until the peer stops sending (the socket is returned, still open) or
/// the origin closes first (`None`).
fn serve(name: &str, conn: TcpStream) -> Option<TcpStream> {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return Some(w);
        }
        let mut parts = line.split(' ');
        let (method, path) = (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        );
        let (mut length, mut chunked, mut expect) = (0usize, false, false);
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
            expect |= lower.starts_with("expect:") && lower.contains("100-continue");
        }
        if expect {
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        }
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).unwrap();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0u8; n + 2];
                r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let reply: Vec<u8> = if method == "HEAD" {
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec()
        } else if path == "/chunked" {
            // Two chunks, an extension and a trailer.
            let first = format!("{name}:c");
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n7;ext=1\r\nhunked;\r\n0\r\nX-T: 1\r\n\r\n",
                first.len()
            )
            .into_bytes()
        } else if path == "/204" {
            b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n".to_vec()
        } else if path == "/close" {
            w.write_all(format!("HTTP/1.1 200 OK\r\n\r\n{name}:until-close;").as_bytes())
                .unwrap();
            return None;
        } else {
            let text = format!(
                "{name}:{method} {path} len={} fnv={:x};",
                body.len(),
                fnv(&body)
            );
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )
            .into_bytes()
        };
        w.write_all(&reply).unwrap();
    }
}

fn mixed(extra: &str, rules: &str) -> Instance {
    Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0 {extra}}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"rules": [{rules}]}}}}"#
    ))
}

/// Runs `curl -sv` (bounded) and returns (exit code, body, how many times it reused the
/// proxy connection).
fn curl_v(args: &[&str]) -> (i32, String, usize) {
    let out = Command::new("curl")
        .args(["-sv", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    let err = String::from_utf8_lossy(&out.stderr);
    let reused = err.matches("Re-using existing connection").count();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        reused,
    )
}

/// Waits (bounded) until sb carries no flow: each request's flow ends once its response is
/// through, although the origin keeps its connection open.
fn flows_end(sb: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sb.tracker.is_empty() {
        assert!(
            Instant::now() < deadline,
            "sb kept {} request flows open after their responses",
            sb.tracker.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_client_connection_carries_several_requests() {
    let o = origin("o");
    let sb = mixed("", "");
    let proxy = format!("http://{}", sb.addr(0));
    let base = format!("http://127.0.0.1:{}", o.addr.port());
    let urls: Vec<String> = ["/a", "/chunked", "/204", "/b?q=1"]
        .iter()
        .map(|p| format!("{base}{p}"))
        .collect();
    let mut args = vec!["-x", proxy.as_str()];
    args.extend(urls.iter().map(String::as_str));
    let (code, body, reused) = curl_v(&args);
    assert_eq!(code, 0);
    assert_eq!(
        body,
        "o:GET /a len=0 fnv=cbf29ce484222325;o:chunked;o:GET /b?q=1 len=0 fnv=cbf29ce484222325;"
    );
    assert_eq!(reused, 3, "one proxy connection for four requests");
    // Each request was its own flow, on its own origin connection, closed once answered.
    assert_eq!(o.accepted.load(Ordering::SeqCst), 4);
    flows_end(&sb);

    // HEAD: no body although the origin names a length; the connection stays usable.
    let mut args = vec!["-I", "-x", proxy.as_str()];
    args.extend(urls[..2].iter().map(String::as_str));
    let (code, heads, reused) = curl_v(&args);
    assert_eq!((code, reused), (0, 1), "{heads}");
    assert_eq!(heads.matches("Content-Length: 1234").count(), 2, "{heads}");
    assert_eq!(heads.matches("Keep-Alive: timeout=4").count(), 2, "{heads}");
}

#[test]
fn request_bodies_by_length_and_chunked_reach_the_origin() {
    let o = origin("o");
    let sb = mixed("", "");
    let proxy = format!("http://{}", sb.addr(0));
    let url = format!("http://127.0.0.1:{}/post", o.addr.port());
    // A small form body twice, then a chunked one twice.
    let (code, body, reused) = curl_v(&["-x", &proxy, "-d", "x=1", &url, &url]);
    let one = format!("o:POST /post len=3 fnv={:x};", fnv(b"x=1"));
    assert_eq!((code, body, reused), (0, one.repeat(2), 1));
    let (code, body, reused) = curl_v(&[
        "-x",
        &proxy,
        "-H",
        "Transfer-Encoding: chunked",
        "-d",
        "chunked-body",
        &url,
        &url,
    ]);
    let one = format!("o:POST /post len=12 fnv={:x};", fnv(b"chunked-body"));
    assert_eq!((code, body, reused), (0, one.repeat(2), 1));

    // 3 MiB: curl asks `Expect: 100-continue`, the origin's 100 comes through, the body
    // streams through a bounded pipe.
    let dir = std::env::temp_dir().join(format!("sb-ka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.bin");
    let data: Vec<u8> = (0..3 << 20)
        .map(|i: usize| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let at = format!("@{}", file.display());
    let (code, body, reused) = curl_v(&["-x", &proxy, "--data-binary", &at, &url, &url]);
    let one = format!("o:POST /post len={} fnv={:x};", data.len(), fnv(&data));
    assert_eq!((code, body, reused), (0, one.repeat(2), 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn close_delimited_responses_and_http_1_0_clients_end_the_connection() {
    let o = origin("o");
    let sb = mixed("", "");
    let proxy = format!("http://{}", sb.addr(0));
    let base = format!("http://127.0.0.1:{}", o.addr.port());
    // The origin ends its body by closing: the client connection has to end too.
    let (code, body, reused) =
        curl_v(&["-x", &proxy, &format!("{base}/close"), &format!("{base}/a")]);
    assert_eq!(code, 0);
    assert_eq!(body, "o:until-close;o:GET /a len=0 fnv=cbf29ce484222325;");
    assert_eq!(reused, 0);
    // HTTP/1.0 (no keep-alive by Go's rule): one request per connection.
    let (code, body, reused) = curl_v(&[
        "-0",
        "-x",
        &proxy,
        &format!("{base}/a"),
        &format!("{base}/b"),
    ]);
    assert_eq!(code, 0);
    assert_eq!(body.matches("o:GET").count(), 2);
    assert_eq!(reused, 0);
}

#[test]
fn requests_on_one_connection_are_routed_one_by_one() {
    // Requests whose Host names `other.test` are sniffed and sent to the second origin.
    let first = origin("first");
    let second = origin("second");
    let sb = mixed(
        "",
        &format!(
            r#"{{"action": "sniff"}},
               {{"protocol": "http", "domain": "other.test", "action": "route-options", "override_port": {}}}"#,
            second.addr.port()
        ),
    );
    let proxy = format!("http://{}", sb.addr(0));
    let url = format!("http://127.0.0.1:{}/x", first.addr.port());
    let (code, body, reused) = curl_v(&["-x", &proxy, &url, "-H", "Host: other.test", &url]);
    assert_eq!(code, 0);
    // curl sends the extra header with both requests, so both go to `second`; a third
    // invocation without it goes to `first` (sniffing runs per request, not per connection).
    assert_eq!(body, "second:GET /x len=0 fnv=cbf29ce484222325;".repeat(2));
    assert_eq!(reused, 1);
    let (code, body, _) = curl_v(&["-x", &proxy, &url]);
    assert_eq!(
        (code, body.as_str()),
        (0, "first:GET /x len=0 fnv=cbf29ce484222325;")
    );
}

/// Reads one response with a Content-Length body from `s`.
fn read_response(s: &mut TcpStream, pending: &mut Vec<u8>) -> (String, String) {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).unwrap();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse().unwrap());
            if pending.len() >= end + 4 + len {
                let body = String::from_utf8(pending[end + 4..end + 4 + len].to_vec()).unwrap();
                pending.drain(..end + 4 + len);
                return (head, body);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(pending));
        pending.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn pipelined_requests_then_a_connect_on_one_connection() {
    let o = origin("o");
    let sb = mixed("", "");
    let mut s = TcpStream::connect(sb.addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let a = o.addr;
    // Three requests in one write: a chunked POST, a GET, and a CONNECT.
    let wire = format!(
        "POST http://{a}/p HTTP/1.1\r\nProxy-Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
         GET http://{a}/g HTTP/1.1\r\nProxy-Connection: keep-alive\r\n\r\n\
         CONNECT {a} HTTP/1.1\r\n\r\nGET /in-tunnel HTTP/1.1\r\nHost: {a}\r\n\r\n"
    );
    s.write_all(wire.as_bytes()).unwrap();
    let mut pending = Vec::new();
    let (head, body) = read_response(&mut s, &mut pending);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Proxy-Connection: keep-alive"), "{head}");
    assert_eq!(body, format!("o:POST /p len=3 fnv={:x};", fnv(b"abc")));
    let (_, body) = read_response(&mut s, &mut pending);
    assert_eq!(body, "o:GET /g len=0 fnv=cbf29ce484222325;");
    let (head, _) = read_response(&mut s, &mut pending);
    assert_eq!(head, "HTTP/1.1 200 Connection established");
    // Inside the tunnel the origin answers unchanged (no proxy headers).
    let (head, body) = read_response(&mut s, &mut pending);
    let want = "o:GET /in-tunnel len=0 fnv=cbf29ce484222325;";
    assert_eq!(
        head,
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}", want.len())
    );
    assert_eq!(body, want);
}

#[test]
fn a_keep_alive_client_may_retry_after_407_on_the_same_connection() {
    let o = origin("o");
    let sb = mixed(r#", "users": [{"username": "u", "password": "p"}]"#, "");
    let mut s = TcpStream::connect(sb.addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let get = format!(
        "GET http://{}/r HTTP/1.1\r\nProxy-Connection: keep-alive\r\n",
        o.addr
    );
    s.write_all(format!("{get}\r\n").as_bytes()).unwrap();
    let mut pending = Vec::new();
    let (head, _) = read_response(&mut s, &mut pending);
    assert!(head.starts_with("HTTP/1.1 407"), "{head}");
    assert!(!head.contains("Connection: close"), "{head}");
    // dTpw is base64("u:p").
    s.write_all(format!("{get}Proxy-Authorization: Basic dTpw\r\n\r\n").as_bytes())
        .unwrap();
    let (head, body) = read_response(&mut s, &mut pending);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "o:GET /r len=0 fnv=cbf29ce484222325;");
    // Without keep-alive a failed login ends the connection.
    let mut s = TcpStream::connect(sb.addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET http://{}/r HTTP/1.1\r\n\r\n", o.addr).as_bytes())
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 407") && text.contains("Connection: close"),
        "{text}"
    );
}
