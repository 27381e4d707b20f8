//! The `log` section.

use serde::{Deserialize, Serialize};

/// `log` options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// No logging at all.
    pub disabled: bool,
    /// Minimum level; `trace` when unset (Go's observed default).
    pub level: Option<LogLevel>,
    /// `""`/`stderr`, `stdout`, or a file path (no colour; no time unless `timestamp`).
    pub output: String,
    /// Prefix lines with the wall-clock time.
    pub timestamp: bool,
}

/// Log levels (`warning` is read as `warn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `""`: not set (the default, `trace`).
    #[serde(rename = "")]
    Unset,
    /// Most verbose.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warnings.
    Warn,
    /// Same as `warn`; kept as written because `format` writes it back unchanged.
    Warning,
    /// Errors.
    Error,
    /// Fatal.
    Fatal,
    /// Panic.
    Panic,
}
