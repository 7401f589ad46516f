//! Logging setup: `tracing` events to stderr, human-readable or one JSON object per line.
//!
//! The filter comes from `VIPMUX_LOG`, else `RUST_LOG`, else the level given by the caller; each
//! uses `tracing-subscriber`'s env-filter syntax (e.g. `info,vipmux::control=debug`).

use std::fmt;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

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
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
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
