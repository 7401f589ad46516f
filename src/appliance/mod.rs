//! The appliance (`vipmux run --config FILE`): bring-up, the threads, shutdown.
//!
//! Bring-up order: load and validate the configuration (errors as `check` prints them); load the
//! DPDK profile (`[dataplane] dpdk_profile`, relative to the configuration file's directory, else
//! the working directory; a built-in default when absent); add one `net_tap` vdev per interface
//! (the kernel exception port) to the EAL arguments; initialise the EAL and the mempool; open every
//! interface's port with `workers` rx queues and `workers + 1` tx queues (the last for the slow
//! path; devices with fewer tx queues, like `af_packet`, get the slow path's frames sent by worker
//! 0); open the TAPs and configure their kernel side (MAC, address, route); start the control
//! socket and the metrics endpoint; run the workers and the slow-path thread until SIGINT/SIGTERM;
//! then stop, drain, close the ports and remove the socket.
//!
//! - [`state`]: what the threads share.
//! - [`control`]: the control handler and metrics source.
//! - [`kernel`]: the kernel side of the TAPs.

pub mod control;
pub mod kernel;
pub mod state;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::balance::{Health, Snapshot};
use crate::config::Config;
use crate::dataplane::{PipelineConfig, PortInfo};
use crate::dpdk::{
    port_queue_limits, DpdkThread, Eal, Mempool, Port, PortConfig, Profile, QueueId,
};
use crate::platform::signal;
use crate::slowpath::thread::{SlowPathThread, SlowTx};
use crate::worker::Worker;

/// The start of the profile used when the configuration names none: EAL main core 0, workers
/// from core 1, hugepages if available; [`default_profile`] adds one port per interface, whose
/// device comes from `--eal` (`--vdev=...` or `-a PCI`).
pub const DEFAULT_PROFILE: &str = r#"
cores = [0, 1]
hugepages = "auto"
adaptive_polling = true

[eal]
args = ["--no-pci", "--log-level=*:notice"]
"#;

/// The built-in profile for `config`: [`DEFAULT_PROFILE`] plus a `[[ports]]` table per interface.
pub fn default_profile(config: &Config) -> Result<Profile, crate::dpdk::ProfileError> {
    let mut text = DEFAULT_PROFILE.to_string();
    for ifc in &config.interfaces {
        text.push_str(&format!("\n[[ports]]\nname = {:?}\n", ifc.port));
    }
    Profile::parse(&text, "built-in default profile")
}

/// Recently-expired record size per worker.
const RECENT_CAPACITY: usize = 65_536;

/// How long the recently-expired record remembers a flow, seconds.
const RECENT_WINDOW_SECS: u32 = 120;

type BoxError = Box<dyn std::error::Error>;

/// Where the profile named by the configuration lives: relative to the configuration file's
/// directory if it exists there, else as given (relative to the working directory).
pub fn resolve_profile(config_path: &Path, profile: &str) -> PathBuf {
    let p = Path::new(profile);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    if let Some(dir) = config_path.parent() {
        let candidate = dir.join(p);
        if candidate.exists() {
            return candidate;
        }
    }
    p.to_path_buf()
}

/// The DPDK device name of interface `index`'s TAP.
pub fn tap_port_name(index: usize) -> String {
    format!("net_tap_vmx{index}")
}

/// Worker cores: the profile's, else core 1.. on a machine with more than one core; repeated
/// round-robin when there are more workers than cores.
fn worker_cores(profile: &Profile, workers: usize) -> Vec<Option<usize>> {
    let listed = profile.worker_cores();
    let ncores = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(1);
    (0..workers)
        .map(|w| {
            if !listed.is_empty() {
                Some(listed[w % listed.len()])
            } else if ncores > 1 {
                Some(1 + w % (ncores - 1))
            } else {
                None
            }
        })
        .collect()
}

/// Runs the appliance from the configuration at `config_path` with `eal_extra` appended to the
/// profile's EAL arguments. Logging must be initialised by the caller.
pub fn run(config_path: &Path, eal_extra: &[String]) -> Result<ExitCode, BoxError> {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error{}, nothing applied",
                config_path.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let profile = match &config.dataplane.dpdk_profile {
        Some(p) => {
            let path = resolve_profile(config_path, p);
            Profile::load(&path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => default_profile(&config)?,
    };
    let workers = config.dataplane.workers.max(1) as usize;
    signal::install_stop_handler()?;
    signal::install_reload_handler()?;

    let mut extra = eal_extra.to_vec();
    let taps: Vec<String> = config
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, ifc)| kernel::tap_name(i, &ifc.name))
        .collect();
    for (i, tap) in taps.iter().enumerate() {
        extra.push(format!("--vdev={},iface={tap}", tap_port_name(i)));
    }
    let (eal, plan) = Eal::init_profile(&profile, &extra)?;
    let pool = Mempool::from_profile(eal, "vipmux_pool", &profile.mempool)?;

    let mut ports = Vec::new();
    let mut slow_queue = Vec::new();
    for ifc in &config.interfaces {
        let mut pc = profile
            .ports
            .iter()
            .find(|p| p.name == ifc.port)
            .map(PortConfig::from)
            .unwrap_or_default();
        let (max_rx, max_tx) = port_queue_limits(eal, &ifc.port)?;
        if usize::from(max_rx) < workers || usize::from(max_tx) < workers {
            return Err(format!(
                "port {} supports {max_rx} rx / {max_tx} tx queues, {workers} workers need as many (lower [dataplane] workers or give the device more queues)",
                ifc.port
            )
            .into());
        }
        pc.rx_queues = workers as u16;
        // A memif peer accepts only as many client rings as it configured itself (pktgen, testpmd
        // and VPP by default: one per worker), so a memif port gets no dedicated slow-path queue.
        let slow_extra = if ifc.port.starts_with("net_memif") {
            0
        } else {
            1
        };
        pc.tx_queues = (workers as u16 + slow_extra).min(max_tx);
        if ifc.mtu > 0 && ifc.mtu != 1500 {
            pc.mtu = u16::try_from(ifc.mtu).ok();
        }
        slow_queue.push(usize::from(pc.tx_queues) > workers);
        let port = Port::open(eal, &ifc.port, &pc, &pool)?;
        tracing::info!(port = %ifc.port, mac = %port.mac_addr()?, link = %port.link()?, rx_queues = pc.rx_queues, tx_queues = pc.tx_queues, "port up");
        ports.push(port);
    }
    let mut tap_ports = Vec::new();
    for i in 0..taps.len() {
        let pc = PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            ..PortConfig::default()
        };
        tap_ports.push(Port::open(eal, &tap_port_name(i), &pc, &pool)?);
    }
    let mut macs = Vec::new();
    let mut port_infos = Vec::new();
    for (ifc, port) in config.interfaces.iter().zip(&ports) {
        let mac = port.mac_addr()?;
        macs.push(mac);
        port_infos.push(PortInfo {
            mac,
            addr: ifc.address.addr,
            mtu: u16::try_from(ifc.mtu).unwrap_or(1500),
        });
    }
    for (i, ifc) in config.interfaces.iter().enumerate() {
        if let Some(dev) = kernel::af_packet_iface(&plan.args, &ifc.port) {
            kernel::silence_af_packet_iface(dev);
        }
        kernel::configure_tap(
            &taps[i],
            macs[i],
            ifc.address.addr,
            ifc.address.prefix_len,
            ifc.gateway,
        )
        .map_err(|e| format!("configuring the kernel TAP of interface {}: {e}", ifc.name))?;
        tracing::info!(interface = %ifc.name, tap = %taps[i], address = %ifc.address, "kernel exception port up");
    }

    let snapshot = Snapshot::compile(&config, &Health::new());
    let socket = PathBuf::from(&config.control.socket);
    let metrics_addr = config.control.metrics.clone();
    let pipeline_cfg = PipelineConfig {
        flow_capacity: usize::try_from(config.dataplane.flow_table_capacity).unwrap_or(1 << 20),
        recent_capacity: RECENT_CAPACITY,
        recent_window_secs: RECENT_WINDOW_SECS,
    };
    let source = config.interfaces.first().map(|i| i.address.addr);
    let names = config.interfaces.iter().map(|i| i.name.clone()).collect();
    let (shared, flow_rxs, reload_rx) = state::Shared::new(
        config,
        config_path.to_path_buf(),
        snapshot,
        port_infos,
        names,
        workers,
    );

    let handler = Arc::new(control::ApplianceControl::new(Arc::clone(&shared)));
    if let Some(dir) = socket.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let control_server = crate::control::ControlServer::start(&socket, handler.clone())
        .map_err(|e| format!("control socket {}: {e}", socket.display()))?;
    let metrics_server = if metrics_addr.is_empty() {
        None
    } else {
        match crate::control::MetricsServer::start(metrics_addr.as_str(), handler.clone()) {
            Ok(s) => {
                tracing::info!(addr = %s.local_addr(), "metrics endpoint up");
                Some(s)
            }
            Err(e) => {
                tracing::error!("metrics endpoint {metrics_addr}: {e}; continuing without");
                None
            }
        }
    };

    let cores = worker_cores(&profile, workers);
    let adaptive = profile.adaptive_polling;
    let result = std::thread::scope(|s| -> Result<(), BoxError> {
        let mut handles = Vec::new();
        for (w, flow_rx) in flow_rxs.into_iter().enumerate() {
            let q = QueueId(w as u16);
            let mut rx = Vec::new();
            let mut tx = Vec::new();
            for port in &ports {
                rx.push(port.rx_queue(q)?);
                tx.push(port.tx_queue(q)?);
            }
            let worker = Worker {
                id: w,
                core: cores[w],
                rx,
                tx,
                shared: Arc::clone(&shared),
                flow_requests: flow_rx,
                pool: &pool,
                pipeline: pipeline_cfg,
                adaptive,
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("vipmux-w{w}"))
                    .spawn_scoped(s, move || worker.run(eal))?,
            );
        }
        let mut phys_tx = Vec::new();
        for (port, dedicated) in ports.iter().zip(&slow_queue) {
            phys_tx.push(if *dedicated {
                SlowTx::Queue(port.tx_queue(QueueId(workers as u16))?)
            } else {
                SlowTx::ViaWorker(0)
            });
        }
        let mut tap_rx = Vec::new();
        let mut tap_tx = Vec::new();
        for t in &tap_ports {
            tap_rx.push(t.rx_queue(QueueId(0))?);
            tap_tx.push(t.tx_queue(QueueId(0))?);
        }
        let slow = SlowPathThread {
            tap_rx,
            tap_tx,
            phys_tx,
            macs: macs.clone(),
            pool: &pool,
            shared: Arc::clone(&shared),
            reloads: reload_rx,
        };
        let main_core = profile.main_core();
        let slow_handle = std::thread::Builder::new()
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
        while !signal::stop_requested() {
            let running = shared.workers_running.load(Ordering::SeqCst) as usize;
            if running == workers && !shared.forwarding.load(Ordering::SeqCst) {
                shared.forwarding.store(true, Ordering::SeqCst);
                tracing::info!(workers, "forwarding");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!("stopping");
        shared.forwarding.store(false, Ordering::SeqCst);
        let mut first_err: Option<BoxError> = None;
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_err = first_err.or(Some(e.into())),
                Err(_) => first_err = first_err.or(Some("a worker panicked".into())),
            }
        }
        if slow_handle.join().is_err() {
            first_err = first_err.or(Some("the slow path panicked".into()));
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    });
    drop(control_server);
    if let Some(m) = metrics_server {
        m.shutdown();
    }
    shared.drain_exceptions();
    for port in ports.into_iter().chain(tap_ports) {
        let name = port.name().to_owned();
        if let Err(e) = port.close() {
            tracing::warn!("closing {name}: {e}");
        }
    }
    result?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_str(
            "[[interfaces]]\nname = \"dc\"\nport = \"net_af_packet0\"\naddress = \"10.1.0.2/24\"\n",
            "test",
        )
        .expect("valid config")
    }

    #[test]
    fn default_profile_has_the_interfaces_ports() {
        let p = default_profile(&config()).expect("default profile");
        assert_eq!(p.main_core(), Some(0));
        assert_eq!(p.worker_cores(), &[1]);
        assert_eq!(p.ports.len(), 1);
        assert_eq!(p.ports[0].name, "net_af_packet0");
        assert!(p.ports[0].vdev.is_none());
    }

    #[test]
    fn profile_relative_to_config_dir() {
        let dir = std::env::temp_dir().join(format!("vipmux-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("p.toml"), "").expect("write");
        let cfg = dir.join("vipmux.toml");
        assert_eq!(resolve_profile(&cfg, "p.toml"), dir.join("p.toml"));
        assert_eq!(
            resolve_profile(&cfg, "missing.toml"),
            PathBuf::from("missing.toml")
        );
        assert_eq!(
            resolve_profile(&cfg, "/abs/x.toml"),
            PathBuf::from("/abs/x.toml")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn workers_get_profile_cores_round_robin() {
        let p = default_profile(&config()).expect("default profile");
        assert_eq!(worker_cores(&p, 3), vec![Some(1), Some(1), Some(1)]);
        assert_eq!(tap_port_name(2), "net_tap_vmx2");
    }
}
