//! The HTTP proxy's request side (`sb_adapters::proto::http` and `http_forward`): the
//! incremental head-end finder the inbound runs after each read, the request head parser,
//! the authority of CONNECT targets and Host headers, and what a plain-HTTP request becomes
//! for its origin (body framing, absolute-form rewrite, upgrade requests). The first two
//! input bytes say how the rest is split into reads; the rest is what the client sent.
//!
//! Checked: no panic; the head-end finder, fed the reads one by one, finds the head where a
//! search of all the bytes at once does, looking at each byte a bounded number of times; a
//! parsed head is parsed the same from its own bytes; a destination taken from an authority
//! is one a flow may have (`check_name`); the head rewritten for the origin (and the upgrade
//! head) is itself a well-formed head, of the same method, whose body framing is the one the
//! proxy forwards the body with (so client, proxy and origin agree where the body ends).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_adapters::proto::http::{self, HeadEnd};
use sb_adapters::proto::http_forward as fwd;
use sb_core::flow::{check_name, Destination};
use sb_fuzz::splits;

/// A destination a client may name: a domain must be a valid name.
fn valid(dest: &Destination) {
    if let Some(d) = dest.domain() {
        assert_eq!(check_name(d), Ok(()), "{dest:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (steps, wire) = data.split_at(2);

    // Where the head ends: the finder over growing reads, and the plain search.
    let expected = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let mut finder = HeadEnd::default();
    let mut found = None;
    for read in splits(wire.len(), steps) {
        found = finder.find(&wire[..read.end]);
        if found.is_some() {
            break;
        }
    }
    assert_eq!(found, expected, "the finder and the search disagree");
    assert!(
        finder.examined() <= 4 * wire.len() + 4,
        "{} bytes examined",
        finder.examined()
    );

    let Ok(Some((head, n))) = http::parse_head(wire) else {
        return;
    };
    assert_eq!(Some(n), expected);
    assert_eq!(http::parse_head(&wire[..n]), Ok(Some((head.clone(), n))));

    for (port, target) in [
        (443, head.target.as_str()),
        (80, head.header("Host").unwrap_or("")),
    ] {
        if let Some(dest) = http::authority(target, port) {
            valid(&dest);
        }
    }
    let _ = (
        fwd::keep_alive(&head),
        fwd::wants_close(&head),
        fwd::is_upgrade(&head),
    );
    let body = fwd::request_body(&head);

    if let Ok(f) = fwd::forward_request(&head) {
        valid(&f.destination);
        assert_eq!(Ok(f.body), body);
        let (again, used) = http::parse_head(&f.head)
            .ok()
            .flatten()
            .expect("the forwarded head is a head");
        assert_eq!(used, f.head.len());
        assert_eq!(again.method, head.method);
        assert_eq!(again.version, "HTTP/1.1");
        assert_eq!(
            fwd::request_body(&again),
            Ok(f.body),
            "the origin would read a different body than the proxy forwards: {:?}",
            String::from_utf8_lossy(&f.head)
        );
    }

    if let Ok((dest, out)) = fwd::upgrade_request(&head) {
        valid(&dest);
        let (again, used) = http::parse_head(&out)
            .ok()
            .flatten()
            .expect("the upgrade head is a head");
        assert_eq!((used, &again.method), (out.len(), &head.method));
    }
});
