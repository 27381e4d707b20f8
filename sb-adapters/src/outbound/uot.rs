//! UDP over TCP (sing-box's "UoT", versions 1 and 2), the client side used by the `socks`
//! outbound's `udp_over_tcp`: UDP datagrams ride one TCP stream that the proxy opens to a
//! magic domain (`sp.v2.udp-over-tcp.arpa`, or `sp.udp-over-tcp.arpa` for version 1), and a
//! sing-box server turns back into UDP. sb always uses the multi-destination form, so one
//! flow may reach several destinations, like a UDP socket.
//!
//! Wire format (facts from sing-box's protocol notes): version 2 first sends a request,
//! `is_connect: u8` then the destination as a SOCKS5 address; each datagram is then
//! `address port length payload`, where the address uses UoT's own family bytes (0 IPv4,
//! 1 IPv6, 2 domain with a length byte), not SOCKS's. Version 1 sends no request.

use sb_core::adapter::{BoxFuture, BoxPacketConn, BoxStream, PacketConn};
use sb_core::flow::{Destination, Host};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Mutex;

/// The UoT protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The legacy form: no request header.
    V1,
    /// The current form (sing-box's default).
    V2,
}

impl Version {
    /// The config's `version` (0 means the default, 2). Other values are rejected at start.
    pub fn from_config(v: u8) -> Option<Version> {
        match v {
            0 | 2 => Some(Version::V2),
            1 => Some(Version::V1),
            _ => None,
        }
    }
}

/// The destination a proxy is asked to connect to, which tells a sing-box server that the
/// stream carries UoT.
pub fn magic_destination(v: Version) -> Destination {
    let name = match v {
        Version::V1 => "sp.udp-over-tcp.arpa",
        Version::V2 => "sp.v2.udp-over-tcp.arpa",
    };
    Destination {
        host: Host::Domain(name.into()),
        port: 0,
    }
}

/// Starts UoT on `stream` (already connected to the magic destination through the proxy).
/// `first` is the flow's first destination, named in the version 2 request.
pub async fn open(
    mut stream: BoxStream,
    version: Version,
    first: &Destination,
) -> io::Result<BoxPacketConn> {
    if version == Version::V2 {
        let mut req = vec![0u8]; // not "connect": every datagram names its destination
        crate::proto::socks::encode_address(&mut req, first);
        stream.write_all(&req).await?;
    }
    let (r, w) = tokio::io::split(stream);
    Ok(Arc::new(UotConn {
        reader: Mutex::new(r),
        writer: Mutex::new(w),
    }))
}

/// Appends `dest` in UoT's address form.
pub fn encode_address(out: &mut Vec<u8>, dest: &Destination) {
    match &dest.host {
        Host::Ip(IpAddr::V4(v4)) => {
            out.push(0);
            out.extend_from_slice(&v4.octets());
        }
        Host::Ip(IpAddr::V6(v6)) => {
            out.push(1);
            out.extend_from_slice(&v6.octets());
        }
        Host::Domain(d) => {
            let name = &d.as_bytes()[..d.len().min(255)];
            out.push(2);
            out.push(name.len() as u8);
            out.extend_from_slice(name);
        }
    }
    out.extend_from_slice(&dest.port.to_be_bytes());
}

/// One datagram framed for the stream.
pub fn encode_packet(dest: &Destination, payload: &[u8]) -> io::Result<Vec<u8>> {
    let len = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "UoT: datagram too large"))?;
    let mut out = Vec::with_capacity(payload.len() + 24);
    encode_address(&mut out, dest);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Reads one framed datagram into `buf`.
pub async fn read_packet<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
) -> io::Result<(usize, Destination)> {
    let host = match r.read_u8().await? {
        0 => {
            let mut a = [0u8; 4];
            r.read_exact(&mut a).await?;
            Host::Ip(IpAddr::V4(Ipv4Addr::from(a)))
        }
        1 => {
            let mut a = [0u8; 16];
            r.read_exact(&mut a).await?;
            Host::Ip(IpAddr::V6(Ipv6Addr::from(a)))
        }
        2 => {
            let n = usize::from(r.read_u8().await?);
            let mut name = vec![0u8; n];
            r.read_exact(&mut name).await?;
            let name = String::from_utf8(name).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "UoT: domain is not UTF-8")
            })?;
            return finish(r, buf, Destination::from_host(&name, 0)).await;
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("UoT: unknown address family {other}"),
            ))
        }
    };
    finish(r, buf, Destination { host, port: 0 }).await
}

async fn finish<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    mut from: Destination,
) -> io::Result<(usize, Destination)> {
    from.port = r.read_u16().await?;
    let len = usize::from(r.read_u16().await?);
    let Some(dst) = buf.get_mut(..len) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "UoT: datagram larger than the buffer",
        ));
    };
    r.read_exact(dst).await?;
    Ok((len, from))
}

/// A UDP flow carried on one stream.
struct UotConn {
    reader: Mutex<ReadHalf<BoxStream>>,
    writer: Mutex<WriteHalf<BoxStream>>,
}

impl PacketConn for UotConn {
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let packet = encode_packet(dest, buf)?;
            self.writer.lock().await.write_all(&packet).await
        })
    }

    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> BoxFuture<'a, io::Result<(usize, Destination)>> {
        Box::pin(async move { read_packet(&mut *self.reader.lock().await, buf).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn packets_round_trip_for_every_address_family() {
        for dest in [
            Destination::from_host("10.1.2.3", 53),
            Destination::from_host("2001:db8::1", 443),
            Destination::from_host("example.com", 123),
        ] {
            let pkt = encode_packet(&dest, b"payload").unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = read_packet(&mut &pkt[..], &mut buf).await.unwrap();
            assert_eq!((from, &buf[..n]), (dest, &b"payload"[..]));
        }
    }

    #[tokio::test]
    async fn bad_frames_are_errors() {
        let mut buf = [0u8; 4];
        // Unknown family.
        assert!(read_packet(&mut &[9u8, 0, 0][..], &mut buf).await.is_err());
        // Truncated address.
        assert!(read_packet(&mut &[0u8, 1, 2][..], &mut buf).await.is_err());
        // Longer than the buffer.
        let pkt = encode_packet(&Destination::from_host("1.2.3.4", 1), &[0u8; 8]).unwrap();
        assert!(read_packet(&mut &pkt[..], &mut buf).await.is_err());
        // Oversized datagrams are refused when sending.
        assert!(encode_packet(&Destination::from_host("1.2.3.4", 1), &vec![0u8; 70_000]).is_err());
    }
}
