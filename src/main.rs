//! The `vipmux` command line: one binary for the appliance, its checks and its clients.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vipmux::cli;

/// vipmux: a DPDK-accelerated L4 load-balancer MUX with Azure Load Balancer semantics.
#[derive(Parser)]
#[command(name = "vipmux", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance in the foreground until SIGINT/SIGTERM.
    Run(cli::run::Args),
    /// Validate a configuration file and print the compiled summary.
    Check(cli::check::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run::main(args),
        Command::Check(args) => cli::check::main(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vipmux: {err}");
            ExitCode::FAILURE
        }
    }
}
