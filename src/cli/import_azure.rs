//! `vipmux import-azure`: convert an Azure load balancer into a vipmux configuration.
//!
//! The input is an ARM template, a `Microsoft.Network/loadBalancers` resource, or the output of
//! `az network lb show` (see [`crate::config::azure`]); template parameters are given as
//! `az deployment` takes them (`--parameters FILE`, `--parameter NAME=VALUE`). The TOML goes to
//! stdout (or `--output`), with every warning also as a comment at its end; notes and warnings
//! go to stderr, then the result is validated as `vipmux check` would. While placeholders are
//! left, validation errors are expected and reported, and the exit code is 0 (1 with
//! `--strict`); without placeholders a validation error exits 1.

use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::CliResult;
use crate::config::azure::{self, ImportOptions};
use crate::config::{Config, DsrEncapsulation};

/// Arguments of `vipmux import-azure`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// ARM template, load balancer resource or `az network lb show` output (JSON); `-` = stdin.
    pub file: PathBuf,
    /// Load balancer to import when the input holds several (resource name).
    #[arg(long)]
    pub name: Option<String>,
    /// Address of a frontend, overriding the input (repeatable); needed for public IP frontends.
    #[arg(long = "frontend-address", value_name = "NAME=IP", value_parser = parse_frontend_address, action = clap::ArgAction::Append)]
    pub frontend_address: Vec<(String, IpAddr)>,
    /// Template parameter values: an `azuredeploy.parameters.json` file (`@FILE` too), or
    /// `NAME=VALUE` (repeatable; a later value of a name wins).
    #[arg(long = "parameters", value_name = "FILE", action = clap::ArgAction::Append)]
    pub parameters: Vec<String>,
    /// One template parameter value, as JSON when it parses (`3`, `true`), else a string
    /// (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = azure::parse_parameter, action = clap::ArgAction::Append)]
    pub parameter: Vec<(String, serde_json::Value)>,
    /// `dsr_encapsulation` of pools that serve floating-IP rules (Azure delivers them
    /// unencapsulated: `none`, members on-link of an interface).
    #[arg(long, value_name = "none|ipip|gue", default_value = "none", value_parser = parse_encapsulation)]
    pub dsr_encapsulation: DsrEncapsulation,
    /// Write the configuration to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Exit 1 when the output has placeholders left (FILL IN, or inputs not translated).
    #[arg(long)]
    pub strict: bool,
}

/// Parses `NAME=IP` (an IPv6 address is accepted; the frontend then becomes a placeholder).
pub fn parse_frontend_address(s: &str) -> Result<(String, IpAddr), String> {
    let (name, ip) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=IP, e.g. fe-public=20.1.2.3, got {s:?}"))?;
    if name.is_empty() {
        return Err(format!("empty frontend name in {s:?}"));
    }
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok((name.to_string(), ip))
}

/// Parses `none`, `ipip` or `gue`.
pub fn parse_encapsulation(s: &str) -> Result<DsrEncapsulation, String> {
    match s {
        "none" => Ok(DsrEncapsulation::None),
        "ipip" => Ok(DsrEncapsulation::Ipip),
        "gue" => Ok(DsrEncapsulation::Gue),
        _ => Err(format!("{s:?}: valid values are none, ipip, gue")),
    }
}

/// The parameter values of `--parameters` (files, or `NAME=VALUE`) then `--parameter`.
fn parameters(args: &Args) -> Result<Vec<(String, serde_json::Value)>, String> {
    let mut out = Vec::new();
    for p in &args.parameters {
        let file = p.strip_prefix('@').unwrap_or(p);
        if !Path::new(file).exists() && p.contains('=') {
            out.push(azure::parse_parameter(p).map_err(|e| format!("--parameters: {e}"))?);
            continue;
        }
        let text =
            std::fs::read_to_string(file).map_err(|e| format!("{file}: cannot read: {e}"))?;
        out.extend(azure::parse_parameters_file(&text, file).map_err(|e| e.to_string())?);
    }
    out.extend(args.parameter.iter().cloned());
    Ok(out)
}

/// Entry point of `vipmux import-azure`.
pub fn main(args: Args) -> CliResult {
    let source = args.file.display().to_string();
    let text = if source == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t)?;
        t
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| format!("{source}: cannot read: {e}"))?
    };
    let opts = ImportOptions {
        name: args.name.clone(),
        frontend_addresses: args.frontend_address.clone(),
        parameters: parameters(&args)?,
        floating_ip_encapsulation: args.dsr_encapsulation,
        source: args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| source.clone()),
    };
    let imported = azure::import_str(&text, &opts).map_err(|e| format!("{source}: {e}"))?;

    let origin = match &args.output {
        Some(path) => {
            std::fs::write(path, &imported.toml)
                .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
            path.display().to_string()
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(imported.toml.as_bytes())?;
            out.flush()?;
            "<stdout>".to_string()
        }
    };
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    let left = imported.placeholders;
    let todo = match left {
        0 => String::new(),
        1 => "; 1 placeholder left (FILL IN, NOT TRANSLATED)".to_string(),
        n => format!("; {n} placeholders left (FILL IN, NOT TRANSLATED)"),
    };
    let name = &imported.load_balancer;
    match Config::from_str(&imported.toml, &origin) {
        Ok(_) => eprintln!(
            "{origin}: load balancer \"{name}\" imported; the configuration validates{todo}"
        ),
        Err(errors) if left > 0 => {
            eprintln!("{errors}");
            eprintln!(
                "{origin}: load balancer \"{name}\" imported{todo}; the errors above remain until they are filled in (then run `vipmux check`)"
            );
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{origin}: {} error{} in the imported configuration",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if args.strict && left > 0 {
        eprintln!("{origin}: placeholders left and --strict");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_address_parsing() {
        assert_eq!(
            parse_frontend_address("fe=20.1.2.3").unwrap(),
            ("fe".to_string(), IpAddr::from([20, 1, 2, 3]))
        );
        assert!(parse_frontend_address("fe").is_err());
        assert!(parse_frontend_address("=1.2.3.4").is_err());
        assert!(parse_frontend_address("fe=::1").is_ok());
        assert!(parse_frontend_address("fe=x").is_err());
        assert_eq!(parse_encapsulation("gue").unwrap(), DsrEncapsulation::Gue);
        assert!(parse_encapsulation("vxlan").is_err());
    }
}
