//! The prober thread: one current-thread tokio runtime, one lightweight task per target.

use super::check::probe_once;
use super::tls::probe_client_config;
use super::{HealthChange, HealthState, HealthTracker, ProbeReason, ProbeTarget, TargetStatus};
use crossbeam::channel::{self, Receiver, Sender};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_rustls::TlsConnector;

/// Default cap on probes in flight at once (each holds one socket).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;

/// Options of a prober beyond its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProberOptions {
    /// Source address the probes of a target without its own [`ProbeTarget::source`] bind to;
    /// `None` lets the kernel choose.
    pub source_addr: Option<IpAddr>,
    /// Most probes in flight at once; a probe due while the cap is reached waits for a slot.
    pub max_in_flight: usize,
}

impl Default for ProberOptions {
    fn default() -> Self {
        ProberOptions {
            source_addr: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// What [`ProberHandle::update_targets`] did, by target id (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateReport {
    /// New ids: start Unknown.
    pub added: Vec<u32>,
    /// Ids identical to before: untouched, schedule and state kept.
    pub kept: Vec<u32>,
    /// Same id, address and probe, but a new interval, threshold or source: state kept,
    /// rescheduled.
    pub retimed: Vec<u32>,
    /// Same id but a new address, protocol, port or path: state reset to Unknown.
    pub reset: Vec<u32>,
    /// Ids no longer probed.
    pub removed: Vec<u32>,
    /// Ids given more than once; only the first occurrence was used.
    pub duplicates: Vec<u32>,
}

/// Entry point for starting the prober thread.
#[derive(Debug)]
pub struct Prober;

impl Prober {
    /// Starts one thread probing `targets`, binding each probe to its target's source, else to
    /// `source_addr` when given.
    pub fn spawn(
        targets: Vec<ProbeTarget>,
        source_addr: Option<IpAddr>,
    ) -> io::Result<ProberHandle> {
        Self::spawn_with(
            targets,
            ProberOptions {
                source_addr,
                ..ProberOptions::default()
            },
        )
    }

    /// Starts one thread probing `targets` with `options`.
    pub fn spawn_with(
        targets: Vec<ProbeTarget>,
        options: ProberOptions,
    ) -> io::Result<ProberHandle> {
        let tls = probe_client_config().map_err(io::Error::other)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let (changes_tx, changes_rx) = channel::unbounded();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let table = Arc::new(Mutex::new(HashMap::new()));
        let ctx = Arc::new(Ctx {
            table: table.clone(),
            changes: changes_tx,
            tls: TlsConnector::from(tls),
            source: options.source_addr,
            limit: Semaphore::new(options.max_in_flight.clamp(1, Semaphore::MAX_PERMITS)),
        });
        let thread = std::thread::Builder::new()
            .name("vipmux-probe".into())
            .spawn(move || runtime.block_on(control_loop(commands_rx, ctx, targets)))?;
        Ok(ProberHandle {
            commands: commands_tx,
            changes: changes_rx,
            table,
            thread: Some(thread),
        })
    }
}

/// Handle on a running prober: events, status, reload and shutdown.
///
/// Dropping the handle shuts the prober down as [`ProberHandle::shutdown`] does.
#[derive(Debug)]
pub struct ProberHandle {
    commands: mpsc::UnboundedSender<Command>,
    changes: Receiver<HealthChange>,
    table: Arc<Mutex<HashMap<u32, Entry>>>,
    thread: Option<JoinHandle<()>>,
}

impl ProberHandle {
    /// The channel of Up/Down transitions, in the order they happened (meant for one consumer,
    /// the slow path; clones share, not copy, the events).
    pub fn changes(&self) -> Receiver<HealthChange> {
        self.changes.clone()
    }

    /// Current status of every target, sorted by id.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        let table = lock(&self.table);
        let mut all: Vec<TargetStatus> = table.values().map(|e| e.status.clone()).collect();
        drop(table);
        all.sort_by_key(|s| s.id);
        all
    }

    /// Current status of one target.
    pub fn status(&self, id: u32) -> Option<TargetStatus> {
        lock(&self.table).get(&id).map(|e| e.status.clone())
    }

    /// Current health of one target.
    pub fn state(&self, id: u32) -> Option<HealthState> {
        lock(&self.table).get(&id).map(|e| e.status.state)
    }

    /// Replaces the target set (reload), keeping the state of targets that stay; returns once
    /// the prober thread has applied it. Fails only when the prober thread has stopped.
    pub fn update_targets(&self, targets: Vec<ProbeTarget>) -> io::Result<UpdateReport> {
        let (tx, rx) = channel::bounded(1);
        self.commands
            .send(Command::Update(targets, tx))
            .map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())
    }

    /// Stops every probe and joins the prober thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("probe thread panicked");
            }
        }
    }
}

impl Drop for ProberHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "prober thread stopped")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
enum Command {
    Update(Vec<ProbeTarget>, Sender<UpdateReport>),
    Shutdown,
}

/// One target's shared state.
#[derive(Debug)]
struct Entry {
    status: TargetStatus,
    tracker: HealthTracker,
    generation: u64,
}

impl Entry {
    fn new(target: &ProbeTarget, generation: u64) -> Self {
        Entry {
            status: TargetStatus {
                id: target.id,
                addr: target.addr,
                spec: target.spec.clone(),
                state: HealthState::Unknown,
                last_reason: None,
                last_probe: None,
                last_duration: None,
                consecutive: 0,
                last_change: None,
                probes: 0,
            },
            tracker: HealthTracker::new(),
            generation,
        }
    }
}

/// What every probe task shares.
struct Ctx {
    table: Arc<Mutex<HashMap<u32, Entry>>>,
    changes: Sender<HealthChange>,
    tls: TlsConnector,
    source: Option<IpAddr>,
    limit: Semaphore,
}

impl Ctx {
    /// Applies one probe result of `id` (ignored if the target was replaced meanwhile).
    fn record(&self, id: u32, generation: u64, reason: ProbeReason, took: Duration) {
        let now = SystemTime::now();
        let mut table = lock(&self.table);
        let Some(entry) = table.get_mut(&id) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let previous = entry.tracker.state();
        let changed = entry
            .tracker
            .record_reason(&reason, entry.status.spec.effective_threshold());
        let st = &mut entry.status;
        st.state = entry.tracker.state();
        st.consecutive = entry.tracker.consecutive();
        st.last_probe = Some(now);
        st.last_duration = Some(took);
        st.probes += 1;
        if let Some(state) = changed {
            st.last_change = Some(now);
            tracing::info!(id, addr = %st.addr, %previous, %state, %reason, "member health changed");
            // Sent under the lock so events are in the order of the table's changes.
            let _ = self.changes.send(HealthChange {
                id,
                addr: st.addr,
                up: state == HealthState::Up,
                previous,
                reason: reason.clone(),
                consecutive: st.consecutive,
                at: now,
            });
        }
        st.last_reason = Some(reason);
    }
}

/// A target whose probe task is running.
struct Running {
    target: ProbeTarget,
    abort: AbortHandle,
}

async fn control_loop(
    mut commands: mpsc::UnboundedReceiver<Command>,
    ctx: Arc<Ctx>,
    initial: Vec<ProbeTarget>,
) {
    let mut running: HashMap<u32, Running> = HashMap::new();
    let mut generation = 0u64;
    apply(&mut running, &mut generation, &ctx, initial);
    while let Some(cmd) = commands.recv().await {
        match cmd {
            Command::Update(targets, reply) => {
                let report = apply(&mut running, &mut generation, &ctx, targets);
                let _ = reply.send(report);
            }
            Command::Shutdown => break,
        }
    }
    for r in running.values() {
        r.abort.abort();
    }
}

/// Makes `running` match `targets`; new and rescheduled tasks start staggered over their
/// interval in the order given.
fn apply(
    running: &mut HashMap<u32, Running>,
    generation: &mut u64,
    ctx: &Arc<Ctx>,
    targets: Vec<ProbeTarget>,
) -> UpdateReport {
    let mut report = UpdateReport::default();
    let mut seen = HashSet::with_capacity(targets.len());
    let mut to_start: Vec<(ProbeTarget, u64)> = Vec::new();
    {
        let mut table = lock(&ctx.table);
        for target in targets {
            if !seen.insert(target.id) {
                report.duplicates.push(target.id);
                continue;
            }
            let id = target.id;
            *generation += 1;
            match running.get(&id) {
                Some(old) if old.target == target => {
                    report.kept.push(id);
                    continue;
                }
                Some(old)
                    if old.target.addr == target.addr
                        && old.target.spec.same_probe(&target.spec) =>
                {
                    old.abort.abort();
                    if let Some(e) = table.get_mut(&id) {
                        e.status.spec = target.spec.clone();
                        e.generation = *generation;
                    }
                    report.retimed.push(id);
                }
                Some(old) => {
                    old.abort.abort();
                    table.insert(id, Entry::new(&target, *generation));
                    report.reset.push(id);
                }
                None => {
                    table.insert(id, Entry::new(&target, *generation));
                    report.added.push(id);
                }
            }
            to_start.push((target, *generation));
        }
        running.retain(|id, r| {
            if seen.contains(id) {
                true
            } else {
                r.abort.abort();
                table.remove(id);
                report.removed.push(*id);
                false
            }
        });
    }
    let n = to_start.len() as u32;
    for (i, (target, gen)) in to_start.into_iter().enumerate() {
        let interval = target.spec.effective_interval();
        let offset = interval.mul_f64(f64::from(i as u32) / f64::from(n.max(1)));
        let task = tokio::spawn(run_target(target.clone(), gen, offset, ctx.clone()));
        running.insert(
            target.id,
            Running {
                target,
                abort: task.abort_handle(),
            },
        );
    }
    for list in [
        &mut report.added,
        &mut report.kept,
        &mut report.retimed,
        &mut report.reset,
        &mut report.removed,
        &mut report.duplicates,
    ] {
        list.sort_unstable();
    }
    report
}

/// Probes one target forever at a fixed rate, starting after `offset`.
async fn run_target(target: ProbeTarget, generation: u64, offset: Duration, ctx: Arc<Ctx>) {
    let interval = target.spec.effective_interval();
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Ok(permit) = ctx.limit.acquire().await else {
            return;
        };
        let started = Instant::now();
        let source = target.source.or(ctx.source);
        let reason = probe_once(target.addr, &target.spec, source, &ctx.tls).await;
        drop(permit);
        ctx.record(target.id, generation, reason, started.elapsed());
    }
}
