//! The TOML configuration model, its validation with precise errors, and compilation to a snapshot.
//!
//! [`Config::load`] / [`Config::from_str`] parse and validate a file and return either a valid
//! [`Config`] or every error found ([`ConfigErrors`]). Parsing happens in up to three passes:
//! 1. typed deserialization, then [`validate::validate`], which checks ranges, references,
//!    duplicates and conflicts: a valid text ends here;
//! 2. otherwise a schema-free parse that records the span of every value, to locate the errors
//!    (syntax errors stop here);
//! 3. if typed deserialization failed, every table entry is deserialized on its own so that all
//!    unknown keys, missing fields and wrong types are reported, not just the first.
//!
//! Compilation of a valid config into the data path's view is `crate::balance::Snapshot::compile`.

pub mod azure;
pub mod error;
pub mod model;
pub mod snat_plan;
pub mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;

use error::{PathSeg, SpanTree};
use toml::Spanned;

/// Top-level tables and whether each is an array of tables.
const TABLES: &[(&str, bool)] = &[
    ("appliance", false),
    ("dataplane", false),
    ("control", false),
    ("interfaces", true),
    ("frontends", true),
    ("backend_pools", true),
    ("probes", true),
    ("load_balancing_rules", true),
    ("inbound_nat_rules", true),
    ("outbound_rules", true),
    ("bgp", false),
];

/// Longest configuration file accepted, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// The file's text, or an error when it cannot be read, is not UTF-8 or is longer than
/// [`MAX_CONFIG_BYTES`].
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {MAX_CONFIG_BYTES} bytes (the limit)"),
        ));
    }
    Ok(text)
}

impl Config {
    /// Reads, parses and validates the file at `path`; errors are named after the path. A file
    /// longer than [`MAX_CONFIG_BYTES`] is refused without reading it all.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        match read_bounded(path) {
            Ok(text) => Config::from_str(&text, &origin),
            Err(e) => {
                let mut err = ConfigError::new("", format!("cannot read file: {e}"));
                err.origin = origin;
                Err(ConfigErrors(vec![err]))
            }
        }
    }

    /// Parses and validates `text`; `origin` names it in error messages (usually the file name).
    ///
    /// A valid text is parsed once; the span tree that locates errors (a second, schema-free
    /// parse) is built only when there is an error to locate.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        let typed = match toml::from_str::<Config>(text) {
            Ok(config) => {
                let errors = validate::validate(&config);
                if errors.is_empty() {
                    return Ok(config);
                }
                Ok(errors)
            }
            Err(first) => Err(first),
        };
        let tree: Spanned<SpanTree> = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let mut err = ConfigError::new(
                    "",
                    format!(
                        "TOML syntax error: {}",
                        e.message().trim().replace('\n', "; ")
                    ),
                );
                err.origin = origin.to_string();
                err.line_col = e.span().map(|s| error::line_col(text, s.start));
                return Err(ConfigErrors(vec![err]));
            }
        };
        let errors = match typed {
            Ok(errors) => errors,
            Err(first) => {
                let mut errors = structural_errors(text);
                if errors.is_empty() {
                    // The per-entry pass found nothing: report the parser's own error.
                    let path = first
                        .span()
                        .map(|s| SpanTree::path_at(&tree, s.start))
                        .unwrap_or_default();
                    errors.push(error_at_path(&path, first.message()));
                }
                errors
            }
        };
        Err(finish(errors, text, origin, &tree))
    }
}

/// Builds an error located by a document path (table, index, field...).
fn error_at_path(path: &[PathSeg], message: &str) -> ConfigError {
    let mut it = path.iter();
    let table = match it.next() {
        Some(PathSeg::Key(k)) => k.clone(),
        _ => "<root>".to_string(),
    };
    let mut err = ConfigError::new(&table, message.to_string());
    let rest: Vec<&PathSeg> = it.collect();
    let mut fields = rest.as_slice();
    if let Some(PathSeg::Index(i)) = fields.first() {
        err.index = Some(*i);
        fields = &fields[1..];
    }
    if !fields.is_empty() {
        err.field = Some(render_path(fields));
    }
    err
}

fn render_path(segs: &[&PathSeg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            PathSeg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Deserializes every table and entry on its own and reports every failure.
fn structural_errors(text: &str) -> Vec<ConfigError> {
    let Ok(root) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for (key, value) in &root {
        let Some((_, is_array)) = TABLES.iter().find(|(t, _)| t == key) else {
            let valid: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
            errors.push(ConfigError::new(
                key,
                format!("unknown table; valid tables: {}", valid.join(", ")),
            ));
            continue;
        };
        if *is_array {
            let Some(entries) = value.as_array() else {
                errors.push(ConfigError::new(
                    key,
                    format!("expected an array of tables ([[{key}]])"),
                ));
                continue;
            };
            for (i, entry) in entries.iter().enumerate() {
                let name = entry.get("name").and_then(|n| n.as_str());
                if let Some(msg) = check_entry(key, entry) {
                    errors.push(entry_error(key, Some((i, name)), &msg));
                }
            }
        } else if let Some(msg) = check_entry(key, value) {
            errors.push(entry_error(key, None, &msg));
        }
    }
    errors
}

/// Deserializes one entry of `table`; returns the error's display text on failure.
fn check_entry(table: &str, v: &toml::Value) -> Option<String> {
    fn t<T: serde::de::DeserializeOwned>(v: &toml::Value) -> Option<String> {
        v.clone().try_into::<T>().err().map(|e| e.to_string())
    }
    match table {
        "appliance" => t::<Appliance>(v),
        "dataplane" => t::<Dataplane>(v),
        "control" => t::<Control>(v),
        "interfaces" => t::<Interface>(v),
        "frontends" => t::<Frontend>(v),
        "backend_pools" => t::<BackendPool>(v),
        "probes" => t::<Probe>(v),
        "load_balancing_rules" => t::<LoadBalancingRule>(v),
        "inbound_nat_rules" => t::<InboundNatRule>(v),
        "outbound_rules" => t::<OutboundRule>(v),
        "bgp" => t::<Bgp>(v),
        _ => None,
    }
}

/// Turns a deserializer message (`MESSAGE\nin `a.b`\n`) into an error with a field.
fn entry_error(table: &str, entry: Option<(usize, Option<&str>)>, text: &str) -> ConfigError {
    let text = text.trim();
    let (message, key_path) = match text.rsplit_once("\nin `") {
        Some((m, rest)) => (m.trim(), Some(rest.trim_end_matches('`').to_string())),
        None => (text, None),
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|r| r.split('`').next())
            .map(str::to_string)
    };
    let mut err = ConfigError::new(table, message.replace('\n', "; "));
    if let Some((i, name)) = entry {
        err = err.entry(i, name);
    }
    let unknown = quoted("unknown field `");
    let missing = quoted("missing field `");
    let field = match (key_path, unknown.clone().or(missing.clone())) {
        (Some(p), Some(f)) => Some(format!("{p}.{f}")),
        (Some(p), None) => Some(p),
        (None, f) => f,
    };
    if let Some(f) = field {
        err = err.field(f);
    }
    if unknown.is_some() {
        err.message = err.message.replacen("unknown field", "unknown key", 1);
    } else if missing.is_some() {
        err.message = "required key is missing".to_string();
    }
    err
}

/// Fills in origin and line:column, and orders errors by position.
fn finish(
    mut errors: Vec<ConfigError>,
    text: &str,
    origin: &str,
    tree: &Spanned<SpanTree>,
) -> ConfigErrors {
    for e in &mut errors {
        e.origin = origin.to_string();
        if e.line_col.is_none() {
            e.line_col =
                SpanTree::span_of(tree, &e.path()).map(|(start, _)| error::line_col(text, start));
        }
    }
    errors.sort_by_key(|e| e.line_col.unwrap_or((usize::MAX, 0)));
    ConfigErrors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_a_valid_config_with_defaults() {
        let c = Config::from_str("", "empty.toml").unwrap();
        assert_eq!(c.appliance.name, "vipmux");
        assert_eq!(c.appliance.missing_flow, MissingFlow::Rehash);
        assert_eq!(c.dataplane.flow_table_capacity, 1 << 20);
        assert_eq!(c.control.metrics, "127.0.0.1:9469");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = Config::from_str("[appliance]\nname = \n", "s.toml").unwrap_err();
        assert_eq!(e.len(), 1);
        let s = e.to_string();
        assert!(s.starts_with("s.toml:2:"), "{s}");
        assert!(s.contains("TOML syntax error"), "{s}");
    }

    #[test]
    fn all_structural_errors_are_collected() {
        let text = "[appliance]\nbogus = 1\n\n[[frontends]]\nname = \"a\"\naddress = \"1.2.3\"\n\n[[frontends]]\nname = \"b\"\n";
        let e = Config::from_str(text, "t.toml").unwrap_err();
        let s = e.to_string();
        assert_eq!(e.len(), 3, "{s}");
        assert!(
            s.contains("t.toml:2:9: [appliance].bogus") || s.contains("t.toml:2:9: appliance"),
            "{s}"
        );
        assert!(s.contains("unknown key `bogus`"), "{s}");
        assert!(
            s.contains("frontends[0] (\"a\") address: invalid IP address \"1.2.3\""),
            "{s}"
        );
        assert!(
            s.contains("t.toml:8:1: frontends[1] (\"b\") address: required key is missing"),
            "{s}"
        );
    }
}
