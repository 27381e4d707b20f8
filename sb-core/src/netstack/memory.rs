//! An in-memory [`PacketDevice`]: packets come from a channel and go to another. For tests of
//! the stack and of what sits on it (the TUN's flows, an endpoint's dialing side), and for
//! two stacks joined in one process. Its queues are unbounded: it is not for packets from the
//! outside world.

use super::device::{PacketDevice, RxBatch};
use std::io;
use tokio::sync::{mpsc, Mutex};

/// A device whose packets come from `incoming` and go to `outgoing`.
pub struct MemoryDevice {
    incoming: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    /// `None`: a silent link, whatever is sent is dropped.
    outgoing: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

impl MemoryDevice {
    /// A device reading from `incoming`, writing to `outgoing` (`None`: writes vanish).
    pub fn new(
        incoming: mpsc::UnboundedReceiver<Vec<u8>>,
        outgoing: Option<mpsc::UnboundedSender<Vec<u8>>>,
    ) -> MemoryDevice {
        MemoryDevice {
            incoming: Mutex::new(incoming),
            outgoing,
        }
    }

    /// Two devices joined like the ends of a cable: what one sends the other receives.
    pub fn pair() -> (MemoryDevice, MemoryDevice) {
        let (a_tx, a_rx) = mpsc::unbounded_channel();
        let (b_tx, b_rx) = mpsc::unbounded_channel();
        (
            MemoryDevice::new(a_rx, Some(b_tx)),
            MemoryDevice::new(b_rx, Some(a_tx)),
        )
    }
}

impl PacketDevice for MemoryDevice {
    async fn recv(&self, batch: &mut RxBatch) -> io::Result<()> {
        let pkt = self
            .incoming
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "memory device closed"))?;
        let (_, bufs, sizes) = batch.slots();
        let (Some(buf), Some(size)) = (bufs.first_mut(), sizes.first_mut()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty batch"));
        };
        let n = pkt.len().min(buf.len());
        buf[..n].copy_from_slice(&pkt[..n]);
        *size = n;
        batch.set_count(1);
        Ok(())
    }

    async fn send(&self, packets: &[Vec<u8>]) -> io::Result<()> {
        if let Some(out) = &self.outgoing {
            for p in packets {
                if out.send(p.clone()).is_err() {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "memory device's far end closed",
                    ));
                }
            }
        }
        Ok(())
    }
}
