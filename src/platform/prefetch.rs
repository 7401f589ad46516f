//! Software prefetch (the instruction DPDK's `rte_prefetch0` emits): a safe wrapper over the CPU's
//! prefetch hint.
//!
//! A prefetch asks the core to start loading a cache line into all cache levels and returns at
//! once; the load that needs the line later then finds it (or finds it on its way). Unlike a plain
//! read, it never stalls the pipeline waiting for the line, so the misses of a whole burst overlap.
//! On x86-64 it is `prefetcht0` (`_mm_prefetch` with `_MM_HINT_T0`, part of SSE, which every
//! x86-64 CPU has); on other architectures these functions do nothing. For a line the caller is
//! about to write, [`WriteHint`] is `prefetchw` where the CPU has it: the line arrives owned, so
//! the stores need no second request to take it back from another core that read it since (a
//! software peer's, such as a memif generator's).
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

/// The write-intent prefetch (`prefetchw`), as a token that exists only on a CPU that has the
/// instruction: the line arrives owned, so the stores that follow need no second request to take
/// it from another core's cache. [`WriteHint::get`] asks the CPU once; without the instruction
/// the caller keeps [`prefetch_ptr`].
#[derive(Debug, Clone, Copy)]
pub struct WriteHint(());

impl WriteHint {
    /// The hint if this CPU has `prefetchw` (CPUID leaf 0x8000_0001, ECX bit 8: Intel's PRFCHW,
    /// AMD's 3DNowPrefetch), asked once per process.
    #[inline]
    pub fn get() -> Option<WriteHint> {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        HAS.get_or_init(cpu_has_prefetchw).then_some(WriteHint(()))
    }

    /// Hints the CPU to bring the line holding the address `p` into its cache, owned (never
    /// blocks, never faults).
    #[inline(always)]
    pub fn prefetch(self, p: *const u8) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a prefetch is only a hint: it reads nothing architecturally visible and
            // never faults, whatever the address; `self` exists only where `get` found the
            // instruction.
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
}

/// Whether the CPU has `prefetchw` (never on other architectures: no token is made there).
fn cpu_has_prefetchw() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        let top = __cpuid(0x8000_0000).eax;
        top >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
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
        if let Some(w) = WriteHint::get() {
            w.prefetch(std::ptr::null()); // nor does the write hint
            w.prefetch(v.as_ptr().cast::<u8>().wrapping_sub(4096));
        }
        let empty: [u8; 0] = [];
        prefetch_at(&empty, 5);
        assert_eq!(v, [1, 2, 3]);
    }

    /// The write hint is found exactly where the kernel sees the instruction's CPUID bit
    /// (`3dnowprefetch` in /proc/cpuinfo, the name Linux gives ECX bit 8 of leaf 0x8000_0001).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn write_hint_follows_the_cpu_flag() {
        let info = std::fs::read_to_string("/proc/cpuinfo").expect("read /proc/cpuinfo");
        let flags = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .expect("a flags line");
        let has = flags.split_whitespace().any(|f| f == "3dnowprefetch");
        assert_eq!(WriteHint::get().is_some(), has, "{flags}");
        assert_eq!(WriteHint::get().is_some(), has, "asked again");
    }
}
