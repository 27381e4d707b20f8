//! sb-adapters: the protocol adapters (inbounds, outbounds, endpoints) and the one registry
//! table that maps a config `type` to its builder.
//!
//! In the flow, inbounds here accept connections and hand flows to sb-core's dispatcher;
//! outbounds here carry the flows the router chose. Implemented so far: inbounds `mixed`,
//! `socks`, `http`, `direct`; outbounds `direct`, `block`, `socks`, `http` and the groups
//! `selector` and `urltest`. Every other type sb-config accepts is refused by
//! [`registry::build`] with an error naming the adapter, never run as a stub.

pub mod cache_file;
pub mod endpoint;
pub mod inbound;
pub mod netlink;
pub mod outbound;
pub mod proto;
pub mod registry;
mod uot_conn;
