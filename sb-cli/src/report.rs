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

/// A fatal error: the command stops with exit code 1.
pub fn fatal(color: Color, e: &anyhow::Error) {
    line(color, "FATAL", "31", &format!("{e:#}"));
}

/// A warning.
pub fn warn(color: Color, msg: &str) {
    line(color, "WARN", "33", msg);
}
