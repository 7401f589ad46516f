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
//!
//! The import is split by concern: `json` walks the input with the path of every value, `expr`
//! evaluates the ARM expressions that name things, `select` and `read` (with the typed field
//! accessors of `importer`) turn the template into the importer's `model`, and `render`
//! writes that model as a TOML document (through `toml_edit`, so the placeholders and notes stay
//! as comments).

mod expr;
mod importer;
mod json;
mod model;
mod read;
mod render;
mod select;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::Ipv4Addr;

use serde_json::Value;

use super::model::DsrEncapsulation;
use expr::Ctx;
use importer::Importer;

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
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
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
    let mut imp = Importer::new(Ctx::of(input), opts);
    let (lb, lb_name) = imp.select(input)?;
    let model = imp.read(&lb)?;
    let toml = render::render(&lb_name, &model, opts);
    Ok(Imported {
        load_balancer: lb_name,
        toml,
        warnings: imp.warnings,
        notes: imp.notes,
        placeholders: imp.placeholders,
    })
}
