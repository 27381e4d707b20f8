//! What the userspace stack reads packets from and writes them to: a [`PacketDevice`] (the
//! TUN device, a WireGuard tunnel, or an in-memory device in tests) and the reusable receive
//! batch it fills.

use std::future::Future;
use std::io;

/// Where IP packets come from and go to: a TUN device, a tunnel, or an in-memory one in
/// tests.
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
