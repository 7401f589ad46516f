//! The poll loop of one forwarding worker: rx burst -> pipeline -> tx burst, pinned to a core.
//!
//! Each worker owns a [`Pipeline`] (flow table, counters), one rx queue on every port and one tx
//! queue on every port (its own index; the slow path uses the last tx queue). Per loop iteration
//! it loads the current snapshot and neighbour map (two `arc-swap` loads, no locks), and for every
//! port receives a burst, runs the pipeline over it and dispatches the verdicts: `Forward` into
//! the egress port's out-burst, `ToSlowPath` into its bounded exception queue (dropped and counted
//! when full), `Drop` freed. Then it runs a small idle-expiry step and sends the RSTs it emits.
//! Every [`COUNTER_PUBLISH_INTERVAL`] it publishes its counters (a `try_lock` that never waits)
//! and answers pending flow-listing requests. Nothing on the packet path allocates, locks, logs
//! or makes a syscall.
//!
//! With adaptive polling (profile `adaptive_polling = true`) a worker whose queues stay empty backs
//! off ([`idle_action`]): full-speed polls, then polls with CPU pause hints, then sleeps growing to
//! [`IDLE_SLEEP_MAX`]; the first packet puts it back to full-speed polling.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use crate::appliance::state::{FlowListing, FlowRequest, Shared, COUNTER_PUBLISH_INTERVAL};
use crate::dataplane::{DropReason, Pipeline, PipelineConfig, Verdict, View};
use crate::dpdk::{signal, Burst, DpdkThread, Eal, Mbuf, Mempool, RxQueue, TxQueue, BURST_SIZE};

/// Hash buckets visited by one idle-expiry step per loop iteration.
pub const EXPIRE_BUDGET: usize = 8;

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
        let nports = self.rx.len();
        let mut burst = Burst::new();
        let mut outs: Vec<Burst> = (0..nports).map(|_| Burst::new()).collect();
        let mut verdicts: Vec<Verdict> = (0..BURST_SIZE)
            .map(|_| Verdict::Drop(DropReason::BadHeader))
            .collect();
        let slot = &self.shared.workers[self.id];
        let start = Instant::now();
        let mut next_publish = start;
        let mut idle_rounds = 0u32;
        let mut tx_full = 0u64;
        let mut exc_drops = 0u64;
        self.shared.workers_running.fetch_add(1, Ordering::SeqCst);
        while !signal::stop_requested() {
            let snapshot = self.shared.snapshot.load();
            let neighbours = self.shared.neighbours.load();
            let view = View {
                snapshot: &snapshot,
                neighbours: &neighbours,
                ports: &self.shared.ports,
            };
            let instant = Instant::now();
            let now = instant.duration_since(start).as_secs() as u32;
            let mut busy = false;
            for in_port in 0..nports {
                let n = self.rx[in_port].rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                busy = true;
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
            if !slot.inject.is_empty() {
                while let Some((m, port)) = slot.inject.pop() {
                    tx_full += push_or_flush(&mut outs, &mut self.tx, port, m) as u64;
                }
                tx_full += flush_all(&mut outs, &mut self.tx) as u64;
            }
            let pool = self.pool;
            let tx = &mut self.tx;
            let expired = pipeline.expire(&view, now, EXPIRE_BUDGET, |port, frame| {
                if let Some(mut m) = pool.alloc() {
                    if m.extend_from_slice(frame) {
                        tx_full += push_or_flush(&mut outs, tx, port, m) as u64;
                    }
                }
            });
            if expired > 0 {
                tx_full += flush_all(&mut outs, &mut self.tx) as u64;
            }
            if instant >= next_publish {
                next_publish = instant + COUNTER_PUBLISH_INTERVAL;
                if let Ok(mut c) = slot.counters.try_lock() {
                    c.clone_from(pipeline.counters());
                }
                slot.tx_full.store(tx_full, Ordering::Relaxed);
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
