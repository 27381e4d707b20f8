//! The `tun` inbound: a TUN device whose packets go through a userspace TCP/IP stack
//! (netstack-smoltcp on smoltcp 0.13, see `docs/tun.md`), so that every TCP connection and
//! UDP conversation a program on this machine sends into the device enters the router as a
//! flow with its real destination.
//!
//! ```text
//!  kernel ─ TUN ─ device.rs ─ sb-core netstack (pump, smoltcp, TCP accept, UDP NAT) ─> dispatcher
//!                (tun-rs)
//! ```
//!
//! The stack also answers ICMP echo for any destination routed into the device. With
//! `auto_route`, Go's policy rules and table routes are installed over rtnetlink once the
//! device is up (`route_plan.rs` computes them, `auto_route.rs` installs them) and removed
//! at close; fields sb does not implement are refused at build (`settings.rs`). TCP to a
//! `loopback_address` is turned back to the host in the pump (`loopback.rs`).

mod auto_route;
mod device;
pub mod loopback;
pub mod route_plan;
pub mod settings;
#[cfg(test)]
mod tests;

pub use device::TunDevice;

use sb_config::model::tun::TunInbound;
use sb_core::adapter::{BoxFuture, FlowHandler, Inbound};
use sb_core::netstack::{FlowSource, NetStack, Options, PacketDevice, PacketPool, RxBatch};
use settings::Settings;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tracing::info;

/// A `tun` inbound.
pub struct TunIn {
    tag: Arc<str>,
    settings: Settings,
    stack: Mutex<Option<NetStack>>,
    watchdog: Mutex<Option<JoinHandle<()>>>,
    routes: Mutex<Option<auto_route::Installed>>,
    /// Why the stack stopped on its own (its device failed), once it has: `failed` waits
    /// for it.
    failure: tokio::sync::watch::Sender<Option<Arc<io::Error>>>,
}

impl TunIn {
    /// Builds it; fails (naming the field) on options sb does not implement.
    pub fn new(tag: &str, options: &TunInbound) -> Result<TunIn, settings::TunError> {
        Ok(TunIn {
            tag: tag.into(),
            settings: settings::from_config(options)?,
            stack: Mutex::default(),
            watchdog: Mutex::default(),
            routes: Mutex::default(),
            failure: tokio::sync::watch::channel(None).0,
        })
    }
}

/// The userspace stack over any [`PacketDevice`] (the TUN in production, an in-memory
/// device in tests), its flows going to `source`. `pool` holds the packet buffers the pump,
/// the stack and the UDP flows pass around and give back ([`PacketPool::for_mtu`] unless a
/// test wants to watch it). TCP to a `loopback` address is turned around in the pump and
/// never reaches the stack.
pub fn serve<D: PacketDevice>(
    device: Arc<D>,
    batch: RxBatch,
    mtu: u16,
    pool: PacketPool,
    loopback: loopback::Loopback,
    source: FlowSource,
) -> io::Result<NetStack> {
    let reflect: Option<sb_core::netstack::Reflect> = if loopback.is_empty() {
        None
    } else {
        Some(Box::new(move |pkt: &mut [u8]| loopback.reflect(pkt)))
    };
    NetStack::start(
        device,
        Options {
            mtu,
            pool,
            batch,
            reflect,
            accept: Some(source),
            max_udp_flows: sb_core::netstack::MAX_UDP_FLOWS,
            connections: sb_core::conn_limit::ConnBudget::process(),
            beside: None,
        },
    )
}

/// How long a device name may stay busy after the previous device of that name closed.
const BUSY_FOR_AT_MOST: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the device. A reload that changed the TUN's settings closes the old device just
/// before: the kernel lets the name go only once every reference to the old device's file
/// is gone, and a child process that another thread is starting holds one until it execs.
/// So "busy" is retried for a moment (bounded) before it is an error.
async fn open_device(s: &settings::Settings) -> io::Result<TunDevice> {
    let deadline = tokio::time::Instant::now() + BUSY_FOR_AT_MOST;
    loop {
        match TunDevice::open(s) {
            Err(e)
                if e.raw_os_error() == Some(nix::libc::EBUSY)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            r => return r,
        }
    }
}

impl Inbound for TunIn {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "tun"
    }
    fn start(self: Arc<Self>, handler: Arc<dyn FlowHandler>) -> BoxFuture<'static, io::Result<()>> {
        Box::pin(async move {
            let label: Arc<str> = format!("inbound/tun[{}]", self.tag).into();
            let s = &self.settings;
            let device = open_device(s)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("configure tun interface: {e}")))?;
            // Until sb has a kernel ("system") stack, every stack value runs the userspace
            // one; say so, so nobody believes otherwise.
            info!(
                target: "inbound", tag = %label,
                "started at {} (mtu {}, offload {}): stack \"{}\" runs sb's userspace stack (smoltcp)",
                device.name(), s.mtu, if device.offloaded() { "on" } else { "off" }, s.stack
            );
            if let Some(opts) = &s.auto_route {
                let name = device.name().to_string();
                let oif = nix::net::if_::if_nametoindex(name.as_str()).map_err(io::Error::from)?;
                let plan = route_plan::plan(opts, &name, &s.inet4, &s.inet6);
                let (index, table) = (opts.rule_index, opts.table);
                let summary = auto_route::describe(&plan);
                let installed = tokio::task::spawn_blocking(move || {
                    auto_route::install(&plan, index, table, oif)
                })
                .await
                .map_err(io::Error::other)?
                .map_err(|e| io::Error::new(e.kind(), format!("auto_route: {e}")))?;
                info!(target: "inbound", tag = %label, "auto_route: {summary} (table {table}, rules from {index})");
                if let Ok(mut r) = self.routes.lock() {
                    *r = Some(installed);
                }
            }
            let batch = device.rx_batch();
            let source = FlowSource {
                tag: self.tag.clone(),
                kind: "tun",
                label: label.clone(),
                handler,
                udp_timeout: s.udp_timeout,
            };
            let pool = PacketPool::for_mtu(usize::from(s.mtu));
            let stack = serve(
                Arc::new(device),
                batch,
                s.mtu,
                pool,
                s.loopback.clone(),
                source,
            )?;
            // A stack that stops on its own (the device failed) is a dead tunnel: flows would
            // leave outside it or blackhole. It is reported through `failed`, and the
            // instance stops sb with the error.
            let stopped = stack.stopped();
            let failure = self.failure.clone();
            let watchdog = tokio::spawn(async move {
                let e = stopped.await;
                tracing::error!(target: "inbound", tag = %label, "tun: {e}");
                failure.send_replace(Some(e));
            });
            if let Ok(mut w) = self.watchdog.lock() {
                *w = Some(watchdog);
            }
            if let Ok(mut t) = self.stack.lock() {
                *t = Some(stack);
            }
            Ok(())
        })
    }
    fn failed(&self) -> BoxFuture<'static, io::Error> {
        let mut rx = self.failure.subscribe();
        Box::pin(async move {
            loop {
                if let Some(e) = rx.borrow_and_update().clone() {
                    return io::Error::new(e.kind(), e.to_string());
                }
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Rules and routes go first, while the device (the routes' interface) exists.
            let installed = self.routes.lock().ok().and_then(|mut r| r.take());
            if let Some(installed) = installed {
                let tag = self.tag.clone();
                let removed = tokio::task::spawn_blocking(move || installed.remove()).await;
                if let Ok(Err(e)) = removed {
                    tracing::error!(target: "inbound", tag = %tag, "auto_route: removing rules and routes: {e}");
                }
            }
            if let Some(w) = self.watchdog.lock().ok().and_then(|mut w| w.take()) {
                w.abort();
            }
            let stack = self.stack.lock().ok().and_then(|mut s| s.take());
            // Stopping the pump drops the device, and the kernel removes the interface.
            if let Some(stack) = stack {
                stack.close().await;
            }
        })
    }
}
