//! Endpoints: adapters that are an outbound and an inbound at once (sb-core's `Endpoint`).
//! The registry builds them; the lifecycle brings them up before the inbounds.

#[cfg(feature = "wireguard")]
pub mod wireguard;

#[cfg(feature = "tailscale")]
pub mod tailscale;
