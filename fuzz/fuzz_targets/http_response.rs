//! Responses the HTTP side of sb reads from upstreams: the status line of an HTTP proxy's
//! answer to CONNECT (`sb_adapters::proto::http::parse_head_response`, the `http` outbound),
//! and an origin's response to a forwarded plain-HTTP request (`http_forward`:
//! `parse_response`, `response_body`, `forward_response`, `forward_interim`). The first
//! input byte picks the request method and whether the client asked for keep-alive; the
//! rest is what the upstream sent.
//!
//! Checked: no panic; a parsed head is parsed the same from its own bytes; the head passed to
//! the client is a well-formed response head with the same status, whose body framing is
//! the one the proxy passes the body on with (the proxy copies the body as it is, so a client
//! that read another framing would take part of it as the next response, or wait forever).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_adapters::proto::http;
use sb_adapters::proto::http_forward::{self as fwd, Body};

const METHODS: [&str; 4] = ["GET", "HEAD", "POST", "head"];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, wire)) = data.split_first() else {
        return;
    };

    if let Ok(Some((status, n))) = http::parse_head_response(wire) {
        assert_eq!(http::parse_head_response(&wire[..n]), Ok(Some((status, n))));
    }

    let Ok(Some((resp, n))) = fwd::parse_response(wire) else {
        return;
    };
    assert_eq!(fwd::parse_response(&wire[..n]), Ok(Some((resp.clone(), n))));

    if resp.is_interim() {
        let out = fwd::forward_interim(&resp);
        let (again, used) = fwd::parse_response(&out)
            .ok()
            .flatten()
            .expect("the interim head passed on is a head");
        assert_eq!((used, again.status), (out.len(), resp.status));
        return;
    }
    let method = METHODS[usize::from(mode) % METHODS.len()];
    let Ok(body) = fwd::response_body(method, &resp) else {
        return;
    };
    // As the inbound decides: a body that ends with the connection ends the client's too.
    let keep = mode & 0x80 != 0 && body != Body::UntilClose;
    let out = fwd::forward_response(&resp, body, keep);
    let (again, used) = fwd::parse_response(&out)
        .ok()
        .flatten()
        .expect("the head passed on is a head");
    assert_eq!((used, again.status), (out.len(), resp.status));
    assert_eq!(
        fwd::response_body(method, &again),
        Ok(body),
        "the client would read a different body than the proxy passes on: {:?}",
        String::from_utf8_lossy(&out)
    );
});
