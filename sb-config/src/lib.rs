//! sb-config: the sing-box 1.14 config language for sb.
//!
//! This crate is the first stage of sb's flow: it turns config text into a typed [`Config`]
//! that sb-core and sb-adapters build the running system from. It has no I/O besides what the
//! caller hands it, no tokio and no sockets.
//!
//! The pipeline is: [`jsonc::parse`] (JSON with comments and trailing commas, every value
//! located) -> the typed decoders in [`model`] (Go's field names, shapes and defaults; unknown
//! keys rejected with a "did you mean") -> [`validate`] (duplicate tags, every tag reference
//! resolved). Every error is a [`ConfigError`] naming `file:line:column`, the JSON path, the
//! adapter tag, what was expected and what was found. [`format()`] writes a config back the way
//! Go's `sing-box format` does, comments kept; [`merge`] combines files as Go does.
//!
//! Loading reports every error, not only the first: a failing element of an array (inbounds,
//! outbounds, endpoints, DNS servers and rules, route rules and rule sets) or a failing
//! top-level section is recorded and decoding goes on. The errors come in document order,
//! what sb does not implement last (Go decodes those parts fine, so Go's first error comes
//! first), at most [`error::MAX_ERRORS`]: the returned [`ConfigError`] is the first and
//! [`ConfigError::more`] holds the rest. The whole-document checks ([`validate`]) run only when
//! decoding found no error (a left-out element would make its tag "not found"); they too
//! report every error, check by check (duplicates, references, resolvers), each in document
//! order.

// Config errors are built once, on the cold path of loading a file; their size does not
// matter and boxing them would only add noise to every decoder.
#![allow(clippy::result_large_err)]

pub mod base64;
pub mod clash_modes;
pub mod ctx;
pub mod de;
pub mod error;
pub mod format;
pub mod jsonc;
pub mod kinds;
pub mod merge;
pub mod model;
pub mod object;
pub mod path;
pub mod refs;
pub mod rule_set_file;
pub mod types;
pub mod validate;

pub use error::{ConfigError, DecodeError};
pub use model::config::Config;

use jsonc::{Kind, Node};

/// A config that passed every check, with what `format` and the runtime need.
#[derive(Debug)]
pub struct Loaded {
    /// The typed config.
    pub config: Config,
    /// The parsed source (for `format`'s comments; merged when several files were given).
    pub source: Node,
    /// Deprecations and no-effect fields, each located like an error.
    pub warnings: Vec<ConfigError>,
}

/// One input file: its name as the user gave it, and its text.
#[derive(Clone, Debug)]
pub struct Source {
    /// Shown in messages (`stdin` for standard input).
    pub name: String,
    /// The text.
    pub text: String,
}

/// Parses text as JSONC, reporting syntax errors with their position.
pub fn parse(file: &str, text: &str) -> Result<Node, ConfigError> {
    jsonc::parse(text).map_err(|e| {
        let (line, column) = jsonc::line_col(text, e.offset);
        ConfigError {
            file: file.to_string(),
            line: Some(line),
            column: Some(column),
            path: String::new(),
            message: format!("invalid JSON: {}", e.message),
            hint: None,
            tag: None,
            more: Vec::new(),
        }
    })
}

/// Decodes and validates a parsed document without reading any file it names.
pub fn decode(file: &str, text: Option<&str>, root: Node) -> Result<Loaded, ConfigError> {
    decode_in(file, text, root, None)
}

/// Decodes and validates a parsed document. `text` is the source the node was parsed from,
/// for line/column; `None` for merged documents, whose errors carry only the path. With
/// `base_dir`, files the config names are read and checked too (as Go's `check` does),
/// relative paths resolving against `base_dir`.
pub fn decode_in(
    file: &str,
    text: Option<&str>,
    root: Node,
    base_dir: Option<&std::path::Path>,
) -> Result<Loaded, ConfigError> {
    let locate = |e: DecodeError| match text {
        Some(t) => ConfigError::from_decode(file, t, e),
        None => ConfigError::from_decode(file, "", DecodeError { offset: None, ..e }),
    };
    let mut ctx = ctx::Ctx {
        base_dir: base_dir.map(std::path::Path::to_path_buf),
        ..Default::default()
    };
    // Decoding goes on past errors (see `Ctx::errors`), so one run reports them all.
    let config = model::config::decode(&root, &mut ctx).unwrap_or_else(|e| {
        ctx.fail(e);
        Config::default()
    });
    let mut errors = std::mem::take(&mut ctx.errors);
    in_document_order(&root, &mut errors);
    // Only a config that decoded cleanly is validated: with an element left out, its tag
    // would be "not found" and indices would be wrong.
    if errors.is_empty() {
        for mut check in validate::checks(&config, &ctx) {
            in_document_order(&root, &mut check);
            errors.extend(check);
        }
    }
    if let Some(e) = ConfigError::collect(errors.into_iter().map(&locate)) {
        return Err(e);
    }
    let warnings = ctx
        .warnings
        .into_iter()
        .map(|w| locate(DecodeError::at(&w.path, w.offset, w.message)))
        .collect();
    Ok(Loaded {
        config,
        source: root,
        warnings,
    })
}

/// Sorts errors by where their path is in the document, the order in which Go (which stops at
/// its first error) meets them, with what sb does not implement last, since Go decodes those
/// parts fine. A stable sort: errors at the same place keep the order they were found in.
/// Paths rather than byte offsets, because a merged document's offsets point into several files.
fn in_document_order(root: &Node, errors: &mut [DecodeError]) {
    errors.sort_by_cached_key(|e| (e.not_implemented, document_position(root, e.path.as_ref())));
}

/// The member and element indices leading to `path` (as far as it exists in the document):
/// comparing them orders paths as their nodes appear.
fn document_position(root: &Node, path: Option<&path::Path>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut node = root;
    for seg in path.map(path::Path::segments).unwrap_or_default() {
        let next = match (&node.kind, &seg) {
            // The last of duplicate keys is the one decoded.
            (Kind::Object(ms), path::Seg::Key(k)) => ms
                .iter()
                .enumerate()
                .rev()
                .find(|(_, m)| &m.key == k)
                .map(|(i, m)| (i, &m.value)),
            (Kind::Array(items), path::Seg::Index(i)) => items.get(*i).map(|n| (*i, n)),
            _ => None,
        };
        let Some((i, n)) = next else { break };
        out.push(i);
        node = n;
    }
    out
}

/// Parses, decodes and validates one file's text, reading no other file.
pub fn load_text(file: &str, text: &str) -> Result<Loaded, ConfigError> {
    let root = parse(file, text)?;
    decode(file, Some(text), root)
}

/// Like [`load_text`], and also reads the files the config names, relative to `base_dir`.
pub fn load_text_in(
    file: &str,
    text: &str,
    base_dir: &std::path::Path,
) -> Result<Loaded, ConfigError> {
    let root = parse(file, text)?;
    decode_in(file, Some(text), root, Some(base_dir))
}

/// Merges several sources in the order given (the caller sorts them as Go does).
pub fn merge_sources(sources: &[Source]) -> Result<Node, ConfigError> {
    let mut merged: Option<Node> = None;
    for s in sources {
        let node = parse(&s.name, &s.text)?;
        if !matches!(node.kind, Kind::Object(_)) {
            return Err(ConfigError::file(
                &s.name,
                format!(
                    "expected an object at the top level, found {}",
                    node.describe()
                ),
            ));
        }
        merged = Some(match merged {
            None => node,
            Some(m) => merge::merge(m, node),
        });
    }
    merged.ok_or_else(|| ConfigError::file("config", "no config given"))
}

/// Loads one or several sources, reading the files they name relative to `base_dir`: one
/// source is decoded with full positions; several are merged first, then decoded (errors then
/// name the JSON path but no line).
pub fn load(sources: &[Source], base_dir: &std::path::Path) -> Result<Loaded, ConfigError> {
    match sources {
        [one] => load_text_in(&one.name, &one.text, base_dir),
        _ => {
            let merged = merge_sources(sources)?;
            let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
            decode_in(&names.join(" + "), None, merged, Some(base_dir))
        }
    }
}

/// The config as `sing-box format` writes it, with the source's comments.
pub fn format(loaded: &Loaded) -> String {
    let mut v = loaded.config.to_json();
    format::prune(&mut v);
    format::write(&v, Some(&loaded.source))
}

/// The plain JSON value of a node (comments dropped; last duplicate key wins).
pub fn to_value(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Number(n) => serde_json::from_str(&n.text).unwrap_or(Value::Null),
        Kind::String(s) => Value::String(s.clone()),
        Kind::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Kind::Object(ms) => {
            let mut m = serde_json::Map::new();
            for member in ms {
                m.insert(member.key.clone(), to_value(&member.value));
            }
            Value::Object(m)
        }
    }
}
