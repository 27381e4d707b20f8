//! The cache file on disk: reading it and telling sb's file from a damaged one and from a
//! foreign one, writing it durably and privately, and moving a damaged one aside.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What was found at the path.
pub(super) enum Found {
    /// Nothing, or an empty file.
    Nothing,
    /// sb's file, whole.
    Ours(Vec<u8>),
    /// sb's marker, but not a whole file (cut short by a crash or a full disk): moved aside
    /// at start.
    Damaged,
    /// Someone else's file (Go's bbolt `cache.db`): never touched.
    Foreign,
}

/// Reads `path` and classifies it; `marker` is the text every sb file starts with.
pub(super) fn read(path: &Path, marker: &str, whole: impl Fn(&[u8]) -> bool) -> io::Result<Found> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e),
    };
    if bytes.is_empty() {
        return Ok(Found::Nothing);
    }
    if whole(&bytes) {
        return Ok(Found::Ours(bytes));
    }
    // sb writes `{"format":"<marker>"` first; a file that starts so is sb's, however cut.
    let head = format!("{{\"format\":\"{marker}\"");
    let prefix = &bytes[..bytes.len().min(head.len())];
    if head.as_bytes().starts_with(prefix) && prefix.len() > 1 {
        Ok(Found::Damaged)
    } else {
        Ok(Found::Foreign)
    }
}

/// Moves a damaged file aside (`<name>.corrupt-<unix seconds>`), returning where.
pub(super) fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{secs}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never a cut
/// one: a temporary file beside it (a random name, created only by this call, mode 0600:
/// the file holds what a user chose and visited), synced, renamed over the file, and the
/// directory synced so the rename itself survives a power loss.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "cache".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
