//! `vipmux flows`: list flow-table entries over the control socket.

use std::process::ExitCode;

use super::CliResult;
use crate::control::client::ClientArgs;
use crate::control::report::FlowsReport;
use crate::control::{render, FlowFilter, Request};

/// Arguments of `vipmux flows`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket, config, output and timeout options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only flows of this frontend.
    #[arg(long)]
    pub frontend: Option<String>,
    /// Only flows of this rule.
    #[arg(long)]
    pub rule: Option<String>,
    /// At most this many flows.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// Entry point of `vipmux flows`.
pub fn main(args: Args) -> CliResult {
    let filter = FlowFilter {
        frontend: args.frontend,
        rule: args.rule,
        limit: Some(args.limit),
    };
    let data = args.client.request(&Request::Flows(filter))?;
    if args.client.json {
        print!("{}", render::pretty_json(&data));
    } else {
        print!(
            "{}",
            render::typed_or_json::<FlowsReport>(&data, render::flows)
        );
    }
    Ok(ExitCode::SUCCESS)
}
