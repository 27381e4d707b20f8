//! Outbounds: where flows leave sb.

pub mod block;
pub mod direct;
pub mod http;
pub mod selector;
pub mod socks;
pub mod socks_udp;
pub mod ssh;
pub mod uot;
pub mod urltest;
