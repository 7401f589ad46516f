//! `vipmux run`: the appliance in the foreground (`--config`, see `crate::appliance`), or ports-only mode
//! (`--profile`): EAL, ports up, link state, per-second port counters until SIGINT/SIGTERM, and
//! optionally forwarding workers (`--forward io|macswap`, the loop in `crate::runtime::forward`) to
//! measure the tight-loop rate.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::ArgGroup;

use super::CliResult;
use crate::dpdk::{Eal, Mempool, Port, PortConfig, PortStats, Profile, QueueId};
use crate::platform::signal;
use crate::runtime::forward::{self, forward_worker, ForwardTotals};

/// Arguments of `vipmux run`.
#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["config", "profile"])))]
pub struct Args {
    /// Appliance configuration file (TOML, see README).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Ports-only mode: a DPDK profile (dpdk-config/*.toml); brings the ports up and prints counters.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Extra EAL argument appended to the profile's (repeatable), e.g. --eal=--vdev=net_null0.
    #[arg(long = "eal", allow_hyphen_values = true)]
    pub eal: Vec<String>,
    /// Ports-only mode: forward between ports on pinned workers (port 2k <-> 2k+1; a lone port
    /// sends back out of itself).
    #[arg(long, value_enum, requires = "profile")]
    pub forward: Option<ForwardArg>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Log format on stderr (filter from VIPMUX_LOG or RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = crate::control::LogFormat::Human)]
    pub log_format: crate::control::LogFormat,
}

/// What a forwarding worker does to each packet.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardArg {
    /// Send packets out unchanged.
    Io,
    /// Swap source and destination MAC addresses.
    Macswap,
}

impl From<ForwardArg> for forward::ForwardMode {
    fn from(mode: ForwardArg) -> Self {
        match mode {
            ForwardArg::Io => forward::ForwardMode::Io,
            ForwardArg::Macswap => forward::ForwardMode::Macswap,
        }
    }
}

/// Entry point of `vipmux run`.
pub fn main(args: Args) -> CliResult {
    if let Some(config) = &args.config {
        crate::control::init_logging(args.log_format, "info")?;
        return crate::appliance::run(config, &args.eal);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match &args.profile {
        Some(profile) => ports_only(profile, &args),
        None => Err("run: give --config FILE or --profile FILE".into()),
    }
}

fn ports_only(profile_path: &std::path::Path, args: &Args) -> CliResult {
    let profile = Profile::load(profile_path)?;
    signal::install_stop_handler()?;
    let (eal, _plan) = Eal::init_profile(&profile, &args.eal)?;
    let pool = Mempool::from_profile(eal, "vipmux_pool", &profile.mempool)?;
    let mut ports = Vec::with_capacity(profile.ports.len());
    for p in &profile.ports {
        ports.push(Port::open(eal, &p.name, &PortConfig::from(p), &pool)?);
    }
    for port in &ports {
        let info = port.info()?;
        let rss = match port.rss_hash_types() {
            0 => "off".to_owned(),
            hf => format!("{hf:#x}"),
        };
        println!(
            "{} ({}, driver {}): link {}, mac {}, {} rx / {} tx queues, RSS {rss}",
            port.name(),
            port.id(),
            info.driver,
            port.link()?,
            port.mac_addr()?,
            port.rx_queue_count(),
            port.tx_queue_count(),
        );
    }

    let workers = match args.forward {
        Some(_) => {
            let cores = profile.worker_cores();
            if cores.is_empty() {
                return Err(format!(
                    "{}: --forward needs worker cores: cores = [main, worker, ...]",
                    profile_path.display()
                )
                .into());
            }
            for port in &ports {
                if usize::from(port.rx_queue_count().min(port.tx_queue_count())) < cores.len() {
                    return Err(format!(
                        "{}: {} worker cores need as many rx and tx queues on port {}",
                        profile_path.display(),
                        cores.len(),
                        port.name()
                    )
                    .into());
                }
            }
            cores.to_vec()
        }
        None => Vec::new(),
    };

    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs(s));
    let totals = std::thread::scope(
        |s| -> Result<Vec<ForwardTotals>, Box<dyn std::error::Error>> {
            let mut handles = Vec::new();
            if let Some(mode) = args.forward {
                let mode = forward::ForwardMode::from(mode);
                for (w, &core) in workers.iter().enumerate() {
                    let lanes = forward::lanes(&ports, QueueId(w as u16))?;
                    let adaptive = profile.adaptive_polling;
                    handles.push(s.spawn(move || forward_worker(eal, core, mode, lanes, adaptive)));
                }
            }
            monitor(&ports, deadline, workers.len());
            signal::request_stop();
            let mut totals = Vec::new();
            for h in handles {
                totals.push(h.join().map_err(|_| "forwarding worker panicked")??);
            }
            Ok(totals)
        },
    )?;
    for (w, t) in totals.iter().enumerate() {
        println!(
            "worker {w}: rx {} tx {} tx_dropped {}",
            t.rx, t.tx, t.tx_dropped
        );
    }
    for port in ports {
        let name = port.name().to_owned();
        port.close()?;
        println!("{name}: stopped and closed");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Prints per-second counters until a stop signal or the deadline.
fn monitor(ports: &[Port], deadline: Option<Instant>, workers: usize) {
    let start = Instant::now();
    let mut last_time = start;
    let mut last: Vec<PortStats> = ports
        .iter()
        .map(|p| p.stats().unwrap_or_default())
        .collect();
    let mut next = start + Duration::from_secs(1);
    while !signal::stop_requested() && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now < next {
            continue;
        }
        next += Duration::from_secs(1);
        let secs = now.duration_since(last_time).as_secs_f64();
        last_time = now;
        let mut line = format!("[{:>4}s]", now.duration_since(start).as_secs());
        let mut total_tx = 0u64;
        for (port, prev) in ports.iter().zip(last.iter_mut()) {
            let Ok(cur) = port.stats() else { continue };
            let d = cur.since(prev);
            *prev = cur;
            total_tx += d.opackets;
            line.push_str(&format!(
                " | {}: rx {:.2} Mpps tx {:.2} Mpps",
                port.name(),
                d.ipackets as f64 / secs / 1e6,
                d.opackets as f64 / secs / 1e6
            ));
            for (label, v) in [
                ("imissed", d.imissed),
                ("ierrors", d.ierrors),
                ("oerrors", d.oerrors),
                ("rx_nombuf", d.rx_nombuf),
            ] {
                if v > 0 {
                    line.push_str(&format!(" {label} +{v}"));
                }
            }
        }
        if workers > 0 && total_tx > 0 {
            let pps = total_tx as f64 / secs;
            line.push_str(&format!(
                " | forwarded {:.2} Mpps, {:.1} ns/pkt per worker",
                pps / 1e6,
                1e9 * workers as f64 / pps
            ));
        }
        println!("{line}");
    }
}
