//! The userspace network stack shared by every adapter that carries IP packets: the `tun`
//! inbound and the endpoints (WireGuard, ...). It turns packets from a [`PacketDevice`] into
//! flows for the router and, the other way, opens TCP connections, UDP sockets and pings
//! from a given local address into the device (an endpoint's outbound side dials through
//! it).
//!
//! ```text
//!  device ─ pump.rs ─ netstack-smoltcp (smoltcp) ─┬─ TCP: accept ─> flows  ┐ FlowSource
//!  (TUN,     icmp.rs                              │      connect <─ owner  │ (tag, handler)
//!   tunnel)  (echo replies to our pings)          └─ UDP: udp.rs: bound sockets / flow NAT
//!            echo.rs (echo requests routed as ICMP flows) ────────────────┘
//! ```
//!
//! Shape: the vendored netstack-smoltcp (third_party/, see its SB_PATCH.md) keeps its TCP
//! state machine (smoltcp sockets driven by one task) and gains a connector, since opening a
//! connection only needs the socket task to call smoltcp's `connect` and report the
//! handshake; UDP and ICMP need no smoltcp socket at all (the stack builds and parses those
//! packets itself), so the demultiplexing of bound sockets against accepted flows lives here.
//! Driving smoltcp sockets directly would have meant rewriting the tested accept path and
//! its packet pool for no gain. See docs/ARCHITECTURE.md.
//!
//! Tasks: a device with a loop of its own (`Options::beside`: the WireGuard driver) runs it
//! in one task with the pump and smoltcp's runner, since the three trade every packet; a
//! device the pump reads itself (a TUN) keeps pump and runner on tasks of their own, which
//! two runtime threads run side by side. Accepted TCP connections, UDP and injected packets
//! have their own tasks.

mod device;
mod echo;
mod flows;
mod icmp;
mod memory;
mod pump;
mod tcp;
mod udp;

pub use device::{PacketDevice, RxBatch};
pub use echo::MAX_ECHOES_IN_FLIGHT;
pub use flows::FlowSource;
pub use memory::MemoryDevice;
pub use netstack_smoltcp::{PacketPool, MAX_PENDING_HANDSHAKES};
pub use pump::{Reflect, SEND_BATCH};
pub use tcp::StackStream;
pub use udp::{StackUdpSocket, MAX_UDP_FLOWS};

use crate::conn_limit::ConnBudget;
use futures::StreamExt;
use icmp::Pings;
use netstack_smoltcp::TcpConnector;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How a stack is set up.
pub struct Options {
    /// The device's MTU.
    pub mtu: u16,
    /// The packet buffers the pump, the stack and the UDP side pass around
    /// ([`PacketPool::for_mtu`] unless a test wants to watch it).
    pub pool: PacketPool,
    /// The device's receive batch (one slot unless the device splits offloaded segments).
    pub batch: RxBatch,
    /// Packets turned straight back to the device (the TUN's `loopback_address`).
    pub reflect: Option<Reflect>,
    /// Who accepted flows belong to; `None`: connections and datagrams from the device
    /// that no socket of the stack's owner waits for are dropped.
    pub accept: Option<FlowSource>,
    /// Accepted UDP flows at once, at most ([`MAX_UDP_FLOWS`] unless a test wants fewer).
    pub max_udp_flows: usize,
    /// The budget accepted TCP connections count against ([`ConnBudget::process`] unless a
    /// test wants a smaller one); past it, a new connection is closed at once.
    pub connections: Arc<ConnBudget>,
    /// The device's own loop (the WireGuard endpoint's driver), run in the stack's task
    /// beside the pump and smoltcp's runner: every packet between the device and the stack
    /// is then a wake on the thread that made it. The stack stops when it ends.
    pub beside: Option<crate::adapter::BoxFuture<'static, ()>>,
}

/// A running stack over one device. Dropping it stops its tasks (and so releases the
/// device).
pub struct NetStack {
    connector: TcpConnector,
    udp: Arc<udp::Udp>,
    pings: Arc<Pings>,
    inject: mpsc::Sender<Vec<u8>>,
    /// Taken by [`NetStack::close`], which any holder of the stack may call.
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    stopped: tokio::sync::watch::Receiver<Option<Arc<io::Error>>>,
}

/// The most a TCP connection's receive and send buffers grow to (each starts at 64 KiB and
/// grows while its traffic fills it: third_party/netstack-smoltcp/SB_PATCH.md); the
/// connections growing their receive buffers at once share this much between them. One
/// stream's throughput is bound by window / round trip: through a WireGuard tunnel on a
/// loaded machine 320 KiB (netstack-smoltcp's fixed size) held one download at about Go's
/// speed, 1 MiB lifted it; four downloads at 1 MiB each overran the peer's queue (thousands
/// of retransmissions per run), at a shared 1 MiB they ran without loss
/// (docs/wireguard.md). Go's gVisor stack grows to 8 MiB (receive) and 6 MiB (send) per
/// connection.
const TCP_BUFFER_MAX: u32 = 1 << 20;

/// Packets of the stack's own (pings) queued for the device at most.
const INJECT_QUEUE: usize = 64;

impl NetStack {
    /// Starts the stack and its tasks over `device` (inside a tokio runtime).
    pub fn start<D: PacketDevice>(device: Arc<D>, options: Options) -> io::Result<NetStack> {
        let Options {
            mtu,
            pool,
            batch,
            reflect,
            accept,
            max_udp_flows,
            connections,
            beside,
        } = options;
        let (stack, runner, udp_socket, tcp) = netstack_smoltcp::StackBuilder::default()
            .enable_tcp(true)
            .enable_udp(true)
            .enable_icmp(true)
            .mtu(usize::from(mtu))
            .tcp_recv_buffer_size(TCP_BUFFER_MAX)
            .tcp_send_buffer_size(TCP_BUFFER_MAX)
            .packet_pool(pool.clone())
            .build()?;
        let (Some(runner), Some(udp_socket), Some(tcp)) = (runner, udp_socket, tcp) else {
            return Err(io::Error::other(
                "the userspace stack started without TCP or UDP",
            ));
        };
        let connector = tcp.connector();
        let (stopped_tx, stopped) = tokio::sync::watch::channel(None);
        let stopped_tx = Arc::new(stopped_tx);
        let report = move |e: io::Error| {
            stopped_tx.send_replace(Some(Arc::new(e)));
        };
        let pings = Arc::new(Pings::default());
        let mut tasks = Vec::new();
        let (inject, mut injected) = mpsc::channel::<Vec<u8>>(INJECT_QUEUE);
        {
            let (device, pool, pings, report) =
                (device.clone(), pool.clone(), pings.clone(), report.clone());
            // Pings from the device are routed like flows when the stack has an owner.
            let echoes = accept
                .as_ref()
                .map(|src| echo::EchoProxy::new(src.clone(), inject.clone()));
            let runner = {
                let report = report.clone();
                async move {
                    if let Err(e) = runner.await {
                        report(io::Error::new(e.kind(), format!("stack stopped: {e}")));
                    }
                }
            };
            let pump = async move {
                if let Some(e) = pump::run(device, stack, pool, batch, reflect, pings, echoes).await
                {
                    report(e);
                }
            };
            match beside {
                // A device with a loop of its own (the WireGuard driver: all peers' crypto
                // on one thread) trades every packet with the pump, and the pump with the
                // runner: one task for the three keeps each handoff on the thread that made
                // it instead of a wake across threads per packet.
                Some(beside) => tasks.push(tokio::spawn(async move {
                    tokio::select! {
                        () = beside => {}
                        () = runner => {}
                        () = pump => {}
                    }
                })),
                // A device the pump reads itself (a TUN at several Gbit/s) keeps the pump
                // and the runner on two threads when the runtime has them: one task for
                // both measured slower with four streams.
                None => {
                    tasks.push(tokio::spawn(runner));
                    tasks.push(tokio::spawn(pump));
                }
            }
        }
        tasks.push(tokio::spawn(async move {
            while let Some(pkt) = injected.recv().await {
                if let Err(e) = device.send(&[pkt]).await {
                    report(io::Error::new(e.kind(), format!("writing the device: {e}")));
                    return;
                }
            }
        }));
        if let Some(src) = &accept {
            tasks.push(tokio::spawn(tcp::accept(tcp, src.clone(), connections)));
        }
        let (from_stack, to_stack) = udp_socket.split();
        let (udp, writer) = udp::Udp::new(to_stack, pool);
        tasks.push(writer);
        tasks.push(tokio::spawn(udp::serve(
            from_stack.fuse(),
            udp.clone(),
            accept,
            max_udp_flows,
        )));
        Ok(NetStack {
            connector,
            udp,
            pings,
            inject,
            tasks: std::sync::Mutex::new(tasks),
            stopped,
        })
    }

    /// Opens a TCP connection from `local` (port 0: a free one) to `remote` through the
    /// device, waiting for the handshake at most `timeout`.
    pub async fn connect_tcp(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        timeout: Duration,
    ) -> io::Result<StackStream> {
        match tokio::time::timeout(timeout, self.connector.connect(local, remote)).await {
            Ok(r) => r.map(StackStream::new),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {remote} through the tunnel timed out"),
            )),
        }
    }

    /// A UDP socket bound to `local` (port 0: a free one) in the stack.
    pub fn bind_udp(&self, local: SocketAddr) -> io::Result<StackUdpSocket> {
        self.udp.bind(local)
    }

    /// Sends an ICMP echo request from `local` to `remote` and waits for the reply at most
    /// `timeout`; returns the round trip.
    pub async fn ping(
        &self,
        local: IpAddr,
        remote: IpAddr,
        timeout: Duration,
    ) -> io::Result<Duration> {
        let (id, seq, reply) = self.pings.register(remote)?;
        let request = icmp::echo_request(local, remote, id, seq, b"sb ping")?;
        let sent = tokio::time::Instant::now();
        let result = async {
            self.inject.send(request).await.map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "userspace stack stopped")
            })?;
            match tokio::time::timeout(timeout, reply).await {
                Ok(Ok(())) => Ok(sent.elapsed()),
                Ok(Err(_)) => Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "userspace stack stopped",
                )),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no echo reply from {remote}"),
                )),
            }
        }
        .await;
        if result.is_err() {
            self.pings.forget(remote, id, seq);
        }
        result
    }

    /// Completes when the stack stops on its own (its device failed, or the stack's task
    /// ended), with why; never while the stack runs. Independent of `self`, so a watchdog
    /// task can hold it.
    pub fn stopped(&self) -> impl std::future::Future<Output = Arc<io::Error>> + Send + 'static {
        let mut rx = self.stopped.clone();
        async move {
            loop {
                if let Some(e) = rx.borrow_and_update().clone() {
                    return e;
                }
                if rx.changed().await.is_err() {
                    return Arc::new(io::Error::other("userspace stack dropped"));
                }
            }
        }
    }

    /// Stops every task and waits for them, releasing the device (and what runs
    /// `beside` it). Dials still holding the stack then fail.
    pub async fn close(&self) {
        // A poisoned lock still holds the handles: stop them all the same.
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for NetStack {
    fn drop(&mut self) {
        let tasks = self
            .tasks
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for t in tasks.iter() {
            t.abort();
        }
    }
}
