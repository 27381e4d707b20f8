//! Outgoing data messages collected into runs for one send: when the stack has several
//! packets queued for a peer (a bulk TCP flow), their encrypted datagrams are laid end to
//! end and handed to the outer socket at once (`send_segments`: one `sendmsg` with UDP GSO on
//! a direct socket), instead of one system call each. A run is datagrams of one size to one
//! address, the last possibly shorter, within the kernel's GSO bounds. The driver flushes the
//! run before it waits for anything, so batching adds no delay.

use sb_core::adapter::BoxPacketConn;
use sb_core::flow::Destination;
use sb_core::udp::{GSO_MAX_BYTES, GSO_MAX_SEGMENTS};
use std::net::SocketAddr;
use tracing::debug;

/// A run of datagrams waiting to leave.
pub struct Batch {
    buf: Vec<u8>,
    to: Option<SocketAddr>,
    segment: usize,
    count: usize,
    /// A shorter datagram ended the run: nothing more may follow it.
    closed: bool,
}

impl Batch {
    /// An empty run.
    pub fn new() -> Batch {
        Batch {
            buf: Vec::with_capacity(GSO_MAX_BYTES),
            to: None,
            segment: 0,
            count: 0,
            closed: false,
        }
    }

    /// Adds `msg` for `to`, sending the run first when `msg` cannot join it.
    pub async fn push(&mut self, outer: &BoxPacketConn, msg: &[u8], to: SocketAddr) {
        let fits = self.count == 0
            || (self.to == Some(to)
                && !self.closed
                && msg.len() <= self.segment
                && self.count < GSO_MAX_SEGMENTS
                && self.buf.len() + msg.len() <= GSO_MAX_BYTES);
        if !fits {
            self.flush(outer).await;
        }
        if self.count == 0 {
            self.to = Some(to);
            self.segment = msg.len();
        }
        self.buf.extend_from_slice(msg);
        self.count += 1;
        self.closed = msg.len() < self.segment;
    }

    /// Sends what is collected.
    pub async fn flush(&mut self, outer: &BoxPacketConn) {
        let Some(to) = self.to.take() else {
            return;
        };
        let dest = Destination::from_socket(to);
        let sent = if self.count == 1 {
            outer.send_to(&self.buf, &dest).await
        } else {
            outer.send_segments(&self.buf, self.segment, &dest).await
        };
        if let Err(e) = sent {
            debug!(target: "endpoint", "send {} datagram(s) to {to}: {e}", self.count);
        }
        self.buf.clear();
        self.count = 0;
        self.closed = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use sb_core::adapter::{BoxFuture, PacketConn};
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Records each send: (bytes, segment size or 0 for a single datagram, destination).
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Vec<u8>, usize, Destination)>>);

    impl PacketConn for Recorder {
        fn send_to<'a>(
            &'a self,
            buf: &'a [u8],
            dest: &'a Destination,
        ) -> BoxFuture<'a, io::Result<()>> {
            self.0.lock().unwrap().push((buf.to_vec(), 0, dest.clone()));
            Box::pin(async { Ok(()) })
        }
        fn recv_from<'a>(
            &'a self,
            _: &'a mut [u8],
        ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
            Box::pin(std::future::pending())
        }
        fn send_segments<'a>(
            &'a self,
            buf: &'a [u8],
            segment: usize,
            dest: &'a Destination,
        ) -> BoxFuture<'a, io::Result<()>> {
            self.0
                .lock()
                .unwrap()
                .push((buf.to_vec(), segment, dest.clone()));
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn runs_split_where_the_address_or_size_changes() {
        let rec = Arc::new(Recorder::default());
        let outer: BoxPacketConn = rec.clone();
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let mut batch = Batch::new();
        for _ in 0..3 {
            batch.push(&outer, &[1; 100], a).await;
        }
        batch.push(&outer, &[2; 60], a).await; // a shorter last one joins, and ends the run
        batch.push(&outer, &[3; 100], a).await;
        batch.push(&outer, &[4; 100], b).await;
        batch.flush(&outer).await;
        batch.flush(&outer).await; // nothing left: no send
        let sends = rec.0.lock().unwrap();
        let shape: Vec<(usize, usize, String)> = sends
            .iter()
            .map(|(buf, seg, d)| (buf.len(), *seg, d.to_string()))
            .collect();
        assert_eq!(
            shape,
            [
                (360, 100, a.to_string()),
                (100, 0, a.to_string()),
                (100, 0, b.to_string())
            ]
        );
        assert_eq!(&sends[0].0[300..], &[2; 60][..]);
    }

    #[tokio::test]
    async fn a_run_stops_at_the_gso_bounds() {
        let rec = Arc::new(Recorder::default());
        let outer: BoxPacketConn = rec.clone();
        let to: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut batch = Batch::new();
        for _ in 0..GSO_MAX_SEGMENTS + 1 {
            batch.push(&outer, &[0; 10], to).await;
        }
        batch.flush(&outer).await;
        let counts: Vec<usize> = rec
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _, _)| b.len() / 10)
            .collect();
        assert_eq!(counts, [GSO_MAX_SEGMENTS, 1]);
        let big = vec![0u8; 1500];
        let mut batch = Batch::new();
        for _ in 0..50 {
            batch.push(&outer, &big, to).await;
        }
        batch.flush(&outer).await;
        assert!(rec
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|(b, _, _)| b.len() <= GSO_MAX_BYTES));
    }
}
