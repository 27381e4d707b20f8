//! Merging several config files into one, as Go's `-c a -c b` / `-C dir` do: files sorted by
//! path, objects merged key by key, arrays concatenated, later scalars replacing earlier ones.

use crate::jsonc::{Kind, Member, Node};

/// Merges `b` into `a`.
pub fn merge(a: Node, b: Node) -> Node {
    match (a.kind, b.kind) {
        (Kind::Object(mut am), Kind::Object(bm)) => {
            for m in bm {
                match am.iter().rposition(|x| x.key == m.key) {
                    Some(i) => {
                        let old = am.remove(i);
                        let merged = merge(old.value, m.value);
                        am.insert(
                            i,
                            Member {
                                key: m.key,
                                key_span: m.key_span,
                                value: merged,
                            },
                        );
                    }
                    None => am.push(m),
                }
            }
            Node {
                kind: Kind::Object(am),
                span: a.span,
                leading: a.leading,
                trailing: a.trailing,
            }
        }
        (Kind::Array(mut ai), Kind::Array(bi)) => {
            ai.extend(bi);
            Node {
                kind: Kind::Array(ai),
                span: a.span,
                leading: a.leading,
                trailing: a.trailing,
            }
        }
        (_, kind) => Node {
            kind,
            span: b.span,
            leading: b.leading,
            trailing: b.trailing,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonc::parse;

    #[test]
    fn objects_merge_arrays_concatenate() {
        let a = parse(r#"{"log":{"level":"info"},"outbounds":[{"tag":"a"}]}"#).unwrap();
        let b = parse(r#"{"log":{"timestamp":true},"outbounds":[{"tag":"b"}]}"#).unwrap();
        let m = merge(a, b);
        let v = crate::format::write(&crate::to_value(&m), None);
        let v: serde_json::Value = serde_json::from_str(&v).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"log":{"level":"info","timestamp":true},"outbounds":[{"tag":"a"},{"tag":"b"}]})
        );
    }
}
