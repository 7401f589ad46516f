//! Which load balancer of the input to import: the input may be a whole ARM template (array or,
//! in template language 2.0, object of resources), one resource, or `az network lb show`/`list`
//! output; with several load balancers, `--name` chooses.

use std::collections::BTreeSet;

use serde_json::Value;

use super::importer::{quoted_list, Importer};
use super::json::{find_ci, join, Node};
use super::{ImportError, LOAD_BALANCER_TYPE};

/// Whether `v` declares the load balancer resource type.
fn is_lb_type(v: &Value) -> bool {
    v.as_object()
        .and_then(|o| find_ci(o, "type"))
        .and_then(|(_, t)| t.as_str())
        .is_some_and(|t| t.eq_ignore_ascii_case(LOAD_BALANCER_TYPE))
}

/// Whether `v` is a load balancer, by type or (az CLI output) by its frontends.
fn looks_like_lb(v: &Value) -> bool {
    let n = Node::new(v, "");
    is_lb_type(v) || n.get("frontendIPConfigurations").is_some()
}

impl<'a> Importer<'a, '_> {
    /// Finds the load balancer to import; returns it and its name.
    pub(super) fn select(&mut self, root: &'a Value) -> Result<(Node<'a>, String), ImportError> {
        let candidates = self.candidates(root)?;
        if candidates.is_empty() {
            return Err(ImportError::new(
                "<root>",
                "the array holds no load balancer",
            ));
        }
        let named = self.named(candidates);
        let chosen = self.choose(named)?;
        self.lb_name = chosen.1.clone();
        self.keep_own_children();
        if let Some(nested) = chosen.0.v.as_object().and_then(|o| find_ci(o, "resources")) {
            let path = join(&chosen.0.path, nested.0);
            for (i, c) in nested.1.as_array().into_iter().flatten().enumerate() {
                self.children.push(Node::new(c, format!("{path}[{i}]")));
            }
        }
        Ok(chosen)
    }

    /// Keeps, of the top-level child resources (`lb/child`), those of the chosen load balancer;
    /// another load balancer's are not this import's business.
    fn keep_own_children(&mut self) {
        let children = std::mem::take(&mut self.children);
        for c in children {
            let name = c
                .get("name")
                .and_then(|n| self.ctx.value(n.v, 0).ok())
                .map(|v| v.to_text())
                .unwrap_or_default();
            let parent = name.split('/').next().unwrap_or("");
            if parent.eq_ignore_ascii_case(&self.lb_name) {
                self.children.push(c);
            }
        }
    }

    /// The load balancers of the input, whatever its form.
    fn candidates(&mut self, root: &'a Value) -> Result<Vec<Node<'a>>, ImportError> {
        if let Some(res) = Node::new(root, "").get("resources") {
            self.template_load_balancers(res)
        } else if let Some(arr) = root.as_array() {
            Ok(arr
                .iter()
                .enumerate()
                .filter(|(_, v)| looks_like_lb(v))
                .map(|(i, v)| Node::new(v, format!("[{i}]")))
                .collect())
        } else if looks_like_lb(root) {
            Ok(vec![Node::new(root, "")])
        } else {
            Err(ImportError::new(
                "<root>",
                format!("not an ARM template (no `resources`), a {LOAD_BALANCER_TYPE} resource (no `type`/`properties`) or `az network lb show` output (no `frontendIPConfigurations`)"),
            ))
        }
    }

    /// The load balancers among a template's `resources`; warns about top-level child resources.
    fn template_load_balancers(&mut self, res: Node<'a>) -> Result<Vec<Node<'a>>, ImportError> {
        // An array, or (template language 2.0) an object keyed by symbolic name.
        let entries: Vec<Node<'a>> = match res.v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, r)| Node::new(r, format!("{}[{i}]", res.path)))
                .collect(),
            Value::Object(o) => o
                .iter()
                .map(|(k, r)| Node::new(r, join(&res.path, k)))
                .collect(),
            _ => {
                return Err(ImportError::new(
                    res.path,
                    "expected an array (or object) of resources",
                ))
            }
        };
        let mut lbs = Vec::new();
        let mut types = BTreeSet::new();
        for node in entries {
            let r = node.v;
            let ty = node
                .get("type")
                .and_then(|t| t.v.as_str())
                .unwrap_or("")
                .to_string();
            if is_lb_type(r) {
                lbs.push(node);
            } else if ty
                .to_ascii_lowercase()
                .starts_with(&format!("{}/", LOAD_BALANCER_TYPE.to_ascii_lowercase()))
            {
                self.children.push(node);
            } else if !ty.is_empty() {
                types.insert(ty);
                self.resources.push(node);
            }
        }
        if lbs.is_empty() {
            return Err(ImportError::new(
                res.path,
                format!(
                    "no resource of type {LOAD_BALANCER_TYPE}; types found: {}",
                    if types.is_empty() {
                        "none".to_string()
                    } else {
                        types.into_iter().collect::<Vec<_>>().join(", ")
                    }
                ),
            ));
        }
        Ok(lbs)
    }

    /// Each candidate with its resource name (evaluated when it is an expression).
    fn named(&self, candidates: Vec<Node<'a>>) -> Vec<(Node<'a>, String)> {
        candidates
            .into_iter()
            .map(|c| {
                let name = match c.get("name") {
                    Some(n) => match self.ctx.value(n.v, 0) {
                        Ok(v) => v.to_text(),
                        // An unresolvable name only labels the output; keep the expression text.
                        Err(_) => n.v.as_str().unwrap_or("").to_string(),
                    },
                    None => String::new(),
                };
                (c, name)
            })
            .collect()
    }

    /// The candidate `--name` asks for, or the only one.
    fn choose(&self, named: Vec<(Node<'a>, String)>) -> Result<(Node<'a>, String), ImportError> {
        let names: Vec<String> = named.iter().map(|(_, n)| n.clone()).collect();
        match &self.opts.name {
            Some(want) => named
                .into_iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(want))
                .ok_or_else(|| {
                    ImportError::new(
                        "--name",
                        format!(
                            "no load balancer named \"{want}\"; the input has {}",
                            quoted_list(&names)
                        ),
                    )
                }),
            None if named.len() > 1 => Err(ImportError::new(
                "--name",
                format!(
                    "the input has {} load balancers ({}); choose one with --name",
                    named.len(),
                    quoted_list(&names)
                ),
            )),
            None => named
                .into_iter()
                .next()
                .ok_or_else(|| ImportError::new("<root>", "no load balancer in the input")),
        }
    }
}
