//! The TCP listener shared by `mixed`, `socks`, `http` and `direct`: binds with the listen
//! fields, accepts, and runs each connection's handler on its own task until `close`.

use sb_config::model::shared::ListenFields;
use sb_core::conn_limit::ConnBudget;
use socket2::SockRef;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Go binds 127.0.0.1 when `listen` is omitted.
pub const DEFAULT_LISTEN: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Binds a listener as the listen fields say.
pub fn bind(l: &ListenFields) -> io::Result<TcpListener> {
    // The budget is fixed (and logged) before the first listener says it started.
    ConnBudget::process();
    let ip = l.listen.map_or(DEFAULT_LISTEN, |i| i.0);
    let addr = SocketAddr::new(ip, l.listen_port);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Restarting sb must not fail on sockets of the previous run in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    let sock = SockRef::from(&socket);
    if l.routing_mark.0 != 0 {
        sock.set_mark(l.routing_mark.0)?;
    }
    if !l.bind_interface.is_empty() {
        sock.bind_device(Some(l.bind_interface.as_bytes()))?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Applies per-connection listen options to an accepted socket.
pub fn configure(l: &ListenFields, s: &TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    if !l.disable_tcp_keep_alive {
        let idle = if l.tcp_keep_alive.is_zero() {
            std::time::Duration::from_secs(300)
        } else {
            l.tcp_keep_alive.to_std()
        };
        let interval = if l.tcp_keep_alive_interval.is_zero() {
            std::time::Duration::from_secs(75)
        } else {
            l.tcp_keep_alive_interval.to_std()
        };
        SockRef::from(s).set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(interval),
        )?;
    }
    Ok(())
}

/// Accepts forever, handing each connection to `handle` on its own task, within the
/// process's connection budget ([`ConnBudget`]). Stopped by aborting its task
/// ([`Serving::close`]), which drops the listener.
pub async fn serve<F, Fut>(listener: TcpListener, handle: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let budget = ConnBudget::process();
    loop {
        // Room for the connection first: at the budget, new ones wait in the backlog.
        let permit = budget.admit().await;
        match listener.accept().await {
            Ok((stream, peer)) => {
                let connection = handle(stream, peer);
                tokio::spawn(async move {
                    let _permit = permit;
                    connection.await
                });
            }
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                tracing::error!(target: "inbound", "accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// What a listening inbound keeps to report its address and to stop: the address it bound
/// and the tasks that own its sockets.
pub struct Serving {
    local: Mutex<Option<SocketAddr>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// UDP sockets the tasks own; a reply being sent can hold one for a moment after the
    /// task stopped, so `close` waits for them to go.
    udp: Mutex<Vec<std::sync::Weak<tokio::net::UdpSocket>>>,
    /// Set by `close`: connections accepted before take no new request (a reload's new
    /// users and rules must apply to it).
    closed: tokio::sync::watch::Sender<bool>,
}

impl Default for Serving {
    fn default() -> Serving {
        Serving {
            local: Mutex::default(),
            tasks: Mutex::default(),
            udp: Mutex::default(),
            closed: tokio::sync::watch::channel(false).0,
        }
    }
}

impl Serving {
    /// Records the bound address.
    pub fn set_local(&self, addr: SocketAddr) {
        if let Ok(mut l) = self.local.lock() {
            *l = Some(addr);
        }
    }

    /// The bound address, once started.
    pub fn local(&self) -> Option<SocketAddr> {
        self.local.lock().ok().and_then(|l| *l)
    }

    /// Keeps a task that owns a socket.
    pub fn add(&self, task: JoinHandle<()>) {
        if let Ok(mut t) = self.tasks.lock() {
            t.push(task);
        }
    }

    /// Completes once `close` was called (at once if it was already).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// Remembers a UDP socket a task owns, for `close` to wait on.
    pub fn add_udp(&self, socket: &std::sync::Arc<tokio::net::UdpSocket>) {
        if let Ok(mut u) = self.udp.lock() {
            u.push(std::sync::Arc::downgrade(socket));
        }
    }

    /// Stops the tasks and returns once their sockets are released, so the address can be
    /// bound again (SIGHUP reload). Accepted TCP flows run on their own tasks and are not
    /// cut; UDP flows end with the socket they answer through.
    pub async fn close(&self) {
        self.closed.send_replace(true);
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        let udp: Vec<_> = self
            .udp
            .lock()
            .map(|mut u| u.drain(..).collect())
            .unwrap_or_default();
        // A reply in flight holds its socket for one send: wait that out (bounded).
        for socket in udp {
            for _ in 0..200 {
                if socket.strong_count() == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            if socket.strong_count() != 0 {
                tracing::warn!(target: "inbound", "a UDP socket is still in use after close");
            }
        }
    }
}
