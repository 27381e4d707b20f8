//! `remote` rule sets: downloaded with sb's HTTP client (the one the registry resolved for
//! the set), then refreshed every `update_interval`. As in Go, the last `ETag` is sent as `If-None-Match`, and a
//! `304 Not Modified` keeps the rules. A failed refresh is logged and the old rules stay.

use crate::http_client::HttpClient;
use crate::router::rule::RuleSetMatcher;
use sb_config::model::rule_set::RuleSetFormat;
use std::sync::Arc;
use std::time::Duration;
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

/// Refreshes `matcher` every `set.interval`, keeping the old rules on failure.
pub async fn update_loop(
    set: RemoteSet,
    client: HttpClient,
    matcher: Arc<RuleSetMatcher>,
    mut etag: Option<String>,
) {
    let mut tick = tokio::time::interval(set.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match set.fetch(&client, &matcher, etag.clone()).await {
            Ok(e) => etag = e,
            Err(e) => error!(target: "router", "fetch rule-set {}: {e}", matcher.tag()),
        }
    }
}
