//! The route table: Go's chi routes, matched on the path's segments (each percent-decoded,
//! so a tag with a `/` or a space can be named), then the secret is checked, then the method.
//! An unknown path is answered as Go's router does, plain-text 404 whatever the secret; a
//! known one asked without the secret gets 401, with the wrong method 405 and the methods
//! it takes.

pub mod configs;
pub mod connections;
pub mod dns;
pub mod meta;
pub mod proxies;
pub mod streams;
pub mod ui;

use crate::http::{self as h, Body};
use crate::Shared;
use http::{Method, Response};
use hyper::body::Incoming;
use hyper::Request;
use std::borrow::Cow;
use std::sync::Arc;

/// A path's segments after the leading `/`, each percent-decoded (`/proxies/a%2Fb` is
/// `["proxies", "a/b"]`; `/` is `[""]`).
pub fn segments(path: &str) -> Vec<Cow<'_, str>> {
    path.split('/')
        .skip(1)
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy())
        .collect()
}

/// Answers a request; `authorized` is the secret check's verdict.
pub async fn route(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    authorized: bool,
) -> Response<Body> {
    let raw = req.uri().path().to_string();
    let segments = segments(&raw);
    let parts: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
    let m = req.method().clone();
    let view = shared.view.load_full();
    use Method as M;
    macro_rules! only {
        ($($method:ident => $handler:expr),+ $(,)?) => {{
            if !authorized {
                return h::error(http::StatusCode::UNAUTHORIZED, "Unauthorized");
            }
            match m {
                $(M::$method => $handler,)+
                _ => h::wrong_method(&[$(M::$method),+]),
            }
        }};
    }
    match parts.as_slice() {
        [""] => only!(GET => meta::hello(shared, &req)),
        ["version"] => only!(GET => meta::version()),
        ["configs"] => only!(
            GET => configs::get(&view),
            PUT => h::no_content(),
            PATCH => configs::patch(&view, req.into_body()).await,
        ),
        ["proxies"] => only!(GET => proxies::list(shared, &view)),
        ["proxies", name] => only!(
            GET => proxies::get(shared, &view, name),
            PUT => proxies::select(&view, name, req.into_body()).await,
        ),
        ["proxies", name, "delay"] => {
            only!(GET => proxies::delay(shared, &view, name, req.uri()).await)
        }
        ["group"] => only!(GET => proxies::groups(shared, &view)),
        ["group", name] => only!(GET => proxies::group(shared, &view, name)),
        ["group", name, "delay"] => {
            only!(GET => proxies::group_delay(shared, &view, name, req.uri()).await)
        }
        ["connections"] => only!(
            GET => connections::get(shared, &view, req),
            DELETE => connections::close_all(&view),
        ),
        ["connections", id] => only!(DELETE => connections::close(&view, id)),
        ["traffic"] => only!(GET => streams::traffic(shared, req)),
        ["memory"] => only!(GET => streams::memory(shared, req)),
        ["logs"] => only!(GET => streams::logs(shared, req)),
        ["rules"] => only!(GET => meta::rules(&view)),
        ["providers", "proxies"] => only!(GET => meta::proxy_providers()),
        ["providers", "proxies", _] => only!(GET => h::not_found(), PUT => h::not_found()),
        ["providers", "proxies", _, "healthcheck"] => only!(GET => h::not_found()),
        ["providers", "rules"] => only!(GET => meta::rule_providers()),
        ["providers", "rules", _] => only!(GET => h::not_found(), PUT => h::not_found()),
        ["dns", "query"] => only!(GET => dns::query(&view, req.uri()).await),
        ["cache", "fakeip", "flush"] => only!(POST => meta::flush_fakeip(&view)),
        ["cache", "dns", "flush"] => only!(POST => meta::flush_dns(&view)),
        ["upgrade", "ui"] => only!(POST => meta::upgrade_ui(shared)),
        ["script"] => only!(
            POST => h::error(http::StatusCode::BAD_REQUEST, "not implemented"),
            PATCH => h::no_content(),
        ),
        ["profile", "tracing"] => only!(GET => h::not_found()),
        _ => h::no_route(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_decoded_one_by_one() {
        assert_eq!(super::segments("/"), [""]);
        assert_eq!(
            super::segments("/proxies/a%2Fb/delay"),
            ["proxies", "a/b", "delay"]
        );
        assert_eq!(
            super::segments("/proxies/no%20such"),
            ["proxies", "no such"]
        );
    }
}
