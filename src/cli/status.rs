//! `vipmux status`: the appliance's state over the control socket; exits 0 only while it forwards.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::CliResult;
use crate::control::client::ClientArgs;
use crate::control::report::StatusReport;
use crate::control::{render, ControlError, Request};

/// Arguments of `vipmux status`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket, config, output and timeout options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Keep asking for up to SECS seconds until the appliance is forwarding.
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
}

/// Entry point of `vipmux status`.
pub fn main(args: Args) -> CliResult {
    let deadline = args
        .wait
        .filter(|w| w.is_finite() && *w > 0.0)
        .map(|w| Instant::now() + Duration::from_secs_f64(w));
    loop {
        let answer = args.client.request(&Request::Status);
        let forwarding = match &answer {
            Ok(data) => data
                .get("forwarding")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            Err(_) => false,
        };
        // Retry while waiting only when the appliance may still come up: not forwarding yet, or
        // its socket not there / not answering yet.
        let transient = matches!(answer, Ok(_) | Err(ControlError::Io(..)));
        if !forwarding && transient && deadline.is_some_and(|d| Instant::now() < d) {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let data = answer?;
        if args.client.json {
            print!("{}", render::pretty_json(&data));
        } else {
            print!(
                "{}",
                render::typed_or_json::<StatusReport>(&data, render::status)
            );
        }
        if forwarding {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("vipmux: the appliance is not forwarding");
        return Ok(ExitCode::FAILURE);
    }
}
