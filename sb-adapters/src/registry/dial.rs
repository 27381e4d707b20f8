//! Dial-field translation: an adapter's `detour`, `bind_interface`, `routing_mark`, timeouts,
//! keep-alive and `domain_resolver` (with `route.default_*` filled in) become an sb-core
//! [`Dialer`]. Detours and resolvers name adapters and DNS servers that may not be built yet,
//! so the dialer gets a late-bound slot that [`super::build`] fills once they exist.

use sb_config::model::route::RouteOptionsSection;
use sb_config::model::shared::DialFields;
use sb_config::types::DomainStrategy;
use sb_core::dialer::{Detour, DialOptions, Dialer};
use sb_core::resolve::{DomainResolver, LateResolver};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// What dialers are made from while an instance is built, and the late slots they left.
pub(super) struct DialCtx<'a> {
    /// `route` options (the `default_*` fields).
    pub route: Option<&'a RouteOptionsSection>,
    /// The default route's interface when `route.auto_detect_interface` found one.
    pub detected_interface: Option<String>,
    /// Whether `dns.servers` is configured: without it, dialers keep the system resolver.
    pub dns_configured: bool,
    /// Detours made so far, bound to their targets once every outbound is built.
    pub detours: RefCell<Vec<Arc<Detour>>>,
    /// Resolvers named by `domain_resolver` (by DNS server tag; "" = through the DNS rules),
    /// set once the DNS module is built.
    pub resolvers: RefCell<HashMap<String, Arc<LateResolver>>>,
}

impl DialCtx<'_> {
    /// The dialer for an adapter's dial fields, with `route.default_*` applied.
    pub fn dialer(&self, d: &DialFields) -> Dialer {
        self.dialer_for(d, false)
    }

    /// The late resolver for `domain_resolver` server `tag` ("" = through the DNS rules).
    fn late_resolver(&self, tag: &str) -> Arc<LateResolver> {
        self.resolvers
            .borrow_mut()
            .entry(tag.to_string())
            .or_default()
            .clone()
    }

    /// A dialer; a DNS server's (`for_dns`) does not take `route.default_domain_resolver`
    /// (Go's rule, #3232).
    pub fn dialer_for(&self, d: &DialFields, for_dns: bool) -> Dialer {
        if !d.detour.is_empty() {
            let detour = Arc::new(Detour::new(&d.detour));
            self.detours.borrow_mut().push(detour.clone());
            return Dialer::Detour(detour);
        }
        let mut o = DialOptions::default();
        let route = self.route;
        o.bind_interface = Some(d.bind_interface.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                route
                    .map(|r| r.default_interface.clone())
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| self.detected_interface.clone());
        o.routing_mark = if d.routing_mark.0 != 0 {
            d.routing_mark.0
        } else {
            route.map_or(0, |r| r.default_mark.0)
        };
        if !d.connect_timeout.is_zero() {
            o.connect_timeout = d.connect_timeout.to_std();
        }
        if d.disable_tcp_keep_alive {
            o.keep_alive = None;
        } else if let Some((idle, interval)) = o.keep_alive.as_mut() {
            if !d.tcp_keep_alive.is_zero() {
                *idle = d.tcp_keep_alive.to_std();
            }
            if !d.tcp_keep_alive_interval.is_zero() {
                *interval = d.tcp_keep_alive_interval.to_std();
            }
        }
        if !d.fallback_delay.is_zero() {
            o.fallback_delay = d.fallback_delay.to_std();
        }
        o.inet4_bind = d.inet4_bind_address.map(|i| i.0);
        o.inet6_bind = d.inet6_bind_address.map(|i| i.0);
        o.reuse_addr = d.reuse_addr;
        o.tcp_fast_open = d.tcp_fast_open;
        o.bind_address_no_port = d.bind_address_no_port;
        let named = d.domain_resolver.as_ref().or_else(|| {
            route
                .filter(|_| !for_dns)
                .and_then(|r| r.default_domain_resolver.as_ref())
        });
        o.domain_resolver = match named {
            Some(r) => Some(DomainResolver {
                resolver: self.late_resolver(&r.0.server),
                strategy: r.0.strategy,
            }),
            None if self.dns_configured && !for_dns => Some(DomainResolver {
                resolver: self.late_resolver(""),
                strategy: DomainStrategy::AsIs,
            }),
            None => None,
        };
        Dialer::Direct(o)
    }
}
