//! `http_clients` (sing-box 1.14) at run time: remote rule sets downloaded from a server in
//! the test with the client Go would pick (the set's `http_client` by tag or inline, its
//! `download_detour`, `route.default_http_client`, the first client), each client's dial
//! fields, `detour`, headers and TLS options in effect (the server sees the source address
//! and the headers; a private CA is trusted only where the client's `tls` names it), and the
//! fields sb cannot honour refused by name when the instance is built.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_tests::Instance;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

const RULES: &str = r#"{"version": 3, "rules": [{"domain_suffix": ["localhost"]}]}"#;

/// One download the server saw: the client's address and its request head.
type Seen = Arc<Mutex<Vec<(IpAddr, Vec<String>)>>>;

/// Answers one request on `conn` with the rule set, recording the request.
fn answer(mut conn: impl Read + Write, peer: IpAddr, seen: &Seen) {
    let mut r = BufReader::new(&mut conn);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    seen.lock().unwrap().push((peer, head));
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{RULES}",
        RULES.len()
    );
    let _ = conn.flush();
}

/// A plain-HTTP rule-set server.
fn http_server() -> (SocketAddr, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let peer = conn.peer_addr().unwrap().ip();
            answer(conn, peer, &s);
        }
    });
    (addr, seen)
}

/// An HTTPS rule-set server with a certificate for `localhost` from a CA made here; returns
/// the CA's PEM.
fn https_server() -> (SocketAddr, Seen, String) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let pem = key.cert.pem();
    let pkey = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![key.cert.der().clone()], pkey)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let peer = conn.peer_addr().unwrap().ip();
            let tls = rustls::ServerConnection::new(config.clone()).unwrap();
            answer(rustls::StreamOwned::new(tls, conn), peer, &s);
        }
    });
    (addr, seen, pem)
}

/// An sb instance whose one remote rule set downloads from `url`, with `extra` top-level
/// members and rule-set members.
fn config(url: &str, set_extra: &str, extra: &str) -> String {
    format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}, {{"type": "block", "tag": "block"}}],
            "route": {{"rule_set": [{{"type": "remote", "tag": "rs", "format": "source", "url": "{url}" {set_extra}}}],
                       "rules": [{{"rule_set": "rs", "outbound": "direct"}}]
                       {extra}}}}}"#
    )
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Builds and starts `config` and says why it failed, if it did.
fn start_error(config: &str) -> Option<String> {
    let loaded = sb_config::load_text("c.json", config).unwrap_or_else(|e| panic!("{e}"));
    let built = match sb_adapters::registry::build(&loaded.config) {
        Ok(b) => b,
        Err(e) => return Some(e.to_string()),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(sb_core::lifecycle::Instance::start(built.parts()))
        .err()
        .map(|e| e.to_string())
}

#[test]
fn a_named_client_downloads_through_its_detour_with_its_headers() {
    let (server, seen) = http_server();
    // The proxy's direct outbound leaves from 127.0.0.3, so the server can tell that the
    // download came through it.
    let proxy = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct", "inet4_bind_address": "127.0.0.3"}]}"#,
    );
    let text = config(
        &format!("http://{server}/rs.json"),
        r#", "http_client": "via-proxy""#,
        "",
    )
    .replace(
        r#""outbounds": ["#,
        &format!(
            r#""http_clients": [{{"tag": "first", "detour": "block"}},
                                {{"tag": "via-proxy", "version": 1, "detour": "proxy",
                                  "headers": {{"X-Client": ["via-proxy", "second"], "User-Agent": "rules/1"}}}}],
               "outbounds": [{{"type": "socks", "tag": "proxy", "server": "127.0.0.1", "server_port": {}}}, "#,
            proxy.addr(0).port()
        ),
    );
    let _sb = Instance::start(&text);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (peer, head) = &seen[0];
    assert_eq!(*peer, IpAddr::from([127, 0, 0, 3]));
    assert_eq!(head[0], "GET /rs.json HTTP/1.1");
    assert_eq!(header(head, "user-agent"), Some("rules/1"));
    let values: Vec<&str> = head
        .iter()
        .filter_map(|l| l.strip_prefix("X-Client: "))
        .collect();
    assert_eq!(values, ["via-proxy", "second"]);
}

#[test]
fn the_client_is_chosen_in_gos_order() {
    let (server, seen) = http_server();
    let url = format!("http://{server}/rs.json");
    let clients = r#""http_clients": [{"tag": "first", "inet4_bind_address": "127.0.0.4"},
                                      {"tag": "second", "inet4_bind_address": "127.0.0.5"}],
                     "outbounds": ["#;
    let cases = [
        // No http_client: the first client (Go's default when `default_http_client` is unset).
        ("", "", [127, 0, 0, 4]),
        // `route.default_http_client`.
        ("", r#", "default_http_client": "second""#, [127, 0, 0, 5]),
        // The deprecated `download_detour` wins over the default client.
        (
            r#", "download_detour": "direct""#,
            r#", "default_http_client": "second""#,
            [127, 0, 0, 1],
        ),
        // An inline client, with dial fields of its own.
        (
            r#", "http_client": {"version": 2, "inet4_bind_address": "127.0.0.6"}"#,
            "",
            [127, 0, 0, 6],
        ),
    ];
    for (set_extra, extra, want) in cases {
        let text = config(&url, set_extra, extra).replace(r#""outbounds": ["#, clients);
        let sb = Instance::start(&text);
        let last = seen.lock().unwrap().last().unwrap().0;
        assert_eq!(last, IpAddr::from(want), "{set_extra} {extra}");
        drop(sb);
    }
}

#[test]
fn tls_options_of_the_client_apply() {
    let (server, seen, ca) = https_server();
    let url = format!("https://localhost:{}/rs.json", server.port());
    let ca_json = serde_json::to_string(&ca).unwrap();
    let trusting = format!(r#", "http_client": {{"tls": {{"certificate": {ca_json}}}}}"#);
    let _sb = Instance::start(&config(&url, &trusting, ""));
    assert_eq!(seen.lock().unwrap().len(), 1);
    // A client without the CA refuses the server's certificate: the start fails.
    let e = start_error(&config(
        &url,
        r#", "http_client": {"tls": {"server_name": "localhost"}}"#,
        "",
    ))
    .unwrap();
    assert!(
        e.contains("initial rule-set") && e.contains("certificate"),
        "{e}"
    );
}

#[test]
fn what_sb_cannot_honour_is_refused_by_name() {
    let url = "http://127.0.0.1:9/rs.json";
    let cases = [
        (
            config(url, "", "").replace(
                r#""outbounds": ["#,
                r#""http_clients": [{"tag": "h3", "version": 3}], "outbounds": ["#,
            ),
            r#"http_clients[0] (tag "h3"): version 3 (HTTP/3) is not implemented by sb"#,
        ),
        (
            config(url, r#", "http_client": {"tls": {"fragment": true}}"#, ""),
            r#"route.rule_set[0] (tag "rs"): http_client: tls.fragment is not implemented by sb's HTTP client"#,
        ),
        (
            config(url, "", "").replace(
                r#""outbounds": ["#,
                r#""http_clients": [{"tag": "a", "engine": "apple"}], "outbounds": ["#,
            ),
            r#"http_clients[0] (tag "a"): engine "apple": Apple HTTP engine is not available on non-Apple platforms"#,
        ),
    ];
    for (text, want) in cases {
        let loaded = sb_config::load_text("c.json", &text).unwrap_or_else(|e| panic!("{e}"));
        let e = sb_adapters::registry::build(&loaded.config)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, want);
    }
}
