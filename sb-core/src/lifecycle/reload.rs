//! A reload (SIGHUP): the next config's instance is brought up before the running one is
//! torn down, so what did not change never stops.
//!
//! 1. Remote rule sets whose tag, URL and format did not change take the running set's rules
//!    and `ETag` instead of downloading again (a failed download of a new one stops the
//!    reload with nothing touched).
//! 2. Inbounds whose whole config did not change are kept: their listening sockets, UDP
//!    sockets, TUN device and routes stay as they are, so there is no moment when a port
//!    refuses connections or TUN traffic leaves outside the tunnel; once the new instance is
//!    up, their next flows go to its dispatcher (flows already running finish on the old
//!    one).
//! 3. The other old inbounds and the endpoints are closed (their sockets released, so the
//!    new ones can bind the same addresses), then the new endpoints and inbounds start.
//! 4. The old instance's outbounds, rule-set refreshes and background work stop.
//!
//! If step 3 fails, what it started is closed, and the caller gets back the old instance
//! with the inbounds that kept running ([`ReloadFailed::remains`]); reloading the old config
//! into it brings the rest back.

use super::{Bring, Instance, Parts, StartError};

/// A reload that did not complete: why, and what of the old instance still runs.
pub struct ReloadFailed {
    /// Why the new config could not start.
    pub error: StartError,
    /// The old instance with the inbounds that kept running (all of them when the failure
    /// came before any was closed). Reload the old config into it to bring back the rest.
    pub remains: Instance,
}

impl Instance {
    /// Replaces this instance by `parts`, keeping what did not change (see the module doc).
    pub async fn reload(mut self, parts: Parts) -> Result<Instance, Box<ReloadFailed>> {
        let Parts {
            inbounds,
            inbound_configs,
            endpoints,
            dispatcher,
            rule_sets,
        } = parts;
        if let Err(e) = rule_sets.start_after(Some(&self.rule_sets)).await {
            return Err(Box::new(ReloadFailed {
                error: e.into(),
                remains: self,
            }));
        }
        let mut old = std::mem::take(&mut self.inbounds);
        let mut configs = inbound_configs.into_iter();
        let bring: Vec<Bring> = inbounds
            .into_iter()
            .map(|inbound| {
                let config = configs.next();
                let same = config
                    .as_ref()
                    .and_then(|c| old.iter().position(|r| r.config.as_ref() == Some(c)));
                match same {
                    Some(at) => Bring::Keep(old.remove(at)),
                    None => Bring::Start(inbound, config),
                }
            })
            .collect();
        for r in old {
            r.inbound.close().await;
        }
        for e in std::mem::take(&mut self.endpoints) {
            e.close_endpoint().await;
        }
        let mut next = Instance::empty(dispatcher, rule_sets);
        match next.bring_up(endpoints, bring).await {
            Ok(()) => {
                self.close_rest().await;
                Ok(next)
            }
            Err((error, kept)) => {
                next.rule_sets.close();
                self.inbounds = kept;
                Err(Box::new(ReloadFailed {
                    error,
                    remains: self,
                }))
            }
        }
    }
}
