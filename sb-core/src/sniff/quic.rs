//! QUIC sniffer: the TLS ClientHello inside a client's Initial packets, and its SNI.
//!
//! Initial packets are encrypted with keys derived from the Destination Connection ID, which
//! travels in the clear ([`keys`]). The sniffer walks the long-header packets of each datagram,
//! opens the Initial ones, rebuilds the CRYPTO stream ([`frames`]) and hands it to the TLS
//! handshake parser. The first datagram decides whether the flow is QUIC at all; later
//! datagrams only add CRYPTO data, and one that does not open is skipped.

mod frames;
mod keys;

use super::reader::Reader;
use super::tls::handshake;
use super::Sniffed;
use frames::CryptoStream;
use keys::{InitialKeys, Version};

/// Connection IDs are at most 20 bytes in the versions sniffed (RFC 9000 §17.2).
const MAX_CID: usize = 20;
/// Different Destination Connection IDs whose keys are tried in one flow (the original one,
/// and the ones a client may switch to after a Retry).
const MAX_KEYS: usize = 4;
/// Initial packets the sniffer tries to open for one verdict. A datagram may coalesce
/// hundreds of small packets, and the sniffer reads a flow's datagrams again at each new
/// one; a real client's ClientHello takes one to three Initial packets.
const MAX_OPENED: usize = 16;

/// QUIC: the first datagrams of a UDP flow, in order. `Yes("quic", sni)` once a whole
/// ClientHello is in, `NeedMore` while it is incomplete, `No` when the first datagram does
/// not begin with a client Initial packet that opens.
pub fn quic(datagrams: &[&[u8]]) -> Sniffed {
    let Some((first, later)) = datagrams.split_first() else {
        return Sniffed::NeedMore;
    };
    let mut flow = Flow::default();
    if !flow.read_datagram(first) {
        return Sniffed::No;
    }
    let mut verdict = handshake(flow.stream.prefix(), "quic");
    for datagram in later {
        if verdict != Sniffed::NeedMore {
            break;
        }
        flow.read_datagram(datagram);
        verdict = handshake(flow.stream.prefix(), "quic");
    }
    verdict
}

/// What a flow's datagrams have given so far.
#[derive(Default)]
struct Flow {
    /// Keys by version and Destination Connection ID, the first Initial's first.
    keys: Vec<(Version, Vec<u8>, InitialKeys)>,
    stream: CryptoStream,
    /// Initial packets tried so far, at most [`MAX_OPENED`].
    opened: usize,
}

impl Flow {
    /// Reads the long-header packets of one datagram; `true` when the first is a client
    /// Initial packet that opened and whose frames parse.
    fn read_datagram(&mut self, datagram: &[u8]) -> bool {
        let mut rest = datagram;
        let mut first_ok = None;
        while let Some(packet) = LongHeader::parse(rest) {
            if packet.initial {
                if self.opened == MAX_OPENED {
                    break;
                }
                self.opened += 1;
            }
            let ok = packet.initial && self.open(&packet, &rest[..packet.end]).is_some();
            first_ok.get_or_insert(ok);
            rest = &rest[packet.end..];
        }
        first_ok.unwrap_or(false)
    }

    /// Opens one Initial packet and adds its frames to the stream.
    fn open(&mut self, header: &LongHeader<'_>, packet: &[u8]) -> Option<()> {
        let payload = self.decrypt(header, packet)?;
        self.stream.add_frames(&payload)
    }

    /// All of a client's Initial packets are protected with the keys of the Destination
    /// Connection ID of its first one (RFC 9001 §5.2), even after the server picked a new
    /// one; after a Retry the client uses the Retry's. So the first keys are tried, then
    /// those of the packet's own ID.
    fn decrypt(&mut self, header: &LongHeader<'_>, packet: &[u8]) -> Option<Vec<u8>> {
        if let Some((version, _, keys)) = self.keys.first() {
            if *version == header.version {
                if let Some(plain) = keys.open(packet, header.pn_offset) {
                    return Some(plain);
                }
            }
        }
        let known = self
            .keys
            .iter()
            .position(|(v, id, _)| *v == header.version && id == header.dcid);
        match known {
            Some(0) => None,
            Some(i) => self.keys.get(i)?.2.open(packet, header.pn_offset),
            None if self.keys.len() < MAX_KEYS => {
                let keys = InitialKeys::client(header.version, header.dcid)?;
                let plain = keys.open(packet, header.pn_offset);
                self.keys.push((header.version, header.dcid.to_vec(), keys));
                plain
            }
            None => None,
        }
    }
}

/// The parts of a long-header packet the sniffer needs (RFC 9000 §17.2).
struct LongHeader<'a> {
    version: Version,
    /// Whether it is an Initial packet.
    initial: bool,
    dcid: &'a [u8],
    /// Where the (protected) Packet Number field starts.
    pn_offset: usize,
    /// Where the packet ends in the datagram.
    end: usize,
}

impl<'a> LongHeader<'a> {
    /// The long-header packet at the start of `d`, if it has one of a sniffed version that
    /// fits in `d`. A short header, a Version Negotiation or Retry packet, or an unknown
    /// version ends the walk: none of them says where it ends or carries a ClientHello.
    fn parse(d: &'a [u8]) -> Option<Self> {
        let mut r = Reader(d);
        let first = r.u8()?;
        // The long-header bit and the fixed bit (Go also requires the latter).
        if first & 0xc0 != 0xc0 {
            return None;
        }
        let version = Version::from_wire(r.u32()?)?;
        let dcid = r.bytes8()?;
        let scid = r.bytes8()?;
        if dcid.len() > MAX_CID || scid.len() > MAX_CID {
            return None;
        }
        let ty = (first >> 4) & 0x03;
        if ty == version.retry_type() {
            return None;
        }
        let initial = ty == version.initial_type();
        if initial {
            // The Token field; a client's first Initial has a Destination Connection ID of at
            // least 8 bytes (RFC 9000 §7.2), so an empty one is no client's.
            let token_len = r.varint_len()?;
            r.skip(token_len)?;
            if dcid.is_empty() {
                return None;
            }
        }
        let len = r.varint_len()?;
        let pn_offset = d.len() - r.len();
        let end = pn_offset.checked_add(len)?;
        (end <= d.len()).then_some(Self {
            version,
            initial,
            dcid,
            pn_offset,
            end,
        })
    }
}

#[cfg(test)]
mod tests;
