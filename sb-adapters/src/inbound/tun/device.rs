//! The TUN device itself: created with tun-rs from the inbound's settings (name, MTU,
//! addresses), and read and written as a [`PacketDevice`] by the pump. The kernel removes the
//! device when its descriptor closes, so dropping [`TunDevice`] (or sb dying) leaves nothing
//! behind.
//!
//! On Linux with an MTU below [`OFFLOAD_BELOW_MTU`] the device is opened with offload
//! (`IFF_VNET_HDR`, as Go does under the same condition): the kernel hands over up to 64 KiB
//! TCP segments that tun-rs splits into MTU-sized packets (`recv_multiple`), and packets the
//! stack sends in one batch are merged back (GRO, `send_multiple`).

use super::settings::{Settings, OFFLOAD_BELOW_MTU};
use sb_core::netstack::{PacketDevice, RxBatch};
use std::io;

/// A TUN device opened for the pump.
pub struct TunDevice {
    dev: tun_rs::AsyncDevice,
    name: String,
    mtu: u16,
    #[cfg(target_os = "linux")]
    offload: Option<tokio::sync::Mutex<Offload>>,
    /// Reads dropped because they could not be split (see `dropped_reads`).
    dropped: std::sync::atomic::AtomicU64,
}

/// The write side's reused state with offload: the GRO table and packet copies with room
/// for the virtio header in front. (The read side's buffers live in its [`RxBatch`].)
#[cfg(target_os = "linux")]
struct Offload {
    gro: tun_rs::GROTable,
    bufs: Vec<Vec<u8>>,
}

/// Room left in front of each packet written with offload (tun-rs writes the virtio header
/// there).
#[cfg(target_os = "linux")]
const HEADROOM: usize = tun_rs::VIRTIO_NET_HDR_LEN;

impl TunDevice {
    /// Creates the device and brings it up with its addresses.
    pub fn open(s: &Settings) -> io::Result<TunDevice> {
        let mut b = tun_rs::DeviceBuilder::new().mtu(s.mtu);
        if let Some(name) = &s.name {
            b = b.name(name.clone());
        }
        if let Some((a, len)) = s.inet4.first() {
            b = b.ipv4(*a, *len, None);
        }
        for (a, len) in &s.inet6 {
            b = b.ipv6(*a, *len);
        }
        #[cfg(target_os = "linux")]
        let want_offload = s.mtu < OFFLOAD_BELOW_MTU;
        #[cfg(target_os = "linux")]
        {
            b = b.offload(want_offload);
        }
        let dev = b.build_async()?;
        for (a, len) in s.inet4.iter().skip(1) {
            dev.add_address_v4(*a, *len)?;
        }
        let name = dev.name().unwrap_or_default();
        Ok(TunDevice {
            #[cfg(target_os = "linux")]
            offload: (want_offload && dev.tcp_gso()).then(|| {
                tokio::sync::Mutex::new(Offload {
                    gro: tun_rs::GROTable::new(),
                    bufs: Vec::new(),
                })
            }),
            dev,
            name,
            mtu: s.mtu,
            dropped: Default::default(),
        })
    }

    /// Counts a read dropped because tun-rs could not split it: the first is a warning, the
    /// rest go to debug (a sender can repeat it at will).
    fn dropped_reads(&self, e: &io::Error) {
        let n = self
            .dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n == 0 {
            tracing::warn!(target: "inbound", "tun {}: dropped a packet the device could not split: {e} (further ones are logged at debug)", self.name);
        } else {
            tracing::debug!(target: "inbound", "tun {}: dropped a packet the device could not split ({} so far): {e}", self.name, n + 1);
        }
    }

    /// The interface name the kernel gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether packets move with GSO/GRO offload.
    pub fn offloaded(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.offload.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// The receive batch this device needs: one packet at a time, or with offload up to 128
    /// MTU-sized slots (Go's batch size; at most about 2 MiB) for the packets one offloaded
    /// read splits into, plus the buffer it is read into whole. 128 slots hold any UDP GSO
    /// send (Linux sends at most 64 segments); a TCP segment cut finer than the slots is
    /// dropped by `recv`, as Go drops it.
    pub fn rx_batch(&self) -> RxBatch {
        let mtu = usize::from(self.mtu);
        if self.offloaded() {
            let slots = (2 * 1024 * 1024 / mtu).clamp(4, 128);
            RxBatch::new(slots, mtu, HEADROOM + 65_535)
        } else {
            RxBatch::new(1, mtu, 0)
        }
    }
}

/// A write error that means the device is gone, not that one packet was refused.
fn device_gone(e: &io::Error) -> bool {
    use nix::libc;
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF) | Some(libc::EBADFD) | Some(libc::ENODEV) | Some(libc::ENXIO)
    )
}

impl PacketDevice for TunDevice {
    async fn recv(&self, batch: &mut RxBatch) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.offload.is_some() {
            loop {
                let (original, bufs, sizes) = batch.slots();
                match self.dev.recv_multiple(original, bufs, sizes, 0).await {
                    Ok(n) => {
                        batch.set_count(n);
                        return Ok(());
                    }
                    // tun-rs could not split what it read (more segments than slots, a bad
                    // virtio header): that read is one bad packet, dropped as Go drops it
                    // (wireguard-go's "dropped some packets from multi-segment read"). Only an
                    // error of the OS is the device's.
                    Err(e) if e.raw_os_error().is_none() => {
                        self.dropped_reads(&e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let (_, bufs, sizes) = batch.slots();
        let (Some(buf), Some(size)) = (bufs.first_mut(), sizes.first_mut()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty batch"));
        };
        *size = self.dev.recv(buf).await?;
        batch.set_count(1);
        Ok(())
    }

    async fn send(&self, packets: &[Vec<u8>]) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(off) = &self.offload {
            // The pump's writer sends (and, rarely, the stack's own pings): the lock is all
            // but uncontended.
            let mut off = off.lock().await;
            let off = &mut *off;
            if off.bufs.len() < packets.len() {
                off.bufs.resize_with(packets.len(), Vec::new);
            }
            for (buf, pkt) in off.bufs.iter_mut().zip(packets) {
                buf.clear();
                buf.resize(HEADROOM, 0);
                buf.extend_from_slice(pkt);
            }
            let bufs = &mut off.bufs[..packets.len()];
            return match self.dev.send_multiple(&mut off.gro, bufs, HEADROOM).await {
                Err(e) if device_gone(&e) => Err(e),
                Err(e) => {
                    tracing::debug!(target: "inbound", "tun: packet dropped by the device: {e}");
                    Ok(())
                }
                Ok(_) => Ok(()),
            };
        }
        for pkt in packets {
            match self.dev.send(pkt).await {
                Err(e) if device_gone(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(target: "inbound", "tun: packet dropped by the device: {e}")
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }
}
