//! The appliance's threads: the workers and the slow-path thread spawned on their cores,
//! supervised until a stop signal, then joined.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use crossbeam::channel::Receiver;

use super::devices::Devices;
use super::BoxError;
use crate::dataplane::PipelineConfig;
use crate::dpdk::{DpdkError, DpdkThread, Eal, Mempool, QueueId};
use crate::platform::signal;
use crate::runtime::hub::handoff_rings;
use crate::runtime::{FlowRequest, ReloadRequest, Shared, SlowPathThread, SlowTx, Worker};

/// How often the supervisor checks the stop flag and whether every worker is polling.
const SUPERVISE_EVERY: Duration = Duration::from_millis(20);
/// How often the supervisor checks that the exception TAPs still exist (in supervise rounds: 1 s).
const TAP_CHECK_ROUNDS: u32 = 50;

/// Where and how the threads run.
#[derive(Debug, Clone)]
pub(super) struct ThreadPlan {
    /// Per worker: the core to pin to, if any.
    pub(super) cores: Vec<Option<usize>>,
    /// The slow-path thread's core (the EAL main core), if any.
    pub(super) main_core: Option<usize>,
    /// Workers back off when idle.
    pub(super) adaptive: bool,
    /// Every worker's pipeline sizes.
    pub(super) pipeline: PipelineConfig,
    /// The probes' source address.
    pub(super) source: Option<Ipv4Addr>,
}

/// A worker thread's handle.
type WorkerHandle<'scope> = ScopedJoinHandle<'scope, Result<(), DpdkError>>;

/// Runs the workers (one per flow-request receiver) and the slow-path thread until the stop
/// flag is set, and joins them; the first error or panic is returned.
pub(super) fn run(
    eal: &'static Eal,
    pool: &Mempool,
    devices: &Devices,
    shared: &Arc<Shared>,
    flow_rxs: Vec<Receiver<FlowRequest>>,
    reload_rx: Receiver<ReloadRequest>,
    plan: &ThreadPlan,
) -> Result<(), BoxError> {
    std::thread::scope(|s| -> Result<(), BoxError> {
        let workers = spawn_workers(s, eal, pool, devices, shared, flow_rxs, plan)?;
        let slow = spawn_slow_path(s, eal, pool, devices, shared, reload_rx, plan)?;
        supervise(shared, workers.len());
        join(workers, slow)
    })
}

/// Spawns one worker per flow-request receiver, each with queue `w` of every port.
fn spawn_workers<'scope, 'env>(
    s: &'scope Scope<'scope, 'env>,
    eal: &'static Eal,
    pool: &'env Mempool,
    devices: &'env Devices,
    shared: &Arc<Shared>,
    flow_rxs: Vec<Receiver<FlowRequest>>,
    plan: &ThreadPlan,
) -> Result<Vec<WorkerHandle<'scope>>, BoxError> {
    let mut handles = Vec::new();
    let rings = handoff_rings(flow_rxs.len());
    for ((w, flow_rx), handoff) in flow_rxs.into_iter().enumerate().zip(rings) {
        let q = QueueId(w as u16);
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        for port in &devices.ports {
            rx.push(port.rx_queue(q)?);
            tx.push(port.tx_queue(q)?);
        }
        let worker = Worker {
            id: w,
            core: plan.cores[w],
            rx,
            tx,
            shared: Arc::clone(shared),
            flow_requests: flow_rx,
            pool,
            pipeline: plan.pipeline,
            adaptive: plan.adaptive,
            handoff,
        };
        handles.push(
            std::thread::Builder::new()
                .name(format!("vipmux-w{w}"))
                .spawn_scoped(s, move || worker.run(eal))?,
        );
    }
    Ok(handles)
}

/// Spawns the slow-path thread: the TAPs' queues, and per physical port its own tx queue (the
/// one after the workers') or worker 0's inject queue.
fn spawn_slow_path<'scope, 'env>(
    s: &'scope Scope<'scope, 'env>,
    eal: &'static Eal,
    pool: &'env Mempool,
    devices: &'env Devices,
    shared: &Arc<Shared>,
    reload_rx: Receiver<ReloadRequest>,
    plan: &ThreadPlan,
) -> Result<ScopedJoinHandle<'scope, ()>, BoxError> {
    let workers = plan.cores.len();
    let mut phys_tx = Vec::new();
    for (port, dedicated) in devices.ports.iter().zip(&devices.slow_queue) {
        phys_tx.push(if *dedicated {
            SlowTx::Queue(port.tx_queue(QueueId(workers as u16))?)
        } else {
            SlowTx::ViaWorker(0)
        });
    }
    let mut tap_rx = Vec::new();
    let mut tap_tx = Vec::new();
    for t in &devices.taps {
        tap_rx.push(t.rx_queue(QueueId(0))?);
        tap_tx.push(t.tx_queue(QueueId(0))?);
    }
    let slow = SlowPathThread {
        tap_rx,
        tap_tx,
        phys_tx,
        macs: devices.macs(),
        ports: &devices.ports,
        pool,
        shared: Arc::clone(shared),
        reloads: reload_rx,
    };
    let (main_core, source) = (plan.main_core, plan.source);
    let handle = std::thread::Builder::new()
        .name("vipmux-slow".into())
        .spawn_scoped(s, move || {
            let reg = match main_core {
                Some(c) => DpdkThread::pin_and_register(eal, c),
                None => DpdkThread::register(eal),
            };
            if let Err(e) = &reg {
                tracing::warn!("slow path thread not registered with DPDK: {e}");
            }
            slow.run(source);
        })?;
    Ok(handle)
}

/// Waits for the stop flag; marks the appliance forwarding once all `workers` poll, and not
/// forwarding once stopping.
fn supervise(shared: &Arc<Shared>, workers: usize) {
    let mut taps_gone: Vec<String> = Vec::new();
    let mut round = 0u32;
    while !signal::stop_requested() {
        round = round.wrapping_add(1);
        if round % TAP_CHECK_ROUNDS == 0 {
            report_missing_taps(shared, &mut taps_gone);
        }
        if signal::shutdown_insisted() {
            signal::request_stop();
        } else if signal::shutdown_requested() && !shared.bgp.draining() {
            shutdown(shared);
        }
        let running = shared.workers_running.load(Ordering::SeqCst) as usize;
        if running == workers && !shared.forwarding.load(Ordering::SeqCst) {
            shared.forwarding.store(true, Ordering::SeqCst);
            tracing::info!(workers, "forwarding");
        }
        std::thread::sleep(SUPERVISE_EVERY);
    }
    tracing::info!("stopping");
    shared.forwarding.store(false, Ordering::SeqCst);
}

/// Logs each exception TAP that disappeared since the last check (deleted from outside: vipmux does
/// not recreate it; `status` and `diagnose` say so too) and each that came back.
fn report_missing_taps(shared: &Shared, gone: &mut Vec<String>) {
    let taps = super::tap_names(&shared.config.load());
    let missing = super::kernel::missing_taps(&taps);
    for tap in missing.iter().filter(|t| !gone.contains(t)) {
        tracing::error!(tap = %tap, "exception TAP deleted from outside: the appliance's own address, ARP for it and health probes no longer work until vipmux restarts (established flows keep forwarding)");
    }
    for tap in gone.iter().filter(|t| !missing.contains(t)) {
        tracing::info!(tap = %tap, "exception TAP present again");
    }
    *gone = missing;
}

/// A stop signal: with `[bgp]`, drain briefly (withdraw first, so the routers move the VIPs
/// before the ports close); without, stop now.
fn shutdown(shared: &Arc<Shared>) {
    if shared.config.load().bgp.is_some() && shared.forwarding.load(Ordering::SeqCst) {
        tracing::info!("stop signal: withdrawing the VIPs before stopping");
        super::bgp::start_drain(shared, super::bgp::SIGNAL_DRAIN_DEADLINE);
    } else {
        signal::request_stop();
    }
}

/// Joins every thread; the first worker error, else the first panic, is returned.
fn join(workers: Vec<WorkerHandle<'_>>, slow: ScopedJoinHandle<'_, ()>) -> Result<(), BoxError> {
    let mut first_err: Option<BoxError> = None;
    for h in workers {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_err = first_err.or(Some(e.into())),
            Err(_) => first_err = first_err.or(Some("a worker panicked".into())),
        }
    }
    if slow.join().is_err() {
        first_err = first_err.or(Some("the slow path panicked".into()));
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
