//! `vipmux capture`: arms a capture over the control socket, streams the frames the workers copy
//! into a pcapng (or pcap) file the caller owns, and stops at `--count`, `--seconds` or Ctrl-C.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use super::CliResult;
use crate::control::capture::{
    from_hex, CaptureBatch, CaptureOp, CaptureSpec, CaptureStarted, CAPTURE_READ_WAIT,
    DEFAULT_SNAPLEN,
};
use crate::control::client::ClientArgs;
use crate::control::pcap::{PcapFormat, PcapPacket, PcapWriter};
use crate::control::{ControlClient, Request};
use crate::platform::signal;

/// Arguments of `vipmux capture`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket, config, output and timeout options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// A drop reason (e.g. `no_rule`) or exception (e.g. `arp`) to capture; repeatable
    /// [default: every drop reason].
    #[arg(long = "reason", value_name = "R")]
    pub reasons: Vec<String>,
    /// Capture every exception (frame handed to the slow path) too.
    #[arg(long)]
    pub exceptions: bool,
    /// Capture forwarded frames too (as sent, after the rewrite); best with --flow.
    #[arg(long)]
    pub forwarded: bool,
    /// Only frames to this frontend's address.
    #[arg(long, value_name = "F")]
    pub frontend: Option<String>,
    /// Only frames to this rule's address, protocol and ports.
    #[arg(long, value_name = "R")]
    pub rule: Option<String>,
    /// Only frames of one flow, either direction: SRC:PORT-DST:PORT/PROTO.
    #[arg(long, value_name = "FLOW")]
    pub flow: Option<String>,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
    /// Bytes kept of each frame.
    #[arg(long, value_name = "B", default_value_t = DEFAULT_SNAPLEN)]
    pub snaplen: usize,
    /// File format.
    #[arg(long, value_enum, default_value_t = PcapFormat::Pcapng)]
    pub format: PcapFormat,
    /// The file to write (created by this command, so it belongs to the caller).
    #[arg(short = 'w', value_name = "FILE")]
    pub write: PathBuf,
}

/// What a finished capture reports.
#[derive(Debug, Default)]
struct Tally {
    captured: u64,
    matched: u64,
    lost: u64,
}

/// Entry point of `vipmux capture`.
pub fn main(args: Args) -> CliResult {
    signal::install_stop_handler()?;
    let spec = CaptureSpec {
        reasons: args.reasons.clone(),
        exceptions: args.exceptions,
        forwarded: args.forwarded,
        frontend: args.frontend.clone(),
        rule: args.rule.clone(),
        flow: args.flow.clone(),
        snaplen: Some(args.snaplen),
    };
    let path = args.client.socket_path()?;
    let timeout = args.client.timeout().max(CAPTURE_READ_WAIT * 5);
    let mut client = ControlClient::connect_with_timeout(&path, timeout)?;
    let file = File::create(&args.write).map_err(|e| format!("{}: {e}", args.write.display()))?;
    let started: CaptureStarted =
        serde_json::from_value(client.request(&Request::Capture(CaptureOp::Start(spec)))?)?;
    let mut out = PcapWriter::new(
        BufWriter::new(file),
        args.format,
        &started.interfaces,
        started.snaplen as u32,
    )?;
    let stream = stream(&args, &mut client, &mut out, &started);
    // Stop the capture whatever happened while streaming.
    let last = client.request(&Request::Capture(CaptureOp::Stop { id: started.id }));
    let mut tally = stream?;
    let last = serde_json::from_value(last?)?;
    write_batch(&args, &started.interfaces, &mut out, &mut tally, last)?;
    out.flush()?;
    let summary = json!({
        "file": args.write,
        "captured": tally.captured,
        "matched": tally.matched,
        "lost": tally.lost,
    });
    if args.client.json {
        println!("{summary}");
    } else {
        eprintln!(
            "{} frames captured to {} ({} matched, {} lost to a full ring)",
            tally.captured,
            args.write.display(),
            tally.matched,
            tally.lost
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads batches until the count, the time limit or Ctrl-C.
fn stream(
    args: &Args,
    client: &mut ControlClient,
    out: &mut PcapWriter<BufWriter<File>>,
    started: &CaptureStarted,
) -> Result<Tally, Box<dyn std::error::Error>> {
    let id = started.id;
    let deadline = args
        .seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut tally = Tally::default();
    while !signal::stop_requested()
        && deadline.is_none_or(|d| Instant::now() < d)
        && args.count.is_none_or(|n| tally.captured < n)
    {
        let batch =
            serde_json::from_value(client.request(&Request::Capture(CaptureOp::Read { id }))?)?;
        write_batch(args, &started.interfaces, out, &mut tally, batch)?;
        out.flush()?;
    }
    Ok(tally)
}

/// Writes a batch's records (up to `--count` in all) and takes its tallies.
fn write_batch(
    args: &Args,
    interfaces: &[String],
    out: &mut PcapWriter<BufWriter<File>>,
    tally: &mut Tally,
    batch: CaptureBatch,
) -> Result<(), Box<dyn std::error::Error>> {
    tally.matched = tally.matched.max(batch.matched);
    tally.lost = tally.lost.max(batch.lost);
    for r in batch.records {
        if args.count.is_some_and(|n| tally.captured >= n) {
            break;
        }
        let data = from_hex(&r.data)?;
        let interface = interfaces
            .get(r.interface as usize)
            .map_or("?", |s| s.as_str());
        let comment = format!("{}; worker {}; interface {interface}", r.what, r.worker);
        out.write(&PcapPacket {
            interface: r.interface,
            ts_ns: r.ts_ns,
            orig_len: r.orig_len,
            data: &data,
            comment: &comment,
        })?;
        tally.captured += 1;
    }
    Ok(())
}
