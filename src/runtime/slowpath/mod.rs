//! The slow-path thread: the I/O loop around the pure [`SlowPath`].
//!
//! Runs on its own (registered) thread and, until the stop flag is set:
//! - forwards what the kernel sends on each interface's TAP out of the physical port (through the
//!   slow path's own tx queue), so probes, the kernel's ARP and management use kernel sockets;
//! - drains the workers' exception queues through [`SlowPath::handle`] and carries out the
//!   [`Action`](crate::slowpath::Action): reply or send on the port, pass to the kernel TAP, or drop;
//! - runs the neighbour tables (ARP requests and IPv6 Neighbour Solicitations for members' next
//!   hops and gateways) and publishes a new [`NeighbourMap`](crate::dataplane::NeighbourMap) of both
//!   families whenever either table's content changes;
//! - consumes the prober's health changes, recompiles the snapshot with the previous one and
//!   swaps it in (workers never wait);
//! - reloads the configuration on SIGHUP or a control-socket request: validate, and on success
//!   compile, swap, retarget the prober and neighbours; on failure change nothing;
//! - publishes its counters for the control surfaces;
//! - runs data path availability's synthetic rounds through the workers
//!   ([`synthetic`](super::synthetic)).
//! - watches the physical ports' links (`links`): keeps the workers out of a memif port whose peer
//!   went away and brings a memif client back (docs/design.md §5.1).
//!
//! - [`setup`]: what the thread derives from a snapshot (interfaces, frontends, wanted
//!   neighbours, probe targets).
//! - `event_loop`: the loop's state and its I/O steps; `reconfigure`: health changes and reloads.

mod event_loop;
mod links;
mod reconfigure;
pub mod setup;

pub use setup::{
    frontends_of, interfaces_of, probe_targets, wanted_neighbours, wanted_neighbours6,
};

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use super::hub::{ReloadRequest, Shared};
use crate::balance::Health;
use crate::dpdk::{Burst, Mempool, Port, RxQueue, TxQueue};
use crate::platform::signal;
use crate::slowpath::probe::{HealthChange, Prober};
use crate::slowpath::{SlowPath, SlowPathConfig};
use crate::wire::MacAddr;
use event_loop::Loop;

/// Exceptions handled per worker queue per loop iteration.
const EXCEPTIONS_PER_ROUND: usize = 64;

/// How often timers (neighbours, counters) are serviced.
const TICK: Duration = Duration::from_millis(50);

/// First sleep when a loop iteration found nothing to do; it doubles while the slow path stays
/// idle, up to [`IDLE_SLEEP_MAX`], and returns to the minimum as soon as there is work.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// Longest idle sleep: bounds the extra latency of ARP, ping and the kernel's TAP traffic, and keeps
/// a worker's 1024-frame exception queue from filling at exception rates below 500 K/s.
const IDLE_SLEEP_MAX: Duration = Duration::from_millis(2);

/// The idle sleep after `idle_rounds` consecutive empty loop iterations.
fn idle_sleep(idle_rounds: u32) -> Duration {
    IDLE_SLEEP
        .saturating_mul(1 << idle_rounds.min(4))
        .min(IDLE_SLEEP_MAX)
}

/// How the slow path transmits on one physical port.
#[derive(Debug)]
pub enum SlowTx<'p> {
    /// Its own tx queue (the port has one more tx queue than workers).
    Queue(TxQueue<'p>),
    /// Through worker 0's inject queue (the device has no spare tx queue, e.g. af_packet).
    ViaWorker(usize),
}

impl SlowTx<'_> {
    /// Sends (or hands over) the burst; returns frames dropped.
    fn send(&mut self, shared: &Shared, port: usize, burst: &mut Burst) -> usize {
        match self {
            SlowTx::Queue(q) => q.tx_burst(burst).unsent,
            SlowTx::ViaWorker(w) => {
                let mut dropped = 0;
                match shared.workers.get(*w) {
                    Some(slot) => burst.drain_each(|_, m| {
                        if slot.inject.push((m, port)).is_err() {
                            dropped += 1;
                        }
                    }),
                    None => {
                        dropped = burst.len();
                        burst.clear();
                    }
                }
                dropped
            }
        }
    }
}

/// The slow path's queues and state.
pub struct SlowPathThread<'p> {
    /// Per interface: the TAP port's rx queue (kernel -> us).
    pub tap_rx: Vec<RxQueue<'p>>,
    /// Per interface: the TAP port's tx queue (us -> kernel).
    pub tap_tx: Vec<TxQueue<'p>>,
    /// Per interface: how the slow path transmits on the physical port.
    pub phys_tx: Vec<SlowTx<'p>>,
    /// Per interface: the physical port's MAC.
    pub macs: Vec<MacAddr>,
    /// The physical ports, whose counters the tick publishes.
    pub ports: &'p [Port],
    /// Pool for frames the slow path originates.
    pub pool: &'p Mempool,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Reload requests from the control socket.
    pub reloads: Receiver<ReloadRequest>,
}

impl std::fmt::Debug for SlowPathThread<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowPathThread")
            .field("interfaces", &self.macs.len())
            .finish()
    }
}

impl SlowPathThread<'_> {
    /// Runs the slow path until the stop flag is set. `source` is the probes' default source
    /// address (each target carries its own interface's address; this serves members with no
    /// route).
    pub fn run(mut self, source: Option<Ipv4Addr>) {
        let start = Instant::now();
        let (sp, changes) = self.start(source);
        let n = self.phys_tx.len();
        let links = links::watches(self.ports);
        let mut l = Loop {
            t: &mut self,
            sp,
            health: Health::at_start(),
            start,
            phys_out: (0..n).map(|_| Burst::new()).collect(),
            tap_out: (0..n).map(|_| Burst::new()).collect(),
            neigh_generation: u64::MAX,
            synthetic: Default::default(),
            next_synthetic: Instant::now(),
            links,
        };
        l.announce();
        l.tick();
        l.flush();
        let mut next_tick = Instant::now() + TICK;
        let mut idle_rounds = 0u32;
        while !signal::stop_requested() {
            let work = l.round(changes.as_ref());
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + TICK;
                l.tick();
            }
            l.flush();
            if work == 0 {
                std::thread::sleep(idle_sleep(idle_rounds));
                idle_rounds = idle_rounds.saturating_add(1);
            } else {
                idle_rounds = 0;
            }
        }
        l.flush();
        tracing::info!("slow path stopped");
    }

    /// The pure slow path configured from the current snapshot, and the prober started on its
    /// targets (its health changes, or `None` when it cannot start: probed members stay down).
    fn start(&mut self, source: Option<Ipv4Addr>) -> (SlowPath, Option<Receiver<HealthChange>>) {
        let snap = self.shared.snapshot.load_full();
        let spc = SlowPathConfig::new(interfaces_of(&snap, &self.macs), frontends_of(&snap));
        let mut sp = SlowPath::new(spc, 0);
        sp.neighbours_mut().set_wanted(wanted_neighbours(&snap), 0);
        sp.neighbours6_mut()
            .set_wanted(wanted_neighbours6(&snap), 0);
        let (targets, meta) = probe_targets(&snap);
        self.shared.targets.store(Arc::new(meta));
        let changes = match Prober::spawn(targets, source.map(std::net::IpAddr::V4)) {
            Ok(p) => {
                let rx = p.changes();
                let _ = self.shared.prober.set(Arc::new(p));
                Some(rx)
            }
            Err(e) => {
                tracing::error!("cannot start the prober: {e}; probed members stay down");
                None
            }
        };
        (sp, changes)
    }
}

impl Loop<'_, '_> {
    /// One pass over every source of work: the TAPs, the exception queues, the prober's health
    /// changes, a SIGHUP reload and control-socket reloads. Returns the frames and changes
    /// handled (reloads do not count).
    fn round(&mut self, changes: Option<&Receiver<HealthChange>>) -> usize {
        self.watch_links(false);
        let mut work = self.pump_taps();
        work += self.pump_exceptions();
        if let Some(rx) = changes {
            while let Ok(c) = rx.try_recv() {
                self.apply_health(&c);
                work += 1;
            }
        }
        if signal::take_reload_request() {
            if let Err(e) = self.reload(None) {
                tracing::error!("reload (SIGHUP) failed: {e}");
            }
        }
        while let Ok(req) = self.t.reloads.try_recv() {
            let r = self.reload(req.path);
            let _ = req.reply.try_send(r);
        }
        work
    }
}

#[cfg(test)]
mod tests {
    use super::{idle_sleep, IDLE_SLEEP, IDLE_SLEEP_MAX};

    #[test]
    fn idle_sleep_backs_off_and_is_capped() {
        assert_eq!(idle_sleep(0), IDLE_SLEEP);
        assert!(idle_sleep(1) > idle_sleep(0));
        assert_eq!(idle_sleep(1000), IDLE_SLEEP_MAX);
    }
}
