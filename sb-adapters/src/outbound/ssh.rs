//! The `ssh` outbound: TCP flows carried as `direct-tcpip` channels of one SSH session to the
//! server (OpenSSH's `ssh -W`/`-L` mechanism), built with russh. The session is shared by all
//! flows and rebuilt on demand (`ssh/session.rs`); each flow is a channel, so one slow reader only
//! fills its own channel window and does not stall the others (russh reopens a window only
//! as the flow reads, with the patch in `third_party/russh/SB_PATCH.md`). SSH carries no
//! UDP: the outbound says it carries TCP only, and the dispatcher fails UDP flows routed
//! here at once with Go's `udp is not supported by outbound: <tag>`.

mod session;
mod settings;

use sb_config::model::outbound::SshOutbound;
use sb_core::adapter::{BoxFuture, BoxStream, Outbound};
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext, Host};
use sb_core::stream::Forward;
use session::Sessions;
pub use settings::SshError;
use std::io;

/// An `ssh` outbound.
pub struct Ssh {
    tag: String,
    sessions: Sessions,
}

impl Ssh {
    /// Builds it: keys, host keys and algorithms are checked now, so a bad one stops the
    /// start with a message naming the field; nothing is dialed until the first flow.
    pub fn new(
        tag: &str,
        server: Destination,
        o: &SshOutbound,
        dialer: Dialer,
    ) -> Result<Ssh, SshError> {
        let settings = settings::Settings::from_config(o)?;
        Ok(Ssh {
            tag: tag.to_string(),
            sessions: Sessions::new(tag, server, settings, dialer),
        })
    }
}

/// The `io::Error` for a refused `direct-tcpip` channel, in the words of Go's x/crypto/ssh
/// (`ssh: rejected: connect failed (...)`), with a kind the inbounds map to SOCKS/HTTP replies.
fn channel_error(e: russh::Error, dest: &Destination) -> io::Error {
    use russh::ChannelOpenFailure as F;
    match e {
        russh::Error::ChannelOpenFailure(f) => {
            let (kind, what) = match f {
                F::AdministrativelyProhibited => (
                    io::ErrorKind::PermissionDenied,
                    "administratively prohibited".to_string(),
                ),
                F::ConnectFailed => (
                    io::ErrorKind::ConnectionRefused,
                    "connect failed".to_string(),
                ),
                F::UnknownChannelType => (
                    io::ErrorKind::Unsupported,
                    "unknown channel type".to_string(),
                ),
                F::ResourceShortage => (io::ErrorKind::Other, "resource shortage".to_string()),
                F::Other { reason, .. } => (io::ErrorKind::Other, reason),
            };
            io::Error::new(kind, format!("ssh: rejected: {what} (open {dest})"))
        }
        other => io::Error::other(format!("ssh: open channel to {dest}: {other}")),
    }
}

impl Outbound for Ssh {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "ssh"
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let session = self.sessions.get(flow).await?;
            let host = match &dest.host {
                Host::Ip(ip) => ip.to_string(),
                Host::Domain(d) => d.clone(),
            };
            // The originator is the flow's client, as OpenSSH's own forwarding reports it.
            // sshd confirms the channel only once its own connect is done, so a destination
            // that drops SYNs would hold the flow for sshd's TCP timeout (minutes): the open
            // is bounded like any upstream handshake, by the dial fields' `connect_timeout`.
            let open = async {
                session
                    .channel_open_direct_tcpip(
                        host,
                        u32::from(dest.port),
                        flow.source.ip().to_string(),
                        u32::from(flow.source.port()),
                    )
                    .await
                    .map_err(|e| channel_error(e, dest))
            };
            let what = format!("ssh: open channel to {dest}");
            let channel = self.sessions.dialer().bounded(&what, open).await?;
            // One flow's channel as its byte stream.
            Ok(Forward::boxed(channel.into_stream()))
        })
    }
}
