//! `route.rule_set[]`: named rule lists (inline, local file, remote URL) and their headless
//! rules.

use super::http_client::{self, HttpClientRef};
use super::rule_match::{
    check_core, logical_mode, logical_rules, rule_type, LogicalMode, MatchCore, RuleType,
};
use super::typed::extend_json;
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{GoDuration, Listable};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One rule set.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSet {
    /// Its tag (required).
    pub tag: String,
    /// Where its rules come from.
    pub kind: RuleSetKind,
}

/// Rule-set sources.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleSetKind {
    /// Rules written in the config.
    Inline(Vec<HeadlessRule>),
    /// A file, reloaded when it changes.
    Local(LocalRuleSet),
    /// A URL, downloaded through an outbound and refreshed.
    Remote(RemoteRuleSet),
}

/// `local` rule-set fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalRuleSet {
    /// `source` or `binary`; inferred from a `.json`/`.srs` path when empty.
    pub format: Option<RuleSetFormat>,
    /// File path.
    pub path: String,
}

/// `remote` rule-set fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteRuleSet {
    /// `source` or `binary`; inferred from a `.json`/`.srs` URL when empty.
    pub format: Option<RuleSetFormat>,
    /// Download URL.
    pub url: String,
    /// Deprecated in 1.14 (use `http_client`); still honoured.
    pub download_detour: String,
    /// HTTP client tag or options (1.14); decoded on its own, before the other fields.
    #[serde(skip)]
    pub http_client: Option<HttpClientRef>,
    /// File used before the first download (1.14).
    pub initial_path: String,
    /// Refresh interval; 1d when zero.
    pub update_interval: GoDuration,
}

/// Rule-set file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSetFormat {
    /// JSON source.
    Source,
    /// Compiled `.srs`.
    Binary,
}

/// A rule inside a rule set: match fields only.
#[derive(Clone, Debug, PartialEq)]
pub enum HeadlessRule {
    /// Match fields.
    Default(Box<HeadlessMatch>),
    /// `and`/`or` over nested headless rules.
    Logical {
        /// How sub-rules combine.
        mode: LogicalMode,
        /// Sub-rules.
        rules: Vec<HeadlessRule>,
        /// Negate the result.
        invert: bool,
    },
}

/// Match fields of a headless rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadlessMatch {
    /// Shared fields.
    pub core: MatchCore,
    /// DNS query types.
    pub query: QueryTypeField,
}

/// `query_type`: record type names (`A`, `HTTPS`) or numbers.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryTypeField {
    /// Query types as written.
    pub query_type: Listable<QueryType>,
}

pub use super::dns_record::QueryType;

/// Decodes a headless rule.
pub fn decode_headless(
    node: &Node,
    path: &Path,
    ctx: &mut Ctx,
) -> Result<HeadlessRule, DecodeError> {
    let mut o = Obj::new(node, path)?;
    let r = match rule_type(&mut o)? {
        RuleType::Default => {
            let core: MatchCore = o.group()?;
            check_core(&o, &core)?;
            HeadlessRule::Default(Box::new(HeadlessMatch {
                core,
                query: o.group()?,
            }))
        }
        RuleType::Logical => {
            let mode = logical_mode(&mut o)?;
            let rules = logical_rules(&mut o, ctx, decode_headless)?;
            let invert = o.take("invert")?.unwrap_or(false);
            HeadlessRule::Logical {
                mode,
                rules,
                invert,
            }
        }
    };
    o.finish()?;
    Ok(r)
}

/// Decodes `route.rule_set[index]`.
pub fn decode(node: &Node, path: &Path, ctx: &mut Ctx) -> Result<RuleSet, DecodeError> {
    let mut o = Obj::new(node, path)?;
    let ty: String = o.take("type")?.unwrap_or_default();
    let tag: String = o.take("tag")?.unwrap_or_default();
    if tag.is_empty() {
        return Err(o.error("missing tag"));
    }
    let result = (|| {
        let kind = match ty.as_str() {
            "" | "inline" => {
                // Go reads `format` before it looks at the type, so any string is accepted
                // here; it then clears it for inline sets, and its `format` leaves it out.
                let _format: Option<String> = o.take("format")?;
                let rules = match o.take_node("rules") {
                    Some((n, p)) => match &n.kind {
                        crate::jsonc::Kind::Array(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, r)| decode_headless(r, &p.index(i), ctx))
                            .collect::<Result<Vec<_>, _>>()?,
                        _ => {
                            return Err(DecodeError::at(
                                &p,
                                n.span.start,
                                format!("expected an array, found {}", n.describe()),
                            ))
                        }
                    },
                    None => Vec::new(),
                };
                if rules.is_empty() && o.has("rules") {
                    return Err(o.error_at("rules", "empty inline rule-set"));
                }
                RuleSetKind::Inline(rules)
            }
            "local" => {
                let l: LocalRuleSet = o.group()?;
                let format = l.format.or_else(|| infer_format(&l.path));
                let Some(format) = format else {
                    return Err(o.error("missing format"));
                };
                // Go reads and parses a local rule set when the router is built.
                let bytes = ctx
                    .read_file_bytes(&l.path)
                    .map_err(|e| o.error_at("path", e))?;
                if let Some(bytes) = bytes {
                    crate::rule_set_file::parse_any(&bytes, format, &l.path)
                        .map_err(|e| o.error_at("path", e.to_string()))?;
                }
                RuleSetKind::Local(l)
            }
            "remote" => {
                o.reference(&mut ctx.refs, "download_detour", RefKind::Outbound);
                let client = match o.take_node("http_client") {
                    Some((n, p)) => http_client::decode_ref(n, &p, ctx)?,
                    None => None,
                };
                let mut r: RemoteRuleSet = o.group()?;
                r.http_client = client;
                if r.format.is_none() && infer_format(&r.url).is_none() {
                    return Err(o.error("missing format"));
                }
                if !r.download_detour.is_empty() {
                    if let Some(m) = o.peek("download_detour") {
                        ctx.warn(&o.path().key("download_detour"), m.key_span.start, "`download_detour` in remote rule-set is deprecated in sing-box 1.14.0, use `http_client` instead");
                    }
                }
                RuleSetKind::Remote(r)
            }
            other => {
                return Err(o.error_at(
                    "type",
                    format!(
                    "unknown rule-set type {other:?}, expected \"inline\", \"local\" or \"remote\""
                ),
                ))
            }
        };
        o.finish()?;
        Ok(kind)
    })();
    result
        .map(|kind| RuleSet {
            tag: tag.clone(),
            kind,
        })
        .map_err(|e| e.with_tag(&tag))
}

/// The format a path or URL implies.
pub fn infer_format(path: &str) -> Option<RuleSetFormat> {
    let p = path.split(['?', '#']).next().unwrap_or(path);
    if p.ends_with(".json") {
        Some(RuleSetFormat::Source)
    } else if p.ends_with(".srs") {
        Some(RuleSetFormat::Binary)
    } else {
        None
    }
}

impl HeadlessRule {
    /// The JSON object `format` writes.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match self {
            HeadlessRule::Default(r) => {
                extend_json(&mut m, &r.core);
                extend_json(&mut m, &r.query);
            }
            HeadlessRule::Logical {
                mode,
                rules,
                invert,
            } => {
                m.insert("type".into(), Value::String("logical".into()));
                extend_json(&mut m, &serde_json::json!({ "mode": mode }));
                m.insert(
                    "rules".into(),
                    Value::Array(rules.iter().map(|r| Value::Object(r.to_json())).collect()),
                );
                m.insert("invert".into(), Value::Bool(*invert));
            }
        }
        m
    }
}

impl RuleSet {
    /// The JSON object `format` writes.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        // `inline` is the default type and `format` leaves it out, as Go does.
        let ty = match self.kind {
            RuleSetKind::Inline(_) => "",
            RuleSetKind::Local(_) => "local",
            RuleSetKind::Remote(_) => "remote",
        };
        m.insert("type".into(), Value::String(ty.into()));
        m.insert("tag".into(), Value::String(self.tag.clone()));
        match &self.kind {
            RuleSetKind::Inline(rules) => {
                m.insert(
                    "rules".into(),
                    Value::Array(rules.iter().map(|r| Value::Object(r.to_json())).collect()),
                );
            }
            RuleSetKind::Local(l) => {
                extend_json(&mut m, l);
                drop_inferred_format(&mut m, l.format, &l.path);
            }
            RuleSetKind::Remote(r) => {
                extend_json(&mut m, r);
                if let Some(c) = &r.http_client {
                    m.insert("http_client".into(), c.to_json());
                }
                drop_inferred_format(&mut m, r.format, &r.url);
            }
        }
        m
    }
}

/// Go leaves `format` out when the path or URL extension implies it.
fn drop_inferred_format(m: &mut Map<String, Value>, format: Option<RuleSetFormat>, path: &str) {
    if format.is_some() && format == infer_format(path) {
        m.shift_remove("format");
    }
}
