//! DPDK profiles: the EAL arguments, ports, mempool and cores of one deployment, in TOML.
//!
//! A profile (files in `dpdk-config/`) looks like this; every key but `[[ports]] name` has a default:
//!
//! ```toml
//! cores = [0, 1]            # cores[0]: EAL main lcore (-l); cores[1..]: pinned worker threads
//! hugepages = "auto"        # auto | on | off (see below)
//! adaptive_polling = false  # workers back off (short sleeps) after many empty polls
//!
//! [eal]
//! args = ["--no-pci", "--log-level=*:notice"]   # passed to rte_eal_init as written
//!
//! [mempool]                 # one pktmbuf pool shared by all ports
//! mbufs = 8191              # number of mbufs (2^n - 1 is optimal)
//! cache = 256               # per-lcore cache (<= 512)
//! data_room = 2176          # bytes per mbuf data buffer, headroom (128) included
//!
//! [[ports]]
//! name = "net_ring0"        # DPDK device name: the port is found by it
//! vdev = "net_ring0"        # devargs for --vdev (must start with name), or:
//! # pci = "0000:01:00.0"    # PCI address for -a (name must then be the address)
//! rx_queues = 1             # RSS across queues when > 1 (hash types masked by the device's)
//! tx_queues = 1
//! rx_descriptors = 1024
//! tx_descriptors = 1024
//! # mtu = 1500              # optional
//! promiscuous = true
//! ```
//!
//! A port with neither `vdev` nor `pci` expects the device from extra EAL arguments
//! (`vipmux run --eal=--vdev=...`); an extra `--vdev` whose name matches a port replaces that
//! port's `vdev`.
//!
//! Hugepages: `on` requires a mounted hugetlbfs with enough free pages and runs `--in-memory`;
//! `off` runs `--no-huge --file-prefix vipmux-<pid> -m <MB>`; `auto` picks `on` when possible and
//! falls back to `off` otherwise (logged). When `[eal] args` already choose a memory mode
//! (`--in-memory`, `--no-huge` or `--file-prefix`), the profile adds none.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// Default number of mbufs in the pool.
pub const DEFAULT_MBUFS: u32 = 8191;
/// Default per-lcore mempool cache.
pub const DEFAULT_CACHE: u32 = 256;
/// Default mbuf data room (DPDK's default: 2048 + 128 bytes of headroom).
pub const DEFAULT_DATA_ROOM: u16 = 2176;
/// Receive descriptors of the exception TAP each interface gets: `net_tap` fills its rx ring
/// with mbufs of the pool when the port starts, so the pool must hold them too.
pub const TAP_RX_DESCRIPTORS: u16 = 1024;
const MAX_QUEUES: u16 = 1024;
const MAX_CACHE: u32 = 512;
const HEADROOM: u32 = 128;

/// A parsed and validated DPDK profile.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// EAL arguments.
    #[serde(default)]
    pub eal: EalProfile,
    /// Ports to bring up, in order.
    #[serde(default)]
    pub ports: Vec<PortProfile>,
    /// The pktmbuf pool.
    #[serde(default)]
    pub mempool: MempoolProfile,
    /// `cores[0]` is the EAL main lcore, the others are worker cores.
    #[serde(default)]
    pub cores: Vec<usize>,
    /// Hugepage policy.
    #[serde(default)]
    pub hugepages: HugepageMode,
    /// Workers back off after many empty polls.
    #[serde(default)]
    pub adaptive_polling: bool,
    /// Where the profile came from (its file, or how it was built), for error messages.
    #[serde(skip)]
    pub origin: String,
}

/// `[eal]`: arguments given to `rte_eal_init` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EalProfile {
    /// EAL arguments (without the program name).
    #[serde(default)]
    pub args: Vec<String>,
}

/// `[[ports]]`: one DPDK port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortProfile {
    /// DPDK device name (`rte_eth_dev_get_port_by_name`).
    pub name: String,
    /// Virtual device arguments for `--vdev` (start with `name`).
    #[serde(default)]
    pub vdev: Option<String>,
    /// PCI address for `-a`.
    #[serde(default)]
    pub pci: Option<String>,
    /// Number of receive queues.
    #[serde(default = "one")]
    pub rx_queues: u16,
    /// Number of transmit queues.
    #[serde(default = "one")]
    pub tx_queues: u16,
    /// Descriptors per receive queue.
    #[serde(default = "descriptors")]
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue.
    #[serde(default = "descriptors")]
    pub tx_descriptors: u16,
    /// MTU to set, if any.
    #[serde(default)]
    pub mtu: Option<u16>,
    /// Put the port in promiscuous mode (failures on devices without it are logged only).
    #[serde(default = "yes")]
    pub promiscuous: bool,
}

/// `[mempool]`: the pktmbuf pool.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MempoolProfile {
    /// Number of mbufs.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    /// Per-lcore cache size.
    #[serde(default = "default_cache")]
    pub cache: u32,
    /// Data room per mbuf, headroom included.
    #[serde(default = "default_data_room")]
    pub data_room: u16,
}

impl Default for MempoolProfile {
    fn default() -> Self {
        Self {
            mbufs: DEFAULT_MBUFS,
            cache: DEFAULT_CACHE,
            data_room: DEFAULT_DATA_ROOM,
        }
    }
}

/// Hugepage policy of a profile.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HugepageMode {
    /// Hugepages when available, else `--no-huge` (logged).
    #[default]
    Auto,
    /// Hugepages required.
    On,
    /// Never hugepages.
    Off,
}

fn one() -> u16 {
    1
}
fn descriptors() -> u16 {
    1024
}
fn yes() -> bool {
    true
}
fn default_mbufs() -> u32 {
    DEFAULT_MBUFS
}
fn default_cache() -> u32 {
    DEFAULT_CACHE
}
fn default_data_room() -> u16 {
    DEFAULT_DATA_ROOM
}

/// A profile that could not be read, parsed or validated: which file, which field, which value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// The profile file (or `<string>`).
    pub file: String,
    /// The field, e.g. `ports[0].rx_queues` (empty for file-level errors).
    pub field: String,
    /// What is wrong and what is valid.
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.field, self.message)
        }
    }
}

impl std::error::Error for ProfileError {}

/// What the machine offers in hugepages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugepageStatus {
    /// A hugetlbfs is mounted.
    pub mounted: bool,
    /// Free hugepage memory, bytes.
    pub free_bytes: u64,
}

impl HugepageStatus {
    /// Reads `/proc/mounts` and `/proc/meminfo`.
    pub fn detect() -> Self {
        let mounted = std::fs::read_to_string("/proc/mounts")
            .map(|m| {
                m.lines()
                    .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
            })
            .unwrap_or(false);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |name: &str| -> u64 {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let free_bytes = field("HugePages_Free")
            .saturating_mul(field("Hugepagesize"))
            .saturating_mul(1024);
        Self {
            mounted,
            free_bytes,
        }
    }
}

/// How the EAL will get its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryPlan {
    /// Hugepages, `--in-memory`.
    Hugepages,
    /// No hugepages: `--no-huge --file-prefix <prefix>`; the reason is for the log.
    NoHuge {
        /// The `--file-prefix` used (runtime files live in `/var/run/dpdk/<prefix>`).
        file_prefix: String,
        /// Why hugepages are not used.
        reason: String,
    },
    /// The profile's own EAL arguments chose the memory mode.
    FromArgs,
}

/// The EAL command line computed from a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalPlan {
    /// Arguments for `rte_eal_init` (without the program name).
    pub args: Vec<String>,
    /// The memory mode chosen.
    pub memory: MemoryPlan,
}

impl Profile {
    /// Reads, parses and validates a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            file: file.clone(),
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates profile text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ProfileError> {
        let mut profile: Profile = toml::from_str(text).map_err(|e| ProfileError {
            file: file.to_owned(),
            field: String::new(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        profile.validate(file)?;
        profile.origin = file.to_owned();
        Ok(profile)
    }

    /// Checks that the pool also holds the receive rings of `taps` exception TAPs (the appliance
    /// opens one per interface; `net_tap` fills its ring with mbufs of the pool at start).
    pub fn check_pool_for_taps(&self, taps: usize) -> Result<(), ProfileError> {
        self.check_mbufs(&self.origin, taps)
    }

    /// The fewest mbufs the pool may have: every port's descriptors, `taps` TAP receive rings and
    /// 1024 frames in flight, as (needed, rx, tx, TAP rx).
    pub fn mbufs_needed(&self, taps: usize) -> (u64, u64, u64, u64) {
        let rx_descs: u64 = self
            .ports
            .iter()
            .map(|p| u64::from(p.rx_queues) * u64::from(p.rx_descriptors))
            .sum();
        let tx_descs: u64 = self
            .ports
            .iter()
            .map(|p| u64::from(p.tx_queues) * u64::from(p.tx_descriptors))
            .sum();
        let tap_descs = taps as u64 * u64::from(TAP_RX_DESCRIPTORS);
        (
            rx_descs + tx_descs + tap_descs + 1024,
            rx_descs,
            tx_descs,
            tap_descs,
        )
    }

    /// `mempool.mbufs` holds every port's descriptors, `taps` TAP receive rings and 1024 frames in
    /// flight.
    fn check_mbufs(&self, file: &str, taps: usize) -> Result<(), ProfileError> {
        let (needed, rx_descs, tx_descs, tap_descs) = self.mbufs_needed(taps);
        let mbufs = self.mempool.mbufs;
        if u64::from(mbufs) >= needed {
            return Ok(());
        }
        let taps = if taps > 0 {
            format!(" + {tap_descs} exception-TAP rx")
        } else {
            String::new()
        };
        Err(ProfileError {
            file: file.to_owned(),
            field: "mempool.mbufs".into(),
            message: format!(
                "{mbufs}: too few for the ports' descriptors ({rx_descs} rx + {tx_descs} tx{taps} + 1024 in flight); use at least {needed}"
            ),
        })
    }

    fn validate(&self, file: &str) -> Result<(), ProfileError> {
        let err = |field: String, message: String| ProfileError {
            file: file.to_owned(),
            field,
            message,
        };
        if self.ports.is_empty() {
            return Err(err(
                "ports".into(),
                "at least one [[ports]] table is required".into(),
            ));
        }
        let mut names = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let f = |name: &str| format!("ports[{i}].{name}");
            if p.name.is_empty() || p.name.len() > 63 || p.name.contains(char::is_whitespace) {
                return Err(err(
                    f("name"),
                    format!("{:?}: must be 1-63 characters without spaces", p.name),
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err(err(f("name"), format!("{:?}: duplicate port name", p.name)));
            }
            match (&p.vdev, &p.pci) {
                (Some(_), Some(_)) => {
                    return Err(err(f("pci"), "give either vdev or pci, not both".into()))
                }
                (Some(v), None) if vdev_name(v) != p.name => {
                    return Err(err(
                        f("vdev"),
                        format!(
                            "{v:?}: must start with the port name {:?} (e.g. \"{},iface=eth1\")",
                            p.name, p.name
                        ),
                    ))
                }
                (None, Some(pci)) if pci != &p.name => {
                    return Err(err(
                        f("name"),
                        format!("{:?}: must equal the PCI address {pci:?}", p.name),
                    ))
                }
                _ => {}
            }
            for (field, v) in [("rx_queues", p.rx_queues), ("tx_queues", p.tx_queues)] {
                if v == 0 || v > MAX_QUEUES {
                    return Err(err(
                        f(field),
                        format!("{v}: must be between 1 and {MAX_QUEUES}"),
                    ));
                }
            }
            for (field, v) in [
                ("rx_descriptors", p.rx_descriptors),
                ("tx_descriptors", p.tx_descriptors),
            ] {
                if v < 32 {
                    return Err(err(f(field), format!("{v}: must be at least 32")));
                }
            }
            if let Some(mtu) = p.mtu {
                if !(68..=9600).contains(&mtu) {
                    return Err(err(f("mtu"), format!("{mtu}: must be between 68 and 9600")));
                }
            }
        }
        let m = &self.mempool;
        if m.cache > MAX_CACHE {
            return Err(err(
                "mempool.cache".into(),
                format!("{}: must be at most {MAX_CACHE}", m.cache),
            ));
        }
        self.check_mbufs(file, 0)?;
        if u64::from(m.cache) * 3 / 2 > u64::from(m.mbufs) {
            return Err(err(
                "mempool.cache".into(),
                format!("{}: must be at most mbufs / 1.5", m.cache),
            ));
        }
        if u32::from(m.data_room) < HEADROOM + 64 {
            return Err(err(
                "mempool.data_room".into(),
                format!(
                    "{}: must be at least {} (128 headroom + 64)",
                    m.data_room,
                    HEADROOM + 64
                ),
            ));
        }
        // Workers need a core each; the main (slow-path) core may be shared with a worker, which
        // lets a two-core benchmark keep one core for the traffic generator.
        let mut seen = HashSet::new();
        for (i, c) in self.cores.iter().enumerate().skip(1) {
            if !seen.insert(*c) {
                return Err(err(
                    format!("cores[{i}]"),
                    format!("{c}: duplicate worker core (each worker needs its own core)"),
                ));
            }
        }
        Ok(())
    }

    /// The EAL main core (`cores[0]`), if the profile names cores.
    pub fn main_core(&self) -> Option<usize> {
        self.cores.first().copied()
    }

    /// The worker cores (`cores[1..]`).
    pub fn worker_cores(&self) -> &[usize] {
        self.cores.get(1..).unwrap_or(&[])
    }

    /// Bytes of memory the EAL needs for this profile (mempool, rings, a fixed base).
    pub fn memory_estimate(&self) -> u64 {
        let per_mbuf = u64::from(self.mempool.data_room) + 256;
        let descs: u64 = self
            .ports
            .iter()
            .map(|p| {
                u64::from(p.rx_queues) * u64::from(p.rx_descriptors)
                    + u64::from(p.tx_queues) * u64::from(p.tx_descriptors)
            })
            .sum();
        u64::from(self.mempool.mbufs) * per_mbuf + descs * 64 + (128 << 20)
    }

    /// The EAL arguments for this profile plus `extra` (appended last), on a machine with
    /// `hugepages`; `pid` makes the `--no-huge` file prefix unique.
    pub fn eal_plan(
        &self,
        extra: &[String],
        hugepages: HugepageStatus,
        pid: u32,
    ) -> Result<EalPlan, ProfileError> {
        let mut args = self.eal.args.clone();
        let all: Vec<&String> = self.eal.args.iter().chain(extra).collect();
        let has = |names: &[&str]| {
            all.iter().any(|a| {
                names
                    .iter()
                    .any(|n| a.as_str() == *n || a.starts_with(&format!("{n}=")))
            })
        };
        let memory = if has(&["--in-memory", "--no-huge", "--file-prefix"]) {
            MemoryPlan::FromArgs
        } else {
            let needed = self.memory_estimate();
            let reason = if !hugepages.mounted {
                Some("no hugetlbfs mounted (mount one at /dev/hugepages)".to_owned())
            } else if hugepages.free_bytes < needed {
                Some(format!(
                    "{} MiB of hugepages free, {} MiB needed (raise /proc/sys/vm/nr_hugepages)",
                    hugepages.free_bytes >> 20,
                    needed.div_ceil(1 << 20)
                ))
            } else {
                None
            };
            match (self.hugepages, reason) {
                (HugepageMode::On, Some(reason)) => {
                    return Err(ProfileError {
                        file: self.origin.clone(),
                        field: "hugepages".into(),
                        message: format!("\"on\" but {reason}"),
                    })
                }
                (HugepageMode::Off, _) => MemoryPlan::NoHuge {
                    file_prefix: format!("vipmux-{pid}"),
                    reason: "profile says hugepages = \"off\"".into(),
                },
                (HugepageMode::Auto, Some(reason)) => MemoryPlan::NoHuge {
                    file_prefix: format!("vipmux-{pid}"),
                    reason,
                },
                (_, None) => MemoryPlan::Hugepages,
            }
        };
        match &memory {
            MemoryPlan::Hugepages => args.push("--in-memory".into()),
            MemoryPlan::NoHuge { file_prefix, .. } => {
                args.extend([
                    "--no-huge".into(),
                    "--file-prefix".into(),
                    file_prefix.clone(),
                ]);
                if !has(&["-m", "--socket-mem"]) {
                    args.extend([
                        "-m".into(),
                        self.memory_estimate().div_ceil(1 << 20).to_string(),
                    ]);
                }
            }
            MemoryPlan::FromArgs => {}
        }
        if let Some(main) = self.main_core() {
            if !has(&["-l", "-c", "--lcores"]) {
                args.extend(["-l".into(), main.to_string()]);
            }
        }
        let extra_vdevs: Vec<&str> = vdev_args(extra).collect();
        for p in &self.ports {
            if let Some(v) = &p.vdev {
                if !extra_vdevs.contains(&p.name.as_str()) {
                    args.push(format!("--vdev={v}"));
                }
            }
            if let Some(pci) = &p.pci {
                args.extend(["-a".into(), pci.clone()]);
            }
        }
        args.extend(extra.iter().cloned());
        Ok(EalPlan { args, memory })
    }
}

/// The device name of `--vdev` devargs: the part before the first comma.
fn vdev_name(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or(devargs)
}

/// Names of the devices created by `--vdev=X` / `--vdev X` in `args`.
fn vdev_args(args: &[String]) -> impl Iterator<Item = &str> {
    args.iter().enumerate().filter_map(move |(i, a)| {
        if let Some(v) = a.strip_prefix("--vdev=") {
            Some(vdev_name(v))
        } else if a == "--vdev" {
            args.get(i + 1).map(|v| vdev_name(v))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = r#"
        cores = [0, 1]
        [eal]
        args = ["--no-pci"]
        [[ports]]
        name = "net_ring0"
        vdev = "net_ring0"
    "#;

    const HUGE: HugepageStatus = HugepageStatus {
        mounted: true,
        free_bytes: 2 << 30,
    };
    const NONE: HugepageStatus = HugepageStatus {
        mounted: false,
        free_bytes: 0,
    };

    #[test]
    fn defaults_fill_in() {
        let p = Profile::parse(BASIC, "t.toml").unwrap();
        assert_eq!(p.ports[0].rx_queues, 1);
        assert_eq!(p.ports[0].rx_descriptors, 1024);
        assert_eq!(p.mempool, MempoolProfile::default());
        assert_eq!(p.hugepages, HugepageMode::Auto);
        assert_eq!(p.worker_cores(), &[1]);
    }

    #[test]
    fn hugepages_give_in_memory() {
        let p = Profile::parse(BASIC, "t.toml").unwrap();
        let plan = p.eal_plan(&[], HUGE, 42).unwrap();
        assert_eq!(plan.memory, MemoryPlan::Hugepages);
        assert_eq!(
            plan.args,
            ["--no-pci", "--in-memory", "-l", "0", "--vdev=net_ring0"]
        );
    }

    #[test]
    fn no_hugepages_fall_back_with_unique_prefix() {
        let p = Profile::parse(BASIC, "t.toml").unwrap();
        let plan = p.eal_plan(&[], NONE, 42).unwrap();
        assert!(
            matches!(plan.memory, MemoryPlan::NoHuge { ref file_prefix, .. } if file_prefix == "vipmux-42")
        );
        assert_eq!(
            &plan.args[..4],
            ["--no-pci", "--no-huge", "--file-prefix", "vipmux-42"]
        );
        assert!(plan.args.contains(&"-m".to_owned()));
        let small = HugepageStatus {
            mounted: true,
            free_bytes: 4 << 20,
        };
        assert!(matches!(
            p.eal_plan(&[], small, 1).unwrap().memory,
            MemoryPlan::NoHuge { .. }
        ));
    }

    #[test]
    fn hugepages_on_requires_them() {
        let text = format!("hugepages = \"on\"\n{BASIC}");
        let p = Profile::parse(&text, "t.toml").unwrap();
        let e = p.eal_plan(&[], NONE, 1).unwrap_err();
        assert_eq!(e.field, "hugepages");
    }

    #[test]
    fn extra_vdev_replaces_profile_vdev() {
        let p = Profile::parse(BASIC, "t.toml").unwrap();
        let extra = vec!["--vdev=net_ring0,nodeaction=x".to_owned()];
        let plan = p.eal_plan(&extra, HUGE, 1).unwrap();
        assert_eq!(
            plan.args.iter().filter(|a| a.starts_with("--vdev")).count(),
            1
        );
        assert_eq!(plan.args.last().unwrap(), "--vdev=net_ring0,nodeaction=x");
    }

    #[test]
    fn explicit_memory_args_are_respected() {
        let text = BASIC.replace(
            "[\"--no-pci\"]",
            "[\"--no-pci\", \"--no-huge\", \"--file-prefix=x\"]",
        );
        let p = Profile::parse(&text, "t.toml").unwrap();
        let plan = p.eal_plan(&[], HUGE, 1).unwrap();
        assert_eq!(plan.memory, MemoryPlan::FromArgs);
        assert!(!plan.args.contains(&"--in-memory".to_owned()));
    }

    #[test]
    fn errors_name_file_field_and_value() {
        let e = Profile::parse(
            &BASIC.replace("vdev = \"net_ring0\"", "rx_queues = 0"),
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml: ports[0].rx_queues: 0: must be between 1 and 1024"
        );
        let e = Profile::parse(
            &BASIC.replace("vdev = \"net_ring0\"", "vdev = \"net_tap0\""),
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(e.field, "ports[0].vdev");
        let e = Profile::parse(&format!("{BASIC}\n[mempool]\nmbufs = 10\n"), "p.toml").unwrap_err();
        assert_eq!(e.field, "mempool.mbufs");
        let p = Profile::parse(&format!("{BASIC}\n[mempool]\nmbufs = 4000\n"), "p.toml").unwrap();
        let e = p.check_pool_for_taps(2).unwrap_err();
        assert_eq!(e.field, "mempool.mbufs");
        assert!(e.message.contains(" + 2048 exception-TAP rx + "), "{e}");
        assert!(
            e.to_string().starts_with("p.toml: mempool.mbufs: 4000: "),
            "{e}"
        );
        let e = Profile::parse("hugepages = \"maybe\"\n", "p.toml").unwrap_err();
        assert!(e.to_string().starts_with("p.toml: "), "{e}");
        assert!(e.message.contains("maybe"), "{e}");
        let e = Profile::parse(&format!("{BASIC}\nbogus = 1\n"), "p.toml").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn shipped_profiles_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dpdk-config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 6, "expected the shipped profiles, found {n}");
    }
}
