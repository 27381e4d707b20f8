use super::*;
use crate::proto::http::parse_head;

fn head(text: &str) -> Head {
    parse_head(text.as_bytes()).unwrap().unwrap().0
}

fn response(text: &str) -> ResponseHead {
    parse_response(text.as_bytes()).unwrap().unwrap().0
}

#[test]
fn keep_alive_follows_gos_rule() {
    let curl = "GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Connection: Keep-Alive\r\n\r\n";
    assert!(keep_alive(&head(curl)));
    // HTTP/1.0, or no Proxy-Connection (even with Connection: keep-alive): one request.
    assert!(!keep_alive(&head(&curl.replace("1.1", "1.0"))));
    assert!(!keep_alive(&head(
        "GET http://a/ HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"
    )));
    assert!(wants_close(&head("GET http://a/ HTTP/1.0\r\n\r\n")));
    assert!(!wants_close(&head(
        "GET http://a/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
    )));
    assert!(wants_close(&head(
        "GET http://a/ HTTP/1.1\r\nConnection: foo, close\r\n\r\n"
    )));
    assert!(!wants_close(&head(curl)));
    assert!(is_upgrade(&head(
        "GET http://a/ HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )));
    assert!(!is_upgrade(&head(curl)));
}

#[test]
fn requests_are_rewritten_for_the_origin() {
    let h = head("GET http://a.test:8080/x?y HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent: curl\r\nProxy-Connection: Keep-Alive\r\nProxy-Authorization: Basic dTpw\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nAccept: */*\r\n\r\n");
    let f = forward_request(&h).unwrap();
    assert_eq!(f.destination.to_string(), "a.test:8080");
    assert_eq!(f.body, Body::Empty);
    assert_eq!(
        String::from_utf8(f.head).unwrap(),
        "GET /x?y HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent: curl\r\nAccept: */*\r\n\r\n"
    );
    // HTTP/1.0 goes upstream as 1.1 with Connection: close; the default port leaves Host;
    // a missing Host comes from the target; a bare query keeps its `?`.
    let f = forward_request(&head(
        "POST http://b.test:80?q HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
    ))
    .unwrap();
    assert_eq!(f.destination.to_string(), "b.test:80");
    assert_eq!(f.body, Body::Length(3));
    assert_eq!(
        String::from_utf8(f.head).unwrap(),
        "POST ?q HTTP/1.1\r\nHost: b.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    );
    // Chunked bodies stay chunked.
    let f = forward_request(&head(
        "PUT HTTP://[::1]/up HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: chunked\r\n\r\n",
    ))
    .unwrap();
    assert_eq!(f.destination.to_string(), "[::1]:80");
    assert_eq!(f.body, Body::Chunked);
    assert_eq!(
        String::from_utf8(f.head).unwrap(),
        "PUT /up HTTP/1.1\r\nHost: [::1]\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
}

#[test]
fn unreadable_requests_are_refused() {
    for bad in [
        "GET /relative HTTP/1.1\r\n\r\n",
        "GET https://a/ HTTP/1.1\r\n\r\n",
        "GET http://a:x/ HTTP/1.1\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    ] {
        assert!(forward_request(&head(bad)).is_err(), "{bad}");
    }
    // Repeated equal lengths are one length.
    let h = head("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(request_body(&h), Ok(Body::Length(3)));
}

#[test]
fn upgrade_requests_keep_their_connection_headers() {
    let h = head("GET http://w.test/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
    let (dest, out) = upgrade_request(&h).unwrap();
    assert_eq!(dest.to_string(), "w.test:80");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /ws HTTP/1.1\r\nHost: w.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    );
}

#[test]
fn response_bodies_are_delimited_as_rfc_9112_says() {
    let cl = response("HTTP/1.0 200 OK\r\nContent-Length: 23\r\n\r\n");
    assert_eq!(response_body("GET", &cl), Ok(Body::Length(23)));
    assert_eq!(response_body("HEAD", &cl), Ok(Body::Empty));
    for (text, want) in [
        ("HTTP/1.1 204 No Content\r\n\r\n", Body::Empty),
        (
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            Body::Empty,
        ),
        ("HTTP/1.1 100 Continue\r\n\r\n", Body::Empty),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Body::Empty),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
            Body::Chunked,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            Body::UntilClose,
        ),
        ("HTTP/1.1 200 OK\r\n\r\n", Body::UntilClose),
    ] {
        assert_eq!(response_body("GET", &response(text)), Ok(want), "{text}");
    }
    assert!(response_body(
        "GET",
        &response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    )
    .is_err());
    assert!(response("HTTP/1.1 100 Continue\r\n\r\n").is_interim());
    assert!(!response("HTTP/1.1 101 Switching Protocols\r\n\r\n").is_interim());
}

#[test]
fn malformed_responses_are_errors() {
    assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), Ok(None));
    for bad in [
        &b"SSH-2.0-x\r\n\r\n"[..],
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad name: 1\r\n\r\n",
    ] {
        assert!(parse_response(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_response(&vec![b'a'; crate::proto::http::MAX_HEAD + 1]),
        Err(HttpError::TooLarge)
    );
    // Non-UTF-8 header values pass through untouched.
    let (r, _) = parse_response(b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        r.headers,
        vec![("X-Latin".to_string(), b"caf\xe9".to_vec())]
    );
}

#[test]
fn responses_carry_gos_connection_headers() {
    // What Go 1.14.4 sends curl for `curl -I -x http://proxy http://origin/` when the origin
    // answers `HTTP/1.0 200 OK` with a length (the runtime parity HEAD case).
    let r = response("HTTP/1.0 200 OK\r\nContent-Length: 23\r\n\r\n");
    assert_eq!(
        String::from_utf8(forward_response(&r, Body::Empty, true)).unwrap(),
        "HTTP/1.0 200 OK\r\nContent-Length: 23\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\nProxy-Connection: keep-alive\r\n\r\n"
    );
    assert_eq!(
        String::from_utf8(forward_response(&r, Body::Length(23), false)).unwrap(),
        "HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Length: 23\r\n\r\n"
    );
    // Hop-by-hop headers (and those Connection names) go; framing comes first.
    let r = response("HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=9\r\nTransfer-Encoding: chunked\r\nProxy-Authenticate: x\r\n\r\n");
    assert_eq!(
        String::from_utf8(forward_response(&r, Body::Chunked, true)).unwrap(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\nProxy-Connection: keep-alive\r\n\r\n"
    );
    assert!(proxy_auth_required(false)
        .windows(17)
        .any(|w| w == b"Connection: close"));
    assert!(!proxy_auth_required(true)
        .windows(17)
        .any(|w| w == b"Connection: close"));
}

/// Hardening finding 13 (RFC 9112 §6.3): with `Transfer-Encoding: chunked`, a
/// `Content-Length` is wrong and must not reach the origin (two framings are how requests
/// are smuggled past a proxy).
#[test]
fn content_length_is_dropped_beside_chunked() {
    let f = forward_request(&head(
        "POST http://a/up HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
    ))
    .unwrap();
    assert_eq!(f.body, Body::Chunked);
    assert_eq!(
        String::from_utf8(f.head).unwrap(),
        "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
}

/// Found by the `http_request` fuzz target: a `Connection` header naming `Content-Length`
/// took the length out of the forwarded head while the proxy still sent the body after it,
/// so the origin read the body as its next request (a smuggled request).
#[test]
fn a_length_named_by_connection_stays_with_its_body() {
    let h = head(
        "POST http://a/ HTTP/1.1\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 3\r\n\r\n",
    );
    let f = forward_request(&h).unwrap();
    assert_eq!(f.body, Body::Length(3));
    assert_eq!(
        String::from_utf8(f.head).unwrap(),
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"
    );
}

/// Found by the `http_response` fuzz target: a framing header whose value is not UTF-8 was
/// left out when the proxy decided how the body ends, yet it was the one passed to the
/// client, so the client and the proxy read different bodies from the same bytes. Such a
/// response is refused (502), as Go refuses a malformed Content-Length.
#[test]
fn framing_headers_that_are_not_utf8_make_the_response_unusable() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: \xff0\r\nContent-Length: 2\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: caf\xe9\r\n\r\n",
    ] {
        let (r, _) = parse_response(bad).unwrap().unwrap();
        assert!(response_body("GET", &r).is_err(), "{bad:?}");
    }
    // Other headers may carry any bytes (see malformed_responses_are_errors).
    let (r, _) =
        parse_response(b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\n\r\n")
            .unwrap()
            .unwrap();
    assert_eq!(response_body("GET", &r), Ok(Body::Length(2)));
}

/// Found by the `http_response` fuzz target: of several `Transfer-Encoding` headers (one
/// list, RFC 9110 §5.3) the proxy went by the last but passed only the first on, so the
/// client could read a chunked body as one that ends at close, or the other way round.
#[test]
fn every_transfer_encoding_header_is_passed_on() {
    let r = response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(response_body("GET", &r), Ok(Body::Chunked));
    assert_eq!(
        String::from_utf8(forward_response(&r, Body::Chunked, false)).unwrap(),
        "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
    );
    let r = response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(response_body("GET", &r), Ok(Body::UntilClose));
    assert_eq!(
        String::from_utf8(forward_response(&r, Body::UntilClose, false)).unwrap(),
        "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
    );
}
