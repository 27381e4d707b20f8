//! Outbounds: where flows leave sb.

pub mod block;
pub mod direct;
pub mod http;
pub mod selector;
pub mod socks;
pub mod socks_udp;
pub mod ssh;
#[cfg(feature = "tor")]
pub mod tor;
pub mod uot;
pub mod urltest;

/// A group's members resolved to outbounds, in config order, once every outbound is built
/// (tags sb-config could not resolve are left out).
fn resolve_members<C>(
    members: &[String],
    all: &std::collections::HashMap<String, std::sync::Arc<dyn sb_core::adapter::Outbound>>,
) -> C
where
    C: FromIterator<(String, std::sync::Arc<dyn sb_core::adapter::Outbound>)>,
{
    members
        .iter()
        .filter_map(|m| all.get(m).map(|o| (m.clone(), o.clone())))
        .collect()
}
