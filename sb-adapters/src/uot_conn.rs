//! UoT on a live stream: the [`PacketConn`] both ends of sb build on a TCP stream that carries
//! UDP (the `socks` outbound's `udp_over_tcp` client and the proxy inbounds' server), as
//! sing-box uses one connection type for both. The framing itself is [`crate::proto::uot`];
//! this file only moves its frames through a buffer, so a frame split across reads or many
//! frames in one read are both handled, and a datagram is held in memory at most once.

use crate::proto::uot::{self, Framing, Parse};
use sb_core::adapter::{BoxFuture, BoxStream, PacketConn};
use sb_core::flow::Destination;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Mutex;

/// How much is read from the stream at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The read side: bytes received but not yet parsed.
pub(crate) struct FrameReader {
    stream: ReadHalf<BoxStream>,
    buf: Vec<u8>,
    /// Where the unparsed bytes start in `buf`.
    start: usize,
}

impl FrameReader {
    /// Reads until `parse` finds a whole message; returns it and its bytes. Every parser it
    /// is used with bounds what it waits for (a request's address, one 64 KiB datagram).
    pub(crate) async fn next<T>(
        &mut self,
        parse: impl Fn(&[u8]) -> Parse<T>,
    ) -> io::Result<(T, &[u8])> {
        loop {
            let pending = self.buf.get(self.start..).unwrap_or_default();
            match parse(pending) {
                Ok(Some((value, used))) => {
                    let at = self.start;
                    self.start += used;
                    let bytes = self.buf.get(at..at + used).unwrap_or_default();
                    return Ok((value, bytes));
                }
                Ok(None) => self.fill().await?,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }

    /// Reads more bytes, first dropping those already parsed.
    async fn fill(&mut self) -> io::Result<()> {
        let partial = self.start < self.buf.len();
        self.buf.drain(..self.start.min(self.buf.len()));
        self.start = 0;
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = self.stream.read(&mut self.buf[old..]).await;
        self.buf.truncate(old + *n.as_ref().unwrap_or(&0));
        match n? {
            0 if partial => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "UoT: stream closed inside a datagram",
            )),
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "UoT: stream closed",
            )),
            _ => Ok(()),
        }
    }
}

/// Splits `stream` for [`UotConn`]; a server reads the request from the reader first.
pub(crate) fn split(stream: BoxStream) -> (FrameReader, WriteHalf<BoxStream>) {
    let (r, w) = tokio::io::split(stream);
    (
        FrameReader {
            stream: r,
            buf: Vec::new(),
            start: 0,
        },
        w,
    )
}

/// A UDP flow carried on one stream.
pub(crate) struct UotConn {
    reader: Mutex<FrameReader>,
    writer: Mutex<WriteHalf<BoxStream>>,
    framing: Framing,
    /// In connect framing: the peer of every datagram.
    peer: Destination,
}

impl UotConn {
    /// A conn over the split stream. `peer` is the request's destination; only connect
    /// framing uses it.
    pub(crate) fn new(
        reader: FrameReader,
        writer: WriteHalf<BoxStream>,
        framing: Framing,
        peer: Destination,
    ) -> UotConn {
        UotConn {
            reader: Mutex::new(reader),
            writer: Mutex::new(writer),
            framing,
            peer,
        }
    }
}

impl PacketConn for UotConn {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let packet = uot::encode_packet(self.framing, dest, buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            self.writer.lock().await.write_all(&packet).await
        })
    }

    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move {
            let framing = self.framing;
            let mut reader = self.reader.lock().await;
            let (frame, bytes) = reader.next(|b| uot::packet(b, framing)).await?;
            let payload = bytes.get(frame.payload).unwrap_or_default();
            let Some(out) = buf.get_mut(..payload.len()) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "UoT: datagram larger than the buffer",
                ));
            };
            out.copy_from_slice(payload);
            Ok((payload.len(), frame.address.unwrap_or(self.peer.clone())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::uot::{encode_packet, encode_request, request, Request};

    /// Two ends of a loopback TCP connection: ours boxed as the adapters see it.
    async fn pair() -> (BoxStream, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = tokio::net::TcpStream::connect(l.local_addr().unwrap());
        let (a, b) = tokio::join!(a, l.accept());
        (Box::new(a.unwrap()), b.unwrap().0)
    }

    #[tokio::test]
    async fn frames_split_across_writes_and_packed_in_one_are_read_in_order() {
        let (ours, mut theirs) = pair().await;
        let (mut reader, writer) = split(ours);
        let req = Request {
            is_connect: false,
            destination: Destination::from_host("10.0.0.1", 53),
        };
        let mut wire = encode_request(&req).unwrap();
        let dests: Vec<Destination> = (0..50)
            .map(|i| Destination::from_host(&format!("10.0.0.{i}"), 1000 + i))
            .collect();
        for (i, d) in dests.iter().enumerate() {
            wire.extend(encode_packet(Framing::Addressed, d, &vec![i as u8; i * 700]).unwrap());
        }
        // Written in odd-sized pieces, so frames straddle reads.
        let writer_task = tokio::spawn(async move {
            for piece in wire.chunks(997) {
                theirs.write_all(piece).await.unwrap();
            }
            theirs
        });
        let (got, _) = reader.next(request).await.unwrap();
        assert_eq!(got, req);
        let conn = UotConn::new(reader, writer, Framing::Addressed, got.destination);
        let mut buf = vec![0u8; 65_535];
        for (i, d) in dests.iter().enumerate() {
            let (n, from) = conn.recv_from(&mut buf).await.unwrap();
            assert_eq!((&from, n), (d, i * 700));
            assert!(buf[..n].iter().all(|&b| b == i as u8));
        }
        // The peer closes at a frame boundary: a clean, named end.
        drop(writer_task.await.unwrap());
        let e = conn.recv_from(&mut buf).await.unwrap_err();
        assert_eq!(e.to_string(), "UoT: stream closed");
    }

    #[tokio::test]
    async fn connect_framing_names_the_request_peer_both_ways() {
        let (ours, mut theirs) = pair().await;
        let (reader, writer) = split(ours);
        let peer = Destination::from_host("192.0.2.7", 5353);
        let conn = UotConn::new(reader, writer, Framing::Connect, peer.clone());
        theirs.write_all(&[0, 2, b'h', b'i']).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(conn.recv_from(&mut buf).await.unwrap(), (2, peer.clone()));
        // Replies carry no address, whoever sent them.
        conn.send_to(b"yo", &Destination::from_host("1.1.1.1", 1))
            .await
            .unwrap();
        let mut back = [0u8; 4];
        theirs.read_exact(&mut back).await.unwrap();
        assert_eq!(back, [0, 2, b'y', b'o']);
    }

    #[tokio::test]
    async fn bad_and_truncated_frames_end_the_flow_with_a_named_error() {
        let mut buf = vec![0u8; 65_535];
        for (wire, want) in [
            (&[9u8, 0, 0][..], "UoT: unknown address family 9"),
            (&[2, 0, 0, 1, 0, 0][..], "UoT: malformed domain (empty)"),
            (
                &[0, 1, 2, 3, 4, 0, 53, 0, 9, b'x'][..],
                "UoT: stream closed inside a datagram",
            ),
        ] {
            let (ours, mut theirs) = pair().await;
            let (reader, writer) = split(ours);
            let conn = UotConn::new(
                reader,
                writer,
                Framing::Addressed,
                Destination::from_host("1.1.1.1", 1),
            );
            theirs.write_all(wire).await.unwrap();
            drop(theirs);
            let e = conn.recv_from(&mut buf).await.unwrap_err();
            assert_eq!(e.to_string(), want);
        }
        // A buffer too small for the datagram is an error, not a panic.
        let (ours, mut theirs) = pair().await;
        let (reader, writer) = split(ours);
        let conn = UotConn::new(
            reader,
            writer,
            Framing::Connect,
            Destination::from_host("1.1.1.1", 1),
        );
        theirs
            .write_all(&[0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
        assert!(conn.recv_from(&mut [0u8; 4]).await.is_err());
    }
}
