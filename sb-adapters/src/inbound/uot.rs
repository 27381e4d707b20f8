//! UDP over TCP, the server side of the proxy inbounds (`mixed`, `socks`, `http`): a CONNECT
//! (SOCKS5, SOCKS4a or HTTP) to a magic UoT domain is not a TCP flow but a UDP flow carried
//! on the stream, as Go's inbounds treat it. The inbound has already told the client the
//! connection succeeded; this reads the version 2 request (or, for version 1, the first
//! datagram) to learn the destination, and hands a UDP flow to the dispatcher over a
//! [`UotConn`]. The wire format is [`crate::proto::uot`].

use crate::proto::uot::{self, Framing, Version};
use crate::uot_conn::{split, UotConn};
use sb_core::adapter::{BoxPacketConn, BoxStream, FlowHandler};
use sb_core::flow::FlowContext;
use sb_core::udp::{Replay, UDP_TIMEOUT};
use std::sync::Arc;
use tracing::{debug, error, info};

/// Serves one UoT stream until the UDP flow ends. `flow` is already a UDP flow from the
/// inbound (source, user, timeout); its destination is filled in here. `label` is the
/// inbound's log name.
pub(super) async fn serve(
    label: &str,
    version: Version,
    stream: BoxStream,
    mut flow: FlowContext,
    handler: Arc<dyn FlowHandler>,
) {
    // How long the client may take to say where the flow goes: a flow is only as patient as
    // its idle timeout.
    let wait = flow.udp_timeout.unwrap_or(UDP_TIMEOUT);
    let (mut reader, writer) = split(stream);
    let conn: BoxPacketConn = match version {
        Version::V2 => {
            let request = match tokio::time::timeout(wait, reader.next(uot::request)).await {
                Ok(Ok((req, _))) => req,
                Ok(Err(e)) => {
                    error!(target: "inbound", tag = %label, "process connection from {}: UoT read request: {e}", flow.source);
                    return;
                }
                Err(_) => {
                    debug!(target: "inbound", tag = %label, "UoT read request: timeout");
                    return;
                }
            };
            if request.is_connect {
                info!(target: "inbound", tag = %label, "inbound UoT connect connection to {}", request.destination);
            } else {
                info!(target: "inbound", tag = %label, "inbound UoT connection to {}", request.destination);
            }
            flow.destination = request.destination.clone();
            Arc::new(UotConn::new(
                reader,
                writer,
                request.framing(),
                request.destination,
            ))
        }
        Version::V1 => {
            info!(target: "inbound", tag = %label, "inbound legacy UoT connection");
            // Version 1 names no destination up front (Go routes it as 0.0.0.0); sb routes a
            // UDP flow by its first datagram, so that one is read here and handed out again.
            let first = tokio::time::timeout(wait, async {
                let (frame, bytes) = reader.next(|b| uot::packet(b, Framing::Addressed)).await?;
                let payload = bytes.get(frame.payload).unwrap_or_default().to_vec();
                Ok::<_, std::io::Error>((payload, frame.address))
            })
            .await;
            let (payload, dest) = match first {
                Ok(Ok((payload, Some(dest)))) => (payload, dest),
                Ok(Ok((_, None))) => return,
                Ok(Err(e)) => {
                    debug!(target: "inbound", tag = %label, "legacy UoT connection closed: {e}");
                    return;
                }
                Err(_) => {
                    debug!(target: "inbound", tag = %label, "legacy UoT connection closed: no datagram in time");
                    return;
                }
            };
            flow.destination = dest.clone();
            let conn = Arc::new(UotConn::new(
                reader,
                writer,
                Framing::Addressed,
                dest.clone(),
            ));
            Arc::new(Replay::new(vec![(payload, dest)], conn))
        }
    };
    // Go records the magic name as the flow's domain, so domain rules see it (a sniff may
    // replace it, as for any flow).
    flow.sniffed_domain = Some(version.magic_address().to_string());
    handler.handle_udp(flow, conn).await;
}
