//! Errors of the config language: where (file, line, column, JSON path), what, and a hint.

use crate::path::Path;
use std::fmt;

/// An error found while decoding a document, located by path and byte offset but not yet by
/// file. It implements `serde::de::Error` so derived decoders produce it directly, and it
/// words expectations in JSON terms (`an integer 0-65535`), never in Rust type names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Where in the document; `None` until the decoder that saw the failing value fills it in.
    pub path: Option<Path>,
    /// Byte offset of the offending key or value.
    pub offset: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// A suggestion such as `did you mean "outbounds"?`.
    pub hint: Option<String>,
    /// The tag of the adapter (or DNS server, rule set) the error is inside.
    pub tag: Option<String>,
    /// The config is valid for Go and uses something sb does not implement (a `type` from the
    /// `kinds` tables, `ntp`, a service, ...). Such errors are reported after every other one,
    /// since Go decodes these parts fine and its first error is elsewhere.
    pub not_implemented: bool,
}

impl DecodeError {
    /// A new, not yet located error.
    pub fn new(message: impl Into<String>) -> DecodeError {
        DecodeError {
            path: None,
            offset: None,
            message: message.into(),
            hint: None,
            tag: None,
            not_implemented: false,
        }
    }

    /// A located error.
    pub fn at(path: &Path, offset: usize, message: impl Into<String>) -> DecodeError {
        DecodeError {
            path: Some(path.clone()),
            offset: Some(offset),
            message: message.into(),
            hint: None,
            tag: None,
            not_implemented: false,
        }
    }

    /// Marks the error as "sb does not implement this" (see [`DecodeError::not_implemented`]).
    pub fn mark_not_implemented(mut self) -> DecodeError {
        self.not_implemented = true;
        self
    }

    /// Names the adapter the error is inside, unless an inner one was named already.
    pub fn with_tag(mut self, tag: &str) -> DecodeError {
        if self.tag.is_none() {
            self.tag = Some(tag.to_string());
        }
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: Option<String>) -> DecodeError {
        self.hint = hint;
        self
    }

    /// Fills in the location unless a deeper decoder already did.
    pub fn locate(mut self, path: &Path, offset: usize) -> DecodeError {
        if self.path.is_none() {
            self.path = Some(path.clone());
            self.offset = Some(offset);
        }
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) if !p.is_root() => write!(f, "{p}")?,
            _ => {}
        }
        if let Some(t) = &self.tag {
            write!(f, " (tag {t:?})")?;
        }
        match &self.path {
            Some(p) if !p.is_root() => write!(f, ": {}", self.message)?,
            _ => f.write_str(&self.message)?,
        }
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

fn unexpected(u: serde::de::Unexpected<'_>) -> String {
    use serde::de::Unexpected as U;
    match u {
        U::Bool(b) => format!("boolean {b}"),
        U::Unsigned(n) => format!("number {n}"),
        U::Signed(n) => format!("number {n}"),
        U::Float(n) => format!("number {n}"),
        U::Char(c) => format!("string {:?}", c.to_string()),
        U::Str(s) => format!("string {s:?}"),
        U::Bytes(_) => "bytes".into(),
        U::Unit | U::Option => "null".into(),
        U::Seq => "array".into(),
        U::Map => "object".into(),
        other => other.to_string(),
    }
}

/// Lists names as `"a", "b" or "c"`.
pub fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.len() {
        0 => "nothing".into(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::damerau_levenshtein(name, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    if name.is_empty() {
        return None;
    }
    // One edit in three characters; none for very short names, where any edit is a guess.
    let limit = name.len().max(c.len()) / 3;
    let prefix = name.len() >= 4 && (c.starts_with(name) || name.starts_with(c));
    (d <= limit || prefix).then(|| format!("did you mean {c:?}?"))
}

impl serde::de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::new(msg.to_string())
    }
    fn invalid_type(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        DecodeError::new(format!("expected {exp}, found {}", unexpected(unexp)))
    }
    fn invalid_value(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        DecodeError::new(format!("expected {exp}, found {}", unexpected(unexp)))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let shown: Vec<&str> = expected.iter().copied().filter(|e| !e.is_empty()).collect();
        DecodeError::new(format!(
            "unknown value {variant:?}, expected {}",
            one_of(&shown)
        ))
        .with_hint(did_you_mean(variant, shown.iter().copied()))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DecodeError::new(format!("unknown field {field:?}"))
            .with_hint(did_you_mean(field, expected.iter().copied()))
    }
    fn missing_field(field: &'static str) -> Self {
        DecodeError::new(format!("missing field {field:?}"))
    }
}

/// At most this many errors are reported for one config (the returned one and its `more`).
pub const MAX_ERRORS: usize = 50;

/// A config error a person can act on: `file:line:column: json.path: message (hint)`.
///
/// Loading reports every error it finds, not only the first: this one is the first (what
/// Go would report first, as far as sb can tell) and [`ConfigError::more`] holds the others.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file name as given by the user (`stdin` for standard input).
    pub file: String,
    /// 1-based line, when the error has a position.
    pub line: Option<usize>,
    /// 1-based column (characters).
    pub column: Option<usize>,
    /// The JSON path, Go notation; empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// A suggestion.
    pub hint: Option<String>,
    /// The tag of the adapter the error is inside.
    pub tag: Option<String>,
    /// The further errors of the same load, in order (their own `more` is empty), at most
    /// [`MAX_ERRORS`] in all with this one. Not shown by `Display`; see [`ConfigError::all`].
    pub more: Vec<ConfigError>,
}

impl ConfigError {
    /// This error, then the further ones ([`ConfigError::more`]).
    pub fn all(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(self).chain(self.more.iter())
    }

    /// One error holding `errors` (already in order; an error's own `more` follows it),
    /// capped at [`MAX_ERRORS`]: the first, with the rest as its `more`. `None` when empty.
    pub fn collect(errors: impl IntoIterator<Item = ConfigError>) -> Option<ConfigError> {
        let mut flat = errors
            .into_iter()
            .flat_map(|mut e| {
                let more = std::mem::take(&mut e.more);
                std::iter::once(e).chain(more)
            })
            .take(MAX_ERRORS);
        let mut first = flat.next()?;
        first.more = flat.collect();
        Some(first)
    }

    /// Ties a decode error to the file and text it came from.
    pub fn from_decode(file: &str, text: &str, e: DecodeError) -> ConfigError {
        let (line, column) = match e.offset {
            Some(o) => {
                let (l, c) = crate::jsonc::line_col(text, o);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: file.to_string(),
            line,
            column,
            path: e.path.map(|p| p.to_string()).unwrap_or_default(),
            message: e.message,
            hint: e.hint,
            tag: e.tag,
            more: Vec::new(),
        }
    }

    /// An error about a whole file (unreadable, merge conflict).
    pub fn file(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line: None,
            column: None,
            path: String::new(),
            message: message.into(),
            hint: None,
            tag: None,
            more: Vec::new(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        f.write_str(": ")?;
        f.write_str(&self.path)?;
        if let Some(t) = &self.tag {
            write!(f, " (tag {t:?})")?;
        }
        if !self.path.is_empty() || self.tag.is_some() {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_near_misses() {
        assert_eq!(
            did_you_mean("outbound", ["inbounds", "outbounds", "route"]).as_deref(),
            Some("did you mean \"outbounds\"?")
        );
        assert_eq!(
            did_you_mean("domainx", ["domain", "domain_suffix"]).as_deref(),
            Some("did you mean \"domain\"?")
        );
        assert_eq!(did_you_mean("zzzz", ["domain", "route"]), None);
    }
}
