//! What decoding collects besides the typed config: tag references and deprecation warnings.

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
    /// Tags defined, in document order.
    pub defs: Vec<Definition>,
}

impl Ctx {
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
