//! A small blocking DNS client for tests, on hickory-proto's wire format: one query, one answer,
//! over UDP, TCP (RFC 1035 length prefix) or TLS (RFC 7858, rustls trusting a test CA). It is
//! what asks dnsmasq, unbound, Go sing-box and sb the same questions, and [`Answer`] is the
//! TTL-less text form the parity tests compare.

use super::zone::quote;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

/// How long one query waits for its answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a server answered, in comparable form.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The response code mnemonic: `NOERROR`, `NXDOMAIN`, `REFUSED`, `SERVFAIL`, ...
    pub rcode: String,
    /// The answer section, each record as `name TYPE data` (no TTL, no class), sorted.
    /// TXT data is quoted strings (`"a b" "c"`), names are absolute (`a.test.`).
    pub records: Vec<String>,
    /// The TTL of each entry of `records`, in the same order.
    pub ttls: Vec<u32>,
    /// The whole response (flags, authority and additional sections).
    pub message: Message,
}

impl Answer {
    /// Reads a response.
    pub fn from_message(message: Message) -> Answer {
        let mut pairs: Vec<(String, u32)> = message
            .answers
            .iter()
            .map(|r| {
                (
                    format!("{} {} {}", r.name, r.record_type(), rdata_text(&r.data)),
                    r.ttl,
                )
            })
            .collect();
        pairs.sort();
        Answer {
            rcode: rcode_name(message.metadata.response_code),
            records: pairs.iter().map(|(r, _)| r.clone()).collect(),
            ttls: pairs.iter().map(|(_, t)| *t).collect(),
            message,
        }
    }

    /// `rcode` and `records`: what parity compares (TTLs aside).
    pub fn shape(&self) -> (String, Vec<String>) {
        (self.rcode.clone(), self.records.clone())
    }
}

/// The RFC mnemonic of a response code (`NOERROR`, ...), or its number.
pub fn rcode_name(code: ResponseCode) -> String {
    match u16::from(code) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// Record data in zone-file form, as dig prints it (TXT strings quoted, which hickory's own
/// `Display` does not do).
pub fn rdata_text(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quote(&String::from_utf8_lossy(s)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The bytes of a recursive query for `name`/`qtype` with EDNS (payload 1232, as dig sends).
pub fn query_bytes(name: &str, qtype: RecordType) -> io::Result<(u16, Vec<u8>)> {
    let name =
        Name::from_ascii(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut msg = Message::query();
    msg.add_query(Query::query(name, qtype));
    msg.metadata.recursion_desired = true;
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    let bytes = msg
        .to_vec()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok((msg.metadata.id, bytes))
}

/// Parses a response and checks it answers query `id`.
pub fn parse_response(id: u16, bytes: &[u8]) -> io::Result<Answer> {
    let msg =
        Message::from_vec(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if msg.metadata.id != id {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("answer id {} for query id {id}", msg.metadata.id),
        ));
    }
    Ok(Answer::from_message(msg))
}

/// Asks `server` over UDP, waiting at most [`QUERY_TIMEOUT`].
pub fn query_udp(server: SocketAddr, name: &str, qtype: RecordType) -> io::Result<Answer> {
    query_udp_timeout(server, name, qtype, QUERY_TIMEOUT)
}

/// Asks `server` over UDP, waiting at most `timeout` (datagrams with another id are skipped).
pub fn query_udp_timeout(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    timeout: Duration,
) -> io::Result<Answer> {
    let (id, bytes) = query_bytes(name, qtype)?;
    let bind: SocketAddr = if server.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.send(&bytes)?;
    let mut buf = vec![0u8; 65535];
    // A stray datagram cannot keep the loop going: each read waits at most `timeout`, and a
    // bounded number of reads is allowed.
    for _ in 0..8 {
        let n = sock.recv(&mut buf)?;
        let got = buf.get(..n).unwrap_or_default();
        if let Ok(answer) = parse_response(id, got) {
            return Ok(answer);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no answer with the query's id",
    ))
}

/// Asks `server` over TCP, waiting at most [`QUERY_TIMEOUT`].
pub fn query_tcp(server: SocketAddr, name: &str, qtype: RecordType) -> io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&server, QUERY_TIMEOUT)?;
    stream.set_read_timeout(Some(QUERY_TIMEOUT))?;
    stream.set_write_timeout(Some(QUERY_TIMEOUT))?;
    exchange_stream(&mut stream, name, qtype)
}

/// Asks `server` over DNS over TLS, trusting only `ca` and checking the certificate is for
/// `server_name`.
pub fn query_tls(
    server: SocketAddr,
    server_name: &str,
    ca: &CertificateDer<'static>,
    name: &str,
    qtype: RecordType,
) -> io::Result<Answer> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).map_err(|e| invalid(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let sni = ServerName::try_from(server_name.to_string()).map_err(|e| invalid(e.to_string()))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), sni)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let tcp = TcpStream::connect_timeout(&server, QUERY_TIMEOUT)?;
    tcp.set_read_timeout(Some(QUERY_TIMEOUT))?;
    tcp.set_write_timeout(Some(QUERY_TIMEOUT))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    exchange_stream(&mut tls, name, qtype)
}

/// One length-prefixed exchange on a stream (TCP or TLS).
fn exchange_stream(
    stream: &mut (impl Read + Write),
    name: &str,
    qtype: RecordType,
) -> io::Result<Answer> {
    let (id, bytes) = query_bytes(name, qtype)?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed)?;
    stream.flush()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf)?;
    parse_response(id, &buf)
}
