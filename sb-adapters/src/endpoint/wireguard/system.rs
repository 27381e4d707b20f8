//! `system: true`: the tunnel as a kernel TUN interface (named `name`, or the first free
//! `wgN`) carrying the endpoint's addresses and MTU, as Go's endpoint makes it.
//!
//! - What the host sends into the interface (its own sockets, and sb's flows routed to the
//!   endpoint, which are dialed by the kernel bound to the interface) is read here and
//!   handed to the driver to encrypt.
//! - What peers send inside the endpoint's address prefixes (Go's test) is written to the
//!   interface, so the host's kernel answers it (its services, its ping). Packets from peers to any other
//!   destination still enter sb's router through the userspace stack, as in Go, where they
//!   go through its gVisor stack.
//!
//! The kernel removes the interface when its descriptor closes: dropping [`System`] (or sb
//! dying) leaves nothing behind.

use std::io;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

/// The interface's settings.
pub struct Interface<'a> {
    /// `name`; empty: the first free `wgN`.
    pub name: &'a str,
    /// Tunnel MTU.
    pub mtu: u16,
    /// The endpoint's addresses.
    pub addresses: &'a [ipnet::IpNet],
}

/// A running interface: its name and the two tasks moving its packets.
pub struct System {
    name: String,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl System {
    /// Creates the interface, brings it up with its addresses, and starts moving packets:
    /// read ones go to `to_driver`; what arrives on `from_driver` is written.
    pub fn open(
        label: Arc<str>,
        s: &Interface<'_>,
        to_driver: mpsc::Sender<Vec<u8>>,
        mut from_driver: mpsc::Receiver<Vec<u8>>,
    ) -> io::Result<System> {
        let name = match s.name {
            "" => free_name()?,
            n => n.to_string(),
        };
        let mut b = tun_rs::DeviceBuilder::new().name(name.clone()).mtu(s.mtu);
        let mut v4 = s.addresses.iter().filter_map(|a| match a {
            ipnet::IpNet::V4(n) => Some(*n),
            ipnet::IpNet::V6(_) => None,
        });
        if let Some(first) = v4.next() {
            b = b.ipv4(first.addr(), first.prefix_len(), None);
        }
        for a in s.addresses {
            if let ipnet::IpNet::V6(n) = a {
                b = b.ipv6(n.addr(), n.prefix_len());
            }
        }
        let dev =
            Arc::new(b.build_async().map_err(|e| {
                io::Error::new(e.kind(), format!("configure interface {name}: {e}"))
            })?);
        for n in v4 {
            dev.add_address_v4(n.addr(), n.prefix_len())?;
        }
        let rx = dev.clone();
        let mtu = usize::from(s.mtu);
        let read_label = label.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; mtu.max(1500) + 64];
            loop {
                let n = match rx.recv(&mut buf).await {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        debug!(target: "endpoint", tag = %read_label, "interface read: {e}");
                        return;
                    }
                };
                let Some(pkt) = buf.get(..n) else { continue };
                // Waits for room: the driver drains this queue as fast as it encrypts.
                if to_driver.send(pkt.to_vec()).await.is_err() {
                    return;
                }
            }
        });
        let writer = tokio::spawn(async move {
            while let Some(pkt) = from_driver.recv().await {
                if let Err(e) = dev.send(&pkt).await {
                    // One refused packet (the interface going down, a bad header) is a
                    // lost packet, as on a link.
                    debug!(target: "endpoint", tag = %label, "interface write: {e}");
                }
            }
        });
        Ok(System {
            name,
            reader,
            writer,
        })
    }

    /// Stops moving packets and waits until the tasks are gone, so the interface (closed
    /// with their last reference to it) is gone when this returns.
    pub async fn close(mut self) {
        for task in [&mut self.reader, &mut self.writer] {
            task.abort();
            let _ = task.await;
        }
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// The first `wgN` no interface of this network namespace has (Go picks names the same
/// way). Asked of the kernel, not `/sys`, which shows the namespace it was mounted in.
fn free_name() -> io::Result<String> {
    (0..1000)
        .map(|i| format!("wg{i}"))
        .find(|n| nix::net::if_::if_nametoindex(n.as_str()).is_err())
        .ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free wgN interface name"))
}
