//! tor's control-protocol replies (control-spec.txt §2.3), sans-IO: reply lines `NNN-text`
//! (more follow), `NNN+text` (a data block up to a lone `.`) and a final `NNN text`. Bounded
//! (a line, a reply): tor is a local process, but a broken or foreign one on the control port
//! must not make sb buffer without end. The `tor` outbound's external mode reads them
//! (`outbound/tor/external/control.rs`).

/// Longest reply line sb reads.
pub const MAX_LINE: usize = 16 * 1024;
/// Most lines in one reply.
const MAX_LINES: usize = 1024;

/// One complete reply.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code of the final line (250 is success).
    pub code: u16,
    /// Every line's text after the code and separator, data blocks joined into their line.
    pub lines: Vec<String>,
}

impl Reply {
    /// The value of `key=value` in the reply's lines, unquoted (`GETINFO` answers).
    pub fn value(&self, key: &str) -> Option<String> {
        self.lines.iter().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix('=')?;
            Some(unquote(v))
        })
    }
}

/// Why a reply could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line that is not `NNN[-+ ]text`.
    #[error("malformed control reply line {0:?}")]
    Malformed(String),
    /// A line or reply past sb's bounds.
    #[error("control reply too long")]
    TooLong,
}

/// Accumulates reply lines; [`Parser::line`] returns the reply once its final line came.
#[derive(Default)]
pub struct Parser {
    lines: Vec<String>,
    /// Inside a `NNN+` data block (until a lone `.`).
    data: bool,
}

impl Parser {
    /// Feeds one line (without its CRLF).
    pub fn line(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        if line.len() > MAX_LINE || self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        if self.data {
            if line == "." {
                self.data = false;
            } else if let Some(last) = self.lines.last_mut() {
                // A leading `..` escapes a `.` that starts a data line.
                let text = line
                    .strip_prefix('.')
                    .filter(|r| r.starts_with('.'))
                    .unwrap_or(line);
                if last.len() + text.len() > MAX_LINE {
                    return Err(ReplyError::TooLong);
                }
                last.push('\n');
                last.push_str(text);
            }
            return Ok(None);
        }
        let malformed = || ReplyError::Malformed(line.chars().take(80).collect());
        let (code, rest) = (
            line.get(..3).ok_or_else(malformed)?,
            line.get(3..).unwrap_or(""),
        );
        let code: u16 = code
            .parse()
            .ok()
            .filter(|_| code.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(malformed)?;
        let mut chars = rest.chars();
        let sep = chars.next().ok_or_else(malformed)?;
        let text = chars.as_str().to_string();
        match sep {
            '-' => self.lines.push(text),
            '+' => {
                self.lines.push(text);
                self.data = true;
            }
            ' ' => {
                self.lines.push(text);
                return Ok(Some(Reply {
                    code,
                    lines: std::mem::take(&mut self.lines),
                }));
            }
            _ => return Err(malformed()),
        }
        Ok(None)
    }
}

/// A control-protocol value as tor quotes it: `"..."` with backslash escapes, or bare.
pub fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A value quoted for `SETCONF` (tor reads C-style escapes inside double quotes).
pub fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn parse(lines: &[&str]) -> Result<Option<Reply>, ReplyError> {
        let mut p = Parser::default();
        let mut last = Ok(None);
        for l in lines {
            last = p.line(l);
            if !matches!(last, Ok(None)) {
                break;
            }
        }
        last
    }

    #[test]
    fn replies_are_read_to_their_final_line() {
        let r = parse(&["250-net/listeners/socks=\"127.0.0.1:9050\"", "250 OK"])
            .unwrap()
            .unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            r.value("net/listeners/socks").as_deref(),
            Some("127.0.0.1:9050")
        );
        let r = parse(&["515 Authentication failed"]).unwrap().unwrap();
        assert_eq!(r.code, 515);
        assert_eq!(parse(&["250-a=1"]).unwrap(), None);
    }

    #[test]
    fn data_blocks_are_joined_and_unescaped() {
        let r = parse(&["250+config-text=", "A 1", "..dot", ".", "250 OK"])
            .unwrap()
            .unwrap();
        assert_eq!(r.lines[0], "config-text=\nA 1\n.dot");
    }

    #[test]
    fn malformed_and_oversized_replies_are_errors() {
        for bad in ["", "25", "2x0 OK", "250", "250*OK"] {
            assert!(
                matches!(parse(&[bad]), Err(ReplyError::Malformed(_))),
                "{bad:?}"
            );
        }
        let long = format!("250-{}", "x".repeat(MAX_LINE));
        assert_eq!(parse(&[&long]), Err(ReplyError::TooLong));
        let many: Vec<&str> = std::iter::repeat_n("250-x", MAX_LINES + 1).collect();
        assert_eq!(parse(&many), Err(ReplyError::TooLong));
    }

    #[test]
    fn values_round_trip_through_quoting() {
        for v in [
            "plain",
            "with \"quotes\" and \\",
            "a\nb\tc",
            "line\r\nend\r",
        ] {
            assert_eq!(unquote(&quote(v)), v);
        }
        assert_eq!(unquote("bare"), "bare");
    }
}
