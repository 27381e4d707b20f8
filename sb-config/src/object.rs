//! Decoding one JSON object in parts.
//!
//! sing-box objects are unions: an outbound object holds `type`, `tag`, the shared dial fields
//! and the type's own fields side by side; a rule holds match fields and action fields. serde's
//! `flatten` cannot be combined with `deny_unknown_fields` and loses positions, so objects like
//! these are decoded through [`Obj`]: each part takes the keys it knows, and whatever is left
//! at the end is an unknown field, reported with a "did you mean" over every key the object
//! accepts. Tag references are recorded with their position for the checks in `validate`.

use crate::ctx::Ctx;
use crate::de::{effective_members, fields_of, from_node};
use crate::error::{did_you_mean, DecodeError};
use crate::jsonc::{Kind, Member, Node};
use crate::path::Path;
use crate::refs::{RefKind, Refs};
use serde::de::DeserializeOwned;

/// An object being decoded.
pub struct Obj<'a> {
    node: &'a Node,
    path: Path,
    members: Vec<&'a Member>,
    taken: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    /// Starts decoding `node`, which must be an object.
    pub fn new(node: &'a Node, path: &Path) -> Result<Obj<'a>, DecodeError> {
        match &node.kind {
            Kind::Object(members) => {
                let members = effective_members(members);
                Ok(Obj {
                    node,
                    taken: vec![false; members.len()],
                    members,
                    path: path.clone(),
                    known: Vec::new(),
                })
            }
            _ => Err(DecodeError::at(
                path,
                node.span.start,
                format!("expected an object, found {}", node.describe()),
            )),
        }
    }

    /// The object's own path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The member `key`, without taking it.
    pub fn peek(&self, key: &str) -> Option<&'a Member> {
        self.members.iter().find(|m| m.key == key).copied()
    }

    /// True when `key` is present (and not null).
    pub fn has(&self, key: &str) -> bool {
        self.peek(key).is_some()
    }

    /// An error located at `key`'s value, or at the object when `key` is absent.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> DecodeError {
        match self.peek(key) {
            Some(m) => DecodeError::at(&self.path.key(key), m.value.span.start, message),
            None => DecodeError::at(&self.path, self.node.span.start, message),
        }
    }

    /// An error located at the object itself.
    pub fn error(&self, message: impl Into<String>) -> DecodeError {
        DecodeError::at(&self.path, self.node.span.start, message)
    }

    /// Takes the member `key` as a node.
    pub fn take_node(&mut self, key: &'static str) -> Option<(&'a Node, Path)> {
        self.known.push(key);
        let i = self.members.iter().position(|m| m.key == key)?;
        self.taken[i] = true;
        Some((&self.members[i].value, self.path.key(key)))
    }

    /// Takes and decodes the member `key`.
    pub fn take<T: DeserializeOwned>(
        &mut self,
        key: &'static str,
    ) -> Result<Option<T>, DecodeError> {
        match self.take_node(key) {
            Some((node, path)) => from_node(node, &path).map(Some),
            None => Ok(None),
        }
    }

    /// Takes the members a derived struct `T` declares and decodes them as one `T`.
    pub fn group<T: DeserializeOwned>(&mut self) -> Result<T, DecodeError> {
        let fields = fields_of::<T>();
        self.known.extend_from_slice(fields);
        let mut part = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            if !self.taken[i] && fields.contains(&m.key.as_str()) {
                self.taken[i] = true;
                part.push((*m).clone());
            }
        }
        let synthetic = Node {
            kind: Kind::Object(part),
            span: self.node.span,
            leading: Vec::new(),
            trailing: Vec::new(),
        };
        from_node(&synthetic, &self.path)
    }

    /// Fails if any of `keys` is present: for fields Go removed, with Go's message.
    pub fn removed(&self, keys: &[&str], message: &str) -> Result<(), DecodeError> {
        for m in &self.members {
            if keys.contains(&m.key.as_str()) {
                return Err(DecodeError::at(
                    &self.path.key(&m.key),
                    m.key_span.start,
                    message,
                ));
            }
        }
        Ok(())
    }

    /// Records the tag reference(s) in member `key` (a string or a list of strings).
    pub fn reference(&self, refs: &mut Refs, key: &str, kind: RefKind) {
        if let Some(m) = self.peek(key) {
            refs.add_node(kind, &m.value, &self.path.key(key));
        }
    }

    /// Ends decoding: a member no part took is an unknown field.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.unknown_fields().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every member no part took, as an "unknown field" error, in document order.
    pub fn unknown_fields(&self) -> impl Iterator<Item = DecodeError> + '_ {
        self.members
            .iter()
            .zip(&self.taken)
            .filter(|(_, taken)| !**taken)
            .map(|(m, _)| {
                DecodeError::at(
                    &self.path.key(&m.key),
                    m.key_span.start,
                    format!("unknown field {:?}", m.key),
                )
                .with_hint(did_you_mean(&m.key, self.known.iter().copied()))
            })
    }
}

/// Decodes an optional array member with `each(node, path, index, ctx)`. An element that fails
/// is recorded in [`Ctx::errors`] and left out, and the others are still decoded, so one run
/// reports every broken element; only a member that is not an array fails the call.
pub fn array<T>(
    o: &mut Obj<'_>,
    key: &'static str,
    ctx: &mut Ctx,
    mut each: impl FnMut(&Node, &Path, usize, &mut Ctx) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let Some((node, path)) = o.take_node(key) else {
        return Ok(Vec::new());
    };
    match &node.kind {
        Kind::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, n) in items.iter().enumerate() {
                let decoded = each(n, &path.index(i), i, ctx);
                out.extend(ctx.keep(decoded));
            }
            Ok(out)
        }
        _ => Err(DecodeError::at(
            &path,
            node.span.start,
            format!("expected an array, found {}", node.describe()),
        )),
    }
}
