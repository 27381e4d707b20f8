//! ICMP echo requests from the device routed like flows: instead of the stack answering
//! every ping itself, the pump hands each echo request to the stack's [`FlowSource`] as an
//! ICMP flow ([`FlowHandler::handle_ping`]); the echo reply is written to the device only
//! when the handler says so (the ping came back through the chosen outbound, or the
//! outbound cannot carry ICMP and the ping is answered here, as before). Requests being
//! routed at once are bounded; past the bound, new ones are dropped (ping retries).

use super::flows::FlowSource;
use crate::adapter::{FlowHandler, PingVerdict};
use crate::flow::Network;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Echo requests being routed at once, at most.
pub const MAX_ECHOES_IN_FLIGHT: usize = 1024;

/// Routes the device's echo requests.
pub(super) struct EchoProxy {
    source: FlowSource,
    inject: mpsc::Sender<Vec<u8>>,
    in_flight: Arc<AtomicUsize>,
}

impl EchoProxy {
    /// Echo replies go to the device through `inject`.
    pub(super) fn new(source: FlowSource, inject: mpsc::Sender<Vec<u8>>) -> EchoProxy {
        EchoProxy {
            source,
            inject,
            in_flight: Arc::default(),
        }
    }

    /// Takes `pkt` if it is an echo request (it is then routed in the background, or
    /// dropped past the bound); `false` leaves it to the stack.
    pub(super) fn take(&self, pkt: &[u8]) -> bool {
        let Some(request) = EchoRequest::parse(pkt) else {
            return false;
        };
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_ECHOES_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return true;
        }
        let flow = self.source.flow(
            Network::Icmp,
            SocketAddr::new(request.src, 0),
            SocketAddr::new(request.dst, 0),
        );
        let handler: Arc<dyn FlowHandler> = self.source.handler.clone();
        let (inject, in_flight) = (self.inject.clone(), self.in_flight.clone());
        tokio::spawn(async move {
            if handler.handle_ping(flow).await == PingVerdict::Answer {
                if let Some(reply) = request.reply() {
                    let _ = inject.send(reply).await;
                }
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
        true
    }
}

/// An ICMP or ICMPv6 echo request (IPv6 without extension headers, IPv4 unfragmented).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct EchoRequest {
    src: IpAddr,
    dst: IpAddr,
    id: u16,
    seq: u16,
    payload: Vec<u8>,
}

impl EchoRequest {
    /// `pkt` as an echo request, if it is one.
    pub(super) fn parse(pkt: &[u8]) -> Option<EchoRequest> {
        let u16_at = |i: usize| Some(u16::from_be_bytes([*pkt.get(i)?, *pkt.get(i + 1)?]));
        match pkt.first()? >> 4 {
            4 => {
                let ihl = usize::from(pkt.first()? & 0x0f) * 4;
                let total = usize::from(u16_at(2)?);
                // ICMP, type 8; a fragment (more fragments, or an offset) is not whole.
                if ihl < 20 || *pkt.get(9)? != 1 || *pkt.get(ihl)? != 8 || u16_at(6)? & 0x3fff != 0
                {
                    return None;
                }
                let src: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
                let dst: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
                Some(EchoRequest {
                    src: src.into(),
                    dst: dst.into(),
                    id: u16_at(ihl + 4)?,
                    seq: u16_at(ihl + 6)?,
                    payload: pkt.get(ihl + 8..total.min(pkt.len()))?.to_vec(),
                })
            }
            6 => {
                // Next header ICMPv6, type 128.
                if *pkt.get(6)? != 58 || *pkt.get(40)? != 128 {
                    return None;
                }
                let len = usize::from(u16_at(4)?);
                let src: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
                let dst: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
                Some(EchoRequest {
                    src: src.into(),
                    dst: dst.into(),
                    id: u16_at(44)?,
                    seq: u16_at(46)?,
                    payload: pkt.get(48..(40 + len).min(pkt.len()))?.to_vec(),
                })
            }
            _ => None,
        }
    }

    /// The echo reply: from the request's destination, with its identifier, sequence
    /// number and data.
    pub(super) fn reply(&self) -> Option<Vec<u8>> {
        use etherparse::PacketBuilder;
        let mut out = Vec::with_capacity(48 + self.payload.len());
        let written = match (self.dst, self.src) {
            (IpAddr::V4(from), IpAddr::V4(to)) => {
                PacketBuilder::ipv4(from.octets(), to.octets(), 64)
                    .icmpv4_echo_reply(self.id, self.seq)
                    .write(&mut out, &self.payload)
            }
            (IpAddr::V6(from), IpAddr::V6(to)) => {
                PacketBuilder::ipv6(from.octets(), to.octets(), 64)
                    .icmpv6_echo_reply(self.id, self.seq)
                    .write(&mut out, &self.payload)
            }
            _ => return None,
        };
        written.ok().map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn requests_parse_and_replies_mirror_them() {
        for (a, b) in [("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")] {
            let (a, b): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
            let pkt = super::super::icmp::echo_request(a, b, 7, 9, b"data").unwrap();
            let req = EchoRequest::parse(&pkt).unwrap();
            assert_eq!((req.src, req.dst, req.id, req.seq), (a, b, 7, 9));
            assert_eq!(req.payload, b"data");
            let reply = req.reply().unwrap();
            // A reply is no request, and says what the request said, the other way round.
            assert!(EchoRequest::parse(&reply).is_none());
            let sliced = etherparse::SlicedPacket::from_ip(&reply).unwrap();
            assert!(matches!(
                sliced.transport,
                Some(etherparse::TransportSlice::Icmpv4(_) | etherparse::TransportSlice::Icmpv6(_))
            ));
        }
        assert!(EchoRequest::parse(b"").is_none());
        assert!(EchoRequest::parse(&[0x45; 19]).is_none());
    }
}
