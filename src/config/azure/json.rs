//! JSON navigation: a value with its path, so that every error names the field at fault.
//!
//! Azure spells the same property differently in templates and in the az CLI's output
//! (`frontendIPConfigurations`, `frontendIpConfigurations`), and sub-resources carry their fields
//! either under `properties` or directly; [`Node::get`] hides both differences.

use serde_json::{Map, Value};

use super::ImportError;

/// A JSON value with its path, for error messages.
#[derive(Debug, Clone)]
pub(super) struct Node<'a> {
    /// The value.
    pub(super) v: &'a Value,
    /// Its JSON path (`resources[1].properties.probes[0]`); empty at the root.
    pub(super) path: String,
}

/// `path.key`, or `key` at the root.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `key` in `obj`, exactly or else case-insensitively.
pub(super) fn find_ci<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Option<(&'a String, &'a Value)> {
    obj.get_key_value(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
}

impl<'a> Node<'a> {
    /// `v` at `path`.
    pub(super) fn new(v: &'a Value, path: impl Into<String>) -> Self {
        Node {
            v,
            path: path.into(),
        }
    }

    /// `key` under `properties`, else directly on the object (case-insensitive); null = absent.
    pub(super) fn get(&self, key: &str) -> Option<Node<'a>> {
        let obj = self.v.as_object()?;
        if let Some((pk, props)) = find_ci(obj, "properties") {
            if let Some((k, v)) = props.as_object().and_then(|p| find_ci(p, key)) {
                if !v.is_null() {
                    return Some(Node::new(v, join(&join(&self.path, pk), k)));
                }
            }
        }
        find_ci(obj, key)
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| Node::new(v, join(&self.path, k)))
    }

    /// The path a missing `key` would have (under `properties` when the object has them).
    pub(super) fn path_of(&self, key: &str) -> String {
        match self.v.as_object().and_then(|o| find_ci(o, "properties")) {
            Some((pk, _)) => join(&join(&self.path, pk), key),
            None => join(&self.path, key),
        }
    }

    /// The elements of the array `key`; absent = empty.
    pub(super) fn items(&self, key: &str) -> Result<Vec<Node<'a>>, ImportError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(n) => match n.v.as_array() {
                Some(a) => Ok(a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Node::new(v, format!("{}[{i}]", n.path)))
                    .collect()),
                None => Err(ImportError::new(n.path, "expected an array")),
            },
        }
    }
}
