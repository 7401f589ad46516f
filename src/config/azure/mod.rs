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
//! Names are matched case-insensitively, as Azure does. References (`frontendIPConfiguration.id`,
//! `backendAddressPool.id`, `probe.id`) become names by their last path segment. ARM template
//! expressions are evaluated for the small subset that names things: string and number
//! literals, `variables()` and `parameters()` (the values the operator gives in
//! [`ImportOptions::parameters`], else the default values), `resourceId()` and its siblings,
//! `concat()` and `format()`. Copy loops (of resources and of properties) are expanded first.
//! An id or name that cannot be resolved is an [`ImportError`] naming the JSON field.
//!
//! Membership is read from both sides: the pool's own addresses, and the template's network
//! interfaces and scale sets that name the pool. Child resources of the load balancer
//! (`inboundNatRules`, `backendAddressPools`) and inbound NAT pools (as port-range NAT rules)
//! are imported.
//!
//! What the template cannot say is reported, not guessed, and always in the output: a public
//! IP frontend has no address in the template (placeholder, or
//! [`ImportOptions::frontend_addresses`]); members without a static address become commented
//! placeholder members; what vipmux cannot express (IPv6 outbound rules, the Global tier,
//! implicit outbound SNAT) becomes a `NOT TRANSLATED` comment with its reason. Each of these counts in
//! [`Imported::placeholders`] and has its warning, listed at the end of the output too.
//!
//! The import is split by concern: `json` walks the input with the path of every value, `expr`
//! evaluates the ARM expressions that name things, `params` reads the operator's parameter
//! values, `expand` unrolls copy loops, `select`, `read` and `members` (with the typed field
//! accessors of `importer`) turn the template into the importer's `model`, and `render`
//! writes that model as a TOML document (through `toml_edit`, so the placeholders and notes stay
//! as comments).

mod expand;
mod expr;
mod importer;
mod json;
mod members;
mod model;
mod params;
mod read;
mod render;
mod select;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

use super::model::DsrEncapsulation;
use expr::Ctx;
use importer::Importer;
pub use params::{parse_parameter, parse_parameters_file};

/// The ARM resource type of a load balancer.
pub const LOAD_BALANCER_TYPE: &str = "Microsoft.Network/loadBalancers";

/// Options of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Which load balancer to import when the input holds several (by resource name).
    pub name: Option<String>,
    /// Frontend addresses given by the operator (`--frontend-address NAME=IP`); they override
    /// the template's and fill in frontends that have none (public IPs); IPv4 or IPv6.
    pub frontend_addresses: Vec<(String, IpAddr)>,
    /// Template parameter values (`--parameters FILE`, `--parameter NAME=VALUE`), in the order
    /// given; the last of a name wins, and they override the template's default values.
    pub parameters: Vec<(String, Value)>,
    /// `dsr_encapsulation` of pools that serve floating-IP rules. Default: `none`, as Azure
    /// delivers floating-IP traffic unencapsulated (the members must be on-link of an interface).
    pub floating_ip_encapsulation: DsrEncapsulation,
    /// Name of the input shown in the header comment of the output (usually the file name).
    pub source: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: None,
            frontend_addresses: Vec::new(),
            parameters: Vec::new(),
            floating_ip_encapsulation: DsrEncapsulation::None,
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
    /// Number of placeholders (`FILL IN`, or inputs not translated) that the output still
    /// needs to work as the template intends; `--strict` fails when it is not zero.
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
    let ctx = Ctx::of(input, &opts.parameters);
    let expanded = expand::expand(input, &ctx)?;
    let mut imp = Importer::new(ctx, opts);
    let (lb, lb_name) = imp.select(&expanded)?;
    let model = imp.read(&lb)?;
    let toml = render::render(&lb_name, &model, opts, &imp.warnings, &imp.notes);
    Ok(Imported {
        load_balancer: lb_name,
        toml,
        warnings: imp.warnings,
        notes: imp.notes,
        placeholders: imp.placeholders,
    })
}
