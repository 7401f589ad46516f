//! `vipmux pktgen`: the DPDK traffic generator (see `vipmux::pktgen`). Live line per second on
//! stderr, the summary on stdout (text, or JSON with `--json`).
//!
//! It is also a gate: the exit code is [`EXIT_WRONG_FRAMES`] when any returned frame was wrong
//! (a rewrite other than the configuration's, a bad IPv4 or TCP/UDP checksum) or when no frame
//! came back at all, after the summary is printed. Every returned frame's checksums are verified
//! unless `--sample-checksums N` asks for every N-th only (the benchmarks' setting).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use super::CliResult;
use crate::config::Config;
use crate::dpdk::Profile;
use crate::pktgen::engine::QueueChoice;
use crate::pktgen::{self, Expect, Family, Mode, Options, TemplateChoice, TrafficDirection};
use crate::wire::MacAddr;

/// Arguments of `vipmux pktgen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DPDK profile: port (vdev or NIC), cores, mempool (e.g. dpdk-config/memif-pktgen.toml).
    #[arg(long)]
    pub profile: PathBuf,
    /// Extra EAL argument appended to the profile's (repeatable), e.g. --eal=--file-prefix=gen.
    #[arg(long = "eal", allow_hyphen_values = true)]
    pub eal: Vec<String>,
    /// vipmux configuration whose load-balancing rules' frontends are the targets.
    #[arg(long)]
    pub config: PathBuf,
    /// Number of distinct flows (client ip:port), spread over the targets.
    #[arg(long, default_value_t = 1024)]
    pub flows: u32,
    /// Send only to this rule (load-balancing or inbound NAT; with --direction outbound, the
    /// outbound rule whose members send, default the first).
    #[arg(long)]
    pub rule: Option<String>,
    /// inbound: clients (198.18.0.0/16) toward the rules' frontends; outbound: an outbound rule's
    /// members toward remote hosts (198.18.0.0/16 standing for the internet), each returned frame
    /// checked for the SNAT (the rule's frontend IP, a port of the member's block, the same for
    /// every frame of a flow).
    #[arg(long, value_enum, default_value_t = TrafficDirection::Inbound)]
    pub direction: TrafficDirection,
    /// Traffic: SYNs, established data segments, a mix, or a SYN flood from random sources.
    #[arg(long, value_enum, default_value_t = Mode::Established)]
    pub mode: Mode,
    /// With --mode synflood: percent of frames that are data segments of the --flows established
    /// flows (the rest are random-source SYNs); the summary reports both parts apart.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub established_share: u8,
    /// Frame size in bytes including the FCS (64..=1518).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(64..=1518))]
    pub size: u16,
    /// Packets per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds to send.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Print the final summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// What returned frames must look like: rewritten per the config, or echoed unchanged
    /// (a reflector such as dpdk-testpmd --forward-mode=macswap).
    #[arg(long, value_enum, default_value_t = ExpectArg::Rewrite)]
    pub expect: ExpectArg,
    /// Frame templates: one per flow, one per target patched per packet, or auto (per flow up to 64 MiB).
    #[arg(long, value_enum, default_value_t = TemplatesArg::Auto)]
    pub templates: TemplatesArg,
    /// Verify IP/L4 checksums on every N-th received frame only (default: every frame).
    #[arg(long = "sample-checksums", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub checksum_every: u32,
    /// Destination MAC of generated frames (default: ARP for the first VIP, else broadcast).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// The generator's own IPv4 address (default: the first interface's last host but one).
    #[arg(long)]
    pub gen_ip: Option<Ipv4Addr>,
    /// Address family of the flows: 4, or 6 for IPv6 flows (clients in 2001:2::/96) to the
    /// configuration's IPv6 frontends, each returned frame checked for NAT66 / floating IP /
    /// IPv6 encapsulation; IPv6 frames are at least 78 bytes.
    #[arg(long, value_enum, default_value_t = Family::V4)]
    pub family: Family,
    /// The generator's own IPv6 address (default: the first interface's address6 prefix ::fffe).
    #[arg(long)]
    pub gen_ip6: Option<std::net::Ipv6Addr>,
    /// DPDK port name from the profile (default: its first port).
    #[arg(long)]
    pub port: Option<String>,
    /// Queue pairs to open on the port; flow i leaves on tx queue i mod N (0 = the profile's
    /// queues, sending on queue 0).
    #[arg(long, default_value_t = 0)]
    pub queues: u16,
    /// Stop after sending this many frames (0 = run for --duration); flow i of n then gets
    /// count / n frames, plus one when i < count mod n.
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// With --queues above 1: flow i on queue i mod N (`flow`), or each flow on the queue of the
    /// worker that owns it (`owner`, what a NIC steering by the ownership rule delivers).
    #[arg(long, value_enum, default_value_t = QueueChoice::Flow)]
    pub spread: QueueChoice,
    /// Before sending (link up, destination MAC known), keep answering ARP and neighbour
    /// solicitations until this file exists, at most 60 s: lets a script start the run once the
    /// device under test is ready (e.g. its neighbours resolved).
    #[arg(long, value_name = "PATH")]
    pub wait_for_file: Option<PathBuf>,
    /// After the run (returned frames drained), keep the link up, answering ARP and neighbour
    /// solicitations, until this file exists, at most 60 s; prints `run over: holding the link
    /// until PATH exists` first. Lets a script stop the device under test while it is connected
    /// (testpmd prints its cycle totals on stop only then).
    #[arg(long, value_name = "PATH")]
    pub hold_after_file: Option<PathBuf>,
}

/// Exit code when a returned frame was wrong or none came back (1 is any other failure).
pub const EXIT_WRONG_FRAMES: u8 = 3;

/// `--expect` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectArg {
    /// Rewritten by vipmux per the configuration.
    Rewrite,
    /// Returned unchanged (MACs aside).
    Echo,
}

/// `--templates` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatesArg {
    /// Per flow when it fits 64 MiB, else patch.
    Auto,
    /// One pre-built frame per flow.
    PerFlow,
    /// One frame per target, patched per packet.
    Patch,
}

fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!(
            "--dst-mac {s:?}: expected six hex bytes like 02:00:00:00:00:01"
        ));
    }
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| format!("--dst-mac {s:?}: {p:?} is not a hex byte"))?;
    }
    Ok(MacAddr(mac))
}

/// Entry point of `vipmux pktgen`.
pub fn main(args: Args) -> CliResult {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let profile = Profile::load(&args.profile)?;
    let config = Config::load(&args.config)?;
    let opts = Options {
        profile,
        eal: args.eal,
        config,
        flows: args.flows,
        rule: args.rule,
        mode: args.mode,
        direction: args.direction,
        established_share: args.established_share,
        size: usize::from(args.size),
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
        expect: match args.expect {
            ExpectArg::Rewrite => Expect::Rewrite,
            ExpectArg::Echo => Expect::Echo,
        },
        templates: match args.templates {
            TemplatesArg::Auto => TemplateChoice::Auto,
            TemplatesArg::PerFlow => TemplateChoice::PerFlow,
            TemplatesArg::Patch => TemplateChoice::Patch,
        },
        checksum_every: args.checksum_every,
        dst_mac: args.dst_mac.as_deref().map(parse_mac).transpose()?,
        gen_ip: args.gen_ip,
        family: args.family,
        gen_ip6: args.gen_ip6,
        port: args.port,
        queues: args.queues,
        count: args.count,
        spread: args.spread,
        wait_for_file: args.wait_for_file,
        hold_after_file: args.hold_after_file,
        live: true,
    };
    let summary = pktgen::run(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_text());
    }
    if summary.errors > 0 || summary.rx_packets == 0 {
        eprintln!(
            "pktgen: FAILED: {} of {} returned frames were wrong (see the summary's mismatches), {} sent",
            summary.errors, summary.rx_packets, summary.tx_packets
        );
        return Ok(std::process::ExitCode::from(EXIT_WRONG_FRAMES));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:00:00:0a:0B:ff").unwrap(),
            MacAddr([2, 0, 0, 0xa, 0xb, 0xff])
        );
        assert!(parse_mac("02:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:zz").is_err());
    }
}
