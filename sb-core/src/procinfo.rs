//! Which local process opened a flow: looked up once per flow, before the router's first
//! decision, when a rule matches on `process_name`, `process_path`, `process_path_regex`,
//! `user` or `user_id`, or `route.find_process` asks for it (Go's "process searcher").
//!
//! Linux only, from `/proc`: the client's socket in `/proc/net/{tcp,udp}{,6}` gives its uid
//! and inode, and the process whose `/proc/<pid>/fd` holds that inode gives the pid and
//! executable. Only clients on this host can be found; for any other the answer is `None`, and
//! process fields do not match, as in Go. Other systems get [`ProcError::NotSupported`].

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod net_table;

use crate::flow::{FlowContext, Network};
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{debug, info};

/// The process that owns a flow's client socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid; `None` when the socket was found but no readable process holds it.
    pub pid: Option<u32>,
    /// The uid that created the socket.
    pub uid: u32,
    /// The account name of `uid`, when the system knows one.
    pub user: Option<String>,
    /// The executable (`/proc/<pid>/exe`), when readable.
    pub path: Option<String>,
    /// The executable's file name, which `process_name` matches.
    pub name: Option<String>,
}

impl ProcessInfo {
    /// A process; `name` is taken from `path` (its last component, as Go's `filepath.Base`).
    pub fn new(
        pid: Option<u32>,
        uid: u32,
        user: Option<String>,
        path: Option<String>,
    ) -> ProcessInfo {
        let name = path
            .as_deref()
            .map(|p| p.trim_end_matches('/'))
            .and_then(|p| p.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        ProcessInfo {
            pid,
            uid,
            user,
            path,
            name,
        }
    }
}

/// Why the owner of a socket could not be searched.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// A file of `/proc` could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not implemented on this system.
    #[error("process search is not supported on this platform")]
    NotSupported,
}

/// The process owning the client socket of a `network` flow that the inbound saw coming from
/// `source` on its own address `local` (`None` when unknown: the socket is then found by
/// `source` alone). `Ok(None)` when no local socket matches (a remote client). Blocking.
pub fn find(
    network: Network,
    source: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<Option<ProcessInfo>, ProcError> {
    #[cfg(target_os = "linux")]
    return linux::find(network, source, local);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (network, source, local);
        Err(ProcError::NotSupported)
    }
}

/// Looks the flow's process up (on a blocking thread: the search reads `/proc`), stores it in
/// `flow.process`, and logs what was found in Go's words.
pub async fn fill(flow: &mut FlowContext) {
    let (network, source, local) = (flow.network, flow.source, flow.local);
    let found = tokio::task::spawn_blocking(move || find(network, source, local)).await;
    match found {
        Ok(Ok(Some(p))) => {
            log_found(&p);
            flow.process = Some(Arc::new(p));
        }
        Ok(Ok(None)) => debug!(target: "router", "failed to search process: process not found"),
        Ok(Err(e @ ProcError::NotSupported)) => {
            debug!(target: "router", "failed to search process: {e}")
        }
        Ok(Err(e)) => info!(target: "router", "failed to search process: {e}"),
        Err(e) => info!(target: "router", "failed to search process: {e}"),
    }
}

fn log_found(p: &ProcessInfo) {
    match (&p.path, &p.user) {
        (Some(path), Some(user)) => {
            info!(target: "router", "found process path: {path}, user: {user}")
        }
        (Some(path), None) => {
            info!(target: "router", "found process path: {path}, user id: {}", p.uid)
        }
        (None, Some(user)) => info!(target: "router", "found user: {user}"),
        (None, None) => info!(target: "router", "found user id: {}", p.uid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_last_path_component() {
        let name = |p: Option<&str>| ProcessInfo::new(None, 0, None, p.map(str::to_string)).name;
        assert_eq!(name(Some("/usr/bin/curl")).as_deref(), Some("curl"));
        assert_eq!(
            name(Some("/opt/x/app (deleted)")).as_deref(),
            Some("app (deleted)")
        );
        assert_eq!(name(Some("relative")).as_deref(), Some("relative"));
        assert_eq!(name(Some("/")), None);
        assert_eq!(name(None), None);
    }
}
