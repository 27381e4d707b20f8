//! Sniffers for the `sniff` rule action: look at the first bytes a client sends and name the
//! protocol, and where the protocol carries one the domain (TLS and QUIC SNI, HTTP Host), so
//! later rules can match on `protocol` and `domain`.
//!
//! [`sniff`] reads the growing prefix of a TCP stream and [`sniff_packets`] the first
//! datagrams of a UDP flow. Each protocol lives in its own file as a pure function over bytes
//! (no I/O, no state between calls), so it can be tested on captured bytes. The one place
//! that reads from a client is `peek.rs` ([`peek_stream`], [`peek_packets`]), which the
//! dispatcher calls for a `sniff` action. The protocol names and the order in which sniffers are tried follow Go
//! sing-box 1.14 (`route/route.go`), so a flow that two sniffers could claim is named as Go
//! names it.

mod bittorrent;
mod dns;
mod dtls;
mod http;
mod ntp;
mod peek;
mod quic;
mod rdp;
mod reader;
mod ssh;
mod stun;
mod tls;

#[cfg(test)]
mod tests;

pub use bittorrent::{bittorrent, udp_tracker, utp};
pub use dns::{dns, dns_stream};
pub use dtls::dtls;
pub use http::http;
pub use ntp::ntp;
pub use peek::{peek_packets, peek_stream, Found};
pub use quic::quic;
pub use rdp::rdp;
pub use ssh::ssh;
pub use stun::stun;
pub use tls::tls;

/// What a sniffer concluded from the bytes seen so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// Not enough bytes yet to tell.
    NeedMore,
    /// Not this protocol.
    No,
    /// This protocol, with the domain it names when there is one.
    Yes(&'static str, Option<String>),
}

/// A sniffer over the first bytes of a TCP stream.
type StreamSniffer = fn(&[u8]) -> Sniffed;

/// The stream sniffers with their protocol names, in Go's order.
const STREAM_SNIFFERS: [(&str, StreamSniffer); 6] = [
    ("tls", tls),
    ("http", http),
    ("dns", dns_stream),
    ("bittorrent", bittorrent),
    ("ssh", ssh),
    ("rdp", rdp),
];

/// A sniffer over a UDP flow's first datagram.
type PacketSniffer = fn(&[u8]) -> Sniffed;

/// The sniffers tried after `dns` and `quic` (see [`sniff_packets`]), in Go's order. Each
/// decides from the first datagram alone.
const PACKET_SNIFFERS: [(&str, PacketSniffer); 5] = [
    ("stun", stun),
    ("bittorrent", utp),
    ("bittorrent", udp_tracker),
    ("dtls", dtls),
    ("ntp", ntp),
];

/// Runs the enabled stream sniffers (`names`; all when empty) over a TCP stream's first bytes.
///
/// `NeedMore` when no sniffer matched yet and at least one needs more bytes to decide.
pub fn sniff(buf: &[u8], names: &[&str]) -> Sniffed {
    let mut need_more = false;
    for (name, f) in STREAM_SNIFFERS {
        if !enabled(names, name) {
            continue;
        }
        match f(buf) {
            Sniffed::No => {}
            Sniffed::NeedMore => need_more = true,
            found => return found,
        }
    }
    verdict(need_more)
}

/// Runs the enabled packet sniffers (`names`; all when empty) over the first datagrams a
/// client sent on a UDP flow, in order.
///
/// Every protocol but QUIC is decided from the first datagram, as Go does. QUIC reads all of
/// `packets`, because a client may spread its ClientHello over several Initial packets; it
/// answers `NeedMore` while the ClientHello is incomplete, and the caller then adds the next
/// datagram and calls again (each call reads them all afresh, so the caller bounds how many
/// datagrams and how long it waits, as Go does with the sniff timeout).
pub fn sniff_packets(packets: &[&[u8]], names: &[&str]) -> Sniffed {
    let Some(first) = packets.first() else {
        return Sniffed::NeedMore;
    };
    // Go tries DNS first, then QUIC, then the rest.
    if enabled(names, "dns") {
        if let found @ Sniffed::Yes(..) = dns(first) {
            return found;
        }
    }
    let mut need_more = false;
    if enabled(names, "quic") {
        match quic(packets) {
            Sniffed::No => {}
            Sniffed::NeedMore => need_more = true,
            found => return found,
        }
    }
    for (name, f) in PACKET_SNIFFERS {
        if enabled(names, name) {
            if let found @ Sniffed::Yes(..) = f(first) {
                return found;
            }
        }
    }
    verdict(need_more)
}

fn enabled(names: &[&str], name: &str) -> bool {
    names.is_empty() || names.contains(&name)
}

fn verdict(need_more: bool) -> Sniffed {
    if need_more {
        Sniffed::NeedMore
    } else {
        Sniffed::No
    }
}
