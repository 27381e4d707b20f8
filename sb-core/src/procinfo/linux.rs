//! The Linux process search: the client's socket from `/proc/net/*` (its uid and inode), then
//! the process holding that inode among `/proc/<pid>/fd/*`. Blocking file I/O; the caller runs
//! it off the async threads. Processes that exit or cannot be read mid-scan are passed over.

use super::net_table::{self, SocketRow};
use super::{ProcError, ProcessInfo};
use crate::flow::Network;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;

/// At most this many `/proc` entries and descriptor links are looked at per search, so a host
/// with a huge process or descriptor count costs a bounded time per flow (the uid is still
/// known when the owner was not reached).
const SCAN_BUDGET: usize = 1 << 20;

/// See [`super::find`].
pub fn find(
    network: Network,
    source: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<Option<ProcessInfo>, ProcError> {
    let source = net_table::canonical(source);
    if !may_be_local(source, local) {
        return Ok(None);
    }
    let Some(socket) = client_socket(network, source, local)? else {
        return Ok(None);
    };
    let pid = owner(socket)?;
    let path = pid
        .and_then(|p| fs::read_link(format!("/proc/{p}/exe")).ok())
        .map(|p| p.to_string_lossy().into_owned());
    Ok(Some(ProcessInfo::new(
        pid,
        socket.uid,
        user_name(socket.uid),
        path,
    )))
}

/// Only a client on this host has its socket in our tables. Its address is a loopback one, or
/// the host address it reached the inbound on; anything else is a remote client, answered
/// without reading a file.
fn may_be_local(source: SocketAddr, local: Option<SocketAddr>) -> bool {
    let ip = source.ip();
    ip.is_loopback()
        || local.is_none_or(|l| {
            let l = l.ip().to_canonical();
            l.is_unspecified() || l == ip
        })
}

fn client_socket(
    network: Network,
    source: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<Option<SocketRow>, ProcError> {
    // An IPv4 client shows in the IPv4 table, or as a mapped address in the IPv6 one when its
    // socket is dual-stack.
    let tables: &[&str] = match (network, source.is_ipv4()) {
        (Network::Tcp, true) => &["/proc/net/tcp", "/proc/net/tcp6"],
        (Network::Tcp, false) => &["/proc/net/tcp6"],
        (Network::Udp, true) => &["/proc/net/udp", "/proc/net/udp6"],
        (Network::Udp, false) => &["/proc/net/udp6"],
        // A ping socket's table is not read: ICMP flows have no owning process here.
        (Network::Icmp, _) => return Ok(None),
    };
    let mut text = String::new();
    for path in tables {
        match fs::read_to_string(path) {
            Ok(t) => text.push_str(&t),
            // A kernel without IPv6 has no `*6` tables.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ProcError::Read { path, source }),
        }
    }
    Ok(net_table::client_socket(
        net_table::rows(&text),
        network,
        source,
        local,
    ))
}

/// The pid whose descriptor table holds the socket. As Go does, only processes running as the
/// socket's uid (the owner of `/proc/<pid>`) are searched.
fn owner(socket: SocketRow) -> Result<Option<u32>, ProcError> {
    let needle = format!("socket:[{}]", socket.inode);
    let procs = fs::read_dir("/proc").map_err(|source| ProcError::Read {
        path: "/proc",
        source,
    })?;
    let mut budget = SCAN_BUDGET;
    for entry in procs {
        let Some(left) = budget.checked_sub(1) else {
            return Ok(None);
        };
        budget = left;
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !entry.metadata().is_ok_and(|m| m.uid() == socket.uid) {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds {
            let Some(left) = budget.checked_sub(1) else {
                return Ok(None);
            };
            budget = left;
            let Ok(fd) = fd else { continue };
            if fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == needle.as_str()) {
                return Ok(Some(pid));
            }
        }
    }
    Ok(None)
}

/// The account name of `uid` (from `/etc/passwd` or whatever the system's name service uses).
fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}
