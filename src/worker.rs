//! The poll loop of one forwarding worker: rx burst -> pipeline -> tx burst, pinned to a core.
//!
//! Each worker owns a [`Pipeline`] (flow table, counters), one rx queue on every port and one tx
//! queue on every port (its own index; the slow path uses the last tx queue). Per loop iteration
//! it loads the current snapshot and neighbour map (two cached `arc-swap` loads: a pointer compare
//! each while nothing changed; no locks), and for every
//! port receives a burst, runs the pipeline over it and dispatches the verdicts: `Forward` into
//! the egress port's out-burst, `ToSlowPath` into its bounded exception queue (dropped and counted
//! when full), `Drop` freed. Right after each rx burst it prefetches the first cache line of every
//! frame, so the misses of a burst whose bytes another core just wrote (a zero-copy memif, a NIC's
//! DMA) overlap instead of stalling classification one frame at a time.
//!
//! Idle expiry is paced by time, not by loop iterations ([`ExpiryPacer`]): the whole flow table is
//! swept once per [`EXPIRY_SWEEP`], in steps of [`EXPIRE_MIN_STEP`] to [`EXPIRE_MAX_STEP`] buckets.
//! A sweep step reads buckets that are cold by construction, so a per-loop step would cost a
//! fixed number of cache misses per burst however little there is to expire (it was the largest
//! single cost of the loop at 5 Mpps: ~25 ns per packet); paced, a 1 M-flow table costs ~130 K
//! bucket reads per second whatever the packet rate. RSTs queued by the packet path go out on the
//! next loop iteration regardless.
//! Every [`COUNTER_PUBLISH_INTERVAL`] it publishes its counters (a `try_lock` that never waits) and
//! its runtime (iterations, busy iterations and their time, the worker's true cost per packet: see
//! [`crate::appliance::state::WorkerRuntime`]), and answers pending flow-listing requests. Nothing on the packet path allocates, locks, logs
//! or makes a syscall.
//!
//! With adaptive polling (profile `adaptive_polling = true`) a worker whose queues stay empty backs
//! off ([`idle_action`]): full-speed polls, then polls with CPU pause hints, then sleeps growing to
//! [`IDLE_SLEEP_MAX`]; the first packet puts it back to full-speed polling.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::Cache;
use crossbeam::channel::Receiver;

use crate::appliance::state::{FlowListing, FlowRequest, Shared, COUNTER_PUBLISH_INTERVAL};
use crate::dataplane::{DropReason, Pipeline, PipelineConfig, Verdict, View};
use crate::dpdk::{Burst, DpdkThread, Eal, Mbuf, Mempool, RxQueue, TxQueue};
use crate::platform::{signal, TscClock};
use crate::wire::BURST;

/// Time in which idle expiry visits every bucket of the flow table once (flows therefore expire
/// at most this long after their timeout, on top of the whole-second flow clock).
pub const EXPIRY_SWEEP: Duration = Duration::from_millis(500);
/// Fewest buckets one expiry step visits: smaller amounts wait and are batched.
pub const EXPIRE_MIN_STEP: usize = 8;
/// Most buckets one expiry step visits; a larger backlog (a long sleep, a huge table on an idle
/// worker) is forgiven rather than paid in one burst, so the sweep then takes longer.
pub const EXPIRE_MAX_STEP: usize = 64;

/// Spreads the idle-expiry sweep over time: a full pass over `buckets` per `sweep`.
#[derive(Debug, Clone)]
pub struct ExpiryPacer {
    buckets: u128,
    sweep_ns: u128,
    swept: u128,
}

impl ExpiryPacer {
    /// A pacer for a table of `buckets` buckets swept once per `sweep` (at least 1 ns).
    pub fn new(buckets: usize, sweep: Duration) -> Self {
        ExpiryPacer {
            buckets: buckets as u128,
            sweep_ns: sweep.as_nanos().max(1),
            swept: 0,
        }
    }

    /// Buckets to visit now, `elapsed` after the worker started: 0 while fewer than
    /// [`EXPIRE_MIN_STEP`] are due, at most [`EXPIRE_MAX_STEP`] (the rest of a larger backlog is
    /// dropped).
    pub fn due(&mut self, elapsed: Duration) -> usize {
        let target = elapsed.as_nanos() * self.buckets / self.sweep_ns;
        let due = target.saturating_sub(self.swept);
        if due < EXPIRE_MIN_STEP as u128 {
            return 0;
        }
        // Everything due is visited now, or forgiven beyond one step.
        self.swept = target;
        due.min(EXPIRE_MAX_STEP as u128) as usize
    }
}

/// Empty polls an adaptive worker makes at full speed before backing off.
pub const IDLE_SPIN_ROUNDS: u32 = 1024;
/// Further empty polls with a CPU pause hint ([`PAUSES_PER_ROUND`] `spin_loop` hints) after each.
pub const IDLE_PAUSE_ROUNDS: u32 = 4096;
/// `spin_loop` hints per pausing round.
pub const PAUSES_PER_ROUND: u32 = 32;
/// First sleep once pausing is over; each further empty round doubles it up to [`IDLE_SLEEP_MAX`].
pub const IDLE_SLEEP_MIN: Duration = Duration::from_micros(16);
/// Longest sleep between two polls: below the time a 512-slot rx ring takes to fill at 1 Mpps
/// (so the first burst after a quiet spell is not lost), few enough wake-ups to idle near 0 %.
pub const IDLE_SLEEP_MAX: Duration = Duration::from_micros(500);

/// What an adaptive worker does after a loop iteration that found no packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Poll again at once.
    Poll,
    /// Spin with [`PAUSES_PER_ROUND`] pause hints, then poll.
    Pause,
    /// Sleep this long, then poll.
    Sleep(Duration),
}

/// The back-off after `idle_rounds` consecutive empty loop iterations (1 = the first empty one):
/// full polling, then pause hints, then sleeps doubling from [`IDLE_SLEEP_MIN`] to
/// [`IDLE_SLEEP_MAX`]. Any packet resets the count to 0 (full polling again).
pub fn idle_action(idle_rounds: u32) -> IdleAction {
    if idle_rounds <= IDLE_SPIN_ROUNDS {
        IdleAction::Poll
    } else if idle_rounds <= IDLE_SPIN_ROUNDS + IDLE_PAUSE_ROUNDS {
        IdleAction::Pause
    } else {
        let k = idle_rounds - IDLE_SPIN_ROUNDS - IDLE_PAUSE_ROUNDS - 1;
        let sleep = IDLE_SLEEP_MIN.saturating_mul(1u32 << k.min(16));
        IdleAction::Sleep(sleep.min(IDLE_SLEEP_MAX))
    }
}

/// Queues `m` on `port`'s pending burst, sending the burst first when it is full; returns the
/// frames the device refused (freed and counted by the queue). An unknown port frees `m`.
#[inline]
fn push_or_flush(outs: &mut [Burst], tx: &mut [TxQueue<'_>], port: usize, m: Mbuf) -> usize {
    let (Some(out), Some(q)) = (outs.get_mut(port), tx.get_mut(port)) else {
        return 0;
    };
    match out.push(m) {
        Ok(()) => 0,
        Err(m) => {
            let unsent = q.tx_burst(out).unsent;
            let _ = out.push(m);
            unsent
        }
    }
}

/// Sends every pending burst; returns the frames the devices refused.
#[inline]
fn flush_all(outs: &mut [Burst], tx: &mut [TxQueue<'_>]) -> usize {
    let mut unsent = 0;
    for (out, q) in outs.iter_mut().zip(tx.iter_mut()) {
        if !out.is_empty() {
            unsent += q.tx_burst(out).unsent;
        }
    }
    unsent
}

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
    pub fn run(mut self, eal: &Eal) -> Result<(), crate::dpdk::DpdkError> {
        let _reg = match self.core {
            Some(core) => DpdkThread::pin_and_register(eal, core),
            None => DpdkThread::register(eal),
        }
        .inspect_err(|_| signal::request_stop())?;
        tracing::info!(worker = self.id, core = ?self.core, ports = self.rx.len(), "worker polling");
        let mut pipeline = Pipeline::new(&self.pipeline);
        let mut pacer = ExpiryPacer::new(pipeline.flow_buckets(), EXPIRY_SWEEP);
        let nports = self.rx.len();
        let mut burst = Burst::new();
        let mut outs: Vec<Burst> = (0..nports).map(|_| Burst::new()).collect();
        let mut verdicts: Vec<Verdict> = (0..BURST)
            .map(|_| Verdict::Drop(DropReason::BadHeader))
            .collect();
        // Cached handles: a load is one relaxed pointer compare unless the slow path published a
        // new snapshot or neighbour map (then a full load, once).
        let shared = Arc::clone(&self.shared);
        let mut snapshots = Cache::new(&shared.snapshot);
        let mut neighbour_maps = Cache::new(&shared.neighbours);
        let slot = &shared.workers[self.id];
        // The loop's clock: the time-stamp counter (one instruction per read, no vDSO call).
        let clock = TscClock::new(eal);
        let publish_every = COUNTER_PUBLISH_INTERVAL.as_nanos() as u64;
        let mut next_publish = 0u64;
        let mut idle_rounds = 0u32;
        let (mut polls, mut busy_polls, mut busy_ns) = (0u64, 0u64, 0u64);
        let mut last_busy_start: Option<u64> = None;
        let mut tx_full = 0u64;
        let mut exc_drops = 0u64;
        shared.workers_running.fetch_add(1, Ordering::SeqCst);
        while !signal::stop_requested() {
            let view = View {
                snapshot: snapshots.load(),
                neighbours: neighbour_maps.load(),
                ports: &shared.ports,
            };
            let t_ns = clock.now_ns();
            let now = (t_ns / 1_000_000_000) as u32;
            // A busy iteration lasts until the next one starts (no second clock read).
            if let Some(t) = last_busy_start.take() {
                busy_ns += t_ns.saturating_sub(t);
            }
            polls += 1;
            let mut busy = false;
            for in_port in 0..nports {
                let n = self.rx[in_port].rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                busy = true;
                burst.prefetch_data();
                pipeline.process(
                    &view,
                    in_port,
                    burst.as_mut_slice(),
                    &mut verdicts[..n],
                    now,
                );
                let mut fwd_fail = 0usize;
                let tx = &mut self.tx;
                burst.drain_each(|i, m| match &verdicts[i] {
                    Verdict::Forward { port } => {
                        fwd_fail += push_or_flush(&mut outs, tx, *port, m);
                    }
                    Verdict::ToSlowPath(e) => {
                        if slot.exceptions.push((m, in_port, *e)).is_err() {
                            exc_drops += 1;
                        }
                    }
                    Verdict::Drop(_) => drop(m),
                });
                fwd_fail += flush_all(&mut outs, &mut self.tx);
                if fwd_fail > 0 {
                    pipeline.note_tx(fwd_fail);
                }
            }
            if busy {
                busy_polls += 1;
                last_busy_start = Some(t_ns);
            }
            if !slot.inject.is_empty() {
                while let Some((m, port)) = slot.inject.pop() {
                    tx_full += push_or_flush(&mut outs, &mut self.tx, port, m) as u64;
                }
                tx_full += flush_all(&mut outs, &mut self.tx) as u64;
            }
            let step = pacer.due(Duration::from_nanos(t_ns));
            if step > 0 || pipeline.pending_resets() > 0 {
                let pool = self.pool;
                let tx = &mut self.tx;
                let mut emitted = 0usize;
                pipeline.expire(&view, now, step, |port, frame| {
                    if let Some(mut m) = pool.alloc() {
                        if m.extend_from_slice(frame) {
                            emitted += 1;
                            tx_full += push_or_flush(&mut outs, tx, port, m) as u64;
                        }
                    }
                });
                if emitted > 0 {
                    tx_full += flush_all(&mut outs, &mut self.tx) as u64;
                }
            }
            if t_ns >= next_publish {
                next_publish = t_ns + publish_every;
                if let Ok(mut c) = slot.counters.try_lock() {
                    c.clone_from(pipeline.counters());
                }
                slot.tx_full.store(tx_full, Ordering::Relaxed);
                slot.runtime.polls.store(polls, Ordering::Relaxed);
                slot.runtime.busy_polls.store(busy_polls, Ordering::Relaxed);
                slot.runtime.busy_ns.store(busy_ns, Ordering::Relaxed);
                slot.exception_drops.store(exc_drops, Ordering::Relaxed);
                while let Ok(req) = self.flow_requests.try_recv() {
                    let limit = req
                        .limit
                        .min(super::appliance::state::MAX_FLOWS_PER_REQUEST);
                    let mut listing = FlowListing {
                        now,
                        ..FlowListing::default()
                    };
                    for (k, e) in pipeline.flows() {
                        listing.total += 1;
                        if listing.flows.len() < limit {
                            listing.flows.push((*k, *e));
                        }
                    }
                    let _ = req.reply.try_send(listing);
                }
            }
            if self.adaptive {
                if busy {
                    idle_rounds = 0;
                } else {
                    idle_rounds = idle_rounds.saturating_add(1);
                    match idle_action(idle_rounds) {
                        IdleAction::Poll => {}
                        IdleAction::Pause => {
                            for _ in 0..PAUSES_PER_ROUND {
                                std::hint::spin_loop();
                            }
                        }
                        IdleAction::Sleep(d) => std::thread::sleep(d),
                    }
                }
            }
        }
        if let Ok(mut c) = slot.counters.lock() {
            c.clone_from(pipeline.counters());
        }
        tracing::info!(worker = self.id, "worker stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_sweeps_the_table_once_per_period_in_bounded_steps() {
        let buckets = 65_536;
        let mut p = ExpiryPacer::new(buckets, EXPIRY_SWEEP);
        // Loops every 10 µs for one sweep period: the whole table, nothing more, in small steps.
        let mut total = 0;
        let mut t = Duration::ZERO;
        while t < EXPIRY_SWEEP {
            t += Duration::from_micros(10);
            let s = p.due(t);
            assert!(
                s == 0 || (EXPIRE_MIN_STEP..=EXPIRE_MAX_STEP).contains(&s),
                "{s}"
            );
            total += s;
        }
        assert!(
            total <= buckets && total + EXPIRE_MIN_STEP >= buckets,
            "{total}"
        );
        // Nothing is due twice at the same instant.
        assert_eq!(p.due(t), 0);
    }

    #[test]
    fn pacer_forgives_a_backlog_beyond_one_step() {
        let mut p = ExpiryPacer::new(1 << 20, Duration::from_millis(500));
        assert_eq!(p.due(Duration::from_secs(10)), EXPIRE_MAX_STEP);
        // Right after: the rest of the 10 s backlog is not owed.
        assert_eq!(p.due(Duration::from_secs(10)), 0);
        // A tiny table is still swept: 16 buckets per 500 ms, due in steps of at least 8.
        let mut q = ExpiryPacer::new(16, Duration::from_millis(500));
        assert_eq!(q.due(Duration::from_millis(100)), 0);
        assert_eq!(q.due(Duration::from_millis(250)), 8);
        assert_eq!(q.due(Duration::from_millis(500)), 8);
    }

    #[test]
    fn backoff_polls_then_pauses_then_sleeps_longer_up_to_the_cap() {
        assert_eq!(idle_action(0), IdleAction::Poll);
        assert_eq!(idle_action(IDLE_SPIN_ROUNDS), IdleAction::Poll);
        assert_eq!(idle_action(IDLE_SPIN_ROUNDS + 1), IdleAction::Pause);
        let first_sleep = IDLE_SPIN_ROUNDS + IDLE_PAUSE_ROUNDS + 1;
        assert_eq!(idle_action(first_sleep - 1), IdleAction::Pause);
        assert_eq!(idle_action(first_sleep), IdleAction::Sleep(IDLE_SLEEP_MIN));
        let mut last = Duration::ZERO;
        for r in first_sleep..first_sleep + 64 {
            let IdleAction::Sleep(d) = idle_action(r) else {
                panic!("round {r} does not sleep");
            };
            assert!(d >= last && d <= IDLE_SLEEP_MAX, "round {r}: {d:?}");
            last = d;
        }
        assert_eq!(last, IDLE_SLEEP_MAX);
        assert_eq!(idle_action(u32::MAX), IdleAction::Sleep(IDLE_SLEEP_MAX));
    }
}
