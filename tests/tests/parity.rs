//! Parity of `check` and `format` with the real Go sing-box 1.14.4 binary over the corpus in
//! `tests/parity/`: `valid/` (both accept; formats equal as JSON values), `invalid/` (both
//! reject), `stricter/` (Go accepts, sb rejects on purpose; each file says why).

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use sb_tests::{corpus, go_run, go_sing_box};
use std::path::Path;

fn sb_load(path: &Path) -> Result<sb_config::Loaded, sb_config::ConfigError> {
    let text = std::fs::read_to_string(path).unwrap();
    // Relative paths inside the config resolve against its directory, where Go runs too.
    let dir = path.parent().unwrap();
    sb_config::load_text_in(&path.display().to_string(), &text, dir)
}

#[test]
fn valid_configs_are_accepted_and_formatted_like_go() {
    let Some(go) = go_sing_box() else { return };
    let files = corpus("valid");
    assert!(files.len() >= 40, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let go_check = go_run(&go, "check", f);
        assert!(
            go_check.ok,
            "{}: Go rejects a valid-corpus file: {}",
            f.display(),
            go_check.stderr
        );
        let loaded = match sb_load(f) {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("{}: sb rejects: {e}", f.display()));
                continue;
            }
        };
        let formatted = sb_config::format(&loaded);
        let ours = sb_config::to_value(&sb_config::jsonc::parse(&formatted).unwrap_or_else(|e| {
            panic!("{}: sb format is not JSON: {e}\n{formatted}", f.display())
        }));
        let go_fmt = go_run(&go, "format", f);
        if !go_fmt.ok {
            // Go 1.14.4 cannot format a few configs it accepts (its `format` re-decodes its own
            // output and fails); such files carry Go's error beside them and only sb's side
            // (accepted, formatted) is checked.
            let marker = f.with_extension("go-format-error.txt");
            if !marker.exists() {
                failures.push(format!(
                    "{}: Go format failed unexpectedly: {}",
                    f.display(),
                    go_fmt.stderr.trim()
                ));
            }
            continue;
        }
        let theirs = sb_config::to_value(&sb_config::jsonc::parse(&go_fmt.stdout).unwrap());
        if ours != theirs {
            let mut diffs = Vec::new();
            diff(&ours, &theirs, "", &mut diffs);
            failures.push(format!(
                "{}: format differs:\n  {}",
                f.display(),
                diffs.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_configs_are_rejected_by_both() {
    let Some(go) = go_sing_box() else { return };
    let files = corpus("invalid");
    assert!(files.len() >= 20, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let go_check = go_run(&go, "check", f);
        assert!(
            !go_check.ok,
            "{}: Go accepts an invalid-corpus file",
            f.display()
        );
        if sb_load(f).is_ok() {
            failures.push(format!(
                "{}: sb accepts; Go says: {}",
                f.display(),
                go_check.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn stricter_configs_are_rejected_by_sb_only() {
    let Some(go) = go_sing_box() else { return };
    let files = corpus("stricter");
    assert!(files.len() >= 10, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.starts_with("// stricter: "),
            "{}: a stricter case must start with `// stricter: <reason>`",
            f.display()
        );
        let go_check = go_run(&go, "check", f);
        assert!(
            go_check.ok,
            "{}: Go rejects it, so it is not a stricter case: {}",
            f.display(),
            go_check.stderr
        );
        if sb_load(f).is_ok() {
            failures.push(format!("{}: sb accepts", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn format_is_idempotent_and_keeps_the_verdict() {
    for f in corpus("valid") {
        let loaded = sb_load(&f).unwrap_or_else(|e| panic!("{e}"));
        let once = sb_config::format(&loaded);
        let again = sb_config::load_text("formatted", &once)
            .unwrap_or_else(|e| panic!("{}: check(format(x)) fails: {e}\n{once}", f.display()));
        let twice = sb_config::format(&again);
        assert_eq!(once, twice, "{}: format is not idempotent", f.display());
    }
    for dir in ["invalid", "stricter"] {
        for f in corpus(dir) {
            assert!(sb_load(&f).is_err(), "{}", f.display());
        }
    }
}

/// Collects the paths where two JSON values differ.
fn diff(a: &serde_json::Value, b: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: sb has {v}, Go has nothing")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("{path}.{k}: sb has nothing, Go has {w}"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: sb has {a}, Go has {b}")),
        _ => {}
    }
}

#[test]
fn example_configs_pass_both_checkers() {
    let Some(go) = go_sing_box() else { return };
    let dir = sb_tests::workspace().join("configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "configs/ has {} examples", files.len());
    // Examples of what only sb has: the tailscale endpoint's daemon mode (Go embeds a node,
    // and its reference binary is built without Tailscale).
    const SB_ONLY: &[&str] = &["tailscale.json"];
    for f in &files {
        if SB_ONLY.iter().any(|n| f.ends_with(n)) {
            if let Err(e) = sb_load(f) {
                panic!("{}: sb rejects it: {e}", f.display());
            }
            continue;
        }
        let go_check = go_run(&go, "check", f);
        assert!(
            go_check.ok,
            "{}: Go rejects it: {}",
            f.display(),
            go_check.stderr
        );
        if let Err(e) = sb_load(f) {
            panic!("{}: sb rejects it: {e}", f.display());
        }
    }
}
