//! The junk-key test: for every config in `configs/` and every valid fixture, add an unknown
//! key to each object in turn and assert that sb rejects it, naming that key's path. This is
//! what keeps "unknown fields are errors" true for every object the config language has.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sb_config::jsonc::{Kind, Member, Node, Span};
use sb_config::path::Path as JsonPath;
use sb_tests::{corpus, workspace};
use std::path::PathBuf;

const JUNK: &str = "sb_junk_key";

/// Objects whose keys are data, not field names (maps), where any key is valid.
fn is_map(path: &JsonPath) -> bool {
    let last = path.segments().last().cloned();
    matches!(
        last,
        Some(sb_config::path::Seg::Key(k)) if matches!(
            k.as_str(),
            "headers" | "torrc" | "predefined" | "interface_address" | "network_interface_address"
        )
    )
}

/// Paths of every object in the tree.
fn objects(node: &Node, path: &JsonPath, out: &mut Vec<JsonPath>) {
    match &node.kind {
        Kind::Object(members) => {
            if !is_map(path) {
                out.push(path.clone());
            }
            for m in members {
                objects(&m.value, &path.key(&m.key), out);
            }
        }
        Kind::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                objects(item, &path.index(i), out);
            }
        }
        _ => {}
    }
}

/// The node at `path`, mutable.
fn at<'a>(node: &'a mut Node, path: &JsonPath) -> &'a mut Node {
    let mut cur = node;
    for seg in path.segments() {
        cur = match (&mut cur.kind, seg) {
            (Kind::Object(ms), sb_config::path::Seg::Key(k)) => {
                let i = ms.iter().rposition(|m| m.key == k).expect("member exists");
                &mut ms[i].value
            }
            (Kind::Array(items), sb_config::path::Seg::Index(i)) => &mut items[i],
            _ => panic!("path does not match the tree"),
        };
    }
    cur
}

fn files() -> Vec<PathBuf> {
    let mut out = corpus("valid");
    let configs = workspace().join("configs");
    if let Ok(entries) = std::fs::read_dir(&configs) {
        let mut c: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        c.sort();
        out.extend(c);
    }
    out
}

#[test]
fn every_object_rejects_an_unknown_key() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let root = sb_config::jsonc::parse(&text).unwrap();
        let dir = file.parent().unwrap();
        let mut paths = Vec::new();
        objects(&root, &JsonPath::root(), &mut paths);
        for path in paths {
            let mut doctored = root.clone();
            let target = at(&mut doctored, &path);
            if let Kind::Object(ms) = &mut target.kind {
                ms.push(Member {
                    key: JUNK.into(),
                    key_span: Span::default(),
                    value: Node {
                        kind: Kind::Number(sb_config::jsonc::Number { text: "1".into() }),
                        span: Span::default(),
                        leading: vec![],
                        trailing: vec![],
                    },
                });
            }
            let json = serde_json::to_string(&sb_config::to_value(&doctored)).unwrap();
            let expected_path = path.key(JUNK).to_string();
            checked += 1;
            match sb_config::load_text_in("junk.json", &json, dir) {
                Ok(_) => failures.push(format!(
                    "{}: accepted a junk key at {expected_path}",
                    file.display()
                )),
                Err(e) => {
                    if e.path != expected_path || !e.message.contains("unknown field") {
                        failures.push(format!(
                            "{}: junk at {expected_path} reported as: {e}",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} objects checked");
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
