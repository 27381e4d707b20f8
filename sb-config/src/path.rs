//! JSON paths in Go's notation (`route.rules[0].outbound`), cheap to extend and clone.

use std::fmt;
use std::rc::Rc;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path from the document root. Cloning shares the prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(Option<Rc<(Path, Seg)>>);

impl Path {
    /// The document root.
    pub fn root() -> Path {
        Path(None)
    }
    /// This path plus an object key.
    pub fn key(&self, k: &str) -> Path {
        Path(Some(Rc::new((self.clone(), Seg::Key(k.to_string())))))
    }
    /// This path plus an array index.
    pub fn index(&self, i: usize) -> Path {
        Path(Some(Rc::new((self.clone(), Seg::Index(i)))))
    }
    /// True for the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_none()
    }
    /// The steps from the root.
    pub fn segments(&self) -> Vec<Seg> {
        let mut out = Vec::new();
        let mut cur = self;
        while let Some(rc) = &cur.0 {
            out.push(rc.1.clone());
            cur = &rc.0;
        }
        out.reverse();
        out
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments().iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_go() {
        let p = Path::root()
            .key("route")
            .key("rules")
            .index(0)
            .key("outbound");
        assert_eq!(p.to_string(), "route.rules[0].outbound");
        assert_eq!(Path::root().to_string(), "");
    }
}
