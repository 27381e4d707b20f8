//! The [`Transport`] trait: one DNS server of `dns.servers` (`udp`, `tcp`, `tls`, `https`,
//! `local`, `hosts`, `fakeip`), as the DNS client sees it — a query in, an answer out.

use super::DnsError;
use crate::adapter::BoxFuture;
use hickory_proto::op::Message;
use std::sync::Arc;

/// One DNS server.
pub trait Transport: Send + Sync + 'static {
    /// Its tag.
    fn tag(&self) -> &str;
    /// Its config `type`.
    fn kind(&self) -> &'static str;
    /// Sends `query` and returns the server's answer (with the query's id).
    fn exchange<'a>(&'a self, query: &'a Message) -> BoxFuture<'a, Result<Message, DnsError>>;
    /// Whether answers may be cached: not for FakeIP (each answer is an allocation) and not
    /// for hosts (the file is the cache).
    fn cacheable(&self) -> bool {
        true
    }
    /// The FakeIP pool behind this server, if it is one.
    fn fakeip(&self) -> Option<&Arc<super::fakeip::FakeIp>> {
        None
    }
}

/// A shared transport.
pub type BoxTransport = Arc<dyn Transport>;
