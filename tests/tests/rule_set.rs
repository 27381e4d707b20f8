//! Rule sets end to end: `.srs` files compiled by Go decoded the way Go matches them (Go's
//! own `rule-set match` is the oracle); sb routing curl's flows by `local` rule sets in both
//! formats and following a rewritten file; `remote` rule sets downloaded from a server in
//! the test through a `direct` outbound and through a `socks` outbound to another sb (the
//! server sees which address the download came from). Every port is picked by the OS and
//! every wait is a bounded poll.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::router::rule::{Probe, RuleSetMatcher};
use sb_tests::{curl, go_sing_box, hello_origin, Instance};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sb-rule-set-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `sing-box rule-set compile src -o out`, written through a temporary file and a rename so
/// a watcher never sees half a file.
fn go_compile(go: &Path, src: &Path, out: &Path) {
    let tmp = out.with_extension("tmp");
    let st = Command::new(go)
        .args(["rule-set", "compile", "--disable-color"])
        .arg(src)
        .arg("-o")
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "Go could not compile {}", src.display());
    std::fs::rename(&tmp, out).unwrap();
}

/// Which rules of a rule-set file Go says match `query` (a domain or an IP).
fn go_matches(go: &Path, file: &Path, format: &str, query: &str) -> BTreeSet<usize> {
    let out = Command::new(go)
        .args(["rule-set", "match", "--disable-color", "-f", format])
        .arg(file)
        .arg(query)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Go logs its verdicts (to stderr).
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("match rules.[")?
                .split(']')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Which rules sb says match: the flow Go's `match` builds (a domain or an IP, no port, no
/// network; UDP here so `network: tcp` does not match, as with Go's empty network).
fn sb_matches(file: &Path, format: &str, query: &str) -> BTreeSet<usize> {
    use sb_config::model::rule_set::RuleSetFormat;
    let f = if format == "binary" {
        RuleSetFormat::Binary
    } else {
        RuleSetFormat::Source
    };
    let bytes = std::fs::read(file).unwrap();
    let rules = sb_config::rule_set_file::parse_any(&bytes, f, &file.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let compiled = RuleSetMatcher::compile(&rules).unwrap();
    let dest = match query.parse::<IpAddr>() {
        Ok(ip) => Destination::from_socket(SocketAddr::new(ip, 0)),
        Err(_) => Destination::from_host(query, 0),
    };
    let flow = FlowContext::new(
        Arc::from("test"),
        "test",
        Network::Udp,
        "0.0.0.0:0".parse().unwrap(),
        dest,
    );
    let probe = Probe::new(&flow, "Rule");
    compiled
        .iter()
        .enumerate()
        .filter(|(_, m)| m.matches(&probe))
        .map(|(i, _)| i)
        .collect()
}

const PARITY_SOURCE: &str = r#"{"version": 3, "rules": [
  {"domain": ["exact.example"], "domain_suffix": ["suf.example", ".dot.example"],
   "domain_keyword": ["kw"], "domain_regex": ["^re[0-9]+\\.example$"]},
  {"ip_cidr": ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "172.16.0.0/12"]},
  {"domain_suffix": ["other.test"], "ip_cidr": ["10.9.0.0/16"], "invert": true},
  {"type": "logical", "mode": "and", "rules": [{"domain_keyword": "ab"}, {"domain_suffix": ".test"}]},
  {"type": "logical", "mode": "or", "rules": [{"domain": "one.test"}, {"ip_cidr": "8.8.8.8/32"}], "invert": true}
]}"#;

#[test]
fn go_compiled_binaries_match_as_go_matches_them() {
    let Some(go) = go_sing_box() else { return };
    let dir = temp_dir("parity");
    let src = dir.join("set.json");
    let srs = dir.join("set.srs");
    std::fs::write(&src, PARITY_SOURCE).unwrap();
    go_compile(&go, &src, &srs);
    // The committed fixtures too: they were compiled by the same Go version.
    let fixtures = sb_tests::workspace().join("tests/parity/data/rule-set");
    let files = [
        (src.clone(), "source"),
        (srs.clone(), "binary"),
        (fixtures.join("mixed.srs"), "binary"),
        (fixtures.join("legacy-v1.srs"), "binary"),
    ];
    let queries = [
        "exact.example",
        "a.exact.example",
        "suf.example",
        "www.suf.example",
        "xsuf.example",
        "dot.example",
        "x.dot.example",
        "kwx.test",
        "re12.example",
        "re.example",
        "other.test",
        "a.other.test",
        "ab.test",
        "ab.example",
        "one.test",
        "a.com",
        "b.com",
        "c.com",
        "x.b.com",
        "10.1.2.3",
        "10.9.1.1",
        "192.168.1.1",
        "192.168.1.2",
        "172.20.0.1",
        "2001:db8::1",
        "2001:db9::1",
        "8.8.8.8",
        "1.1.1.1",
    ];
    let mut matched_any = 0;
    for (file, format) in &files {
        for q in queries {
            let want = go_matches(&go, file, format, q);
            let got = sb_matches(file, format, q);
            assert_eq!(got, want, "{} {q}", file.display());
            matched_any += usize::from(!want.is_empty());
        }
    }
    assert!(matched_any > 20, "the table exercises too little");
    // A few facts the table must show, whatever Go says.
    assert_eq!(
        sb_matches(&srs, "binary", "www.suf.example"),
        [0, 2, 4].into()
    );
    assert_eq!(sb_matches(&srs, "binary", "172.20.0.1"), [1, 2, 4].into());
    assert_eq!(sb_matches(&srs, "binary", "8.8.8.8"), [2].into());
    let _ = std::fs::remove_dir_all(&dir);
}

fn mixed_with_rule_set(rule_set: &str, outbounds: &str) -> Instance {
    Instance::start(&format!(
        r#"{{"log": {{"disabled": true}},
            "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}],
            "outbounds": [{{"type": "direct", "tag": "direct"}}, {{"type": "block", "tag": "block"}} {outbounds}],
            "route": {{"rule_set": [{rule_set}],
                       "rules": [{{"rule_set": "rs", "outbound": "direct"}}],
                       "final": "block"}}}}"#
    ))
}

/// Whether a request through the proxy reaches the origin: by IP (SOCKS5, the address is
/// what the router sees) or by name (SOCKS5h, the domain is).
fn reaches(proxy: SocketAddr, host: &str, port: u16) -> bool {
    let scheme = if host.parse::<IpAddr>().is_ok() {
        "socks5"
    } else {
        "socks5h"
    };
    let r = curl(&[
        "-x",
        &format!("{scheme}://{proxy}"),
        &format!("http://{host}:{port}/rs"),
    ]);
    r.code == 0 && r.body == "hello from origin /rs"
}

/// Polls until `f` holds, for at most 20 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const BY_IP: &str = r#"{"version": 3, "rules": [{"ip_cidr": ["127.0.0.0/8"]}]}"#;
const BY_NAME: &str = r#"{"version": 3, "rules": [{"domain_suffix": ["localhost"]}]}"#;

/// Writes through a temporary file and a rename, as editors do.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn local_source_rule_set_routes_and_reloads() {
    let o = hello_origin().port();
    let dir = temp_dir("local-source");
    let file = dir.join("rs.json");
    std::fs::write(&file, BY_IP).unwrap();
    let sb = mixed_with_rule_set(
        &format!(
            r#"{{"type": "local", "tag": "rs", "path": "{}"}}"#,
            file.display()
        ),
        "",
    );
    let p = sb.addr(0);
    assert!(reaches(p, "127.0.0.1", o), "ip_cidr match goes direct");
    assert!(!reaches(p, "localhost", o), "no match: final is block");
    replace_file(&file, BY_NAME);
    eventually("the name rule after the rewrite", || {
        reaches(p, "localhost", o)
    });
    assert!(!reaches(p, "127.0.0.1", o));
    // A broken rewrite is refused: the last good rules stay through several polls of
    // the file.
    replace_file(&file, r#"{"version": 3, "rules": [{"domainx": "a"}]}"#);
    let until = Instant::now() + 3 * sb_core::ruleset::WATCH_INTERVAL;
    while Instant::now() < until {
        assert!(
            reaches(p, "localhost", o),
            "a broken file replaced good rules"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And a good one after it is taken again.
    replace_file(&file, BY_IP);
    eventually("the IP rule after the broken file", || {
        reaches(p, "127.0.0.1", o)
    });
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn local_binary_rule_set_routes_and_reloads() {
    let Some(go) = go_sing_box() else { return };
    let o = hello_origin().port();
    let dir = temp_dir("local-binary");
    let (ip_src, name_src, file) = (
        dir.join("ip.json"),
        dir.join("name.json"),
        dir.join("rs.srs"),
    );
    std::fs::write(&ip_src, BY_IP).unwrap();
    std::fs::write(&name_src, BY_NAME).unwrap();
    go_compile(&go, &ip_src, &file);
    let sb = mixed_with_rule_set(
        &format!(
            r#"{{"type": "local", "tag": "rs", "path": "{}"}}"#,
            file.display()
        ),
        "",
    );
    let p = sb.addr(0);
    assert!(reaches(p, "127.0.0.1", o));
    assert!(!reaches(p, "localhost", o));
    go_compile(&go, &name_src, &file);
    eventually("the name rule after recompiling", || {
        reaches(p, "localhost", o)
    });
    assert!(!reaches(p, "127.0.0.1", o));
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn local_rule_set_errors_name_the_set_and_file() {
    let dir = temp_dir("local-errors");
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        "{\"version\": 3,\n \"rules\": [{\"ip_cidrx\": \"1.1.1.1\"}]}",
    )
    .unwrap();
    let config = format!(
        r#"{{"outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"rule_set": [{{"type": "local", "tag": "rs", "path": "{}"}}]}}}}"#,
        file.display()
    );
    let loaded = sb_config::load_text("c.json", &config).unwrap();
    let e = sb_adapters::registry::build(&loaded.config)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "route.rule_set[0] (tag \"rs\"): {}:2:13: rules[0].ip_cidrx: unknown field \"ip_cidrx\" (did you mean \"ip_cidr\"?)",
            file.display()
        )
    );
    std::fs::remove_file(&file).unwrap();
    let e = sb_adapters::registry::build(&loaded.config)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "route.rule_set[0] (tag \"rs\"): read {}: ",
            file.display()
        )),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rule-set server: serves `body` at any path, records each client's address.
struct RuleSetServer {
    addr: SocketAddr,
    body: Arc<Mutex<(u16, String)>>,
    peers: Arc<Mutex<Vec<IpAddr>>>,
}

fn rule_set_server(body: &str) -> RuleSetServer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let body = Arc::new(Mutex::new((200, body.to_string())));
    let peers = Arc::new(Mutex::new(Vec::new()));
    let (b, ps) = (body.clone(), peers.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            if let Ok(peer) = conn.peer_addr() {
                ps.lock().unwrap().push(peer.ip());
            }
            let mut r = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let (status, text) = b.lock().unwrap().clone();
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{text}\r\n0\r\n\r\n",
                text.len()
            );
        }
    });
    RuleSetServer { addr, body, peers }
}

#[test]
fn remote_rule_set_through_direct() {
    let o = hello_origin().port();
    let server = rule_set_server(BY_IP);
    let remote = format!(
        r#"{{"type": "remote", "tag": "rs", "format": "source", "url": "http://{}/rs", "download_detour": "direct"}}"#,
        server.addr
    );
    let sb = mixed_with_rule_set(&remote, "");
    assert!(reaches(sb.addr(0), "127.0.0.1", o));
    assert!(!reaches(sb.addr(0), "localhost", o));
    assert_eq!(
        *server.peers.lock().unwrap(),
        [IpAddr::from([127, 0, 0, 1])]
    );
    drop(sb);

    // Without a copy, a failed first download stops the start, naming the set.
    server.body.lock().unwrap().0 = 404;
    let config = format!(
        r#"{{"outbounds": [{{"type": "direct", "tag": "direct"}}],
            "route": {{"rule_set": [{remote}]}}}}"#
    );
    let loaded = sb_config::load_text("c.json", &config).unwrap();
    let built = sb_adapters::registry::build(&loaded.config).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(sb_core::lifecycle::Instance::start(built.parts()))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "start router: route.rule_set[0] (tag \"rs\"): initial rule-set: GET http://{}/rs: unexpected status: 404 X",
            server.addr
        )
    );
}

#[test]
fn remote_rule_set_through_a_socks_proxy() {
    let o = hello_origin().port();
    let server = rule_set_server(BY_NAME);
    // The proxy's direct outbound leaves from 127.0.0.3, so the server can tell that the
    // download came through it.
    let proxy = Instance::start(
        r#"{"log": {"disabled": true},
            "inbounds": [{"type": "mixed", "tag": "m", "listen_port": 0}],
            "outbounds": [{"type": "direct", "tag": "direct", "inet4_bind_address": "127.0.0.3"}]}"#,
    );
    let remote = format!(
        r#"{{"type": "remote", "tag": "rs", "url": "http://{}/rs.json", "download_detour": "proxy"}}"#,
        server.addr
    );
    let socks = format!(
        r#", {{"type": "socks", "tag": "proxy", "server": "127.0.0.1", "server_port": {}}}"#,
        proxy.addr(0).port()
    );
    let sb = mixed_with_rule_set(&remote, &socks);
    assert_eq!(
        *server.peers.lock().unwrap(),
        [IpAddr::from([127, 0, 0, 3])]
    );
    assert!(reaches(sb.addr(0), "localhost", o));
    assert!(!reaches(sb.addr(0), "127.0.0.1", o));
}

/// Hardening finding 1: a reload keeps a remote set whose tag, URL and format did not change
/// (its rules, without a second download); a set whose URL changed is downloaded again.
#[test]
fn a_reload_keeps_an_unchanged_remote_rule_set() {
    let o = hello_origin().port();
    let server = rule_set_server(BY_IP);
    let config = |path: &str, extra: &str| {
        format!(
            r#"{{"log": {{"disabled": true}},
                "inbounds": [{{"type": "mixed", "tag": "m", "listen_port": 0}}],
                "outbounds": [{{"type": "direct", "tag": "direct"}}, {{"type": "block", "tag": "block"}} {extra}],
                "route": {{"rule_set": [{{"type": "remote", "tag": "rs", "format": "source",
                                          "url": "http://{}/{path}", "download_detour": "direct"}}],
                           "rules": [{{"rule_set": "rs", "outbound": "direct"}}],
                           "final": "block"}}}}"#,
            server.addr
        )
    };
    let mut sb = Instance::start(&config("rs", ""));
    assert!(reaches(sb.addr(0), "127.0.0.1", o));
    assert_eq!(server.peers.lock().unwrap().len(), 1);

    // Something else changed: the set is kept, with its rules.
    sb.reload(&config("rs", r#", {"type": "direct", "tag": "other"}"#))
        .unwrap();
    assert!(reaches(sb.addr(0), "127.0.0.1", o));
    assert_eq!(server.peers.lock().unwrap().len(), 1, "downloaded again");

    // Its URL changed: downloaded again.
    sb.reload(&config("rs2", "")).unwrap();
    assert_eq!(server.peers.lock().unwrap().len(), 2);
    assert!(reaches(sb.addr(0), "127.0.0.1", o));
}
