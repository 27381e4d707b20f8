//! The `ssh` outbound rows: sb and Go sing-box each carry the same load through their `ssh`
//! outbound into the same OpenSSH sshd (tests/src/sshd.rs, inetd mode on a port the harness
//! owns): iperf3 throughput, new flows per second on the shared session, and RSS while
//! holding many idle flows. A multiplexed outbound needs one descriptor per flow, so this is
//! where 10,000 held flows fit under this machine's 20,000-descriptor limit.

use crate::proc::{self, free_port, Proc};
use crate::{load, Row, Settings, Subject};
use anyhow::{bail, Result};
use sb_tests::sshd::{self, Sshd};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

fn ssh_outbound(s: &Sshd, key: &std::path::Path) -> String {
    format!(
        r#"{{"type": "ssh", "tag": "ssh", "server": "127.0.0.1", "server_port": {}, "private_key_path": "{}", "host_key": ["{}"]}}"#,
        s.addr.port(),
        key.display(),
        s.host_key
    )
}

/// Measures the SSH rows; `target` answers one byte per connection and runs in its own
/// process, so the harness's descriptors go to the client side only.
pub fn rows(
    subjects: &[Subject],
    s: &Settings,
    rt: &tokio::runtime::Runtime,
    target: SocketAddr,
    notes: &mut String,
) -> Result<Vec<Row>> {
    if let Some(why) = sshd::unavailable() {
        bail!("the SSH rows need OpenSSH sshd: {why}");
    }
    let server = Sshd::start();
    let key = server.authorize("bench", &["-t", "ed25519", "-N", ""]);
    let outbound = ssh_outbound(&server, &key.private);
    let mut tput = Row {
        name: "SSH outbound throughput, 1 stream (same sshd)".into(),
        unit: "Gbit/s",
        higher_better: true,
        ..Default::default()
    };
    let mut rate = Row {
        name: "SSH outbound: new flows per second on the shared session (64 clients)".into(),
        unit: "flows/s",
        higher_better: true,
        ..Default::default()
    };
    let held_n = s.ssh_hold;
    let mut held = Row {
        name: format!("SSH outbound: RSS holding {held_n} idle flows"),
        unit: "MiB",
        ..Default::default()
    };
    for subj in subjects {
        eprintln!("bench: {}: ssh outbound", subj.name);
        let iperf_port = free_port()?;
        let _iperf = Proc::spawn("iperf3", &["-s", "-1", "-p", &iperf_port.to_string()], None)?;
        proc::wait_listening_quietly(iperf_port)?;
        let listen = free_port()?;
        let config = format!(
            r#"{{"log": {{"level": "warn"}},
                "inbounds": [{{"type": "direct", "tag": "in", "listen": "127.0.0.1", "listen_port": {listen},
                              "network": "tcp", "override_address": "127.0.0.1", "override_port": {iperf_port}}}],
                "outbounds": [{outbound}]}}"#
        );
        let p = Proc::run_config(&subj.bin, &config)?;
        proc::wait_listening_quietly(listen)?;
        tput.values.push(proc::iperf3(listen, 1, s.seconds)? / 1e9);
        drop(p);

        let listen = free_port()?;
        let config = format!(
            r#"{{"log": {{"level": "warn"}},
                "inbounds": [{{"type": "mixed", "tag": "in", "listen": "127.0.0.1", "listen_port": {listen}}}],
                "outbounds": [{outbound}]}}"#
        );
        let p = Proc::run_config(&subj.bin, &config)?;
        proc::wait_listening(listen)?;
        let proxy = SocketAddr::from(([127, 0, 0, 1], listen));
        rate.values.push(rt.block_on(load::flow_rate(
            proxy,
            target,
            64,
            Duration::from_secs(s.seconds),
        ))?);
        let (conns, failure) = rt.block_on(load::hold(proxy, target, held_n));
        std::thread::sleep(Duration::from_millis(500));
        match failure {
            None => held.values.push(p.rss_mib()?),
            Some(why) => {
                let _ = writeln!(
                    notes,
                    "- {} (ssh) could not hold {held_n} idle flows: {why}",
                    subj.name
                );
                held.values.push(f64::NAN);
            }
        }
        drop(conns);
        drop(p);
    }
    let _ = writeln!(
        notes,
        "- SSH rows: one OpenSSH {} sshd (inetd mode) for both; it accepted {} connections in all",
        openssh_version(),
        server.sessions()
    );
    Ok(vec![tput, rate, held])
}

fn openssh_version() -> String {
    std::process::Command::new("/usr/sbin/sshd")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default()
}
