//! `vipmux diagnose`: the "traffic through the load balancer does not work" checklist.

use std::process::ExitCode;

use super::CliResult;
use crate::control::client::ClientArgs;
use crate::control::report::DiagnoseReport;
use crate::control::{render, Request};

/// Arguments of `vipmux diagnose`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket, config, output and timeout options.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Entry point of `vipmux diagnose`: prints the findings; exits 0 even when there are some.
pub fn main(args: Args) -> CliResult {
    let data = args.client.request(&Request::Diagnose)?;
    if args.client.json {
        print!("{}", render::pretty_json(&data));
    } else {
        print!(
            "{}",
            render::typed_or_json::<DiagnoseReport>(&data, render::diagnose)
        );
    }
    Ok(ExitCode::SUCCESS)
}
