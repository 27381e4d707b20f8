//! Rule-set files: what a `local` rule set reads from disk and a `remote` one downloads.
//!
//! Both formats Go sing-box 1.14 reads decode into the same [`HeadlessRule`] model the inline
//! rule sets of a config use, so sb-core compiles every rule set the same way:
//! - `source`: JSON (with comments) `{"version": 1..5, "rules": [headless rules]}`, decoded
//!   by the config decoders, so errors carry `file:line:column`, the JSON path and a "did you
//!   mean";
//! - `binary`: Go's compiled `.srs` ([`srs`]).
//!
//! The functions here are pure (bytes in, rules out); reading the file, watching it and
//! downloading it belong to the runtime (sb-core's `ruleset`).

pub mod srs;
mod succinct;

use crate::ctx::Ctx;
use crate::error::{ConfigError, DecodeError};
use crate::jsonc::Kind;
use crate::model::rule_set::{decode_headless, HeadlessRule, RuleSetFormat};
use crate::object::Obj;
use crate::path::Path;

/// The newest rule-set version Go sing-box 1.14.4 reads (5 added `package_name_regex`).
pub const MAX_VERSION: u8 = 5;

/// Parses a rule-set file of either format. `name` (the path or URL) is what errors name.
pub fn parse_any(
    bytes: &[u8],
    format: RuleSetFormat,
    name: &str,
) -> Result<Vec<HeadlessRule>, ConfigError> {
    match format {
        RuleSetFormat::Binary => srs::decode(bytes, name),
        RuleSetFormat::Source => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| ConfigError::file(name, format!("invalid UTF-8: {e}")))?;
            parse(text, name)
        }
    }
}

/// Parses a source-format rule set. Errors read `file:line:column: json.path: message`.
pub fn parse(text: &str, name: &str) -> Result<Vec<HeadlessRule>, ConfigError> {
    let root = crate::parse(name, text)?;
    let located = |e: DecodeError| ConfigError::from_decode(name, text, e);
    let mut o = Obj::new(&root, &Path::root()).map_err(located)?;
    let version_at = o.peek("version").map(|m| m.value.span.start);
    let version: Option<u64> = o.take("version").map_err(located)?;
    match version {
        None | Some(0) => return Err(ConfigError::file(name, "missing rule-set version")),
        Some(v) if v > u64::from(MAX_VERSION) => {
            let e = DecodeError::at(
                &Path::root().key("version"),
                version_at.unwrap_or(0),
                format!("unknown rule-set version: {v} (sb reads 1 to {MAX_VERSION})"),
            );
            return Err(located(e));
        }
        Some(_) => {}
    }
    // The rules of a file take no part in the config's tag references.
    let mut file_ctx = Ctx::default();
    let mut rules = Vec::new();
    if let Some((n, p)) = o.take_node("rules") {
        let Kind::Array(items) = &n.kind else {
            let e = DecodeError::at(
                &p,
                n.span.start,
                format!("expected an array, found {}", n.describe()),
            );
            return Err(located(e));
        };
        for (i, r) in items.iter().enumerate() {
            rules.push(decode_headless(r, &p.index(i), &mut file_ctx).map_err(located)?);
        }
    }
    o.finish().map_err(located)?;
    Ok(rules)
}

#[cfg(test)]
mod tests;
