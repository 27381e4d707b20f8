//! Reading the configuration the way Go sing-box does: `-c` files (or `stdin`), every `*.json`
//! of each `-C` directory, sorted by path; `config.json` when neither is given; `-D` first
//! changes the working directory.

use crate::cli::Global;
use anyhow::{Context, Result};
use sb_config::Source;
use std::io::Read;
use std::path::PathBuf;

/// Applies `-D`.
pub fn enter_directory(g: &Global) -> Result<()> {
    if let Some(dir) = &g.directory {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create directory {}", dir.display()))?;
        std::env::set_current_dir(dir)
            .with_context(|| format!("enter directory {}", dir.display()))?;
    }
    Ok(())
}

/// The config files named by the options, sorted as Go sorts them.
pub fn paths(g: &Global) -> Result<Vec<String>> {
    let mut out: Vec<String> = g.config.clone();
    for dir in &g.config_directory {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            anyhow::anyhow!(
                "read config directory at {}: {}",
                dir.display(),
                sb_core::error_text(&e)
            )
        })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("read config directory at {}", dir.display()))?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "json") && p.is_file() {
                files.push(p);
            }
        }
        out.extend(files.into_iter().map(|p| p.to_string_lossy().into_owned()));
    }
    if out.is_empty() {
        out.push("config.json".into());
    }
    out.sort();
    Ok(out)
}

/// Reads one config source.
pub fn read(name: &str) -> Result<Source> {
    let text = if name == "stdin" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read config from stdin")?;
        s
    } else {
        std::fs::read_to_string(name).map_err(|e| {
            anyhow::anyhow!(
                "read config at {name}: open {name}: {}",
                sb_core::error_text(&e)
            )
        })?
    };
    Ok(Source {
        name: name.to_string(),
        text,
    })
}

/// Reads every source the options name.
pub fn read_all(g: &Global) -> Result<Vec<Source>> {
    paths(g)?.iter().map(|p| read(p)).collect()
}

/// The working directory, against which relative paths in a config resolve (as in Go).
pub fn cwd() -> Result<PathBuf> {
    std::env::current_dir().context("get the working directory")
}
