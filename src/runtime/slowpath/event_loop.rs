//! The slow-path thread's loop state and its I/O steps: moving frames between the workers'
//! exception queues, the kernel TAPs and the physical ports, and the periodic tick (with data path
//! availability's synthetic rounds).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{SlowPathThread, EXCEPTIONS_PER_ROUND};
use crate::balance::Health;
use crate::dataplane::View;
use crate::dpdk::link::LinkWatch;
use crate::dpdk::{Burst, Mbuf};
use crate::runtime::synthetic::{SyntheticRounds, SYNTHETIC_INTERVAL};
use crate::slowpath::{Action, Nanos, SlowPath};

/// The running slow path: its thread's queues, the pure [`SlowPath`], the health it has seen,
/// and one pending burst per physical port and per TAP.
pub(super) struct Loop<'a, 'p> {
    pub(super) t: &'a mut SlowPathThread<'p>,
    pub(super) sp: SlowPath,
    pub(super) health: Health,
    pub(super) start: Instant,
    pub(super) phys_out: Vec<Burst>,
    pub(super) tap_out: Vec<Burst>,
    pub(super) neigh_generation: u64,
    /// Data path availability's rounds, and when the next one is due.
    pub(super) synthetic: SyntheticRounds,
    pub(super) next_synthetic: Instant,
    /// One link watch per physical port.
    pub(super) links: Vec<LinkWatch>,
}

impl Loop<'_, '_> {
    /// Nanoseconds since the loop started (the pure slow path's clock).
    pub(super) fn now(&self) -> Nanos {
        self.start.elapsed().as_nanos() as Nanos
    }

    /// Queues `m` on physical port `iface`, sending the pending burst first when it is full.
    fn send_phys(&mut self, iface: usize, m: Mbuf) {
        let Some(out) = self.phys_out.get_mut(iface) else {
            return;
        };
        if let Err(m) = out.push(m) {
            let unsent = self.t.phys_tx[iface].send(&self.t.shared, iface, out);
            self.t
                .shared
                .slow_tx_drops
                .fetch_add(unsent as u64, Ordering::Relaxed);
            let _ = out.push(m);
        }
    }

    /// Queues `m` for the kernel on interface `iface`'s TAP, sending the pending burst first when
    /// it is full.
    fn send_tap(&mut self, iface: usize, m: Mbuf) {
        let Some(out) = self.tap_out.get_mut(iface) else {
            return;
        };
        if let Err(m) = out.push(m) {
            let o = self.t.tap_tx[iface].tx_burst(out);
            self.t
                .shared
                .slow_tx_drops
                .fetch_add(o.unsent as u64, Ordering::Relaxed);
            let _ = out.push(m);
        }
    }

    /// Copies `frame` into a new mbuf and queues it on physical port `iface` (dropped when the
    /// pool is empty).
    fn send_frame(&mut self, iface: usize, frame: &[u8]) {
        if let Some(mut m) = self.t.pool.alloc() {
            if m.extend_from_slice(frame) {
                self.send_phys(iface, m);
            }
        }
    }

    /// Sends every pending burst; refused frames are counted as slow-path tx drops.
    pub(super) fn flush(&mut self) {
        let mut unsent = 0;
        for (i, out) in self.phys_out.iter_mut().enumerate() {
            if !out.is_empty() {
                unsent += self.t.phys_tx[i].send(&self.t.shared, i, out);
            }
        }
        for (i, out) in self.tap_out.iter_mut().enumerate() {
            if !out.is_empty() {
                unsent += self.t.tap_tx[i].tx_burst(out).unsent;
            }
        }
        if unsent > 0 {
            self.t
                .shared
                .slow_tx_drops
                .fetch_add(unsent as u64, Ordering::Relaxed);
        }
    }

    /// Kernel -> wire for every TAP; returns frames moved.
    pub(super) fn pump_taps(&mut self) -> usize {
        let mut moved = 0;
        let mut burst = Burst::new();
        for i in 0..self.t.tap_rx.len() {
            let n = self.t.tap_rx[i].rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            moved += n;
            let unsent = self.t.phys_tx[i].send(&self.t.shared, i, &mut burst);
            if unsent > 0 {
                self.t
                    .shared
                    .slow_tx_drops
                    .fetch_add(unsent as u64, Ordering::Relaxed);
            }
        }
        moved
    }

    /// Handles queued exceptions; returns how many.
    pub(super) fn pump_exceptions(&mut self) -> usize {
        let mut handled = 0;
        let shared = Arc::clone(&self.t.shared);
        for slot in &shared.workers {
            for _ in 0..EXCEPTIONS_PER_ROUND {
                let Some((mut m, iface, why)) = slot.exceptions.pop() else {
                    break;
                };
                handled += 1;
                let now = self.now();
                match self.sp.handle(why, m.data_mut(), iface, now) {
                    Action::ReplyInPlace { iface, len } => {
                        let cur = m.len();
                        if len < cur {
                            m.trim(cur - len);
                        }
                        self.send_phys(iface, m);
                    }
                    Action::SendOnPort { iface, frame } => {
                        drop(m);
                        self.send_frame(iface, &frame);
                    }
                    Action::ToKernel { iface } => self.send_tap(iface, m),
                    // The workers deliver ICMP errors about flows themselves (they hold the flow
                    // tables, docs/design.md §4.4); one that still reaches here is dropped, counted
                    // by the slow path as `icmp_errors_to_flows`.
                    Action::DeliverToFlow { .. } => {}
                    Action::Drop(_) => {}
                }
            }
        }
        handled
    }

    /// Publishes a new neighbour map for the workers when the table's generation changed.
    fn publish_neighbours(&mut self) {
        let gen = self.sp.neighbour_generation();
        if gen != self.neigh_generation {
            self.neigh_generation = gen;
            self.t
                .shared
                .neighbours
                .store(Arc::new(self.sp.neighbour_map()));
        }
    }

    /// The periodic step: ARP requests and Neighbour Solicitations the neighbour tables want sent, the neighbour map, the end
    /// of the first probe round, the counters.
    pub(super) fn tick(&mut self) {
        let now = self.now();
        for (iface, frame) in self.sp.poll_frames(now) {
            self.send_frame(iface, &frame);
        }
        self.publish_neighbours();
        self.settle_after_first_round();
        self.t
            .shared
            .mbufs_in_use
            .store(u64::from(self.t.pool.in_use()), Ordering::Relaxed);
        if let Ok(mut c) = self.t.shared.slow_counters.lock() {
            c.clone_from(self.sp.counters());
        }
        self.publish_port_stats();
        self.watch_links(true);
        self.publish_link_counts();
        self.synthetic_round();
    }

    /// Every [`SYNTHETIC_INTERVAL`]: judges the synthetic round in flight and starts the next.
    fn synthetic_round(&mut self) {
        let now = Instant::now();
        if now < self.next_synthetic {
            return;
        }
        self.next_synthetic = now + SYNTHETIC_INTERVAL;
        let shared = Arc::clone(&self.t.shared);
        let (snapshot, neighbours) = (shared.snapshot.load(), shared.neighbours.load());
        let view = View {
            snapshot: &snapshot,
            neighbours: &neighbours,
            ports: &shared.ports,
        };
        let queues: Vec<_> = shared.workers.iter().map(|w| &w.synthetic).collect();
        self.synthetic
            .step(&queues, &shared.vip_availability, &view, self.t.pool);
    }

    /// Publishes the physical ports' counters (a port whose counters cannot be read keeps its
    /// last ones).
    fn publish_port_stats(&mut self) {
        let Ok(mut stats) = self.t.shared.port_stats.lock() else {
            return;
        };
        stats.resize(self.t.ports.len(), Default::default());
        for (slot, port) in stats.iter_mut().zip(self.t.ports) {
            if let Ok(s) = port.stats() {
                *slot = s;
            }
        }
    }

    /// Announces every interface's frontends (at start and after a reload): gratuitous ARPs for
    /// IPv4, unsolicited neighbour advertisements for IPv6.
    pub(super) fn announce(&mut self) {
        for i in 0..self.t.phys_tx.len() {
            let mut frames = self.sp.gratuitous_arps(i);
            frames.extend(self.sp.unsolicited_adverts(i));
            for frame in frames {
                self.send_frame(i, &frame);
            }
        }
    }
}
