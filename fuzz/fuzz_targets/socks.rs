//! SOCKS 4/4a/5 server and client messages (`sb_adapters::proto::socks`): the greeting, the
//! RFC 1929 credentials, SOCKS5 requests, SOCKS4/4a requests, the SOCKS5 reply a client
//! reads, and the bare SOCKS5 address. Every parser sees every input.
//!
//! Checked: no panic; a message parsed as complete at `n` bytes is parsed the same from
//! exactly those `n` bytes and every shorter prefix asks for more bytes (the inbound parses
//! its growing buffer after each read, so the outcome must not depend on how the client's
//! bytes were split into reads); what the client-side encoders write for a parsed message
//! parses back to it (address, CONNECT request, SOCKS4/4a request, credentials, reply).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_adapters::proto::socks::{self, Command, Parse};
use sb_core::flow::{Destination, Host};
use std::fmt::Debug;
use std::net::IpAddr;

/// The prefixes checked for a message of `n` bytes: all of them for small messages, an
/// evenly spread sample (and the longest) for large ones, to keep each run linear-ish.
fn prefixes(n: usize) -> impl Iterator<Item = usize> {
    let step = (n / 256).max(1);
    (0..n).step_by(step).chain(n.checked_sub(1))
}

/// `parse` on `data`; when complete, the prefix properties above. Returns the message.
fn complete<T: PartialEq + Debug>(data: &[u8], parse: impl Fn(&[u8]) -> Parse<T>) -> Option<T> {
    let (msg, n) = parse(data).ok()??;
    assert!(n <= data.len(), "{n} bytes used of {}", data.len());
    let again = parse(&data[..n]);
    assert!(
        matches!(&again, Ok(Some((m, k))) if *m == msg && *k == n),
        "the message's own bytes parse differently: {again:?}"
    );
    for k in prefixes(n) {
        let short = parse(&data[..k]);
        assert!(
            matches!(short, Ok(None)),
            "a {k}-byte prefix of a {n}-byte message: {short:?}"
        );
    }
    Some(msg)
}

/// SOCKS4 carries an IPv4 address, and 0.0.0.x (x > 0) is the marker of a 4a request.
fn socks4_can_carry(dest: &Destination) -> bool {
    match dest.host {
        Host::Ip(IpAddr::V4(v4)) => {
            let o = v4.octets();
            !(o[..3] == [0, 0, 0] && o[3] != 0)
        }
        Host::Ip(IpAddr::V6(_)) => false,
        Host::Domain(_) => true,
    }
}

fuzz_target!(|data: &[u8]| {
    complete(data, socks::greeting);

    if let Some(c) = complete(data, socks::credentials) {
        let wire = socks::credentials_request(&c.username, &c.password);
        let (back, n) = socks::credentials(&wire)
            .ok()
            .flatten()
            .expect("credentials");
        assert_eq!((back, n), (c, wire.len()));
    }

    if let Some(dest) = complete(data, socks::address) {
        let mut wire = Vec::new();
        socks::encode_address(&mut wire, &dest).expect("a parsed address encodes");
        let back = socks::address(&wire);
        assert_eq!(back, Ok(Some((dest, wire.len()))), "address round trip");
    }

    if let Some(req) = complete(data, socks::request) {
        let wire = socks::connect_request(&req.destination).expect("a parsed request encodes");
        let back = socks::request(&wire)
            .ok()
            .flatten()
            .expect("CONNECT request");
        assert_eq!(back.0.command, Command::Connect);
        assert_eq!(back.0.destination, req.destination);
    }

    if let Some(req) = complete(data, socks::request4) {
        if socks4_can_carry(&req.destination) && req.user_id.len() <= 255 {
            let wire = socks::connect_request4(&req.destination, &req.user_id)
                .expect("a parsed SOCKS4 destination encodes");
            let (back, n) = socks::request4(&wire)
                .ok()
                .flatten()
                .expect("SOCKS4 request");
            assert_eq!(
                (back.destination, back.user_id, n),
                (req.destination, req.user_id, wire.len())
            );
        }
    }

    if let Some((code, bound)) = complete(data, socks::reply5) {
        if let Some(addr) = bound.socket_addr() {
            let wire = socks::reply(code, addr);
            assert_eq!(socks::reply5(&wire), Ok(Some(((code, bound), wire.len()))));
        }
    }
});
