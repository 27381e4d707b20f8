//! SOCKS4/4a/5 server-side messages, sans-IO: each parser takes the bytes received so far
//! and returns `Ok(None)` when more are needed, the message and its length when complete,
//! or an error for bytes no valid client sends. Tested as pure functions.

use sb_core::flow::Destination;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// A parse result: `None` means "read more".
pub type Parse<T> = Result<Option<(T, usize)>, SocksError>;

/// Bytes no valid SOCKS client sends.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SocksError {
    /// Wrong version byte.
    #[error("unsupported SOCKS version {0}")]
    Version(u8),
    /// Unknown address type.
    #[error("unsupported address type {0}")]
    AddressType(u8),
    /// A field that must not be empty is, or is not UTF-8.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A domain that cannot be a destination (control characters, too long).
    #[error("bad domain: {0}")]
    Name(#[from] sb_core::flow::NameError),
}

impl From<SocksError> for std::io::Error {
    fn from(e: SocksError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("socks: {e}"))
    }
}

/// SOCKS5 greeting: the authentication methods the client offers.
#[derive(Debug, PartialEq, Eq)]
pub struct Greeting {
    /// Method codes (0 = none, 2 = username/password).
    pub methods: Vec<u8>,
}

/// Parses the SOCKS5 greeting.
pub fn greeting(b: &[u8]) -> Parse<Greeting> {
    let (Some(&ver), Some(&n)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if ver != 5 {
        return Err(SocksError::Version(ver));
    }
    let len = 2 + usize::from(n);
    if b.len() < len {
        return Ok(None);
    }
    Ok(Some((
        Greeting {
            methods: b[2..len].to_vec(),
        },
        len,
    )))
}

/// RFC 1929 username/password.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Parses the username/password sub-negotiation.
pub fn credentials(b: &[u8]) -> Parse<Credentials> {
    let (Some(&ver), Some(&ulen)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if ver != 1 {
        return Err(SocksError::Malformed("authentication version"));
    }
    let ulen = usize::from(ulen);
    let Some(&plen) = b.get(2 + ulen) else {
        return Ok(None);
    };
    let len = 3 + ulen + usize::from(plen);
    if b.len() < len {
        return Ok(None);
    }
    let text =
        |s: &[u8], what| String::from_utf8(s.to_vec()).map_err(|_| SocksError::Malformed(what));
    Ok(Some((
        Credentials {
            username: text(&b[2..2 + ulen], "username")?,
            password: text(&b[3 + ulen..len], "password")?,
        },
        len,
    )))
}

/// SOCKS5 commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// CONNECT.
    Connect,
    /// BIND.
    Bind,
    /// UDP ASSOCIATE.
    UdpAssociate,
    /// Anything else.
    Unknown(u8),
}

/// A SOCKS5 request.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// What the client asks for.
    pub command: Command,
    /// Where to.
    pub destination: Destination,
}

/// Parses a SOCKS5 address (`atyp`, address, port) at the start of `b`.
pub fn address(b: &[u8]) -> Parse<Destination> {
    let Some(&atyp) = b.first() else {
        return Ok(None);
    };
    let (host_len, start) = match atyp {
        1 => (4, 1),
        4 => (16, 1),
        3 => match b.get(1) {
            Some(&n) if n > 0 => (usize::from(n), 2),
            Some(_) => return Err(SocksError::Malformed("domain")),
            None => return Ok(None),
        },
        t => return Err(SocksError::AddressType(t)),
    };
    let len = start + host_len + 2;
    if b.len() < len {
        return Ok(None);
    }
    let host = &b[start..start + host_len];
    let port = u16::from_be_bytes([b[len - 2], b[len - 1]]);
    let dest = match atyp {
        1 => {
            let ip = Ipv4Addr::new(host[0], host[1], host[2], host[3]);
            Destination::from_socket(SocketAddr::from((ip, port)))
        }
        4 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(host);
            Destination::from_socket(SocketAddr::from((Ipv6Addr::from(a), port)))
        }
        _ => {
            let name = std::str::from_utf8(host).map_err(|_| SocksError::Malformed("domain"))?;
            named(name, port)?
        }
    };
    Ok(Some((dest, len)))
}

/// The destination a client names (SOCKS, UoT): the name must pass
/// [`sb_core::flow::check_name`], and so must the domain [`Destination::from_host`] makes of
/// it. That one drops trailing dots, so a name of dots only (`.`, `...`) would otherwise
/// become the empty domain.
pub(crate) fn named(name: &str, port: u16) -> Result<Destination, sb_core::flow::NameError> {
    sb_core::flow::check_name(name)?;
    let dest = Destination::from_host(name, port);
    if let Some(domain) = dest.domain() {
        sb_core::flow::check_name(domain)?;
    }
    Ok(dest)
}

/// Parses a SOCKS5 request.
pub fn request(b: &[u8]) -> Parse<Request> {
    if b.len() < 4 {
        return Ok(None);
    }
    if b[0] != 5 {
        return Err(SocksError::Version(b[0]));
    }
    let command = match b[1] {
        1 => Command::Connect,
        2 => Command::Bind,
        3 => Command::UdpAssociate,
        c => Command::Unknown(c),
    };
    Ok(address(&b[3..])?.map(|(destination, n)| {
        (
            Request {
                command,
                destination,
            },
            3 + n,
        )
    }))
}

/// Encodes a SOCKS5 address.
/// Writes a SOCKS5 address of an IP and port.
fn encode_socket(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        std::net::IpAddr::V4(a) => {
            out.push(1);
            out.extend_from_slice(&a.octets());
        }
        std::net::IpAddr::V6(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Writes a SOCKS5 address; a domain longer than 255 bytes cannot be written (never cut).
pub fn encode_address(out: &mut Vec<u8>, dest: &Destination) -> Result<(), SocksError> {
    match &dest.host {
        sb_core::flow::Host::Ip(ip) => {
            encode_socket(out, SocketAddr::new(*ip, dest.port));
            return Ok(());
        }
        sb_core::flow::Host::Domain(d) => {
            let n =
                u8::try_from(d.len()).map_err(|_| sb_core::flow::NameError::TooLong(d.len()))?;
            out.push(3);
            out.push(n);
            out.extend_from_slice(d.as_bytes());
        }
    }
    out.extend_from_slice(&dest.port.to_be_bytes());
    Ok(())
}

/// A SOCKS5 reply with a bound address.
pub fn reply(code: u8, bound: SocketAddr) -> Vec<u8> {
    let mut out = vec![5, code, 0];
    encode_socket(&mut out, bound);
    out
}

/// SOCKS5 reply codes.
pub mod code {
    /// Succeeded.
    pub const SUCCEEDED: u8 = 0;
    /// General failure.
    pub const GENERAL_FAILURE: u8 = 1;
    /// Connection not allowed by ruleset.
    pub const NOT_ALLOWED: u8 = 2;
    /// Network unreachable.
    pub const NETWORK_UNREACHABLE: u8 = 3;
    /// Host unreachable.
    pub const HOST_UNREACHABLE: u8 = 4;
    /// Connection refused.
    pub const CONNECTION_REFUSED: u8 = 5;
    /// TTL expired (used for timeouts).
    pub const TTL_EXPIRED: u8 = 6;
    /// Command not supported.
    pub const COMMAND_NOT_SUPPORTED: u8 = 7;
}

/// A SOCKS4/4a CONNECT request.
#[derive(Debug, PartialEq, Eq)]
pub struct Request4 {
    /// Command (1 = CONNECT, 2 = BIND).
    pub command: u8,
    /// Where to (a domain for 4a).
    pub destination: Destination,
    /// The user id field.
    pub user_id: String,
}

/// The longest NUL-terminated field (user id, 4a domain) of a SOCKS4 request, NUL left out.
const MAX_FIELD: usize = 255;

/// The NUL-terminated field at `from` and where it ends. Only the first [`MAX_FIELD`] + 1
/// bytes are searched for its NUL, so a longer field is refused whether the request came in
/// one read or in pieces (searching all of `b` accepted it from one read).
fn cstr<'a>(b: &'a [u8], from: usize, what: &'static str) -> Parse<&'a [u8]> {
    let rest = b.get(from..).unwrap_or_default();
    match rest.iter().take(MAX_FIELD + 1).position(|&c| c == 0) {
        Some(end) => Ok(Some((&rest[..end], from + end + 1))),
        None if rest.len() > MAX_FIELD => Err(SocksError::Malformed(what)),
        None => Ok(None),
    }
}

/// Parses a SOCKS4 or 4a request. The NUL-terminated fields are capped at 255 bytes.
pub fn request4(b: &[u8]) -> Parse<Request4> {
    if b.len() < 8 {
        return Ok(None);
    }
    if b[0] != 4 {
        return Err(SocksError::Version(b[0]));
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
    let Some((user, after_user)) = cstr(b, 8, "user id")? else {
        return Ok(None);
    };
    let user_id = String::from_utf8_lossy(user).into_owned();
    let o = ip.octets();
    let is_4a = o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] != 0;
    if !is_4a {
        let destination = Destination::from_socket(SocketAddr::from((ip, port)));
        return Ok(Some((
            Request4 {
                command: b[1],
                destination,
                user_id,
            },
            after_user,
        )));
    }
    let Some((host, end)) = cstr(b, after_user, "domain")? else {
        return Ok(None);
    };
    let name = std::str::from_utf8(host).map_err(|_| SocksError::Malformed("domain"))?;
    if name.is_empty() {
        return Err(SocksError::Malformed("domain"));
    }
    let destination = named(name, port)?;
    Ok(Some((
        Request4 {
            command: b[1],
            destination,
            user_id,
        },
        end,
    )))
}

/// A SOCKS4 reply: 0x5A granted, 0x5B rejected.
pub fn reply4(granted: bool) -> [u8; 8] {
    [0, if granted { 0x5a } else { 0x5b }, 0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks5_messages() {
        assert_eq!(greeting(&[5]).unwrap(), None);
        assert_eq!(
            greeting(&[5, 2, 0, 2]).unwrap(),
            Some((
                Greeting {
                    methods: vec![0, 2]
                },
                4
            ))
        );
        assert_eq!(greeting(&[4, 1, 0]), Err(SocksError::Version(4)));
        let c = credentials(&[1, 1, b'u', 2, b'p', b'w']).unwrap().unwrap();
        assert_eq!(
            (c.0.username.as_str(), c.0.password.as_str(), c.1),
            ("u", "pw", 6)
        );
        assert_eq!(credentials(&[1, 1, b'u', 2, b'p']).unwrap(), None);
        let r = request(&[
            5, 1, 0, 3, 9, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b't', 0, 80,
        ])
        .unwrap()
        .unwrap();
        assert_eq!(r.0.command, Command::Connect);
        assert_eq!(r.0.destination.to_string(), "example.t:80");
        assert_eq!(r.1, 16);
        let r = request(&[5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90])
            .unwrap()
            .unwrap();
        assert_eq!(r.0.destination.to_string(), "127.0.0.1:8080");
        assert_eq!(
            request(&[5, 1, 0, 9, 0, 0]),
            Err(SocksError::AddressType(9))
        );
        assert_eq!(
            request(&[5, 1, 0, 3, 0, 0, 0]),
            Err(SocksError::Malformed("domain"))
        );
    }

    #[test]
    fn socks4_and_4a() {
        let r = request4(&[4, 1, 0, 80, 10, 0, 0, 1, b'u', 0])
            .unwrap()
            .unwrap();
        assert_eq!(r.0.destination.to_string(), "10.0.0.1:80");
        assert_eq!(r.0.user_id, "u");
        let r = request4(&[4, 1, 0, 80, 0, 0, 0, 1, 0, b'a', b'.', b'b', 0])
            .unwrap()
            .unwrap();
        assert_eq!(r.0.destination.to_string(), "a.b:80");
        assert_eq!(r.1, 13);
        assert_eq!(request4(&[4, 1, 0, 80, 0, 0, 0, 1, 0, b'a']).unwrap(), None);
    }

    /// Found by the `socks` fuzz target: the 255-byte cap on the NUL-terminated fields held
    /// only while a field's NUL had not arrived, so a longer user id was refused when the
    /// request came in pieces and accepted when it came in one read.
    #[test]
    fn socks4_fields_are_capped_however_the_bytes_arrive() {
        let field = |len: usize| {
            let mut b = vec![4, 1, 0, 80, 10, 0, 0, 1];
            b.extend(std::iter::repeat_n(b'u', len));
            b.push(0);
            b
        };
        let long = field(300);
        assert_eq!(request4(&long), Err(SocksError::Malformed("user id")));
        assert_eq!(
            request4(&long[..270]),
            Err(SocksError::Malformed("user id"))
        );
        let longest = field(255);
        assert_eq!(request4(&longest).unwrap().unwrap().1, longest.len());
        assert_eq!(request4(&longest[..longest.len() - 1]), Ok(None));
        // The 4a domain after the user id likewise.
        let mut b = vec![4, 1, 0, 80, 0, 0, 0, 1, b'u', 0];
        b.extend(std::iter::repeat_n(b'a', 300));
        b.push(0);
        assert_eq!(request4(&b), Err(SocksError::Malformed("domain")));
        assert_eq!(request4(&b[..280]), Err(SocksError::Malformed("domain")));
    }

    #[test]
    fn replies() {
        assert_eq!(
            reply(0, "0.0.0.0:0".parse().unwrap()),
            vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(reply4(true), [0, 0x5a, 0, 0, 0, 0, 0, 0]);
    }
}

/// Client side: the reply to a SOCKS5 request (`ver rep rsv atyp addr port`).
pub fn reply5(b: &[u8]) -> Parse<(u8, Destination)> {
    if b.len() < 4 {
        return Ok(None);
    }
    if b[0] != 5 {
        return Err(SocksError::Version(b[0]));
    }
    Ok(address(&b[3..])?.map(|(bound, n)| ((b[1], bound), 3 + n)))
}

/// Client side: a SOCKS5 CONNECT request.
pub fn connect_request(dest: &Destination) -> Result<Vec<u8>, SocksError> {
    let mut out = vec![5, 1, 0];
    encode_address(&mut out, dest)?;
    Ok(out)
}

/// Client side: a SOCKS5 UDP ASSOCIATE request; `from` is where the client will send from
/// (`0.0.0.0:0`: not known).
pub fn udp_associate_request(from: &Destination) -> Result<Vec<u8>, SocksError> {
    let mut out = vec![5, 3, 0];
    encode_address(&mut out, from)?;
    Ok(out)
}

/// Client side: RFC 1929 credentials.
pub fn credentials_request(user: &str, pass: &str) -> Vec<u8> {
    let (u, p) = (
        &user.as_bytes()[..user.len().min(255)],
        &pass.as_bytes()[..pass.len().min(255)],
    );
    let mut out = vec![1, u.len() as u8];
    out.extend_from_slice(u);
    out.push(p.len() as u8);
    out.extend_from_slice(p);
    out
}

/// Client side: a SOCKS4 (IPv4 address) or SOCKS4a (domain) CONNECT request. SOCKS4 cannot
/// carry a domain or an IPv6 address; callers resolve first or use 4a.
pub fn connect_request4(dest: &Destination, user: &str) -> Option<Vec<u8>> {
    let mut out = vec![4, 1];
    out.extend_from_slice(&dest.port.to_be_bytes());
    match &dest.host {
        sb_core::flow::Host::Ip(std::net::IpAddr::V4(a)) => {
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(user.as_bytes());
            out.push(0);
        }
        sb_core::flow::Host::Domain(d) => {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(user.as_bytes());
            out.push(0);
            out.extend_from_slice(d.as_bytes());
            out.push(0);
        }
        sb_core::flow::Host::Ip(std::net::IpAddr::V6(_)) => return None,
    }
    Some(out)
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn client_messages_round_trip_through_the_server_parsers() {
        let dest = Destination::from_host("example.test", 443);
        let (req, n) = request(&connect_request(&dest).unwrap()).unwrap().unwrap();
        assert_eq!(
            (req.destination, req.command, n),
            (dest.clone(), Command::Connect, 19)
        );
        let (c, _) = credentials(&credentials_request("u", "p"))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let (r4, _) = request4(&connect_request4(&dest, "id").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(r4.destination, dest);
        let ((code, bound), _) = reply5(&reply(0, "127.0.0.1:9".parse().unwrap()))
            .unwrap()
            .unwrap();
        assert_eq!((code, bound.to_string().as_str()), (0, "127.0.0.1:9"));
    }
}

#[cfg(test)]
mod name_tests {
    //! Hardening finding 5: names that cannot be destinations are refused where they enter,
    //! and a name too long for the wire is refused where it leaves, never cut.

    use super::*;
    use sb_core::flow::NameError;

    fn socks5(name: &[u8]) -> Parse<Request> {
        let mut b = vec![5, 1, 0, 3, name.len() as u8];
        b.extend_from_slice(name);
        b.extend_from_slice(&[0, 80]);
        request(&b)
    }

    #[test]
    fn control_characters_and_spaces_in_names_are_refused() {
        for bad in [
            &b"a\r\nx-injected: yes"[..],
            b"nul\0",
            b"esc\x1b[0m",
            b"a b",
            b"del\x7f",
        ] {
            assert!(
                matches!(socks5(bad), Err(SocksError::Name(NameError::Control(_)))),
                "{bad:?}"
            );
            // In SOCKS4a a NUL ends the name (the framing), so it cannot be inside one.
            if !bad.contains(&0) {
                let mut b4 = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
                b4.extend_from_slice(bad);
                b4.push(0);
                assert!(request4(&b4).is_err(), "4a {bad:?}");
            }
            let text = String::from_utf8_lossy(bad);
            assert!(
                crate::proto::http::authority(&format!("{text}:443"), 80).is_none(),
                "http {bad:?}"
            );
        }
        assert!(socks5(b"fine-name_1.test").unwrap().is_some());
        assert!(crate::proto::http::authority("fine.test:443", 80).is_some());
    }

    /// Found by the `socks` fuzz target: a name of dots only passed the name check, then
    /// `Destination::from_host` dropped its trailing dots and the flow went to the empty
    /// domain (which no SOCKS address can even carry on to the next proxy).
    #[test]
    fn a_name_of_dots_only_is_refused_not_made_empty() {
        for dots in [&b"."[..], b"..."] {
            assert_eq!(
                socks5(dots),
                Err(SocksError::Name(NameError::Empty)),
                "{dots:?}"
            );
            let mut b4 = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
            b4.extend_from_slice(dots);
            b4.push(0);
            assert_eq!(
                request4(&b4),
                Err(SocksError::Name(NameError::Empty)),
                "4a {dots:?}"
            );
        }
        // Trailing dots after a name are dropped as before.
        let dest = socks5(b"a.test.").unwrap().unwrap().0.destination;
        assert_eq!(dest, Destination::from_host("a.test", 80));
    }

    /// Found by the `socks` fuzz target: an address written as a name with a trailing dot
    /// (`127.0.0.1.`, `::.`) became a domain spelling an address, so IP rules did not see
    /// it while the dial still went to that address.
    #[test]
    fn an_address_with_a_trailing_dot_is_that_address() {
        let ip = |s: &str| Destination::from_socket(SocketAddr::new(s.parse().unwrap(), 80));
        for (name, want) in [
            ("127.0.0.1.", "127.0.0.1"),
            ("::.", "::"),
            ("[::1].", "::1"),
        ] {
            let got = socks5(name.as_bytes()).unwrap().unwrap().0.destination;
            assert_eq!(got, ip(want), "{name}");
            let mut b4 = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
            b4.extend_from_slice(name.as_bytes());
            b4.push(0);
            assert_eq!(
                request4(&b4).unwrap().unwrap().0.destination,
                ip(want),
                "4a {name}"
            );
        }
    }

    #[test]
    fn a_name_too_long_for_a_socks_address_is_refused_not_cut() {
        let long = "a".repeat(256);
        let dest = Destination::from_host(&long, 80);
        assert_eq!(
            connect_request(&dest),
            Err(SocksError::Name(NameError::TooLong(256)))
        );
        assert!(connect_request(&Destination::from_host(&"a".repeat(255), 80)).is_ok());
    }
}
