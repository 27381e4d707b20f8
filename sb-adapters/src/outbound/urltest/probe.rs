//! One URL test: an HTTP `HEAD` of the group's URL sent through one member, timed from the
//! start of the member's connect to the response head (Go's `urltest.URLTest`: the dial, the
//! proxy handshake, TLS and one round trip all count). Any HTTP answer is a success, whatever
//! its status; no answer within [`TIMEOUT`] is a failure. The clock is tokio's, so tests on
//! paused time measure the delays they simulate.

use sb_core::adapter::Outbound;
use sb_core::http_client::{ClientOptions, HttpClient, HttpError, HttpVersion};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Go's `C.TCPTimeout`: how long one test may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Tests `url` through `member` for the group `group`; the delay in whole milliseconds, or
/// why it failed. The probe's flow is labelled `urltest:<group>`.
pub async fn probe(group: &str, member: Arc<dyn Outbound>, url: &str) -> Result<u16, HttpError> {
    probe_within(group, member, url, TIMEOUT).await
}

/// As [`probe`], with the caller's time limit (the Clash API's `?timeout=`).
pub async fn probe_within(
    group: &str,
    member: Arc<dyn Outbound>,
    url: &str,
    timeout: Duration,
) -> Result<u16, HttpError> {
    let options = ClientOptions {
        timeout,
        // A HEAD answer has no body; a misbehaving server is cut off early.
        max_body: 64 * 1024,
        // One round trip on HTTP/1.1, whatever the server offers: the delay stays comparable
        // across members and servers.
        version: HttpVersion::Http1,
        ..ClientOptions::default()
    };
    // Built before the clock starts: loading the trusted roots is not the member's delay.
    let client = HttpClient::new(member, options)?.with_purpose(format!("urltest:{group}"));
    let start = Instant::now();
    client.head(url).await?;
    Ok(u16::try_from(start.elapsed().as_millis()).unwrap_or(u16::MAX))
}
