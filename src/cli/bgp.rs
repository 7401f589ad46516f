//! `vipmux bgp-config` (the BGP daemon's configuration and environment from `[bgp]`) and
//! `vipmux bgp-helper` (the process the daemon runs to learn what to announce).

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliResult;
use crate::bgp::{exabgp, helper};
use crate::config::Config;
use crate::control::client::resolve_socket_path;

/// Arguments of `vipmux bgp-config`.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// The vipmux configuration file (with a `[bgp]` table).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Write the daemon's configuration here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the daemon's environment file (ExaBGP: `exabgp --env FILE`) here.
    #[arg(long, value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// The vipmux binary the daemon runs as its helper [default: this binary].
    #[arg(long, value_name = "PATH")]
    pub vipmux: Option<PathBuf>,
}

/// Entry point of `vipmux bgp-config`.
pub fn config_main(args: ConfigArgs) -> CliResult {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let socket = resolve_socket_path(None, Some(&args.config))?;
    let binary = match args.vipmux {
        Some(p) => p,
        None => std::env::current_exe()?,
    };
    let command = format!(
        "{} bgp-helper --socket {}",
        binary.display(),
        socket.display()
    );
    let Some(text) = exabgp::render_config(&config, &command) else {
        eprintln!(
            "vipmux: {}: no [bgp] table (or no next hop)",
            args.config.display()
        );
        return Ok(ExitCode::FAILURE);
    };
    match &args.output {
        Some(p) => std::fs::write(p, text)?,
        None => print!("{text}"),
    }
    if let Some(p) = &args.env {
        std::fs::write(p, exabgp::render_env())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `vipmux bgp-helper`.
#[derive(clap::Args, Debug)]
pub struct HelperArgs {
    /// vipmux's control socket.
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
}

/// Entry point of `vipmux bgp-helper` (run by the BGP daemon, not by hand).
pub fn helper_main(args: HelperArgs) -> CliResult {
    Ok(match helper::run(&args.socket) {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}
