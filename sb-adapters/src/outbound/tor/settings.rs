//! The `tor` outbound's options, checked when sb builds the outbound (so `sb check` refuses
//! what `sb run` would). Without `executable_path` they become arti's configuration: the
//! `arti_config` file, the `torrc` keys that have an arti equivalent, and the data
//! directory, in layers where later ones win: sb's defaults (a private temporary data
//! directory when `data_directory` is empty), then the `arti_config` file, then what sb
//! derives from the outbound's own fields. With `executable_path`, they are what the
//! external tor is started with (`tor/external.rs`).

use arti_client::config::{ConfigurationSource, ConfigurationSources, TorClientConfig};
use sb_config::ctx::expand_env;
use std::path::{Path, PathBuf};
use tor_config::load::ConfigResolveOptions;

/// Why the `tor` outbound's options cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TorError {
    /// `executable_path` names no executable file.
    #[error("executable_path: {0}: no such executable")]
    Executable(String),
    /// `arti_config` with `executable_path`: the file is arti's, the external tor reads torrc.
    #[error("arti_config is for Tor in process (arti); with executable_path, tor takes torrc and extra_args")]
    ArtiConfigWithExternal,
    /// A torrc key with no arti equivalent.
    #[error("torrc.{key}: not supported by arti (Tor in process): {why}")]
    Unmapped {
        /// The torrc key.
        key: String,
        /// What to do instead.
        why: &'static str,
    },
    /// A torrc value sb cannot read.
    #[error("torrc.{key}: invalid value {value:?}: {why}")]
    BadValue {
        /// The torrc key.
        key: String,
        /// Its value.
        value: String,
        /// What was expected.
        why: &'static str,
    },
    /// A path sb must hand to arti is not UTF-8.
    #[error("{field}: the path {path:?} is not UTF-8")]
    Path {
        /// The field that holds it.
        field: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The `arti_config` file, or the result of the layers, is not a valid arti config.
    #[error("arti_config {path:?}: {message}")]
    Arti {
        /// The file (empty when there is none).
        path: String,
        /// arti's message.
        message: String,
    },
}

/// How Tor runs.
pub enum Mode {
    /// In process, with this configuration.
    Arti(Box<TorClientConfig>),
    /// An external tor process.
    External(super::external::Settings),
}

/// What the outbound runs Tor with.
pub struct Settings {
    /// Where Tor runs.
    pub mode: Mode,
    /// The directory sb uses for this run when `data_directory` is empty (removed at close).
    pub scratch: Option<PathBuf>,
}

/// sb-only settings of arti that no user setting may change. The relay connections must
/// go through sb's Dialer (the TCP provider of `bridge.rs`); arti's own proxy setting would
/// take them around it.
const FORBIDDEN: &[(&str, &str)] = &[(
    "channel.outbound_proxy",
    "relay connections go through the outbound's dial fields; use `detour` for a proxy",
)];

impl Settings {
    /// Reads and checks the options. `tag` names the scratch directory.
    pub fn from_config(
        tag: &str,
        o: &sb_config::model::outbound::TorOutbound,
    ) -> Result<Settings, TorError> {
        // Go expands environment variables in data_directory (os.ExpandEnv).
        let data_directory = expand_env(&o.data_directory);
        let scratch = data_directory.is_empty().then(|| {
            // Go's default too: a fresh directory, so every start bootstraps from scratch.
            std::env::temp_dir().join(format!(
                "sb-tor-{}-{}-{:08x}",
                sanitize(tag),
                std::process::id(),
                rand::random::<u32>()
            ))
        });
        if !o.executable_path.is_empty() {
            if !o.arti_config.is_empty() {
                return Err(TorError::ArtiConfigWithExternal);
            }
            let executable = find_executable(&o.executable_path)
                .ok_or_else(|| TorError::Executable(o.executable_path.clone()))?;
            let dir = scratch
                .clone()
                .unwrap_or_else(|| PathBuf::from(&data_directory));
            return Ok(Settings {
                mode: Mode::External(super::external::Settings {
                    executable,
                    extra_args: o.extra_args.clone(),
                    torrc: o.torrc.clone(),
                    data_directory: dir,
                }),
                scratch,
            });
        }
        let mut sources = ConfigurationSources::new_empty();
        if let Some(dir) = &scratch {
            sources.push_source(
                ConfigurationSource::Verbatim(std::sync::Arc::new(storage_toml(dir, "")?)),
                tor_config::sources::MustRead::MustRead,
            );
        }
        if !o.arti_config.is_empty() {
            sources.push_source(
                ConfigurationSource::File(PathBuf::from(&o.arti_config)),
                tor_config::sources::MustRead::MustRead,
            );
        }
        if !data_directory.is_empty() {
            for line in storage_toml(Path::new(&data_directory), "storage.")?.lines() {
                sources.push_option(line);
            }
        }
        for (key, value) in &o.torrc {
            for option in torrc_option(key, value)? {
                sources.push_option(option);
            }
        }
        let arti = |message: String| TorError::Arti {
            path: o.arti_config.clone(),
            message,
        };
        let tree = sources.load().map_err(|e| arti(e.to_string()))?;
        for (key, why) in FORBIDDEN {
            if let Ok(Some(_)) = tree.get_serde_value::<serde_json::Value>(key) {
                return Err(arti(format!("{key} cannot be set: {why}")));
            }
        }
        let resolved = tor_config::resolve_return_results::<TorClientConfig>(
            &tree,
            &ConfigResolveOptions::default(),
        )
        .map_err(|e| arti(e.to_string()))?;
        // arti would only warn; a key sb does not pass on is a mistake the user must see.
        if let Some(key) = resolved.unrecognized.first() {
            return Err(arti(format!("unknown key {key}")));
        }
        Ok(Settings {
            mode: Mode::Arti(Box::new(resolved.value)),
            scratch,
        })
    }
}

/// `[storage]` under `dir` (`state` and `cache`), as literal paths: arti expands `~` and
/// `${...}` in plain strings, which a directory name may contain.
fn storage_toml(dir: &Path, prefix: &str) -> Result<String, TorError> {
    let text = dir.to_str().ok_or_else(|| TorError::Path {
        field: "data_directory",
        path: dir.to_path_buf(),
    })?;
    let header = if prefix.is_empty() { "[storage]\n" } else { "" };
    let quoted = |sub: &str| toml_string(&format!("{}/{sub}", text.trim_end_matches('/')));
    Ok(format!(
        "{header}{prefix}state_dir = {{ literal = {} }}\n{prefix}cache_dir = {{ literal = {} }}\n",
        quoted("state"),
        quoted("cache")
    ))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `name` as an executable file: itself when it holds a `/`, else looked up in `PATH`.
fn find_executable(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return runnable(&p).then_some(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| runnable(p))
}

/// A tag as a file name.
fn sanitize(tag: &str) -> String {
    tag.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(32)
        .collect()
}

/// The arti options for one torrc line, or why there are none. Keys compare as tor does
/// (case-insensitively).
fn torrc_option(key: &str, value: &str) -> Result<Vec<String>, TorError> {
    let bad = |why| TorError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        why,
    };
    let v = value.trim();
    let options = match key.to_ascii_lowercase().as_str() {
        "longlivedports" => {
            let ports = v
                .split(',')
                .map(|p| p.trim().parse::<u16>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad("a comma-separated list of ports"))?;
            let list: Vec<String> = ports.iter().map(u16::to_string).collect();
            vec![format!("path_rules.long_lived_ports = [{}]", list.join(", "))]
        }
        "reachableaddresses" | "reachableoraddresses" => {
            let mut patterns = Vec::new();
            for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let entry = entry.strip_prefix("accept ").unwrap_or(entry).trim();
                if entry.starts_with("reject") {
                    return Err(bad(
                        "arti only takes the addresses it may reach (`accept` entries)",
                    ));
                }
                patterns.push(toml_string(entry));
            }
            if patterns.is_empty() {
                return Err(bad("a comma-separated list of address:port patterns"));
            }
            vec![format!("path_rules.reachable_addrs = [{}]", patterns.join(", "))]
        }
        "enforcedistinctsubnets" => match v {
            // /33 and /129 are longer than any address: no two relays share a family.
            "0" => vec![
                "path_rules.ipv4_subnet_family_prefix = 33".into(),
                "path_rules.ipv6_subnet_family_prefix = 129".into(),
            ],
            "1" => vec![],
            _ => return Err(bad("0 or 1")),
        },
        "maxcircuitdirtiness" => {
            let secs = parse_seconds(v).ok_or_else(|| bad("seconds, or a number with a unit"))?;
            vec![format!("circuit_timing.max_dirtiness = \"{secs}s\"")]
        }
        "connectionpadding" => match v {
            "0" => vec!["channel.padding = \"none\"".into()],
            "1" | "auto" => vec![],
            _ => return Err(bad("0, 1 or auto")),
        },
        "reducedconnectionpadding" => match v {
            "1" => vec!["channel.padding = \"reduced\"".into()],
            "0" => vec![],
            _ => return Err(bad("0 or 1")),
        },
        "datadirectory" => {
            return Err(TorError::Unmapped {
                key: key.to_string(),
                why: "use the outbound's data_directory field",
            })
        }
        "socks5proxy" | "socks4proxy" | "httpsproxy" => {
            return Err(TorError::Unmapped {
                key: key.to_string(),
                why: "relay connections go through the outbound's dial fields; use `detour` for a proxy",
            })
        }
        _ => {
            return Err(TorError::Unmapped {
                key: key.to_string(),
                why: "arti has no such setting (the keys sb maps are listed in docs/tor.md); use arti_config for arti's own settings",
            })
        }
    };
    Ok(options)
}

/// tor's interval syntax as far as `MaxCircuitDirtiness` needs it: `600`, `10 minutes`.
fn parse_seconds(v: &str) -> Option<u64> {
    let (n, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], v[i..].trim()),
        None => (v, ""),
    };
    let n: u64 = n.parse().ok()?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests;
