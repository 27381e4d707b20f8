//! The datagram framings of proxied UDP: the SOCKS5 UDP header a client puts on every
//! datagram (`sb_adapters::proto::socks_udp::decode`), and UDP over TCP
//! (`sb_adapters::proto::uot`): the version 2 request, then datagrams on the stream in
//! both framings (addressed, and connect: length only). The first input byte picks the
//! framing and whether the stream starts with a request; the SOCKS5 decoder sees the whole
//! input.
//!
//! Checked: no panic; a decoded SOCKS5 UDP datagram encodes back to the same destination and
//! payload; each UoT message parsed as complete at `n` bytes is parsed the same from those
//! bytes and every shorter prefix asks for more (the stream is read in arbitrary pieces);
//! a parsed UoT request or datagram encodes back to what was parsed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_adapters::proto::{socks_udp, uot};
use std::fmt::Debug;

fn prefixes(n: usize) -> impl Iterator<Item = usize> {
    let step = (n / 256).max(1);
    (0..n).step_by(step).chain(n.checked_sub(1))
}

/// `parse` on `data`, with the prefix properties when complete.
fn complete<T: PartialEq + Debug, E: Debug>(
    data: &[u8],
    parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
) -> Option<(T, usize)> {
    let (msg, n) = parse(data).ok()??;
    assert!(n <= data.len());
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
    Some((msg, n))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((dest, offset))) = socks_udp::decode(data) {
        let payload = &data[offset..];
        let wire = socks_udp::encode(&dest, payload).expect("a decoded destination encodes");
        let (back, at) = socks_udp::decode(&wire)
            .ok()
            .flatten()
            .expect("an encoded datagram decodes");
        assert_eq!((back, &wire[at..]), (dest, payload));
    }

    let Some((&mode, mut stream)) = data.split_first() else {
        return;
    };
    let mut framing = if mode & 1 == 0 {
        uot::Framing::Addressed
    } else {
        uot::Framing::Connect
    };
    if mode & 2 != 0 {
        // Version 2: a request first, which also decides the framing.
        let Some((req, used)) = complete(stream, uot::request) else {
            return;
        };
        let wire = uot::encode_request(&req).expect("a parsed request encodes");
        assert_eq!(uot::request(&wire), Ok(Some((req.clone(), wire.len()))));
        framing = req.framing();
        stream = &stream[used..];
    }
    // Datagrams one after another, as the server reads them off the stream.
    for _ in 0..1024 {
        let Some((frame, used)) = complete(stream, |b| uot::packet(b, framing)) else {
            break;
        };
        let payload = &stream[frame.payload.clone()];
        let dest = frame
            .address
            .clone()
            .unwrap_or_else(|| uot::Version::V2.magic_destination());
        let wire = uot::encode_packet(framing, &dest, payload).expect("a parsed datagram encodes");
        let (back, n) = uot::packet(&wire, framing)
            .ok()
            .flatten()
            .expect("an encoded datagram parses");
        assert_eq!(
            (back.address, &wire[back.payload], n),
            (frame.address, payload, wire.len())
        );
        if used == 0 {
            break;
        }
        stream = &stream[used..];
    }
});
