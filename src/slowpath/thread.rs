//! The slow-path thread: the I/O loop around [`SlowPath`].
//!
//! Runs on its own (registered) thread and, until the stop flag is set:
//! - forwards what the kernel sends on each interface's TAP out of the physical port (through the
//!   slow path's own tx queue), so probes, the kernel's ARP and management use kernel sockets;
//! - drains the workers' exception queues through [`SlowPath::handle`] and carries out the
//!   [`Action`]: reply or send on the port, pass to the kernel TAP, or drop;
//! - runs the neighbour table (ARP requests for members' next hops and gateways) and publishes a
//!   new [`NeighbourMap`] whenever its generation changes;
//! - consumes the prober's health changes, recompiles the snapshot with the previous one and
//!   swaps it in (workers never wait);
//! - reloads the configuration on SIGHUP or a control-socket request: validate, and on success
//!   compile, swap, retarget the prober and neighbours; on failure change nothing;
//! - publishes its counters for the control surfaces.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use crate::appliance::state::{ReloadRequest, Shared, TargetMeta};
use crate::balance::{Health, ProbeState, Snapshot};
use crate::config::{self, Config};
use crate::dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use crate::platform::signal;
use crate::slowpath::probe::{HealthChange, ProbeProtocol, ProbeSpec, ProbeTarget, Prober};
use crate::slowpath::{Action, FrontendInfo, InterfaceInfo, Nanos, SlowPath, SlowPathConfig};
use crate::wire::MacAddr;

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

/// The slow path's view of a snapshot's interfaces (with the ports' MACs).
pub fn interfaces_of(snapshot: &Snapshot, macs: &[MacAddr]) -> Vec<InterfaceInfo> {
    snapshot
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, ifc)| {
            InterfaceInfo::new(
                &ifc.name,
                macs.get(i).copied().unwrap_or(MacAddr([0; 6])),
                ifc.address.addr,
                ifc.address.prefix_len,
                ifc.gateway,
            )
        })
        .collect()
}

/// The slow path's view of a snapshot's frontends.
pub fn frontends_of(snapshot: &Snapshot) -> Vec<FrontendInfo> {
    snapshot
        .frontends
        .iter()
        .enumerate()
        .map(|(i, fe)| FrontendInfo {
            addr: fe.addr,
            iface: fe.interface.map(|x| x.index()).unwrap_or(0),
            any_member_up: snapshot
                .frontend_has_healthy_member(crate::balance::snapshot::FrontendId(i as u32)),
        })
        .collect()
}

/// Neighbours to keep resolved: members' next hops and interface gateways.
pub fn wanted_neighbours(snapshot: &Snapshot) -> Vec<(Ipv4Addr, usize)> {
    let mut set = BTreeSet::new();
    for m in &snapshot.members {
        if let (Some(nh), Some(ifc)) = (m.next_hop, m.interface) {
            set.insert((nh, ifc.index()));
        }
    }
    for (i, ifc) in snapshot.interfaces.iter().enumerate() {
        if let Some(gw) = ifc.gateway {
            set.insert((gw, i));
        }
    }
    set.into_iter().collect()
}

/// Prober targets for a snapshot: one per (probe, member address) of the probes' members.
pub fn probe_targets(snapshot: &Snapshot) -> (Vec<ProbeTarget>, Vec<TargetMeta>) {
    let mut targets = Vec::new();
    let mut meta = Vec::new();
    for p in &snapshot.probes {
        let protocol = match p.protocol {
            config::ProbeProtocol::Tcp => ProbeProtocol::Tcp,
            config::ProbeProtocol::Http => ProbeProtocol::Http,
            config::ProbeProtocol::Https => ProbeProtocol::Https,
        };
        let spec = ProbeSpec {
            protocol,
            port: p.port,
            request_path: p.request_path.clone().unwrap_or_else(|| "/".into()),
            interval: Duration::from_secs(u64::from(p.interval_seconds.max(1))),
            threshold: p.probe_threshold.max(1),
        };
        let addrs: BTreeSet<Ipv4Addr> = p
            .members
            .iter()
            .filter_map(|m| snapshot.member(*m))
            .map(|m| m.addr)
            .collect();
        for addr in addrs {
            let id = targets.len() as u32;
            targets.push(ProbeTarget::new(id, addr, spec.clone()));
            meta.push(TargetMeta {
                probe: p.name.clone(),
                addr,
            });
        }
    }
    (targets, meta)
}

struct Loop<'a, 'p> {
    t: &'a mut SlowPathThread<'p>,
    sp: SlowPath,
    health: Health,
    start: Instant,
    phys_out: Vec<Burst>,
    tap_out: Vec<Burst>,
    neigh_generation: u64,
}

impl Loop<'_, '_> {
    fn now(&self) -> Nanos {
        self.start.elapsed().as_nanos() as Nanos
    }

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

    fn send_frame(&mut self, iface: usize, frame: &[u8]) {
        if let Some(mut m) = self.t.pool.alloc() {
            if m.extend_from_slice(frame) {
                self.send_phys(iface, m);
            }
        }
    }

    fn flush(&mut self) {
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
    fn pump_taps(&mut self) -> usize {
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
    fn pump_exceptions(&mut self) -> usize {
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
                    // ICMP errors about flows are not yet forwarded to the flow's backend (that
                    // needs a lookup in the owning worker's table): dropped, counted by the slow
                    // path as `icmp_errors_to_flows`.
                    Action::DeliverToFlow { .. } => {}
                    Action::Drop(_) => {}
                }
            }
        }
        handled
    }

    fn publish_neighbours(&mut self) {
        let gen = self.sp.neighbours().generation();
        if gen != self.neigh_generation {
            self.neigh_generation = gen;
            self.t
                .shared
                .neighbours
                .store(Arc::new(self.sp.neighbours().snapshot()));
        }
    }

    fn tick(&mut self) {
        let now = self.now();
        for req in self.sp.poll(now) {
            let frame = req.to_vec();
            self.send_frame(req.iface, &frame);
        }
        self.publish_neighbours();
        if let Ok(mut c) = self.t.shared.slow_counters.lock() {
            c.clone_from(self.sp.counters());
        }
    }

    fn gratuitous_arps(&mut self) {
        for i in 0..self.t.phys_tx.len() {
            for frame in self.sp.gratuitous_arps(i) {
                self.send_frame(i, &frame);
            }
        }
    }

    fn apply_health(&mut self, change: &HealthChange) {
        let meta = self.t.shared.targets.load();
        // A change queued before a reload may name an id that now stands for another member.
        let Some(m) = meta
            .get(change.id as usize)
            .filter(|m| m.addr == change.addr)
        else {
            return;
        };
        let state = if change.up {
            ProbeState::Up
        } else {
            ProbeState::Down
        };
        tracing::info!(probe = %m.probe, member = %m.addr, state = ?state, reason = %change.reason, "health change");
        self.health.set(&m.probe, m.addr, state);
        self.recompile();
    }

    fn recompile(&mut self) {
        let shared = &self.t.shared;
        let config = shared.config.load();
        let prev = shared.snapshot.load();
        let snap = Snapshot::compile_with_previous(&config, &self.health, Some(&prev));
        for f in frontends_of(&snap) {
            self.sp.set_frontend_up(f.addr, f.any_member_up);
        }
        shared.snapshot.store(Arc::new(snap));
    }

    fn reload(&mut self, path: Option<std::path::PathBuf>) -> Result<String, String> {
        let shared = Arc::clone(&self.t.shared);
        let path = match path {
            Some(p) => p,
            None => shared
                .config_path
                .lock()
                .map_err(|_| "config path lock poisoned".to_string())?
                .clone(),
        };
        let config = Config::load(&path).map_err(|e| {
            format!(
                "{e}\n{}: {} error{}, nothing applied",
                path.display(),
                e.len(),
                if e.len() == 1 { "" } else { "s" }
            )
        })?;
        let old = shared.config.load();
        let same_ports = old.interfaces.len() == config.interfaces.len()
            && old
                .interfaces
                .iter()
                .zip(&config.interfaces)
                .all(|(a, b)| a.port == b.port && a.name == b.name && a.address == b.address);
        if !same_ports {
            return Err(format!(
                "{}: interfaces changed (ports, names or addresses); they are fixed at start: restart vipmux to change them. Nothing applied",
                path.display()
            ));
        }
        let prev = shared.snapshot.load();
        let snap = Snapshot::compile_with_previous(&config, &self.health, Some(&prev));
        let now = self.now();
        let spc = SlowPathConfig::new(interfaces_of(&snap, &self.t.macs), frontends_of(&snap));
        self.sp.reconfigure(spc, now);
        self.sp
            .neighbours_mut()
            .set_wanted(wanted_neighbours(&snap), now);
        let (targets, meta) = probe_targets(&snap);
        let summary = format!(
            "{}: reloaded (generation {}): {} frontends, {} rules, {} members, {} probe targets",
            path.display(),
            shared.generation.load(Ordering::SeqCst) + 1,
            snap.frontends.len(),
            snap.rules.len(),
            snap.members.len(),
            targets.len()
        );
        // Swap the snapshot before the targets: a health event for a new target id then finds
        // its meta, and one for an old id is at worst applied to the old (probe, member) key.
        shared.config.store(Arc::new(config));
        shared.snapshot.store(Arc::new(snap));
        shared.targets.store(Arc::new(meta));
        if let Some(p) = shared.prober.get() {
            match p.update_targets(targets) {
                Ok(report) => {
                    // New targets, and those whose probe changed, start over as Unknown (a
                    // stale result of an earlier configuration must not keep them up).
                    let meta = shared.targets.load();
                    let mut changed = false;
                    for id in report.added.iter().chain(&report.reset) {
                        if let Some(m) = meta.get(*id as usize) {
                            self.health.set(&m.probe, m.addr, ProbeState::Unknown);
                            changed = true;
                        }
                    }
                    if changed {
                        self.recompile();
                    }
                }
                Err(e) => tracing::warn!("prober update failed: {e}"),
            }
        }
        if let Ok(mut p) = shared.config_path.lock() {
            *p = path;
        }
        shared.generation.fetch_add(1, Ordering::SeqCst);
        self.gratuitous_arps();
        tracing::info!("{summary}");
        Ok(summary)
    }
}

impl SlowPathThread<'_> {
    /// Runs the slow path until the stop flag is set. `source` is the probes' source address.
    pub fn run(mut self, source: Option<Ipv4Addr>) {
        let start = Instant::now();
        let snap = self.shared.snapshot.load_full();
        let spc = SlowPathConfig::new(interfaces_of(&snap, &self.macs), frontends_of(&snap));
        let mut sp = SlowPath::new(spc, 0);
        sp.neighbours_mut().set_wanted(wanted_neighbours(&snap), 0);
        let (targets, meta) = probe_targets(&snap);
        self.shared.targets.store(Arc::new(meta));
        let changes = match Prober::spawn(targets, source) {
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
        let n = self.phys_tx.len();
        let mut l = Loop {
            t: &mut self,
            sp,
            health: Health::new(),
            start,
            phys_out: (0..n).map(|_| Burst::new()).collect(),
            tap_out: (0..n).map(|_| Burst::new()).collect(),
            neigh_generation: u64::MAX,
        };
        l.gratuitous_arps();
        l.tick();
        l.flush();
        let mut next_tick = Instant::now() + TICK;
        let mut idle_rounds = 0u32;
        while !signal::stop_requested() {
            let mut work = l.pump_taps();
            work += l.pump_exceptions();
            if let Some(rx) = &changes {
                while let Ok(c) = rx.try_recv() {
                    l.apply_health(&c);
                    work += 1;
                }
            }
            if signal::take_reload_request() {
                if let Err(e) = l.reload(None) {
                    tracing::error!("reload (SIGHUP) failed: {e}");
                }
            }
            while let Ok(req) = l.t.reloads.try_recv() {
                let r = l.reload(req.path);
                let _ = req.reply.try_send(r);
            }
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn idle_sleep_backs_off_and_is_capped() {
        use super::{idle_sleep, IDLE_SLEEP, IDLE_SLEEP_MAX};
        assert_eq!(idle_sleep(0), IDLE_SLEEP);
        assert!(idle_sleep(1) > idle_sleep(0));
        assert_eq!(idle_sleep(1000), IDLE_SLEEP_MAX);
    }

    use super::*;
    use crate::balance::Health;

    const CONFIG: &str = r#"
[[interfaces]]
name = "dc"
port = "net_af_packet0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"

[[frontends]]
name = "fe"
address = "10.1.0.100"
interface = "dc"

[[backend_pools]]
name = "web"
members = [
  { name = "a", address = "10.1.0.11" },
  { name = "b", address = "10.2.0.12" },
]

[[probes]]
name = "http"
protocol = "http"
port = 80
request_path = "/health"
interval_seconds = 2
probe_threshold = 3

[[probes]]
name = "tcp"
protocol = "tcp"
port = 22

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_pool = "web"
probe = "http"

[[load_balancing_rules]]
name = "ssh"
frontend = "fe"
protocol = "tcp"
frontend_port = 22
backend_pool = "web"
probe = "tcp"
"#;

    fn snapshot() -> Snapshot {
        let c = Config::from_str(CONFIG, "test").expect("valid config");
        Snapshot::compile(&c, &Health::new())
    }

    #[test]
    fn one_target_per_probe_and_member() {
        let (targets, meta) = probe_targets(&snapshot());
        assert_eq!(targets.len(), 4);
        assert_eq!(meta.len(), 4);
        for (i, t) in targets.iter().enumerate() {
            assert_eq!(t.id as usize, i);
            assert_eq!(t.addr, meta[i].addr);
        }
        let http: Vec<_> = targets
            .iter()
            .zip(&meta)
            .filter(|(_, m)| m.probe == "http")
            .collect();
        assert_eq!(http.len(), 2);
        assert_eq!(http[0].0.spec.protocol, ProbeProtocol::Http);
        assert_eq!(http[0].0.spec.request_path, "/health");
        assert_eq!(http[0].0.spec.interval, Duration::from_secs(2));
        assert_eq!(http[0].0.spec.threshold, 3);
    }

    #[test]
    fn wants_next_hops_and_gateway() {
        let w = wanted_neighbours(&snapshot());
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        assert!(w.contains(&(Ipv4Addr::new(10, 1, 0, 11), 0)));
        assert!(w.contains(&(gw, 0)), "gateway wanted: {w:?}");
        // the off-link member is reached through the gateway: no entry for it
        assert!(!w.iter().any(|(ip, _)| *ip == Ipv4Addr::new(10, 2, 0, 12)));
    }

    #[test]
    fn frontends_down_until_probed() {
        let f = frontends_of(&snapshot());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].addr, Ipv4Addr::new(10, 1, 0, 100));
        assert_eq!(f[0].iface, 0);
        assert!(!f[0].any_member_up);
        let i = interfaces_of(&snapshot(), &[MacAddr([2, 0, 0, 0, 0, 1])]);
        assert_eq!(i[0].addr, Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(i[0].gateway, Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(i[0].mac, MacAddr([2, 0, 0, 0, 0, 1]));
    }
}
