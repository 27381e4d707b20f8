//! Inbounds: where flows enter sb.

pub mod direct;
pub mod listener;
pub mod proxy;
#[cfg(feature = "tun")]
pub mod tun;
pub mod udp_nat;
mod uot;

/// The listen fields' `udp_timeout` (`None`: not set, Go's default applies).
fn udp_timeout(l: &sb_config::model::shared::ListenFields) -> Option<std::time::Duration> {
    let t = l.udp_timeout.0;
    (!t.is_zero()).then(|| t.to_std())
}
