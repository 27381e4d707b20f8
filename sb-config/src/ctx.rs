//! What decoding collects besides the typed config: tag references, deprecation warnings and
//! the errors it went on past.

use crate::error::DecodeError;
use crate::path::Path;
use crate::refs::Refs;

/// A warning: the config is accepted, but something in it is deprecated or has no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub path: Path,
    /// Byte offset.
    pub offset: usize,
    /// What.
    pub message: String,
}

/// Decoding state shared by all decoders of one document.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Tag references, checked after the whole document is decoded.
    pub refs: Refs,
    /// Warnings, in document order.
    pub warnings: Vec<Warning>,
    /// Errors decoding went on past: a failing element of an array of adapters, servers,
    /// rules or rule sets, or a failing top-level section, is recorded here and skipped, so
    /// that one run reports them all. The decoded config is complete only when this is empty.
    pub errors: Vec<DecodeError>,
    /// Tags defined, in document order.
    pub defs: Vec<Definition>,
    /// When set, files the config names (local rule sets, SSH keys) are read and checked
    /// as Go's construct phase does, relative paths resolving against this directory.
    pub base_dir: Option<std::path::PathBuf>,
}

impl Ctx {
    /// Reads a file the config names, if file checks are on. `Ok(None)` when they are off.
    pub fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        let Some(base) = &self.base_dir else {
            return Ok(None);
        };
        let expanded = expand_path(path);
        let full = base.join(&expanded);
        std::fs::read_to_string(&full)
            .map(Some)
            .map_err(|e| format!("open {expanded}: {e}"))
    }

    /// Like [`Ctx::read_file`], for files that need not be text (binary rule sets).
    pub fn read_file_bytes(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(base) = &self.base_dir else {
            return Ok(None);
        };
        let expanded = expand_path(path);
        std::fs::read(base.join(&expanded))
            .map(Some)
            .map_err(|e| format!("open {expanded}: {e}"))
    }
}

/// Expands a leading `~` and `$VAR`/`${VAR}` references, as Go's `os.ExpandEnv` and sing-box do.
pub fn expand_path(path: &str) -> String {
    if let Some(tail) = path.strip_prefix('~') {
        if tail.is_empty() || tail.starts_with('/') {
            return std::env::var("HOME").unwrap_or_default() + &expand_env(tail);
        }
    }
    expand_env(path)
}

/// Expands `$VAR` and `${VAR}` references (empty when unset), as Go's `os.ExpandEnv`; a `$`
/// that starts no name stays.
pub fn expand_env(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if consumed == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

impl Ctx {
    /// Records an error and goes on (see [`Ctx::errors`]).
    pub fn fail(&mut self, e: DecodeError) {
        self.errors.push(e);
    }

    /// The value, or `None` with the error recorded (see [`Ctx::errors`]).
    pub fn keep<T>(&mut self, r: Result<T, DecodeError>) -> Option<T> {
        r.map_err(|e| self.fail(e)).ok()
    }

    /// Records a warning.
    pub fn warn(&mut self, path: &Path, offset: usize, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.clone(),
            offset,
            message: message.into(),
        });
    }
}

/// A tag defined by an adapter, DNS server or rule set.
#[derive(Clone, Debug)]
pub struct Definition {
    /// What it defines.
    pub kind: crate::refs::RefKind,
    /// The effective tag (index when empty).
    pub tag: String,
    /// The defining object.
    pub path: Path,
    /// Where the tag (or the object, when the tag is implicit) is.
    pub offset: usize,
}

impl Ctx {
    /// Records a definition; `node` is the defining object.
    pub fn define(
        &mut self,
        kind: crate::refs::RefKind,
        tag: &str,
        index: usize,
        node: &crate::jsonc::Node,
        path: &Path,
    ) {
        let offset = match &node.kind {
            crate::jsonc::Kind::Object(ms) => ms
                .iter()
                .rfind(|m| m.key == "tag")
                .map_or(node.span.start, |m| m.value.span.start),
            _ => node.span.start,
        };
        self.defs.push(Definition {
            kind,
            tag: crate::model::config::effective_tag(Some(tag), index),
            path: path.clone(),
            offset,
        });
    }
}
