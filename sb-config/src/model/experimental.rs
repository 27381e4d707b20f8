//! The `experimental` section: `clash_api` and `cache_file` (sb implements these), `v2ray_api`
//! and `debug` (accepted; sb says what it does with them).

use crate::types::{GoDuration, Listable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `experimental` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Experimental {
    /// Persistent cache.
    pub cache_file: Option<CacheFile>,
    /// Clash-compatible REST API.
    pub clash_api: Option<ClashApi>,
    /// V2Ray stats API (not implemented by sb).
    pub v2ray_api: Option<BTreeMap<String, serde_json::Value>>,
    /// Go runtime tuning (no meaning for sb).
    pub debug: Option<Debug>,
}

/// `experimental.debug`: Go runtime knobs. Parsed exactly so typos are caught; sb warns that
/// they have no effect.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Debug {
    /// pprof listen address.
    pub listen: String,
    /// GOGC.
    pub gc_percent: Option<i64>,
    /// Max goroutine stack.
    pub max_stack: Option<i64>,
    /// Max OS threads.
    pub max_threads: Option<i64>,
    /// Panic on memory faults.
    pub panic_on_fault: Option<bool>,
    /// GOTRACEBACK.
    pub trace_back: String,
    /// Soft memory limit (bytes or a size string).
    pub memory_limit: Option<serde_json::Value>,
    /// OOM killer.
    pub oom_killer: Option<bool>,
}

/// `cache_file` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheFile {
    /// Enabled.
    pub enabled: bool,
    /// Path; `cache.db` when empty.
    pub path: String,
    /// Namespace inside the file.
    pub cache_id: String,
    /// Persist FakeIP mappings.
    pub store_fakeip: bool,
    /// Deprecated in 1.14; accepted with a warning.
    pub store_rdrc: bool,
    /// Rejected-DNS-response cache timeout; 7d when zero.
    pub rdrc_timeout: GoDuration,
    /// Persist DNS answers (1.14).
    pub store_dns: bool,
}

/// `clash_api` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClashApi {
    /// `host:port`; disabled when empty.
    pub external_controller: String,
    /// Directory served at `/ui/`.
    pub external_ui: String,
    /// Dashboard download URL.
    pub external_ui_download_url: String,
    /// Outbound for the download.
    pub external_ui_download_detour: String,
    /// Bearer secret. Never logged.
    pub secret: String,
    /// Initial mode; `Rule` when empty.
    pub default_mode: String,
    /// CORS origins.
    pub access_control_allow_origin: Listable<String>,
    /// CORS private network access.
    pub access_control_allow_private_network: bool,
}

/// Clash API fields Go removed, with Go's message.
pub const CLASH_REMOVED: &[&str] = &[
    "store_mode",
    "store_selected",
    "store_fakeip",
    "cache_file",
    "cache_id",
];
/// Go's message for [`CLASH_REMOVED`].
pub const CLASH_REMOVED_MESSAGE: &str = "cache_file and related fields in Clash API is deprecated in sing-box 1.8.0, use experimental.cache_file instead.";
