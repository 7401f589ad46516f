//! Idle-expiry pacing: the flow table is swept by time, not by loop iterations.
//!
//! A sweep step reads buckets that are cold by construction, so a step on every loop iteration
//! would cost a fixed number of cache misses per burst however little there is to expire. Paced,
//! the whole table is visited once per [`EXPIRY_SWEEP`] in steps of [`EXPIRE_MIN_STEP`] to
//! [`EXPIRE_MAX_STEP`] buckets, so a 1 M-flow table costs ~130 K bucket reads per second whatever
//! the packet rate.

use std::time::Duration;

/// Time in which idle expiry visits every bucket of the flow table once (flows therefore expire
/// at most this long after their timeout, on top of the whole-second flow clock).
pub const EXPIRY_SWEEP: Duration = Duration::from_millis(500);
/// Fewest buckets one expiry step visits: smaller amounts wait and are batched.
pub const EXPIRE_MIN_STEP: usize = 8;
/// Most buckets one expiry step visits; a larger backlog (a long sleep, a huge table on an idle
/// worker) is forgiven rather than paid in one burst, so the sweep then takes longer.
pub const EXPIRE_MAX_STEP: usize = 64;

/// Spreads the idle-expiry sweep over time: a full pass over `buckets` per `sweep`.
#[derive(Debug, Clone)]
pub struct ExpiryPacer {
    buckets: u128,
    sweep_ns: u128,
    swept: u128,
    /// The first instant (ns) at which [`EXPIRE_MIN_STEP`] more buckets are due: before it,
    /// [`ExpiryPacer::due`] is one compare (no 128-bit division per loop iteration).
    next_ns: u128,
}

impl ExpiryPacer {
    /// A pacer for a table of `buckets` buckets swept once per `sweep` (at least 1 ns).
    pub fn new(buckets: usize, sweep: Duration) -> Self {
        ExpiryPacer {
            buckets: buckets as u128,
            sweep_ns: sweep.as_nanos().max(1),
            swept: 0,
            next_ns: 0,
        }
    }

    /// Buckets to visit now, `elapsed` after the worker started: 0 while fewer than
    /// [`EXPIRE_MIN_STEP`] are due, at most [`EXPIRE_MAX_STEP`] (the rest of a larger backlog is
    /// dropped).
    #[inline]
    pub fn due(&mut self, elapsed: Duration) -> usize {
        let ns = elapsed.as_nanos();
        if ns < self.next_ns {
            return 0;
        }
        self.step(ns)
    }

    /// [`ExpiryPacer::due`] once the threshold passed: the step, and the next threshold.
    #[inline(never)]
    fn step(&mut self, ns: u128) -> usize {
        let target = ns * self.buckets / self.sweep_ns;
        let due = target.saturating_sub(self.swept);
        let step = if due < EXPIRE_MIN_STEP as u128 {
            0
        } else {
            // Everything due is visited now, or forgiven beyond one step.
            self.swept = target;
            due.min(EXPIRE_MAX_STEP as u128) as usize
        };
        // target >= swept + MIN  <=>  ns * buckets >= (swept + MIN) * sweep_ns.
        let k = (self.swept + EXPIRE_MIN_STEP as u128) * self.sweep_ns;
        self.next_ns = match self.buckets {
            0 => u128::MAX,
            b => k.div_ceil(b),
        };
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_sweeps_the_table_once_per_period_in_bounded_steps() {
        let buckets = 65_536;
        let mut p = ExpiryPacer::new(buckets, EXPIRY_SWEEP);
        // Loops every 10 µs for one sweep period: the whole table, nothing more, in small steps.
        let mut total = 0;
        let mut t = Duration::ZERO;
        while t < EXPIRY_SWEEP {
            t += Duration::from_micros(10);
            let s = p.due(t);
            assert!(
                s == 0 || (EXPIRE_MIN_STEP..=EXPIRE_MAX_STEP).contains(&s),
                "{s}"
            );
            total += s;
        }
        assert!(
            total <= buckets && total + EXPIRE_MIN_STEP >= buckets,
            "{total}"
        );
        // Nothing is due twice at the same instant.
        assert_eq!(p.due(t), 0);
    }

    #[test]
    fn pacer_threshold_gives_the_same_steps_as_dividing_on_every_call() {
        for (buckets, sweep_ms) in [(65_536usize, 500u64), (16, 500), (1 << 21, 500), (1000, 7)] {
            let sweep = Duration::from_millis(sweep_ms);
            let mut p = ExpiryPacer::new(buckets, sweep);
            let (mut swept, mut t) = (0u128, 0u64);
            // Irregular loop times, some long gaps (backlogs), over two sweep periods.
            for i in 0..200_000u64 {
                t += 1 + (i * 7919) % 9_973 + if i % 5_000 == 0 { 40_000_000 } else { 0 };
                let target = u128::from(t) * buckets as u128 / sweep.as_nanos();
                let due = target - swept.min(target);
                let want = if due < EXPIRE_MIN_STEP as u128 {
                    0
                } else {
                    swept = target;
                    due.min(EXPIRE_MAX_STEP as u128) as usize
                };
                assert_eq!(p.due(Duration::from_nanos(t)), want, "{buckets} at {t} ns");
            }
        }
    }

    #[test]
    fn pacer_forgives_a_backlog_beyond_one_step() {
        let mut p = ExpiryPacer::new(1 << 20, Duration::from_millis(500));
        assert_eq!(p.due(Duration::from_secs(10)), EXPIRE_MAX_STEP);
        // Right after: the rest of the 10 s backlog is not owed.
        assert_eq!(p.due(Duration::from_secs(10)), 0);
        // A tiny table is still swept: 16 buckets per 500 ms, due in steps of at least 8.
        let mut q = ExpiryPacer::new(16, Duration::from_millis(500));
        assert_eq!(q.due(Duration::from_millis(100)), 0);
        assert_eq!(q.due(Duration::from_millis(250)), 8);
        assert_eq!(q.due(Duration::from_millis(500)), 8);
    }
}
