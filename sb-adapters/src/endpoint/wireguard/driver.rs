//! The tunnel's driver: one loop that owns every peer's boringtun `Tunn`, the outer UDP
//! socket and the queues to and from the userspace stack, so no lock is taken per packet.
//! It runs in the stack's own task (`beside` in sb-core's netstack `Options`), so a packet
//! passing between it and the stack never wakes another thread.
//!
//! - A datagram from the network is matched to its peer (a handshake initiation by the
//!   sender's static key, anything else by the receiver index boringtun gave the peer),
//!   decrypted, and its inner packet handed to the stack if its source is inside the peer's
//!   `allowed_ips` (WireGuard's cryptokey routing; others are dropped). The sender's address
//!   becomes the peer's endpoint (roaming), so a server-side peer without an `address`
//!   works once it has sent a handshake.
//! - A packet from the stack goes to the peer whose `allowed_ips` has the longest prefix
//!   containing its destination, is encrypted and sent to that peer's endpoint. Packets
//!   already queued behind it are taken too, and their datagrams leave in runs of one send
//!   each (`batch.rs`).
//! - Every `TICK`, each peer's timers run (handshake retries, rekeys, keepalives).
//! - A packet for a peer without a session waits inside boringtun while a handshake runs.
//!   It leaves once a session is current: after the handshake response to sb's own
//!   initiation, or, when sb answered the peer's initiation, after the peer's first data
//!   message (which is what makes that session current). Not before: with no current
//!   session, boringtun answers a flush with a new initiation of its own, which crosses
//!   the peer's handshake and can leave both sides on keys the other dropped.
//!
//! `reserved` (Cloudflare WARP): bytes 1-3 of every message are set to the peer's value
//! after boringtun wrote it and cleared before boringtun reads one (it rejects non-zero
//! ones); a WireGuard message has zeros there, so clearing is always safe.

use super::batch::Batch;
use super::routes::Routes;
use super::settings::{short_key, PeerSettings};
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use sb_core::adapter::BoxPacketConn;
use sb_core::flow::Destination;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

/// How often peers' timers run (boringtun asks for 100-250 ms).
const TICK: Duration = Duration::from_millis(250);
/// Room for the largest datagram plus WireGuard's overhead.
const BUF: usize = 65_535 + 32;
/// Most datagrams taken from the outer socket in one system call. A run that fills it is
/// about 45 KiB of a tunnel's packets; a quiet tunnel gets its one datagram just the same.
const RECV_BATCH: usize = 32;
/// WireGuard's message types (a message's first byte) that the driver tells apart.
const INITIATION: u8 = 1;
const DATA: u8 = 4;

/// What the endpoint tells a running driver.
pub enum Command {
    /// A peer's endpoint was resolved (a domain, after DNS came up).
    SetEndpoint(usize, SocketAddr),
}

struct Peer {
    tunn: Tunn,
    settings: PeerSettings,
    /// Where its messages go: configured, resolved, or learnt from its last message.
    endpoint: Option<SocketAddr>,
    /// Whether "no known endpoint" was said already.
    warned: bool,
    /// Time since the last handshake when last looked at, to log new ones.
    last_handshake: Option<Duration>,
    /// Handshake initiations sent since the last completed handshake.
    initiations: u32,
    /// Whether boringtun may hold packets that wait for a session.
    queued: bool,
}

/// The driver's state.
pub struct Driver {
    label: Arc<str>,
    outer: BoxPacketConn,
    private: StaticSecret,
    public: PublicKey,
    peers: Vec<Peer>,
    routes: Arc<Routes>,
    to_stack: mpsc::Sender<Vec<u8>>,
    /// `system: true`: the kernel interface, which takes packets inside the endpoint's
    /// address prefixes (the rest still go to the stack).
    to_system: Option<ToSystem>,
}

/// The kernel interface's queue and the prefixes whose packets go there.
pub struct ToSystem {
    /// Packets for the interface.
    pub queue: mpsc::Sender<Vec<u8>>,
    /// The endpoint's addresses with their prefixes (`address`).
    pub own: Vec<ipnet::IpNet>,
}

/// What woke the driver.
enum Event {
    /// A run of datagrams from the outer socket (in the driver's receive buffers).
    Network(std::io::Result<()>),
    Stack(Option<Vec<u8>>),
    Command(Option<Command>),
    Tick,
}

impl Driver {
    /// A driver for `peers`, sending through `outer` and handing decrypted packets to
    /// `to_stack`. Peers' endpoints given as addresses are known from the start.
    pub fn new(
        label: Arc<str>,
        outer: BoxPacketConn,
        private: StaticSecret,
        peers: &[PeerSettings],
        routes: Arc<Routes>,
        to_stack: mpsc::Sender<Vec<u8>>,
        to_system: Option<ToSystem>,
    ) -> Driver {
        let public = PublicKey::from(&private);
        let peers = peers
            .iter()
            .enumerate()
            .map(|(i, p)| Peer {
                tunn: Tunn::new(
                    private.clone(),
                    p.public,
                    p.psk,
                    p.keepalive,
                    u32::try_from(i).unwrap_or(u32::MAX),
                    None,
                ),
                endpoint: p.endpoint.as_ref().and_then(|(host, port)| {
                    host.parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, *port))
                }),
                settings: p.clone(),
                warned: false,
                last_handshake: None,
                initiations: 0,
                queued: false,
            })
            .collect();
        Driver {
            label,
            outer,
            private,
            public,
            peers,
            routes,
            to_stack,
            to_system,
        }
    }

    /// Runs until the stack's queue or the command channel closes (the endpoint closed).
    pub async fn run(
        mut self,
        mut from_stack: mpsc::Receiver<Vec<u8>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let outer = self.outer.clone();
        // Datagrams come in runs (`recvmmsg`); each buffer is a whole datagram's size.
        let mut rx: Vec<Vec<u8>> = (0..RECV_BATCH).map(|_| vec![0u8; BUF]).collect();
        let mut got = Vec::with_capacity(RECV_BATCH);
        let mut out = vec![0u8; BUF];
        let mut batch = Batch::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                r = outer.recv_batch(&mut rx, &mut got) => Event::Network(r),
                p = from_stack.recv() => Event::Stack(p),
                c = commands.recv() => Event::Command(c),
                _ = tick.tick() => Event::Tick,
            };
            match event {
                Event::Network(Ok(())) => {
                    for ((n, from), buf) in got.iter().zip(rx.iter_mut()) {
                        if let (Some(src), Some(data)) = (from.socket_addr(), buf.get_mut(..*n)) {
                            self.on_datagram(data, src, &mut out).await;
                        }
                    }
                }
                Event::Network(Err(e)) => {
                    // A refused send surfaces here on some sockets (ICMP unreachable):
                    // that one datagram is lost, the socket goes on.
                    debug!(target: "endpoint", tag = %self.label, "receive: {e}");
                }
                Event::Stack(Some(pkt)) => {
                    self.on_packet(&pkt, &mut out, &mut batch).await;
                    // What queued meanwhile joins the run; it leaves before the next wait.
                    for _ in 1..sb_core::udp::GSO_MAX_SEGMENTS {
                        let Ok(pkt) = from_stack.try_recv() else {
                            break;
                        };
                        self.on_packet(&pkt, &mut out, &mut batch).await;
                    }
                    batch.flush(&outer).await;
                }
                Event::Command(Some(Command::SetEndpoint(i, addr))) => {
                    if let Some(p) = self.peers.get_mut(i) {
                        p.endpoint = Some(addr);
                    }
                }
                Event::Stack(None) | Event::Command(None) => return,
                Event::Tick => self.timers(&mut out).await,
            }
        }
    }

    /// Which peer a message from the network is for.
    fn peer_of(&self, data: &[u8]) -> Option<usize> {
        let index = match Tunn::parse_incoming_packet(data).ok()? {
            Packet::HandshakeInit(init) => {
                let half = parse_handshake_anon(&self.private, &self.public, &init).ok()?;
                return self
                    .peers
                    .iter()
                    .position(|p| p.settings.public.as_bytes() == &half.peer_static_public);
            }
            Packet::HandshakeResponse(r) => r.receiver_idx,
            Packet::PacketCookieReply(c) => c.receiver_idx,
            Packet::PacketData(d) => d.receiver_idx,
        };
        // boringtun gives peer i the indices i << 8 ..= (i << 8) + 255.
        usize::try_from(index >> 8).ok()
    }

    async fn on_datagram(&mut self, data: &mut [u8], src: SocketAddr, out: &mut [u8]) {
        if let Some(reserved) = data.get_mut(1..4) {
            reserved.fill(0);
        }
        let Some(i) = self.peer_of(data) else {
            trace!(target: "endpoint", tag = %self.label, "a datagram from {src} is for no peer");
            return;
        };
        let Some(peer) = self.peers.get_mut(i) else {
            return;
        };
        let delivered = match peer.tunn.decapsulate(Some(src.ip()), data, out) {
            TunnResult::Done => true,
            TunnResult::Err(e) => {
                debug!(target: "endpoint", tag = %self.label, "peer({}): from {src}: {e:?}", short_key(&peer.settings.public));
                false
            }
            TunnResult::WriteToNetwork(msg) => {
                // The keepalive (type 4) that completes sb's own handshake: its session is
                // current, what waited leaves. A handshake response (type 2) makes none
                // current yet: that waits for the peer's first data message (below).
                let completed = msg.first() == Some(&DATA);
                send(&self.outer, msg, src, peer.settings.reserved).await;
                if completed {
                    flush(&self.outer, peer, src, out).await;
                }
                true
            }
            TunnResult::WriteToTunnelV4(pkt, from) => {
                deliver(
                    &self.label,
                    sink(&self.to_stack, self.to_system.as_ref(), pkt),
                    &self.routes,
                    i,
                    pkt,
                    from.into(),
                    &peer.settings,
                );
                true
            }
            TunnResult::WriteToTunnelV6(pkt, from) => {
                deliver(
                    &self.label,
                    sink(&self.to_stack, self.to_system.as_ref(), pkt),
                    &self.routes,
                    i,
                    pkt,
                    from.into(),
                    &peer.settings,
                );
                true
            }
        };
        if delivered {
            if peer.queued && peer.tunn.time_since_last_handshake().is_some() {
                // The peer's first data message on the session sb answered for.
                flush(&self.outer, peer, src, out).await;
            }
            if peer.endpoint != Some(src) {
                debug!(target: "endpoint", tag = %self.label, "peer({}): endpoint is now {src}", short_key(&peer.settings.public));
            }
            peer.endpoint = Some(src);
            peer.warned = false;
            log_handshake(&self.label, peer);
        }
    }

    async fn on_packet(&mut self, pkt: &[u8], out: &mut [u8], batch: &mut Batch) {
        let Some(dst) = Tunn::dst_address(pkt) else {
            return;
        };
        let Some(peer) = self
            .routes
            .peer_for(dst)
            .and_then(|i| self.peers.get_mut(i))
        else {
            trace!(target: "endpoint", tag = %self.label, "no peer has {dst} in its allowed_ips");
            return;
        };
        let result = peer.tunn.encapsulate(pkt, out);
        // Anything but a data message means boringtun kept the packet for a session.
        if !matches!(&result, TunnResult::WriteToNetwork(m) if m.first() == Some(&DATA)) {
            peer.queued = true;
        }
        match result {
            TunnResult::WriteToNetwork(msg) => match peer.endpoint {
                // A data message (type 4) joins the run; anything else (a handshake
                // initiation for a packet that waits for the session) goes after it.
                Some(to) if msg.first() == Some(&DATA) => {
                    if let (Some(r), Some(bytes)) = (peer.settings.reserved, msg.get_mut(1..4)) {
                        bytes.copy_from_slice(&r);
                    }
                    batch.push(&self.outer, msg, to).await;
                }
                Some(to) => {
                    batch.flush(&self.outer).await;
                    count_initiation(&self.label, peer, msg);
                    send(&self.outer, msg, to, peer.settings.reserved).await
                }
                None => no_endpoint(&self.label, peer),
            },
            TunnResult::Err(e) => {
                debug!(target: "endpoint", tag = %self.label, "peer({}): encapsulate: {e:?}", short_key(&peer.settings.public));
            }
            _ => {}
        }
    }

    async fn timers(&mut self, out: &mut [u8]) {
        for peer in &mut self.peers {
            let result = peer.tunn.update_timers(out);
            // A keepalive due without a session waits in boringtun like any packet.
            if peer.tunn.time_since_last_handshake().is_none() {
                peer.queued = true;
            }
            match result {
                TunnResult::WriteToNetwork(msg) => {
                    if let Some(to) = peer.endpoint {
                        count_initiation(&self.label, peer, msg);
                        send(&self.outer, msg, to, peer.settings.reserved).await;
                    }
                }
                TunnResult::Err(WireGuardError::ConnectionExpired)
                    if peer.last_handshake.take().is_some() =>
                {
                    debug!(target: "endpoint", tag = %self.label, "peer({}): session expired", short_key(&peer.settings.public));
                }
                TunnResult::Err(WireGuardError::ConnectionExpired) => {}
                TunnResult::Err(e) => {
                    debug!(target: "endpoint", tag = %self.label, "peer({}): timers: {e:?}", short_key(&peer.settings.public));
                }
                _ => {}
            }
        }
    }
}

/// Packets boringtun keeps for a peer without a session (its own bound).
fn boringtun_queue_bound() -> usize {
    256 + 8
}

/// Sends what boringtun kept for `peer` while it had no session, to `to`.
async fn flush(outer: &BoxPacketConn, peer: &mut Peer, to: SocketAddr, out: &mut [u8]) {
    for _ in 0..boringtun_queue_bound() {
        match peer.tunn.decapsulate(None, &[], out) {
            TunnResult::WriteToNetwork(msg) => {
                // With no session after all, boringtun kept the packet and made an
                // initiation: the rest waits for its answer.
                let initiation = msg.first() == Some(&INITIATION);
                send(outer, msg, to, peer.settings.reserved).await;
                if initiation {
                    return;
                }
            }
            _ => break,
        }
    }
    peer.queued = false;
}

/// Where a decrypted packet goes: the kernel interface when it has one and the packet's
/// destination is inside one of the endpoint's address prefixes (as Go decides), else the
/// stack.
fn sink<'a>(
    to_stack: &'a mpsc::Sender<Vec<u8>>,
    to_system: Option<&'a ToSystem>,
    pkt: &[u8],
) -> &'a mpsc::Sender<Vec<u8>> {
    match (to_system, Tunn::dst_address(pkt)) {
        (Some(s), Some(dst)) if s.own.iter().any(|n| n.contains(&dst)) => &s.queue,
        _ => to_stack,
    }
}

/// Hands a decrypted packet on (see [`sink`]) if its source is the peer's to send from.
fn deliver(
    label: &str,
    to_stack: &mpsc::Sender<Vec<u8>>,
    routes: &Routes,
    peer: usize,
    pkt: &[u8],
    from: IpAddr,
    settings: &PeerSettings,
) {
    if routes.peer_for(from) != Some(peer) {
        debug!(target: "endpoint", tag = %label, "peer({}): packet from {from}, not in its allowed_ips: dropped", short_key(&settings.public));
        return;
    }
    // A full queue drops the packet, as a congested link would.
    let _ = to_stack.try_send(pkt.to_vec());
}

fn log_handshake(label: &str, peer: &mut Peer) {
    let now = peer.tunn.time_since_last_handshake();
    let new = match (now, peer.last_handshake) {
        (Some(n), Some(before)) => n < before,
        (Some(_), None) => true,
        _ => false,
    };
    if new {
        peer.initiations = 0;
        info!(target: "endpoint", tag = %label, "peer({}): handshake completed", short_key(&peer.settings.public));
    }
    peer.last_handshake = now;
}

/// Counts a handshake initiation about to be sent; the second since the last completed
/// handshake means the first went unanswered (boringtun retries after 5 s), said once.
fn count_initiation(label: &str, peer: &mut Peer, msg: &[u8]) {
    // Message type 1 (a handshake initiation); bytes 1-3 are still zero here.
    if msg.first() != Some(&INITIATION) {
        return;
    }
    peer.initiations = peer.initiations.saturating_add(1);
    if peer.initiations == 2 {
        warn!(target: "endpoint", tag = %label, "peer({}): handshake did not complete (no answer: a wrong key, or the peer is down); retrying", short_key(&peer.settings.public));
    }
}

fn no_endpoint(label: &str, peer: &mut Peer) {
    if !peer.warned {
        peer.warned = true;
        warn!(target: "endpoint", tag = %label, "peer({}): no known endpoint for peer: waiting for it to contact this one", short_key(&peer.settings.public));
    }
}

/// Sends one message to `to`, with the peer's `reserved` bytes.
async fn send(outer: &BoxPacketConn, msg: &mut [u8], to: SocketAddr, reserved: Option<[u8; 3]>) {
    if let (Some(r), Some(bytes)) = (reserved, msg.get_mut(1..4)) {
        bytes.copy_from_slice(&r);
    }
    if let Err(e) = outer.send_to(msg, &Destination::from_socket(to)).await {
        debug!(target: "endpoint", "send to {to}: {e}");
    }
}

#[cfg(test)]
mod tests;
