//! The `local` server type: names in `/etc/hosts` first (A/AAAA), then the host's resolvers as
//! `/etc/resolv.conf` lists them (read with hickory-resolver's parser), asked in order over
//! UDP with TCP for truncated answers — what Go's `local` does on a Linux host without
//! systemd-resolved. Both files are read again when they change. The queries dial through
//! the server's [`Dialer`] like any other.

use super::message::{domain_of, question, reply_with_ips};
use super::transport::Transport;
use super::udp::UdpTransport;
use super::{DnsError, DEFAULT_TTL};
use crate::adapter::BoxFuture;
use crate::dialer::Dialer;
use crate::flow::Destination;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Names and addresses of a hosts file.
type Names = Arc<HashMap<String, Vec<IpAddr>>>;

/// The system resolvers.
pub struct LocalTransport {
    tag: String,
    dialer: Arc<Dialer>,
    timeout: Duration,
    path: PathBuf,
    servers: Mutex<(Option<SystemTime>, Arc<Vec<UdpTransport>>)>,
    hosts_path: PathBuf,
    hosts: Mutex<(Option<SystemTime>, Names)>,
}

impl LocalTransport {
    /// A transport over the resolvers of `resolv_conf` (normally `/etc/resolv.conf`).
    pub fn new(tag: &str, dialer: Arc<Dialer>, timeout: Duration, resolv_conf: PathBuf) -> Self {
        LocalTransport {
            tag: tag.to_string(),
            dialer,
            timeout,
            path: resolv_conf,
            servers: Mutex::new((None, Arc::new(Vec::new()))),
            hosts_path: PathBuf::from("/etc/hosts"),
            hosts: Mutex::new((None, Arc::new(HashMap::new()))),
        }
    }

    /// `/etc/hosts` as last read (empty when it cannot be read: then only DNS answers).
    fn hosts(&self) -> Names {
        let mtime = std::fs::metadata(&self.hosts_path)
            .and_then(|m| m.modified())
            .ok();
        let Ok(mut cached) = self.hosts.lock() else {
            return Arc::new(HashMap::new());
        };
        if cached.0 != mtime {
            let mut names = HashMap::new();
            if let Ok(text) = std::fs::read_to_string(&self.hosts_path) {
                super::hosts::parse_into(&text, &mut names);
            }
            *cached = (mtime, Arc::new(names));
        }
        cached.1.clone()
    }

    fn servers(&self) -> Result<Arc<Vec<UdpTransport>>, DnsError> {
        let io = |source: std::io::Error| DnsError::Io {
            server: self.tag.clone(),
            source,
        };
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(|e| {
                io(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", self.path.display()),
                ))
            })?;
        let mut cached = self
            .servers
            .lock()
            .map_err(|_| io(std::io::Error::other("resolver list poisoned")))?;
        if cached.0 == Some(mtime) {
            return Ok(cached.1.clone());
        }
        let data = std::fs::read(&self.path).map_err(io)?;
        let (config, _) = hickory_resolver::system_conf::parse_resolv_conf(data).map_err(|e| {
            io(std::io::Error::other(format!(
                "{}: {e}",
                self.path.display()
            )))
        })?;
        let mut ips: Vec<std::net::IpAddr> = config.name_servers().iter().map(|n| n.ip).collect();
        ips.dedup();
        let list: Vec<UdpTransport> = ips
            .into_iter()
            .map(|ip| {
                UdpTransport::new(
                    &self.tag,
                    Destination::from_socket((ip, 53).into()),
                    self.dialer.clone(),
                    self.timeout,
                )
            })
            .collect();
        *cached = (Some(mtime), Arc::new(list));
        Ok(cached.1.clone())
    }
}

impl Transport for LocalTransport {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "local"
    }
    fn exchange<'a>(&'a self, query: &'a Message) -> BoxFuture<'a, Result<Message, DnsError>> {
        Box::pin(async move {
            let q = question(query)?;
            if matches!(q.query_type(), RecordType::A | RecordType::AAAA) {
                if let Some(ips) = self.hosts().get(&domain_of(q)) {
                    return Ok(reply_with_ips(query, q, ips, DEFAULT_TTL));
                }
            }
            let servers = self.servers()?;
            let mut last = None;
            for s in servers.iter() {
                match s.exchange(query).await {
                    Ok(m) => return Ok(m),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| DnsError::Io {
                server: self.tag.clone(),
                source: std::io::Error::other("no nameserver in resolv.conf"),
            }))
        })
    }
}
