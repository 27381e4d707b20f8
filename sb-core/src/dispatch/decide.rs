//! The decisions of the dispatcher, without I/O on the flow: the rules walked into a
//! [`Decision`] (route-options applied on the way, the reject limiter asked, `route.final`
//! or the default outbound at the end), and the flow rewrites around them: a FakeIP or
//! reverse-mapped destination before the rules, a `resolve` action's lookup between them.

use super::{Dispatcher, RouteError};
use crate::adapter::Outbound;
use crate::dns::client::Fake;
use crate::flow::{Destination, FlowContext};
use sb_config::model::route_rule::{RouteAction, RouteOptions};
use sb_config::types::DomainStrategy;
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;

/// Go's default wait for the first bytes of a sniffed flow.
const SNIFF_TIMEOUT: Duration = Duration::from_millis(300);

/// What the rules decided for a flow.
pub enum Decision {
    /// Carry it through this outbound.
    Route(Arc<dyn Outbound>),
    /// Refuse it; `drop` means without an answer.
    Reject {
        /// Close without answering the client.
        drop: bool,
    },
    /// It cannot be routed (the reason is logged and answered as a general failure).
    Fail(RouteError),
    /// A `hijack-dns` action: the DNS module answers the flow's queries.
    HijackDns,
    /// A `sniff` action: peek at the client's first bytes, then decide again from rule `next`.
    Sniff {
        /// The rule to continue from.
        next: usize,
        /// Sniffers to run (all when empty).
        sniffers: Vec<&'static str>,
        /// How long to wait for the client's first bytes.
        timeout: Duration,
    },
    /// A `resolve` action: look up the destination domain, then decide again from `next`.
    Resolve {
        /// The rule to continue from.
        next: usize,
        /// Address family preference.
        strategy: DomainStrategy,
        /// The DNS server to ask (`server`); through the DNS rules when empty.
        server: String,
    },
}

impl Dispatcher {
    /// Walks the rules for `flow`: applies `route-options`, stops at the first final action,
    /// and falls back to `route.final` or the default outbound.
    pub fn decide(&self, flow: &mut FlowContext) -> Decision {
        self.decide_from(flow, 0)
    }

    /// [`Dispatcher::decide`], starting at rule `from` (after a sniff).
    pub fn decide_from(&self, flow: &mut FlowContext, from: usize) -> Decision {
        let mut from = from;
        while let Some(rule) = self.router.first_match(flow, from) {
            debug!(target: "router", "match[{}] {} => {}", rule.index, rule.description, action_text(&rule.action));
            match &rule.action {
                RouteAction::Route(target, opts) | RouteAction::Bypass(target, opts) => {
                    apply_options(flow, opts);
                    flow.matched_rule = Some(rule.index);
                    return match self.outbound(&target.outbound) {
                        Some(o) => route_to(o, flow),
                        None => {
                            Decision::Fail(RouteError::OutboundNotFound(target.outbound.clone()))
                        }
                    };
                }
                RouteAction::RouteOptions(opts) => {
                    apply_options(flow, opts);
                    from = rule.index + 1;
                }
                RouteAction::Reject(r) => {
                    return Decision::Reject {
                        drop: self.rejects.is_drop(rule.index, r.method, r.no_drop),
                    }
                }
                RouteAction::HijackDns => {
                    flow.matched_rule = Some(rule.index);
                    return if self.dns.is_some() {
                        Decision::HijackDns
                    } else {
                        Decision::Fail(RouteError::NoDns)
                    };
                }
                RouteAction::Sniff(sn) => {
                    if flow.protocol.is_some() {
                        from = rule.index + 1;
                        continue;
                    }
                    return Decision::Sniff {
                        next: rule.index + 1,
                        sniffers: sn.sniffer.iter().map(protocol_name).collect(),
                        timeout: if sn.timeout.is_zero() {
                            SNIFF_TIMEOUT
                        } else {
                            sn.timeout.to_std()
                        },
                    };
                }
                RouteAction::Resolve(r) => {
                    if flow.destination.domain().is_none() {
                        // Nothing to resolve: Go goes on with the next rule.
                        from = rule.index + 1;
                        continue;
                    }
                    return Decision::Resolve {
                        next: rule.index + 1,
                        strategy: r.strategy,
                        server: r.server.clone(),
                    };
                }
            }
        }
        flow.matched_rule = None;
        match &self.router.final_outbound {
            Some(tag) => match self.outbound(tag) {
                Some(o) => route_to(o, flow),
                None => Decision::Fail(RouteError::OutboundNotFound(tag.clone())),
            },
            None => route_to(self.default_outbound.clone(), flow),
        }
    }

    /// Maps a FakeIP destination back to its domain, and with `reverse_mapping` gives an IP
    /// destination the domain it was answered for (for domain rules; the IP is still
    /// dialed). `Err` when the address is fake but unknown: such a flow is never dialed.
    pub(super) fn unfake(&self, flow: &mut FlowContext) -> Result<(), RouteError> {
        let (Some(dns), Some(ip)) = (&self.dns, flow.destination.ip()) else {
            return Ok(());
        };
        match dns.fake_domain(ip) {
            Fake::Domain(d) => {
                debug!(target: "dns", "fakeip {ip} is {d}");
                flow.destination = Destination::from_host(&d, flow.destination.port);
                Ok(())
            }
            Fake::Unknown => Err(RouteError::UnknownFakeIp(ip)),
            Fake::No => {
                if flow.sniffed_domain.is_none() {
                    flow.sniffed_domain = dns.reverse_domain(ip);
                }
                Ok(())
            }
        }
    }

    /// Carries out a `resolve` action: the destination's addresses go into the flow, for
    /// the rules after it (`ip_cidr`, `ip_is_private`...). A failed lookup fails the flow.
    pub async fn resolve(
        &self,
        flow: &mut FlowContext,
        strategy: DomainStrategy,
        server: &str,
    ) -> Result<(), RouteError> {
        let Some(domain) = flow.destination.domain().map(str::to_string) else {
            return Ok(());
        };
        // Without `dns.servers` the lookup is the system's (getaddrinfo: /etc/hosts, NSS),
        // as for dialers.
        let found = match self.dns.as_ref().filter(|d| d.configured()) {
            Some(dns) => {
                let server = if server.is_empty() {
                    None
                } else {
                    Some(
                        dns.server_index(server)
                            .ok_or_else(|| RouteError::DnsServerNotFound(server.to_string()))?,
                    )
                };
                dns.lookup_for(flow, &domain, strategy, server)
                    .await
                    .map_err(std::io::Error::from)
            }
            None => self.resolver.lookup(&domain, strategy).await,
        };
        match found {
            Ok(ips) => {
                debug!(target: "router", "resolved {domain}: {ips:?}");
                flow.resolved = ips;
                Ok(())
            }
            Err(e) => Err(RouteError::Lookup(e)),
        }
    }

    /// The matched rule as Go's Clash API shows it (`... => route(x)`), or `final`.
    pub(super) fn rule_text(&self, flow: &FlowContext) -> String {
        flow.matched_rule
            .and_then(|i| self.router.rules().get(i))
            .map_or_else(
                || "final".to_string(),
                |r| format!("{} => {}", r.description, action_text(&r.action)),
            )
    }
}

/// Routes to `o` if it carries the flow's network; Go's error otherwise. A ping is always
/// routed: whether the outbound carries ICMP is its `ping`'s answer (`dispatch/icmp.rs`).
fn route_to(o: Arc<dyn Outbound>, flow: &FlowContext) -> Decision {
    if flow.network == crate::flow::Network::Icmp || o.networks().contains(&flow.network) {
        Decision::Route(o)
    } else {
        Decision::Fail(RouteError::NetworkNotSupported {
            network: flow.network,
            outbound: o.tag().to_string(),
        })
    }
}

fn apply_options(flow: &mut FlowContext, opts: &RouteOptions) {
    if !opts.override_address.is_empty() {
        flow.destination = Destination::from_host(&opts.override_address, flow.destination.port);
    }
    if opts.override_port != 0 {
        flow.destination.port = opts.override_port;
    }
    if !opts.udp_timeout.is_zero() {
        flow.udp_timeout = Some(opts.udp_timeout.to_std());
    }
}

fn protocol_name(p: &sb_config::model::rule_match::Protocol) -> &'static str {
    use sb_config::model::rule_match::Protocol as P;
    match p {
        P::Tls => "tls",
        P::Http => "http",
        P::Quic => "quic",
        P::Dns => "dns",
        P::Stun => "stun",
        P::Bittorrent => "bittorrent",
        P::Dtls => "dtls",
        P::Ssh => "ssh",
        P::Rdp => "rdp",
        P::Ntp => "ntp",
    }
}

/// A rule's action as Go prints it after `=>` (`route(direct)`, `sniff`, `reject`): in logs,
/// the Clash API's connection `rule` and `/rules`.
pub fn action_text(a: &RouteAction) -> String {
    match a {
        RouteAction::Route(t, _) => format!("route({})", t.outbound),
        RouteAction::Bypass(t, _) => format!("bypass({})", t.outbound),
        other => other.name().to_string(),
    }
}
