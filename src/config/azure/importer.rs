//! The importer's state (options, warnings, notes, placeholder count) and typed reading of
//! template fields: every accessor evaluates ARM expressions and names the JSON path on error.

use std::net::IpAddr;

use super::expr::{last_segment, Ctx, Val};
use super::json::{join, Node};
use super::{ImportError, ImportOptions};

/// One import in progress.
pub(super) struct Importer<'a, 'o> {
    /// The template's variables and parameters.
    pub(super) ctx: Ctx<'a>,
    /// The operator's options.
    pub(super) opts: &'o ImportOptions,
    /// See [`super::Imported::warnings`].
    pub(super) warnings: Vec<String>,
    /// See [`super::Imported::notes`].
    pub(super) notes: Vec<String>,
    /// See [`super::Imported::placeholders`].
    pub(super) placeholders: usize,
    /// The name of the load balancer being imported (once selected).
    pub(super) lb_name: String,
    /// The template's resources (network interfaces and scale sets are read for membership).
    pub(super) resources: Vec<Node<'a>>,
    /// Child resources of the load balancer (`inboundNatRules`, `backendAddressPools`), whether
    /// top-level (`lb/name`) or nested in its `resources`.
    pub(super) children: Vec<Node<'a>>,
}

/// `"a", "b"`, for messages.
pub(super) fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'a, 'o> Importer<'a, 'o> {
    /// An importer of a template whose variables and parameters are `ctx`.
    pub(super) fn new(ctx: Ctx<'a>, opts: &'o ImportOptions) -> Self {
        Importer {
            ctx,
            opts,
            warnings: Vec::new(),
            notes: Vec::new(),
            placeholders: 0,
            lb_name: String::new(),
            resources: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Records an input that is not translated: a placeholder (counted, so that `--strict`
    /// fails) whose reason the output carries as a comment.
    pub(super) fn untranslated(&mut self, m: impl Into<String>) {
        self.placeholders += 1;
        self.warnings.push(format!("NOT TRANSLATED: {}", m.into()));
    }

    /// Records a warning: something needs the operator.
    pub(super) fn warn(&mut self, m: impl Into<String>) {
        self.warnings.push(m.into());
    }

    /// Records a note: an Azure setting that vipmux ignores or maps differently.
    pub(super) fn note(&mut self, m: impl Into<String>) {
        self.notes.push(m.into());
    }

    /// A string field (an expression is evaluated; a number or boolean becomes its text).
    pub(super) fn string(&self, n: &Node) -> Result<String, ImportError> {
        match self.ctx.value(n.v, 0) {
            Ok(Val::Str(s)) => Ok(s),
            Ok(v) => Ok(v.to_text()),
            Err(m) => Err(ImportError::new(n.path.clone(), m)),
        }
    }

    /// The string field `key` of `parent`, if present.
    pub(super) fn opt_string(
        &self,
        parent: &Node,
        key: &str,
    ) -> Result<Option<String>, ImportError> {
        parent.get(key).map(|n| self.string(&n)).transpose()
    }

    /// The `name` of a sub-resource; `what` says which kind in the error. A child resource's
    /// `parent/child` name is its last segment.
    pub(super) fn name_of(&self, n: &Node, what: &str) -> Result<String, ImportError> {
        match self.opt_string(n, "name")? {
            Some(s) if !s.trim_end_matches('/').is_empty() => {
                Ok(last_segment(&s).unwrap_or_default())
            }
            _ => Err(ImportError::new(
                join(&n.path, "name"),
                format!("every {what} needs a name"),
            )),
        }
    }

    /// The non-negative integer field `key` of `parent`, if present.
    pub(super) fn opt_u32(&self, parent: &Node, key: &str) -> Result<Option<u32>, ImportError> {
        let Some(n) = parent.get(key) else {
            return Ok(None);
        };
        let v = self
            .ctx
            .value(n.v, 0)
            .map_err(|m| ImportError::new(n.path.clone(), m))?;
        let num = match &v {
            Val::Num(x) => Some(*x),
            Val::Str(s) => s.trim().parse::<i64>().ok(),
            Val::Bool(_) => None,
        };
        match num.and_then(|x| u32::try_from(x).ok()) {
            Some(x) => Ok(Some(x)),
            None => Err(ImportError::new(
                n.path,
                format!("expected a non-negative integer, found {:?}", v.to_text()),
            )),
        }
    }

    /// The boolean field `key` of `parent` (`true`/`false` strings too), if present.
    pub(super) fn opt_bool(&self, parent: &Node, key: &str) -> Result<Option<bool>, ImportError> {
        let Some(n) = parent.get(key) else {
            return Ok(None);
        };
        let v = self
            .ctx
            .value(n.v, 0)
            .map_err(|m| ImportError::new(n.path.clone(), m))?;
        match v {
            Val::Bool(b) => Ok(Some(b)),
            Val::Str(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Val::Str(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            other => Err(ImportError::new(
                n.path,
                format!("expected true or false, found {:?}", other.to_text()),
            )),
        }
    }

    /// The name a reference `parent.key.id` points at, with the path of the id.
    pub(super) fn ref_name(
        &self,
        parent: &Node,
        key: &str,
    ) -> Result<Option<(String, String)>, ImportError> {
        let Some(r) = parent.get(key) else {
            return Ok(None);
        };
        self.ref_of(&r).map(Some)
    }

    /// The name a reference object (`{ "id": ... }`) points at, with the path of the id.
    pub(super) fn ref_of(&self, r: &Node) -> Result<(String, String), ImportError> {
        let Some(id) = r.get("id") else {
            return Err(ImportError::new(
                r.path.clone(),
                "a reference needs an `id`",
            ));
        };
        let Some(raw) = id.v.as_str() else {
            return Err(ImportError::new(id.path, "expected the id as a string"));
        };
        match self.ctx.id_name(raw) {
            Ok(n) => Ok((n, id.path)),
            Err(m) => Err(ImportError::new(id.path, m)),
        }
    }

    /// Maps an enum-valued field through `table` (Azure value, vipmux value).
    pub(super) fn enum_field(
        &self,
        parent: &Node,
        key: &str,
        table: &[(&str, &'static str)],
    ) -> Result<Option<&'static str>, ImportError> {
        let Some(n) = parent.get(key) else {
            return Ok(None);
        };
        let s = self.string(&n)?;
        match table.iter().find(|(a, _)| a.eq_ignore_ascii_case(&s)) {
            Some((_, v)) => Ok(Some(v)),
            None => Err(ImportError::new(
                n.path,
                format!(
                    "unsupported value {s:?}; valid: {}",
                    table.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// `v`, or an error naming the missing `parent.key`.
    pub(super) fn required<T>(
        &self,
        v: Option<T>,
        parent: &Node,
        key: &str,
    ) -> Result<T, ImportError> {
        v.ok_or_else(|| ImportError::new(parent.path_of(key), "required property is missing"))
    }

    /// Checks that `name` (from the reference at `path`) is one of `defined`, case-insensitively
    /// as Azure matches names; returns the defined spelling.
    pub(super) fn check_ref(
        &self,
        name: &str,
        path: &str,
        what: &str,
        defined: &[String],
    ) -> Result<String, ImportError> {
        if let Some(d) = find_name(defined, name) {
            Ok(d.to_string())
        } else {
            Err(ImportError::new(
                path,
                format!(
                    "refers to {what} \"{name}\", which the load balancer does not define; its {what}s: {}",
                    if defined.is_empty() {
                        "none".to_string()
                    } else {
                        quoted_list(defined)
                    }
                ),
            ))
        }
    }

    /// The frontend addresses given on the command line.
    pub(super) fn opt_overrides(&self) -> impl Iterator<Item = &(String, IpAddr)> {
        self.opts.frontend_addresses.iter()
    }
}

/// The element of `names` equal to `name` ignoring ASCII case (Azure's names are).
pub(super) fn find_name<'n>(names: &'n [String], name: &str) -> Option<&'n str> {
    names
        .iter()
        .find(|d| d.eq_ignore_ascii_case(name))
        .map(String::as_str)
}

/// `nic/ipconfig` from a NIC IP configuration id (`.../networkInterfaces/NIC/ipConfigurations/IPC`).
pub(super) fn nic_label(id: &str) -> String {
    let segs: Vec<&str> = id.trim_end_matches('/').split('/').collect();
    match segs
        .iter()
        .position(|s| s.eq_ignore_ascii_case("networkInterfaces"))
    {
        Some(i) if i + 1 < segs.len() => {
            let nic = segs[i + 1];
            match segs.last() {
                Some(ipc) if segs.len() > i + 3 => format!("{nic}/{ipc}"),
                _ => nic.to_string(),
            }
        }
        _ => last_segment(id).unwrap_or_else(|| "(unnamed)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_labels() {
        assert_eq!(
            nic_label("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1"),
            "vm1-nic/ipconfig1"
        );
        assert_eq!(nic_label("weird"), "weird");
    }
}
