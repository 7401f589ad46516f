//! Software prefetch (the instruction DPDK's `rte_prefetch0` emits): a safe wrapper over the CPU's
//! prefetch hint.
//!
//! A prefetch asks the core to start loading a cache line into all cache levels and returns at
//! once; the load that needs the line later then finds it (or finds it on its way). Unlike a plain
//! read, it never stalls the pipeline waiting for the line, so the misses of a whole burst overlap.
//! On x86-64 it is `prefetcht0` (`_mm_prefetch` with `_MM_HINT_T0`, part of SSE, which every
//! x86-64 CPU has); on other architectures these functions do nothing. For a line the caller is
//! about to write, [`prefetch_write_ptr`] is `prefetchw`: the line arrives owned, so the stores
//! need no second request to take it back from another core that read it since (a software
//! peer's, such as a memif generator's).
//!
//! It lives in the platform room because `_mm_prefetch` and inline assembly are `unsafe`; it is
//! usable from any thread.

/// Hints the CPU to bring the cache line holding `*r` into all cache levels (never blocks, never faults).
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = (r as *const T).cast::<i8>();
        // SAFETY: a prefetch is only a hint: it reads nothing architecturally visible and never
        // faults, whatever the address; here the pointer even comes from a live reference. SSE is
        // part of the x86-64 baseline, so the instruction always exists.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = r;
    }
}

/// Like [`prefetch`], for the line `offset` bytes into `*r` (clamped to the object), e.g. the
/// second cache line of a larger struct.
#[inline(always)]
pub fn prefetch_at<T>(r: &T, offset: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let off = offset.min(core::mem::size_of::<T>().saturating_sub(1));
        let p = (r as *const T).cast::<i8>().wrapping_add(off);
        // SAFETY: as in `prefetch`; the address stays within the object `r` refers to, and a
        // prefetch would not fault even if it did not.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (r, offset);
    }
}

/// Like [`prefetch`], for the line holding the address `p` (a raw pointer: no reference, so no
/// length or bounds to check first).
#[inline(always)]
pub fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint: it reads nothing architecturally visible and never
        // faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}

/// Like [`prefetch_ptr`], with the intent to write (`prefetchw`): the line arrives owned, so the
/// stores that follow need no second request to take it from another core's cache.
#[inline(always)]
pub fn prefetch_write_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a prefetch is only a hint: it reads nothing architecturally visible and never
        // faults, whatever the address. `prefetchw` (0F 0D /1) is executed as a no-op by x86-64
        // CPUs that predate it.
        unsafe {
            core::arch::asm!(
                "prefetchw [{}]",
                in(reg) p,
                options(nostack, preserves_flags, readonly)
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}

/// Prefetches element `i` of `s` if it exists (out of range: nothing).
#[inline(always)]
pub fn prefetch_index<T>(s: &[T], i: usize) {
    if let Some(r) = s.get(i) {
        prefetch(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_is_a_harmless_hint() {
        let v = [1u64, 2, 3];
        prefetch(&v);
        prefetch_at(&v, 16);
        prefetch_at(&v, 1 << 20); // clamped to the object
        prefetch_index(&v, 2);
        prefetch_index(&v, 99); // out of range: nothing
        prefetch_ptr(std::ptr::null()); // any address: never faults
        prefetch_write_ptr(std::ptr::null());
        prefetch_write_ptr(v.as_ptr().cast::<u8>().wrapping_sub(4096)); // nor does the write hint
        let empty: [u8; 0] = [];
        prefetch_at(&empty, 5);
        assert_eq!(v, [1, 2, 3]);
    }
}
