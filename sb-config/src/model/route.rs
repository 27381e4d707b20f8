//! The `route` section: rules, rule sets, the final outbound and routing-wide options.

use super::outbound::domain_resolver_ref;
use super::route_rule::{self, RouteRule};
use super::rule_set::{self, RuleSet};
use super::shared::{DomainResolver, InterfaceType, NetworkStrategy};
use super::typed::extend_json;
use crate::ctx::Ctx;
use crate::error::DecodeError;
use crate::jsonc::Node;
use crate::object::array;
use crate::object::Obj;
use crate::path::Path;
use crate::refs::RefKind;
use crate::types::{FwMark, GoDuration, Listable};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `route` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Route {
    /// Rules, in order.
    pub rules: Vec<RouteRule>,
    /// Rule sets.
    pub rule_set: Vec<RuleSet>,
    /// Routing-wide options.
    pub options: RouteOptionsSection,
}

/// Routing-wide options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteOptionsSection {
    /// Default outbound; the first outbound when empty.
    #[serde(rename = "final")]
    pub final_: String,
    /// Look up the process of each flow.
    pub find_process: bool,
    /// Look up neighbours (1.14).
    pub find_neighbor: bool,
    /// DHCP lease files (1.14).
    pub dhcp_lease_files: Listable<String>,
    /// Bind outbound sockets to the default interface (avoids TUN loops).
    pub auto_detect_interface: bool,
    /// Android.
    pub override_android_vpn: bool,
    /// Bind outbound sockets to this interface.
    pub default_interface: String,
    /// Default `SO_MARK` of outbound sockets.
    pub default_mark: FwMark,
    /// Default DNS server for outbounds' `domain_resolver`.
    pub default_domain_resolver: Option<DomainResolver>,
    /// Graphical clients.
    pub default_network_strategy: Option<NetworkStrategy>,
    /// Graphical clients.
    pub default_network_type: Listable<InterfaceType>,
    /// Graphical clients.
    pub default_fallback_network_type: Listable<InterfaceType>,
    /// Graphical clients.
    pub default_fallback_delay: GoDuration,
    /// Default HTTP client tag (1.14).
    pub default_http_client: String,
    /// Removed in 1.12 but still accepted silently by Go 1.14 (and kept by its `format`);
    /// sb warns that it has no effect.
    pub geoip: Option<serde_json::Value>,
    /// As `geoip`.
    pub geosite: Option<serde_json::Value>,
}

/// Decodes the `route` section.
pub fn decode(node: &Node, path: &Path, ctx: &mut Ctx) -> Result<Route, DecodeError> {
    let mut o = Obj::new(node, path)?;
    let rules = array(&mut o, "rules", ctx, |n, p, _, ctx| {
        route_rule::decode(n, p, ctx)
    })?;
    let rule_set = array(&mut o, "rule_set", ctx, |n, p, i, ctx| {
        let r = rule_set::decode(n, p, ctx)?;
        ctx.define(RefKind::RuleSet, &r.tag, i, n, p);
        Ok(r)
    })?;
    o.reference(&mut ctx.refs, "final", RefKind::Outbound);
    o.reference(&mut ctx.refs, "default_http_client", RefKind::HttpClient);
    domain_resolver_ref(&o, "default_domain_resolver", ctx)?;
    for key in ["geoip", "geosite"] {
        if let Some(m) = o.peek(key) {
            ctx.warn(
                &o.path().key(key),
                m.key_span.start,
                format!(
                    "`route.{key}` was removed in sing-box 1.12.0 and has no effect; use rule sets"
                ),
            );
        }
    }
    if let Some(m) = o.peek("default_domain_resolver") {
        if matches!(&m.value.kind, crate::jsonc::Kind::Object(ms) if ms.is_empty()) {
            return Err(o.error_at("default_domain_resolver", "empty domain_resolver.server"));
        }
    }
    let options: RouteOptionsSection = o.group()?;
    if options.default_network_strategy.is_some() {
        if !options.auto_detect_interface {
            return Err(o.error_at(
                "default_network_strategy",
                "`auto_detect_interface` is required by `default_network_strategy`",
            ));
        }
        if !options.default_interface.is_empty() {
            return Err(o.error_at(
                "default_network_strategy",
                "`default_network_strategy` is conflict with `default_interface`",
            ));
        }
    }
    if options.override_android_vpn && !cfg!(target_os = "android") {
        return Err(o.error_at(
            "override_android_vpn",
            "`override_android_vpn` is only supported on Android",
        ));
    }
    o.finish()?;
    Ok(Route {
        rules,
        rule_set,
        options,
    })
}

impl Route {
    /// The JSON object `format` writes.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "rules".into(),
            Value::Array(
                self.rules
                    .iter()
                    .map(|r| Value::Object(r.to_json()))
                    .collect(),
            ),
        );
        m.insert(
            "rule_set".into(),
            Value::Array(
                self.rule_set
                    .iter()
                    .map(|r| Value::Object(r.to_json()))
                    .collect(),
            ),
        );
        extend_json(&mut m, &self.options);
        m
    }
}
