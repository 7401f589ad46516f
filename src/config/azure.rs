//! Import of an Azure Load Balancer (`Microsoft.Network/loadBalancers`) into vipmux's TOML format.
//!
//! [`import`] accepts, as a `serde_json::Value`:
//! - a whole ARM template: every resource of type `Microsoft.Network/loadBalancers` in
//!   `resources[]` is a candidate; with more than one, [`ImportOptions::name`] selects;
//! - a single resource object (`{ "type": ..., "name": ..., "properties": { ... } }`);
//! - the output of `az network lb show`, with `properties` or in the flattened form where the
//!   properties are hoisted to the top level (`frontendIPConfigurations` beside `name`), and the
//!   output of `az network lb list` (an array of those).
//!
//! Property names are matched case-insensitively (the az CLI spells `frontendIpConfigurations`,
//! `enableFloatingIp`), and every sub-resource may carry its fields under `properties` or directly.
//! References (`frontendIPConfiguration.id`, `backendAddressPool.id`, `probe.id`) become names by
//! their last path segment. ARM template expressions are evaluated for the small subset that
//! names things: string and number literals, `variables()` and `parameters()` (literal values
//! and default values), `resourceId()` and its siblings (the last name argument), `concat()` and
//! `format()`. An id or name that cannot be resolved is an [`ImportError`] naming the JSON field.
//!
//! What the template cannot say is reported, not guessed: a public IP frontend has no address in
//! the template (placeholder, or [`ImportOptions::frontend_addresses`]); pool members and
//! single-VM inbound NAT rules given as NIC IP configurations have no address (commented
//! placeholders); the appliance tables (`[appliance]`, `[dataplane]`, `[[interfaces]]`) become
//! commented placeholders. Each of these produces a warning in [`Imported::warnings`].

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Map, Value};

use super::model::DsrEncapsulation;

/// The ARM resource type of a load balancer.
pub const LOAD_BALANCER_TYPE: &str = "Microsoft.Network/loadBalancers";

/// Options of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Which load balancer to import when the input holds several (by resource name).
    pub name: Option<String>,
    /// Frontend addresses given by the operator (`--frontend-address NAME=IP`); they override
    /// the template's and fill in frontends that have none (public IPs).
    pub frontend_addresses: Vec<(String, Ipv4Addr)>,
    /// `dsr_encapsulation` of pools that serve floating-IP rules. Default: `ipip` (as in Ananta),
    /// because `none` needs members on-link of an interface, which the template cannot say.
    pub floating_ip_encapsulation: DsrEncapsulation,
    /// Name of the input shown in the header comment of the output (usually the file name).
    pub source: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: None,
            frontend_addresses: Vec::new(),
            floating_ip_encapsulation: DsrEncapsulation::Ipip,
            source: "template".to_string(),
        }
    }
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Name of the imported load balancer.
    pub load_balancer: String,
    /// The configuration, TOML with comments.
    pub toml: String,
    /// What could not be imported as is and needs the operator (placeholders, NIC references).
    pub warnings: Vec<String>,
    /// Azure settings that vipmux ignores or maps differently; informational.
    pub notes: Vec<String>,
    /// Number of `FILL IN` placeholders that the output still needs to work as intended.
    pub placeholders: usize,
}

/// Why an input cannot be imported; `field` is the JSON path of the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// JSON path (`resources[1].properties.loadBalancingRules[0].properties.protocol`), or
    /// `<root>`, or the command-line option at fault.
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl ImportError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ImportError {
            field: if field.is_empty() {
                "<root>".to_string()
            } else {
                field
            },
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ImportError {}

/// Parses `text` as JSON and imports it (see [`import`]).
pub fn import_str(text: &str, opts: &ImportOptions) -> Result<Imported, ImportError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        ImportError::new(
            "<root>",
            format!(
                "not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    import(&v, opts)
}

/// Imports one load balancer of `input` into vipmux's TOML format.
pub fn import(input: &Value, opts: &ImportOptions) -> Result<Imported, ImportError> {
    let ctx = Ctx::of(input);
    let mut imp = Importer {
        ctx,
        opts,
        warnings: Vec::new(),
        notes: Vec::new(),
        placeholders: 0,
    };
    let (lb, lb_name) = imp.select(input)?;
    let model = imp.read(&lb)?;
    let toml = imp.render(&lb_name, &model);
    Ok(Imported {
        load_balancer: lb_name,
        toml,
        warnings: imp.warnings,
        notes: imp.notes,
        placeholders: imp.placeholders,
    })
}

// ---------------------------------------------------------------------------------------------
// JSON navigation

/// A JSON value with its path, for error messages.
#[derive(Debug, Clone)]
struct Node<'a> {
    v: &'a Value,
    path: String,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn find_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<(&'a String, &'a Value)> {
    obj.get_key_value(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
}

impl<'a> Node<'a> {
    fn new(v: &'a Value, path: impl Into<String>) -> Self {
        Node {
            v,
            path: path.into(),
        }
    }

    /// `key` under `properties`, else directly on the object (case-insensitive); null = absent.
    fn get(&self, key: &str) -> Option<Node<'a>> {
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
    fn path_of(&self, key: &str) -> String {
        match self.v.as_object().and_then(|o| find_ci(o, "properties")) {
            Some((pk, _)) => join(&join(&self.path, pk), key),
            None => join(&self.path, key),
        }
    }

    /// The elements of the array `key`; absent = empty.
    fn items(&self, key: &str) -> Result<Vec<Node<'a>>, ImportError> {
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

// ---------------------------------------------------------------------------------------------
// ARM template expressions

/// A parsed ARM template expression (the subset that matters for names and numbers).
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Str(String),
    Num(i64),
    Call(String, Vec<Expr>),
    /// Property or index access (`reference(...).id`, `x[0]`): not evaluated.
    Access(Box<Expr>),
}

/// A value an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Num(i64),
    Bool(bool),
}

impl Val {
    fn to_text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Num(n) => n.to_string(),
            Val::Bool(b) => b.to_string(),
        }
    }
}

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

/// The template's `variables` and `parameters`, for expression evaluation.
struct Ctx<'a> {
    variables: Option<&'a Map<String, Value>>,
    parameters: Option<&'a Map<String, Value>>,
}

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

fn last_segment(s: &str) -> Option<String> {
    s.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|x| !x.is_empty())
        .map(str::to_string)
}

impl<'a> Ctx<'a> {
    fn of(root: &'a Value) -> Self {
        let obj = |k: &str| {
            root.as_object()
                .and_then(|o| find_ci(o, k))
                .and_then(|(_, v)| v.as_object())
        };
        Ctx {
            variables: obj("variables"),
            parameters: obj("parameters"),
        }
    }

    /// Evaluates a JSON value that may be an expression string.
    fn value(&self, v: &Value, depth: usize) -> Result<Val, String> {
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

    fn eval_str(&self, e: &Expr, depth: usize) -> Result<String, String> {
        self.eval(e, depth).map(|v| v.to_text())
    }

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
            Expr::Call(f, args) => {
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
                                format!("parameters('{n}') has no defaultValue, so its value is known only at deployment")
                            })?;
                        self.value(d.1, depth + 1)
                            .map_err(|m| format!("parameters('{n}'): {m}"))
                    }
                    "resourceid"
                    | "subscriptionresourceid"
                    | "tenantresourceid"
                    | "extensionresourceid"
                    | "managementgroupresourceid" => {
                        // Only the last name segment matters for references.
                        let last = args
                            .last()
                            .ok_or_else(|| format!("{f}() needs arguments"))?;
                        Ok(Val::Str(self.eval_str(last, depth + 1)?))
                    }
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
                            "true" => Ok(Val::Bool(true)),
                            "false" => Ok(Val::Bool(false)),
                            t => Err(format!("bool() of {t:?}")),
                        },
                    },
                    "true" => Ok(Val::Bool(true)),
                    "false" => Ok(Val::Bool(false)),
                    "tolower" => Ok(Val::Str(arg(0)?.to_text().to_lowercase())),
                    "toupper" => Ok(Val::Str(arg(0)?.to_text().to_uppercase())),
                    _ => Err(format!(
                        "function {f}() is evaluated only at deployment; the importer evaluates literals, variables(), parameters() defaults, resourceId(), concat() and format()"
                    )),
                }
            }
        }
    }

    /// The name an id refers to: its last path segment, after evaluating an expression.
    fn id_name(&self, raw: &str) -> Result<String, String> {
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

// ---------------------------------------------------------------------------------------------
// The imported model

#[derive(Debug)]
struct Fe {
    name: String,
    addr: Option<Ipv4Addr>,
    /// Why the address is missing (placeholder comment).
    missing: Option<String>,
}

#[derive(Debug)]
struct Mem {
    name: String,
    addr: Ipv4Addr,
    admin_state: Option<&'static str>,
}

#[derive(Debug)]
struct Pool {
    name: String,
    members: Vec<Mem>,
    /// NIC IP configurations (`nic/ipconfig`) that are members without an address here.
    nic_members: Vec<String>,
}

#[derive(Debug)]
struct ProbeM {
    name: String,
    protocol: &'static str,
    port: Option<u32>,
    request_path: Option<String>,
    interval: Option<u32>,
    threshold: Option<u32>,
}

#[derive(Debug, Default)]
struct Common {
    name: String,
    frontend: String,
    protocol: &'static str,
    backend_port: Option<u32>,
    floating: bool,
    idle: Option<u32>,
    reset: bool,
}

#[derive(Debug)]
struct LbRule {
    c: Common,
    frontend_port: Option<u32>,
    pool: String,
    probe: Option<String>,
    distribution: Option<&'static str>,
}

#[derive(Debug)]
enum NatRule {
    /// Single-VM rule whose target is a NIC IP configuration: emitted commented out.
    Single {
        c: Common,
        frontend_port: Option<u32>,
        nic: Option<String>,
        /// The pool that lists the same NIC IP configuration, if any.
        pool: Option<String>,
    },
    Range {
        c: Common,
        start: Option<u32>,
        end: Option<u32>,
        pool: String,
    },
}

#[derive(Debug)]
struct Outbound {
    name: String,
    frontends: Vec<String>,
    pool: String,
    protocol: Option<&'static str>,
    ports: Option<u32>,
    idle: Option<u32>,
    reset: bool,
}

#[derive(Debug, Default)]
struct Model {
    frontends: Vec<Fe>,
    pools: Vec<Pool>,
    probes: Vec<ProbeM>,
    lb_rules: Vec<LbRule>,
    nat_rules: Vec<NatRule>,
    outbound: Vec<Outbound>,
    /// Some probe asked for `noHealthyBackendsBehavior = AllProbedUp`.
    all_probed_up: bool,
}

// ---------------------------------------------------------------------------------------------
// Reading

struct Importer<'a, 'o> {
    ctx: Ctx<'a>,
    opts: &'o ImportOptions,
    warnings: Vec<String>,
    notes: Vec<String>,
    placeholders: usize,
}

fn is_lb_type(v: &Value) -> bool {
    v.as_object()
        .and_then(|o| find_ci(o, "type"))
        .and_then(|(_, t)| t.as_str())
        .is_some_and(|t| t.eq_ignore_ascii_case(LOAD_BALANCER_TYPE))
}

fn looks_like_lb(v: &Value) -> bool {
    let n = Node::new(v, "");
    is_lb_type(v) || n.get("frontendIPConfigurations").is_some()
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'a> Importer<'a, '_> {
    fn warn(&mut self, m: impl Into<String>) {
        self.warnings.push(m.into());
    }

    fn note(&mut self, m: impl Into<String>) {
        self.notes.push(m.into());
    }

    /// Finds the load balancer to import; returns it and its name.
    fn select(&mut self, root: &'a Value) -> Result<(Node<'a>, String), ImportError> {
        let candidates: Vec<Node<'a>> = if let Some(res) = Node::new(root, "").get("resources") {
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
                    self.warn(format!(
                        "{}: child resource of type {ty} is not imported; declare it in the load balancer's properties instead",
                        node.path
                    ));
                } else if !ty.is_empty() {
                    types.insert(ty);
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
            lbs
        } else if let Some(arr) = root.as_array() {
            arr.iter()
                .enumerate()
                .filter(|(_, v)| looks_like_lb(v))
                .map(|(i, v)| Node::new(v, format!("[{i}]")))
                .collect()
        } else if looks_like_lb(root) {
            vec![Node::new(root, "")]
        } else {
            return Err(ImportError::new(
                "<root>",
                format!("not an ARM template (no `resources`), a {LOAD_BALANCER_TYPE} resource (no `type`/`properties`) or `az network lb show` output (no `frontendIPConfigurations`)"),
            ));
        };
        if candidates.is_empty() {
            return Err(ImportError::new(
                "<root>",
                "the array holds no load balancer",
            ));
        }
        let mut named = Vec::new();
        for c in candidates {
            let name = match c.get("name") {
                Some(n) => match self.ctx.value(n.v, 0) {
                    Ok(v) => v.to_text(),
                    // An unresolvable name only labels the output; keep the expression text.
                    Err(_) => n.v.as_str().unwrap_or("").to_string(),
                },
                None => String::new(),
            };
            named.push((c, name));
        }
        let names: Vec<String> = named.iter().map(|(_, n)| n.clone()).collect();
        let chosen: (Node<'a>, String) = match &self.opts.name {
            Some(want) => named.into_iter().find(|(_, n)| n == want).ok_or_else(|| {
                ImportError::new(
                    "--name",
                    format!(
                        "no load balancer named \"{want}\"; the input has {}",
                        quoted_list(&names)
                    ),
                )
            })?,
            None if named.len() > 1 => {
                return Err(ImportError::new(
                    "--name",
                    format!(
                        "the input has {} load balancers ({}); choose one with --name",
                        named.len(),
                        quoted_list(&names)
                    ),
                ))
            }
            None => named
                .into_iter()
                .next()
                .ok_or_else(|| ImportError::new("<root>", "no load balancer in the input"))?,
        };
        if let Some(children) = chosen.0.v.get("resources") {
            if children.as_array().is_some_and(|a| !a.is_empty()) {
                self.warn(format!(
                    "{}: nested child resources are not imported; declare them in the load balancer's properties instead",
                    join(&chosen.0.path, "resources")
                ));
            }
        }
        Ok(chosen)
    }

    fn string(&self, n: &Node) -> Result<String, ImportError> {
        match self.ctx.value(n.v, 0) {
            Ok(Val::Str(s)) => Ok(s),
            Ok(v) => Ok(v.to_text()),
            Err(m) => Err(ImportError::new(n.path.clone(), m)),
        }
    }

    fn opt_string(&self, parent: &Node, key: &str) -> Result<Option<String>, ImportError> {
        parent.get(key).map(|n| self.string(&n)).transpose()
    }

    fn name_of(&self, n: &Node, what: &str) -> Result<String, ImportError> {
        match self.opt_string(n, "name")? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ImportError::new(
                join(&n.path, "name"),
                format!("every {what} needs a name"),
            )),
        }
    }

    fn opt_u32(&self, parent: &Node, key: &str) -> Result<Option<u32>, ImportError> {
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

    fn opt_bool(&self, parent: &Node, key: &str) -> Result<Option<bool>, ImportError> {
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
    fn ref_name(&self, parent: &Node, key: &str) -> Result<Option<(String, String)>, ImportError> {
        let Some(r) = parent.get(key) else {
            return Ok(None);
        };
        self.ref_of(&r).map(Some)
    }

    /// The name a reference object (`{ "id": ... }`) points at, with the path of the id.
    fn ref_of(&self, r: &Node) -> Result<(String, String), ImportError> {
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
    fn enum_field(
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

    fn required<T>(&self, v: Option<T>, parent: &Node, key: &str) -> Result<T, ImportError> {
        v.ok_or_else(|| ImportError::new(parent.path_of(key), "required property is missing"))
    }

    /// Checks that `name` (from the reference at `path`) is one of `defined`.
    fn check_ref(
        &self,
        name: &str,
        path: &str,
        what: &str,
        defined: &[String],
    ) -> Result<(), ImportError> {
        if defined.iter().any(|d| d == name) {
            Ok(())
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

    fn read(&mut self, lb: &Node<'a>) -> Result<Model, ImportError> {
        let mut m = Model::default();
        if let Some(sku) = lb.get("sku") {
            let tier = sku.get("name").and_then(|n| n.v.as_str()).unwrap_or("");
            if tier.eq_ignore_ascii_case("Basic") {
                self.note("sku Basic: vipmux implements Standard SKU semantics");
            } else if tier.eq_ignore_ascii_case("Gateway") {
                self.warn("sku Gateway: gateway load balancer chaining is not supported; the rules are imported as ordinary rules");
            }
        }
        if let Some(props) = lb.get("properties") {
            if props.get("copy").is_some() {
                self.warn(format!(
                    "{}: property copy loops are not expanded; the arrays they generate are missing",
                    join(&props.path, "copy")
                ));
            }
        }
        if !lb.items("inboundNatPools")?.is_empty() {
            self.warn(format!(
                "{}: inbound NAT pools (virtual machine scale sets) are not imported; use an inbound NAT rule with frontendPortRangeStart/End and a backendAddressPool",
                lb.path_of("inboundNatPools")
            ));
        }

        // Frontends.
        let mut skipped_fe: Vec<String> = Vec::new();
        for fe in lb.items("frontendIPConfigurations")? {
            let name = self.name_of(&fe, "frontend IP configuration")?;
            let ipv6 = self
                .opt_string(&fe, "privateIPAddressVersion")?
                .is_some_and(|v| v.eq_ignore_ascii_case("IPv6"));
            let private = self.opt_string(&fe, "privateIPAddress")?;
            let over = self
                .opt_overrides()
                .find(|(n, _)| n == &name)
                .map(|(_, a)| *a);
            let mut f = Fe {
                name: name.clone(),
                addr: None,
                missing: None,
            };
            if let Some(a) = over {
                f.addr = Some(a);
            } else if let Some(p) = private.as_deref().filter(|p| !p.is_empty()) {
                match p.parse::<IpAddr>() {
                    Ok(IpAddr::V4(a)) => f.addr = Some(a),
                    Ok(IpAddr::V6(_)) => {
                        self.warn(format!("frontend \"{name}\": IPv6 address {p} skipped (vipmux is IPv4 only), with the rules that use it"));
                        skipped_fe.push(name);
                        continue;
                    }
                    Err(_) => {
                        return Err(ImportError::new(
                            fe.path_of("privateIPAddress"),
                            format!("{p:?} is not an IP address"),
                        ))
                    }
                }
            } else if ipv6 {
                self.warn(format!("frontend \"{name}\": IPv6 frontend skipped (vipmux is IPv4 only), with the rules that use it"));
                skipped_fe.push(name);
                continue;
            } else if let Some((pip, _)) = self.ref_name(&fe, "publicIPAddress")? {
                f.missing = Some(format!(
                    "public IP address \"{pip}\" is referenced by id and its address is not in the input"
                ));
            } else if let Some((pfx, _)) = self.ref_name(&fe, "publicIPPrefix")? {
                f.missing = Some(format!(
                    "public IP prefix \"{pfx}\" is referenced by id and its addresses are not in the input"
                ));
            } else {
                f.missing = Some(
                    "no privateIPAddress (dynamic allocation is decided by Azure at deployment)"
                        .to_string(),
                );
            }
            if let Some(why) = &f.missing {
                self.placeholders += 1;
                self.warn(format!(
                    "frontend \"{name}\": {why}; fill in its address or rerun with --frontend-address {name}=IP"
                ));
            }
            if fe.get("gatewayLoadBalancer").is_some() {
                self.note(format!(
                    "frontend \"{name}\": gatewayLoadBalancer chaining ignored"
                ));
            }
            m.frontends.push(f);
        }
        for (n, _) in self.opt_overrides() {
            if !m.frontends.iter().any(|f| &f.name == n) {
                let names: Vec<String> = m.frontends.iter().map(|f| f.name.clone()).collect();
                return Err(ImportError::new(
                    "--frontend-address",
                    format!(
                        "no frontend named \"{n}\"; the load balancer's frontends: {}",
                        quoted_list(&names)
                    ),
                ));
            }
        }
        let mut fe_names: Vec<String> = m.frontends.iter().map(|f| f.name.clone()).collect();
        fe_names.extend(skipped_fe.iter().cloned());

        // Backend pools.
        for p in lb.items("backendAddressPools")? {
            let name = self.name_of(&p, "backend address pool")?;
            let mut pool = Pool {
                name: name.clone(),
                members: Vec::new(),
                nic_members: Vec::new(),
            };
            for (i, a) in p
                .items("loadBalancerBackendAddresses")?
                .into_iter()
                .enumerate()
            {
                let ip = self.opt_string(&a, "ipAddress")?;
                let mname = self.opt_string(&a, "name")?;
                let Some(ip) = ip.filter(|s| !s.is_empty()) else {
                    if let Some(nic) = a.get("networkInterfaceIPConfiguration") {
                        let (_, _) = self.ref_of(&nic)?;
                        pool.nic_members.push(nic_label(
                            nic.get("id").and_then(|i| i.v.as_str()).unwrap_or(""),
                        ));
                        continue;
                    }
                    return Err(ImportError::new(
                        a.path_of("ipAddress"),
                        "a backend address needs an ipAddress (or a networkInterfaceIPConfiguration)",
                    ));
                };
                let addr = match ip.parse::<IpAddr>() {
                    Ok(IpAddr::V4(x)) => x,
                    Ok(IpAddr::V6(_)) => {
                        self.warn(format!(
                            "pool \"{name}\": IPv6 member {ip} skipped (vipmux is IPv4 only)"
                        ));
                        continue;
                    }
                    Err(_) => {
                        return Err(ImportError::new(
                            a.path_of("ipAddress"),
                            format!("{ip:?} is not an IP address"),
                        ))
                    }
                };
                let admin_state = self.enum_field(
                    &a,
                    "adminState",
                    &[("None", "none"), ("Up", "up"), ("Down", "down")],
                )?;
                let mut mname = mname
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| format!("member-{}", i + 1));
                if pool.members.iter().any(|x| x.name == mname) {
                    mname = format!("{mname}-{}", i + 1);
                }
                pool.members.push(Mem {
                    name: mname,
                    addr,
                    admin_state: admin_state.filter(|s| *s != "none"),
                });
            }
            for c in p.items("backendIPConfigurations")? {
                let id = c
                    .get("id")
                    .and_then(|i| i.v.as_str())
                    .unwrap_or("")
                    .to_string();
                let label = nic_label(&id);
                if !pool.nic_members.contains(&label) {
                    pool.nic_members.push(label);
                }
            }
            if !pool.nic_members.is_empty() {
                self.placeholders += pool.nic_members.len();
                self.warn(format!(
                    "pool \"{name}\": {} member(s) are NIC IP configurations ({}) whose addresses are not in the input; add them as members (commented placeholders in the output)",
                    pool.nic_members.len(),
                    pool.nic_members.join(", ")
                ));
            }
            if !p.items("tunnelInterfaces")?.is_empty() {
                self.note(format!(
                    "pool \"{name}\": tunnelInterfaces (gateway load balancer) ignored"
                ));
            }
            m.pools.push(pool);
        }
        let pool_names: Vec<String> = m.pools.iter().map(|p| p.name.clone()).collect();

        // Probes.
        for p in lb.items("probes")? {
            let name = self.name_of(&p, "probe")?;
            let protocol = self.enum_field(
                &p,
                "protocol",
                &[("Tcp", "tcp"), ("Http", "http"), ("Https", "https")],
            )?;
            let protocol = self.required(protocol, &p, "protocol")?;
            let mut request_path = self.opt_string(&p, "requestPath")?;
            if protocol == "tcp" && request_path.is_some() {
                self.note(format!(
                    "probe \"{name}\": requestPath ignored on a Tcp probe"
                ));
                request_path = None;
            }
            let threshold = self.opt_u32(&p, "probeThreshold")?;
            let number = self.opt_u32(&p, "numberOfProbes")?;
            if let (Some(t), Some(n)) = (threshold, number) {
                if t != n {
                    self.note(format!("probe \"{name}\": numberOfProbes {n} ignored; probeThreshold {t} used (as Azure does)"));
                }
            }
            if let Some(b) = self.opt_string(&p, "noHealthyBackendsBehavior")? {
                if b.eq_ignore_ascii_case("AllProbedUp") {
                    m.all_probed_up = true;
                    self.warn(format!("probe \"{name}\": noHealthyBackendsBehavior AllProbedUp is appliance-wide in vipmux: set no_healthy_backends = \"all\" in [appliance]"));
                }
            }
            m.probes.push(ProbeM {
                name,
                protocol,
                port: Some(self.required(self.opt_u32(&p, "port")?, &p, "port")?),
                request_path,
                interval: self.opt_u32(&p, "intervalInSeconds")?,
                threshold: threshold.or(number),
            });
        }
        let probe_names: Vec<String> = m.probes.iter().map(|p| p.name.clone()).collect();

        const PROTO: &[(&str, &str)] = &[("Tcp", "tcp"), ("Udp", "udp"), ("All", "all")];

        // Load-balancing rules.
        for r in lb.items("loadBalancingRules")? {
            let name = self.name_of(&r, "load-balancing rule")?;
            let Some(c) = self.common(&r, &name, PROTO, &fe_names, &skipped_fe)? else {
                continue;
            };
            let mut pool = self.ref_name(&r, "backendAddressPool")?;
            let plural = r.items("backendAddressPools")?;
            if pool.is_none() {
                if let Some(first) = plural.first() {
                    pool = Some(self.ref_of(first)?);
                }
            }
            if plural.len() > 1 {
                self.warn(format!(
                    "load-balancing rule \"{name}\": {} backend pools; vipmux uses one, \"{}\"",
                    plural.len(),
                    pool.as_ref().map(|p| p.0.as_str()).unwrap_or("")
                ));
            }
            let Some((pool, pool_path)) = pool else {
                self.warn(format!(
                    "load-balancing rule \"{name}\" has no backend pool and is skipped (it forwards nothing in Azure either)"
                ));
                continue;
            };
            self.check_ref(&pool, &pool_path, "backend pool", &pool_names)?;
            let probe = match self.ref_name(&r, "probe")? {
                Some((p, path)) => {
                    self.check_ref(&p, &path, "probe", &probe_names)?;
                    Some(p)
                }
                None => None,
            };
            let distribution = self.enum_field(
                &r,
                "loadDistribution",
                &[
                    ("Default", "default"),
                    ("SourceIP", "source_ip"),
                    ("SourceIPProtocol", "source_ip_protocol"),
                ],
            )?;
            if self.opt_bool(&r, "disableOutboundSnat")? == Some(false) {
                self.note(format!("load-balancing rule \"{name}\": disableOutboundSnat ignored; vipmux gives members outbound SNAT only through outbound rules"));
            }
            let frontend_port = self.opt_u32(&r, "frontendPort")?;
            let frontend_port = self.required(frontend_port, &r, "frontendPort")?;
            m.lb_rules.push(LbRule {
                c,
                frontend_port: Some(frontend_port),
                pool,
                probe,
                distribution: distribution.filter(|d| *d != "default"),
            });
        }

        // Inbound NAT rules.
        for r in lb.items("inboundNatRules")? {
            let name = self.name_of(&r, "inbound NAT rule")?;
            let Some(c) = self.common(&r, &name, PROTO, &fe_names, &skipped_fe)? else {
                continue;
            };
            let start = self.opt_u32(&r, "frontendPortRangeStart")?;
            let end = self.opt_u32(&r, "frontendPortRangeEnd")?;
            let pool = self.ref_name(&r, "backendAddressPool")?;
            if start.is_some() || end.is_some() || pool.is_some() {
                let Some((pool, path)) = pool else {
                    return Err(ImportError::new(
                        r.path_of("backendAddressPool"),
                        "required with frontendPortRangeStart/End: the pool whose members take the ports",
                    ));
                };
                self.check_ref(&pool, &path, "backend pool", &pool_names)?;
                let start = self.required(start, &r, "frontendPortRangeStart")?;
                let end = self.required(end, &r, "frontendPortRangeEnd")?;
                m.nat_rules.push(NatRule::Range {
                    c,
                    start: Some(start),
                    end: Some(end),
                    pool,
                });
            } else {
                let frontend_port = self.opt_u32(&r, "frontendPort")?;
                let frontend_port = self.required(frontend_port, &r, "frontendPort")?;
                let nic = r
                    .get("backendIPConfiguration")
                    .and_then(|b| b.get("id"))
                    .and_then(|i| i.v.as_str())
                    .map(nic_label);
                self.placeholders += 1;
                self.warn(format!(
                    "inbound NAT rule \"{name}\": its target is {}, not a pool member; it is emitted commented out: add the VM as a member and set target = {{ pool, member }}",
                    match &nic {
                        Some(n) => format!("NIC IP configuration {n}"),
                        None => "a NIC IP configuration that the input does not show (it is set on the NIC)".to_string(),
                    }
                ));
                let pool = nic.as_ref().and_then(|n| {
                    m.pools
                        .iter()
                        .find(|p| p.nic_members.contains(n))
                        .map(|p| p.name.clone())
                });
                m.nat_rules.push(NatRule::Single {
                    c,
                    frontend_port: Some(frontend_port),
                    nic,
                    pool,
                });
            }
        }

        // Outbound rules.
        for r in lb.items("outboundRules")? {
            let name = self.name_of(&r, "outbound rule")?;
            let mut frontends = Vec::new();
            for f in r.items("frontendIPConfigurations")? {
                let (fe, path) = self.ref_of(&f)?;
                self.check_ref(&fe, &path, "frontend IP configuration", &fe_names)?;
                if skipped_fe.contains(&fe) {
                    self.warn(format!(
                        "outbound rule \"{name}\": IPv6 frontend \"{fe}\" dropped"
                    ));
                    continue;
                }
                frontends.push(fe);
            }
            if frontends.is_empty() {
                self.warn(format!(
                    "outbound rule \"{name}\" has no IPv4 frontend and is skipped"
                ));
                continue;
            }
            let (pool, path) = self.required(
                self.ref_name(&r, "backendAddressPool")?,
                &r,
                "backendAddressPool",
            )?;
            self.check_ref(&pool, &path, "backend pool", &pool_names)?;
            m.outbound.push(Outbound {
                name,
                frontends,
                pool,
                protocol: self.enum_field(&r, "protocol", PROTO)?,
                ports: self.opt_u32(&r, "allocatedOutboundPorts")?,
                idle: self.opt_u32(&r, "idleTimeoutInMinutes")?,
                reset: self.opt_bool(&r, "enableTcpReset")?.unwrap_or(false),
            });
        }
        Ok(m)
    }

    fn opt_overrides(&self) -> impl Iterator<Item = &(String, Ipv4Addr)> {
        self.opts.frontend_addresses.iter()
    }

    /// Fields shared by load-balancing and inbound NAT rules; `None` if the rule is skipped.
    fn common(
        &mut self,
        r: &Node,
        name: &str,
        proto: &[(&str, &'static str)],
        fe_names: &[String],
        skipped_fe: &[String],
    ) -> Result<Option<Common>, ImportError> {
        let (frontend, path) = self.required(
            self.ref_name(r, "frontendIPConfiguration")?,
            r,
            "frontendIPConfiguration",
        )?;
        self.check_ref(&frontend, &path, "frontend IP configuration", fe_names)?;
        if skipped_fe.contains(&frontend) {
            self.warn(format!(
                "rule \"{name}\" skipped: its frontend \"{frontend}\" is IPv6"
            ));
            return Ok(None);
        }
        let protocol = self.required(self.enum_field(r, "protocol", proto)?, r, "protocol")?;
        Ok(Some(Common {
            name: name.to_string(),
            frontend,
            protocol,
            backend_port: self.opt_u32(r, "backendPort")?,
            floating: self.opt_bool(r, "enableFloatingIP")?.unwrap_or(false),
            idle: self.opt_u32(r, "idleTimeoutInMinutes")?,
            reset: self.opt_bool(r, "enableTcpReset")?.unwrap_or(false),
        }))
    }

    // -----------------------------------------------------------------------------------------
    // Rendering

    fn render(&mut self, lb_name: &str, m: &Model) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(
            w,
            "# vipmux configuration imported by `vipmux import-azure` from load balancer {} ({}).",
            qc(lb_name),
            comment_text(&self.opts.source)
        );
        let _ = writeln!(
            w,
            "# Fill in every `FILL IN`, then run `vipmux check` on this file."
        );
        let _ = writeln!(w, "#\n# The appliance tables have no Azure equivalent:");
        let _ = writeln!(w, "# [appliance]");
        let _ = writeln!(w, "# name = {}", qc(lb_name));
        let _ = writeln!(
            w,
            "# hash_seed = 0x0                # FILL IN: shared by every MUX of one cluster"
        );
        let _ = writeln!(
            w,
            "# missing_flow = \"rehash\"        # \"rehash\" | \"drop\""
        );
        let _ = writeln!(
            w,
            "# no_healthy_backends = {}   # \"drop\" = AllProbedDown, \"all\" = AllProbedUp",
            if m.all_probed_up {
                "\"all\""
            } else {
                "\"drop\""
            }
        );
        let _ = writeln!(w, "#\n# [dataplane]");
        let _ = writeln!(
            w,
            "# dpdk_profile = \"FILL IN\"       # EAL arguments, ports, queues, cores"
        );
        let _ = writeln!(w, "# workers = 1");
        let _ = writeln!(w, "#\n# [[interfaces]]");
        let _ = writeln!(w, "# name = \"FILL IN\"");
        let _ = writeln!(
            w,
            "# port = \"FILL IN\"               # DPDK port name from the profile"
        );
        let _ = writeln!(w, "# address = \"FILL IN\"            # the appliance's own address, e.g. \"10.0.0.2/24\"");
        let _ = writeln!(w, "# gateway = \"FILL IN\"            # optional");
        let _ = writeln!(
            w,
            "#\n# Frontends have no `interface`: the VIPs are routed to the MUX. Add"
        );
        let _ = writeln!(
            w,
            "# `interface = \"NAME\"` to a frontend for the MUX to answer ARP for it."
        );

        for f in &m.frontends {
            let _ = writeln!(w, "\n[[frontends]]");
            let _ = writeln!(w, "name = {}", q(&f.name));
            match (f.addr, &f.missing) {
                (Some(a), _) => {
                    let _ = writeln!(w, "address = {}", q(&a.to_string()));
                }
                (None, why) => {
                    let _ = writeln!(
                        w,
                        "# FILL IN: {}; or rerun with --frontend-address {}=IP",
                        comment_text(why.as_deref().unwrap_or("address unknown")),
                        comment_text(&f.name)
                    );
                    let _ = writeln!(w, "# address = \"FILL IN\"");
                }
            }
        }

        let floating_pools: BTreeSet<&str> = m
            .lb_rules
            .iter()
            .filter(|r| r.c.floating)
            .map(|r| r.pool.as_str())
            .chain(m.nat_rules.iter().filter_map(|r| match r {
                NatRule::Range { c, pool, .. } if c.floating => Some(pool.as_str()),
                _ => None,
            }))
            .collect();
        for p in &m.pools {
            let _ = writeln!(w, "\n[[backend_pools]]");
            let _ = writeln!(w, "name = {}", q(&p.name));
            if floating_pools.contains(p.name.as_str()) {
                let enc = match self.opts.floating_ip_encapsulation {
                    DsrEncapsulation::None => "none",
                    DsrEncapsulation::Ipip => "ipip",
                    DsrEncapsulation::Gue => "gue",
                };
                let _ = writeln!(
                    w,
                    "dsr_encapsulation = {}  # serves floating-IP rules; \"none\" (MAC rewrite) needs members on-link of an interface",
                    q(enc)
                );
            }
            if p.members.is_empty() && p.nic_members.is_empty() {
                let _ = writeln!(w, "members = []");
                continue;
            }
            let _ = writeln!(w, "members = [");
            for mem in &p.members {
                let admin = mem
                    .admin_state
                    .map(|s| format!(", admin_state = {}", q(s)))
                    .unwrap_or_default();
                let _ = writeln!(
                    w,
                    "  {{ name = {}, address = {}{admin} }},",
                    q(&mem.name),
                    q(&mem.addr.to_string())
                );
            }
            for nic in &p.nic_members {
                let _ = writeln!(
                    w,
                    "  # FILL IN: NIC IP configuration {} is a member; its address is not in the input",
                    comment_text(nic)
                );
                let _ = writeln!(
                    w,
                    "  # {{ name = {}, address = \"FILL IN\" }},",
                    qc(nic.split('/').next().unwrap_or(nic))
                );
            }
            let _ = writeln!(w, "]");
        }

        for p in &m.probes {
            let _ = writeln!(w, "\n[[probes]]");
            let _ = writeln!(w, "name = {}", q(&p.name));
            let _ = writeln!(w, "protocol = {}", q(p.protocol));
            if let Some(port) = p.port {
                let _ = writeln!(w, "port = {port}");
            }
            if let Some(rp) = &p.request_path {
                let _ = writeln!(w, "request_path = {}", q(rp));
            }
            if let Some(i) = p.interval {
                let _ = writeln!(w, "interval_seconds = {i}");
            }
            if let Some(t) = p.threshold {
                let _ = writeln!(w, "probe_threshold = {t}");
            }
        }

        for r in &m.lb_rules {
            let _ = writeln!(w, "\n[[load_balancing_rules]]");
            let _ = writeln!(w, "name = {}", q(&r.c.name));
            let _ = writeln!(w, "frontend = {}", q(&r.c.frontend));
            let _ = writeln!(w, "protocol = {}", q(r.c.protocol));
            if let Some(p) = r.frontend_port {
                let ha = if p == 0 && r.c.protocol == "all" {
                    "  # HA ports"
                } else {
                    ""
                };
                let _ = writeln!(w, "frontend_port = {p}{ha}");
            }
            if let Some(p) = r.c.backend_port {
                let _ = writeln!(w, "backend_port = {p}");
            }
            let _ = writeln!(w, "backend_pool = {}", q(&r.pool));
            if let Some(p) = &r.probe {
                let _ = writeln!(w, "probe = {}", q(p));
            }
            if let Some(d) = r.distribution {
                let _ = writeln!(w, "load_distribution = {}", q(d));
            }
            tail(w, "", &r.c);
        }

        for r in &m.nat_rules {
            match r {
                NatRule::Range {
                    c,
                    start,
                    end,
                    pool,
                } => {
                    let _ = writeln!(w, "\n[[inbound_nat_rules]]");
                    let _ = writeln!(w, "name = {}", q(&c.name));
                    let _ = writeln!(w, "frontend = {}", q(&c.frontend));
                    let _ = writeln!(w, "protocol = {}", q(c.protocol));
                    if let Some(s) = start {
                        let _ = writeln!(w, "frontend_port_range_start = {s}");
                    }
                    if let Some(e) = end {
                        let _ = writeln!(w, "frontend_port_range_end = {e}");
                    }
                    let _ = writeln!(w, "backend_pool = {}", q(pool));
                    if let Some(p) = c.backend_port {
                        let _ = writeln!(w, "backend_port = {p}");
                    }
                    tail(w, "", c);
                }
                NatRule::Single {
                    c,
                    frontend_port,
                    nic,
                    pool,
                } => {
                    let _ = writeln!(
                        w,
                        "\n# FILL IN: this rule targets {}; add that VM to a pool as a member, set",
                        nic.as_deref()
                            .map(|n| format!("NIC IP configuration {}", comment_text(n)))
                            .unwrap_or_else(|| "one VM's NIC".to_string())
                    );
                    let _ = writeln!(w, "# `target` and uncomment the rule.");
                    let _ = writeln!(w, "# [[inbound_nat_rules]]");
                    let _ = writeln!(w, "# name = {}", qc(&c.name));
                    let _ = writeln!(w, "# frontend = {}", qc(&c.frontend));
                    let _ = writeln!(w, "# protocol = {}", q(c.protocol));
                    if let Some(p) = frontend_port {
                        let _ = writeln!(w, "# frontend_port = {p}");
                    }
                    let _ = writeln!(
                        w,
                        "# target = {{ pool = {}, member = {} }}",
                        qc(pool.as_deref().unwrap_or("FILL IN")),
                        qc(nic
                            .as_deref()
                            .and_then(|n| n.split('/').next())
                            .unwrap_or("FILL IN"))
                    );
                    if let Some(p) = c.backend_port {
                        let _ = writeln!(w, "# backend_port = {p}");
                    }
                    tail(w, "# ", c);
                }
            }
        }

        for r in &m.outbound {
            let _ = writeln!(w, "\n[[outbound_rules]]");
            let _ = writeln!(w, "name = {}", q(&r.name));
            let fes: Vec<String> = r.frontends.iter().map(|f| q(f)).collect();
            let _ = writeln!(w, "frontends = [{}]", fes.join(", "));
            let _ = writeln!(w, "backend_pool = {}", q(&r.pool));
            if let Some(p) = r.protocol {
                let _ = writeln!(w, "protocol = {}", q(p));
            }
            if let Some(p) = r.ports {
                let _ = writeln!(w, "allocated_outbound_ports = {p}");
            }
            if let Some(i) = r.idle {
                let _ = writeln!(w, "idle_timeout_minutes = {i}");
            }
            if r.reset {
                let _ = writeln!(w, "enable_tcp_reset = true");
            }
        }
        o
    }
}

/// Writes the floating-IP, idle-timeout and TCP-reset lines of a rule, each prefixed.
fn tail(w: &mut String, prefix: &str, c: &Common) {
    if c.floating {
        let _ = writeln!(w, "{prefix}enable_floating_ip = true");
    }
    if let Some(i) = c.idle {
        let _ = writeln!(w, "{prefix}idle_timeout_minutes = {i}");
    }
    if c.reset {
        let _ = writeln!(w, "{prefix}enable_tcp_reset = true");
    }
}

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML basic string inside a `#` comment: [`q`], kept on one line by [`comment_text`].
fn qc(s: &str) -> String {
    comment_text(&q(s))
}

/// Input text for a `#` comment: control characters (a newline would end the comment, and TOML
/// forbids the others in comments) are written as escapes, so the output stays valid TOML.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `nic/ipconfig` from a NIC IP configuration id (`.../networkInterfaces/NIC/ipConfigurations/IPC`).
fn nic_label(id: &str) -> String {
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
    use serde_json::json;

    fn ctx_with(vars: Value, params: Value) -> Value {
        json!({ "variables": vars, "parameters": params })
    }

    #[test]
    fn ids_resolve_by_last_segment() {
        let root = json!({});
        let c = Ctx::of(&root);
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
        let c = Ctx::of(&root);
        assert_eq!(
            c.id_name("[resourceId('Microsoft.Network/loadBalancers/frontendIPConfigurations', variables('lbName'), variables('feName'))]").unwrap(),
            "fe-prod"
        );
        assert_eq!(
            c.id_name("[concat(resourceId('Microsoft.Network/loadBalancers', variables('lbName')), '/backendAddressPools/pool1')]").unwrap(),
            "pool1"
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
        let c = Ctx::of(&root);
        assert_eq!(
            c.value(&json!("[concat('it''s', '-x')]"), 0).unwrap(),
            Val::Str("it's-x".into())
        );
        assert_eq!(
            c.value(&json!("[[not an expression]"), 0).unwrap(),
            Val::Str("[not an expression]".into())
        );
        assert_eq!(c.value(&json!("[int('42')]"), 0).unwrap(), Val::Num(42));
    }

    #[test]
    fn variable_cycles_are_errors_not_overflows() {
        let root = ctx_with(
            json!({ "a": "[variables('b')]", "b": "[variables('a')]" }),
            json!({}),
        );
        let c = Ctx::of(&root);
        assert!(c.id_name("[variables('a')]").is_err());
    }

    #[test]
    fn nic_labels() {
        assert_eq!(
            nic_label("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1"),
            "vm1-nic/ipconfig1"
        );
        assert_eq!(nic_label("weird"), "weird");
    }

    #[test]
    fn flattened_and_nested_forms_read_the_same() {
        let nested = json!({
            "type": "Microsoft.Network/loadBalancers", "name": "lb",
            "properties": {
                "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }],
                "backendAddressPools": [{ "name": "p", "properties": { "loadBalancerBackendAddresses": [
                    { "name": "a", "properties": { "ipAddress": "10.0.0.4" } } ] } }],
                "loadBalancingRules": [{ "name": "r", "properties": {
                    "frontendIPConfiguration": { "id": "x/frontendIPConfigurations/fe" },
                    "backendAddressPool": { "id": "x/backendAddressPools/p" },
                    "protocol": "Tcp", "frontendPort": 80, "backendPort": 80 } }]
            }
        });
        let flat = json!({
            "type": "Microsoft.Network/loadBalancers", "name": "lb",
            "frontendIpConfigurations": [{ "name": "fe", "privateIpAddress": "10.0.0.9" }],
            "backendAddressPools": [{ "name": "p", "loadBalancerBackendAddresses": [
                { "name": "a", "ipAddress": "10.0.0.4" } ] }],
            "loadBalancingRules": [{ "name": "r",
                "frontendIpConfiguration": { "id": "x/frontendIPConfigurations/fe" },
                "backendAddressPool": { "id": "x/backendAddressPools/p" },
                "protocol": "Tcp", "frontendPort": 80, "backendPort": 80 }]
        });
        let opts = ImportOptions::default();
        let a = import(&nested, &opts).unwrap();
        let b = import(&flat, &opts).unwrap();
        assert_eq!(a.toml, b.toml);
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        crate::config::Config::from_str(&a.toml, "t").unwrap();
    }

    #[test]
    fn missing_required_property_names_the_path() {
        let lb = json!({
            "type": "Microsoft.Network/loadBalancers", "name": "lb",
            "properties": {
                "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }],
                "probes": [{ "name": "p", "properties": { "port": 80 } }]
            }
        });
        let e = import(&lb, &ImportOptions::default()).unwrap_err();
        assert_eq!(e.field, "properties.probes[0].properties.protocol");
        assert!(e.message.contains("required"), "{e}");
    }

    #[test]
    fn symbolic_name_resources_and_nested_children() {
        let t = json!({ "languageVersion": "2.0", "resources": {
            "lb": { "type": "Microsoft.Network/loadBalancers", "name": "lb1", "properties": {
                "frontendIPConfigurations": [{ "name": "fe", "properties": { "privateIPAddress": "10.0.0.9" } }] },
                "resources": [{ "type": "inboundNatRules", "name": "n" }] },
            "pip": { "type": "Microsoft.Network/publicIPAddresses", "name": "pip" }
        }});
        let imp = import(&t, &ImportOptions::default()).unwrap();
        assert_eq!(imp.load_balancer, "lb1");
        assert!(
            imp.warnings[0].starts_with("resources.lb.resources: nested child resources"),
            "{:?}",
            imp.warnings
        );
    }
}
