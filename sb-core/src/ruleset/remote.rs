//! `remote` rule sets: downloaded with sb's HTTP client (the one the registry resolved for
//! the set), then refreshed every `update_interval`. As in Go, the last `ETag` is sent as `If-None-Match`, and a
//! `304 Not Modified` keeps the rules. A failed refresh is logged and the old rules stay.

use crate::http_client::HttpClient;
use crate::router::rule::RuleSetMatcher;
use sb_config::model::rule_set::RuleSetFormat;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, error, info};

/// A remote set's download settings.
#[derive(Clone, Debug)]
pub struct RemoteSet {
    /// Where to download from.
    pub url: String,
    /// Source or binary.
    pub format: RuleSetFormat,
    /// How often to refresh.
    pub interval: Duration,
}

impl RemoteSet {
    /// Downloads and swaps in the rules. Returns the response's `ETag` (or `etag` again
    /// when the server answered 304).
    pub async fn fetch(
        &self,
        client: &HttpClient,
        matcher: &RuleSetMatcher,
        etag: Option<String>,
    ) -> Result<Option<String>, String> {
        debug!(target: "router", "updating rule-set {} from URL: {}", matcher.tag(), self.url);
        let headers: Vec<(&str, &str)> = etag
            .as_deref()
            .map(|e| vec![("If-None-Match", e)])
            .unwrap_or_default();
        let resp = client
            .get(&self.url, &headers)
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        match resp.head.status {
            200 => {}
            304 if etag.is_some() => {
                info!(target: "router", "update rule-set {}: not modified", matcher.tag());
                return Ok(etag);
            }
            s => {
                return Err(format!(
                    "GET {}: unexpected status: {s} {}",
                    self.url, resp.head.reason
                ))
            }
        }
        let rules = sb_config::rule_set_file::parse_any(&resp.body, self.format, &self.url)
            .map_err(|e| e.to_string())?;
        let compiled = super::compile(&rules).map_err(|e| format!("{}: {e}", self.url))?;
        matcher.replace(compiled);
        info!(target: "router", "updated rule-set {}", matcher.tag());
        Ok(resp.head.header("etag").map(str::to_string).or(etag))
    }
}

/// What a remote set's last download left: its `ETag` and when it was made. A reload that
/// keeps the set takes both (and the rules) instead of downloading again.
#[derive(Debug, Default)]
pub struct Fetched {
    state: Mutex<Option<(Option<String>, Instant)>>,
}

impl Fetched {
    /// The `ETag` and the time of the last download, if there was one.
    pub fn get(&self) -> Option<(Option<String>, Instant)> {
        self.state.lock().ok().and_then(|s| s.clone())
    }

    /// Records a download (or a `304`) made now.
    pub fn set(&self, etag: Option<String>, at: Instant) {
        if let Ok(mut s) = self.state.lock() {
            *s = Some((etag, at));
        }
    }
}

/// Refreshes `matcher` every `set.interval` after `last` (the time of the download it has),
/// keeping the old rules on failure.
pub async fn update_loop(
    set: RemoteSet,
    client: HttpClient,
    matcher: Arc<RuleSetMatcher>,
    fetched: Arc<Fetched>,
    last: Instant,
) {
    let mut next = last + set.interval;
    loop {
        tokio::time::sleep_until(next).await;
        let etag = fetched.get().and_then(|(e, _)| e);
        match set.fetch(&client, &matcher, etag).await {
            Ok(e) => fetched.set(e, Instant::now()),
            Err(e) => error!(target: "router", "fetch rule-set {}: {e}", matcher.tag()),
        }
        next = Instant::now() + set.interval;
    }
}
