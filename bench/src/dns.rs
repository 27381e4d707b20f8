//! The DNS rows: sb and Go sing-box each answer queries sent to a `direct` inbound with
//! `hijack-dns`, forwarding to the same dnsmasq over UDP (tests/src/dns/dnsmasq.rs). "Cached":
//! every client asks the same name, so after the first answer the proxy's cache answers.
//! "Uncached": every query asks a name never asked before, so each one goes to dnsmasq (which
//! answers NXDOMAIN from its local zone at once: the upstream is never the bottleneck).
//! 64 clients, each with its own socket and one query in flight.

use crate::proc::{self, free_port, Proc};
use crate::{Row, Settings, Subject};
use anyhow::{bail, Result};
use sb_tests::dns::client::{parse_response, query_bytes};
use sb_tests::dns::dnsmasq::{self, Dnsmasq};
use sb_tests::dns::zone::Zone;
use sb_tests::dns::RecordType;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Concurrent clients.
const CLIENTS: usize = 64;

fn config(listen: u16, upstream: SocketAddr) -> String {
    format!(
        r#"{{"log": {{"level": "warn"}},
            "dns": {{"servers": [{{"type": "udp", "tag": "up", "server": "{}", "server_port": {}}}]}},
            "inbounds": [{{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": {listen}}}],
            "route": {{"rules": [{{"inbound": "dns-in", "action": "hijack-dns"}}]}}}}"#,
        upstream.ip(),
        upstream.port()
    )
}

/// Answered queries per second; `unique` makes every name new.
async fn rate(server: SocketAddr, unique: bool, seconds: u64) -> Result<f64> {
    let answered = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (answered, next) = (answered.clone(), next.clone());
        tasks.spawn(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            sock.connect(server).await?;
            let mut buf = vec![0u8; 4096];
            while Instant::now() < deadline {
                let name = if unique {
                    format!("q{}.bench.test", next.fetch_add(1, Ordering::Relaxed))
                } else {
                    "cached.bench.test".to_string()
                };
                let (id, bytes) = query_bytes(&name, RecordType::A)?;
                sock.send(&bytes).await?;
                // A lost datagram costs one second of this client, never the run.
                let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await
                else {
                    continue;
                };
                if buf.get(..n).is_some_and(|b| parse_response(id, b).is_ok()) {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(answered.load(Ordering::Relaxed) as f64 / seconds as f64)
}

/// Measures the DNS rows.
pub fn rows(subjects: &[Subject], s: &Settings, rt: &tokio::runtime::Runtime) -> Result<Vec<Row>> {
    if let Some(why) = dnsmasq::unavailable() {
        bail!("the DNS rows need dnsmasq: {why}");
    }
    let upstream =
        Dnsmasq::start(&Zone::new("bench.test").a("cached.bench.test", [10, 0, 0, 1].into()));
    let mut cached = Row {
        name: format!("DNS queries per second, cached ({CLIENTS} clients, hijack-dns, UDP)"),
        unit: "queries/s",
        higher_better: true,
        ..Default::default()
    };
    let mut uncached = Row {
        name: format!(
            "DNS queries per second, uncached: every name new ({CLIENTS} clients, to dnsmasq)"
        ),
        unit: "queries/s",
        higher_better: true,
        ..Default::default()
    };
    for subj in subjects {
        eprintln!("bench: {}: dns", subj.name);
        let listen = free_port()?;
        let _p = Proc::run_config(&subj.bin, &config(listen, upstream.addr))?;
        proc::wait_listening(listen)?;
        let at = SocketAddr::from(([127, 0, 0, 1], listen));
        cached.values.push(rt.block_on(rate(at, false, s.seconds))?);
        uncached
            .values
            .push(rt.block_on(rate(at, true, s.seconds))?);
    }
    Ok(vec![cached, uncached])
}
