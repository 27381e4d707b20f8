//! The `hosts` server type: names from hosts files (`path`, `/etc/hosts` by default) and the
//! `predefined` map, answered with Go's TTL (600 s). A name it does not know gets NXDOMAIN;
//! a known name without an address of the asked family gets an empty NOERROR answer.

use super::message::{domain_of, question, reply, reply_with_ips};
use super::transport::Transport;
use super::{DnsError, DEFAULT_TTL};
use crate::adapter::BoxFuture;
use hickory_proto::op::{Message, ResponseCode};
use std::collections::HashMap;
use std::net::IpAddr;

/// Names and their addresses.
pub struct HostsTransport {
    tag: String,
    names: HashMap<String, Vec<IpAddr>>,
}

impl HostsTransport {
    /// Reads `files` (in order; a name's addresses accumulate) and adds `predefined`.
    pub fn new(
        tag: &str,
        files: &[String],
        predefined: &[(String, Vec<IpAddr>)],
    ) -> Result<Self, super::ServerError> {
        let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for f in files {
            let text =
                std::fs::read_to_string(f).map_err(|error| super::ServerError::HostsFile {
                    path: f.clone(),
                    error,
                })?;
            parse_into(&text, &mut names);
        }
        for (name, ips) in predefined {
            names
                .entry(normalize(name))
                .or_default()
                .extend(ips.iter().copied());
        }
        Ok(HostsTransport {
            tag: tag.to_string(),
            names,
        })
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Parses hosts-file text: `address name [alias...]`, `#` comments; bad lines are skipped
/// as the C library does.
pub fn parse_into(text: &str, names: &mut HashMap<String, Vec<IpAddr>>) {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(ip) = fields.next().and_then(|f| f.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in fields {
            let list = names.entry(normalize(name)).or_default();
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
    }
}

impl Transport for HostsTransport {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "hosts"
    }
    fn cacheable(&self) -> bool {
        false
    }
    fn exchange<'a>(&'a self, query: &'a Message) -> BoxFuture<'a, Result<Message, DnsError>> {
        Box::pin(async move {
            let q = question(query)?;
            Ok(match self.names.get(&domain_of(q)) {
                Some(ips) => reply_with_ips(query, q, ips, DEFAULT_TTL),
                None => reply(query, ResponseCode::NXDomain),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_text() {
        let mut m = HashMap::new();
        parse_into(
            "127.0.0.1 localhost loopback # comment\n::1 localhost\nbad line\n# x\n10.0.0.1\tA.Example.\n",
            &mut m,
        );
        assert_eq!(m["localhost"].len(), 2);
        assert_eq!(m["a.example"], vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert!(!m.contains_key("bad"));
    }
}
