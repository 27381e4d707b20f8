//! Logging in Go sing-box's line layout, through `tracing`:
//!
//! ```text
//! INFO[0001] [3452879958 2ms] inbound/mixed[mixed-in]: inbound connection to 127.0.0.1:18080
//! +0000 2026-11-21 22:22:06 INFO [3452879958 0ms] outbound/direct[direct]: outbound connection to ...
//! ```
//!
//! Events name their adapter with a `tag` field (`inbound/mixed[m]`) or, for router, DNS and
//! connection messages, with their target. The `[id elapsed]` part comes from the enclosing
//! `flow` span (one per flow, carrying the flow id). Times are printed in UTC.
//!
//! Every line written is also offered to a [`LogHub`], without time, level or colour, for the
//! Clash API's `/logs` stream; nothing is built for it while nobody listens.

use sb_config::model::log::{Log, LogLevel};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Where log lines go.
pub enum Output {
    /// Standard error (colour allowed).
    Stderr,
    /// Standard output (colour allowed).
    Stdout,
    /// A file (no colour; no time unless `timestamp`).
    File(std::fs::File),
}

/// One log line as the Clash API streams it.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// The line without time and level: `[id elapsed] tag: message`.
    pub payload: String,
}

/// Hands log lines to whoever listens (the Clash API's `/logs`). Bounded: a listener that
/// falls more than [`LogHub::BACKLOG`] lines behind skips lines, logging never waits.
#[derive(Clone, Debug)]
pub struct LogHub(tokio::sync::broadcast::Sender<LogLine>);

impl Default for LogHub {
    fn default() -> Self {
        LogHub(tokio::sync::broadcast::Sender::new(LogHub::BACKLOG))
    }
}

impl LogHub {
    /// How many lines a slow listener may fall behind.
    pub const BACKLOG: usize = 1024;

    /// A new listener, which receives the lines written from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<LogLine> {
        self.0.subscribe()
    }

    fn listened(&self) -> bool {
        self.0.receiver_count() > 0
    }

    fn publish(&self, line: LogLine) {
        let _ = self.0.send(line);
    }
}

/// The layer that writes Go-style lines.
pub struct GoLogLayer {
    hub: LogHub,
    out: Mutex<Output>,
    max: Level,
    timestamp: bool,
    color: bool,
    started: Instant,
}

struct FlowStart {
    id: u64,
    at: Instant,
}

/// Maps the config level to tracing's (`fatal`/`panic` are errors that stop sb).
pub fn level(l: Option<LogLevel>) -> Level {
    match l {
        None | Some(LogLevel::Unset) | Some(LogLevel::Trace) => Level::TRACE,
        Some(LogLevel::Debug) => Level::DEBUG,
        Some(LogLevel::Info) => Level::INFO,
        Some(LogLevel::Warn) | Some(LogLevel::Warning) => Level::WARN,
        Some(LogLevel::Error) | Some(LogLevel::Fatal) | Some(LogLevel::Panic) => Level::ERROR,
    }
}

impl GoLogLayer {
    /// A layer from the `log` section. `color` is whether the terminal may get colours.
    pub fn new(log: &Log, output: Output, color: bool) -> GoLogLayer {
        GoLogLayer::with_hub(log, output, color, LogHub::default())
    }

    /// As [`GoLogLayer::new`], offering every line to `hub` too.
    pub fn with_hub(log: &Log, output: Output, color: bool, hub: LogHub) -> GoLogLayer {
        let file = matches!(output, Output::File(_));
        GoLogLayer {
            hub,
            out: Mutex::new(output),
            max: level(log.level),
            timestamp: log.timestamp,
            color: color && !file,
            started: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    tag: Option<String>,
    extra: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "tag" => self.tag = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.extra, " {name}={value:?}");
            }
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "tag" => self.tag = Some(value.to_string()),
            name => {
                let _ = write!(self.extra, " {name}={value}");
            }
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "id" {
            self.extra.push_str(&value.to_string());
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }
}

struct IdVisitor(Option<u64>);

impl Visit for IdVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "id" {
            self.0 = Some(value);
        }
    }
    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

fn level_name(l: &Level) -> (&'static str, &'static str) {
    match *l {
        Level::TRACE => ("TRACE", "37"),
        Level::DEBUG => ("DEBUG", "37"),
        Level::INFO => ("INFO", "36"),
        Level::WARN => ("WARN", "33"),
        Level::ERROR => ("ERROR", "31"),
    }
}

/// `-0700 2006-01-02 15:04:05` in UTC.
fn utc_timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "+0000 {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The 256-colour code Go derives from a connection id.
fn id_color(id: u64) -> u8 {
    (id as u8 % 215) + 16
}

impl<S> Layer<S> for GoLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "flow" {
            return;
        }
        let mut v = IdVisitor(None);
        attrs.record(&mut v);
        if let (Some(flow_id), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(FlowStart {
                id: flow_id,
                at: Instant::now(),
            });
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        metadata.is_span() || *metadata.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.max {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The outermost flow span: the flow's age counts from accept.
        let mut flow: Option<(u64, Instant)> = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<FlowStart>() {
                    flow = Some((f.id, f.at));
                    break;
                }
            }
        }
        let (name, code) = level_name(&level);
        let mut line = String::new();
        let file = self
            .out
            .lock()
            .map(|o| matches!(*o, Output::File(_)))
            .unwrap_or(false);
        let lvl = if self.color {
            format!("\x1b[{code}m{name}\x1b[0m")
        } else {
            name.to_string()
        };
        if self.timestamp {
            let _ = write!(line, "{} {lvl} ", utc_timestamp());
        } else if file {
            let _ = write!(line, "{lvl} ");
        } else {
            let _ = write!(line, "{lvl}[{:04}] ", self.started.elapsed().as_secs());
        }
        let mut payload = String::new();
        if let Some((id, at)) = flow {
            let ms = at.elapsed().as_millis();
            let elapsed = if ms < 1000 {
                format!("{ms}ms")
            } else {
                format!("{:.1}s", ms as f64 / 1000.0)
            };
            if self.color {
                let _ = write!(line, "[\x1b[38;5;{}m{id}\x1b[0m {elapsed}] ", id_color(id));
            } else {
                let _ = write!(line, "[{id} {elapsed}] ");
            }
            let _ = write!(payload, "[{id} {elapsed}] ");
        }
        let flow_part = payload.len();
        // Lines about sb itself ("sb started") carry no tag, as Go's do.
        let tag = fields
            .tag
            .unwrap_or_else(|| event.metadata().target().to_string());
        if tag != "sb" {
            let _ = write!(payload, "{tag}: ");
        }
        let _ = write!(payload, "{}{}", fields.message, fields.extra);
        line.push_str(&payload[flow_part..]);
        if self.hub.listened() {
            self.hub.publish(LogLine { level, payload });
        }
        line.push('\n');
        if let Ok(mut out) = self.out.lock() {
            let _ = match &mut *out {
                Output::Stderr => std::io::stderr().write_all(line.as_bytes()),
                Output::Stdout => std::io::stdout().write_all(line.as_bytes()),
                Output::File(f) => f.write_all(line.as_bytes()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_go_layout() {
        let t = utc_timestamp();
        assert_eq!(t.len(), "+0000 2006-01-02 15:04:05".len(), "{t}");
        assert!(t.starts_with("+0000 20"), "{t}");
    }
}
