//! A small synchronous rtnetlink client: what `tun`'s `auto_route` needs to add and delete
//! policy rules and routes, and what `route.auto_detect_interface` needs to find the
//! interface of the main table's default route. It talks to the kernel directly over a
//! `NETLINK_ROUTE` socket (never by running `ip`), one request at a time, waiting for the
//! kernel's acknowledgement, so every change is known to have happened or failed.
//!
//! The calls block, but each is one local kernel round trip; they run at start and stop.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;

/// One open rtnetlink socket.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

/// The kernel refused a request.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {os}")]
pub struct Nack {
    /// What was asked.
    pub what: String,
    /// The kernel's errno (positive).
    pub errno: i32,
    os: io::Error,
}

/// The kernel's errno for a request, as an `io::Error` naming what was asked.
fn nack(what: &str, code: i32) -> io::Error {
    let errno = code.saturating_abs();
    let os = io::Error::from_raw_os_error(errno);
    let kind = os.kind();
    io::Error::new(
        kind,
        Nack {
            what: what.into(),
            errno,
            os,
        },
    )
}

/// The errno of a refused request (`None`: not a refusal).
pub fn errno(e: &io::Error) -> Option<i32> {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<Nack>())
        .map(|n| n.errno)
}

impl Netlink {
    /// Opens a socket bound to a kernel-chosen port, connected to the kernel.
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// Sends `msg` with `flags` and returns every message of the answer until the ack (or
    /// `NLMSG_DONE` for a dump). A NACK is an error carrying the kernel's errno.
    fn exchange(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags | NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            let mut at = 0usize;
            while at < data.len() {
                let rest = data.get(at..).unwrap_or_default();
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|e| io::Error::other(format!("{what}: bad netlink reply: {e}")))?;
                let len = usize::try_from(reply.header.length).unwrap_or(0);
                // A length below the header size would never advance: stop on it.
                if len < 16 {
                    return Err(io::Error::other(format!("{what}: bad netlink length")));
                }
                at = at.saturating_add((len + 3) & !3);
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(code) => return Err(nack(what, code.get())),
                    },
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// Adds a policy rule (fails if the very same rule exists).
    pub fn add_rule(&mut self, rule: RuleMessage) -> io::Result<()> {
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.exchange("add rule", RouteNetlinkMessage::NewRule(rule), flags)
            .map(drop)
    }

    /// Deletes the first rule matching `rule`'s selectors and action.
    pub fn del_rule(&mut self, rule: RuleMessage) -> io::Result<()> {
        self.exchange("delete rule", RouteNetlinkMessage::DelRule(rule), NLM_F_ACK)
            .map(drop)
    }

    /// Every policy rule of a family.
    pub fn rules(&mut self, family: AddressFamily) -> io::Result<Vec<RuleMessage>> {
        let mut q = RuleMessage::default();
        q.header.family = family;
        let all = self.exchange("list rules", RouteNetlinkMessage::GetRule(q), NLM_F_DUMP)?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(r),
                _ => None,
            })
            .collect())
    }

    /// Adds a route (fails if it exists).
    pub fn add_route(&mut self, route: RouteMessage) -> io::Result<()> {
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.exchange("add route", RouteNetlinkMessage::NewRoute(route), flags)
            .map(drop)
    }

    /// Deletes the route matching `route`.
    pub fn del_route(&mut self, route: RouteMessage) -> io::Result<()> {
        self.exchange(
            "delete route",
            RouteNetlinkMessage::DelRoute(route),
            NLM_F_ACK,
        )
        .map(drop)
    }

    /// Every route of a family (all tables).
    pub fn routes(&mut self, family: AddressFamily) -> io::Result<Vec<RouteMessage>> {
        let mut q = RouteMessage::default();
        q.header.address_family = family;
        let all = self.exchange("list routes", RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .collect())
    }
}

/// The table a route is in (the attribute wins over the 8-bit header field).
pub fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

/// The interface of the main table's default route: IPv4 first, else IPv6 (what
/// `route.auto_detect_interface` binds outbound sockets to). `None` when there is none.
pub fn default_interface() -> io::Result<Option<String>> {
    let mut nl = Netlink::open()?;
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut best: Option<(u32, u32)> = None;
        for r in nl.routes(family)? {
            if r.header.destination_prefix_length != 0
                || route_table(&r) != u32::from(RouteHeader::RT_TABLE_MAIN)
            {
                continue;
            }
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            let metric = r
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Priority(p) => Some(*p),
                    _ => None,
                })
                .unwrap_or(0);
            // The kernel uses the lowest metric among equal prefixes.
            if let Some(oif) = oif {
                if best.is_none_or(|(m, _)| metric < m) {
                    best = Some((metric, oif));
                }
            }
        }
        if let Some((_, oif)) = best {
            let name = nix::net::if_::if_indextoname(oif).map_err(io::Error::from)?;
            return Ok(Some(name.to_string_lossy().into_owned()));
        }
    }
    Ok(None)
}
