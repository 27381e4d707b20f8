//! How the command line reports: Go's `LEVEL[0000] message` lines on stderr.

use std::io::IsTerminal;

/// Whether to colour level names.
#[derive(Clone, Copy, Debug)]
pub struct Color(bool);

impl Color {
    /// Colour when stderr is a terminal and the user did not disable it.
    pub fn detect(disabled: bool) -> Color {
        Color(!disabled && std::io::stderr().is_terminal())
    }
}

fn line(color: Color, level: &str, code: &str, msg: &str) {
    if color.0 {
        eprintln!("\x1b[{code}m{level}\x1b[0m[0000] {msg}");
    } else {
        eprintln!("{level}[0000] {msg}");
    }
}

/// Several errors found at once (`sb check` reports every one it finds). The first is the
/// one Go would print; it becomes the `FATAL` line, the others follow as `ERROR` lines.
#[derive(Debug)]
pub struct Errors(pub Vec<String>);

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.first().map_or("", String::as_str))
    }
}

impl std::error::Error for Errors {}

/// A fatal error: the command stops with exit code 1.
pub fn fatal(color: Color, e: &anyhow::Error) {
    if let Some(Errors(all)) = e.downcast_ref::<Errors>() {
        let mut all = all.iter();
        if let Some(first) = all.next() {
            line(color, "FATAL", "31", first);
        }
        for more in all {
            line(color, "ERROR", "31", &format!("also: {more}"));
        }
        return;
    }
    line(color, "FATAL", "31", &format!("{e:#}"));
    // A config with several errors: the first is the FATAL line (Go's), the rest follow.
    if let Some(c) = e.downcast_ref::<sb_config::ConfigError>() {
        for more in &c.more {
            line(color, "ERROR", "31", &format!("also: {more}"));
        }
    }
}

/// A warning.
pub fn warn(color: Color, msg: &str) {
    line(color, "WARN", "33", msg);
}
