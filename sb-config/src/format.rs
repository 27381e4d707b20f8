//! `sb format`: the config normalised the way Go's `sing-box format` does it, comments kept.
//!
//! Normalisation comes from the typed model's writers (one-element lists as scalars, Go
//! durations, hex marks, `domain_resolver` as a tag, default actions dropped); then every
//! zero value (`false`, `0`, `""`, `null`, `[]`, `{}`) is dropped from objects, which is what
//! Go's `omitempty` does. Array elements are never dropped. Comments are written back beside
//! the member or element they were written beside.

use crate::jsonc::{Kind, Node};
use serde_json::{Map, Value};

/// Drops zero values from objects, recursively (Go's `omitempty`), except values the writers
/// marked with [`crate::types::KEEP`], which are unwrapped and kept.
pub fn prune(v: &mut Value) {
    unwrap_keep(v);
    match v {
        Value::Object(m) => {
            let mut drop = Vec::new();
            for (k, child) in m.iter_mut() {
                let kept = unwrap_keep(child);
                prune(child);
                if !kept && is_zero(child) {
                    drop.push(k.clone());
                }
            }
            m.retain(|k, _| !drop.contains(k));
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// Replaces a keep-marker object by its value; true if it was one.
fn unwrap_keep(v: &mut Value) -> bool {
    let inner = match v {
        Value::Object(m) if m.len() == 1 => m.remove(crate::types::KEEP),
        _ => None,
    };
    match inner {
        Some(x) => {
            *v = x;
            unwrap_keep(v);
            true
        }
        None => false,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Pretty-prints `v` with two-space indentation, writing the comments of `source` (the parsed
/// input) beside the matching members and elements.
pub fn write(v: &Value, source: Option<&Node>) -> String {
    let mut out = String::new();
    if let Some(n) = source {
        for c in &n.leading {
            out.push_str(c);
            out.push('\n');
        }
    }
    write_value(&mut out, v, source, 0);
    if let Some(n) = source {
        if let Some(t) = root_trailing(n) {
            out.push_str(&t);
        }
    }
    out.push('\n');
    out
}

fn root_trailing(n: &Node) -> Option<String> {
    // A container's own `trailing` holds its inner comments (written before the closing
    // bracket); only scalars at the root have comments after them.
    match n.kind {
        Kind::Object(_) | Kind::Array(_) => None,
        _ if n.trailing.is_empty() => None,
        _ => Some(format!(" {}", n.trailing.join(" "))),
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn member_node<'a>(source: Option<&'a Node>, key: &str) -> Option<&'a Node> {
    match source.map(|n| &n.kind) {
        Some(Kind::Object(ms)) => ms.iter().rev().find(|m| m.key == key).map(|m| &m.value),
        _ => None,
    }
}

fn element_node(source: Option<&Node>, i: usize) -> Option<&Node> {
    match source.map(|n| &n.kind) {
        Some(Kind::Array(items)) => items.get(i),
        _ => None,
    }
}

/// Comments of members that `format` dropped (zero values), so they are not lost.
fn orphan_comments(map: &Map<String, Value>, source: Option<&Node>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Kind::Object(ms)) = source.map(|n| &n.kind) {
        for m in ms {
            if !map.contains_key(&m.key) {
                out.extend(m.value.leading.iter().cloned());
                out.extend(m.value.trailing.iter().cloned());
            }
        }
    }
    out
}

fn write_comment_lines(out: &mut String, comments: &[String], level: usize) {
    for c in comments {
        indent(out, level);
        out.push_str(c);
        out.push('\n');
    }
}

fn write_value(out: &mut String, v: &Value, source: Option<&Node>, level: usize) {
    match v {
        Value::Object(map) => {
            let mut inner: Vec<String> = source.map(|n| n.trailing.clone()).unwrap_or_default();
            inner.extend(orphan_comments(map, source));
            if map.is_empty() && inner.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{\n");
            let n = map.len();
            for (i, (k, child)) in map.iter().enumerate() {
                let child_src = member_node(source, k);
                if let Some(cs) = child_src {
                    write_comment_lines(out, &cs.leading, level + 1);
                }
                indent(out, level + 1);
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push_str(": ");
                write_value(out, child, child_src, level + 1);
                if i + 1 < n {
                    out.push(',');
                }
                trailing(out, child, child_src);
                out.push('\n');
            }
            write_comment_lines(out, &inner, level + 1);
            indent(out, level);
            out.push('}');
        }
        Value::Array(items) => {
            let inner: Vec<String> = source.map(|n| n.trailing.clone()).unwrap_or_default();
            if items.is_empty() && inner.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push_str("[\n");
            for (i, child) in items.iter().enumerate() {
                let child_src = element_node(source, i);
                if let Some(cs) = child_src {
                    write_comment_lines(out, &cs.leading, level + 1);
                }
                indent(out, level + 1);
                write_value(out, child, child_src, level + 1);
                if i + 1 < items.len() {
                    out.push(',');
                }
                trailing(out, child, child_src);
                out.push('\n');
            }
            write_comment_lines(out, &inner, level + 1);
            indent(out, level);
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

/// Same-line comments after a scalar member; containers print theirs inside.
fn trailing(out: &mut String, v: &Value, src: Option<&Node>) {
    if matches!(v, Value::Object(_) | Value::Array(_)) {
        return;
    }
    if let Some(s) = src {
        for c in &s.trailing {
            out.push(' ');
            out.push_str(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prune_is_omitempty() {
        let mut v =
            json!({"a": false, "b": 0, "c": "", "d": [], "e": {"x": null}, "f": [0, {}], "g": 1});
        prune(&mut v);
        assert_eq!(v, json!({"f": [0, {}], "g": 1}));
    }
}
