//! Tag references found while decoding, kept with their position so that `validate` can say
//! exactly where an unknown tag was written.

use crate::jsonc::{Kind, Node};
use crate::path::Path;

/// What a tag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// An outbound or endpoint (they share one namespace).
    Outbound,
    /// An inbound.
    Inbound,
    /// A DNS server.
    DnsServer,
    /// A rule set.
    RuleSet,
    /// An `http_clients` entry.
    HttpClient,
}

impl RefKind {
    /// How the kind is named in messages.
    pub fn noun(self) -> &'static str {
        match self {
            RefKind::Outbound => "outbound/endpoint",
            RefKind::Inbound => "inbound",
            RefKind::DnsServer => "DNS server",
            RefKind::RuleSet => "rule-set",
            RefKind::HttpClient => "http client",
        }
    }
}

/// One place a tag is referenced.
#[derive(Clone, Debug)]
pub struct RefSite {
    /// What it must name.
    pub kind: RefKind,
    /// The tag written.
    pub tag: String,
    /// Where.
    pub path: Path,
    /// Byte offset of the string.
    pub offset: usize,
}

/// All references of a document.
#[derive(Clone, Debug, Default)]
pub struct Refs {
    /// In document order.
    pub sites: Vec<RefSite>,
}

impl Refs {
    /// Records the string, or each string of the array, in `node`. Empty strings are not
    /// references (Go treats an empty tag as "not set").
    pub fn add_node(&mut self, kind: RefKind, node: &Node, path: &Path) {
        match &node.kind {
            Kind::String(s) if !s.is_empty() => self.sites.push(RefSite {
                kind,
                tag: s.clone(),
                path: path.clone(),
                offset: node.span.start,
            }),
            Kind::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.add_node(kind, item, &path.index(i));
                }
            }
            _ => {}
        }
    }
}
