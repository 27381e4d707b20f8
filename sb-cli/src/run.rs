//! `sb run`: build the instance from the config, start it, and serve until SIGINT/SIGTERM.
//! SIGHUP re-reads and re-checks the config; a bad new config is reported and the running one
//! keeps serving, as in Go.

use crate::clash::Api;
use crate::cli::Global;
use crate::input;
use anyhow::{Context, Result};
use sb_adapters::registry::Built;
use sb_core::lifecycle::Instance;
use sb_core::log::{GoLogLayer, LogHub, Output};
use std::time::Instant;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, error, info, warn};

/// Sets up logging from the `log` section (once per process). Returns the hub the Clash
/// API's `/logs` listens to (which hears nothing when logging is disabled).
fn init_logging(config: &sb_config::Config, disable_color: bool) -> Result<LogHub> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    let hub = LogHub::default();
    let log = config.log.clone().unwrap_or_default();
    if log.disabled {
        return Ok(hub);
    }
    let (output, tty) = match log.output.as_str() {
        "" | "stderr" => (Output::Stderr, std::io::stderr().is_terminal()),
        "stdout" => (Output::Stdout, std::io::stdout().is_terminal()),
        path => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open log output {path}"))?;
            (Output::File(f), false)
        }
    };
    let layer = GoLogLayer::with_hub(&log, output, tty && !disable_color, hub.clone());
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber).context("set up logging")?;
    Ok(hub)
}

async fn start(config: &sb_config::Config, logs: LogHub) -> Result<(Instance, Api)> {
    crate::clash::check(config)?;
    let built = sb_adapters::registry::build(config).context("initialize")?;
    for part in &built.ignored {
        tracing::warn!(target: "sb", "{part}");
    }
    let mut instance = Instance::start(built.parts())
        .await
        .context("start service")?;
    if let Some(cache_file) = built.cache_file.clone() {
        instance.attach(cache_file);
    }
    match Api::start(config, &built, logs).await {
        Ok(api) => Ok((instance, api)),
        Err(e) => {
            instance.close().await;
            Err(e.context("start service"))
        }
    }
}

/// Runs until a stop signal.
pub fn run(g: &Global, loaded: sb_config::Loaded) -> Result<()> {
    let started = Instant::now();
    let logs = init_logging(&loaded.config, g.disable_color)?;
    // As Go's runtime does: the soft open-file limit up to the hard one, since every flow
    // holds sockets (the inbounds budget their connections by the result).
    match sb_core::conn_limit::raise_open_file_limit() {
        Ok(Some((from, to))) => debug!(target: "sb", "open-file limit raised from {from} to {to}"),
        Ok(None) => {}
        Err(e) => warn!(target: "sb", "raise the open-file limit: {e}"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        // Handlers first: a signal that arrives once "sb started" is printed must be caught.
        let mut int = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
        let mut hup = signal(SignalKind::hangup()).context("listen for SIGHUP")?;
        let (mut instance, mut api) = start(&loaded.config, logs).await?;
        let mut current = loaded.config;
        info!(target: "sb", "sb started ({:.2}s)", started.elapsed().as_secs_f64());
        loop {
            let event = tokio::select! {
                _ = int.recv() => Event::Stop,
                _ = term.recv() => Event::Stop,
                // An inbound stopped serving on its own (a TUN whose device died): stop
                // cleanly, then exit with the error rather than run without it.
                e = instance.failed() => Event::Failed(e),
                _ = hup.recv() => Event::Reload,
            };
            match event {
                Event::Stop => break,
                Event::Failed(e) => {
                    api.close().await;
                    instance.close().await;
                    return Err(anyhow::Error::new(e).context("run service"));
                }
                Event::Reload => {
                    let config = match prepare(g) {
                        Ok(config) => config,
                        // The new config is bad: the running instance keeps serving.
                        Err(e) => {
                            error!(target: "sb", "reload service: {e:#}");
                            continue;
                        }
                    };
                    let (next, built, reloaded) = match reload(instance, &config).await {
                        Ok((next, built)) => {
                            current = config;
                            (next, built, true)
                        }
                        Err((e, remains)) => {
                            error!(target: "sb", "reload service: {e:#}");
                            // Back to the running config; what it kept is still serving.
                            match reload(remains, &current).await {
                                Ok((back, built)) => (back, built, false),
                                Err((e, remains)) => {
                                    api.close().await;
                                    remains.close().await;
                                    return Err(e);
                                }
                            }
                        }
                    };
                    instance = next;
                    // The API follows the instance; if its own settings broke, the
                    // instance serves on without it.
                    if let Err(e) = api.reload(&current, &built).await {
                        error!(target: "sb", "reload service: {e:#}");
                    }
                    // Said once everything, the Clash API included, shows the new config.
                    if reloaded {
                        info!(target: "sb", "sb reloaded");
                    }
                }
            }
        }
        api.close().await;
        instance.close().await;
        Ok(())
    })
}

/// What woke the run loop.
enum Event {
    Stop,
    Failed(sb_core::lifecycle::StartError),
    Reload,
}

/// Replaces `old` by an instance of `config`, keeping what did not change (unchanged
/// inbounds keep their sockets, unchanged remote rule sets their rules). On failure, returns
/// what of `old` still runs, for the caller to reload the previous config into.
async fn reload(
    old: Instance,
    config: &sb_config::Config,
) -> std::result::Result<(Instance, Built), (anyhow::Error, Instance)> {
    if let Err(e) = crate::clash::check(config) {
        return Err((e, old));
    }
    // The cache file as it is now, for the new instance to restore.
    old.flush_background();
    let built = match sb_adapters::registry::build(config).context("initialize") {
        Ok(b) => b,
        Err(e) => return Err((e, old)),
    };
    for part in &built.ignored {
        tracing::warn!(target: "sb", "{part}");
    }
    match old.reload(built.parts()).await {
        Ok(mut next) => {
            if let Some(cache_file) = built.cache_file.clone() {
                next.attach(cache_file);
            }
            Ok((next, built))
        }
        Err(failed) => {
            let failed = *failed;
            Err((
                anyhow::Error::new(failed.error).context("start service"),
                failed.remains,
            ))
        }
    }
}

/// What `sb check` does after the config checks, the same steps `sb run` takes before it
/// starts: every adapter this build cannot run (all of them reported), then the whole
/// build without starting anything, so `check` and `run` give the same verdict.
pub fn verify(config: &sb_config::Config) -> Result<()> {
    crate::clash::check(config)?;
    let errors = sb_adapters::registry::check(config);
    if !errors.is_empty() {
        let lines = errors.iter().map(|e| format!("initialize: {e}")).collect();
        return Err(crate::report::Errors(lines).into());
    }
    // Adapters may create tokio resources while they are built.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async { sb_adapters::registry::build(config).map(drop) })
        .context("initialize")
}

/// Re-reads and checks the config and that its adapters can be built.
fn prepare(g: &Global) -> Result<sb_config::Config> {
    let sources = input::read_all(g)?;
    let loaded = sb_config::load(&sources, &input::cwd()?)?;
    Ok(loaded.config)
}
