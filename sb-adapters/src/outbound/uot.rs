//! UDP over TCP, the client side used by the `socks` outbound's `udp_over_tcp`: the outbound
//! opens a stream to the magic domain through its proxy, and this turns the stream into the
//! flow's upstream [`sb_core::adapter::PacketConn`]. sb always uses the multi-destination
//! ("not connect") form, so one flow may reach several destinations, like a UDP socket. The
//! wire format is [`crate::proto::uot`].

pub use crate::proto::uot::Version;
use crate::proto::uot::{encode_request, Framing, Request};
use crate::uot_conn::{split, UotConn};
use sb_core::adapter::{BoxPacketConn, BoxStream};
use sb_core::flow::Destination;
use std::io;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Starts UoT on `stream` (already connected to the magic destination through the proxy).
/// `first` is the flow's first destination, named in the version 2 request.
pub async fn open(
    mut stream: BoxStream,
    version: Version,
    first: &Destination,
) -> io::Result<BoxPacketConn> {
    if version == Version::V2 {
        let req = Request {
            is_connect: false, // every datagram names its destination
            destination: first.clone(),
        };
        stream.write_all(&encode_request(&req)?).await?;
    }
    let (reader, writer) = split(stream);
    Ok(Arc::new(UotConn::new(
        reader,
        writer,
        Framing::Addressed,
        first.clone(),
    )))
}
