//! The cache file on disk (hardening finding 14): written privately and durably, a damaged
//! sb file moved aside at start instead of stopping sb (but never touched by a check), a
//! foreign file still refused and left alone.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{CacheFile, CacheFileError};
use sb_config::model::experimental::CacheFile as CacheFileConfig;
use sb_core::lifecycle::Background;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sb-cache-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn open(path: &Path) -> Result<Option<std::sync::Arc<CacheFile>>, CacheFileError> {
    let config = CacheFileConfig {
        enabled: true,
        path: path.display().to_string(),
        ..Default::default()
    };
    CacheFile::open(
        Some(&config),
        &[],
        &HashMap::new(),
        &std::sync::Arc::new(sb_core::router::ClashMode::new("Rule")),
    )
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_file_is_written_for_the_owner_only_and_no_temporary_is_left() {
    let d = dir("mode");
    let path = d.join("cache.db");
    let file = open(&path).unwrap().unwrap();
    // Nothing stored yet for this config's id: the first save writes.
    file.save().unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    assert_eq!(names(&d), ["cache.db"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test]
async fn a_truncated_sb_file_is_moved_aside_at_start_but_not_by_a_check() {
    let d = dir("truncated");
    let path = d.join("cache.db");
    let whole = r#"{"format":"sb-cache-file/1","ids":{"":{"selected":{"s":"b"}}}}"#;
    std::fs::write(&path, &whole[..30]).unwrap();
    // Opening (what `sb check` does) changes nothing on disk.
    let file = open(&path).unwrap().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), &whole[..30]);
    // Starting (what `sb run` does) keeps the damaged file beside, and runs on.
    file.clone().start();
    let after = names(&d);
    assert!(
        after.iter().any(|n| n.starts_with("cache.db.corrupt-")),
        "{after:?}"
    );
    file.close();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.contains("sb-cache-file/1"), "{saved}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_foreign_file_is_still_refused_and_left_alone() {
    let d = dir("foreign");
    let path = d.join("cache.db");
    std::fs::write(&path, b"\x00\x01bbolt-like bytes").unwrap();
    assert!(matches!(open(&path), Err(CacheFileError::Foreign(_))));
    assert_eq!(std::fs::read(&path).unwrap(), b"\x00\x01bbolt-like bytes");
    std::fs::remove_dir_all(&d).unwrap();
}

fn open_with_mode(
    path: &Path,
    mode: &std::sync::Arc<sb_core::router::ClashMode>,
) -> std::sync::Arc<CacheFile> {
    let config = CacheFileConfig {
        enabled: true,
        path: path.display().to_string(),
        ..Default::default()
    };
    CacheFile::open(Some(&config), &[], &HashMap::new(), mode)
        .unwrap()
        .unwrap()
}

fn modes(list: &[&str]) -> std::sync::Arc<sb_core::router::ClashMode> {
    std::sync::Arc::new(sb_core::router::ClashMode::with_list(
        list[0],
        list.iter().map(|m| m.to_string()).collect(),
    ))
}

#[test]
fn the_mode_is_kept_once_switched_and_restored_only_when_still_listed() {
    let d = dir("clash-mode");
    let path = d.join("cache.db");
    // Not switched: nothing stored, the next start keeps its default.
    let m = modes(&["Rule", "Direct"]);
    open_with_mode(&path, &m).close();
    assert!(!std::fs::read_to_string(&path).unwrap().contains("\"mode\""));
    // Switched (case-insensitively, to the listed spelling): stored.
    assert_eq!(m.switch("direct").as_deref(), Some("Direct"));
    open_with_mode(&path, &m).close();
    let m2 = modes(&["Rule", "Direct"]);
    let f = open_with_mode(&path, &m2);
    assert_eq!(m2.get(), "Direct");
    // A later save without a switch keeps the stored mode.
    f.close();
    let m3 = modes(&["Rule", "Global"]);
    open_with_mode(&path, &m3);
    assert_eq!(m3.get(), "Rule", "Direct is no longer listed");
    let m4 = modes(&["Rule", "Direct"]);
    open_with_mode(&path, &m4);
    assert_eq!(m4.get(), "Direct");
}

#[test]
fn files_written_before_the_mode_was_kept_still_load() {
    let d = dir("old-format");
    let path = d.join("cache.db");
    std::fs::write(
        &path,
        r#"{"format":"sb-cache-file/1","ids":{"":{"selected":{},"fakeip":{}}}}"#,
    )
    .unwrap();
    let m = modes(&["Rule", "Direct"]);
    open_with_mode(&path, &m);
    assert_eq!(m.get(), "Rule");
}
