//! The CPU's time-stamp counter as the poll loops' clock (what DPDK's `rte_rdtsc` reads).
//!
//! A worker reads the time once per loop iteration, empty polls included: through the vDSO that is
//! a `clock_gettime` call, while `rdtsc` is one instruction. On the CPUs DPDK supports the counter
//! is invariant (`constant_tsc`, `nonstop_tsc`), so it is a monotonic clock across cores. Off
//! x86-64 the clock falls back to [`std::time::Instant`].
//!
//! The counter's frequency is not measured here: whoever already knows it provides it through
//! [`TscFrequency`]. The runtime passes the DPDK EAL, which calibrated the counter at start
//! (`rte_get_tsc_hz`), so the loops keep exactly that calibration; tests pass a plain `u64`.

use std::time::Instant;

/// Something that knows the time-stamp counter's frequency (ticks per second, 0 if unknown).
pub trait TscFrequency {
    /// Ticks per second of the time-stamp counter, or 0 when unknown.
    fn tsc_hz(&self) -> u64;
}

impl TscFrequency for u64 {
    fn tsc_hz(&self) -> u64 {
        *self
    }
}

/// A monotonic nanosecond clock started at creation, read with the time-stamp counter.
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    start_tsc: u64,
    /// Nanoseconds per tick as a 32.32 fixed-point factor (0 = use `start`).
    ns_per_tick_q32: u64,
    start: Instant,
}

/// The raw time-stamp counter (0 off x86-64): ticks for cycle counts of code sections (the
/// benches' busy cycles), not a clock by itself.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` reads a CPU register; it has no memory effects and exists on every
        // x86-64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

impl TscClock {
    /// A clock starting now, with the counter frequency `source` knows (the EAL's calibration in
    /// the runtime).
    pub fn new(source: &impl TscFrequency) -> TscClock {
        Self::with_hz(source.tsc_hz())
    }

    /// A clock for a counter of `hz` ticks per second (0, or no counter: `Instant` instead).
    pub fn with_hz(hz: u64) -> TscClock {
        let usable = cfg!(target_arch = "x86_64") && hz > 0;
        TscClock {
            start_tsc: rdtsc(),
            ns_per_tick_q32: if usable {
                ((1_000_000_000u128 << 32) / u128::from(hz)) as u64
            } else {
                0
            },
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the clock started.
    #[inline(always)]
    pub fn now_ns(&self) -> u64 {
        if self.ns_per_tick_q32 == 0 {
            return self.start.elapsed().as_nanos() as u64;
        }
        let ticks = rdtsc().wrapping_sub(self.start_tsc);
        ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_clock_is_monotonic_and_follows_the_wall_clock() {
        // Calibrate against Instant over a bounded busy wait (no sleeping as synchronisation: the
        // check is on the ratio of two clocks read around the same interval).
        let t0 = Instant::now();
        let c0 = rdtsc();
        while t0.elapsed().as_millis() < 50 {
            std::hint::spin_loop();
        }
        let hz = (u128::from(rdtsc() - c0) * 1_000_000_000 / t0.elapsed().as_nanos()) as u64;
        let clock = TscClock::with_hz(hz);
        let w0 = Instant::now();
        let mut last = clock.now_ns();
        for _ in 0..10_000 {
            let n = clock.now_ns();
            assert!(n >= last, "went back: {last} -> {n}");
            last = n;
        }
        while w0.elapsed().as_millis() < 20 {
            std::hint::spin_loop();
        }
        let tsc_ns = clock.now_ns() as f64;
        let wall_ns = w0.elapsed().as_nanos() as f64;
        // Same interval within 50 %: catches a wrong scale (the fixed-point factor), while a
        // preemption between the paired reads on a loaded machine cannot make it fail.
        assert!(
            (tsc_ns / wall_ns - 1.0).abs() < 0.5,
            "tsc {tsc_ns} vs wall {wall_ns}"
        );
        // Without a frequency the clock still works, on Instant.
        let fallback = TscClock::with_hz(0);
        let a = fallback.now_ns();
        assert!(fallback.now_ns() >= a);
    }
}
