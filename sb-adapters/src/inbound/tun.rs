//! The `tun` inbound: a TUN device whose packets go through a userspace TCP/IP stack
//! (netstack-smoltcp on smoltcp 0.13, see `docs/tun.md`), so that every TCP connection and
//! UDP conversation a program on this machine sends into the device enters the router as a
//! flow with its real destination.
//!
//! ```text
//!  kernel ─ TUN ─ device.rs ─ pump.rs ─ netstack ─┬─ TCP listener ─┐
//!                (tun-rs)    (packets)  (smoltcp) └─ UDP socket ───┴─ flows.rs ─> dispatcher
//! ```
//!
//! The stack also answers ICMP echo for any destination routed into the device. With
//! `auto_route`, Go's policy rules and table routes are installed over rtnetlink once the
//! device is up (`route_plan.rs` computes them, `auto_route.rs` installs them) and removed
//! at close; fields sb does not implement are refused at build (`settings.rs`). TCP to a
//! `loopback_address` is turned back to the host in the pump (`loopback.rs`).

mod auto_route;
mod device;
mod flows;
pub mod loopback;
pub mod pump;
pub mod route_plan;
pub mod settings;
#[cfg(test)]
mod tests;

pub use device::TunDevice;
pub use flows::FlowSource;

use futures::StreamExt;
pub use netstack_smoltcp::PacketPool;
use sb_config::model::tun::TunInbound;
use sb_core::adapter::{BoxFuture, FlowHandler, Inbound};
use settings::Settings;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tracing::info;

/// A `tun` inbound.
pub struct TunIn {
    tag: Arc<str>,
    settings: Settings,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    routes: Mutex<Option<auto_route::Installed>>,
}

impl TunIn {
    /// Builds it; fails (naming the field) on options sb does not implement.
    pub fn new(tag: &str, options: &TunInbound) -> Result<TunIn, settings::TunError> {
        Ok(TunIn {
            tag: tag.into(),
            settings: settings::from_config(options)?,
            tasks: Mutex::default(),
            routes: Mutex::default(),
        })
    }
}

/// The userspace stack and the tasks that serve it, started over any [`pump::PacketDevice`]:
/// the TUN in production, an in-memory device in tests. `pool` holds the packet buffers
/// the pump, the stack and the UDP flows pass around and give back
/// ([`PacketPool::for_mtu`] unless a test wants to watch it). TCP to a `loopback` address
/// is turned around in the pump and never reaches the stack.
pub fn serve<D: pump::PacketDevice>(
    device: Arc<D>,
    batch: pump::RxBatch,
    mtu: u16,
    pool: PacketPool,
    loopback: loopback::Loopback,
    source: FlowSource,
) -> io::Result<Vec<JoinHandle<()>>> {
    let (stack, runner, udp, tcp) = netstack_smoltcp::StackBuilder::default()
        .enable_tcp(true)
        .enable_udp(true)
        .enable_icmp(true)
        .mtu(usize::from(mtu))
        .packet_pool(pool.clone())
        .build()?;
    let (Some(runner), Some(udp), Some(tcp)) = (runner, udp, tcp) else {
        return Err(io::Error::other(
            "the userspace stack started without TCP or UDP",
        ));
    };
    let label = source.label.clone();
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = runner.await {
            tracing::error!(target: "inbound", tag = %label, "tun: stack stopped: {e}");
        }
    })];
    tasks.push(tokio::spawn(pump::run(
        device,
        stack,
        pool.clone(),
        batch,
        loopback,
    )));
    tasks.push(tokio::spawn(flows::accept_tcp(tcp, source.clone())));
    let (from_stack, to_stack) = udp.split();
    tasks.push(tokio::spawn(flows::serve_udp(
        from_stack.fuse(),
        to_stack,
        pool,
        source,
    )));
    Ok(tasks)
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
            let device = TunDevice::open(s)
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
                label,
                handler,
                udp_timeout: s.udp_timeout,
            };
            let pool = PacketPool::for_mtu(usize::from(s.mtu));
            let tasks = serve(
                Arc::new(device),
                batch,
                s.mtu,
                pool,
                s.loopback.clone(),
                source,
            )?;
            if let Ok(mut t) = self.tasks.lock() {
                t.extend(tasks);
            }
            Ok(())
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
            let tasks: Vec<_> = self
                .tasks
                .lock()
                .map(|mut t| t.drain(..).collect())
                .unwrap_or_default();
            // Aborting the pump drops the device, and the kernel removes the interface.
            for t in tasks {
                t.abort();
                let _ = t.await;
            }
        })
    }
}
