//! The tunnel as the userspace stack's packet device: packets the driver decrypted come in
//! on one bounded queue, packets the stack sends go to the driver on another, to be
//! encrypted. Towards the driver the stack waits for room (backpressure: dropping there
//! made the stack's TCP senders collapse into retransmissions); towards the stack the
//! driver drops when the queue is full, as a congested link does, so the driver (which
//! also reads the network and runs the timers) never waits on the stack.

use sb_core::netstack::{PacketDevice, RxBatch};
use std::io;
use tokio::sync::{mpsc, Mutex};

/// Packets queued in each direction between the stack and the driver.
pub const QUEUE: usize = 1024;

/// The stack's side of the tunnel.
pub struct TunnelDevice {
    from_driver: Mutex<mpsc::Receiver<Vec<u8>>>,
    to_driver: mpsc::Sender<Vec<u8>>,
}

impl TunnelDevice {
    /// A device reading what the driver decrypted and handing it what to encrypt.
    pub fn new(
        from_driver: mpsc::Receiver<Vec<u8>>,
        to_driver: mpsc::Sender<Vec<u8>>,
    ) -> TunnelDevice {
        TunnelDevice {
            from_driver: Mutex::new(from_driver),
            to_driver,
        }
    }
}

impl PacketDevice for TunnelDevice {
    async fn recv(&self, batch: &mut RxBatch) -> io::Result<()> {
        let mut rx = self.from_driver.lock().await;
        let first = rx
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "the tunnel stopped"))?;
        let (_, bufs, sizes) = batch.slots();
        let mut n = 0;
        let mut next = Some(first);
        while let Some(pkt) = next.take() {
            let (Some(buf), Some(size)) = (bufs.get_mut(n), sizes.get_mut(n)) else {
                break;
            };
            let len = pkt.len().min(buf.len());
            buf[..len].copy_from_slice(&pkt[..len]);
            *size = len;
            n += 1;
            if n < bufs.len() {
                next = rx.try_recv().ok();
            }
        }
        batch.set_count(n);
        Ok(())
    }

    async fn send(&self, packets: &[Vec<u8>]) -> io::Result<()> {
        for p in packets {
            self.to_driver
                .send(p.clone())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the tunnel stopped"))?;
        }
        Ok(())
    }
}
