//! Where the HTTP client's connections come from: an outbound's `connect_tcp` (so a
//! `download_detour` or a urltest member carries the request), a [`Dialer`] (an
//! `http_clients` entry's dial fields or `detour`), or a unix socket (Tailscale's Local
//! API). The URL only names the server for the first two; a unix socket ignores its host,
//! which then only fills the `Host` header.

use crate::adapter::{BoxStream, Outbound};
use crate::dialer::Dialer;
use crate::flow::{Destination, FlowContext, Network};
use std::path::PathBuf;
use std::sync::Arc;

/// How the client reaches a server.
#[derive(Clone)]
pub enum Connector {
    /// Through an outbound, as a flow with no inbound.
    Outbound(Arc<dyn Outbound>),
    /// With dial fields, or through their `detour`.
    Dialer(Arc<Dialer>),
    /// A unix stream socket at this path, whatever the URL's host.
    Unix(PathBuf),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connector::Outbound(o) => write!(f, "outbound {:?}", o.tag()),
            Connector::Dialer(d) => write!(f, "{d:?}"),
            Connector::Unix(p) => write!(f, "unix {}", p.display()),
        }
    }
}

impl Connector {
    /// Opens a stream to `host:port` (or to the socket); the connection is an internal flow
    /// labelled `purpose` (see [`FlowContext::internal`]).
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        purpose: &Arc<str>,
    ) -> std::io::Result<BoxStream> {
        let dest = Destination::from_host(host, port);
        let flow = || FlowContext::internal(purpose.clone(), Network::Tcp, dest.clone());
        match self {
            Connector::Outbound(o) => o.connect_tcp(&flow(), &dest).await,
            Connector::Dialer(d) => d.connect_tcp(&flow(), &dest).await,
            Connector::Unix(path) => unix_connect(path).await,
        }
    }
}

#[cfg(unix)]
async fn unix_connect(path: &std::path::Path) -> std::io::Result<BoxStream> {
    // A unix socket as one of sb's streams: never a TCP socket for the relay's splice.
    Ok(crate::stream::Forward::boxed(
        tokio::net::UnixStream::connect(path).await?,
    ))
}

#[cfg(not(unix))]
async fn unix_connect(path: &std::path::Path) -> std::io::Result<BoxStream> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("unix sockets are not available here: {}", path.display()),
    ))
}
