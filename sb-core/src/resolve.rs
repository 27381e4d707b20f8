//! Name resolution for the router's `resolve` action and, later, for dialers: a [`Resolver`]
//! seam with the system resolver behind it today. sb's DNS module (hickory, DNS rules,
//! FakeIP) will implement the same trait, so the dispatcher does not change when it lands.

use crate::adapter::BoxFuture;
use sb_config::types::DomainStrategy;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

/// Resolves domains to addresses.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `domain`, ordered and filtered by `strategy`.
    fn lookup<'a>(
        &'a self,
        domain: &'a str,
        strategy: DomainStrategy,
    ) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// A resolver named at build time (`domain_resolver`, `route.default_domain_resolver`) and
/// filled in once the DNS module exists: outbounds are built before it, and DNS servers
/// themselves may dial through a resolver of the same module.
#[derive(Default)]
pub struct LateResolver(OnceLock<Arc<dyn Resolver>>);

impl LateResolver {
    /// Sets the resolver (once; later calls are ignored).
    pub fn set(&self, r: Arc<dyn Resolver>) {
        let _ = self.0.set(r);
    }
    /// The resolver, once set.
    pub fn get(&self) -> Option<&Arc<dyn Resolver>> {
        self.0.get()
    }
}

/// How a dialer resolves a domain destination: which resolver, with which strategy.
#[derive(Clone)]
pub struct DomainResolver {
    /// The resolver (the system's until it is set).
    pub resolver: Arc<LateResolver>,
    /// Address family preference.
    pub strategy: DomainStrategy,
}

impl std::fmt::Debug for DomainResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DomainResolver({:?})", self.strategy)
    }
}

impl DomainResolver {
    /// The addresses of `domain`: the set resolver, or the system's before one is set.
    pub async fn lookup(&self, domain: &str) -> io::Result<Vec<IpAddr>> {
        match self.resolver.get() {
            Some(r) => r.lookup(domain, self.strategy).await,
            None => SystemResolver.lookup(domain, self.strategy).await,
        }
    }
}

/// The host's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(
        &'a self,
        domain: &'a str,
        strategy: DomainStrategy,
    ) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs: Vec<IpAddr> = tokio::net::lookup_host((domain, 0))
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("lookup {domain}: {e}")))?
                .map(|a| a.ip())
                .collect();
            let ips = apply_strategy(addrs, strategy);
            if ips.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("lookup {domain}: no such host"),
                ));
            }
            Ok(ips)
        })
    }
}

/// Filters (`*_only`) or orders (`prefer_*`) addresses as the strategy says, keeping the
/// resolver's order within a family and dropping duplicates.
pub fn apply_strategy(mut ips: Vec<IpAddr>, strategy: DomainStrategy) -> Vec<IpAddr> {
    let mut seen = std::collections::HashSet::new();
    ips.retain(|ip| seen.insert(*ip));
    match strategy {
        DomainStrategy::AsIs => ips,
        DomainStrategy::Ipv4Only => ips.into_iter().filter(IpAddr::is_ipv4).collect(),
        DomainStrategy::Ipv6Only => ips.into_iter().filter(IpAddr::is_ipv6).collect(),
        DomainStrategy::PreferIpv4 => {
            ips.sort_by_key(|ip| !ip.is_ipv4());
            ips
        }
        DomainStrategy::PreferIpv6 => {
            ips.sort_by_key(|ip| !ip.is_ipv6());
            ips
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_filter_and_order() {
        let ips: Vec<IpAddr> = ["::1", "10.0.0.1", "::2", "10.0.0.2", "10.0.0.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let text = |v: Vec<IpAddr>| {
            v.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            text(apply_strategy(ips.clone(), DomainStrategy::AsIs)),
            "::1 10.0.0.1 ::2 10.0.0.2"
        );
        assert_eq!(
            text(apply_strategy(ips.clone(), DomainStrategy::PreferIpv4)),
            "10.0.0.1 10.0.0.2 ::1 ::2"
        );
        assert_eq!(
            text(apply_strategy(ips.clone(), DomainStrategy::PreferIpv6)),
            "::1 ::2 10.0.0.1 10.0.0.2"
        );
        assert_eq!(
            text(apply_strategy(ips.clone(), DomainStrategy::Ipv4Only)),
            "10.0.0.1 10.0.0.2"
        );
        assert_eq!(
            text(apply_strategy(ips, DomainStrategy::Ipv6Only)),
            "::1 ::2"
        );
    }

    #[tokio::test]
    async fn the_system_resolver_knows_localhost() {
        let v4 = SystemResolver
            .lookup("localhost", DomainStrategy::Ipv4Only)
            .await
            .unwrap();
        assert!(v4.iter().all(IpAddr::is_ipv4) && v4.iter().any(IpAddr::is_loopback));
        assert!(SystemResolver
            .lookup("no-such-host.invalid", DomainStrategy::AsIs)
            .await
            .is_err());
    }
}
