//! A serde `Deserializer` over a [`Node`] tree that knows where it is.
//!
//! Every value is decoded with its JSON path and byte offset at hand, so any failure, whether
//! raised here or inside a derived `Deserialize`, comes out located. Primitive checks are done
//! here, in JSON terms. Go's decoding rules are kept: `null` is the same as an absent field,
//! the last of duplicate keys wins, integers must be written as integers.

use crate::error::DecodeError;
use crate::jsonc::{Kind, Member, Node};
use crate::path::Path;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::cell::Cell;

/// The newtype name [`crate::types::Listable`] asks for: a scalar is read as a one-element list.
pub const LISTABLE: &str = "$sb::Listable";

/// Decodes `T` from `node`, which sits at `path`.
pub fn from_node<'a, T: de::Deserialize<'a>>(
    node: &'a Node,
    path: &Path,
) -> Result<T, DecodeError> {
    T::deserialize(De {
        node,
        path: path.clone(),
    })
}

/// The deserializer for one node.
pub struct De<'a> {
    node: &'a Node,
    path: Path,
}

impl<'a> De<'a> {
    fn expected(&self, what: &str) -> DecodeError {
        DecodeError::at(
            &self.path,
            self.node.span.start,
            format!("expected {what}, found {}", self.node.describe()),
        )
    }

    fn locate(&self, e: DecodeError) -> DecodeError {
        e.locate(&self.path, self.node.span.start)
    }

    fn integer<T: TryFrom<i128>>(&self, what: &str) -> Result<T, DecodeError> {
        match &self.node.kind {
            Kind::Number(n) => n
                .as_i128()
                .and_then(|v| T::try_from(v).ok())
                .ok_or_else(|| self.expected(what)),
            _ => Err(self.expected(what)),
        }
    }

    fn seq<V: Visitor<'a>>(
        &self,
        items: Vec<(&'a Node, Path)>,
        v: V,
    ) -> Result<V::Value, DecodeError> {
        v.visit_seq(Seq {
            items: items.into_iter(),
        })
        .map_err(|e| self.locate(e))
    }
}

/// Object members as decoders see them: `null` values dropped, the last duplicate kept.
pub fn effective_members(members: &[Member]) -> Vec<&Member> {
    let mut out: Vec<&Member> = Vec::with_capacity(members.len());
    for m in members {
        if matches!(m.value.kind, Kind::Null) {
            out.retain(|o| o.key != m.key);
            continue;
        }
        if let Some(slot) = out.iter_mut().find(|o| o.key == m.key) {
            *slot = m;
        } else {
            out.push(m);
        }
    }
    out
}

macro_rules! ints {
    ($($method:ident $visit:ident $t:ty, $what:expr;)*) => {$(
        fn $method<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
            let n: $t = self.integer($what)?;
            v.$visit(n).map_err(|e| self.locate(e))
        }
    )*};
}

impl<'a> de::Deserializer<'a> for De<'a> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        let r = match &self.node.kind {
            Kind::Null => v.visit_unit(),
            Kind::Bool(b) => v.visit_bool(*b),
            Kind::Number(n) => match n.as_i128() {
                Some(i) if i >= 0 => match u64::try_from(i) {
                    Ok(u) => v.visit_u64(u),
                    Err(_) => v.visit_f64(n.as_f64().unwrap_or(f64::MAX)),
                },
                Some(i) => match i64::try_from(i) {
                    Ok(s) => v.visit_i64(s),
                    Err(_) => v.visit_f64(n.as_f64().unwrap_or(f64::MIN)),
                },
                None => v.visit_f64(n.as_f64().unwrap_or(0.0)),
            },
            Kind::String(s) => v.visit_str(s),
            Kind::Array(_) => return self.deserialize_seq(v),
            Kind::Object(_) => return self.deserialize_map(v),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        match self.node.kind {
            Kind::Bool(b) => v.visit_bool(b).map_err(|e| self.locate(e)),
            _ => Err(self.expected("a boolean")),
        }
    }

    ints! {
        deserialize_u8 visit_u8 u8, "an integer 0-255";
        deserialize_u16 visit_u16 u16, "an integer 0-65535";
        deserialize_u32 visit_u32 u32, "an integer 0-4294967295";
        deserialize_u64 visit_u64 u64, "a non-negative integer";
        deserialize_i8 visit_i8 i8, "an integer -128-127";
        deserialize_i16 visit_i16 i16, "an integer -32768-32767";
        deserialize_i32 visit_i32 i32, "a 32-bit integer";
        deserialize_i64 visit_i64 i64, "an integer";
    }

    fn deserialize_f32<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        match &self.node.kind {
            Kind::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => v.visit_f64(f).map_err(|e| self.locate(e)),
                _ => Err(self.expected("a number")),
            },
            _ => Err(self.expected("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        match &self.node.kind {
            Kind::String(s) => v.visit_str(s).map_err(|e| self.locate(e)),
            _ => Err(self.expected("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        match &self.node.kind {
            // Go reads `null` as "not set".
            Kind::Null => v.visit_none().map_err(|e| self.locate(e)),
            _ => {
                let (path, start) = (self.path.clone(), self.node.span.start);
                v.visit_some(self).map_err(|e| e.locate(&path, start))
            }
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        match self.node.kind {
            Kind::Null => v.visit_unit().map_err(|e| self.locate(e)),
            _ => Err(self.expected("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DecodeError> {
        if name == LISTABLE {
            let items = match &self.node.kind {
                Kind::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n, self.path.index(i)))
                    .collect(),
                _ => vec![(self.node, self.path.clone())],
            };
            return self.seq(items, v);
        }
        let (path, start) = (self.path.clone(), self.node.span.start);
        v.visit_newtype_struct(self)
            .map_err(|e| e.locate(&path, start))
    }

    fn deserialize_seq<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        match &self.node.kind {
            Kind::Array(items) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n, self.path.index(i)))
                    .collect();
                self.seq(items, v)
            }
            _ => Err(self.expected("an array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        match &self.node.kind {
            Kind::Object(members) => v
                .visit_map(Map {
                    members: effective_members(members).into_iter(),
                    path: self.path.clone(),
                    current: None,
                })
                .map_err(|e| self.locate(e)),
            _ => Err(self.expected("an object")),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DecodeError> {
        match &self.node.kind {
            Kind::String(s) => v
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e| self.locate(e)),
            _ => {
                let shown: Vec<&str> = variants.iter().copied().filter(|s| !s.is_empty()).collect();
                Err(self.expected(&format!("one of {}", crate::error::one_of(&shown))))
            }
        }
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DecodeError> {
        v.visit_unit()
    }
}

struct Seq<'a> {
    items: std::vec::IntoIter<(&'a Node, Path)>,
}

impl<'a> de::SeqAccess<'a> for Seq<'a> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        match self.items.next() {
            None => Ok(None),
            Some((node, path)) => seed.deserialize(De { node, path }).map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a> {
    members: std::vec::IntoIter<&'a Member>,
    path: Path,
    current: Option<&'a Member>,
}

impl<'a> de::MapAccess<'a> for Map<'a> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some(m) = self.members.next() else {
            return Ok(None);
        };
        self.current = Some(m);
        let key: de::value::StrDeserializer<'_, DecodeError> = m.key.as_str().into_deserializer();
        seed.deserialize(key)
            .map(Some)
            .map_err(|e| e.locate(&self.path.key(&m.key), m.key_span.start))
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let m = self
            .current
            .take()
            .ok_or_else(|| DecodeError::new("value requested before its key"))?;
        seed.deserialize(De {
            node: &m.value,
            path: self.path.key(&m.key),
        })
    }
}

/// The field names a derived `Deserialize` struct accepts, found by asking it to decode
/// itself from a probe that records the list serde hands to `deserialize_struct`.
pub fn fields_of<'a, T: de::Deserialize<'a>>() -> &'static [&'static str] {
    let cell = Cell::new(&[][..]);
    let _ = T::deserialize(Probe(&cell));
    cell.get()
}

struct Probe<'c>(&'c Cell<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, DecodeError> {
        Err(DecodeError::new("probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, DecodeError> {
        self.0.set(fields);
        Err(DecodeError::new("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}
