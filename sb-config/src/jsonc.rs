//! A JSON-with-comments reader that keeps where every value came from.
//!
//! sing-box configs are JSON plus `//` and `/* */` comments and trailing commas. This reader
//! turns the text into a [`Node`] tree in which every value and every object key carries its
//! byte [`Span`], so that later stages (decoding, reference checks) can say `file:line:column`.
//! Comments are kept beside the node they belong to, because `sb format` writes them back.
//!
//! It is sans-IO and never panics on input: nesting is bounded by [`MAX_DEPTH`] so hostile
//! input cannot exhaust the stack.

use std::fmt;

/// Deepest nesting of arrays/objects accepted; far beyond any real config.
pub const MAX_DEPTH: usize = 128;

/// A half-open byte range `[start, end)` in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A JSON number as written. The text is kept so integers are never rounded through `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    /// The literal text, e.g. `-12`, `1.5e3`.
    pub text: String,
}

impl Number {
    /// The value when the literal is an integer (no fraction or exponent).
    pub fn as_i128(&self) -> Option<i128> {
        self.text.parse().ok()
    }
    /// The value as a float.
    pub fn as_f64(&self) -> Option<f64> {
        self.text.parse().ok()
    }
}

/// One JSON value with its position and the comments written around it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub kind: Kind,
    /// Where the value is in the source.
    pub span: Span,
    /// Comments on the lines before this value (or before its key, for object members).
    pub leading: Vec<String>,
    /// Comments after this value on the same line, and comments before a container's
    /// closing bracket.
    pub trailing: Vec<String>,
}

/// The shape of a JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number literal.
    Number(Number),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Node>),
    /// An object, members in source order (duplicates kept; the last one wins when decoding,
    /// as in Go's `encoding/json`).
    Object(Vec<Member>),
}

/// An object member: key, where the key is, and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The key, unescaped.
    pub key: String,
    /// Where the key (with its quotes) is.
    pub key_span: Span,
    /// The value.
    pub value: Node,
}

impl Kind {
    /// The JSON name of this kind, as used in error messages.
    pub fn json_type(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "boolean",
            Kind::Number(_) => "number",
            Kind::String(_) => "string",
            Kind::Array(_) => "array",
            Kind::Object(_) => "object",
        }
    }
}

impl Node {
    fn new(kind: Kind, span: Span) -> Node {
        Node {
            kind,
            span,
            leading: Vec::new(),
            trailing: Vec::new(),
        }
    }

    /// A short description of the value for "found ..." in error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "null".into(),
            Kind::Bool(b) => format!("boolean {b}"),
            Kind::Number(n) => format!("number {}", n.text),
            Kind::String(s) => {
                let mut shown: String = s.chars().take(40).collect();
                if shown.len() < s.len() {
                    shown.push('…');
                }
                format!("string {shown:?}")
            }
            Kind::Array(_) => "array".into(),
            Kind::Object(_) => "object".into(),
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A syntax error with its byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub offset: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses JSONC text into a [`Node`] tree. An empty document (only whitespace and comments)
/// is an error, as in Go.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: 0,
        pending: Vec::new(),
    };
    p.skip_ws()?;
    let leading = std::mem::take(&mut p.pending);
    let mut root = p.value(0)?;
    root.leading.splice(0..0, leading);
    p.skip_ws()?;
    root.trailing.append(&mut p.pending);
    if p.pos < p.src.len() {
        return Err(p.err(format!(
            "unexpected {} after the top-level value",
            p.describe_here()
        )));
    }
    Ok(root)
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    /// Comments seen since the last value, not yet given to a node.
    pending: Vec<String>,
}

impl Parser<'_> {
    fn err(&self, message: String) -> SyntaxError {
        SyntaxError {
            message,
            offset: self.pos,
        }
    }

    fn describe_here(&self) -> String {
        match self.text.get(self.pos..).and_then(|s| s.chars().next()) {
            None => "end of input".into(),
            Some(c) => format!("character {c:?}"),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Skips whitespace and comments, collecting comments into `pending`.
    fn skip_ws(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => {
                    let c = self.comment()?;
                    self.pending.push(c);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Skips spaces and comments on the current line only; comments found are returned.
    /// Used to give a trailing `// note` to the value before it.
    fn same_line_comments(&mut self) -> Result<Vec<String>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'/') => {
                    let c = self.comment()?;
                    let ends_line = c.starts_with("//");
                    out.push(c);
                    if ends_line {
                        return Ok(out);
                    }
                }
                _ => return Ok(out),
            }
        }
    }

    fn comment(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        match self.src.get(self.pos + 1) {
            Some(b'/') => {
                while let Some(c) = self.peek() {
                    if c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
                Ok(self.text[start..self.pos].trim_end().to_string())
            }
            Some(b'*') => {
                self.pos += 2;
                loop {
                    match self.peek() {
                        None => {
                            self.pos = start;
                            return Err(self.err("unterminated /* comment".into()));
                        }
                        Some(b'*') if self.src.get(self.pos + 1) == Some(&b'/') => {
                            self.pos += 2;
                            return Ok(self.text[start..self.pos].to_string());
                        }
                        Some(_) => self.pos += 1,
                    }
                }
            }
            _ => Err(self.err("invalid character '/' (a comment starts with // or /*)".into())),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let start = self.pos;
        match self.peek() {
            None => Err(self.err("unexpected end of input, expected a value".into())),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let s = self.string()?;
                Ok(Node::new(Kind::String(s), self.span_from(start)))
            }
            Some(b't') => self.literal("true", Kind::Bool(true)),
            Some(b'f') => self.literal("false", Kind::Bool(false)),
            Some(b'n') => self.literal("null", Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err(format!(
                "unexpected {}, expected a value",
                self.describe_here()
            ))),
        }
    }

    fn span_from(&self, start: usize) -> Span {
        Span {
            start,
            end: self.pos,
        }
    }

    fn literal(&mut self, word: &str, kind: Kind) -> Result<Node, SyntaxError> {
        let start = self.pos;
        if self.src[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(Node::new(kind, self.span_from(start)))
        } else {
            Err(self.err(format!(
                "unexpected {}, expected a value",
                self.describe_here()
            )))
        }
    }

    fn number(&mut self) -> Result<Node, SyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos - s
        };
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 {
            return Err(self.err("invalid number: expected a digit".into()));
        }
        if n > 1 && self.src[int_start] == b'0' {
            self.pos = int_start;
            return Err(self.err("invalid number: leading zero".into()));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.err("invalid number: expected a digit after '.'".into()));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number: expected a digit in the exponent".into()));
            }
        }
        let text = self.text[start..self.pos].to_string();
        Ok(Node::new(
            Kind::Number(Number { text }),
            self.span_from(start),
        ))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        // Caller checked the opening quote.
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(self.err("unterminated string".into())),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self
                        .peek()
                        .ok_or_else(|| self.err("unterminated string".into()))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => {
                            self.pos -= 1;
                            return Err(self.err(format!(
                                "invalid escape {} in string",
                                self.describe_here()
                            )));
                        }
                    }
                }
                Some(_) => return Err(self.err("control character in string".into())),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let s = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("invalid \\u escape".into()))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| self.err("invalid \\u escape".into()))?;
        self.pos += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.src[self.pos..].starts_with(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.pos = save;
        }
        // Lone surrogates become U+FFFD, as Go's decoder does.
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }

    fn enter(&self, depth: usize) -> Result<usize, SyntaxError> {
        if depth >= MAX_DEPTH {
            Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")))
        } else {
            Ok(depth + 1)
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let depth = self.enter(depth)?;
        let start = self.pos;
        self.pos += 1;
        let mut members = Vec::new();
        let mut inner_trailing = self.same_line_comments()?;
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b'"') => {}
                _ => {
                    return Err(self.err(format!(
                        "unexpected {}, expected a string key or '}}'",
                        self.describe_here()
                    )))
                }
            }
            let leading = std::mem::take(&mut self.pending);
            let key_start = self.pos;
            let key = self.string()?;
            let key_span = self.span_from(key_start);
            self.skip_ws()?;
            if self.peek() != Some(b':') {
                return Err(self.err(format!(
                    "unexpected {} after object key, expected ':'",
                    self.describe_here()
                )));
            }
            self.pos += 1;
            self.skip_ws()?;
            let mut value = self.value(depth)?;
            let mut lead = leading;
            lead.append(&mut self.pending);
            value.leading = lead;
            // `"k": v, // note` and `"k": v // note` both belong to this member.
            value.trailing.extend(self.same_line_comments()?);
            self.skip_ws()?;
            let more = match self.peek() {
                Some(b',') => {
                    // Comments between the value and its comma belong to the value; comments
                    // on lines before a closing bracket stay with the container.
                    value.trailing.append(&mut self.pending);
                    self.pos += 1;
                    value.trailing.extend(self.same_line_comments()?);
                    true
                }
                Some(b'}') => false,
                _ => {
                    return Err(self.err(format!(
                        "unexpected {} after object key:value pair, expected ',' or '}}'",
                        self.describe_here()
                    )))
                }
            };
            members.push(Member {
                key,
                key_span,
                value,
            });
            if !more {
                self.pos += 1;
                break;
            }
        }
        inner_trailing.append(&mut self.pending);
        let mut node = Node::new(Kind::Object(members), self.span_from(start));
        node.trailing = inner_trailing;
        Ok(node)
    }

    fn array(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let depth = self.enter(depth)?;
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        let mut inner_trailing = self.same_line_comments()?;
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                break;
            }
            let leading = std::mem::take(&mut self.pending);
            let mut value = self.value(depth)?;
            value.leading = leading;
            value.trailing.extend(self.same_line_comments()?);
            self.skip_ws()?;
            let more = match self.peek() {
                Some(b',') => {
                    value.trailing.append(&mut self.pending);
                    self.pos += 1;
                    value.trailing.extend(self.same_line_comments()?);
                    true
                }
                Some(b']') => false,
                _ => {
                    return Err(self.err(format!(
                        "unexpected {} after array element, expected ',' or ']'",
                        self.describe_here()
                    )))
                }
            };
            items.push(value);
            if !more {
                self.pos += 1;
                break;
            }
        }
        inner_trailing.append(&mut self.pending);
        let mut node = Node::new(Kind::Array(items), self.span_from(start));
        node.trailing = inner_trailing;
        Ok(node)
    }
}

/// Converts a byte offset into a 1-based (line, column); the column counts characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests;
