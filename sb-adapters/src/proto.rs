//! Wire formats the adapters speak, sans-IO and tested as pure functions.

pub mod chunked;
pub mod http;
pub mod http_forward;
pub mod socks;
pub mod socks_udp;
pub mod tor_control;
pub mod uot;
