//! `sb run`'s side of the Clash API: started after the instance, shown each new instance on
//! reload (restarted only when `experimental.clash_api` itself changed), closed before the
//! instance. Without the `clash-api` cargo feature a config that enables it is refused, as
//! an adapter left out of the build is.

use anyhow::Result;
use sb_config::Config;

/// Whether the config turns the API on.
fn enabled(config: &Config) -> bool {
    config
        .experimental
        .as_ref()
        .and_then(|e| e.clash_api.as_ref())
        .is_some_and(|c| !c.external_controller.is_empty())
}

/// The refusal of a build without the API.
pub fn check(config: &Config) -> Result<()> {
    if enabled(config) && !cfg!(feature = "clash-api") {
        anyhow::bail!(
            "experimental.clash_api: the Clash API needs the cargo feature \"clash-api\""
        );
    }
    Ok(())
}

#[cfg(feature = "clash-api")]
pub use with_api::Api;

#[cfg(feature = "clash-api")]
mod with_api {
    use anyhow::{Context, Result};
    use sb_clash::{ClashApi, Options, View};
    use sb_config::Config;
    use sb_core::log::LogHub;

    /// The running API, if the config has one.
    pub struct Api {
        running: Option<(ClashApi, sb_config::model::experimental::ClashApi)>,
        logs: LogHub,
    }

    fn section(config: &Config) -> Option<sb_config::model::experimental::ClashApi> {
        config.experimental.as_ref()?.clash_api.clone()
    }

    impl Api {
        /// Starts the API for `built` when `config` enables it.
        pub async fn start(
            config: &Config,
            built: &sb_adapters::registry::Built,
            logs: LogHub,
        ) -> Result<Api> {
            let mut api = Api {
                running: None,
                logs,
            };
            api.open(config, built).await?;
            Ok(api)
        }

        async fn open(
            &mut self,
            config: &Config,
            built: &sb_adapters::registry::Built,
        ) -> Result<()> {
            let (Some(options), Some(section)) = (Options::from_config(config), section(config))
            else {
                return Ok(());
            };
            let server = ClashApi::start(options, View::new(built, config), self.logs.clone())
                .await
                .context("start clash-server")?;
            self.running = Some((server, section));
            Ok(())
        }

        /// Shows the instance built from `config` (after a reload); restarts the API when
        /// its own section changed.
        pub async fn reload(
            &mut self,
            config: &Config,
            built: &sb_adapters::registry::Built,
        ) -> Result<()> {
            let same = matches!(
                (&self.running, section(config)),
                (Some((_, old)), Some(new)) if *old == new
            );
            if same {
                if let Some((server, _)) = &self.running {
                    server.update(View::new(built, config));
                }
                return Ok(());
            }
            self.close().await;
            self.open(config, built).await
        }

        /// Stops it.
        pub async fn close(&mut self) {
            if let Some((server, _)) = self.running.take() {
                server.close().await;
            }
        }
    }
}

/// Stands in for the API in a build without it ([`check`] refused configs that enable it).
#[cfg(not(feature = "clash-api"))]
pub struct Api;

#[cfg(not(feature = "clash-api"))]
impl Api {
    /// Nothing to start.
    pub async fn start(
        _config: &Config,
        _built: &sb_adapters::registry::Built,
        _logs: sb_core::log::LogHub,
    ) -> Result<Api> {
        Ok(Api)
    }
    /// Nothing to show.
    pub async fn reload(
        &mut self,
        _config: &Config,
        _built: &sb_adapters::registry::Built,
    ) -> Result<()> {
        Ok(())
    }
    /// Nothing to stop.
    pub async fn close(&mut self) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_build_without_the_api_refuses_a_config_that_enables_it() {
        let on = sb_config::load_text(
            "c.json",
            r#"{"experimental": {"clash_api": {"external_controller": "127.0.0.1:0"}}}"#,
        )
        .unwrap()
        .config;
        let off = sb_config::load_text("c.json", r#"{"experimental": {"clash_api": {}}}"#)
            .unwrap()
            .config;
        assert!(super::check(&off).is_ok());
        let refusal = super::check(&on).err().map(|e| e.to_string());
        let expected = (!cfg!(feature = "clash-api")).then(|| {
            "experimental.clash_api: the Clash API needs the cargo feature \"clash-api\""
                .to_string()
        });
        assert_eq!(refusal, expected);
    }
}
