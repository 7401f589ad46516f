//! Logging setup: `tracing` events to stderr, human-readable or one JSON object per line.
//!
//! The filter comes from `VIPMUX_LOG`, else `RUST_LOG`, else the level given by the caller; each
//! uses `tracing-subscriber`'s env-filter syntax (e.g. `info,vipmux::control=debug`).
//!
//! Under systemd (stderr connected to the journal: `JOURNAL_STREAM` set) human lines carry no
//! timestamp (the journal keeps its own) and no colours, and start with the level as a syslog
//! priority prefix (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug and trace), which journald
//! stores as the entry's priority.

use std::fmt;
use std::str::FromStr;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Environment variable systemd sets when stderr is connected to the journal.
pub const JOURNAL_ENV: &str = "JOURNAL_STREAM";

/// Environment variable read first for the log filter.
pub const LOG_ENV: &str = "VIPMUX_LOG";

/// Output format of the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "human" | "text" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}: expected \"human\" or \"json\""
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// The filter directive in force: `vipmux_log`, else `rust_log`, else `level` (empty values skipped).
pub fn filter_directive(level: &str, vipmux_log: Option<&str>, rust_log: Option<&str>) -> String {
    [vipmux_log, rust_log]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(level)
        .to_string()
}

/// Install the global subscriber writing to stderr in `format`, filtered as [`filter_directive`]
/// with the process environment. Fails on an invalid directive or if a subscriber is already set.
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), String> {
    let vipmux_log = std::env::var(LOG_ENV).ok();
    let rust_log = std::env::var("RUST_LOG").ok();
    let directive = filter_directive(level, vipmux_log.as_deref(), rust_log.as_deref());
    let filter =
        EnvFilter::try_new(&directive).map_err(|e| format!("log filter {directive:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human if under_journal() => builder
            .with_ansi(false)
            .event_format(JournalFormat::default())
            .try_init(),
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Whether stderr goes to the systemd journal (`JOURNAL_STREAM` set and not empty).
pub fn under_journal() -> bool {
    std::env::var_os(JOURNAL_ENV).is_some_and(|v| !v.is_empty())
}

/// The syslog priority prefix journald reads from the start of a line for `level`.
pub fn syslog_prefix(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// Prefix for a line printed outside `tracing` at error level: `<3>` under the journal, else
/// nothing.
pub fn error_line_prefix() -> &'static str {
    if under_journal() {
        syslog_prefix(Level::ERROR)
    } else {
        ""
    }
}

/// Print `text` to stderr at error level outside `tracing`: each line gets the `<3>` prefix under
/// the journal (so a multi-line error is one error entry per line), nothing otherwise.
pub fn eprint_error(text: &str) {
    let prefix = error_line_prefix();
    for line in text.lines() {
        eprintln!("{prefix}{line}");
    }
}

/// Human lines for the journal: priority prefix, no timestamp, no colours.
#[derive(Debug)]
struct JournalFormat {
    inner: Format<tracing_subscriber::fmt::format::Full, ()>,
}

impl Default for JournalFormat {
    fn default() -> Self {
        JournalFormat {
            inner: Format::default().without_time().with_ansi(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(syslog_prefix(*event.metadata().level()))?;
        self.inner.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_precedence() {
        assert_eq!(filter_directive("info", None, None), "info");
        assert_eq!(filter_directive("info", None, Some("debug")), "debug");
        assert_eq!(
            filter_directive("info", Some("warn"), Some("debug")),
            "warn"
        );
        assert_eq!(filter_directive("info", Some("  "), Some("trace")), "trace");
    }

    #[test]
    fn syslog_priorities() {
        assert_eq!(syslog_prefix(Level::ERROR), "<3>");
        assert_eq!(syslog_prefix(Level::WARN), "<4>");
        assert_eq!(syslog_prefix(Level::INFO), "<6>");
        assert_eq!(syslog_prefix(Level::TRACE), "<7>");
    }

    #[test]
    fn journal_lines_have_priority_and_no_time_or_colour() {
        use std::sync::{Arc, Mutex};
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(JournalFormat::default())
            .with_writer(move || SinkWriter(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(port = 1, "link down");
            tracing::info!("forwarding");
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("<3>ERROR "), "{text}");
        assert!(lines[0].contains("link down port=1"), "{text}");
        assert!(lines[1].starts_with("<6> INFO "), "{text}");
        assert!(!text.contains('\x1b'), "colour codes in {text}");
    }

    /// A writer appending to a shared buffer.
    struct SinkWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SinkWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("human".parse::<LogFormat>(), Ok(LogFormat::Human));
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::Json.to_string(), "json");
    }

    #[test]
    fn init_twice_fails_cleanly() {
        // Whether or not another test installed a global subscriber first, a second install must
        // return an error rather than panic.
        let _ = init_logging(LogFormat::Json, "warn");
        assert!(init_logging(LogFormat::Human, "info").is_err());
    }
}
