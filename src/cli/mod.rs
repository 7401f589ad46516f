//! Subcommand implementations behind the `vipmux` binary; one file per subcommand.

pub mod bgp;
pub mod capture;
pub mod check;
pub mod diagnose;
pub mod drain;
pub mod flows;
pub mod generate;
pub mod import_azure;
pub mod pktgen;
pub mod reload;
pub mod run;
pub mod status;

/// What every subcommand returns: an exit code, or an error printed as `vipmux: <error>`.
pub type CliResult = Result<std::process::ExitCode, Box<dyn std::error::Error>>;
