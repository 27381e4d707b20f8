use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::Waker,
};

use futures::Stream;
use smoltcp::{
    iface::{Config as InterfaceConfig, Interface, SocketHandle, SocketSet},
    phy::Device,
    socket::tcp::{Socket as TcpSocket, State as TcpState},
    storage::RingBuffer,
    time::{Duration, Instant},
    wire::{HardwareAddress, IpAddress, IpCidr, IpProtocol, Ipv4Address, Ipv6Address, TcpPacket},
};
use spin::Mutex as SpinMutex;
use tokio::sync::{
    mpsc::{unbounded_channel, Receiver, Sender, UnboundedReceiver, UnboundedSender},
    oneshot, Notify,
};
use tracing::{error, trace};

mod growth;
mod stream;
#[cfg(test)]
mod tests;

use growth::{grow, initial, new_control, new_socket, receive_share, Growth};
pub use stream::TcpStream;

use crate::{
    device::VirtualDevice,
    packet::{AnyIpPktFrame, IpPacket},
    pool::PacketPool,
    Runner,
};

#[derive(Debug, Clone, Copy, Eq, PartialEq)]
enum TcpSocketState {
    Normal,
    Close,
    Closing,
    Closed,
}

struct TcpSocketControl {
    send_buffer: RingBuffer<'static, u8>,
    send_waker: Option<Waker>,
    recv_buffer: RingBuffer<'static, u8>,
    recv_waker: Option<Waker>,
    recv_state: TcpSocketState,
    send_state: TcpSocketState,
    /// sb: the local address of a connection the stack opened (known once a port is picked).
    local: Option<SocketAddr>,
    /// sb: what went through the buffers lately, for `grow`.
    growth: Growth,
    /// sb: the socket task left received data in smoltcp's buffer because `recv_buffer` was
    /// full; the next read that frees room wakes the task to move it (`poll_read`).
    recv_held: bool,
}

struct TcpSocketCreation {
    control: SharedControl,
    socket: TcpSocket<'static>,
    /// sb: the accepted connection, handed to the listener once its handshake completes
    /// (not at the SYN: no flow, and no outbound dial, for a handshake never finished).
    stream: TcpStream,
    /// sb: (client, destination), the key retransmitted SYNs are matched by.
    tuple: (SocketAddr, SocketAddr),
}

/// sb: a connection the stack opens into the device (an endpoint's outbound side), made by
/// the socket task, which owns the interface context `connect` needs.
struct TcpConnectRequest {
    local: SocketAddr,
    remote: SocketAddr,
    control: SharedControl,
    /// Answered once the handshake completes (Ok) or the socket closes first (refused,
    /// reset or timed out).
    result: oneshot::Sender<std::io::Result<()>>,
}

/// sb: handshakes from the device that may be under way at once (SYN received, final ACK
/// not yet), like a listen backlog. A SYN past it is dropped unanswered: the client retries,
/// and a flood of SYNs costs neither sockets nor outbound dials.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// sb: lowest and highest local port picked for a connection opened with port 0 (IANA's
/// dynamic range, as Linux's default `ip_local_port_range` is close to).
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

type SharedNotify = Arc<Notify>;
/// sb: the (client, destination) pairs of accepted connections alive, and how many of them
/// are still in their handshake.
type SharedAccepted = Arc<SpinMutex<Accepted>>;

#[derive(Default)]
struct Accepted {
    tuples: HashSet<(SocketAddr, SocketAddr)>,
    pending: usize,
}
type SharedControl = Arc<SpinMutex<TcpSocketControl>>;

struct TcpListenerRunner;

impl TcpListenerRunner {
    #[allow(clippy::too_many_arguments)]
    fn create(
        device: VirtualDevice,
        iface: Interface,
        iface_ingress_tx: UnboundedSender<Vec<u8>>,
        iface_ingress_tx_avail: Arc<AtomicBool>,
        tcp_rx: Receiver<AnyIpPktFrame>,
        stream_tx: UnboundedSender<TcpStream>,
        sockets: HashMap<SocketHandle, SharedControl>,
        tcp_recv_buffer_size: u32,
        tcp_send_buffer_size: u32,
        notify: SharedNotify,
        connect_rx: UnboundedReceiver<TcpConnectRequest>,
    ) -> Runner {
        Runner::new(async move {
            let (socket_tx, socket_rx) = unbounded_channel::<TcpSocketCreation>();
            let sizes = (tcp_recv_buffer_size, tcp_send_buffer_size);
            let accepted: SharedAccepted = Arc::default();
            let res = tokio::select! {
                v = Self::handle_packet(notify.clone(), iface_ingress_tx, iface_ingress_tx_avail.clone(), tcp_rx, accepted.clone(), socket_tx, tcp_recv_buffer_size, tcp_send_buffer_size) => v,
                v = Self::handle_socket(notify, device, iface, iface_ingress_tx_avail, sockets, socket_rx, connect_rx, sizes, stream_tx, accepted) => v,
            };
            res?;
            trace!("VirtDevice::poll thread exited");
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn handle_packet(
        notify: SharedNotify,
        iface_ingress_tx: UnboundedSender<Vec<u8>>,
        iface_ingress_tx_avail: Arc<AtomicBool>,
        mut tcp_rx: Receiver<AnyIpPktFrame>,
        accepted: SharedAccepted,
        socket_tx: UnboundedSender<TcpSocketCreation>,
        tcp_recv_buffer_size: u32,
        tcp_send_buffer_size: u32,
    ) -> std::io::Result<()> {
        while let Some(frame) = tcp_rx.recv().await {
            let packet = match IpPacket::new_checked(frame.as_slice()) {
                Ok(p) => p,
                Err(err) => {
                    error!("invalid TCP IP packet: {:?}", err,);
                    continue;
                }
            };

            // Specially handle icmp packet by TCP interface.
            if matches!(packet.protocol(), IpProtocol::Icmp | IpProtocol::Icmpv6) {
                iface_ingress_tx
                    .send(frame)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::BrokenPipe, e))?;
                iface_ingress_tx_avail.store(true, Ordering::Release);
                notify.notify_one();
                continue;
            }

            let src_ip = packet.src_addr();
            let dst_ip = packet.dst_addr();
            let payload = packet.payload();

            let packet = match TcpPacket::new_checked(payload) {
                Ok(p) => p,
                Err(err) => {
                    // sb: never a payload in a log line (it is the user's data).
                    error!("invalid TCP packet: {err}, src_ip: {src_ip}, dst_ip: {dst_ip}");
                    continue;
                }
            };
            let src_port = packet.src_port();
            let dst_port = packet.dst_port();

            let src_addr = SocketAddr::new(src_ip, src_port);
            let dst_addr = SocketAddr::new(dst_ip, dst_port);

            // TCP first handshake packet, create a new Connection
            if packet.syn() && !packet.ack() {
                // sb: a retransmitted SYN belongs to the socket its first copy made (smoltcp
                // answers it again); past the backlog, a SYN is dropped unanswered.
                let mut acc = accepted.lock();
                if acc.tuples.contains(&(src_addr, dst_addr)) {
                    drop(acc);
                    iface_ingress_tx
                        .send(frame)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::BrokenPipe, e))?;
                    iface_ingress_tx_avail.store(true, Ordering::Release);
                    notify.notify_one();
                    continue;
                }
                if acc.pending >= MAX_PENDING_HANDSHAKES {
                    trace!("backlog full, SYN {} -> {} dropped", src_addr, dst_addr);
                    continue;
                }
                acc.tuples.insert((src_addr, dst_addr));
                acc.pending += 1;
                drop(acc);
                let sizes = (tcp_recv_buffer_size, tcp_send_buffer_size);
                let mut socket = new_socket(sizes);
                socket.set_keep_alive(Some(Duration::from_secs(28)));
                // FIXME: It should follow system's setting. 7200 is Linux's default.
                socket.set_timeout(Some(Duration::from_secs(7200)));
                // NO ACK delay
                // socket.set_ack_delay(None);

                if let Err(err) = socket.listen(dst_addr) {
                    error!("listen error: {:?}", err);
                    continue;
                }

                trace!("created TCP connection for {} <-> {}", src_addr, dst_addr);

                let control = Arc::new(SpinMutex::new(new_control(sizes)));

                let stream = TcpStream {
                    src_addr,
                    dst_addr,
                    notify: notify.clone(),
                    control: control.clone(),
                };
                socket_tx
                    .send(TcpSocketCreation {
                        control,
                        socket,
                        stream,
                        tuple: (src_addr, dst_addr),
                    })
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::BrokenPipe, e))?;
            }

            // Pipeline tcp stream packet
            iface_ingress_tx
                .send(frame)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::BrokenPipe, e))?;
            iface_ingress_tx_avail.store(true, Ordering::Release);
            notify.notify_one();
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn handle_socket(
        notify: SharedNotify,
        mut device: VirtualDevice,
        mut iface: Interface,
        iface_ingress_tx_avail: Arc<AtomicBool>,
        mut sockets: HashMap<SocketHandle, SharedControl>,
        mut socket_rx: UnboundedReceiver<TcpSocketCreation>,
        mut connect_rx: UnboundedReceiver<TcpConnectRequest>,
        (tcp_recv_buffer_size, tcp_send_buffer_size): (u32, u32),
        stream_tx: UnboundedSender<TcpStream>,
        accepted: SharedAccepted,
    ) -> std::io::Result<()> {
        let mut socket_set = SocketSet::new(vec![]);
        // sb: connections opened by `TcpConnector`, waiting for their handshake, and the
        // local addresses of every opened connection still alive (to pick free ports).
        let mut connecting: HashMap<SocketHandle, oneshot::Sender<std::io::Result<()>>> =
            HashMap::new();
        let mut dialed: HashMap<SocketHandle, SocketAddr> = HashMap::new();
        let mut dialed_locals: HashSet<SocketAddr> = HashSet::new();
        // sb: accepted connections whose handshake is under way, and the 4-tuple of every
        // accepted connection alive.
        let mut handshaking: HashMap<SocketHandle, TcpStream> = HashMap::new();
        let mut tuples: HashMap<SocketHandle, (SocketAddr, SocketAddr)> = HashMap::new();
        // sb: connections still receiving whose receive buffer grew past the initial size,
        // as of the last poll (`receive_share`).
        let mut grown_rx: usize = 0;
        let initial_rx = initial(tcp_recv_buffer_size);
        loop {
            while let Ok(TcpSocketCreation {
                control,
                socket,
                stream,
                tuple,
            }) = socket_rx.try_recv()
            {
                let handle = socket_set.add(socket);
                sockets.insert(handle, control);
                handshaking.insert(handle, stream);
                tuples.insert(handle, tuple);
            }
            while let Ok(req) = connect_rx.try_recv() {
                let TcpConnectRequest {
                    mut local,
                    remote,
                    control,
                    result,
                } = req;
                if local.port() == 0 {
                    match free_port(local, &dialed_locals) {
                        Some(port) => local.set_port(port),
                        None => {
                            let _ = result.send(Err(std::io::Error::new(
                                std::io::ErrorKind::AddrNotAvailable,
                                "no free local port in the userspace stack",
                            )));
                            continue;
                        }
                    }
                } else if dialed_locals.contains(&local) {
                    let _ = result.send(Err(std::io::ErrorKind::AddrInUse.into()));
                    continue;
                }
                let mut socket = new_socket((tcp_recv_buffer_size, tcp_send_buffer_size));
                socket.set_keep_alive(Some(Duration::from_secs(28)));
                socket.set_timeout(Some(Duration::from_secs(7200)));
                if let Err(e) = socket.connect(iface.context(), remote, local) {
                    let _ = result.send(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("connect {local} -> {remote}: {e}"),
                    )));
                    continue;
                }
                trace!("opening TCP connection {} -> {}", local, remote);
                control.lock().local = Some(local);
                let handle = socket_set.add(socket);
                sockets.insert(handle, control);
                connecting.insert(handle, result);
                dialed.insert(handle, local);
                dialed_locals.insert(local);
            }

            let before_poll = Instant::now();
            let updated_sockets = iface.poll(before_poll, &mut device, &mut socket_set);
            if matches!(
                updated_sockets,
                smoltcp::iface::PollResult::SocketStateChanged
            ) {
                trace!("VirtDevice::poll costed {}", Instant::now() - before_poll);
            }

            // Check all the sockets' status
            let now = std::time::Instant::now();
            let mut sockets_to_remove = Vec::new();
            let mut unborn: Vec<TcpStream> = Vec::new();
            let mut grown_now = 0;

            for (socket_handle, control) in sockets.iter() {
                let socket_handle = *socket_handle;
                let socket = socket_set.get_mut::<TcpSocket>(socket_handle);
                let mut control = control.lock();

                // sb: an accepted connection's handshake is over: established (and later
                // states) hands it to the listener; closed first drops it.
                if !matches!(socket.state(), TcpState::Listen | TcpState::SynReceived) {
                    if let Some(stream) = handshaking.remove(&socket_handle) {
                        accepted.lock().pending -= 1;
                        if socket.state() != TcpState::Closed {
                            stream_tx.send(stream).map_err(|e| {
                                std::io::Error::new(std::io::ErrorKind::BrokenPipe, e)
                            })?;
                        } else {
                            // Dropped after the loop: its `Drop` locks this control.
                            unborn.push(stream);
                        }
                    }
                }

                // sb: an opened connection's handshake is over, one way or the other.
                if let Some(result) = connecting.remove(&socket_handle) {
                    match socket.state() {
                        TcpState::SynSent => {
                            connecting.insert(socket_handle, result);
                        }
                        TcpState::Closed => {
                            let _ = result.send(Err(std::io::Error::new(
                                std::io::ErrorKind::ConnectionRefused,
                                "connection refused or reset by the peer in the tunnel",
                            )));
                        }
                        _ => {
                            let _ = result.send(Ok(()));
                        }
                    }
                }

                // Remove the socket only when it is in the closed state.
                if socket.state() == TcpState::Closed {
                    sockets_to_remove.push(socket_handle);

                    control.send_state = TcpSocketState::Closed;
                    control.recv_state = TcpSocketState::Closed;

                    if let Some(waker) = control.send_waker.take() {
                        waker.wake();
                    }
                    if let Some(waker) = control.recv_waker.take() {
                        waker.wake();
                    }

                    trace!("closed TCP connection");
                    continue;
                }

                // SHUT_WR — only close once the send_buffer has been fully
                // drained into the smoltcp socket.  Closing earlier transitions
                // the socket to FIN_WAIT_1, making can_send() return false, so
                // the send loop below never runs and the remaining data is lost.
                if matches!(control.send_state, TcpSocketState::Close)
                    && control.send_buffer.is_empty()
                {
                    trace!("closing TCP Write Half, {:?}", socket.state());

                    socket.close();
                    control.send_state = TcpSocketState::Closing;
                }

                // Check if readable
                let mut wake_receiver = false;
                while socket.can_recv() && !control.recv_buffer.is_full() {
                    let result = socket.recv(|buffer| {
                        let n = control.recv_buffer.enqueue_slice(buffer);
                        (n, n)
                    });

                    match result {
                        Ok(n) => {
                            wake_receiver = true;
                            control.growth.received += n;
                        }
                        Err(err) => {
                            error!("socket recv error: {:?}, {:?}", err, socket.state());

                            // Don't know why. Abort the connection.
                            socket.abort();

                            if matches!(control.recv_state, TcpSocketState::Normal) {
                                control.recv_state = TcpSocketState::Closed;
                            }
                            wake_receiver = true;

                            // The socket will be recycled in the next poll.
                            break;
                        }
                    }
                }

                // sb: data left behind (the ring is full) is moved once a read makes room.
                control.recv_held = socket.can_recv();

                // If socket is not in ESTABLISH, FIN-WAIT-1, FIN-WAIT-2,
                // the local client have closed our receiver.
                // sb: SynSent too, for the connections the stack opens: their receive half
                // is not closed while the handshake is under way.
                let states = [
                    TcpState::Listen,
                    TcpState::SynSent,
                    TcpState::SynReceived,
                    TcpState::Established,
                    TcpState::FinWait1,
                    TcpState::FinWait2,
                ];
                if matches!(control.recv_state, TcpSocketState::Normal)
                    && !socket.may_recv()
                    && !states.contains(&socket.state())
                {
                    trace!("closed TCP Read Half, {:?}", socket.state());

                    // Let TcpStream::poll_read returns EOF.
                    control.recv_state = TcpSocketState::Closed;
                    wake_receiver = true;
                }

                if wake_receiver && control.recv_waker.is_some() {
                    if let Some(waker) = control.recv_waker.take() {
                        waker.wake();
                    }
                }

                // Check if writable
                let mut wake_sender = false;
                while socket.can_send() && !control.send_buffer.is_empty() {
                    let result = socket.send(|buffer| {
                        let n = control.send_buffer.dequeue_slice(buffer);
                        (n, n)
                    });

                    match result {
                        Ok(n) => {
                            wake_sender = true;
                            control.growth.sent += n;
                        }
                        Err(err) => {
                            error!("socket send error: {:?}, {:?}", err, socket.state());

                            // Don't know why. Abort the connection.
                            socket.abort();

                            if matches!(control.send_state, TcpSocketState::Normal) {
                                control.send_state = TcpSocketState::Closed;
                            }
                            wake_sender = true;

                            // The socket will be recycled in the next poll.
                            break;
                        }
                    }
                }

                if wake_sender && control.send_waker.is_some() {
                    if let Some(waker) = control.send_waker.take() {
                        waker.wake();
                    }
                }

                // A socket with nothing more to receive (its peer sent FIN) keeps its size
                // and no longer counts against the others' share.
                let receiving = socket.may_recv();
                let counted = socket.recv_capacity() > initial_rx;
                let share = if receiving {
                    receive_share(tcp_recv_buffer_size, grown_rx + usize::from(!counted))
                } else {
                    socket.recv_capacity()
                };
                grow(socket, &mut control, (share, tcp_send_buffer_size), now);
                if receiving && socket.recv_capacity() > initial_rx {
                    grown_now += 1;
                }
            }

            drop(unborn);
            grown_rx = grown_now;
            for socket_handle in sockets_to_remove {
                sockets.remove(&socket_handle);
                socket_set.remove(socket_handle);
                connecting.remove(&socket_handle);
                if let Some(local) = dialed.remove(&socket_handle) {
                    dialed_locals.remove(&local);
                }
                if handshaking.remove(&socket_handle).is_some() {
                    accepted.lock().pending -= 1;
                }
                if let Some(tuple) = tuples.remove(&socket_handle) {
                    accepted.lock().tuples.remove(&tuple);
                }
            }

            // Ensure every loop iteration yields to the runtime. When egress
            // capacity is available OR when `poll_delay` returns ZERO ("re-poll
            // now"), this loop otherwise takes no `.await`, so under an active
            // flow it busy-spins. Because `handle_socket` and `handle_packet`
            // are arms of one `tokio::select!` future, a never-yielding
            // `handle_socket` never returns control to the sibling SYN-accept
            // arm: one core pins flat at 100% and new inbound connections are
            // starved (observed as connect timeouts with no SYN-ACK). A
            // cooperative `yield_now()` keeps the re-poll just as prompt while
            // letting `handle_packet` make progress. The timed-park path and the
            // 5 ms idle fallback are unchanged, so there is no missed-wake risk.
            if iface_ingress_tx_avail.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            } else {
                let next_duration = iface
                    .poll_delay(before_poll, &socket_set)
                    .unwrap_or(Duration::from_millis(5));
                if next_duration != Duration::ZERO {
                    let _ = tokio::time::timeout(
                        tokio::time::Duration::from(next_duration),
                        notify.notified(),
                    )
                    .await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

pub struct TcpListener {
    stream_rx: UnboundedReceiver<TcpStream>,
    connector: TcpConnector,
}

/// sb: opens TCP connections from the stack into the device: the stack plays the client, a
/// host behind the device the server. Cheap to clone; every clone feeds the same stack.
#[derive(Clone)]
pub struct TcpConnector {
    tx: UnboundedSender<TcpConnectRequest>,
    notify: SharedNotify,
    tcp_recv_buffer_size: u32,
    tcp_send_buffer_size: u32,
}

impl TcpConnector {
    /// Opens a connection from `local` (port 0: a free port of the dynamic range) to
    /// `remote` and waits for the handshake. Fails with `ConnectionRefused` when the peer
    /// resets or the stack gives up (smoltcp retransmits the SYN); the caller bounds the
    /// wait with its own timeout (dropping the future abandons the attempt).
    pub async fn connect(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> std::io::Result<TcpStream> {
        let control = Arc::new(SpinMutex::new(new_control((
            self.tcp_recv_buffer_size,
            self.tcp_send_buffer_size,
        ))));
        let (result_tx, result_rx) = oneshot::channel();
        let closed =
            || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "userspace stack stopped");
        self.tx
            .send(TcpConnectRequest {
                local,
                remote,
                control: control.clone(),
                result: result_tx,
            })
            .map_err(|_| closed())?;
        self.notify.notify_one();
        // Built before the wait so that an abandoned attempt (the future dropped) closes
        // the socket through the stream's `Drop`.
        let mut stream = TcpStream {
            src_addr: local,
            dst_addr: remote,
            notify: self.notify.clone(),
            control: control.clone(),
        };
        result_rx.await.map_err(|_| closed())??;
        stream.src_addr = control.lock().local.unwrap_or(local);
        Ok(stream)
    }
}

impl TcpListener {
    pub(super) fn new(
        tcp_rx: Receiver<AnyIpPktFrame>,
        stack_tx: Sender<AnyIpPktFrame>,
        mtu: usize,
        tcp_recv_buffer_size: u32,
        tcp_send_buffer_size: u32,
        pool: PacketPool,
    ) -> std::io::Result<(Runner, Self)> {
        let (mut device, iface_ingress_tx, iface_ingress_tx_avail) =
            VirtualDevice::new(stack_tx, mtu, pool);
        let iface = Self::create_interface(&mut device)?;

        let (stream_tx, stream_rx) = unbounded_channel();
        let (connect_tx, connect_rx) = unbounded_channel();
        let notify = Arc::new(Notify::new());

        let runner = TcpListenerRunner::create(
            device,
            iface,
            iface_ingress_tx,
            iface_ingress_tx_avail,
            tcp_rx,
            stream_tx,
            HashMap::new(),
            tcp_recv_buffer_size,
            tcp_send_buffer_size,
            notify.clone(),
            connect_rx,
        );

        let connector = TcpConnector {
            tx: connect_tx,
            notify,
            tcp_recv_buffer_size,
            tcp_send_buffer_size,
        };
        Ok((
            runner,
            Self {
                stream_rx,
                connector,
            },
        ))
    }

    /// sb: a handle that opens connections through this stack.
    pub fn connector(&self) -> TcpConnector {
        self.connector.clone()
    }

    fn create_interface<D>(device: &mut D) -> std::io::Result<Interface>
    where
        D: Device + ?Sized,
    {
        let mut iface_config = InterfaceConfig::new(HardwareAddress::Ip);
        iface_config.random_seed = rand::random();
        let mut iface = Interface::new(iface_config, device, Instant::now());
        iface.update_ip_addrs(|ip_addrs| {
            ip_addrs
                .push(IpCidr::new(IpAddress::v4(0, 0, 0, 1), 0))
                .expect("iface IPv4");
            ip_addrs
                .push(IpCidr::new(IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1), 0))
                .expect("iface IPv6");
        });
        iface
            .routes_mut()
            .add_default_ipv4_route(Ipv4Address::new(0, 0, 0, 1))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, e))?;
        iface
            .routes_mut()
            .add_default_ipv6_route(Ipv6Address::new(0, 0, 0, 0, 0, 0, 0, 1))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, e))?;
        iface.set_any_ip(true);
        Ok(iface)
    }
}

impl Stream for TcpListener {
    type Item = (TcpStream, SocketAddr, SocketAddr);

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream_rx.poll_recv(cx).map(|stream| {
            stream.map(|stream| {
                let local_addr = *stream.local_addr();
                let remote_addr: SocketAddr = *stream.remote_addr();
                (stream, local_addr, remote_addr)
            })
        })
    }
}

/// sb: a local port for a connection from `local`'s address that no opened connection of
/// the stack uses, tried from a random start through the whole dynamic range.
fn free_port(local: SocketAddr, used: &HashSet<SocketAddr>) -> Option<u16> {
    let (lo, hi) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
    let span = u32::from(hi - lo) + 1;
    let start = rand::random::<u32>() % span;
    (0..span)
        .map(|i| lo + ((start + i) % span) as u16)
        .find(|port| !used.contains(&SocketAddr::new(local.ip(), *port)))
}
