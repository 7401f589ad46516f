//! Copy loops, expanded before anything is read: a resource with `copy` becomes `count`
//! resources, and a `copy` array inside an object (property iteration) becomes the arrays it
//! generates. `copyIndex()` is replaced in the copies by the iteration's number, so that the
//! rest of the importer sees the template as it would be deployed.

use std::cell::Cell;

use serde_json::{Map, Value};

use super::expr::Ctx;
use super::json::{find_ci, join};
use super::ImportError;

/// The most copies a loop may make (Azure's own limit).
const MAX_COPIES: i64 = 800;
/// The most copies all the loops of one input may make together (nested loops multiply).
const MAX_TOTAL_COPIES: i64 = 20_000;

/// `root` with its copy loops expanded.
pub(super) fn expand(root: &Value, ctx: &Ctx) -> Result<Value, ImportError> {
    walk(
        root,
        "",
        &Expansion {
            ctx,
            budget: Cell::new(MAX_TOTAL_COPIES),
        },
    )
}

/// The expression context and what is left of the copy budget.
struct Expansion<'c, 'a> {
    ctx: &'c Ctx<'a>,
    budget: Cell<i64>,
}

/// Expands the loops of `v` (at `path`) and of everything under it.
fn walk(v: &Value, path: &str, ctx: &Expansion) -> Result<Value, ImportError> {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, x) in o {
                let p = join(path, k);
                if k.eq_ignore_ascii_case("copy") && x.is_array() {
                    property_loops(x, &p, ctx, &mut out)?;
                } else if k.eq_ignore_ascii_case("resources") {
                    out.insert(k.clone(), resources(x, &p, ctx)?);
                } else {
                    out.insert(k.clone(), walk(x, &p, ctx)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| walk(x, &format!("{path}[{i}]"), ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// A `resources` array (or object of symbolic names) with each resource loop unrolled.
fn resources(v: &Value, path: &str, ctx: &Expansion) -> Result<Value, ImportError> {
    match v {
        Value::Array(a) => {
            let mut out = Vec::new();
            for (i, r) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match resource_loop(r, &p, ctx)? {
                    Some(copies) => out.extend(copies),
                    None => out.push(walk(r, &p, ctx)?),
                }
            }
            Ok(Value::Array(out))
        }
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, r) in o {
                let p = join(path, k);
                match resource_loop(r, &p, ctx)? {
                    Some(copies) => {
                        for (i, c) in copies.into_iter().enumerate() {
                            out.insert(format!("{k}[{i}]"), c);
                        }
                    }
                    None => {
                        out.insert(k.clone(), walk(r, &p, ctx)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// The copies of a resource with a `copy` object, or `None` when it has none.
fn resource_loop(
    r: &Value,
    path: &str,
    ctx: &Expansion,
) -> Result<Option<Vec<Value>>, ImportError> {
    let Some(obj) = r.as_object() else {
        return Ok(None);
    };
    let Some((ck, copy)) = find_ci(obj, "copy").filter(|(_, c)| c.is_object()) else {
        return Ok(None);
    };
    let cpath = join(path, ck);
    let name = copy
        .as_object()
        .and_then(|c| find_ci(c, "name"))
        .and_then(|(_, n)| n.as_str())
        .map(str::to_string);
    let count = count_of(copy, &cpath, ctx)?;
    let mut body = obj.clone();
    body.remove(ck.as_str());
    let body = Value::Object(body);
    let mut out = Vec::new();
    for i in 0..count {
        let c = substitute(&body, name.as_deref(), true, i);
        out.push(walk(&c, path, ctx)?);
    }
    Ok(Some(out))
}

/// Expands a `copy` array of property loops into `out` (each loop's `name` gets its array).
fn property_loops(
    loops: &Value,
    path: &str,
    ctx: &Expansion,
    out: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    for (i, l) in loops.as_array().into_iter().flatten().enumerate() {
        let lpath = format!("{path}[{i}]");
        let Some(name) = l
            .as_object()
            .and_then(|o| find_ci(o, "name"))
            .and_then(|(_, n)| n.as_str())
        else {
            return Err(ImportError::new(
                join(&lpath, "name"),
                "a property copy loop needs the name of the property it generates",
            ));
        };
        let count = count_of(l, &lpath, ctx)?;
        let input = l
            .as_object()
            .and_then(|o| find_ci(o, "input"))
            .map(|(_, v)| v)
            .ok_or_else(|| {
                ImportError::new(
                    join(&lpath, "input"),
                    "a property copy loop needs its input",
                )
            })?;
        let mut items = Vec::new();
        for n in 0..count {
            let c = substitute(input, Some(name), false, n);
            items.push(walk(&c, &format!("{}[{n}]", join(path, name)), ctx)?);
        }
        match out.get_mut(name).and_then(Value::as_array_mut) {
            Some(existing) => existing.extend(items),
            None => {
                out.insert(name.to_string(), Value::Array(items));
            }
        }
    }
    Ok(())
}

/// The `count` of a loop, evaluated (0..=800).
fn count_of(copy: &Value, path: &str, ctx: &Expansion) -> Result<i64, ImportError> {
    let Some((k, c)) = copy.as_object().and_then(|o| find_ci(o, "count")) else {
        return Err(ImportError::new(
            join(path, "count"),
            "a copy loop needs a count",
        ));
    };
    let cpath = join(path, k);
    let n = match ctx.ctx.value(c, 0) {
        Ok(v) => v.to_text().trim().parse::<i64>().map_err(|_| {
            ImportError::new(
                &cpath,
                format!("expected an integer, found {:?}", v.to_text()),
            )
        })?,
        Err(m) => return Err(ImportError::new(&cpath, m)),
    };
    if !(0..=MAX_COPIES).contains(&n) {
        return Err(ImportError::new(
            cpath,
            format!("{n} copies: Azure allows 0..={MAX_COPIES}"),
        ));
    }
    let left = ctx.budget.get() - n;
    if left < 0 {
        return Err(ImportError::new(
            cpath,
            format!("the copy loops of the input make more than {MAX_TOTAL_COPIES} copies"),
        ));
    }
    ctx.budget.set(left);
    Ok(n)
}

/// `v` with the `copyIndex()` calls of the loop `name` replaced by `index` (plus their offset);
/// `unnamed` also replaces `copyIndex()` without a loop name (resource loops).
fn substitute(v: &Value, name: Option<&str>, unnamed: bool, index: i64) -> Value {
    match v {
        Value::String(s) if s.trim_start().starts_with('[') => {
            Value::String(replace_calls(s, name, unnamed, index))
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, name, unnamed, index))
                .collect(),
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, name, unnamed, index)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The text `s` with each matching `copyIndex(...)` replaced by its number.
fn replace_calls(s: &str, name: Option<&str>, unnamed: bool, index: i64) -> String {
    const CALL: &str = "copyindex(";
    let lower = s.to_ascii_lowercase();
    let mut out = String::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find(CALL) {
        let start = at + found;
        let args_at = start + CALL.len();
        let Some(close) = s[args_at..].find(')') else {
            break;
        };
        let args = &s[args_at..args_at + close];
        out.push_str(&s[at..start]);
        match copy_value(args, name, unnamed, index) {
            Some(n) => out.push_str(&n.to_string()),
            None => out.push_str(&s[start..args_at + close + 1]),
        }
        at = args_at + close + 1;
    }
    out.push_str(&s[at..]);
    out
}

/// The value of `copyIndex(args)` in the loop `name` at `index`, or `None` when the call
/// belongs to another loop (or its arguments are not literals).
fn copy_value(args: &str, name: Option<&str>, unnamed: bool, index: i64) -> Option<i64> {
    let parts: Vec<&str> = args
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let (loop_name, offset) = match parts.as_slice() {
        [] => (None, "0"),
        [one] if one.starts_with('\'') => (Some(*one), "0"),
        [one] => (None, *one),
        [n, off] => (Some(*n), *off),
        _ => return None,
    };
    let offset: i64 = offset.parse().ok()?;
    match loop_name {
        None if unnamed => Some(index + offset),
        None => None,
        Some(l) => {
            let l = l.trim_matches('\'');
            name.filter(|n| n.eq_ignore_ascii_case(l))
                .map(|_| index + offset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn copy_index_forms() {
        assert_eq!(
            replace_calls("[concat('nic', copyIndex())]", None, true, 2),
            "[concat('nic', 2)]"
        );
        assert_eq!(
            replace_calls(
                "[concat('r', copyIndex('rules', 1), copyIndex(5))]",
                Some("Rules"),
                false,
                0
            ),
            "[concat('r', 1, copyIndex(5))]"
        );
    }

    #[test]
    fn resource_and_property_loops_unroll() {
        let t = json!({
            "parameters": { "n": { "type": "int", "defaultValue": 2 } },
            "resources": [{ "type": "x", "name": "[concat('nic', copyIndex(1))]",
                "copy": { "name": "nics", "count": "[parameters('n')]" },
                "properties": { "copy": [{ "name": "ipConfigurations", "count": 2,
                    "input": { "name": "[concat('ipc', copyIndex('ipConfigurations'))]" } }] } }]
        });
        let ctx = Ctx::of(&t, &[]);
        let e = expand(&t, &ctx).unwrap();
        let r = e["resources"].as_array().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1]["name"], "[concat('nic', 2)]");
        assert_eq!(
            r[0]["properties"]["ipConfigurations"][1]["name"],
            "[concat('ipc', 1)]"
        );
        assert!(r[0].get("copy").is_none());
    }

    #[test]
    fn nested_loops_have_a_budget() {
        let t = json!({ "resources": [{ "type": "x", "name": "n",
            "copy": { "name": "a", "count": 800 },
            "properties": { "copy": [{ "name": "p", "count": 800, "input": {} }] } }] });
        let e = expand(&t, &Ctx::of(&t, &[])).unwrap_err();
        assert!(e.message.contains("more than 20000 copies"), "{e}");
    }
}
