//! The records a test DNS server serves, in one form both peers understand: [`Zone`] turns into
//! dnsmasq command-line options ([`Zone::dnsmasq_args`]) and unbound `local-zone`/`local-data`
//! lines ([`Zone::unbound_lines`]), so a test states its data once and can ask either server.

use std::net::{Ipv4Addr, Ipv6Addr};

/// One record a test server answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// `name A addr`.
    A(String, Ipv4Addr),
    /// `name AAAA addr`.
    Aaaa(String, Ipv6Addr),
    /// `alias CNAME target`.
    Cname(String, String),
    /// `name TXT "s1" "s2" ...` (one record, several character strings; for dnsmasq no
    /// string may contain a comma).
    Txt(String, Vec<String>),
    /// `name MX preference exchange`.
    Mx(String, u16, String),
    /// `name SRV priority weight port target`.
    Srv {
        /// The owner, e.g. `_sip._udp.test`.
        name: String,
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: String,
    },
}

/// The data of one test server: its records, the zones it is authoritative for (any other name
/// under them is NXDOMAIN, any name outside them is REFUSED by dnsmasq, as it has no upstream),
/// and the TTL of every record.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Zones answered locally, without the trailing dot (`test`, `corp.test`).
    pub zones: Vec<String>,
    /// The records.
    pub records: Vec<Record>,
    /// TTL of every record (dnsmasq's `--local-ttl`; unbound's per-record TTL).
    pub ttl: u32,
}

impl Zone {
    /// An empty zone `zone` (everything under it NXDOMAIN) with TTL 300.
    pub fn new(zone: &str) -> Zone {
        Zone {
            zones: vec![zone.trim_end_matches('.').to_string()],
            records: Vec::new(),
            ttl: 300,
        }
    }

    /// Adds a record.
    pub fn with(mut self, record: Record) -> Zone {
        self.records.push(record);
        self
    }

    /// Adds an A record.
    pub fn a(self, name: &str, addr: Ipv4Addr) -> Zone {
        self.with(Record::A(name.into(), addr))
    }

    /// Adds an AAAA record.
    pub fn aaaa(self, name: &str, addr: Ipv6Addr) -> Zone {
        self.with(Record::Aaaa(name.into(), addr))
    }

    /// Adds a CNAME record.
    pub fn cname(self, alias: &str, target: &str) -> Zone {
        self.with(Record::Cname(alias.into(), target.into()))
    }

    /// Adds a TXT record made of `strings`.
    pub fn txt(self, name: &str, strings: &[&str]) -> Zone {
        self.with(Record::Txt(
            name.into(),
            strings.iter().map(|s| s.to_string()).collect(),
        ))
    }

    /// Adds an MX record.
    pub fn mx(self, name: &str, preference: u16, exchange: &str) -> Zone {
        self.with(Record::Mx(name.into(), preference, exchange.into()))
    }

    /// The dnsmasq options serving this zone (`--host-record`, `--cname`, `--txt-record`,
    /// `--mx-host`, `--srv-host`, `--local=/zone/`, `--local-ttl`).
    ///
    /// dnsmasq's `--host-record` also answers the PTR of each address, and a name it holds
    /// only an A for answers AAAA with NOERROR and no records (not NXDOMAIN, which its
    /// `--address=/name/ip` form would give).
    pub fn dnsmasq_args(&self) -> Vec<String> {
        let mut args = vec![format!("--local-ttl={}", self.ttl)];
        for zone in &self.zones {
            args.push(format!("--local=/{zone}/"));
        }
        for r in &self.records {
            args.push(match r {
                Record::A(name, ip) => format!("--host-record={name},{ip}"),
                Record::Aaaa(name, ip) => format!("--host-record={name},{ip}"),
                Record::Cname(alias, target) => format!("--cname={alias},{target}"),
                // No shell is involved, so the strings go in bare (quotes would be kept as
                // data); a comma separates strings, so a string cannot hold one.
                Record::Txt(name, strings) => format!("--txt-record={name},{}", strings.join(",")),
                Record::Mx(name, pref, host) => format!("--mx-host={name},{host},{pref}"),
                Record::Srv {
                    name,
                    priority,
                    weight,
                    port,
                    target,
                } => format!("--srv-host={name},{target},{port},{priority},{weight}"),
            });
        }
        args
    }

    /// The unbound `server:` lines serving this zone: one `local-zone: "<zone>." static` per
    /// zone (NXDOMAIN for names without data, NOERROR/no records for missing types), one
    /// `local-data:` per record and a `local-data-ptr:` per address (as dnsmasq answers PTR).
    /// Unlike dnsmasq, unbound does not chase a CNAME inside local data: `alias.test A`
    /// answers the CNAME record alone.
    pub fn unbound_lines(&self) -> Vec<String> {
        let ttl = self.ttl;
        let mut lines: Vec<String> = self
            .zones
            .iter()
            .map(|z| format!("local-zone: \"{z}.\" static"))
            .collect();
        for r in &self.records {
            let rr = match r {
                Record::A(name, ip) => format!("{name}. {ttl} IN A {ip}"),
                Record::Aaaa(name, ip) => format!("{name}. {ttl} IN AAAA {ip}"),
                Record::Cname(alias, target) => format!("{alias}. {ttl} IN CNAME {target}."),
                Record::Txt(name, strings) => {
                    let quoted: Vec<String> = strings.iter().map(|s| quote(s)).collect();
                    format!("{name}. {ttl} IN TXT {}", quoted.join(" "))
                }
                Record::Mx(name, pref, host) => format!("{name}. {ttl} IN MX {pref} {host}."),
                Record::Srv {
                    name,
                    priority,
                    weight,
                    port,
                    target,
                } => format!("{name}. {ttl} IN SRV {priority} {weight} {port} {target}."),
            };
            // unbound's config quoting: the record inside single quotes, so TXT's double
            // quotes survive.
            lines.push(format!("local-data: '{rr}'"));
            // The reverse record dnsmasq's --host-record makes by itself.
            if let Record::A(name, ip) = r {
                lines.push(format!("local-data-ptr: \"{ip} {ttl} {name}.\""));
            }
            if let Record::Aaaa(name, ip) = r {
                lines.push(format!("local-data-ptr: \"{ip} {ttl} {name}.\""));
            }
        }
        lines
    }
}

/// A DNS character-string in zone-file form: double quotes, with `"` and `\` escaped. This is
/// also how [`super::Answer`] and `dig` print TXT data, so the three compare as text.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
