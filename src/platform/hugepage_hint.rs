//! Transparent-huge-page hint for large per-worker tables (`madvise(MADV_HUGEPAGE)`).
//!
//! A flow table of 100 MB–1 GB read at random misses the TLB on almost every packet with 4 KiB
//! pages; backed by 2 MiB pages, the same table needs 512 times fewer TLB entries. DPDK's own
//! memory comes from hugepages; the pure data path's tables are ordinary heap memory, so they ask
//! the kernel for transparent huge pages before their memory is first touched. Kernels with THP
//! set to `madvise` (the common default) honour the hint, `always` does not need it, `never`
//! ignores it; the hint never changes contents or behaviour, only page size, and errors are
//! ignored. Lives in the platform room because the system call is an `unsafe` FFI call.

#[cfg(target_os = "linux")]
mod sys {
    use core::ffi::{c_int, c_void};
    /// `MADV_HUGEPAGE` from `<sys/mman.h>` (Linux).
    pub const MADV_HUGEPAGE: c_int = 14;
    extern "C" {
        pub fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
}

/// Page size the hint is aligned to.
const PAGE: usize = 4096;

/// Asks for transparent huge pages behind the whole allocation of `v` (its capacity, touched or
/// not). Call it right after `Vec::with_capacity` and before filling the vector: memory already
/// written keeps its small pages until the kernel collapses them in the background. Returns true
/// when the kernel accepted the hint.
pub fn advise_huge_pages<T>(v: &mut Vec<T>) -> bool {
    let bytes = v.capacity().saturating_mul(core::mem::size_of::<T>());
    let start = v.as_mut_ptr() as usize;
    // madvise needs a page-aligned start; the partial first page keeps small pages.
    let aligned = (start + PAGE - 1) & !(PAGE - 1);
    let end = start.saturating_add(bytes);
    if bytes < 2 * (1 << 20) || aligned >= end {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let len = (end - aligned) & !(PAGE - 1);
        // SAFETY: [aligned, aligned + len) lies inside the allocation owned by `v` (start rounded
        // up, length rounded down to whole pages); MADV_HUGEPAGE only changes how the kernel backs
        // those pages, never their contents, so no Rust-visible memory changes.
        let r = unsafe { sys::madvise(aligned as *mut _, len, sys::MADV_HUGEPAGE) };
        r == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_keeps_contents_and_ignores_small_vectors() {
        let mut small: Vec<u64> = Vec::with_capacity(16);
        assert!(!advise_huge_pages(&mut small));
        let mut v: Vec<u64> = Vec::with_capacity(1 << 20); // 8 MiB
        let _accepted = advise_huge_pages(&mut v); // depends on the kernel's THP setting
        v.resize(1 << 20, 7);
        assert!(v.iter().all(|&x| x == 7));
    }
}
