//! `Mempool`: a pktmbuf pool. Pools live until the process exits (see [`Mempool`]).

use std::ffi::CString;
use std::ptr::NonNull;

use super::eal::Eal;
use super::error::DpdkError;
use super::mbuf::{Burst, Mbuf};
use super::profile::MempoolProfile;
use super::sys;

/// A handle to a pktmbuf pool; cheap to copy.
///
/// Pools are never freed: an `Mbuf` does not borrow its pool, so freeing one while any mbuf may
/// still be in a queue, a burst or another thread would be unsound. A process creates its few
/// pools at start; the memory goes back to the system at exit.
#[derive(Debug, Clone, Copy)]
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: the pool is never freed, so the pointer stays valid for the whole process, and every
// operation exposed (alloc, counts) is thread-safe in DPDK (multi-producer/consumer ring ops,
// per-lcore caches used only by the owning lcore).
unsafe impl Send for Mempool {}
// SAFETY: see `Send`; `&Mempool` only allows those same thread-safe operations.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pktmbuf pool of `mbufs` buffers with `data_room` bytes each (headroom included)
    /// and a per-lcore `cache`, on `socket` (`None`: any socket).
    pub fn create(
        _eal: &Eal,
        name: &str,
        mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: Option<i32>,
    ) -> Result<Mempool, DpdkError> {
        let detail = || format!("{name}: {mbufs} mbufs, cache {cache}, data room {data_room}");
        let cname = CString::new(name)
            .map_err(|_| DpdkError::invalid("rte_pktmbuf_pool_create", detail(), "NUL in name"))?;
        // SAFETY: reading an immutable exported constant.
        let any = unsafe { sys::VIPMUX_SOCKET_ID_ANY };
        // SAFETY: the EAL is initialised (`_eal`), the name is a valid C string copied by DPDK.
        let p = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                mbufs,
                cache,
                0,
                data_room,
                socket.unwrap_or(any),
            )
        };
        NonNull::new(p)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| DpdkError::from_rte_errno("rte_pktmbuf_pool_create", detail()))
    }

    /// Creates the pool a profile describes.
    pub fn from_profile(
        eal: &Eal,
        name: &str,
        profile: &MempoolProfile,
    ) -> Result<Mempool, DpdkError> {
        Self::create(
            eal,
            name,
            profile.mbufs,
            profile.cache,
            profile.data_room,
            None,
        )
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Allocates one empty mbuf (default headroom), or `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for the process; alloc is thread-safe.
        let m = unsafe { sys::vipmux_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-null result is a fresh mbuf that nobody else owns.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Fills `burst` up with `n` empty mbufs (at most its free room), all or nothing; returns how
    /// many were added (0 when the pool cannot supply them all).
    pub fn alloc_bulk(&self, burst: &mut Burst, n: usize) -> usize {
        let (slots, room) = burst.free_slots();
        let n = n.min(room);
        if n == 0 {
            return 0;
        }
        // SAFETY: `slots` has room for n pointers; the pool is valid; on success DPDK wrote n
        // fresh mbufs that nobody else owns, on failure it wrote nothing.
        unsafe {
            if sys::vipmux_pktmbuf_alloc_bulk(self.ptr.as_ptr(), slots, n as u32) != 0 {
                return 0;
            }
            burst.commit(n);
        }
        n
    }

    /// Mbufs currently free in the pool (caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid; the count is a racy but memory-safe read.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs currently allocated from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as in `available`.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }
}
