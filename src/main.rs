//! The `vipmux` command line: one binary for the appliance, its checks and its clients.

#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Convert an Azure load balancer (ARM template or `az network lb show` JSON) into a config.
    ImportAzure(cli::import_azure::Args),
    /// Show the appliance's state; exits 0 only while it is forwarding.
    Status(cli::status::Args),
    /// List flow-table entries.
    Flows(cli::flows::Args),
    /// Run the troubleshooting checklist and print its findings.
    Diagnose(cli::diagnose::Args),
    /// Reload the configuration of the running appliance.
    Reload(cli::reload::Args),
    /// DPDK traffic generator: send flows toward a config's VIPs and check what comes back.
    Pktgen(cli::pktgen::Args),
    /// Copy the frames of matching drops (or exceptions, or one flow) to a pcapng/pcap file.
    Capture(cli::capture::Args),
    /// Withdraw every VIP, forward until traffic stops or the deadline passes, then stop.
    Drain(cli::drain::Args),
    /// Print the BGP daemon's configuration (and environment) for a config's `[bgp]` table.
    BgpConfig(cli::bgp::ConfigArgs),
    /// The process the BGP daemon runs: relays vipmux's wanted announcements to it.
    BgpHelper(cli::bgp::HelperArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, ...).
    Completions(cli::generate::CompletionArgs),
    /// Print the manual page (roff), generated from this command line.
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run::main(args),
        Command::Check(args) => cli::check::main(args),
        Command::ImportAzure(args) => cli::import_azure::main(args),
        Command::Status(args) => cli::status::main(args),
        Command::Flows(args) => cli::flows::main(args),
        Command::Diagnose(args) => cli::diagnose::main(args),
        Command::Reload(args) => cli::reload::main(args),
        Command::Pktgen(args) => cli::pktgen::main(args),
        Command::Capture(args) => cli::capture::main(args),
        Command::Drain(args) => cli::drain::main(args),
        Command::BgpConfig(args) => cli::bgp::config_main(args),
        Command::BgpHelper(args) => cli::bgp::helper_main(args),
        Command::Completions(args) => cli::generate::completions(args, Cli::command()),
        Command::Man => cli::generate::man(Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            vipmux::control::logging::eprint_error(&format!("vipmux: {err}"));
            ExitCode::FAILURE
        }
    }
}
