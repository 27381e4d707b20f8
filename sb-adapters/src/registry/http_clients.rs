//! HTTP clients at run time: every `http_clients[]` entry built on sb-core's HTTP client
//! (its dial fields and `detour` become the client's `Dialer`, the rest its options, or a
//! refusal naming the field), and the client each remote rule set downloads with, chosen in
//! Go's order: the set's `http_client` (a tag or inline options), its deprecated
//! `download_detour`, `route.default_http_client`, the first `http_clients` entry, and last
//! the default outbound (Go's deprecated implicit client).

use super::dial::DialCtx;
use super::BuildError;
use sb_config::model::http_client::{HttpClientOptions, HttpClientRef};
use sb_config::model::rule_set::RemoteRuleSet;
use sb_config::Config;
use sb_core::http_client::config::client_options;
use sb_core::http_client::{Connector, HttpClient};
use sb_core::ruleset::{client_through, OutboundLookup};
use std::collections::HashMap;
use std::sync::Arc;

/// The named clients, and which one is the default.
pub(super) struct HttpClients {
    named: HashMap<String, HttpClient>,
    default: Option<String>,
}

/// A client from options, its connections made by their dial fields.
fn make(options: &HttpClientOptions, ctx: &DialCtx<'_>) -> Result<HttpClient, String> {
    let client_options = client_options(options)?;
    let dialer = Arc::new(ctx.dialer(&options.dial));
    HttpClient::with_connector(Connector::Dialer(dialer), client_options).map_err(|e| e.to_string())
}

impl HttpClients {
    /// Builds every `http_clients` entry (an unused one too: Go builds them all at start).
    pub(super) fn build(config: &Config, ctx: &DialCtx<'_>) -> Result<HttpClients, BuildError> {
        let mut named = HashMap::new();
        for (index, c) in config.http_clients.iter().enumerate() {
            let client = make(&c.options, ctx).map_err(|message| BuildError::HttpClient {
                index,
                tag: c.tag.clone(),
                message,
            })?;
            named.insert(c.tag.clone(), client);
        }
        let default = config
            .route
            .as_ref()
            .map(|r| r.options.default_http_client.clone())
            .filter(|t| !t.is_empty())
            .or_else(|| config.http_clients.first().map(|c| c.tag.clone()));
        Ok(HttpClients { named, default })
    }

    fn named(&self, tag: &str) -> Result<HttpClient, String> {
        self.named
            .get(tag)
            .cloned()
            .ok_or_else(|| format!("http_client not found: {tag}"))
    }

    /// The client remote set `set` downloads with.
    pub(super) fn for_rule_set(
        &self,
        set: &RemoteRuleSet,
        ctx: &DialCtx<'_>,
        outbounds: &OutboundLookup,
    ) -> Result<HttpClient, String> {
        match &set.http_client {
            Some(HttpClientRef::Tag(tag)) => self.named(tag),
            Some(HttpClientRef::Inline(options)) => {
                make(options, ctx).map_err(|e| format!("http_client: {e}"))
            }
            None if !set.download_detour.is_empty() => client_through(outbounds, set),
            None => match &self.default {
                Some(tag) => self.named(tag),
                None => client_through(outbounds, set),
            },
        }
    }
}
