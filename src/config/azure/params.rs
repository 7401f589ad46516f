//! Parameter values given by the operator, as `az deployment` takes them: a parameters file
//! (`azuredeploy.parameters.json`: `{ "parameters": { "NAME": { "value": ... } } }`) or
//! `NAME=VALUE` (the value is JSON when it parses as JSON, else a string).

use serde_json::Value;

use super::json::find_ci;
use super::ImportError;

/// The parameter values of a parameters file; `origin` names it in errors.
pub fn parse_parameters_file(
    text: &str,
    origin: &str,
) -> Result<Vec<(String, Value)>, ImportError> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        ImportError::new(
            origin,
            format!(
                "not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Some(obj) = root.as_object() else {
        return Err(ImportError::new(origin, "expected a JSON object"));
    };
    // The deployment parameters file has them under `parameters`; a bare object is accepted too.
    let params = match find_ci(obj, "parameters") {
        Some((_, p)) => p.as_object().ok_or_else(|| {
            ImportError::new(format!("{origin}: parameters"), "expected an object")
        })?,
        None => obj,
    };
    let mut out = Vec::new();
    for (name, p) in params {
        let field = format!("{origin}: parameters.{name}");
        let Some(po) = p.as_object() else {
            return Err(ImportError::new(field, "expected { \"value\": ... }"));
        };
        if let Some((_, v)) = find_ci(po, "value") {
            out.push((name.clone(), v.clone()));
        } else if find_ci(po, "reference").is_some() {
            return Err(ImportError::new(
                field,
                format!("a Key Vault reference is resolved only at deployment; give the value with --parameter {name}=VALUE"),
            ));
        } else {
            return Err(ImportError::new(field, "expected { \"value\": ... }"));
        }
    }
    Ok(out)
}

/// `NAME=VALUE`: the value as JSON when it parses (`3`, `true`, `"x"`), else as a string.
pub fn parse_parameter(s: &str) -> Result<(String, Value), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, e.g. vmCount=2, got {s:?}"))?;
    if name.is_empty() {
        return Err(format!("empty parameter name in {s:?}"));
    }
    let v = serde_json::from_str::<Value>(value)
        .ok()
        .filter(|v| !v.is_object() && !v.is_array())
        .unwrap_or_else(|| Value::String(value.to_string()));
    Ok((name.to_string(), v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_file_and_pairs() {
        let f = r#"{ "$schema": "x", "contentVersion": "1.0.0.0",
            "parameters": { "vmCount": { "value": 3 }, "lbName": { "value": "lb-a" } } }"#;
        let p = parse_parameters_file(f, "p.json").unwrap();
        assert_eq!(p[0], ("lbName".to_string(), json!("lb-a")));
        assert_eq!(p[1], ("vmCount".to_string(), json!(3)));
        let kv = r#"{ "parameters": { "pw": { "reference": { "keyVault": {} } } } }"#;
        assert!(parse_parameters_file(kv, "p.json")
            .unwrap_err()
            .message
            .contains("--parameter pw=VALUE"));
        assert_eq!(parse_parameter("n=2").unwrap(), ("n".into(), json!(2)));
        assert_eq!(
            parse_parameter("n=lb-a").unwrap(),
            ("n".into(), json!("lb-a"))
        );
        assert!(parse_parameter("=2").is_err());
    }
}
