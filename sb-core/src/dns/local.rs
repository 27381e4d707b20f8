//! The `local` server type: the host's resolvers as `/etc/resolv.conf` lists them (read with
//! hickory-resolver's parser, read again when the file changes), asked in order over UDP
//! with TCP for truncated answers — what Go's `local` does on a Linux host without
//! systemd-resolved. The queries dial through the server's [`Dialer`] like any other.

use super::transport::Transport;
use super::udp::UdpTransport;
use super::DnsError;
use crate::adapter::BoxFuture;
use crate::dialer::Dialer;
use crate::flow::Destination;
use hickory_proto::op::Message;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The system resolvers.
pub struct LocalTransport {
    tag: String,
    dialer: Arc<Dialer>,
    timeout: Duration,
    path: PathBuf,
    servers: Mutex<(Option<SystemTime>, Arc<Vec<UdpTransport>>)>,
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
        }
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
