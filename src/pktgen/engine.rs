//! The DPDK side: EAL and port from a profile, one pinned DPDK-registered thread that sends bursts
//! of 32 from pre-built templates (token-bucket paced) and receives, checks and answers ARP on
//! the same port, and a monitor printing the live line once per second.
//!
//! In mode synflood with an established share, a [`ShareMix`](super::frames::ShareMix) picks per
//! frame between the next established flow's data segment and a random-source SYN, and a
//! [`BurstClasses`](super::frames::BurstClasses) mask follows the frames through partial sends so
//! the established ones are counted as the device takes them.
//!
//! Outbound (`--direction outbound`), the members' flows first open: each flow's SYN is sent until
//! its translated frame came back (vipmux drops a member's data segment without a translation),
//! then the measured run starts.
//!
//! This module plans the run and reports it; the pinned thread itself lives in `engine::worker`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::check::{Checker, Expect};
use super::flows::{self, Family, FlowSet};
use super::frames::{FrameKind, Templates};
use super::outbound::{OutboundCheck, OutboundFlows};
use super::report::{self, FloodSplit, MemberSpread, Summary};
use super::{Mode, TrafficDirection};
use crate::balance::snapshot::{Health, Snapshot};
use crate::config::Config;
use crate::dpdk::profile::PortProfile;
use crate::dpdk::{DpdkThread, Eal, Mempool, Port, PortConfig, Profile, QueueId};
use crate::platform::signal;
use crate::wire::MacAddr;

mod worker;
use worker::{FrameChoice, Worker};

/// Template strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateChoice {
    /// Per flow when that takes at most 64 MiB, else per target.
    Auto,
    /// One pre-built frame per flow, copied into each mbuf.
    PerFlow,
    /// One frame per target, copied and patched to the flow's client per packet.
    Patch,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// DPDK profile (EAL arguments, port, cores, mempool).
    pub profile: Profile,
    /// Extra EAL arguments, appended to the profile's.
    pub eal: Vec<String>,
    /// The vipmux configuration whose rules are the targets.
    pub config: Config,
    /// Number of flows.
    pub flows: u32,
    /// Send only to this rule.
    pub rule: Option<String>,
    /// Traffic mode.
    pub mode: Mode,
    /// Clients toward frontends, or an outbound rule's members through SNAT.
    pub direction: TrafficDirection,
    /// Mode synflood: percent of frames (0..=100) that are data segments of the established
    /// flows instead of random-source SYNs.
    pub established_share: u8,
    /// Frame size, FCS included.
    pub size: usize,
    /// Packets per second (0 = as fast as possible).
    pub rate: u64,
    /// How long to send.
    pub duration: Duration,
    /// What returned frames should look like.
    pub expect: Expect,
    /// Template strategy.
    pub templates: TemplateChoice,
    /// Verify checksums on every N-th received frame (1 = all, 0 = none).
    pub checksum_every: u32,
    /// Destination MAC (else resolved by ARP for the first VIP, else broadcast).
    pub dst_mac: Option<MacAddr>,
    /// The generator's own address (never answered for; ARP requests come from it).
    pub gen_ip: Option<Ipv4Addr>,
    /// Address family of the flows (`--family 6`: IPv6 flows to the IPv6 frontends; frames are
    /// then at least [`super::frames6::MIN_SIZE6`] bytes).
    pub family: Family,
    /// The generator's own IPv6 address (default: the first `address6` prefix's `::fffe`).
    pub gen_ip6: Option<Ipv6Addr>,
    /// Port to use (default: the profile's first).
    pub port: Option<String>,
    /// Print the live line (to stderr) once per second.
    pub live: bool,
    /// Queue pairs to open and spread flows over (flow `i` leaves on tx queue `i mod queues`);
    /// 0 = the profile's queue counts, sending on queue 0.
    pub queues: u16,
    /// Which queue each flow leaves on when `queues` > 1.
    pub spread: QueueChoice,
    /// Stop after this many frames (0 = run for `duration`): with it, flow `i` of `n` gets
    /// exactly `count / n` frames, plus one when `i < count mod n`.
    pub count: u64,
    /// Before sending, answer ARP and neighbour solicitations until this file exists (at most
    /// [`HOLD_WAIT`]): a script starts the run once the device under test is ready.
    pub wait_for_file: Option<std::path::PathBuf>,
    /// After the run (its frames drained), keep the link up, answering ARP and neighbour
    /// solicitations, until this file exists (at most [`HOLD_WAIT`]): a script stops the device
    /// under test while it is still connected (testpmd prints its cycle totals on stop only while
    /// its port's counters are live, and memif clears them when the peer leaves).
    pub hold_after_file: Option<std::path::PathBuf>,
}

/// How flows are spread over several tx queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum QueueChoice {
    /// Flow `i` on queue `i mod queues` ([`queue_of_flow`]): about `1 - 1/queues` of the flows land
    /// on a queue whose worker does not own them (the software hand-off's load).
    #[default]
    Flow,
    /// Each flow on the queue of its owner (docs/design.md §6.2), as a NIC steering by the
    /// ownership rule would deliver it: no hand-off.
    Owner,
}

/// The tx queue flow `flow` leaves on when flows are spread over `queues` queues.
pub fn queue_of_flow(flow: u32, queues: u16) -> u16 {
    (flow % u32::from(queues.max(1))) as u16
}

const TEMPLATE_BUDGET: usize = 64 << 20;
/// The longest [`Options::wait_for_file`] holds the sending back, and
/// [`Options::hold_after_file`] the link up after the run.
pub const HOLD_WAIT: Duration = Duration::from_secs(60);

/// Counters the worker publishes for the monitor.
#[derive(Debug, Default)]
struct Shared {
    tx: AtomicU64,
    rx: AtomicU64,
    errors: AtomicU64,
    sending: AtomicU64,
    est_tx: AtomicU64,
    est_rx: AtomicU64,
    flood_rx: AtomicU64,
}

/// The default generator address: the last host of the first interface's subnet but one.
fn default_gen_ip(snapshot: &Snapshot) -> Ipv4Addr {
    match snapshot.interfaces.first() {
        Some(i) => {
            let c = i.address;
            let mask = c.mask();
            let bcast = (u32::from(c.addr) & mask) | !mask;
            Ipv4Addr::from(bcast.wrapping_sub(1))
        }
        None => Ipv4Addr::new(198, 19, 255, 254),
    }
}

/// The generator's own IPv6 address: the first interface's `address6` prefix with host part
/// `::fffe` (its Neighbour Solicitations come from it).
fn default_gen_ip6(snapshot: &Snapshot) -> Ipv6Addr {
    let net = snapshot
        .interfaces
        .iter()
        .find_map(|i| i.address6)
        .map_or(flows::CLIENT6_PREFIX, |c| {
            u128::from(c.addr) & (u128::MAX << (128 - u32::from(c.prefix_len.min(112))))
        });
    Ipv6Addr::from(net | 0xfffe)
}

/// The options as run: IPv6 frames are at least [`super::frames6::MIN_SIZE6`] bytes.
fn effective(opts: &Options) -> Options {
    let mut o = opts.clone();
    if o.family == Family::V6 {
        o.size = o.size.max(super::frames6::MIN_SIZE6);
    }
    o
}

/// What the generator sends, decided from the options before any port is opened.
struct Plan {
    snapshot: Snapshot,
    flowset: FlowSet,
    gen_ip: Ipv4Addr,
    synflood: bool,
    kinds: &'static [FrameKind],
    per_flow: bool,
    /// With `--direction outbound`: the members' flows.
    outbound: Option<OutboundFlows>,
}

/// Compiles the configuration, picks the targets and flows, and checks the mode's options.
fn plan(opts: &Options) -> Result<Plan, Box<dyn std::error::Error>> {
    let snapshot = Snapshot::compile(&opts.config, &Health::all_up(&opts.config));
    if opts.direction == TrafficDirection::Outbound {
        return plan_outbound(opts, snapshot);
    }
    let targets = flows::targets_of(&snapshot, opts.rule.as_deref(), opts.family)?;
    if targets.len() > usize::from(u16::MAX) {
        return Err("more than 65535 targets".into());
    }
    let flowset = FlowSet::new(opts.flows, targets);
    let gen_ip = opts.gen_ip.unwrap_or_else(|| default_gen_ip(&snapshot));
    let synflood = opts.mode == Mode::Synflood;
    if opts.established_share > 100 {
        return Err("--established-share is a percentage (0..=100)".into());
    }
    if opts.established_share > 0 && !synflood {
        return Err("--established-share needs --mode synflood".into());
    }
    if synflood && opts.queues > 1 {
        return Err(
            "--queues above 1 spreads flows: use it with --mode syn, established or mix".into(),
        );
    }
    let kinds: &'static [FrameKind] = match opts.mode {
        Mode::Synflood if opts.established_share > 0 => &[FrameKind::Syn, FrameKind::Data],
        Mode::Syn | Mode::Synflood => &[FrameKind::Syn],
        Mode::Established => &[FrameKind::Data],
        Mode::Mix => &[FrameKind::Syn, FrameKind::Data],
    };
    let per_flow = !synflood
        && match opts.templates {
            TemplateChoice::PerFlow => true,
            TemplateChoice::Patch => false,
            TemplateChoice::Auto => {
                Templates::per_flow_bytes(flowset.count, kinds.len(), opts.size) <= TEMPLATE_BUDGET
            }
        };
    Ok(Plan {
        snapshot,
        flowset,
        gen_ip,
        synflood,
        kinds,
        per_flow,
        outbound: None,
    })
}

/// The plan of `--direction outbound`: the members of the outbound rule `--rule` names (else the
/// first), one template per flow, SYNs to open the flows first.
fn plan_outbound(opts: &Options, snapshot: Snapshot) -> Result<Plan, Box<dyn std::error::Error>> {
    let replies = opts.mode != Mode::Syn;
    let out = OutboundFlows::new(&snapshot, opts.rule.as_deref(), opts.flows, replies)?;
    if opts.mode == Mode::Synflood || opts.established_share > 0 {
        return Err("--direction outbound: use --mode syn, established or mix".into());
    }
    if opts.family != Family::V4 {
        return Err("--direction outbound speaks IPv4 only (--family 4)".into());
    }
    if opts.queues > 1 {
        return Err("--direction outbound sends on one queue (--queues 0 or 1)".into());
    }
    if opts.expect != Expect::Rewrite {
        return Err("--direction outbound checks the SNAT: --expect rewrite".into());
    }
    let kinds: &'static [FrameKind] = match opts.mode {
        Mode::Syn => &[FrameKind::Syn],
        _ => &[FrameKind::Syn, FrameKind::Data],
    };
    if Templates::per_flow_bytes(out.units(), kinds.len(), opts.size) > TEMPLATE_BUDGET {
        return Err(format!(
            "--direction outbound builds one frame per flow: {} flows of {} B take more than {} MiB",
            out.count,
            opts.size,
            TEMPLATE_BUDGET >> 20
        )
        .into());
    }
    Ok(Plan {
        gen_ip: opts.gen_ip.unwrap_or_else(|| default_gen_ip(&snapshot)),
        flowset: FlowSet::new(out.units(), vec![out.target()]),
        snapshot,
        synflood: false,
        kinds,
        per_flow: true,
        outbound: Some(out),
    })
}

/// The receive side's checker of `flowset` (outbound when `outbound` is given); `own` is the
/// generator's MAC and address.
fn new_checker(
    snapshot: Snapshot,
    flowset: &FlowSet,
    outbound: Option<&OutboundFlows>,
    opts: &Options,
    synflood: bool,
    own: (MacAddr, Ipv4Addr),
) -> Checker {
    let check = outbound.map(|o| OutboundCheck::new(o.clone(), &snapshot));
    let own6 = opts.gen_ip6.unwrap_or_else(|| default_gen_ip6(&snapshot));
    let checker = Checker::new(
        snapshot,
        flowset.clone(),
        opts.expect,
        synflood,
        own.0,
        own.1,
    )
    .with_own_ip6(own6);
    match check {
        Some(check) => checker.with_outbound(check),
        None => checker,
    }
}

/// Runs the generator and returns its summary.
pub fn run(opts: &Options) -> Result<Summary, Box<dyn std::error::Error>> {
    let opts = &effective(opts);
    let Plan {
        snapshot,
        flowset,
        gen_ip,
        synflood,
        kinds,
        per_flow,
        outbound,
    } = plan(opts)?;

    signal::install_stop_handler()?;
    let (eal, _plan) = Eal::init_profile(&opts.profile, &opts.eal)?;
    let (port_profile, pool, port) = open_port(eal, opts)?;
    let driver = port.info()?.driver;
    let own_mac = port.mac_addr()?;
    let core = generator_core(&opts.profile);
    tracing::info!(
        "pktgen on {} ({driver}), mac {own_mac}, address {gen_ip}, core {core}, {} flows over {} targets",
        port.name(),
        flowset.count,
        flowset.targets.len()
    );
    let mut checker = new_checker(
        snapshot,
        &flowset,
        outbound.as_ref(),
        opts,
        synflood,
        (own_mac, gen_ip),
    );
    let shared = Shared::default();
    // Every rx queue of the port is polled: a memif client (e.g. Open vSwitch) may send on any of
    // the rings the server offers.
    let mut rxqs = (0..port.rx_queue_count().max(1))
        .map(|q| port.rx_queue(QueueId(q)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut txqs = (0..opts.queues.max(1))
        .map(|q| port.tx_queue(QueueId(q)))
        .collect::<Result<Vec<_>, _>>()?;

    let result = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let reg =
                DpdkThread::pin_and_register(eal, core).inspect_err(|_| signal::request_stop())?;
            let _ = reg.lcore();
            let mut w = Worker {
                pool: &pool,
                rxqs: &mut rxqs,
                txqs: &mut txqs,
                checker: &mut checker,
                shared: &shared,
                checksum_every: opts.checksum_every,
                seen: 0,
                rx: 0,
            };
            let frames = FrameChoice {
                kinds,
                per_flow,
                outbound: outbound.as_ref(),
            };
            let out = w.generate(opts, &flowset, &frames, own_mac, gen_ip);
            Ok::<_, crate::dpdk::DpdkError>(out)
        });
        let split = synflood && opts.established_share > 0;
        // Returns when the run is over (the worker then ends, or holds the link for
        // `hold_after_file`, bounded), on a signal, or when the worker ended: no stop to request.
        monitor(&shared, opts.live, split, || worker.is_finished());
        worker
            .join()
            .map_err(|_| "pktgen worker panicked".to_owned())
    });
    let (tx, est_tx, secs) = result??;
    drop(rxqs);
    drop(txqs);
    port.close()?;

    let rx = checker.ok + checker.mismatches.total();
    let flow_tx = if synflood { est_tx } else { tx };
    let mut members = member_spread(&checker, &flowset, opts.expect);
    let unanswered_flows = attribute_loss(&checker, &mut members, flowset.count, flow_tx);
    Ok(Summary {
        port: port_profile.name.clone(),
        driver,
        hugepages: eal.hugepages(),
        core,
        mode: opts.mode,
        direction: opts.direction,
        expect: opts.expect,
        flows: outbound.as_ref().map_or(flowset.count, |o| o.count),
        targets: flowset.targets.len(),
        size: opts.size,
        rate_limit_pps: opts.rate,
        templates: if per_flow { "per_flow" } else { "patch" }.into(),
        duration_secs: secs,
        tx_packets: tx,
        rx_packets: rx,
        tx_mpps: report::mpps(tx, secs),
        rx_mpps: report::mpps(rx, secs),
        loss_percent: report::loss_percent(tx, rx),
        errors: checker.mismatches.total(),
        mismatches: checker.mismatches,
        checksums_checked: checker.checksums_checked,
        arp_replies: checker.arp_replies,
        ignored: checker.ignored,
        members,
        unanswered_flows,
        flood: synflood.then(|| {
            FloodSplit::new(
                opts.established_share,
                tx,
                est_tx,
                checker.established,
                checker.flood,
                secs,
            )
        }),
    })
}

/// Each member's share of the received flows and packets (rewrite mode: members of the targets'
/// rules, and any other member that got packets).
fn member_spread(checker: &Checker, flowset: &FlowSet, expect: Expect) -> Vec<MemberSpread> {
    let snap = checker.snapshot();
    let member_flows = checker.member_flows();
    let mut members = Vec::new();
    if expect == Expect::Rewrite {
        for (i, m) in snap.members.iter().enumerate() {
            let packets = checker.member_packets[i];
            let in_targets = flowset.targets.iter().any(|t| {
                snap.rule(t.rule)
                    .is_some_and(|r| r.members.iter().any(|x| x.index() == i))
            }) || checker
                .outbound()
                .is_some_and(|o| o.flows().members.iter().any(|(m, _)| m.index() == i));
            if packets == 0 && !in_targets {
                continue;
            }
            members.push(MemberSpread {
                pool: snap
                    .pools
                    .get(m.pool.index())
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                name: m.name.clone(),
                address: m.addr.to_string(),
                packets,
                flows: member_flows[i],
                share_percent: if checker.ok > 0 {
                    packets as f64 * 100.0 / checker.ok as f64
                } else {
                    0.0
                },
                lost: 0,
                moved_flows: 0,
            });
        }
    }
    members
}

/// Adds each member's lost frames and moved flows to `members` (matched by address), from each
/// flow's outcome and its share of `flow_tx` frames sent in turn over `count` flows; returns the
/// flows that never answered.
fn attribute_loss(
    checker: &Checker,
    members: &mut [MemberSpread],
    count: u32,
    flow_tx: u64,
) -> u64 {
    let snap = checker.snapshot();
    let count = u64::from(count.max(1));
    let mut unanswered = 0;
    for (f, (member, moved, rx)) in checker.flow_outcomes().enumerate() {
        let sent = flow_tx / count + u64::from((f as u64) < flow_tx % count);
        let Some(m) = member else {
            unanswered += u64::from(sent > 0);
            continue;
        };
        let addr = snap
            .member(m)
            .map(|i| i.addr.to_string())
            .unwrap_or_default();
        let Some(spread) = members.iter_mut().find(|s| s.address == addr) else {
            continue;
        };
        if moved {
            spread.moved_flows += 1;
        } else {
            spread.lost += sent.saturating_sub(rx);
        }
    }
    unanswered
}

/// The profile's port the options name (else its first), opened with a mempool of its own.
fn open_port<'a>(
    eal: &Eal,
    opts: &'a Options,
) -> Result<(&'a PortProfile, Mempool, Port), Box<dyn std::error::Error>> {
    let port_profile = match &opts.port {
        Some(name) => opts.profile.ports.iter().find(|p| &p.name == name),
        None => opts.profile.ports.first(),
    }
    .ok_or("the profile names no such port")?;
    let pool = Mempool::from_profile(eal, "pktgen_pool", &opts.profile.mempool)?;
    let mut pc = PortConfig::from(port_profile);
    if opts.queues > 0 {
        pc.rx_queues = opts.queues;
        pc.tx_queues = opts.queues;
    }
    let port = Port::open(eal, &port_profile.name, &pc, &pool)?;
    Ok((port_profile, pool, port))
}

/// The core the generator's thread runs on: the profile's first worker core, else its main core.
fn generator_core(profile: &Profile) -> usize {
    profile
        .worker_cores()
        .first()
        .copied()
        .or(profile.main_core())
        .unwrap_or(0)
}

/// Prints the live line once per second while the worker runs.
/// With `split`, the line also shows the established flows and the flood apart.
fn monitor(shared: &Shared, live: bool, split: bool, finished: impl Fn() -> bool) {
    let start = Instant::now();
    let (mut last_tx, mut last_rx, mut last_t) = (0u64, 0u64, start);
    let (mut last_etx, mut last_erx, mut last_frx) = (0u64, 0u64, 0u64);
    let mut next = start + Duration::from_secs(1);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if shared.sending.load(Ordering::Relaxed) == 2 || signal::stop_requested() || finished() {
            return;
        }
        let now = Instant::now();
        if now < next {
            continue;
        }
        next += Duration::from_secs(1);
        let (tx, rx) = (
            shared.tx.load(Ordering::Relaxed),
            shared.rx.load(Ordering::Relaxed),
        );
        let (etx, erx, frx) = (
            shared.est_tx.load(Ordering::Relaxed),
            shared.est_rx.load(Ordering::Relaxed),
            shared.flood_rx.load(Ordering::Relaxed),
        );
        if live {
            let secs = now.duration_since(last_t).as_secs_f64();
            let mut line = report::live_line(
                now.duration_since(start).as_secs(),
                tx - last_tx,
                rx - last_rx,
                secs,
                shared.errors.load(Ordering::Relaxed),
            );
            if split {
                line.push_str(&report::live_split(
                    etx - last_etx,
                    erx - last_erx,
                    frx - last_frx,
                    secs,
                ));
            }
            eprintln!("{line}");
        }
        (last_tx, last_rx, last_t) = (tx, rx, now);
        (last_etx, last_erx, last_frx) = (etx, erx, frx);
    }
}
