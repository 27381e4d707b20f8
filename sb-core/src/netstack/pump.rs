//! The packet pump: moves IP packets between a [`PacketDevice`] (the TUN, a tunnel, or a
//! mock in tests) and the userspace TCP/IP stack, in both directions, until the device fails
//! or the pump is aborted. It sits below the flows: the stack turns these packets into the
//! TCP streams and UDP datagrams that `tcp.rs` and `udp.rs` hand on. ICMP echo replies to
//! the stack's own pings are taken out here, before the stack (`icmp.rs`).
//!
//! Buffers: the device reads into buffers the pump owns and reuses. The stack's API takes
//! and gives each packet as an owned `Vec<u8>`; those come from the stack's
//! [`PacketPool`]: a packet read is copied into a pooled buffer (the stack gives it back once
//! smoltcp has consumed it), and a packet the stack emitted goes back to the pool once the
//! device has written it. So in a steady state no packet costs an allocation. Packets the
//! stack emits are sent in batches of what is ready at once, so a device with batch writes
//! (GRO) can merge them.

use super::device::{PacketDevice, RxBatch};
use super::echo::EchoProxy;
use super::icmp::Pings;
use futures::{Sink, SinkExt, Stream, StreamExt};
use netstack_smoltcp::PacketPool;
use std::io;
use std::sync::Arc;

/// Most packets handed to the device in one send.
pub const SEND_BATCH: usize = 64;

/// Turns a packet from the device straight back to it instead of into the stack (the TUN's
/// `loopback_address`); `true` when it did (the packet was rewritten in place).
pub type Reflect = Box<dyn Fn(&mut [u8]) -> bool + Send + Sync>;

/// Runs both directions until the device fails or the stack goes away. `batch` is the
/// device's receive batch (one slot unless the device splits offloaded segments); `pool`
/// is the stack's packet pool; packets `reflect` turns around are written back instead of
/// entering the stack; echo replies to `pings` are handed to them. Returns the error that
/// ended it (`None`: the stack went away).
pub async fn run<D, S>(
    device: Arc<D>,
    stack: S,
    pool: PacketPool,
    batch: RxBatch,
    reflect: Option<Reflect>,
    pings: Arc<Pings>,
    echoes: Option<EchoProxy>,
) -> Option<io::Error>
where
    D: PacketDevice,
    S: Stream<Item = io::Result<Vec<u8>>> + Sink<Vec<u8>, Error = io::Error> + Send + 'static,
{
    let (to_stack, from_stack) = stack.split();
    let inbound = device_to_stack(
        device.clone(),
        to_stack,
        pool.clone(),
        batch,
        reflect,
        pings,
        echoes,
    );
    let outbound = stack_to_device(device, from_stack, pool);
    tokio::select! {
        r = inbound => r.err().map(|e| io::Error::new(e.kind(), format!("reading the device: {e}"))),
        r = outbound => r.err().map(|e| io::Error::new(e.kind(), format!("writing the device: {e}"))),
    }
}

/// Device -> stack (or back to the device, for `reflect`; or to a waiting ping). Ends on a
/// device error; a packet the stack rejects is dropped.
async fn device_to_stack<D, K>(
    device: Arc<D>,
    mut stack: K,
    pool: PacketPool,
    mut batch: RxBatch,
    reflect: Option<Reflect>,
    pings: Arc<Pings>,
    echoes: Option<EchoProxy>,
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
            if pings.take_reply(pkt) {
                continue;
            }
            if echoes.as_ref().is_some_and(|e| e.take(pkt)) {
                continue;
            }
            let mut pkt = pool.copy_of(pkt);
            if reflect.as_ref().is_some_and(|r| r(&mut pkt)) {
                back.push(pkt);
                continue;
            }
            // The stack checks the IP header; a malformed packet is its error, not ours.
            if let Err(e) = stack.feed(pkt).await {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                tracing::debug!(target: "netstack", "packet dropped: {e}");
            }
        }
        if let Err(e) = stack.flush().await {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            tracing::debug!(target: "netstack", "packet dropped: {e}");
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
