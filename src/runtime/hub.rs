//! The hub: state shared between the workers, the slow-path thread and the control surfaces.
//!
//! The running threads meet here and nowhere else: the bring-up code builds one [`Shared`] and
//! hands an `Arc` of it to every thread and to the control handler.
//!
//! Workers only read the snapshot and neighbour map (`arc-swap` loads, no locks) and publish
//! their counters every [`COUNTER_PUBLISH_INTERVAL`] with a `try_lock` that never waits. The
//! slow path is the only writer of the snapshot and neighbour map. Control requests that need a
//! worker (flow listing) or the slow path (reload) travel over bounded channels with a timeout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;

use super::capture::CaptureTap;
use super::synthetic::{SyntheticQueues, VipAvailability};
use crate::balance::Snapshot;
use crate::bgp::BgpReport;
use crate::config::Config;
use crate::dataplane::{EgressPort, WorkerCounters};
use crate::dataplane::{Exception, NeighbourMap};
use crate::dpdk::link::LinkCounts;
use crate::dpdk::{Mbuf, PortStats};
use crate::flow::{FlowEntry, FlowKey};
use crate::platform::{spsc, SpscConsumer, SpscProducer};
use crate::slowpath::probe::ProberHandle;
use crate::slowpath::SlowPathCounters;

/// How often a worker copies its counters into its [`WorkerSlot`].
pub const COUNTER_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// Frames one worker may have queued for the slow path before it drops (and counts) more.
pub const EXCEPTION_QUEUE_DEPTH: usize = 1024;

/// Frames one worker may have queued for another (one ring per ordered pair of workers)
/// before it drops (and counts) more.
pub const HANDOFF_RING_DEPTH: usize = 1024;

/// A frame handed from the worker that received it to its owner: the mbuf and its ingress
/// interface.
pub type HandoffItem = (Mbuf, u16);

/// One worker's ends of the hand-off rings: to each other worker (`None` at its own index) and
/// from each other worker.
pub struct HandoffEnds {
    /// Producer ends, indexed by the receiving worker.
    pub to: Vec<Option<SpscProducer<HandoffItem>>>,
    /// Consumer ends, one per other worker.
    pub from: Vec<SpscConsumer<HandoffItem>>,
}

impl std::fmt::Debug for HandoffEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandoffEnds")
            .field("from", &self.from.len())
            .finish()
    }
}

/// The hand-off rings of `workers` workers, one per ordered pair of distinct workers
/// ([`HANDOFF_RING_DEPTH`] frames each), as each worker's ends (none with one worker).
pub fn handoff_rings(workers: usize) -> Vec<HandoffEnds> {
    let mut ends: Vec<HandoffEnds> = (0..workers)
        .map(|_| HandoffEnds {
            to: (0..workers).map(|_| None).collect(),
            from: Vec::new(),
        })
        .collect();
    for from in 0..workers {
        for to in 0..workers {
            if from != to {
                let (p, c) = spsc(HANDOFF_RING_DEPTH);
                ends[from].to[to] = Some(p);
                ends[to].from.push(c);
            }
        }
    }
    ends
}

/// The most flows one worker returns to one `flows` request.
pub const MAX_FLOWS_PER_REQUEST: usize = 10_000;

/// A frame handed from a worker to the slow path: the mbuf, its ingress interface, why.
pub type ExceptionItem = (Mbuf, usize, Exception);

/// A worker's answer to a flow listing: up to the limit flows and the worker's total.
#[derive(Debug, Clone, Default)]
pub struct FlowListing {
    /// The flows returned.
    pub flows: Vec<(FlowKey, FlowEntry)>,
    /// The IPv6 flows returned (within the same limit).
    pub flows6: Vec<(crate::flow::FlowKey6, crate::flow::FlowEntry6)>,
    /// The outbound SNAT translations returned (within the same limit).
    pub snat: Vec<crate::flow::Translation>,
    /// The IPv6 outbound SNAT translations returned (within the same limit).
    pub snat6: Vec<crate::flow::Translation<u128>>,
    /// Flows in the worker's table (may exceed `flows.len()`).
    pub total: u64,
    /// The worker's coarse clock (seconds) when it answered, to compute idle times.
    pub now: u32,
}

/// A request to list a worker's flows.
#[derive(Debug)]
pub struct FlowRequest {
    /// At most this many flows.
    pub limit: usize,
    /// Only the outbound SNAT translations (the inbound flows are neither listed nor counted).
    pub outbound_only: bool,
    /// Where the answer goes.
    pub reply: Sender<FlowListing>,
}

/// Where a worker's time goes, like VPP's `show runtime`: loop iterations that found packets
/// ("busy") and their wall time, and the empty ones. Busy time over packets is the worker's real
/// cost per packet whatever its headroom (a polling core is always 100 % on-CPU, so on-CPU time
/// over packets overstates the cost of a worker that is not saturated).
#[derive(Debug, Default)]
pub struct WorkerRuntime {
    /// Polls: loop iterations and the rx-only rounds an idle worker spins between them.
    pub polls: AtomicU64,
    /// Loop iterations that received at least one frame.
    pub busy_polls: AtomicU64,
    /// Nanoseconds spent in busy iterations (each from its start to the next one's start).
    pub busy_ns: AtomicU64,
    /// The longest busy iteration so far, nanoseconds: the worst gap between two polls under
    /// load (a stall shows here).
    pub max_busy_ns: AtomicU64,
    /// Frames this worker received but handed to their owner (docs/design.md §6.2).
    pub handoff_sent: AtomicU64,
    /// Frames other workers handed to this one.
    pub handoff_received: AtomicU64,
    /// Frames dropped because the owner's hand-off ring from this worker was full.
    pub handoff_full: AtomicU64,
    /// Back-pressure episodes: times a tx queue refused frames and the worker kept them and
    /// stopped receiving until they were sent (or freed at the bound).
    pub tx_blocked: AtomicU64,
    /// Nanoseconds tx queues held refused frames (summed over queues).
    pub tx_blocked_ns: AtomicU64,
}

impl WorkerRuntime {
    /// (sent, received, dropped on a full ring) hand-offs as last published.
    pub fn handoffs(&self) -> (u64, u64, u64) {
        (
            self.handoff_sent.load(Ordering::Relaxed),
            self.handoff_received.load(Ordering::Relaxed),
            self.handoff_full.load(Ordering::Relaxed),
        )
    }

    /// (episodes, nanoseconds) of transmit back-pressure as last published.
    pub fn tx_blocked(&self) -> (u64, u64) {
        (
            self.tx_blocked.load(Ordering::Relaxed),
            self.tx_blocked_ns.load(Ordering::Relaxed),
        )
    }

    /// (polls, busy polls, busy nanoseconds) as last published.
    pub fn read(&self) -> (u64, u64, u64) {
        (
            self.polls.load(Ordering::Relaxed),
            self.busy_polls.load(Ordering::Relaxed),
            self.busy_ns.load(Ordering::Relaxed),
        )
    }
}

/// One worker's mailbox: exception queue, published counters, flow-request channel.
pub struct WorkerSlot {
    /// Frames for the slow path (bounded, lock-free).
    pub exceptions: ArrayQueue<ExceptionItem>,
    /// Frames the slow path asks this worker to transmit (port index), for ports without a
    /// dedicated slow-path tx queue.
    pub inject: ArrayQueue<(Mbuf, usize)>,
    /// Frames dropped because `exceptions` was full.
    pub exception_drops: AtomicU64,
    /// Frames the worker originated or transmitted for the slow path (RSTs, injected frames)
    /// that the tx queues refused (freed); refused forwarded frames are in the pipeline's
    /// `tx_full` counter.
    pub tx_full: AtomicU64,
    /// The worker's counters as of its last publication.
    pub counters: Mutex<WorkerCounters>,
    /// Poll-loop time accounting (published with the counters).
    pub runtime: WorkerRuntime,
    /// Flow-listing requests (sender side; the worker holds the receiver).
    pub flow_requests: Sender<FlowRequest>,
    /// `vipmux capture`: armed flag and ring.
    pub capture: CaptureTap,
    /// Data path availability: synthetic frames to run and their verdicts.
    pub synthetic: SyntheticQueues,
}

impl std::fmt::Debug for WorkerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSlot")
            .field("queued", &self.exceptions.len())
            .finish()
    }
}

/// How a port delivers each flow's packets to its owning worker (docs/design.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// `rte_flow` rules hash each frame's client endpoint with the ownership key over the
    /// workers' queues: covered frames arrive on their owner's queue, nothing to hand over.
    NicSteering,
    /// Any queue may receive a flow's packets; the receiving worker hands them to the owner.
    SoftwareHandoff,
    /// One worker, one queue: nothing to steer.
    SingleQueue,
}

impl Steering {
    /// The name `vipmux status` shows.
    pub fn name(self) -> &'static str {
        match self {
            Steering::NicSteering => "nic-steering",
            Steering::SoftwareHandoff => "software-handoff",
            Steering::SingleQueue => "single-queue",
        }
    }
}

/// One interface's port as opened: its name, rx queues and steering mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortQueues {
    /// DPDK port name.
    pub port: String,
    /// Rx queues (one per worker).
    pub rx_queues: u16,
    /// How flows reach their owner.
    pub steering: Steering,
    /// Why this mode (the refusal of NIC steering, or the rules programmed).
    pub note: String,
}

/// A reload request to the slow path: optional other file, and where the answer goes.
#[derive(Debug)]
pub struct ReloadRequest {
    /// File to load instead of the current one.
    pub path: Option<PathBuf>,
    /// The summary or the error.
    pub reply: Sender<Result<String, String>>,
}

/// Which (probe, member) a prober target id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMeta {
    /// Probe name.
    pub probe: String,
    /// Member address (IPv4 or IPv6).
    pub addr: std::net::IpAddr,
}

/// Scale-out state: draining, the first probe round, the BGP helper's last report.
#[derive(Debug, Default)]
pub struct BgpState {
    /// When draining started (`vipmux drain` or a stop signal): set once, never cleared, so
    /// "draining" and its start time are one fact.
    pub drain_started: OnceLock<Instant>,
    /// Latched by the slow path once every probe target had a first result (the end of the
    /// settling period, docs/design.md §3.8): a reload's new targets do not make the MUX withdraw
    /// its VIPs again.
    pub first_round_done: AtomicBool,
    /// The helper's last report and when it came.
    pub report: Mutex<Option<(Instant, BgpReport)>>,
    /// When, while draining, the helper first reported every route it announces carrying
    /// GRACEFUL_SHUTDOWN: the graceful phase runs from then (`bgp::graceful_phase_open`).
    pub graceful_reported: OnceLock<Instant>,
}

impl BgpState {
    /// The helper's last report if it came within `max_age`.
    pub fn fresh_report(&self, max_age: Duration) -> Option<BgpReport> {
        let r = self.report.lock().ok()?;
        r.as_ref()
            .filter(|(at, _)| at.elapsed() <= max_age)
            .map(|(_, rep)| rep.clone())
    }

    /// Starts draining now; false if it had already started.
    pub fn start_draining(&self) -> bool {
        self.drain_started.set(Instant::now()).is_ok()
    }

    /// Whether draining has started.
    pub fn draining(&self) -> bool {
        self.drain_started.get().is_some()
    }

    /// Records the helper's `report` received now; while draining, the first one that announces
    /// every route with GRACEFUL_SHUTDOWN starts the graceful phase's clock.
    pub fn record_report(&self, report: BgpReport) {
        let now = Instant::now();
        if self.draining() && report.announces_graceful() {
            let _ = self.graceful_reported.set(now);
        }
        if let Ok(mut r) = self.report.lock() {
            *r = Some((now, report));
        }
    }

    /// Whether the drain's graceful phase still runs (false when not draining).
    pub fn graceful_phase_open(&self) -> bool {
        self.drain_started.get().is_some_and(|t| {
            crate::bgp::graceful_phase_open(
                t.elapsed(),
                self.graceful_reported.get().map(Instant::elapsed),
            )
        })
    }
}

/// Everything shared, behind one `Arc`.
pub struct Shared {
    /// The compiled configuration workers use.
    pub snapshot: ArcSwap<Snapshot>,
    /// The configuration it was compiled from.
    pub config: ArcSwap<Config>,
    /// Neighbour MACs for workers.
    pub neighbours: ArcSwap<NeighbourMap>,
    /// Per interface: MAC, address, MTU (fixed at start).
    pub ports: Vec<EgressPort>,
    /// Interface names, parallel to `ports`.
    pub port_names: Vec<String>,
    /// Per interface: the port's queues and steering mode (set once the ports are open).
    pub port_queues: OnceLock<Vec<PortQueues>>,
    /// One slot per worker.
    pub workers: Vec<WorkerSlot>,
    /// True once ports are up and every worker polls.
    pub forwarding: AtomicBool,
    /// Workers that entered their loop.
    pub workers_running: AtomicU64,
    /// Configuration generation (1 after start).
    pub generation: AtomicU64,
    /// Start time.
    pub started: Instant,
    /// The configuration file.
    pub config_path: Mutex<PathBuf>,
    /// Reload requests to the slow path.
    pub reload_tx: Sender<ReloadRequest>,
    /// The prober (set by the slow path once spawned).
    pub prober: OnceLock<Arc<ProberHandle>>,
    /// Prober target ids -> (probe, member).
    pub targets: ArcSwap<Vec<TargetMeta>>,
    /// Scale-out: draining and the BGP helper's view.
    pub bgp: BgpState,
    /// Mbufs of the packet pool in use (`rte_mempool_in_use_count`), published by the slow path
    /// on its tick.
    pub mbufs_in_use: AtomicU64,
    /// Slow-path counters, published by the slow path.
    pub slow_counters: Mutex<SlowPathCounters>,
    /// Slow-path frames that the physical or TAP tx queues refused, and DeliverToFlow drops.
    pub slow_tx_drops: AtomicU64,
    /// The physical ports' counters (`rte_eth_stats`) in interface order, published by the slow
    /// path on its tick.
    pub port_stats: Mutex<Vec<PortStats>>,
    /// Data path availability per rule, judged by the slow path's synthetic rounds.
    pub vip_availability: VipAvailability,
    /// The physical ports' link state and transitions in interface order, published by the slow
    /// path on its tick.
    pub port_links: Mutex<Vec<LinkCounts>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("ports", &self.port_names)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Shared {
    /// The physical ports' last published link counts (empty before the slow path's first tick).
    pub fn link_counts(&self) -> Vec<LinkCounts> {
        self.port_links
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Shared state for `workers` workers; returns it with the workers' flow-request receivers
    /// and the slow path's reload receiver.
    #[allow(clippy::type_complexity)]
    pub fn new(
        config: Config,
        config_path: PathBuf,
        snapshot: Snapshot,
        ports: Vec<EgressPort>,
        port_names: Vec<String>,
        workers: usize,
    ) -> (
        Arc<Shared>,
        Vec<Receiver<FlowRequest>>,
        Receiver<ReloadRequest>,
    ) {
        let mut slots = Vec::with_capacity(workers);
        let mut receivers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = crossbeam::channel::bounded(4);
            slots.push(WorkerSlot {
                exceptions: ArrayQueue::new(EXCEPTION_QUEUE_DEPTH),
                inject: ArrayQueue::new(EXCEPTION_QUEUE_DEPTH),
                exception_drops: AtomicU64::new(0),
                tx_full: AtomicU64::new(0),
                counters: Mutex::new(WorkerCounters::default()),
                runtime: WorkerRuntime::default(),
                flow_requests: tx,
                capture: CaptureTap::default(),
                synthetic: SyntheticQueues::default(),
            });
            receivers.push(rx);
        }
        let (reload_tx, reload_rx) = crossbeam::channel::bounded(4);
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            config: ArcSwap::from_pointee(config),
            neighbours: ArcSwap::from_pointee(NeighbourMap::default()),
            ports,
            port_names,
            port_queues: OnceLock::new(),
            workers: slots,
            forwarding: AtomicBool::new(false),
            workers_running: AtomicU64::new(0),
            generation: AtomicU64::new(1),
            started: Instant::now(),
            config_path: Mutex::new(config_path),
            reload_tx,
            prober: OnceLock::new(),
            targets: ArcSwap::from_pointee(Vec::new()),
            bgp: BgpState::default(),
            mbufs_in_use: AtomicU64::new(0),
            slow_counters: Mutex::new(SlowPathCounters::default()),
            slow_tx_drops: AtomicU64::new(0),
            port_stats: Mutex::new(Vec::new()),
            vip_availability: VipAvailability::default(),
            port_links: Mutex::new(Vec::new()),
        });
        (shared, receivers, reload_rx)
    }

    /// The workers' counters summed, plus the exception-queue and tx-full drops.
    pub fn aggregate(&self) -> (WorkerCounters, u64, u64) {
        let mut total = WorkerCounters::default();
        let (mut exc, mut txf) = (0, 0);
        for w in &self.workers {
            if let Ok(c) = w.counters.lock() {
                total.add(&c);
            }
            exc += w.exception_drops.load(Ordering::Relaxed);
            txf += w.tx_full.load(Ordering::Relaxed);
        }
        (total, exc, txf)
    }

    /// Frees every frame still queued for the slow path (at shutdown, before the mempool goes).
    pub fn drain_exceptions(&self) {
        for w in &self.workers {
            while w.exceptions.pop().is_some() {}
            while w.inject.pop().is_some() {}
            while w.synthetic.input.pop().is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_starts_once_and_reports_age_out() {
        let state = BgpState::default();
        assert!(state.fresh_report(Duration::from_secs(2)).is_none());
        *state.report.lock().unwrap() = Some((Instant::now(), BgpReport::default()));
        assert!(state.fresh_report(Duration::from_secs(2)).is_some());
        assert!(state.start_draining());
        assert!(
            !state.start_draining(),
            "a second drain does not restart the clock"
        );
        assert!(state.draining());
        assert!(state.drain_started.get().is_some());
    }

    #[test]
    fn graceful_phase_clock_is_set_once_by_the_first_graceful_report_of_a_drain() {
        let graceful = BgpReport {
            announced: vec![crate::bgp::Route {
                frontend: "fe".into(),
                prefix: std::net::IpAddr::from([10, 9, 0, 1]),
                next_hop: std::net::IpAddr::from([10, 1, 0, 2]),
                communities: vec![crate::bgp::GRACEFUL_SHUTDOWN.into()],
            }],
            ..BgpReport::default()
        };
        let state = BgpState::default();
        // Not draining: the report is kept, but no phase starts.
        state.record_report(graceful.clone());
        assert!(state.graceful_reported.get().is_none());
        assert!(!state.graceful_phase_open());
        assert!(state.fresh_report(Duration::from_secs(2)).is_some());
        assert!(state.start_draining());
        // Draining, the daemon not yet told: no clock yet (the phase's length from these clocks
        // is `bgp::graceful_phase_open`'s, tested there on durations).
        state.record_report(BgpReport::default());
        assert!(state.graceful_reported.get().is_none());
        // The first graceful report starts the clock; a later one does not move it.
        state.record_report(graceful.clone());
        let first = *state.graceful_reported.get().expect("clock started");
        state.record_report(graceful);
        assert_eq!(state.graceful_reported.get(), Some(&first));
    }
}
