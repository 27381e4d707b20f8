//! The packet pump: moves IP packets between a [`PacketDevice`] (the TUN, or a mock in
//! tests) and the userspace TCP/IP stack, in both directions, until the device fails or the
//! pump is aborted. It sits below the flows: the stack turns these packets into the TCP
//! streams and UDP datagrams that `flows.rs` hands to the router.
//!
//! Buffers: the device reads into buffers the pump owns and reuses. The stack's API takes
//! and gives each packet as an owned `Vec<u8>`; those come from the stack's
//! [`PacketPool`]: a packet read is copied into a pooled buffer (the stack gives it back once
//! smoltcp has consumed it), and a packet the stack emitted goes back to the pool once the
//! device has written it. So in a steady state no packet costs an allocation. Packets the
//! stack emits are sent in batches of what is ready at once, so a device with batch writes
//! (GRO) can merge them.

use super::loopback::Loopback;
use futures::{Sink, SinkExt, Stream, StreamExt};
use netstack_smoltcp::PacketPool;
use std::future::Future;
use std::io;
use std::sync::Arc;

/// Most packets handed to the device in one send.
pub const SEND_BATCH: usize = 64;

/// Where IP packets come from and go to: a TUN device, or an in-memory one in tests.
pub trait PacketDevice: Send + Sync + 'static {
    /// Reads at least one packet into `batch` (waiting for one), replacing what it held.
    fn recv<'a>(
        &'a self,
        batch: &'a mut RxBatch,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// Writes `packets`, in order. A packet the device refuses is dropped (as a network
    /// drops it); only a failure of the device itself is an error.
    fn send<'a>(
        &'a self,
        packets: &'a [Vec<u8>],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
}

/// Packets read from a device in one go: reused buffers and how much of each is a packet,
/// plus a scratch buffer for a device that reads a large unit and splits it (offload).
pub struct RxBatch {
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    count: usize,
    scratch: Vec<u8>,
}

impl RxBatch {
    /// Room for `slots` packets of up to `packet_size` bytes each, and `scratch` bytes.
    pub fn new(slots: usize, packet_size: usize, scratch: usize) -> RxBatch {
        let slots = slots.max(1);
        RxBatch {
            bufs: (0..slots).map(|_| vec![0u8; packet_size]).collect(),
            sizes: vec![0; slots],
            count: 0,
            scratch: vec![0u8; scratch],
        }
    }

    /// The scratch buffer, the packet buffers and their sizes, for a device to fill; then
    /// [`RxBatch::set_count`].
    pub fn slots(&mut self) -> (&mut [u8], &mut [Vec<u8>], &mut [usize]) {
        self.count = 0;
        (&mut self.scratch, &mut self.bufs, &mut self.sizes)
    }

    /// How many slots the device filled (capped at the number of slots).
    pub fn set_count(&mut self, n: usize) {
        self.count = n.min(self.bufs.len());
    }

    /// The packets read.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs
            .iter()
            .zip(&self.sizes)
            .take(self.count)
            .map(|(b, n)| &b[..(*n).min(b.len())])
    }
}

/// Runs both directions until the device fails or the stack goes away. `batch` is the
/// device's receive batch (one slot unless the device splits offloaded segments); `pool`
/// is the stack's packet pool; TCP packets to a `loopback` address are turned around and
/// written back instead of entering the stack.
pub async fn run<D, S>(
    device: Arc<D>,
    stack: S,
    pool: PacketPool,
    batch: RxBatch,
    loopback: Loopback,
) where
    D: PacketDevice,
    S: Stream<Item = io::Result<Vec<u8>>> + Sink<Vec<u8>, Error = io::Error> + Send + 'static,
{
    let (to_stack, from_stack) = stack.split();
    let inbound = device_to_stack(device.clone(), to_stack, pool.clone(), batch, loopback);
    let outbound = stack_to_device(device, from_stack, pool);
    tokio::select! {
        r = inbound => if let Err(e) = r {
            tracing::error!(target: "inbound", "tun: reading the device: {e}");
        },
        r = outbound => if let Err(e) = r {
            tracing::error!(target: "inbound", "tun: writing the device: {e}");
        },
    }
}

/// Device -> stack (or back to the device, for `loopback`). Ends on a device error; a
/// packet the stack rejects is dropped.
async fn device_to_stack<D, K>(
    device: Arc<D>,
    mut stack: K,
    pool: PacketPool,
    mut batch: RxBatch,
    loopback: Loopback,
) -> io::Result<()>
where
    D: PacketDevice,
    K: Sink<Vec<u8>, Error = io::Error> + Unpin,
{
    let mut back: Vec<Vec<u8>> = Vec::new();
    loop {
        match device.recv(&mut batch).await {
            Ok(()) => {}
            // A signal or a spurious wake-up: read again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
        for pkt in batch.packets() {
            if pkt.is_empty() {
                continue;
            }
            let mut pkt = pool.copy_of(pkt);
            if loopback.reflect(&mut pkt) {
                back.push(pkt);
                continue;
            }
            // The stack checks the IP header; a malformed packet is its error, not ours.
            if let Err(e) = stack.feed(pkt).await {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                tracing::debug!(target: "inbound", "tun: packet dropped: {e}");
            }
        }
        if let Err(e) = stack.flush().await {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            tracing::debug!(target: "inbound", "tun: packet dropped: {e}");
        }
        if !back.is_empty() {
            device.send(&back).await?;
            for written in back.drain(..) {
                pool.give(written);
            }
        }
    }
}

/// Stack -> device, in batches of what is ready without waiting.
async fn stack_to_device<D, T>(device: Arc<D>, mut stack: T, pool: PacketPool) -> io::Result<()>
where
    D: PacketDevice,
    T: Stream<Item = io::Result<Vec<u8>>> + Unpin,
{
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(SEND_BATCH);
    loop {
        let Some(first) = stack.next().await else {
            return Ok(());
        };
        batch.push(first?);
        while batch.len() < SEND_BATCH {
            match futures::FutureExt::now_or_never(stack.next()) {
                Some(Some(p)) => batch.push(p?),
                _ => break,
            }
        }
        device.send(&batch).await?;
        for written in batch.drain(..) {
            pool.give(written);
        }
    }
}
