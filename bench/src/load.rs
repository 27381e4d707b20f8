//! Load generators: new SOCKS5 flows per second, per-flow latency, and many idle flows held
//! open. The target server answers one byte per connection and closes.

use anyhow::{bail, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server that writes one byte to every connection, then waits for the client to close.
pub async fn one_byte_server() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = s.write_all(b"x").await;
                let mut sink = [0u8; 64];
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Opens a flow to `target` through the SOCKS5 proxy (or directly) and reads the first byte.
async fn flow(proxy: Option<SocketAddr>, target: SocketAddr) -> Result<TcpStream> {
    let mut s = match proxy {
        None => TcpStream::connect(target).await?,
        Some(p) => {
            let mut s = TcpStream::connect(p).await?;
            s.write_all(&[5, 1, 0]).await?;
            let mut m = [0u8; 2];
            s.read_exact(&mut m).await?;
            let SocketAddr::V4(t) = target else {
                bail!("IPv4 targets only")
            };
            let mut req = vec![5, 1, 0, 1];
            req.extend_from_slice(&t.ip().octets());
            req.extend_from_slice(&t.port().to_be_bytes());
            s.write_all(&req).await?;
            let mut reply = [0u8; 10];
            s.read_exact(&mut reply).await?;
            if reply[1] != 0 {
                bail!("SOCKS5 reply {}", reply[1]);
            }
            s
        }
    };
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    Ok(s)
}

/// New flows per second with `clients` concurrent loops for `dur`.
pub async fn flow_rate(
    proxy: SocketAddr,
    target: SocketAddr,
    clients: usize,
    dur: Duration,
) -> Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + dur;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (done, failed) = (done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                match flow(Some(proxy), target).await {
                    Ok(s) => {
                        drop(s);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    if failed.load(Ordering::Relaxed) > done.load(Ordering::Relaxed) / 100 {
        bail!(
            "more than 1% of flows failed ({} of {})",
            failed.load(Ordering::Relaxed),
            done.load(Ordering::Relaxed)
        );
    }
    Ok(done.load(Ordering::Relaxed) as f64 / dur.as_secs_f64())
}

/// p50 and p99 of the time to open a flow and read its first byte, in microseconds, over `n`
/// sequential flows.
pub async fn latency(
    proxy: Option<SocketAddr>,
    target: SocketAddr,
    n: usize,
) -> Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let s = flow(proxy, target).await?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        drop(s);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok((at(0.50), at(0.99)))
}

/// How long one held flow may take to open.
const FLOW_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens up to `n` flows and keeps them idle; they close when the returned vector is dropped.
/// Stops at the first flow that fails and says why (the proxy refusing more flows is a result,
/// not a harness error).
pub async fn hold(
    proxy: SocketAddr,
    target: SocketAddr,
    n: usize,
) -> (Vec<TcpStream>, Option<String>) {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // A proxy that stops accepting (sb at its connection budget leaves new connections
        // in the listen backlog) is a result, not a reason to wait forever.
        match tokio::time::timeout(FLOW_TIMEOUT, flow(Some(proxy), target)).await {
            Ok(Ok(s)) => out.push(s),
            Ok(Err(e)) => return (out, Some(format!("flow {} of {n} failed: {e}", i + 1))),
            Err(_) => {
                let why = format!("flow {} of {n} not answered within {FLOW_TIMEOUT:?}", i + 1);
                return (out, Some(why));
            }
        }
    }
    (out, None)
}

/// As [`hold`], opening up to `parallel` flows at once: through a multiplexed outbound each
/// flow waits a channel open on the shared session, so one at a time takes minutes for
/// thousands. Stops at the first flow that fails (the ones in flight are kept if they open).
pub async fn hold_parallel(
    proxy: SocketAddr,
    target: SocketAddr,
    n: usize,
    parallel: usize,
) -> (Vec<TcpStream>, Option<String>) {
    let mut out = Vec::with_capacity(n);
    let mut opening = tokio::task::JoinSet::new();
    let mut started = 0;
    let mut failure = None;
    while out.len() < n {
        while failure.is_none() && started < n && opening.len() < parallel {
            started += 1;
            opening.spawn(tokio::time::timeout(
                FLOW_TIMEOUT,
                flow(Some(proxy), target),
            ));
        }
        let Some(done) = opening.join_next().await else {
            break;
        };
        match done {
            Ok(Ok(Ok(s))) => out.push(s),
            Ok(Ok(Err(e))) => {
                failure.get_or_insert(format!("flow {} of {n} failed: {e}", out.len() + 1));
            }
            Ok(Err(_)) => {
                failure.get_or_insert(format!(
                    "flow {} of {n} not answered within {FLOW_TIMEOUT:?}",
                    out.len() + 1
                ));
            }
            Err(e) => {
                failure.get_or_insert(format!("flow task: {e}"));
            }
        }
    }
    (out, failure)
}
