//! ICMP echo from the stack into the device (`NetStack::ping`): the request is built here and
//! written to the device directly; the pump hands echo replies that match a waiting ping to
//! it instead of to the stack. The stack itself (smoltcp) answers echo requests that arrive
//! from the device, so two stacks joined by a device can ping each other.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Pings waiting for their reply at once, at most: a bound on the table.
const MAX_PENDING: usize = 1024;

/// A waiting ping: who it was sent to, its identifier and sequence number.
type Key = (IpAddr, u16, u16);

/// The pings waiting for a reply.
#[derive(Default)]
pub struct Pings {
    pending: Mutex<HashMap<Key, oneshot::Sender<()>>>,
    /// How many wait (read on every packet, so the common case takes no lock).
    count: AtomicUsize,
    next: AtomicU16,
}

impl Pings {
    /// Registers a ping to `remote`; the receiver completes when its reply arrives. Returns
    /// the identifier and sequence number to send.
    pub fn register(&self, remote: IpAddr) -> io::Result<(u16, u16, oneshot::Receiver<()>)> {
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| io::Error::other("ping table poisoned"))?;
        if pending.len() >= MAX_PENDING {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "too many pings waiting for a reply",
            ));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // One identifier per stack (its "process"), the sequence counting up, as ping does.
        let (id, seq) = (0x5b5b, n);
        let (tx, rx) = oneshot::channel();
        pending.insert((remote, id, seq), tx);
        self.count.store(pending.len(), Ordering::Release);
        Ok((id, seq, rx))
    }

    /// Forgets a ping that timed out.
    pub fn forget(&self, remote: IpAddr, id: u16, seq: u16) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&(remote, id, seq));
            self.count.store(pending.len(), Ordering::Release);
        }
    }

    /// Whether `pkt` is the echo reply a ping waits for (then it is consumed).
    pub fn take_reply(&self, pkt: &[u8]) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let Some(key) = echo_reply(pkt) else {
            return false;
        };
        let Ok(mut pending) = self.pending.lock() else {
            return false;
        };
        let Some(tx) = pending.remove(&key) else {
            return false;
        };
        self.count.store(pending.len(), Ordering::Release);
        let _ = tx.send(());
        true
    }
}

/// The sender, identifier and sequence number of an ICMP or ICMPv6 echo reply without IPv6
/// extension headers; `None` for anything else.
fn echo_reply(pkt: &[u8]) -> Option<Key> {
    let u16_at = |b: &[u8], i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            if *pkt.get(9)? != 1 || *pkt.get(ihl)? != 0 {
                return None;
            }
            let src: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
            Some((
                IpAddr::from(src),
                u16_at(pkt, ihl + 4)?,
                u16_at(pkt, ihl + 6)?,
            ))
        }
        6 => {
            if *pkt.get(6)? != 58 || *pkt.get(40)? != 129 {
                return None;
            }
            let src: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
            Some((IpAddr::from(src), u16_at(pkt, 44)?, u16_at(pkt, 46)?))
        }
        _ => None,
    }
}

/// An echo request from `local` to `remote` (same family) with `payload`.
pub fn echo_request(
    local: IpAddr,
    remote: IpAddr,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> io::Result<Vec<u8>> {
    use etherparse::PacketBuilder;
    let mut out = Vec::with_capacity(64 + payload.len());
    let written = match (local, remote) {
        (IpAddr::V4(l), IpAddr::V4(r)) => PacketBuilder::ipv4(l.octets(), r.octets(), 64)
            .icmpv4_echo_request(id, seq)
            .write(&mut out, payload),
        (IpAddr::V6(l), IpAddr::V6(r)) => PacketBuilder::ipv6(l.octets(), r.octets(), 64)
            .icmpv6_echo_request(id, seq)
            .write(&mut out, payload),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ping from {local} to {remote}: the addresses' families differ"),
            ))
        }
    };
    written.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_to(request: &[u8]) -> Vec<u8> {
        // Swap the addresses and turn the request into a reply (checksums do not matter to
        // the matcher).
        let mut r = request.to_vec();
        if r[0] >> 4 == 4 {
            let (src, dst) = (r[12..16].to_vec(), r[16..20].to_vec());
            r[12..16].copy_from_slice(&dst);
            r[16..20].copy_from_slice(&src);
            r[20] = 0;
        } else {
            let (src, dst) = (r[8..24].to_vec(), r[24..40].to_vec());
            r[8..24].copy_from_slice(&dst);
            r[24..40].copy_from_slice(&src);
            r[40] = 129;
        }
        r
    }

    #[test]
    fn replies_reach_their_ping_once_and_nothing_else_is_taken() {
        for (local, remote) in [("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")] {
            let (local, remote): (IpAddr, IpAddr) =
                (local.parse().unwrap(), remote.parse().unwrap());
            let pings = Pings::default();
            let (id, seq, mut rx) = pings.register(remote).unwrap();
            let request = echo_request(local, remote, id, seq, b"hello").unwrap();
            assert!(!pings.take_reply(&request), "a request is not a reply");
            let reply = reply_to(&request);
            assert!(pings.take_reply(&reply));
            assert!(rx.try_recv().is_ok());
            assert!(!pings.take_reply(&reply), "answered once");
        }
    }

    #[test]
    fn garbage_and_truncated_packets_are_not_replies() {
        let pings = Pings::default();
        let _waiting = pings.register("10.0.0.2".parse().unwrap()).unwrap();
        for pkt in [
            &[][..],
            &[0x45],
            &[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1],
            &[0x60; 41],
        ] {
            assert!(!pings.take_reply(pkt));
        }
    }

    #[test]
    fn families_must_match() {
        let e = echo_request(
            "10.0.0.1".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            1,
            1,
            b"",
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
