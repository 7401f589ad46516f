//! The appliance (`vipmux run --config FILE`): bring-up, supervision, shutdown.
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
//! The threads themselves (the workers' poll loops, the slow-path thread) and the hub they share
//! live below, in [`crate::runtime`]; this room only brings them up and down.
//!
//! - [`control`]: the control handler and metrics source.
//! - [`kernel`]: the kernel side of the TAPs.
//! - `devices`: the ports and TAPs; `threads`: spawning, supervising and joining the threads;
//!   `servers`: the control socket and metrics endpoint.

mod azure_metrics;
pub mod bgp;
pub mod capture;
pub mod control;
mod devices;
pub mod diagnose;
pub mod kernel;
mod servers;
mod threads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crossbeam::channel::Receiver;

use crate::balance::{Health, Snapshot};
use crate::config::Config;
use crate::dataplane::PipelineConfig;
use crate::dpdk::{Eal, Mempool, Profile, ProfileError};
use crate::platform::signal;
use crate::runtime::{FlowRequest, ReloadRequest, Shared};
use devices::Devices;
use servers::Servers;
use threads::ThreadPlan;

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

/// Names the built-in profile in errors.
const DEFAULT_PROFILE_FILE: &str = "built-in default profile";

/// The built-in profile for `config`: [`DEFAULT_PROFILE`] plus a `[[ports]]` table per interface,
/// built as a TOML document (so any port name is quoted as TOML quotes it), its pool raised to
/// what the ports and the interfaces' exception TAPs need when that is more.
pub fn default_profile(config: &Config) -> Result<Profile, ProfileError> {
    let error = |message: String| ProfileError {
        file: DEFAULT_PROFILE_FILE.to_owned(),
        field: String::new(),
        message,
    };
    let mut doc: toml::Table = DEFAULT_PROFILE
        .parse()
        .map_err(|e: toml::de::Error| error(e.to_string()))?;
    let ports = config
        .interfaces
        .iter()
        .map(|ifc| {
            let mut port = toml::Table::new();
            port.insert("name".into(), toml::Value::String(ifc.port.clone()));
            toml::Value::Table(port)
        })
        .collect();
    doc.insert("ports".into(), toml::Value::Array(ports));
    let text = toml::to_string(&doc).map_err(|e| error(e.to_string()))?;
    let mut profile = Profile::parse(&text, DEFAULT_PROFILE_FILE)?;
    let (needed, ..) = profile.mbufs_needed(config.interfaces.len());
    let needed = u32::try_from(needed).map_err(|_| error(format!("{needed} mbufs needed")))?;
    profile.mempool.mbufs = profile.mempool.mbufs.max(needed);
    Ok(profile)
}

/// Fewest recently-expired records per worker (8 bytes each: 512 KiB).
const RECENT_MIN_CAPACITY: usize = 65_536;

/// Recently-expired records per worker for a flow table of `flow_capacity` entries: one per two
/// entries (8 bytes a record against the table's hundred-odd bytes an entry), at least
/// [`RECENT_MIN_CAPACITY`]. Its window, the longest idle timeout configured, comes with each
/// snapshot and does not change the memory.
fn recent_capacity(flow_capacity: usize) -> usize {
    (flow_capacity / 2).max(RECENT_MIN_CAPACITY)
}

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
    let Some((config, profile)) = load(config_path)? else {
        return Ok(ExitCode::FAILURE);
    };
    let workers = config.dataplane.workers.max(1) as usize;
    signal::install_shutdown_handler()?;
    signal::install_reload_handler()?;

    let taps = tap_names(&config);
    let (eal, plan) = Eal::init_profile(&profile, &eal_args(eal_extra, &taps))?;
    let pool = Mempool::from_profile(eal, "vipmux_pool", &profile.mempool)?;
    let devices = Devices::open(eal, &pool, &config, &profile, workers)?;
    devices.configure_kernel(&config, &taps, &plan.args)?;

    let thread_plan = thread_plan(&config, &profile, workers);
    let (shared, flow_rxs, reload_rx) = share(config, config_path, &devices, workers);
    let servers = Servers::start(&shared)?;
    let result = threads::run(
        eal,
        &pool,
        &devices,
        &shared,
        flow_rxs,
        reload_rx,
        &thread_plan,
    );
    shut_down(servers, &shared, devices);
    result?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The configuration at `config_path` and the DPDK profile it names (else the built-in one);
/// `None` after printing the configuration's errors as `check` does.
fn load(config_path: &Path) -> Result<Option<(Config, Profile)>, BoxError> {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(errors) => {
            crate::control::logging::eprint_error(&format!(
                "{errors}\n{}: {} error{}, nothing applied",
                config_path.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ));
            return Ok(None);
        }
    };
    let profile = match &config.dataplane.dpdk_profile {
        Some(p) => {
            let path = resolve_profile(config_path, p);
            Profile::load(&path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => default_profile(&config)?,
    };
    profile
        .check_pool_for_taps(config.interfaces.len())
        .map_err(|e| e.to_string())?;
    Ok(Some((config, profile)))
}

/// The kernel names of the interfaces' TAPs, in interface order.
fn tap_names(config: &Config) -> Vec<String> {
    config
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, ifc)| kernel::tap_name(i, &ifc.name))
        .collect()
}

/// The extra EAL arguments: `eal_extra`, then one `net_tap` vdev per TAP.
fn eal_args(eal_extra: &[String], taps: &[String]) -> Vec<String> {
    let mut extra = eal_extra.to_vec();
    for (i, tap) in taps.iter().enumerate() {
        extra.push(format!("--vdev={},iface={tap}", tap_port_name(i)));
    }
    extra
}

/// Where the threads run and the workers' pipeline sizes.
fn thread_plan(config: &Config, profile: &Profile, workers: usize) -> ThreadPlan {
    ThreadPlan {
        cores: worker_cores(profile, workers),
        main_core: profile.main_core(),
        adaptive: profile.adaptive_polling,
        pipeline: pipeline_config(config),
        source: config.interfaces.first().map(|i| i.address.addr),
    }
}

/// A worker's pipeline sizes: the configured flow table and a recently-expired record sized to it.
fn pipeline_config(config: &Config) -> PipelineConfig {
    let flow_capacity = usize::try_from(config.dataplane.flow_table_capacity).unwrap_or(1 << 20);
    let d = &config.dataplane;
    PipelineConfig {
        flow_capacity,
        recent_capacity: recent_capacity(flow_capacity),
        flow_capacity6: d
            .flow_table_capacity_ipv6
            .and_then(|n| usize::try_from(n).ok()),
    }
}

/// The hub for `workers` workers (the configuration, its compiled snapshot, the ports), with
/// the workers' flow-request receivers and the slow path's reload receiver.
#[allow(clippy::type_complexity)]
fn share(
    config: Config,
    config_path: &Path,
    devices: &Devices,
    workers: usize,
) -> (
    Arc<Shared>,
    Vec<Receiver<FlowRequest>>,
    Receiver<ReloadRequest>,
) {
    let snapshot = Snapshot::compile(&config, &Health::at_start());
    let names = config.interfaces.iter().map(|i| i.name.clone()).collect();
    let shared = Shared::new(
        config,
        config_path.to_path_buf(),
        snapshot,
        devices.infos.clone(),
        names,
        workers,
    );
    let _ = shared.0.port_queues.set(devices.queues.clone());
    shared
}

/// Stops the servers, frees the frames still queued for the slow path (before the mempool goes)
/// and closes the ports.
fn shut_down(servers: Servers, shared: &Shared, devices: Devices) {
    servers.stop();
    shared.drain_exceptions();
    devices.close();
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
    fn default_profile_equals_the_written_out_document() {
        let written = format!("{DEFAULT_PROFILE}\n[[ports]]\nname = \"net_af_packet0\"\n");
        let expected = Profile::parse(&written, DEFAULT_PROFILE_FILE).expect("written profile");
        assert_eq!(
            default_profile(&config()).expect("default profile"),
            expected
        );
    }

    #[test]
    fn default_profile_pool_holds_the_ports_and_taps() {
        assert_eq!(default_profile(&config()).unwrap().mempool.mbufs, 8191);
        let three = Config::from_str(
            "[[interfaces]]\nname = \"a\"\nport = \"net_ring0\"\naddress = \"10.1.0.2/24\"\n\
             [[interfaces]]\nname = \"b\"\nport = \"net_ring1\"\naddress = \"10.2.0.2/24\"\n\
             [[interfaces]]\nname = \"c\"\nport = \"net_ring2\"\naddress = \"10.3.0.2/24\"\n",
            "test",
        )
        .expect("valid config");
        let p = default_profile(&three).expect("default profile");
        let (needed, ..) = p.mbufs_needed(3);
        assert!(needed > 8191, "{needed}");
        assert_eq!(u64::from(p.mempool.mbufs), needed);
        p.check_pool_for_taps(3).expect("fits");
    }

    #[test]
    fn default_profile_keeps_any_port_name_exactly() {
        let mut c = config();
        // Quotes, a backslash and a control character: TOML escapes, not Rust's `{:?}` ones.
        let name = "net_x\"y\\z\u{1}";
        c.interfaces[0].port = name.to_owned();
        let p = default_profile(&c).expect("default profile");
        assert_eq!(p.ports.len(), 1);
        assert_eq!(p.ports[0].name, name);
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
