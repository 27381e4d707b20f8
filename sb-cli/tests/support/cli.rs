//! What the `sb` binary's test files share: running it in a fresh directory, and reading
//! what it printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `sb` with `args` in `dir` to the end.
pub fn sb(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sb"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run sb")
}

/// A fresh directory under the target dir for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
