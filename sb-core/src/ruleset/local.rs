//! `local` rule sets: the file read at build time, then watched while sb runs.
//!
//! Go watches the file with fsnotify; sb polls its modification time, size and inode every
//! [`super::WATCH_INTERVAL`]. Polling needs no platform code, sees a file replaced by a
//! rename (how editors and `mv` update files) as well as one rewritten in place, and a stat
//! every two seconds costs nothing. A new version that fails to read or parse is logged and
//! the old rules stay.

use crate::router::rule::{Matcher, RuleSetMatcher};
use sb_config::model::rule_set::RuleSetFormat;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{error, info};

/// What identifies one version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// A rule-set file and its format.
#[derive(Clone, Debug)]
pub struct LocalFile {
    /// The path as configured (after `~`/`$VAR` expansion); relative to the working
    /// directory.
    pub path: PathBuf,
    /// Source or binary.
    pub format: RuleSetFormat,
}

impl LocalFile {
    /// A file to load.
    pub fn new(path: PathBuf, format: RuleSetFormat) -> LocalFile {
        LocalFile { path, format }
    }

    fn stamp(&self) -> Option<Stamp> {
        let m = std::fs::metadata(&self.path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            inode,
        })
    }

    /// Reads and compiles the file; also returns the version read, for the watcher.
    pub fn load(&self) -> Result<(Vec<Matcher>, Option<Stamp>), String> {
        // Stamp first: a change racing the read is then seen again by the next poll.
        let stamp = self.stamp();
        let name = self.path.display().to_string();
        let bytes = std::fs::read(&self.path).map_err(|e| format!("read {name}: {e}"))?;
        let rules = sb_config::rule_set_file::parse_any(&bytes, self.format, &name)
            .map_err(|e| e.to_string())?;
        let compiled = super::compile(&rules).map_err(|e| format!("{name}: {e}"))?;
        Ok((compiled, stamp))
    }
}

/// Polls `file` every `every` and swaps new rules into `matcher` when it changes.
pub async fn watch(file: LocalFile, matcher: Arc<RuleSetMatcher>, every: Duration) {
    let mut seen = file.stamp();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = file.stamp();
        if now == seen {
            continue;
        }
        seen = now;
        if now.is_none() {
            // Removed (or mid-replace): keep the rules; a new file is picked up when it
            // appears.
            continue;
        }
        let f = file.clone();
        let loaded = tokio::task::spawn_blocking(move || f.load()).await;
        match loaded {
            Ok(Ok((rules, stamp))) => {
                seen = stamp;
                let n = rules.len();
                matcher.replace(rules);
                info!(target: "router", tag = matcher.tag(), rules = n, "reloaded rule-set {}", matcher.tag());
            }
            Ok(Err(e)) => {
                error!(target: "router", "reload rule-set {}: {e}", matcher.tag());
            }
            Err(e) => error!(target: "router", "reload rule-set {}: {e}", matcher.tag()),
        }
    }
}
