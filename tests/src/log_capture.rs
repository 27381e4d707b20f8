//! What an in-process sb logs, kept for the test to read: a process-wide tracing
//! subscriber that records sb's `inbound`, `router`, `outbound` and `connection` targets at debug level. The
//! Tor suite reads the bootstrap progress and each stream's circuit from it.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Writes into the shared buffer.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber (once per test binary; later calls do nothing).
pub fn install() {
    let buffer = LINES
        .get_or_init(|| Arc::new(Mutex::new(Vec::new())))
        .clone();
    let targets = tracing_subscriber::filter::Targets::new()
        .with_target("outbound", tracing::Level::DEBUG)
        .with_target("router", tracing::Level::DEBUG)
        .with_target("inbound", tracing::Level::DEBUG)
        .with_target("connection", tracing::Level::DEBUG)
        .with_target("endpoint", tracing::Level::DEBUG);
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || Sink(buffer.clone()))
        .with_filter(targets);
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
}

/// Everything captured so far.
pub fn text() -> String {
    LINES
        .get()
        .and_then(|b| {
            b.lock()
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .unwrap_or_default()
}
