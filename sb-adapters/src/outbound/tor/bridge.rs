//! The bridge between arti and sb's dialing: arti's runtime with its TCP provider replaced,
//! so every connection arti opens to the Tor network (guards, relays, directory caches) is
//! dialed by the outbound's [`Dialer`]: its `detour`, `bind_interface` and `routing_mark`
//! apply to Tor's own traffic. arti never listens as a client; a listen is refused.
//!
//! arti speaks futures-io and needs streams that are `Sync`; sb's streams are tokio-io and
//! only `Send`. [`RelayStream`] adapts one to the other (tokio-util's compat layer, and a
//! mutex that is never contended: arti polls a stream from one task at a time).

use futures::io::{AsyncRead, AsyncWrite};
use sb_core::adapter::BoxStream;
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext, Network};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
use tor_rtcompat::{NetStreamListener, NetStreamProvider, StreamOps};

/// arti's TCP provider: the outbound's dialer.
#[derive(Clone)]
pub struct SbTcp {
    dialer: Arc<Dialer>,
    /// `tor:<tag>`, the internal flows' label in logs and the tracker.
    purpose: Arc<str>,
}

impl SbTcp {
    /// A provider dialing with `dialer` for the outbound `tag`.
    pub fn new(tag: &str, dialer: Arc<Dialer>) -> SbTcp {
        SbTcp {
            dialer,
            purpose: format!("tor:{tag}").into(),
        }
    }
}

impl std::fmt::Debug for SbTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SbTcp({})", self.purpose)
    }
}

#[async_trait::async_trait]
impl NetStreamProvider for SbTcp {
    type Stream = RelayStream;
    type Listener = NoListener;
    type ConnectOptions = tor_rtcompat::TcpConnectOptions;
    type ListenOptions = tor_rtcompat::TcpListenOptions;

    async fn connect(
        &self,
        addr: &SocketAddr,
        _options: &Self::ConnectOptions,
    ) -> io::Result<RelayStream> {
        // arti races a few relays (happy eyeballs) and drops the losers mid-dial: this future
        // owns everything it opens, so dropping it closes the half-made connection.
        let dest = Destination::from_socket(*addr);
        let flow = FlowContext::internal(self.purpose.clone(), Network::Tcp, dest.clone());
        tracing::debug!(target: "outbound", "{}: relay connection to {addr}", self.purpose);
        let stream = self.dialer.connect_tcp(&flow, &dest).await.map_err(|e| {
            tracing::debug!(target: "outbound", "{}: relay connection to {addr} failed: {e}", self.purpose);
            e
        })?;
        Ok(RelayStream(Mutex::new(stream.compat())))
    }

    async fn listen(
        &self,
        addr: &SocketAddr,
        _options: &Self::ListenOptions,
    ) -> io::Result<NoListener> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: sb's Tor client does not listen ({addr})", self.purpose),
        ))
    }
}

/// One relay connection as arti wants it.
pub struct RelayStream(Mutex<Compat<BoxStream>>);

impl RelayStream {
    fn with<T>(self: Pin<&mut Self>, f: impl FnOnce(Pin<&mut Compat<BoxStream>>) -> T) -> T {
        // `get_mut` needs no lock: `&mut self` is exclusive already. A poisoned mutex only
        // means a poll panicked earlier; the stream itself is still whole.
        let inner = match self.get_mut().0.get_mut() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(Pin::new(inner))
    }
}

impl AsyncRead for RelayStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for RelayStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_close(cx))
    }
}

/// A relay connection may be a detour's stream, not a socket: the socket options arti asks
/// for (TCP_NOTSENT_LOWAT) are declined, which arti only notes.
impl StreamOps for RelayStream {}

/// The listener arti's runtime type needs and sb never makes.
pub struct NoListener;

impl NetStreamListener for NoListener {
    type Stream = RelayStream;
    type Incoming = futures::stream::Empty<io::Result<(RelayStream, SocketAddr)>>;
    fn incoming(self) -> Self::Incoming {
        futures::stream::empty()
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}
