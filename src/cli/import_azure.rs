//! `vipmux import-azure`: convert an Azure load balancer into a vipmux configuration.
//!
//! The input is an ARM template, a `Microsoft.Network/loadBalancers` resource, or the output of
//! `az network lb show` (see [`crate::config::azure`]). The TOML goes to stdout (or `--output`),
//! then notes and warnings go to stderr, then the result is validated as `vipmux check` would:
//! on validation errors they are printed and the exit code is 1 (the TOML is still written, so
//! the operator can fill in the placeholders). `--strict` also fails when there are warnings.

use std::io::{Read as _, Write as _};
use std::net::Ipv4Addr;
use std::path::PathBuf;
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
    #[arg(long = "frontend-address", value_name = "NAME=IP", value_parser = parse_frontend_address)]
    pub frontend_address: Vec<(String, Ipv4Addr)>,
    /// `dsr_encapsulation` of pools that serve floating-IP rules.
    #[arg(long, value_name = "none|ipip|gue", default_value = "ipip", value_parser = parse_encapsulation)]
    pub dsr_encapsulation: DsrEncapsulation,
    /// Write the configuration to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Exit 1 when the import produced warnings (placeholders left to fill in).
    #[arg(long)]
    pub strict: bool,
}

/// Parses `NAME=IP`.
pub fn parse_frontend_address(s: &str) -> Result<(String, Ipv4Addr), String> {
    let (name, ip) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=IP, e.g. fe-public=20.1.2.3, got {s:?}"))?;
    if name.is_empty() {
        return Err(format!("empty frontend name in {s:?}"));
    }
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
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
    match Config::from_str(&imported.toml, &origin) {
        Ok(_) => {
            let todo = if imported.placeholders > 0 {
                format!(
                    "; {} placeholder{} (FILL IN) left",
                    imported.placeholders,
                    if imported.placeholders == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            eprintln!(
                "{origin}: load balancer \"{}\" imported; the configuration validates{todo}",
                imported.load_balancer
            );
            if args.strict && !imported.warnings.is_empty() {
                eprintln!(
                    "{origin}: {} warning(s) and --strict",
                    imported.warnings.len()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{origin}: {} error{} in the imported configuration; fill in the placeholders and run `vipmux check`",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_address_parsing() {
        assert_eq!(
            parse_frontend_address("fe=20.1.2.3").unwrap(),
            ("fe".to_string(), Ipv4Addr::new(20, 1, 2, 3))
        );
        assert!(parse_frontend_address("fe").is_err());
        assert!(parse_frontend_address("=1.2.3.4").is_err());
        assert!(parse_frontend_address("fe=::1").is_err());
        assert_eq!(parse_encapsulation("gue").unwrap(), DsrEncapsulation::Gue);
        assert!(parse_encapsulation("vxlan").is_err());
    }
}
