//! The poll loop of one forwarding worker: rx burst -> pipeline -> tx burst, pinned to a core.
//!
//! Each worker owns a [`Pipeline`] (flow table, counters), one rx queue on every port and one tx
//! queue on every port (its own index; the slow path uses the last tx queue). Per loop iteration
//! it loads the current snapshot and neighbour map (two cached `arc-swap` loads: a pointer compare
//! each while nothing changed; no locks) and runs these steps:
//!
//! 0. **retry refused frames** (transmit back-pressure, [`tx`]): what a tx queue refused before is
//!    sent first; while a queue still holds refused frames, nothing is received, injected or
//!    originated (steps 1 and 2, the injected frames of step 3 and step 4 wait; synthetic frames,
//!    which send nothing, still run), for at most [`TX_BLOCKED_MAX`]; then the frames are freed and
//!    counted `tx_full`;
//! 1. **poll each port**: receive a burst; with several workers, hand every frame whose owner
//!    (docs/design.md §6.2, [`frame_owner`]) is another worker to that worker's ring from this
//!    one ([`handoff`]); prefetch the first cache line of every frame (so the
//!    misses of a burst whose bytes another core just wrote, a zero-copy memif or a NIC's DMA,
//!    overlap instead of stalling classification one frame at a time; when a rule encapsulates,
//!    the headroom line an outer header will be written into too), run the pipeline over it,
//!    copy the frames an armed `vipmux capture` wants (one flag read per burst otherwise; see
//!    [`capture`](super::capture)) and dispatch the verdicts: a burst all forwarded to one port is sent as it is, else
//!    `Forward` into the egress port's out-burst (`tx`),
//!    `ToSlowPath` into its bounded exception queue (dropped and counted when full), `Drop` freed;
//! 2. **drain hand-off rings**: frames other workers received for this one, processed as if
//!    received here (grouped by ingress port, at most [`HANDOFF_DRAIN_MAX`] per ring);
//!
//! Steps 3 to 5 run at most once per [`HOUSEKEEPING_INTERVAL`] (a time-stamp compare per
//! iteration), so an iteration that receives nothing is the rx call and a few checks:
//!
//! 3. **drain injected frames**: what the slow path asked this worker to send for it, and
//!    **run synthetic frames** (data path availability, [`synthetic`](super::synthetic)) through
//!    a pipeline of the worker's own beside the forwarding one, answering the verdict instead of
//!    sending;
//! 4. **expiry step**: idle expiry paced by time, not by loop iterations ([`ExpiryPacer`]), at a
//!    period derived from the snapshot's shortest idle timeout (again after a reload); RSTs
//!    queued by the packet path go out at the end of the iteration that queued them;
//! 5. every [`COUNTER_PUBLISH_INTERVAL`]: **publish counters** (a `try_lock` that never waits) and
//!    its runtime (iterations, busy iterations and their time, the worker's true cost per
//!    packet: see [`WorkerRuntime`](crate::runtime::hub::WorkerRuntime)), and **answer flow
//!    listings**;
//! 6. **back off** when adaptive polling is on and the queues stayed empty ([`idle_action`]);
//!    else, after an iteration that received nothing, **spin**: poll the rx queues alone for up
//!    to [`SPIN_POLLS`] rounds until frames arrive (the next iteration then starts at that
//!    poll, so its busy time includes it), leaving every other step for the next iteration.
//!
//! Nothing on the packet path allocates, locks, logs or makes a syscall.

pub mod handoff;
pub mod idle;
pub mod pacing;
pub mod tx;

pub use handoff::HANDOFF_DRAIN_MAX;
pub use idle::{
    idle_action, IdleAction, IDLE_PAUSE_ROUNDS, IDLE_SLEEP_MAX, IDLE_SLEEP_MIN, IDLE_SPIN_ROUNDS,
    PAUSES_PER_ROUND,
};
pub use pacing::{
    sweep_period, ExpiryPacer, EXPIRE_MAX_STEP, EXPIRE_MIN_STEP, EXPIRY_SWEEP, EXPIRY_SWEEP_MAX,
};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::Cache;
use crossbeam::channel::Receiver;

use super::capture::tap_burst;
use super::hub::{
    FlowListing, FlowRequest, HandoffEnds, Shared, WorkerSlot, COUNTER_PUBLISH_INTERVAL,
    MAX_FLOWS_PER_REQUEST,
};
use crate::balance::Reta;
use crate::dataplane::owner::frame_owner;
use crate::dataplane::{DropReason, Pipeline, PipelineConfig, Verdict, View};
use crate::dpdk::{Burst, DpdkError, DpdkThread, Eal, Mempool, RxQueue, TxQueue};
use crate::platform::{signal, SpscConsumer, SpscProducer, TscClock};
use crate::runtime::hub::HandoffItem;
use crate::runtime::synthetic::SyntheticAnswer;
use crate::wire::BURST;
use tx::{one_egress, EgressQueues, TX_BLOCKED_MAX};

/// Sizes of the pipeline synthetic frames run through: every round is a new flow, and a full
/// table still forwards (evicting half-open entries first), so a small one serves.
const SYNTHETIC_PIPELINE: PipelineConfig = PipelineConfig {
    flow_capacity: 256,
    recent_capacity: 16,
    flow_capacity6: None,
};

/// How often the loop runs its periodic steps (injected and synthetic frames, the expiry step,
/// counter publication): on the first iteration at least this long after the last run, so an
/// iteration that received nothing costs the rx call and a few compares. Injected and synthetic
/// frames wait at most this long (plus one iteration) for the worker.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_micros(10);

/// Most rounds of rx polls alone (the loop's spin) after an iteration that received nothing,
/// before the loop's other steps run again (about 2 µs of empty memif polls).
pub const SPIN_POLLS: usize = 32;

/// What one worker needs: its queues, the shared state, the pool for RST frames.
pub struct Worker<'p> {
    /// Worker index (0-based).
    pub id: usize,
    /// CPU core to pin to, if any.
    pub core: Option<usize>,
    /// One rx queue per port (interface order).
    pub rx: Vec<RxQueue<'p>>,
    /// One tx queue per port (interface order).
    pub tx: Vec<TxQueue<'p>>,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Flow-listing requests.
    pub flow_requests: Receiver<FlowRequest>,
    /// Pool for frames the worker originates (RSTs at idle expiry).
    pub pool: &'p Mempool,
    /// Pipeline sizes.
    pub pipeline: PipelineConfig,
    /// Back off with short sleeps when idle.
    pub adaptive: bool,
    /// This worker's ends of the hand-off rings (docs/design.md §6.2).
    pub handoff: HandoffEnds,
}

impl std::fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("core", &self.core)
            .finish()
    }
}

impl Worker<'_> {
    /// Runs until the stop flag is set; the thread is pinned (when `core` is set) and registered
    /// with DPDK first.
    pub fn run(mut self, eal: &Eal) -> Result<(), DpdkError> {
        let _reg = match self.core {
            Some(core) => DpdkThread::pin_and_register(eal, core),
            None => DpdkThread::register(eal),
        }
        .inspect_err(|_| signal::request_stop())?;
        tracing::info!(worker = self.id, core = ?self.core, ports = self.rx.len(), "worker polling");
        // What the loop owns stays in `self` and in locals of this function; the loop state below
        // only borrows it (no drop glue of its own), so the compiler keeps each value in its own
        // stack slot or register, as if the loop were written out in one body.
        let mut pipeline = Pipeline::new(&self.pipeline);
        pipeline.set_worker(self.id, self.shared.workers.len());
        let mut synthetic = Pipeline::new(&SYNTHETIC_PIPELINE);
        let mut pacer = ExpiryPacer::new(pipeline.flow_buckets(), EXPIRY_SWEEP);
        let mut burst = Burst::new();
        let mut outs = EgressQueues::new(self.tx.len(), TX_BLOCKED_MAX);
        let mut handoff_carry = None;
        let mut verdicts: Vec<Verdict> = (0..BURST)
            .map(|_| Verdict::Drop(DropReason::BadHeader))
            .collect();
        let shared = Arc::clone(&self.shared);
        let reta = Reta::new(shared.workers.len());
        let mut l = PollLoop {
            rx: &mut self.rx,
            tx: &mut self.tx,
            outs: &mut outs,
            handoff_carry: &mut handoff_carry,
            burst: &mut burst,
            verdicts: &mut verdicts,
            pool: self.pool,
            slot: &shared.workers[self.id],
            me: self.id,
            handoff_to: &mut self.handoff.to,
            handoff_from: &mut self.handoff.from,
            reta: &reta,
            flow_requests: &self.flow_requests,
            pipeline: &mut pipeline,
            synthetic: &mut synthetic,
            tally: Tally::default(),
            adaptive: self.adaptive,
            idle_rounds: 0,
            held: None,
        };
        // Cached handles: a load is one relaxed pointer compare unless the slow path published a
        // new snapshot or neighbour map (then a full load, once).
        let mut snapshots = Cache::new(&shared.snapshot);
        let mut neighbour_maps = Cache::new(&shared.neighbours);
        // The loop's clock: the time-stamp counter (one instruction per read, no vDSO call).
        let clock = TscClock::new(eal);
        let publish_every = COUNTER_PUBLISH_INTERVAL.as_nanos() as u64;
        let mut next_publish = 0u64;
        let chores_every = HOUSEKEEPING_INTERVAL.as_nanos() as u64;
        let mut next_chores = 0u64;
        let mut spun_at = None;
        shared.workers_running.fetch_add(1, Ordering::SeqCst);
        while !signal::stop_requested() {
            let view = View {
                snapshot: snapshots.load(),
                neighbours: neighbour_maps.load(),
                ports: &shared.ports,
            };
            // An iteration after a spin that received frames starts when that rx poll did.
            let t_ns = spun_at.take().unwrap_or_else(|| clock.now_ns());
            let now = (t_ns / 1_000_000_000) as u32;
            l.tally.begin_iteration(t_ns);
            // Back-pressure (see `tx`): a queue that refused frames is retried first, and while
            // one still holds them nothing new is received, injected or originated.
            let blocked = l.retry_tx(t_ns);
            let mut busy = false;
            if !blocked {
                busy = l.poll_ports(&view, now) | l.drain_handoff(&view, now);
            }
            l.tally.end_iteration(busy, t_ns);
            if t_ns >= next_chores {
                // Steps 3 to 5, every HOUSEKEEPING_INTERVAL: an empty poll costs the rx call
                // and the loop's few checks, not these.
                next_chores = t_ns + chores_every;
                if !l.outs.is_blocked() {
                    l.drain_injected();
                    let elapsed = Duration::from_nanos(t_ns);
                    pacer.follow(view.snapshot, elapsed);
                    l.expiry_step(&view, now, pacer.due(elapsed));
                }
                l.run_synthetic(&view, now);
                if t_ns >= next_publish {
                    next_publish = t_ns + publish_every;
                    l.publish_counters();
                    l.answer_flow_listings(now);
                }
            } else if busy && !l.outs.is_blocked() {
                // RSTs the packet path just queued go out at once (the queue is bounded).
                l.expiry_step(&view, now, 0);
            }
            // A blocked worker polls its queues again at once (no sleep while frames wait).
            l.back_off(busy || blocked);
            if !(busy || blocked || l.adaptive || l.outs.is_blocked()) {
                spun_at = l.spin(&clock);
            }
        }
        l.publish_final_counters();
        tracing::info!(worker = self.id, "worker stopped");
        Ok(())
    }
}

/// What the loop counts between publications (plain integers on the worker's own stack).
#[derive(Debug, Default)]
struct Tally {
    /// Loop iterations.
    polls: u64,
    /// Iterations that received at least one frame.
    busy_polls: u64,
    /// Time spent in busy iterations, nanoseconds.
    busy_ns: u64,
    /// The longest busy iteration, nanoseconds.
    max_busy_ns: u64,
    /// Start of the previous iteration, if it was busy.
    last_busy_start: Option<u64>,
    /// Originated or injected frames the tx queues refused.
    tx_full: u64,
    /// Frames dropped because the exception queue was full.
    exc_drops: u64,
    /// Frames handed to their owner.
    handoff_sent: u64,
    /// Frames received from other workers.
    handoff_received: u64,
    /// Frames dropped because a hand-off ring was full.
    handoff_full: u64,
}

impl Tally {
    /// Counts an iteration starting at `t_ns`; a busy iteration lasts until the next one starts
    /// (no second clock read).
    #[inline(always)]
    fn begin_iteration(&mut self, t_ns: u64) {
        if let Some(t) = self.last_busy_start.take() {
            let took = t_ns.saturating_sub(t);
            self.busy_ns += took;
            self.max_busy_ns = self.max_busy_ns.max(took);
        }
        self.polls += 1;
    }

    /// Marks the iteration started at `t_ns` busy if it received frames.
    #[inline(always)]
    fn end_iteration(&mut self, busy: bool, t_ns: u64) {
        if busy {
            self.busy_polls += 1;
            self.last_busy_start = Some(t_ns);
        }
    }
}

/// A running worker's state: its queues, pending out-bursts, pipeline (borrowed from
/// [`Worker::run`]'s locals) and tallies.
///
/// Each step below has one call site in [`Worker::run`] and is `#[inline(always)]`, so the loop
/// still compiles to one function body: naming the steps adds no call and no per-packet work.
struct PollLoop<'a, 's, 'p> {
    rx: &'a mut [RxQueue<'p>],
    tx: &'a mut [TxQueue<'p>],
    /// One out-burst per port, with the back-pressure state.
    outs: &'a mut EgressQueues,
    /// A frame taken from a hand-off ring when its queue blocked (processed first next time).
    handoff_carry: &'a mut Option<HandoffItem>,
    /// The burst being received and dispatched.
    burst: &'a mut Burst,
    /// The pipeline's verdicts for `burst` (one per frame, `BURST` long).
    verdicts: &'a mut [Verdict],
    pool: &'p Mempool,
    slot: &'s WorkerSlot,
    /// This worker's index.
    me: usize,
    /// The hand-off rings to each other worker (indexed by worker).
    handoff_to: &'a mut [Option<SpscProducer<HandoffItem>>],
    /// The hand-off rings from each other worker.
    handoff_from: &'a mut [SpscConsumer<HandoffItem>],
    /// Flow ownership (one entry per worker).
    reta: &'a Reta,
    flow_requests: &'a Receiver<FlowRequest>,
    pipeline: &'a mut Pipeline,
    /// The pipeline synthetic frames run through (its flows and counters stay apart).
    synthetic: &'a mut Pipeline,
    tally: Tally,
    adaptive: bool,
    /// Consecutive iterations without a frame (adaptive polling only).
    idle_rounds: u32,
    /// The port whose frames a spin received: they wait in `burst` for the next iteration.
    held: Option<usize>,
}

impl PollLoop<'_, '_, '_> {
    /// Starts an iteration at `t_ns`: sends again what the tx queues refused before (frames
    /// freed at the bound or on a link down count `tx_full`); true while some queue still holds
    /// refused frames.
    #[inline(always)]
    fn retry_tx(&mut self, t_ns: u64) -> bool {
        let freed = self.outs.retry(self.tx, t_ns);
        if freed > 0 {
            self.pipeline.note_tx(freed);
        }
        self.outs.is_blocked()
    }

    /// Polls every port once, stopping when a tx queue blocks; true if any had frames.
    #[inline(always)]
    fn poll_ports(&mut self, view: &View<'_>, now: u32) -> bool {
        let mut busy = false;
        if let Some(in_port) = self.held.take() {
            self.received(view, in_port, now);
            busy = true;
        }
        for in_port in 0..self.rx.len() {
            if self.outs.is_blocked() {
                break;
            }
            busy |= self.poll_port(view, in_port, now);
        }
        busy
    }

    /// Receives a burst on `in_port`, runs the pipeline over it and dispatches the verdicts;
    /// false if the queue was empty.
    #[inline(always)]
    fn poll_port(&mut self, view: &View<'_>, in_port: usize, now: u32) -> bool {
        if self.rx[in_port].rx_burst(self.burst) == 0 {
            return false;
        }
        self.received(view, in_port, now);
        true
    }

    /// Hands off, runs and dispatches the frames in `burst`, received on `in_port`.
    #[inline(always)]
    fn received(&mut self, view: &View<'_>, in_port: usize, now: u32) {
        if self.reta.workers() > 1 {
            self.hand_off(view, in_port);
        }
        self.run_burst(view, in_port, now);
    }

    /// After an iteration that received nothing: polls the rx queues alone, at most
    /// [`SPIN_POLLS`] rounds, until one returns frames (they wait in `burst`, `held` names
    /// their port, and the round's start time is returned: the next iteration, busy, starts
    /// then, so its busy time includes that rx call) or a hand-off ring holds frames. The loop's
    /// other steps wait meanwhile; each empty round counts as a poll.
    #[inline(always)]
    fn spin(&mut self, clock: &TscClock) -> Option<u64> {
        for _ in 0..SPIN_POLLS {
            let t_ns = clock.now_ns();
            for in_port in 0..self.rx.len() {
                if self.rx[in_port].rx_burst(self.burst) != 0 {
                    self.held = Some(in_port);
                    return Some(t_ns);
                }
            }
            self.tally.polls += 1;
            if self.handoff_from.iter_mut().any(|r| !r.is_empty()) {
                break;
            }
        }
        None
    }

    /// Runs the pipeline over the frames in `burst` (received on `in_port`) and dispatches the
    /// verdicts.
    #[inline(always)]
    fn run_burst(&mut self, view: &View<'_>, in_port: usize, now: u32) {
        let n = self.burst.len();
        if n == 0 {
            return;
        }
        self.burst.prefetch_data(view.snapshot.encapsulates);
        self.pipeline.process(
            view,
            in_port,
            self.burst.as_mut_slice(),
            &mut self.verdicts[..n],
            now,
        );
        // `vipmux capture`: one relaxed load per burst; the copy is out of line.
        if self.slot.capture.armed.load(Ordering::Relaxed) {
            tap_burst(
                &self.slot.capture,
                in_port,
                self.burst.as_slice(),
                &self.verdicts[..n],
            );
        }
        self.dispatch(in_port);
    }

    /// Moves the frames of `burst` that another worker owns to that worker's ring from this one
    /// (a full ring drops and counts the frame); the rest stay.
    #[inline(always)]
    fn hand_off(&mut self, view: &View<'_>, in_port: usize) {
        let (me, reta) = (self.me, self.reta);
        let (t, to) = (&mut self.tally, &mut *self.handoff_to);
        let mut dirty = 0u128;
        self.burst
            .keep_or_take(|m| match frame_owner(m.data(), view, reta) {
                Some(owner) if owner != me => {
                    match handoff::send(to, owner, m, in_port) {
                        Ok(()) => {
                            t.handoff_sent += 1;
                            dirty |= 1u128 << (owner & 127);
                        }
                        Err(()) => t.handoff_full += 1,
                    }
                    None
                }
                _ => Some(m),
            });
        handoff::publish(to, dirty);
    }

    /// Processes what other workers handed to this one; true if there was anything. Stops
    /// taking frames when a tx queue blocks: the frame in hand then waits in `handoff_carry`.
    #[inline(always)]
    fn drain_handoff(&mut self, view: &View<'_>, now: u32) -> bool {
        if self.handoff_from.is_empty() && self.handoff_carry.is_none() {
            // One worker: no rings, nothing to do (and no empty burst to run).
            return false;
        }
        let mut got = false;
        let mut port = usize::MAX;
        if let Some((m, p)) = self.handoff_carry.take() {
            (got, port) = (true, usize::from(p));
            let _ = self.burst.push(m);
            self.tally.handoff_received += 1;
        }
        'rings: for r in 0..self.handoff_from.len() {
            if self.handoff_from[r].is_empty() {
                continue;
            }
            got = true;
            for _ in 0..HANDOFF_DRAIN_MAX {
                let Some((m, p16)) = self.handoff_from[r].pop() else {
                    break;
                };
                let p = usize::from(p16);
                if !self.burst.is_empty() && (p != port || self.burst.is_full()) {
                    self.run_burst(view, port, now);
                    if self.outs.is_blocked() {
                        *self.handoff_carry = Some((m, p16));
                        self.handoff_from[r].release();
                        break 'rings;
                    }
                }
                port = p;
                let _ = self.burst.push(m);
                self.tally.handoff_received += 1;
            }
            self.handoff_from[r].release();
        }
        self.run_burst(view, port, now);
        got
    }

    /// Carries out the verdicts of the received burst: forward, hand to the slow path, or free.
    #[inline(always)]
    fn dispatch(&mut self, in_port: usize) {
        // The common case, every frame forwarded to one port whose out-burst is empty: the
        // received burst is the out-burst (one check per frame, no move per frame).
        let n = self.burst.len();
        if let Some(port) = one_egress(&self.verdicts[..n]) {
            if let Some(freed) = self.outs.send_whole(self.tx, port, self.burst) {
                if freed > 0 {
                    self.pipeline.note_tx(freed);
                }
                return;
            }
        }
        // The closure captures what it uses, never the loop state as a whole; the verdicts are
        // cut to the burst's length (one check per burst, none per frame).
        let verdicts = &self.verdicts[..self.burst.len()];
        let (outs, tx, slot) = (&mut *self.outs, &mut *self.tx, self.slot);
        let exc_drops = &mut self.tally.exc_drops;
        let mut fwd_fail = 0usize;
        self.burst.drain_each(|i, m| match &verdicts[i] {
            Verdict::Forward { port } => {
                fwd_fail += outs.push(tx, *port, m);
            }
            Verdict::ToSlowPath(e) => {
                if slot.exceptions.push((m, in_port, *e)).is_err() {
                    *exc_drops += 1;
                }
            }
            Verdict::Drop(_) => drop(m),
        });
        fwd_fail += outs.flush(tx);
        if fwd_fail > 0 {
            self.pipeline.note_tx(fwd_fail);
        }
    }

    /// Sends the frames the slow path queued on this worker for it, stopping when a tx queue
    /// blocks (the rest stay queued).
    #[inline(always)]
    fn drain_injected(&mut self) {
        if self.slot.inject.is_empty() {
            return;
        }
        while !self.outs.is_blocked() {
            let Some((m, port)) = self.slot.inject.pop() else {
                break;
            };
            self.tally.tx_full += self.outs.push(self.tx, port, m) as u64;
        }
        self.tally.tx_full += self.outs.flush(self.tx) as u64;
    }

    /// Runs the slow path's synthetic frames through the synthetic pipeline and answers each
    /// verdict (the frame is freed, never sent).
    #[inline(always)]
    fn run_synthetic(&mut self, view: &View<'_>, now: u32) {
        let q = &self.slot.synthetic;
        if q.input.is_empty() {
            return;
        }
        let mut verdict = [Verdict::Drop(DropReason::BadHeader)];
        while let Some(item) = q.input.pop() {
            let mut frame = [item.frame];
            self.synthetic
                .process(view, item.port, &mut frame, &mut verdict, now);
            let _ = q.answers.push(SyntheticAnswer {
                rule: item.rule,
                round: item.round,
                forwarded: matches!(verdict[0], Verdict::Forward { .. }),
            });
        }
    }

    /// Visits the `step` buckets the pacer says are due and sends the RSTs of expired or reset
    /// flows.
    #[inline(always)]
    fn expiry_step(&mut self, view: &View<'_>, now: u32, step: usize) {
        if step == 0 && self.pipeline.pending_resets() == 0 {
            return;
        }
        // The closure (run out of line by the pipeline) captures what it uses, never the loop
        // state as a whole.
        let (pool, outs, tx) = (self.pool, &mut *self.outs, &mut *self.tx);
        let tx_full = &mut self.tally.tx_full;
        let mut emitted = 0usize;
        self.pipeline.expire(view, now, step, |port, frame| {
            if let Some(mut m) = pool.alloc() {
                if m.extend_from_slice(frame) {
                    emitted += 1;
                    *tx_full += outs.push(tx, port, m) as u64;
                }
            }
        });
        if emitted > 0 {
            *tx_full += outs.flush(tx) as u64;
        }
    }

    /// Copies the counters and the runtime tallies into the worker's slot (never waits).
    #[inline(always)]
    fn publish_counters(&mut self) {
        let slot = self.slot;
        if let Ok(mut c) = slot.counters.try_lock() {
            c.clone_from(self.pipeline.counters());
        }
        let (rt, t, b) = (&slot.runtime, &self.tally, self.outs.tally());
        for (cell, value) in [
            (&slot.tx_full, t.tx_full),
            (&slot.exception_drops, t.exc_drops),
            (&rt.polls, t.polls),
            (&rt.busy_polls, t.busy_polls),
            (&rt.busy_ns, t.busy_ns),
            (&rt.max_busy_ns, t.max_busy_ns),
            (&rt.handoff_sent, t.handoff_sent),
            (&rt.handoff_received, t.handoff_received),
            (&rt.handoff_full, t.handoff_full),
            (&rt.tx_blocked, b.episodes),
            (&rt.tx_blocked_ns, b.ns),
        ] {
            cell.store(value, Ordering::Relaxed);
        }
    }

    /// Answers every pending flow-listing request (`now` is the flow clock, seconds).
    #[inline(always)]
    fn answer_flow_listings(&mut self, now: u32) {
        while let Ok(req) = self.flow_requests.try_recv() {
            let listing = flow_listing(self.pipeline, &req, now);
            let _ = req.reply.try_send(listing);
        }
    }

    /// After an iteration: nothing when busy or not adaptive, else the idle back-off.
    #[inline(always)]
    fn back_off(&mut self, busy: bool) {
        if !self.adaptive {
            return;
        }
        if busy {
            self.idle_rounds = 0;
        } else {
            self.idle_rounds = self.idle_rounds.saturating_add(1);
            idle_action(self.idle_rounds).wait();
        }
    }

    /// The last counters, once the loop stopped (waits for the lock).
    #[inline(always)]
    fn publish_final_counters(&self) {
        if let Ok(mut c) = self.slot.counters.lock() {
            c.clone_from(self.pipeline.counters());
        }
    }
}

/// Up to the request's limit (capped at [`MAX_FLOWS_PER_REQUEST`]) of the pipeline's flows
/// and their total (only the SNAT translations when the request says so).
fn flow_listing(pipeline: &Pipeline, req: &FlowRequest, now: u32) -> FlowListing {
    let limit = req.limit.min(MAX_FLOWS_PER_REQUEST);
    let mut listing = FlowListing {
        now,
        ..FlowListing::default()
    };
    let inbound = pipeline.flows().filter(|_| !req.outbound_only);
    for (k, e) in inbound {
        listing.total += 1;
        if listing.flows.len() < limit {
            listing.flows.push((*k, *e));
        }
    }
    for (k, e) in pipeline.flows6().filter(|_| !req.outbound_only) {
        listing.total += 1;
        if listing.flows.len() + listing.flows6.len() < limit {
            listing.flows6.push((*k, *e));
        }
    }
    for t in pipeline.snat_translations() {
        listing.total += 1;
        if listing.flows.len() + listing.snat.len() < limit {
            listing.snat.push(*t);
        }
    }
    for t in pipeline.snat_translations6() {
        listing.total += 1;
        if listing.flows.len() + listing.snat.len() + listing.snat6.len() < limit {
            listing.snat6.push(*t);
        }
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn tally_keeps_the_longest_busy_iteration_only() {
        let mut t = Tally::default();
        // Busy at 0, next at 100; busy at 100, next at 5_100 (a stall); idle at 5_100, next 90_000.
        for (start, busy) in [(0, true), (100, true), (5_100, false), (90_000, true)] {
            t.begin_iteration(start);
            t.end_iteration(busy, start);
        }
        t.begin_iteration(90_050);
        assert_eq!(t.max_busy_ns, 5_000);
        assert_eq!(t.busy_ns, 100 + 5_000 + 50);
        assert_eq!((t.polls, t.busy_polls), (5, 3));
    }
}
