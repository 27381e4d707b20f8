//! Inbounds: where flows enter sb.

pub mod direct;
pub mod listener;
pub mod proxy;
pub mod udp_nat;
