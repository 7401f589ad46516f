//! `vipmux reload`: ask the appliance to load its configuration again (or another file).

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliResult;
use crate::control::client::ClientArgs;
use crate::control::{render, ControlError, Request};

/// Arguments of `vipmux reload`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket, config, output and timeout options (reloads can take a while: 30 s by default).
    #[command(flatten)]
    pub client: ClientArgs,
    /// Configuration file to load instead of the one in use (made absolute before sending).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Entry point of `vipmux reload`: prints the appliance's summary, or its error and exits non-zero.
pub fn main(mut args: Args) -> CliResult {
    args.client.timeout.get_or_insert(30.0);
    let path = match args.file {
        Some(p) if p.is_relative() => Some(std::env::current_dir()?.join(p)),
        other => other,
    };
    match args.client.request(&Request::Reload { path }) {
        Ok(data) => {
            if args.client.json {
                print!("{}", render::pretty_json(&data));
            } else {
                match data.as_str() {
                    Some(s) => println!("{s}"),
                    None => print!("{}", render::pretty_json(&data)),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ControlError::Remote(msg)) => {
            if args.client.json {
                println!("{}", serde_json::json!({ "ok": false, "error": msg }));
            }
            eprintln!("vipmux: reload failed: {msg}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
