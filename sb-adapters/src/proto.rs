//! Wire formats the adapters speak, sans-IO and tested as pure functions.

pub mod http;
pub mod socks;
pub mod socks_udp;
pub mod uot;
