//! Configuration errors: each names the file, table, entry, field, bad value and what is valid,
//! with the `line:column` of the offending text when the TOML parser knows it.
//!
//! Locations come from a span tree (`SpanTree`) built by a second, schema-free parse of the
//! same text with `toml::Spanned`, so validation errors found after deserialization can still
//! point at the line of the field (or of the entry, when the field is absent).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// One configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or origin name given to `Config::from_str`).
    pub origin: String,
    /// 1-based line and column of the offending text, when known.
    pub line_col: Option<(usize, usize)>,
    /// Table (`load_balancing_rules`, `appliance`, ...); empty for TOML syntax errors.
    pub table: String,
    /// Index of the entry in an array of tables.
    pub index: Option<usize>,
    /// Name of the entry, when it has one.
    pub entry: Option<String>,
    /// Field path inside the entry (`frontend_port`, `members[1].weight`, `target.member`).
    pub field: Option<String>,
    /// The bad value as written (TOML syntax), when there is one.
    pub value: Option<String>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl ConfigError {
    /// A new error about `table` with `message`; the other parts are added with the builders.
    pub fn new(table: &str, message: impl Into<String>) -> Self {
        ConfigError {
            origin: String::new(),
            line_col: None,
            table: table.to_string(),
            index: None,
            entry: None,
            field: None,
            value: None,
            message: message.into(),
        }
    }

    /// Sets the entry index and name.
    pub fn entry(mut self, index: usize, name: Option<&str>) -> Self {
        self.index = Some(index);
        self.entry = name.map(str::to_string);
        self
    }

    /// Sets the field path.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Sets the bad value (already rendered as TOML).
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// The path of the offending item for span lookup: table, index, then field segments.
    pub(crate) fn path(&self) -> Vec<PathSeg> {
        let mut p = Vec::new();
        if self.table.is_empty() {
            return p;
        }
        p.push(PathSeg::Key(self.table.clone()));
        if let Some(i) = self.index {
            p.push(PathSeg::Index(i));
        }
        if let Some(f) = &self.field {
            p.extend(parse_field_path(f));
        }
        p
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((l, c)) = self.line_col {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": ")?;
        if self.table.is_empty() {
            return write!(f, "{}", self.message);
        }
        if self.index.is_none() && self.field.is_none() && self.entry.is_none() {
            write!(f, "[{}]", self.table)?;
        } else {
            write!(f, "{}", self.table)?;
        }
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        if let Some(n) = &self.entry {
            write!(f, " (\"{n}\")")?;
        }
        if let Some(field) = &self.field {
            if self.index.is_none() && self.entry.is_none() {
                write!(f, ".{field}")?;
            } else {
                write!(f, " {field}")?;
            }
        }
        if let Some(v) = &self.value {
            write!(f, " = {v}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All errors of one file, in file order where known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One step of a path into the TOML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathSeg {
    /// A key of a table.
    Key(String),
    /// An index of an array.
    Index(usize),
}

/// Parses `members[1].weight` into `[Key(members), Index(1), Key(weight)]`.
pub(crate) fn parse_field_path(f: &str) -> Vec<PathSeg> {
    let mut out = Vec::new();
    for part in f.split('.') {
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            if b > 0 {
                out.push(PathSeg::Key(rest[..b].to_string()));
            }
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let end = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..end].parse() {
                    out.push(PathSeg::Index(i));
                }
                rest = stripped.get(end + 1..).unwrap_or("");
            }
        } else if !rest.is_empty() {
            out.push(PathSeg::Key(rest.to_string()));
        }
    }
    out
}

/// A schema-free tree of the document with the byte span of every value.
#[derive(Debug, Clone)]
pub(crate) enum SpanTree {
    /// A table (inline or not).
    Table(BTreeMap<String, Spanned<SpanTree>>),
    /// An array (inline or array of tables).
    Array(Vec<Spanned<SpanTree>>),
    /// Any scalar.
    Leaf,
}

impl<'de> Deserialize<'de> for SpanTree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpanTree;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<SpanTree, E> {
                Ok(SpanTree::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<SpanTree, E> {
                Ok(SpanTree::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<SpanTree, E> {
                Ok(SpanTree::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<SpanTree, E> {
                Ok(SpanTree::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<SpanTree, E> {
                Ok(SpanTree::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<SpanTree, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element::<Spanned<SpanTree>>()? {
                    v.push(x);
                }
                Ok(SpanTree::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<SpanTree, A::Error> {
                let mut m = BTreeMap::new();
                while let Some(k) = a.next_key::<String>()? {
                    let v = a.next_value::<Spanned<SpanTree>>()?;
                    m.insert(k, v);
                }
                Ok(SpanTree::Table(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl SpanTree {
    /// Span of the deepest existing node along `path` (the entry when the field is absent).
    pub(crate) fn span_of(root: &Spanned<SpanTree>, path: &[PathSeg]) -> Option<(usize, usize)> {
        let mut node = root;
        let mut best: Option<&Spanned<SpanTree>> = None;
        for seg in path {
            let next = match (node.get_ref(), seg) {
                (SpanTree::Table(m), PathSeg::Key(k)) => m.get(k),
                (SpanTree::Array(v), PathSeg::Index(i)) => v.get(*i),
                _ => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    best = Some(n);
                }
                None => break,
            }
        }
        best.map(|n| (n.span().start, n.span().end))
    }

    /// The deepest path whose value contains byte `offset` (used to place parser errors).
    pub(crate) fn path_at(root: &Spanned<SpanTree>, offset: usize) -> Vec<PathSeg> {
        let mut path = Vec::new();
        let mut node = root;
        loop {
            let next = match node.get_ref() {
                SpanTree::Table(m) => m
                    .iter()
                    .find(|(_, v)| v.span().contains(&offset))
                    .map(|(k, v)| (PathSeg::Key(k.clone()), v)),
                SpanTree::Array(v) => v
                    .iter()
                    .enumerate()
                    .find(|(_, v)| v.span().contains(&offset))
                    .map(|(i, v)| (PathSeg::Index(i), v)),
                SpanTree::Leaf => None,
            };
            match next {
                Some((seg, n)) => {
                    path.push(seg);
                    node = n;
                }
                None => return path,
            }
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_parse() {
        assert_eq!(
            parse_field_path("members[1].weight"),
            vec![
                PathSeg::Key("members".into()),
                PathSeg::Index(1),
                PathSeg::Key("weight".into())
            ]
        );
        assert_eq!(
            parse_field_path("target.member"),
            vec![PathSeg::Key("target".into()), PathSeg::Key("member".into())]
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 11), (2, 6));
    }

    #[test]
    fn display_names_everything() {
        let mut e = ConfigError::new("load_balancing_rules", "must be 1..=65535")
            .entry(1, Some("web"))
            .field("frontend_port")
            .value("70000");
        e.origin = "x.toml".into();
        e.line_col = Some((3, 17));
        assert_eq!(
            e.to_string(),
            "x.toml:3:17: load_balancing_rules[1] (\"web\") frontend_port = 70000: must be 1..=65535"
        );
    }
}
