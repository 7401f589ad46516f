//! ARM template expressions, for the small subset that names things.
//!
//! String and number literals, `variables()` and `parameters()` (literal values and default
//! values), `resourceId()` and its siblings (the last name argument), `concat()`, `format()` and
//! a few conversions. Anything else is known only at deployment and is an error naming it.

use serde_json::{Map, Value};

use super::json::find_ci;

/// A parsed ARM template expression (the subset that matters for names and numbers).
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// A string literal.
    Str(String),
    /// An integer literal.
    Num(i64),
    /// A function call with its arguments.
    Call(String, Vec<Expr>),
    /// Property or index access (`reference(...).id`, `x[0]`): not evaluated.
    Access(Box<Expr>),
}

/// A value an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    /// A string.
    Str(String),
    /// An integer.
    Num(i64),
    /// A boolean.
    Bool(bool),
}

impl Val {
    /// The value as text (`42`, `true`, the string itself).
    pub(super) fn to_text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Num(n) => n.to_string(),
            Val::Bool(b) => b.to_string(),
        }
    }
}

/// A recursive-descent parser of one expression (the text between `[` and `]`).
struct ExprParser<'s> {
    s: &'s [u8],
    i: usize,
}

impl ExprParser<'_> {
    fn parse(src: &str) -> Result<Expr, String> {
        let mut p = ExprParser {
            s: src.as_bytes(),
            i: 0,
        };
        let e = p.expr()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected text at column {}", p.i + 1));
        }
        Ok(e)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.ws();
        let mut e = match self.peek() {
            Some(b'\'') => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err("unterminated string literal".to_string()),
                        Some(b'\'') if self.s.get(self.i + 1) == Some(&b'\'') => {
                            out.push(b'\'');
                            self.i += 2;
                        }
                        Some(b'\'') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                Expr::Str(String::from_utf8_lossy(&out).into_owned())
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                let t = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                Expr::Num(t.parse().map_err(|_| format!("bad number `{t}`"))?)
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name = self.ident();
                self.ws();
                if self.peek() != Some(b'(') {
                    return Err(format!("expected `(` after `{name}`"));
                }
                self.i += 1;
                let mut args = Vec::new();
                self.ws();
                if self.peek() == Some(b')') {
                    self.i += 1;
                } else {
                    loop {
                        args.push(self.expr()?);
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b')') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(format!("expected `,` or `)` in {name}()")),
                        }
                    }
                }
                Expr::Call(name, args)
            }
            _ => return Err(format!("unexpected character at column {}", self.i + 1)),
        };
        loop {
            self.ws();
            match self.peek() {
                Some(b'.') => {
                    self.i += 1;
                    self.ident();
                    e = Expr::Access(Box::new(e));
                }
                Some(b'[') => {
                    self.i += 1;
                    self.expr()?;
                    self.ws();
                    if self.peek() != Some(b']') {
                        return Err("expected `]`".to_string());
                    }
                    self.i += 1;
                    e = Expr::Access(Box::new(e));
                }
                _ => return Ok(e),
            }
        }
    }
}

/// The template's `variables` and `parameters`, and the parameter values the operator gave,
/// for expression evaluation.
pub(super) struct Ctx<'a> {
    variables: Option<&'a Map<String, Value>>,
    parameters: Option<&'a Map<String, Value>>,
    given: &'a [(String, Value)],
}

/// How deeply expressions and variables may nest (a cycle of variables stops here).
const MAX_DEPTH: usize = 16;

/// If `s` is an ARM expression (`[...]`, not the `[[` escape), its inner text.
fn expression_text(s: &str) -> Option<&str> {
    let t = s.trim();
    if t.starts_with('[') && !t.starts_with("[[") && t.ends_with(']') {
        Some(&t[1..t.len() - 1])
    } else {
        None
    }
}

/// The last non-empty `/` segment of `s`.
pub(super) fn last_segment(s: &str) -> Option<String> {
    s.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|x| !x.is_empty())
        .map(str::to_string)
}

impl<'a> Ctx<'a> {
    /// The `variables` and `parameters` of the template `root`, with the operator's parameter
    /// values `given` (the last one of a name wins; they override the defaults).
    pub(super) fn of(root: &'a Value, given: &'a [(String, Value)]) -> Self {
        let obj = |k: &str| {
            root.as_object()
                .and_then(|o| find_ci(o, k))
                .and_then(|(_, v)| v.as_object())
        };
        Ctx {
            variables: obj("variables"),
            parameters: obj("parameters"),
            given,
        }
    }

    /// Evaluates a JSON value that may be an expression string.
    pub(super) fn value(&self, v: &Value, depth: usize) -> Result<Val, String> {
        if depth > MAX_DEPTH {
            return Err("expressions nest too deeply (a cycle of variables?)".to_string());
        }
        match v {
            Value::String(s) => match expression_text(s) {
                Some(e) => {
                    let expr = ExprParser::parse(e)
                        .map_err(|m| format!("cannot parse the ARM expression {s:?}: {m}"))?;
                    self.eval(&expr, depth + 1)
                }
                None if s.trim_start().starts_with("[[") => {
                    Ok(Val::Str(s.trim_start().replacen("[[", "[", 1)))
                }
                None => Ok(Val::Str(s.clone())),
            },
            Value::Number(n) => n
                .as_i64()
                .map(Val::Num)
                .ok_or_else(|| format!("{n} is not an integer")),
            Value::Bool(b) => Ok(Val::Bool(*b)),
            other => Err(format!("expected a string or number, found {other}")),
        }
    }

    /// Evaluates `e` to text.
    fn eval_str(&self, e: &Expr, depth: usize) -> Result<String, String> {
        self.eval(e, depth).map(|v| v.to_text())
    }

    /// Evaluates `e`; `depth` bounds the nesting.
    fn eval(&self, e: &Expr, depth: usize) -> Result<Val, String> {
        if depth > MAX_DEPTH {
            return Err("expressions nest too deeply".to_string());
        }
        match e {
            Expr::Str(s) => Ok(Val::Str(s.clone())),
            Expr::Num(n) => Ok(Val::Num(*n)),
            Expr::Access(_) => {
                Err("property access (`.x`, `[i]`) is evaluated only at deployment".to_string())
            }
            Expr::Call(f, args) => self.call(f, args, depth),
        }
    }

    /// Evaluates the function call `f(args)`.
    fn call(&self, f: &str, args: &[Expr], depth: usize) -> Result<Val, String> {
        let f = f.to_ascii_lowercase();
        let arg = |i: usize| {
            args.get(i)
                .ok_or_else(|| format!("{f}() needs an argument"))
                .and_then(|a| self.eval(a, depth + 1))
        };
        match f.as_str() {
            "variables" => {
                let n = arg(0)?.to_text();
                let v = self
                    .variables
                    .and_then(|m| find_ci(m, &n))
                    .ok_or_else(|| {
                        format!("variables('{n}') is not defined in the template")
                    })?;
                self.value(v.1, depth + 1)
                    .map_err(|m| format!("variables('{n}'): {m}"))
            }
            "parameters" => {
                let n = arg(0)?.to_text();
                if let Some((_, v)) = self
                    .given
                    .iter()
                    .rev()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&n))
                {
                    return self
                        .value(v, depth + 1)
                        .map_err(|m| format!("parameters('{n}') as given: {m}"));
                }
                let p = self
                    .parameters
                    .and_then(|m| find_ci(m, &n))
                    .ok_or_else(|| {
                        format!("parameters('{n}') is not declared in the template")
                    })?;
                let d = p
                    .1
                    .as_object()
                    .and_then(|o| find_ci(o, "defaultValue"))
                    .ok_or_else(|| {
                        format!("parameters('{n}') has no defaultValue; give its value with --parameter {n}=VALUE or --parameters FILE")
                    })?;
                self.value(d.1, depth + 1)
                    .map_err(|m| format!("parameters('{n}'): {m}"))
            }
            "resourceid"
            | "subscriptionresourceid"
            | "tenantresourceid"
            | "extensionresourceid"
            | "managementgroupresourceid" => self.resource_id(&f, args, depth),
            "concat" => {
                let mut s = String::new();
                for a in args {
                    s.push_str(&self.eval_str(a, depth + 1)?);
                }
                Ok(Val::Str(s))
            }
            "format" => {
                let mut s = arg(0)?.to_text();
                for i in 1..args.len() {
                    s = s.replace(&format!("{{{}}}", i - 1), &arg(i)?.to_text());
                }
                Ok(Val::Str(s))
            }
            "string" => Ok(Val::Str(arg(0)?.to_text())),
            "int" => match arg(0)? {
                Val::Num(n) => Ok(Val::Num(n)),
                v => v
                    .to_text()
                    .trim()
                    .parse()
                    .map(Val::Num)
                    .map_err(|_| format!("int() of {:?}", v.to_text())),
            },
            "bool" => match arg(0)? {
                Val::Bool(b) => Ok(Val::Bool(b)),
                v => match v.to_text().to_ascii_lowercase().as_str() {
                    "add" | "sub" | "mul" | "div" | "mod" => self.arith(&f, arg(0)?, arg(1)?),
            "true" => Ok(Val::Bool(true)),
                    "false" => Ok(Val::Bool(false)),
                    t => Err(format!("bool() of {t:?}")),
                },
            },
            "add" | "sub" | "mul" | "div" | "mod" => self.arith(&f, arg(0)?, arg(1)?),
            "true" => Ok(Val::Bool(true)),
            "false" => Ok(Val::Bool(false)),
            "tolower" => Ok(Val::Str(arg(0)?.to_text().to_lowercase())),
            "toupper" => Ok(Val::Str(arg(0)?.to_text().to_uppercase())),
            _ => Err(format!(
                "function {f}() is evaluated only at deployment; the importer evaluates literals, variables(), parameters(), resourceId(), concat(), format() and integer arithmetic"
            )),
        }
    }

    /// `add()`, `sub()`, `mul()`, `div()`, `mod()` of two integers.
    fn arith(&self, f: &str, a: Val, b: Val) -> Result<Val, String> {
        let int = |v: &Val| match v {
            Val::Num(n) => Ok(*n),
            other => other
                .to_text()
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{f}() of {:?}", other.to_text())),
        };
        let (a, b) = (int(&a)?, int(&b)?);
        let r = match f {
            "add" => a.checked_add(b),
            "sub" => a.checked_sub(b),
            "mul" => a.checked_mul(b),
            "div" => a.checked_div(b),
            _ => a.checked_rem(b),
        };
        r.map(Val::Num)
            .ok_or_else(|| format!("{f}({a}, {b}) overflows or divides by zero"))
    }

    /// `resourceId()` and its siblings: `Namespace/type1/name1/type2/name2` when the type and
    /// the names line up (so that the parent's name is known too), else the last name argument.
    /// Arguments before the type (subscription, resource group) are not evaluated.
    fn resource_id(&self, f: &str, args: &[Expr], depth: usize) -> Result<Val, String> {
        let last = args
            .last()
            .ok_or_else(|| format!("{f}() needs arguments"))?;
        let ty = args
            .iter()
            .position(|a| matches!(a, Expr::Str(s) if s.contains('/')));
        if let Some(t) = ty {
            let Expr::Str(ty) = &args[t] else {
                unreachable!("matched above")
            };
            let mut types = ty.split('/');
            let ns = types.next().unwrap_or("");
            let types: Vec<&str> = types.collect();
            let names = &args[t + 1..];
            if names.len() == types.len() {
                let mut out = ns.to_string();
                let mut complete = true;
                for (ty, n) in types.iter().zip(names) {
                    match self.eval_str(n, depth + 1) {
                        Ok(n) => out.push_str(&format!("/{ty}/{n}")),
                        // A parent name known only at deployment: the last name still names it.
                        Err(_) => complete = false,
                    }
                }
                if complete {
                    return Ok(Val::Str(out));
                }
            }
        }
        Ok(Val::Str(self.eval_str(last, depth + 1)?))
    }

    /// An id after evaluating an expression (the whole text, not only its last segment).
    pub(super) fn id_text(&self, raw: &str) -> Result<String, String> {
        match expression_text(raw) {
            None => Ok(raw.to_string()),
            Some(text) => {
                let expr = ExprParser::parse(text)
                    .map_err(|m| format!("cannot parse the ARM expression {raw:?}: {m}"))?;
                self.eval(&expr, 0).map(|v| v.to_text())
            }
        }
    }

    /// The name an id refers to: its last path segment, after evaluating an expression.
    pub(super) fn id_name(&self, raw: &str) -> Result<String, String> {
        let Some(text) = expression_text(raw) else {
            return last_segment(raw).ok_or_else(|| format!("{raw:?} has no name segment"));
        };
        let expr = ExprParser::parse(text)
            .map_err(|m| format!("cannot parse the ARM expression {raw:?}: {m}"))?;
        match self.eval(&expr, 0) {
            Ok(v) => last_segment(&v.to_text()).ok_or_else(|| {
                format!(
                    "the ARM expression {raw:?} evaluates to {:?}, which has no name segment",
                    v.to_text()
                )
            }),
            Err(why) => {
                // `concat(<unknown prefix>, '/frontendIPConfigurations/fe')`: the tail suffices.
                if let Expr::Call(f, args) = &expr {
                    if f.eq_ignore_ascii_case("concat") {
                        if let Some(Ok(tail)) = args.last().map(|a| self.eval_str(a, 1)) {
                            if tail.contains('/') {
                                if let Some(n) = last_segment(&tail) {
                                    return Ok(n);
                                }
                            }
                        }
                    }
                }
                Err(format!(
                    "cannot resolve the ARM expression {raw:?} to a name: {why}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx_with(vars: Value, params: Value) -> Value {
        json!({ "variables": vars, "parameters": params })
    }

    #[test]
    fn ids_resolve_by_last_segment() {
        let root = json!({});
        let c = Ctx::of(&root, &[]);
        assert_eq!(
            c.id_name("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/frontendIPConfigurations/fe1").unwrap(),
            "fe1"
        );
        assert_eq!(
            c.id_name("[resourceId('Microsoft.Network/loadBalancers/probes', 'lb', 'http-80')]")
                .unwrap(),
            "http-80"
        );
    }

    #[test]
    fn expressions_use_variables_and_parameter_defaults() {
        let root = ctx_with(
            json!({ "lbName": "lb1", "feName": "[concat('fe-', parameters('env'))]" }),
            json!({ "env": { "type": "string", "defaultValue": "prod" }, "nodefault": { "type": "string" } }),
        );
        let c = Ctx::of(&root, &[]);
        assert_eq!(
            c.id_name("[resourceId('Microsoft.Network/loadBalancers/frontendIPConfigurations', variables('lbName'), variables('feName'))]").unwrap(),
            "fe-prod"
        );
        assert_eq!(
            c.id_name("[concat(resourceId('Microsoft.Network/loadBalancers', variables('lbName')), '/backendAddressPools/pool1')]").unwrap(),
            "pool1"
        );
        // The whole id, with the parent's name, when every name is known.
        assert_eq!(
            c.id_text("[resourceId('rg', 'Microsoft.Network/loadBalancers/probes', variables('lbName'), 'p')]").unwrap(),
            "Microsoft.Network/loadBalancers/lb1/probes/p"
        );
        // A parent known only at deployment: the last name still resolves.
        assert_eq!(
            c.id_name("[resourceId('Microsoft.Network/loadBalancers/probes', parameters('nodefault'), 'p3')]").unwrap(),
            "p3"
        );
        // Unknown prefix, literal tail: the tail names it.
        assert_eq!(
            c.id_name("[concat(resourceId('Microsoft.Network/loadBalancers', parameters('nodefault')), '/probes/p1')]").unwrap(),
            "p1"
        );
        assert_eq!(
            c.id_name("[format('{0}/probes/{1}', variables('lbName'), 'p2')]")
                .unwrap(),
            "p2"
        );
        let e = c
            .id_name("[resourceId('Microsoft.Network/loadBalancers/probes', 'lb', parameters('nodefault'))]")
            .unwrap_err();
        assert!(
            e.contains("parameters('nodefault') has no defaultValue"),
            "{e}"
        );
        let e = c.id_name("[reference('x').id]").unwrap_err();
        assert!(e.contains("cannot resolve"), "{e}");
        let e = c.id_name("[variables('missing')]").unwrap_err();
        assert!(e.contains("variables('missing') is not defined"), "{e}");
    }

    #[test]
    fn string_literal_escapes_and_bracket_escape() {
        let root = json!({});
        let c = Ctx::of(&root, &[]);
        assert_eq!(
            c.value(&json!("[concat('it''s', '-x')]"), 0).unwrap(),
            Val::Str("it's-x".into())
        );
        assert_eq!(
            c.value(&json!("[[not an expression]"), 0).unwrap(),
            Val::Str("[not an expression]".into())
        );
        assert_eq!(c.value(&json!("[int('42')]"), 0).unwrap(), Val::Num(42));
        assert_eq!(
            c.value(&json!("[add(8080, 2)]"), 0).unwrap(),
            Val::Num(8082)
        );
        assert!(c.value(&json!("[div(1, 0)]"), 0).is_err());
    }

    #[test]
    fn variable_cycles_are_errors_not_overflows() {
        let root = ctx_with(
            json!({ "a": "[variables('b')]", "b": "[variables('a')]" }),
            json!({}),
        );
        let c = Ctx::of(&root, &[]);
        assert!(c.id_name("[variables('a')]").is_err());
    }
}
