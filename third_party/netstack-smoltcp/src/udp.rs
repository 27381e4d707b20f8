use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use etherparse::PacketBuilder;
use futures::{ready, Sink, SinkExt, Stream};
use smoltcp::wire::UdpPacket;
use tokio::sync::mpsc::{Receiver, Sender};
use tokio_util::sync::PollSender;
use tracing::{error, trace};

use crate::{
    packet::{AnyIpPktFrame, IpPacket},
    pool::PacketPool,
};

pub type UdpMsg = (
    Vec<u8>,    /* payload */
    SocketAddr, /* local */
    SocketAddr, /* remote */
);

// sb: both halves take their buffers from the stack's packet pool and give back the
// ones they are done with (the IP frame a datagram came in, the payload a reply was built
// from), so a caller that gives its payloads back too moves datagrams without allocating.
pub struct UdpSocket {
    udp_rx: Receiver<AnyIpPktFrame>,
    stack_tx: PollSender<AnyIpPktFrame>,
    pool: PacketPool,
}

impl UdpSocket {
    pub(super) fn new(
        udp_rx: Receiver<AnyIpPktFrame>,
        stack_tx: Sender<AnyIpPktFrame>,
        pool: PacketPool,
    ) -> Self {
        Self {
            udp_rx,
            stack_tx: PollSender::new(stack_tx),
            pool,
        }
    }

    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (
            ReadHalf {
                udp_rx: self.udp_rx,
                pool: self.pool.clone(),
            },
            WriteHalf {
                stack_tx: self.stack_tx,
                pool: self.pool,
            },
        )
    }
}

pub struct ReadHalf {
    udp_rx: Receiver<AnyIpPktFrame>,
    pool: PacketPool,
}

pub struct WriteHalf {
    stack_tx: PollSender<AnyIpPktFrame>,
    pool: PacketPool,
}

impl Stream for ReadHalf {
    type Item = UdpMsg;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let pool = &this.pool;
        this.udp_rx.poll_recv(cx).map(|item| {
            item.and_then(|frame| {
                let msg = Self::datagram(&frame, pool);
                pool.give(frame);
                msg
            })
        })
    }
}

impl ReadHalf {
    /// The payload (in a buffer from `pool`) and the ends of the UDP datagram in `frame`.
    fn datagram(frame: &[u8], pool: &PacketPool) -> Option<UdpMsg> {
        let packet = match IpPacket::new_checked(frame) {
            Ok(p) => p,
            Err(err) => {
                error!("invalid IP packet: {}", err);
                return None;
            }
        };

        let src_ip = packet.src_addr();
        let dst_ip = packet.dst_addr();
        let payload = packet.payload();

        let packet = match UdpPacket::new_checked(payload) {
            Ok(p) => p,
            Err(err) => {
                // sb: never a payload in a log line (it is the user's data).
                error!("invalid UDP packet: {err}, src_ip: {src_ip}, dst_ip: {dst_ip}");
                return None;
            }
        };
        let src_port = packet.src_port();
        let dst_port = packet.dst_port();

        let src_addr = SocketAddr::new(src_ip, src_port);
        let dst_addr = SocketAddr::new(dst_ip, dst_port);

        trace!("created UDP socket for {} <-> {}", src_addr, dst_addr);

        Some((pool.copy_of(packet.payload()), src_addr, dst_addr))
    }
}

impl Sink<UdpMsg> for WriteHalf {
    type Error = std::io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match ready!(self.stack_tx.poll_ready_unpin(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(err) => Poll::Ready(Err(std::io::Error::other(err))),
        }
    }

    fn start_send(mut self: Pin<&mut Self>, item: UdpMsg) -> Result<(), Self::Error> {
        use std::io::{Error, ErrorKind::InvalidData};
        let (data, src_addr, dst_addr) = item;

        if data.is_empty() {
            return Ok(());
        }

        let builder = match (src_addr, dst_addr) {
            (SocketAddr::V4(src), SocketAddr::V4(dst)) => {
                PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 20)
                    .udp(src_addr.port(), dst_addr.port())
            }
            (SocketAddr::V6(src), SocketAddr::V6(dst)) => {
                PacketBuilder::ipv6(src.ip().octets(), dst.ip().octets(), 20)
                    .udp(src_addr.port(), dst_addr.port())
            }
            _ => {
                return Err(Error::new(InvalidData, "src or destination type unmatch"));
            }
        };

        let mut ip_packet_writer = self.pool.take();
        ip_packet_writer.reserve(builder.size(data.len()));
        let written = builder.write(&mut ip_packet_writer, &data);
        self.pool.give(data);
        written.map_err(|err| Error::other(format!("PacketBuilder::write: {err}")))?;

        match self.stack_tx.start_send_unpin(ip_packet_writer) {
            Ok(()) => Ok(()),
            Err(err) => Err(Error::other(format!("send error: {err}"))),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        use std::io::Error;
        match ready!(self.stack_tx.poll_flush_unpin(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(err) => Poll::Ready(Err(Error::other(format!("flush error: {err}")))),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        use std::io::Error;
        match ready!(self.stack_tx.poll_close_unpin(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(err) => Poll::Ready(Err(Error::other(format!("close error: {err}")))),
        }
    }
}
