//! The common frame of every `type`-dispatched object (inbounds, outbounds, endpoints, DNS
//! servers): read `type` and `tag`, classify the type, decode the rest, and name the tag in
//! any error. Also the JSON writer helper that `format` uses for these objects.

use crate::ctx::Ctx;
use crate::error::{did_you_mean, DecodeError};
use crate::jsonc::Node;
use crate::kinds::{classify, TypeName};
use crate::object::Obj;
use crate::path::Path;
use serde::Serialize;
use serde_json::{Map, Value};

/// One family of typed objects.
pub struct Family {
    /// How Go names the family in errors (`inbound`, `outbound`, `endpoint`, `DNS server`).
    pub noun: &'static str,
    /// Types sb implements.
    pub implemented: &'static [&'static str],
    /// Types Go has and sb does not.
    pub missing: &'static [&'static str],
    /// Types Go removed, with Go's message.
    pub removed: &'static [(&'static str, &'static str)],
}

/// Decodes one typed object. `body` gets the implemented type name and the object with `type`
/// and `tag` already taken; it must call `finish` itself. Returns the tag as written (possibly
/// empty) and what `body` built.
pub fn decode_typed<'a, T>(
    node: &'a Node,
    path: &Path,
    index: usize,
    family: &Family,
    ctx: &mut Ctx,
    body: impl FnOnce(&str, &mut Obj<'a>, &mut Ctx) -> Result<T, DecodeError>,
) -> Result<(String, T), DecodeError> {
    let mut o = Obj::new(node, path)?;
    let ty: String = o.take("type")?.unwrap_or_default();
    let tag: String = o.take("tag")?.unwrap_or_default();
    let shown = if tag.is_empty() {
        index.to_string()
    } else {
        tag.clone()
    };
    if let Some((_, message)) = family.removed.iter().find(|(t, _)| *t == ty) {
        return Err(o.error_at("type", *message).with_tag(&shown));
    }
    let result = match classify(&ty, family.implemented, family.missing) {
        TypeName::Implemented(t) => body(t, &mut o, ctx),
        TypeName::NotImplemented(t) => Err(o
            .error(format!("type {t:?} is not implemented by sb"))
            .mark_not_implemented()),
        TypeName::Unknown("") => Err(o.error(format!("missing {} type", family.noun))),
        TypeName::Unknown(t) => Err(o
            .error_at("type", format!("unknown {} type {t:?}", family.noun))
            .with_hint(did_you_mean(
                t,
                family.implemented.iter().chain(family.missing).copied(),
            ))),
    };
    result.map(|v| (tag, v)).map_err(|e| e.with_tag(&shown))
}

/// Starts the JSON object `format` writes for a typed object: `type` then `tag`.
pub fn typed_json(ty: &str, tag: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(ty.into()));
    m.insert("tag".into(), Value::String(tag.into()));
    m
}

/// Appends the fields of a serialized field group to `m`.
pub fn extend_json<T: Serialize>(m: &mut Map<String, Value>, group: &T) {
    if let Ok(Value::Object(o)) = serde_json::to_value(group) {
        m.extend(o);
    }
}

/// Fails with each removed field's message if the object has one.
pub fn reject_removed(o: &Obj<'_>, table: &[(&[&str], &str)]) -> Result<(), DecodeError> {
    for (keys, message) in table {
        o.removed(keys, message)?;
    }
    Ok(())
}
