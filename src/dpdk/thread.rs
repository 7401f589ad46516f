//! Lcores and the registration of pinned `std::thread` workers as DPDK threads.

use std::fmt;
use std::marker::PhantomData;

use super::eal::Eal;
use super::error::DpdkError;
use super::sys;

/// A DPDK lcore id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lcore(pub u32);

impl fmt::Display for Lcore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lcore {}", self.0)
    }
}

impl Lcore {
    /// The calling thread's lcore, or `None` for a thread unknown to DPDK.
    pub fn current() -> Option<Lcore> {
        // SAFETY: reads the calling thread's per-lcore TLS variable.
        let id = unsafe { sys::vipmux_lcore_id() };
        // SAFETY: reading an immutable exported constant.
        let any = unsafe { sys::VIPMUX_LCORE_ID_ANY };
        (id != any).then_some(Lcore(id))
    }
}

/// The calling thread registered as a DPDK (non-EAL) thread; unregisters on drop.
///
/// Registration gives the thread an lcore id and thus a per-lcore mempool cache, so mbuf
/// alloc/free stay off the pool's shared ring. The guard is neither `Send` nor `Sync`: it must be dropped on its own thread.
#[derive(Debug)]
pub struct DpdkThread {
    lcore: Lcore,
    _not_send: PhantomData<*const ()>,
}

impl DpdkThread {
    /// Registers the calling thread with DPDK (it keeps its current CPU affinity).
    pub fn register(_eal: &Eal) -> Result<DpdkThread, DpdkError> {
        // SAFETY: the EAL is initialised (`_eal` proves it); registration affects only this thread.
        let ret = unsafe { sys::rte_thread_register() };
        if ret != 0 {
            return Err(DpdkError::from_rte_errno(
                "rte_thread_register",
                "calling thread",
            ));
        }
        let lcore = Lcore::current().ok_or_else(|| {
            DpdkError::invalid(
                "rte_thread_register",
                "calling thread",
                "no lcore id assigned",
            )
        })?;
        Ok(DpdkThread {
            lcore,
            _not_send: PhantomData,
        })
    }

    /// Pins the calling thread to `core` (core_affinity) and registers it with DPDK.
    pub fn pin_and_register(eal: &Eal, core: usize) -> Result<DpdkThread, DpdkError> {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            return Err(DpdkError::invalid(
                "core_affinity::set_for_current",
                format!("core {core}"),
                "cannot pin thread",
            ));
        }
        Self::register(eal)
    }

    /// The lcore id DPDK gave this thread.
    pub fn lcore(&self) -> Lcore {
        self.lcore
    }
}

impl Drop for DpdkThread {
    fn drop(&mut self) {
        // SAFETY: this thread registered itself in `register` (the guard cannot move threads).
        unsafe { sys::rte_thread_unregister() };
    }
}
