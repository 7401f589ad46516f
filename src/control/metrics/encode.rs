//! The Prometheus text exposition format (0.0.4): an encoder that groups samples into families,
//! and the escaping of names, label values and help texts.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic counter (name should end in `_total`).
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// No type information.
    Untyped,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A value a sample can carry: integers are written exactly, floats in Prometheus notation.
pub trait PromValue {
    /// Append the value's text form to `out`.
    fn write_to(&self, out: &mut String);
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl PromValue for $t {
            fn write_to(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64, usize, i32, i64);

impl PromValue for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl PromValue for bool {
    fn write_to(&self, out: &mut String) {
        out.push(if *self { '1' } else { '0' });
    }
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    body: String,
}

/// Builds a text exposition: families (one `# HELP` and `# TYPE` each) and their samples.
///
/// Selecting a family that already exists appends to it, so samples of one family stay together
/// whatever order the caller emits them in. Invalid characters in metric and label names become `_`.
#[derive(Debug, Default)]
pub struct Encoder {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    current: Option<usize>,
}

impl Encoder {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Select (creating if new) the family `name` of type `kind` with `help`; later samples go to it.
    /// For an existing family, the first type and help text are kept.
    pub fn family(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Self {
        let name = sanitize_name(name, true);
        let idx = match self.index.get(&name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.clone(),
                    help: help.to_string(),
                    kind,
                    body: String::new(),
                });
                self.index.insert(name, self.families.len() - 1);
                self.families.len() - 1
            }
        };
        self.current = Some(idx);
        self
    }

    /// Add a sample with `labels` to the selected family (ignored if no family is selected).
    pub fn sample<V: PromValue>(&mut self, labels: &[(&str, &str)], value: V) -> &mut Self {
        let Some(idx) = self.current else { return self };
        let fam = &mut self.families[idx];
        fam.body.push_str(&fam.name);
        if !labels.is_empty() {
            fam.body.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    fam.body.push(',');
                }
                fam.body.push_str(&sanitize_name(k, false));
                fam.body.push_str("=\"");
                escape_label_value(v, &mut fam.body);
                fam.body.push('"');
            }
            fam.body.push('}');
        }
        fam.body.push(' ');
        value.write_to(&mut fam.body);
        fam.body.push('\n');
        self
    }

    /// Shorthand: select counter family `name` and add one sample.
    pub fn counter<V: PromValue>(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: V) {
        self.family(name, MetricType::Counter, help)
            .sample(labels, v);
    }

    /// Shorthand: select gauge family `name` and add one sample.
    pub fn gauge<V: PromValue>(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: V) {
        self.family(name, MetricType::Gauge, help).sample(labels, v);
    }

    /// The exposition text (families in first-use order; families without samples still listed).
    pub fn finish(self) -> String {
        let mut out = String::new();
        for f in &self.families {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            escape_help(&f.help, &mut out);
            out.push('\n');
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            out.push_str(&f.body);
        }
        out
    }
}

/// Replace characters not allowed in a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or a label name
/// (`[a-zA-Z_][a-zA-Z0-9_]*`) with `_`.
pub fn sanitize_name(name: &str, metric: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphabetic()
            || c == '_'
            || (metric && c == ':')
            || (i > 0 && c.is_ascii_digit());
        if ok {
            out.push(c);
        } else if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Escape a label value: backslash, double quote and newline.
pub fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escape a HELP text: backslash and newline.
pub fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Something that writes the current metrics into an [`Encoder`]; called once per scrape, from the
/// metrics thread.
pub trait MetricsSource: Send + Sync {
    /// Write every family and sample of the current state.
    fn render(&self, enc: &mut Encoder);
}

/// Render `source` into a complete exposition text.
pub fn render_text(source: &dyn MetricsSource) -> String {
    let mut enc = Encoder::new();
    source.render(&mut enc);
    enc.finish()
}
