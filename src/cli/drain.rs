//! `vipmux drain`: withdraw every VIP, let the appliance forward until traffic stops or the
//! deadline passes, and wait for it to stop.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::CliResult;
use crate::control::client::ClientArgs;
use crate::control::{render, ControlError, Request};

/// Longest deadline the appliance accepts (one day).
const MAX_DEADLINE_SECS: f64 = 86_400.0;
/// Extra time past the deadline the command waits for the appliance to exit.
const EXIT_GRACE: Duration = Duration::from_secs(15);

/// Arguments of `vipmux drain`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket, config, output and timeout options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Longest drain in seconds; the appliance stops then even if traffic continues [default: 60].
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Return once draining started instead of waiting for the appliance to stop.
    #[arg(long)]
    pub no_wait: bool,
}

/// Entry point of `vipmux drain`.
pub fn main(args: Args) -> CliResult {
    let deadline_ms = args
        .deadline
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(|d| (d.min(MAX_DEADLINE_SECS) * 1000.0) as u64);
    let data = args.client.request(&Request::Drain { deadline_ms })?;
    if args.client.json {
        print!("{}", render::pretty_json(&data));
    } else {
        println!("draining: VIPs withdrawn; forwarding until traffic stops or the deadline passes");
    }
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let limit = Duration::from_millis(deadline_ms.unwrap_or(60_000)) + EXIT_GRACE;
    let until = Instant::now() + limit;
    while Instant::now() < until {
        match args.client.request(&Request::Status) {
            // A busy appliance times out: keep waiting; any other I/O error means it is gone.
            Err(e) if e.is_timeout() => {}
            Err(ControlError::Io(..)) => {
                if !args.client.json {
                    println!("stopped");
                }
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e.into()),
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    eprintln!(
        "vipmux: the appliance is still running {}s after the drain started",
        limit.as_secs()
    );
    Ok(ExitCode::FAILURE)
}
