//! The `direct` outbound: flows leave from this host, through the dial fields (bind
//! interface, routing mark, timeouts, happy eyeballs). It is where most flows end.

use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, Outbound};
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext, Network};
use sb_core::udp::DirectUdp;
use std::io;
use std::sync::Arc;

/// A `direct` outbound.
pub struct Direct {
    tag: String,
    dialer: Dialer,
}

impl Direct {
    /// Builds it from its dialer.
    pub fn new(tag: &str, dialer: Dialer) -> Direct {
        Direct {
            tag: tag.to_string(),
            dialer,
        }
    }
}

impl Outbound for Direct {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "direct"
    }
    fn networks(&self) -> &'static [Network] {
        &[Network::Tcp, Network::Udp]
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(self.dialer.connect_tcp(flow, dest))
    }
    fn connect_udp<'a>(
        &'a self,
        _flow: &'a FlowContext,
        _dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxPacketConn>> {
        Box::pin(async move {
            match &self.dialer {
                Dialer::Direct(opts) => Ok(Arc::new(DirectUdp::bind(opts)?) as BoxPacketConn),
                Dialer::Detour(_) => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "UDP through a detour is not implemented by sb yet",
                )),
            }
        })
    }
}
