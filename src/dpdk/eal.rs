//! The Environment Abstraction Layer: initialised once per process, from a profile or raw args.
//!
//! `Eal` is a token proving `rte_eal_init` succeeded; everything that needs the EAL (ports,
//! mempools, thread registration) asks for `&Eal`.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use super::error::DpdkError;
use super::profile::{EalPlan, HugepageStatus, MemoryPlan, Profile};
use super::sys;

/// Proof that the EAL is initialised; obtained once per process and shared as `&'static Eal`.
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
    hugepages: bool,
}

static EAL: Mutex<Option<&'static Eal>> = Mutex::new(None);
static RUNTIME_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" {
    fn atexit(cb: extern "C" fn()) -> c_int;
}

extern "C" fn remove_runtime_dir() {
    if let Some(dir) = RUNTIME_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Eal {
    /// Initialises the EAL with `args` (without the program name). A second call with the same
    /// arguments returns the same token; with different arguments it fails (the EAL cannot be
    /// initialised twice in one process).
    pub fn init(args: &[String]) -> Result<&'static Eal, DpdkError> {
        let mut guard = EAL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(eal) = *guard {
            if eal.args == args {
                return Ok(eal);
            }
            return Err(DpdkError::invalid(
                "rte_eal_init",
                args.join(" "),
                format!(
                    "EAL already initialised in this process with: {}",
                    eal.args.join(" ")
                ),
            ));
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        for a in std::iter::once("vipmux").chain(args.iter().map(String::as_str)) {
            let c = CString::new(a).map_err(|_| {
                DpdkError::invalid("rte_eal_init", a, "argument contains a NUL byte")
            })?;
            owned.push(c);
        }
        // The EAL may keep pointers into argv (option values), so argv lives for the process.
        let owned: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let argv: &'static mut [*mut c_char] = Box::leak(
            owned
                .iter()
                .map(|c| c.as_ptr().cast_mut())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = c_int::try_from(argv.len())
            .map_err(|_| DpdkError::invalid("rte_eal_init", "", "too many arguments"))?;
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed; the EAL may
        // permute the pointer array, which is ours alone. The mutex makes this the only init call.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno("rte_eal_init", args.join(" ")));
        }
        let hugepages = !args.iter().any(|a| a == "--no-huge");
        if let Some(prefix) = file_prefix(args) {
            if !hugepages
                && RUNTIME_DIR
                    .set(PathBuf::from("/var/run/dpdk").join(prefix))
                    .is_ok()
            {
                // SAFETY: registers a plain `extern "C" fn()` that only removes a directory.
                unsafe { atexit(remove_runtime_dir) };
            }
        }
        let eal: &'static Eal = Box::leak(Box::new(Eal {
            args: args.to_vec(),
            hugepages,
        }));
        *guard = Some(eal);
        Ok(eal)
    }

    /// Initialises the EAL from a profile plus extra arguments, choosing hugepages or the
    /// `--no-huge` fallback (logged at warn level).
    pub fn init_profile(
        profile: &Profile,
        extra: &[String],
    ) -> Result<(&'static Eal, EalPlan), Box<dyn std::error::Error>> {
        let plan = profile.eal_plan(extra, HugepageStatus::detect(), std::process::id())?;
        match &plan.memory {
            MemoryPlan::Hugepages => tracing::info!("DPDK memory: hugepages (--in-memory)"),
            MemoryPlan::NoHuge { file_prefix, reason } => tracing::warn!(
                "DPDK memory: no hugepages ({reason}); running --no-huge --file-prefix {file_prefix}, expect 40-60 % lower throughput"
            ),
            MemoryPlan::FromArgs => tracing::info!("DPDK memory: as given by the EAL arguments"),
        }
        tracing::info!("EAL arguments: {}", plan.args.join(" "));
        let eal = Eal::init(&plan.args)?;
        Ok((eal, plan))
    }

    /// The already-initialised EAL, if any.
    pub fn get() -> Option<&'static Eal> {
        *EAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The arguments the EAL was initialised with (without the program name).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// True unless the EAL runs with `--no-huge`.
    pub fn hugepages(&self) -> bool {
        self.hugepages
    }

    /// Number of EAL lcores (`-l`), registered non-EAL threads excluded.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: plain getter, valid after rte_eal_init (which `self` proves).
        unsafe { sys::rte_lcore_count() }
    }
}

/// The `--file-prefix` value in `args`, if any.
fn file_prefix(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if let Some(v) = a.strip_prefix("--file-prefix=") {
            Some(v)
        } else if a == "--file-prefix" {
            args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

impl crate::platform::tsc::TscFrequency for Eal {
    /// The time-stamp counter frequency DPDK calibrated at EAL start (`rte_get_tsc_hz`).
    fn tsc_hz(&self) -> u64 {
        // SAFETY: plain getter of a value set by rte_eal_init, which `Eal` proves has run.
        unsafe { sys::rte_get_tsc_hz() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_prefix_both_forms() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            file_prefix(&a(&["--no-huge", "--file-prefix", "x"])),
            Some("x")
        );
        assert_eq!(file_prefix(&a(&["--file-prefix=y"])), Some("y"));
        assert_eq!(file_prefix(&a(&["--in-memory"])), None);
    }
}
