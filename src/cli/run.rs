//! `vipmux run`: the appliance in the foreground.

use super::CliResult;

/// Arguments of `vipmux run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file (TOML, see README) or a DPDK profile.
    #[arg(long)]
    pub config: std::path::PathBuf,
    /// Extra EAL argument appended to the profile's (repeatable), e.g. --eal=--vdev=net_null0.
    #[arg(long = "eal", allow_hyphen_values = true)]
    pub eal: Vec<String>,
}

/// Entry point of `vipmux run`.
pub fn main(args: Args) -> CliResult {
    Err(format!("run: not built yet ({})", args.config.display()).into())
}
