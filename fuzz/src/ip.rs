//! Touch-ups that let fuzzed IP packets get past the userspace stack's first checks: length
//! fields and checksums made right (a random packet almost never has a valid TCP checksum,
//! and smoltcp drops those), and a TCP segment's acknowledgment number set to what the stack
//! sent last (its initial sequence number is random, so no input could complete a handshake
//! otherwise). The fuzz target applies them per packet, as the input asks.

/// The one's-complement sum of `data` (RFC 1071), added to `sum`.
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Where the transport header starts and its protocol, for an IPv4 or IPv6 packet whose
/// fixed header is present (IPv6 extension headers are not walked).
fn transport(p: &[u8]) -> Option<(usize, u8)> {
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            (ihl >= 20 && p.len() >= ihl).then(|| (ihl, p[9]))
        }
        6 => (p.len() >= 40).then(|| (40, p[6])),
        _ => None,
    }
}

/// The pseudo-header sum of the transport checksum.
fn pseudo(p: &[u8], proto: u8, len: usize) -> u32 {
    let addrs = if p[0] >> 4 == 4 {
        &p[12..20]
    } else {
        &p[8..40]
    };
    sum(sum(0, addrs), &[0, proto]) + len as u32
}

/// Sets the IP length fields to the packet's length and recomputes the IPv4 header checksum
/// and the TCP, UDP, ICMP or ICMPv6 checksum (and the UDP length).
pub fn fix(p: &mut [u8]) {
    let Some((at, proto)) = transport(p) else {
        return;
    };
    let total = p.len();
    let payload = total - at;
    if p[0] >> 4 == 4 {
        p[2..4].copy_from_slice(&(total.min(0xffff) as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = fold(sum(0, &p[..at]));
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p[4..6].copy_from_slice(&(payload.min(0xffff) as u16).to_be_bytes());
    }
    let field = match proto {
        6 => 16,
        17 => {
            if payload >= 8 {
                p[at + 4..at + 6].copy_from_slice(&(payload.min(0xffff) as u16).to_be_bytes());
            }
            6
        }
        1 | 58 => 2,
        _ => return,
    };
    if payload < field + 2 {
        return;
    }
    p[at + field..at + field + 2].fill(0);
    // ICMPv4 has no pseudo-header.
    let start = if proto == 1 {
        0
    } else {
        pseudo(p, proto, payload)
    };
    let c = fold(sum(start, &p[at..]));
    p[at + field..at + field + 2].copy_from_slice(&c.to_be_bytes());
}

/// A TCP segment's ports, sequence number and flags, if `p` is one.
pub fn tcp(p: &[u8]) -> Option<TcpSeen> {
    let (at, proto) = transport(p)?;
    let t = p.get(at..at + 20).filter(|_| proto == 6)?;
    let data_off = usize::from(t[12] >> 4) * 4;
    Some(TcpSeen {
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        flags: t[13],
        payload: (p.len() - at).saturating_sub(data_off),
    })
}

/// What the stack sent in one TCP segment.
#[derive(Clone, Copy, Debug)]
pub struct TcpSeen {
    /// Its sequence number.
    pub seq: u32,
    /// Its flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
    pub flags: u8,
    /// Its data length.
    pub payload: usize,
}

impl TcpSeen {
    /// The sequence number after this segment: what acknowledges all of it.
    pub fn next(&self) -> u32 {
        let syn_fin = u32::from(self.flags & 0x01 != 0) + u32::from(self.flags & 0x02 != 0);
        self.seq
            .wrapping_add(self.payload as u32)
            .wrapping_add(syn_fin)
    }
}

/// Sets the acknowledgment number of a TCP segment (call [`fix`] after).
pub fn set_ack(p: &mut [u8], ack: u32) {
    if let Some((at, 6)) = transport(p) {
        if let Some(field) = p.get_mut(at + 8..at + 12) {
            field.copy_from_slice(&ack.to_be_bytes());
        }
    }
}
