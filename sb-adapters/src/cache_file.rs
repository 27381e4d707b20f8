//! `experimental.cache_file`: what sb keeps across restarts — each selector's choice, the Clash
//! mode once the Clash API switched it (restored only if the config still lists it), and with
//! `store_fakeip` the FakeIP pools' domain mapping, so clients holding fake addresses from
//! before a restart still reach their domains. Restored when the instance is built, saved by
//! a background task once a second when something changed, and once more at shutdown.
//!
//! The file is sb's own JSON (Go keeps a bbolt database under the same default name
//! `cache.db`): a file that exists but is not sb's is never overwritten — sb refuses to start
//! and says so, so a Go cache file is not lost by trying sb on the same config. An sb file
//! that was cut short (a crash, a full disk) does not stop sb: at start it is moved aside as
//! `<path>.corrupt-<time>` with a warning and sb begins with an empty cache (`sb check` reads
//! but never moves it). Writes are atomic and private (`cache_file/disk.rs`).

mod disk;

use crate::outbound::selector::Selector;
use sb_config::model::experimental::CacheFile as CacheFileConfig;
use sb_core::dns::fakeip::{FakeIp, FakeIpState};
use sb_core::lifecycle::Background;
use sb_core::router::ClashMode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Marks the file as sb's.
const FORMAT: &str = "sb-cache-file/1";

/// How often changes are written.
const SAVE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Stored {
    format: String,
    /// `cache_id`: several configs may share a file, each under its own id.
    #[serde(default)]
    ids: BTreeMap<String, Entry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Entry {
    #[serde(default)]
    selected: BTreeMap<String, String>,
    #[serde(default)]
    fakeip: BTreeMap<String, FakeIpState>,
    /// The Clash mode the API last switched to (absent in files written before sb kept it,
    /// and until the API switches the mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
}

/// Why the cache file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheFileError {
    /// It could not be read or written.
    #[error("cache file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// It is not sb's.
    #[error("cache file {0}: not an sb cache file (Go sing-box's cache.db is a bbolt database); set experimental.cache_file.path to another file")]
    Foreign(String),
}

/// An open cache file.
pub struct CacheFile {
    path: PathBuf,
    id: String,
    store_fakeip: bool,
    pools: Vec<Arc<FakeIp>>,
    selectors: HashMap<String, Arc<Selector>>,
    mode: Arc<ClashMode>,
    /// The whole file as last read or written (other ids are kept as they were).
    stored: Mutex<Stored>,
    /// The file on disk is a damaged sb file, to move aside when the instance starts.
    damaged: AtomicBool,
    stop: Notify,
    stopped: AtomicBool,
}

impl CacheFile {
    /// Opens the file and restores what it holds into the selectors and FakeIP pools.
    /// `None` when the cache file is not enabled.
    pub fn open(
        config: Option<&CacheFileConfig>,
        pools: &[Arc<FakeIp>],
        selectors: &HashMap<String, Arc<Selector>>,
        mode: &Arc<ClashMode>,
    ) -> Result<Option<Arc<CacheFile>>, CacheFileError> {
        let Some(c) = config.filter(|c| c.enabled) else {
            return Ok(None);
        };
        let path = PathBuf::from(if c.path.is_empty() {
            "cache.db"
        } else {
            c.path.as_str()
        });
        let shown = path.display().to_string();
        let parse = |b: &[u8]| {
            serde_json::from_slice::<Stored>(b)
                .ok()
                .filter(|s| s.format == FORMAT)
        };
        let found = disk::read(&path, FORMAT, |b| parse(b).is_some()).map_err(|source| {
            CacheFileError::Io {
                path: shown.clone(),
                source,
            }
        })?;
        let (stored, damaged) = match found {
            disk::Found::Nothing => (Stored::default(), false),
            disk::Found::Ours(bytes) => (parse(&bytes).unwrap_or_default(), false),
            disk::Found::Damaged => (Stored::default(), true),
            disk::Found::Foreign => return Err(CacheFileError::Foreign(shown)),
        };
        let file = CacheFile {
            path,
            id: c.cache_id.clone(),
            store_fakeip: c.store_fakeip,
            pools: pools.to_vec(),
            selectors: selectors.clone(),
            mode: mode.clone(),
            stored: Mutex::new(stored),
            damaged: AtomicBool::new(damaged),
            stop: Notify::new(),
            stopped: AtomicBool::new(false),
        };
        file.restore();
        Ok(Some(Arc::new(file)))
    }

    fn restore(&self) {
        let Ok(stored) = self.stored.lock() else {
            return;
        };
        let Some(entry) = stored.ids.get(&self.id) else {
            return;
        };
        for (group, member) in &entry.selected {
            if let Some(s) = self.selectors.get(group) {
                // A member removed from the config since: keep the config's default.
                if s.select(member).is_err() {
                    tracing::debug!(target: "cache-file", "{group}: stored choice {member} is gone");
                }
            }
        }
        // Go restores a stored mode only if today's config still lists it.
        if let Some(m) = entry.mode.as_deref() {
            match self.mode.canonical(m) {
                Some(listed) => self.mode.set(listed),
                None => {
                    tracing::debug!(target: "cache-file", "stored mode {m} is not in the mode list")
                }
            }
        }
        if self.store_fakeip {
            for pool in &self.pools {
                if let Some(state) = entry.fakeip.get(pool.tag()) {
                    pool.restore(state);
                }
            }
        }
    }

    /// Writes the file if anything changed (atomically: a temporary file renamed over it).
    pub fn save(&self) -> Result<(), CacheFileError> {
        let mut entry = Entry::default();
        for (tag, s) in &self.selectors {
            entry.selected.insert(tag.clone(), s.selected());
        }
        let mut fakeip_changed = false;
        if self.store_fakeip {
            for pool in &self.pools {
                if let Some((state, dirty)) = pool.snapshot() {
                    fakeip_changed |= dirty;
                    entry.fakeip.insert(pool.tag().to_string(), state);
                }
            }
        }
        let Ok(mut stored) = self.stored.lock() else {
            return Ok(());
        };
        // The mode is stored once the API switched it; until then the stored one stays.
        entry.mode = if self.mode.switched() {
            Some(self.mode.get())
        } else {
            stored.ids.get(&self.id).and_then(|e| e.mode.clone())
        };
        if !fakeip_changed && stored.ids.get(&self.id) == Some(&entry) {
            return Ok(());
        }
        stored.format = FORMAT.to_string();
        stored.ids.insert(self.id.clone(), entry);
        let io = |source| CacheFileError::Io {
            path: self.path.display().to_string(),
            source,
        };
        if self.damaged.load(Ordering::Acquire) {
            // Not moved aside yet (the instance never started): leave it for the user.
            return Ok(());
        }
        let bytes = serde_json::to_vec(&*stored).map_err(|e| io(std::io::Error::other(e)))?;
        disk::write_atomically(&self.path, &bytes).map_err(io)
    }

    /// Moves a damaged file aside (once, when the instance starts).
    fn move_damaged_aside(&self) {
        if !self.damaged.load(Ordering::Acquire) {
            return;
        }
        match disk::move_aside(&self.path) {
            Ok(aside) => {
                tracing::warn!(target: "cache-file", "{}: damaged (cut short?), moved to {}; starting with an empty cache", self.path.display(), aside.display());
                self.damaged.store(false, Ordering::Release);
            }
            Err(e) => {
                tracing::error!(target: "cache-file", "{}: damaged, and moving it aside failed: {e}; nothing is saved", self.path.display());
            }
        }
    }
}

impl Background for CacheFile {
    fn start(self: Arc<Self>) {
        self.move_damaged_aside();
        tokio::spawn(async move {
            while !self.stopped.load(Ordering::Acquire) {
                tokio::select! {
                    () = self.stop.notified() => return,
                    () = tokio::time::sleep(SAVE_EVERY) => {}
                }
                if let Err(e) = self.save() {
                    tracing::error!(target: "cache-file", "{e}");
                }
            }
        });
    }

    fn flush(&self) {
        if let Err(e) = self.save() {
            tracing::error!(target: "cache-file", "{e}");
        }
    }

    fn close(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop.notify_waiters();
        if let Err(e) = self.save() {
            tracing::error!(target: "cache-file", "{e}");
        }
    }
}

#[cfg(test)]
mod tests;
