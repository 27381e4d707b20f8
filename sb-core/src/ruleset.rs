//! Rule sets at run time: `route.rule_set[]` turned into the matchers the router's rules
//! point at, and kept current while sb runs.
//!
//! - `inline` sets are compiled once;
//! - `local` sets are read when the instance is built (an unreadable or invalid file stops
//!   the start, naming the set and the file) and re-read when the file changes
//!   ([`local`]); a bad new version is logged and the old rules stay;
//! - `remote` sets are downloaded when the instance starts with the HTTP client the registry
//!   resolved for each when the instance was built ([`ClientLookup`]: the set's
//!   `http_client`, its `download_detour`, `route.default_http_client`, the first of
//!   `http_clients`, else the default outbound, in Go's order) ([`remote`]); with no copy
//!   yet, a failed first download stops the start, as in Go. They are refreshed every
//!   `update_interval` (1 day), keeping the old rules when a refresh fails.
//!
//! The router holds each set as an `Arc<RuleSetMatcher>` whose rules are swapped atomically,
//! so a reload never blocks the flows being routed.

pub mod local;
pub mod remote;

use crate::adapter::Outbound;
use crate::http_client::{ClientOptions, HttpClient};
use crate::router::rule::{RuleSetMatcher, RuleSets as Matchers};
use sb_config::model::rule_set::{
    HeadlessRule, RemoteRuleSet, RuleSet, RuleSetFormat, RuleSetKind,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::info;

/// Finds the outbound a remote set downloads through: a tag, or `""` for the default
/// outbound. The router does not know outbounds; the registry, which builds both, provides
/// this after the outbounds exist.
pub type OutboundLookup = Arc<dyn Fn(&str) -> Option<Arc<dyn Outbound>> + Send + Sync>;

/// The HTTP client a remote set downloads with, or why there is none.
pub type ClientLookup<'a> = &'a dyn Fn(&RemoteRuleSet) -> Result<HttpClient, String>;

/// The client of a set that names no `http_client`: through its `download_detour`, else the
/// default outbound (`""`), with default options.
pub fn client_through(
    outbounds: &OutboundLookup,
    set: &RemoteRuleSet,
) -> Result<HttpClient, String> {
    let outbound = outbounds(&set.download_detour)
        .ok_or_else(|| format!("download detour not found: {}", set.download_detour))?;
    HttpClient::new(outbound, ClientOptions::default()).map_err(|e| e.to_string())
}

/// An error loading a rule set, naming it as the config does.
#[derive(Debug, thiserror::Error)]
#[error("route.rule_set[{index}] (tag {tag:?}): {message}")]
pub struct RuleSetError {
    /// Index in `route.rule_set`.
    pub index: usize,
    /// The set's tag.
    pub tag: String,
    /// What went wrong.
    pub message: String,
}

/// How often a local file's modification time is checked.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Go's default `update_interval` for remote sets.
pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Where a set's rules come from.
enum Source {
    Inline,
    Local(local::LocalFile),
    Remote(remote::RemoteSet, HttpClient, Arc<remote::Fetched>),
}

struct Entry {
    index: usize,
    matcher: Arc<RuleSetMatcher>,
    source: Source,
}

/// Every rule set of an instance, and the tasks that keep them current.
pub struct RuleSets {
    entries: Vec<Entry>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Compiles headless rules; used for every source so all sets match alike.
pub(crate) fn compile(
    rules: &[HeadlessRule],
) -> Result<Vec<crate::router::rule::Matcher>, crate::router::RuleError> {
    RuleSetMatcher::compile(rules)
}

/// The format of a file or download: as configured, else from the extension (sb-config
/// refuses a set where neither says).
fn format_of(format: Option<RuleSetFormat>, path: &str) -> RuleSetFormat {
    format
        .or_else(|| sb_config::model::rule_set::infer_format(path))
        .unwrap_or(RuleSetFormat::Source)
}

impl RuleSets {
    /// [`RuleSets::build_with`] where remote sets download through their `download_detour`
    /// or the default outbound (`outbounds("")`); a set naming an `http_client` is refused
    /// (only the registry builds those).
    pub fn build(sets: &[RuleSet], outbounds: OutboundLookup) -> Result<RuleSets, RuleSetError> {
        Self::build_with(sets, &|r: &RemoteRuleSet| {
            if r.http_client.is_some() {
                return Err("`http_client` needs the HTTP clients the registry builds".into());
            }
            client_through(&outbounds, r)
        })
    }

    /// Builds every set: inline ones compiled, local files read and compiled, remote ones
    /// given their HTTP client by `clients` and left empty until [`RuleSets::start_after`].
    /// Relative local paths resolve against the working directory, as in Go (sb run's `-D`
    /// changes it first).
    pub fn build_with(
        sets: &[RuleSet],
        clients: ClientLookup<'_>,
    ) -> Result<RuleSets, RuleSetError> {
        let mut entries = Vec::with_capacity(sets.len());
        for (index, rs) in sets.iter().enumerate() {
            let err = |message: String| RuleSetError {
                index,
                tag: rs.tag.clone(),
                message,
            };
            let (rules, source) = match &rs.kind {
                RuleSetKind::Inline(rules) => (
                    compile(rules).map_err(|e| err(e.to_string()))?,
                    Source::Inline,
                ),
                RuleSetKind::Local(l) => {
                    let file = local::LocalFile::new(
                        PathBuf::from(sb_config::ctx::expand_path(&l.path)),
                        format_of(l.format, &l.path),
                    );
                    let (rules, _) = file.load().map_err(err)?;
                    (rules, Source::Local(file))
                }
                RuleSetKind::Remote(r) => {
                    if !r.initial_path.is_empty() {
                        return Err(err("`initial_path` is not implemented by sb yet".into()));
                    }
                    let interval = if r.update_interval.is_zero() {
                        DEFAULT_UPDATE_INTERVAL
                    } else {
                        r.update_interval.to_std()
                    };
                    let set = remote::RemoteSet {
                        url: r.url.clone(),
                        format: format_of(r.format, &r.url),
                        interval,
                    };
                    // Its downloads are flows labelled by the set (`rule-set:<tag>`).
                    let client = clients(r)
                        .map_err(err)?
                        .with_purpose(format!("rule-set:{}", rs.tag));
                    (Vec::new(), Source::Remote(set, client, Arc::default()))
                }
            };
            entries.push(Entry {
                index,
                matcher: Arc::new(RuleSetMatcher::new(&rs.tag, rules)),
                source,
            });
        }
        Ok(RuleSets {
            entries,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// The matchers by tag, for the router.
    pub fn matchers(&self) -> Matchers {
        self.entries
            .iter()
            .map(|e| (e.matcher.tag().to_string(), e.matcher.clone()))
            .collect()
    }

    /// Downloads the remote sets, then starts watching local files and refreshing remote
    /// sets. A failed first download is an error naming the set. A remote set that
    /// `previous` (the instance a reload replaces) has with the same tag, URL and format and
    /// has downloaded takes its rules and `ETag` instead, and is refreshed when the previous
    /// one would have been.
    pub async fn start_after(&self, previous: Option<&RuleSets>) -> Result<(), RuleSetError> {
        let mut tasks = Vec::new();
        for e in &self.entries {
            let err = |message: String| RuleSetError {
                index: e.index,
                tag: e.matcher.tag().to_string(),
                message,
            };
            match &e.source {
                Source::Inline => {}
                Source::Local(file) => {
                    tasks.push(tokio::spawn(local::watch(
                        file.clone(),
                        e.matcher.clone(),
                        WATCH_INTERVAL,
                    )));
                }
                Source::Remote(set, client, fetched) => {
                    let last = match previous.and_then(|p| p.downloaded(e.matcher.tag(), set)) {
                        Some((old, etag, at)) => {
                            e.matcher.share_rules(old);
                            fetched.set(etag, at);
                            info!(target: "router", "rule-set {} unchanged: kept its rules", e.matcher.tag());
                            at
                        }
                        None => {
                            let etag = set
                                .fetch(client, &e.matcher, None)
                                .await
                                .map_err(|m| err(format!("initial rule-set: {m}")))?;
                            let now = tokio::time::Instant::now();
                            fetched.set(etag, now);
                            now
                        }
                    };
                    tasks.push(tokio::spawn(remote::update_loop(
                        set.clone(),
                        client.clone(),
                        e.matcher.clone(),
                        fetched.clone(),
                        last,
                    )));
                }
            }
        }
        if let Ok(mut t) = self.tasks.lock() {
            t.extend(tasks);
        }
        Ok(())
    }

    /// The downloaded remote set `tag` with the same URL and format as `like`: its matcher,
    /// `ETag` and download time.
    fn downloaded(
        &self,
        tag: &str,
        like: &remote::RemoteSet,
    ) -> Option<(&RuleSetMatcher, Option<String>, tokio::time::Instant)> {
        self.entries.iter().find_map(|e| match &e.source {
            Source::Remote(set, _, fetched)
                if e.matcher.tag() == tag && set.url == like.url && set.format == like.format =>
            {
                let (etag, at) = fetched.get()?;
                Some((e.matcher.as_ref(), etag, at))
            }
            _ => None,
        })
    }

    /// Stops watching and refreshing (the matchers keep their last rules).
    pub fn close(&self) {
        if let Ok(mut t) = self.tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
    }
}

impl Drop for RuleSets {
    fn drop(&mut self) {
        self.close();
    }
}
