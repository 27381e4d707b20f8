//! The real `dig` (Debian's bind9-dnsutils) as a second, independent client: what a user
//! would run against sb. Over UDP, TCP, DNS over TLS and DNS over HTTPS (dig 9.18 has
//! `+tls`, `+https`, `+tls-ca`, `+tls-hostname`), always bounded by `+time=2 +tries=1`.
//! Its answer lines are read into the same TTL-less text as [`super::Answer`].

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// How dig reaches the server.
#[derive(Clone, Copy, Debug)]
pub enum DigTransport<'a> {
    /// Plain DNS over UDP.
    Udp,
    /// Plain DNS over TCP (`+tcp`).
    Tcp,
    /// DNS over TLS, trusting the CA file `ca` and checking the certificate names `hostname`.
    Tls {
        /// CA certificate file (PEM).
        ca: &'a Path,
        /// Name the server certificate must carry.
        hostname: &'a str,
    },
    /// DNS over HTTPS at `path` (HTTP/2), trusting `ca`, checking `hostname`.
    Https {
        /// CA certificate file (PEM).
        ca: &'a Path,
        /// Name the server certificate must carry.
        hostname: &'a str,
        /// The DoH path, e.g. `/dns-query`.
        path: &'a str,
    },
}

/// What dig printed.
#[derive(Clone, Debug)]
pub struct DigAnswer {
    /// dig's exit code (9: no reply).
    pub code: i32,
    /// The `status:` of the reply header (`NOERROR`, `NXDOMAIN`, ...), `None` without a reply.
    pub rcode: Option<String>,
    /// Answer lines as `name TYPE data` (no TTL, no class), sorted, as [`super::Answer`].
    pub records: Vec<String>,
    /// The TTL of each entry of `records`, in the same order.
    pub ttls: Vec<u32>,
    /// dig's whole output.
    pub output: String,
}

/// `dig @server -p port name qtype +noall +answer +comments +time=2 +tries=1 [+tcp]`.
pub fn dig(server: IpAddr, port: u16, name: &str, qtype: &str, tcp: bool) -> DigAnswer {
    let transport = if tcp {
        DigTransport::Tcp
    } else {
        DigTransport::Udp
    };
    dig_with(server, port, name, qtype, transport)
}

/// As [`dig`], over any [`DigTransport`].
pub fn dig_with(
    server: IpAddr,
    port: u16,
    name: &str,
    qtype: &str,
    transport: DigTransport<'_>,
) -> DigAnswer {
    let mut args = vec!["+noall".to_string(), "+answer".into(), "+comments".into()];
    args.extend(transport_args(transport));
    let out = run(server, port, name, qtype, &args);
    let mut pairs: Vec<(String, u32)> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .filter_map(answer_line)
        .collect();
    pairs.sort();
    let rcode = out
        .stdout
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .map(str::to_string);
    DigAnswer {
        code: out.code,
        rcode,
        records: pairs.iter().map(|(r, _)| r.clone()).collect(),
        ttls: pairs.iter().map(|(_, t)| *t).collect(),
        output: out.stdout + &out.stderr,
    }
}

/// `dig ... +short`: the data of each answer record, in the order dig printed them.
pub fn dig_short(server: IpAddr, port: u16, name: &str, qtype: &str, tcp: bool) -> Vec<String> {
    let mut args = vec!["+short".to_string()];
    if tcp {
        args.push("+tcp".into());
    }
    let out = run(server, port, name, qtype, &args);
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .map(|l| l.trim().to_string())
        .collect()
}

fn transport_args(transport: DigTransport<'_>) -> Vec<String> {
    match transport {
        DigTransport::Udp => vec![],
        DigTransport::Tcp => vec!["+tcp".into()],
        DigTransport::Tls { ca, hostname } => vec![
            "+tls".into(),
            format!("+tls-ca={}", ca.display()),
            format!("+tls-hostname={hostname}"),
        ],
        DigTransport::Https { ca, hostname, path } => vec![
            format!("+https={path}"),
            format!("+tls-ca={}", ca.display()),
            format!("+tls-hostname={hostname}"),
        ],
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(server: IpAddr, port: u16, name: &str, qtype: &str, extra: &[String]) -> Output {
    let out = Command::new("dig")
        .arg(format!("@{server}"))
        .args(["-p", &port.to_string(), name, qtype, "+time=2", "+tries=1"])
        .args(extra)
        .output()
        .unwrap_or_else(|e| {
            panic!("dig must be installed (scripts/install-test-deps.sh installs it): {e}")
        });
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `a.test.  300  IN  A  10.0.0.1` -> (`a.test. A 10.0.0.1`, 300). The data is kept as dig
/// wrote it (TXT strings may hold spaces).
fn answer_line(line: &str) -> Option<(String, u32)> {
    let mut rest = line.trim();
    let mut fields = Vec::with_capacity(4);
    for _ in 0..4 {
        let end = rest.find(char::is_whitespace)?;
        fields.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    let [name, ttl, _class, rtype] = fields[..] else {
        return None;
    };
    Some((format!("{name} {rtype} {rest}"), ttl.parse().ok()?))
}
