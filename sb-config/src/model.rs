//! Typed models of the sing-box 1.14 JSON, one file per section or adapter family, each with
//! its decoder (from the located [`crate::jsonc::Node`] tree) and its `format` writer.

pub mod check;
pub mod config;
pub mod dns;
pub mod dns_record;
pub mod dns_server;
pub mod endpoint;
pub mod experimental;
pub mod http_client;
pub mod inbound;
pub mod log;
pub mod outbound;
pub mod route;
pub mod route_rule;
pub mod rule_match;
pub mod rule_set;
pub mod shared;
pub mod tun;
pub mod typed;
