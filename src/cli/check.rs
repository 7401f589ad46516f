//! `vipmux check`: validate a configuration file and print what it compiles to.

use super::CliResult;

/// Arguments of `vipmux check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file to validate.
    pub file: std::path::PathBuf,
}

/// Entry point of `vipmux check`.
pub fn main(args: Args) -> CliResult {
    Err(format!("check: not built yet ({})", args.file.display()).into())
}
