//! A token bucket on a virtual clock, for every ICMP message the MUX originates and for
//! rate-limited log lines.
//!
//! Time is passed in by the caller as nanoseconds of a monotonic clock ([`Nanos`]), so tests run
//! on a virtual clock and nothing here reads the system time. Credit is kept in nano-tokens
//! (tokens x 10^9) in a `u128`, so any rate and burst are exact and nothing overflows.

/// Nanoseconds of a monotonic clock, supplied by the caller.
pub type Nanos = u64;

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

const NANO_TOKEN: u128 = NANOS_PER_SEC as u128;

/// A rate: `per_second` tokens refill each second, at most `burst` can be saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Tokens added per second (0: the bucket never refills).
    pub per_second: u64,
    /// Bucket capacity in tokens (the largest burst allowed after a quiet period).
    pub burst: u64,
}

impl RateSpec {
    /// A rate of `per_second` with a burst of `burst`.
    pub const fn new(per_second: u64, burst: u64) -> Self {
        RateSpec { per_second, burst }
    }
}

/// A token bucket: starts full, refills continuously at the configured rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    spec: RateSpec,
    /// Current credit in nano-tokens.
    credit: u128,
    /// Time of the last refill.
    last: Nanos,
}

impl TokenBucket {
    /// A full bucket for `spec`, its clock starting at `now`.
    pub fn new(spec: RateSpec, now: Nanos) -> Self {
        TokenBucket {
            spec,
            credit: spec.burst as u128 * NANO_TOKEN,
            last: now,
        }
    }

    /// The configured rate.
    pub fn spec(&self) -> RateSpec {
        self.spec
    }

    /// Changes the rate (on reload), keeping the current credit clamped to the new burst.
    pub fn set_spec(&mut self, spec: RateSpec, now: Nanos) {
        self.refill(now);
        self.spec = spec;
        self.credit = self.credit.min(self.capacity());
    }

    fn capacity(&self) -> u128 {
        self.spec.burst as u128 * NANO_TOKEN
    }

    /// Adds the credit earned since the last call; a clock that goes backwards adds nothing.
    fn refill(&mut self, now: Nanos) {
        if now > self.last {
            let earned = (now - self.last) as u128 * self.spec.per_second as u128;
            self.credit = self.credit.saturating_add(earned).min(self.capacity());
            self.last = now;
        }
    }

    /// Takes one token if available at `now`; false means "over the rate, do not send".
    pub fn try_take(&mut self, now: Nanos) -> bool {
        self.try_take_n(1, now)
    }

    /// Takes `n` tokens at once if all are available; otherwise takes none.
    pub fn try_take_n(&mut self, n: u64, now: Nanos) -> bool {
        self.refill(now);
        let cost = n as u128 * NANO_TOKEN;
        if self.credit >= cost {
            self.credit -= cost;
            true
        } else {
            false
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Nanos) -> u64 {
        self.refill(now);
        (self.credit / NANO_TOKEN).min(u64::MAX as u128) as u64
    }
}

/// A token bucket for log lines that also counts the lines it suppressed, so the next line that
/// is let through can say how many similar ones were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLimiter {
    bucket: TokenBucket,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter letting through `spec` lines, its clock starting at `now`.
    pub fn new(spec: RateSpec, now: Nanos) -> Self {
        LogLimiter {
            bucket: TokenBucket::new(spec, now),
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being the lines suppressed since the last
    /// one let through; `None` (and one more suppressed) otherwise.
    pub fn check(&mut self, now: Nanos) -> Option<u64> {
        if self.bucket.try_take(now) {
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Lines suppressed since the last one let through.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Changes the rate (on reload).
    pub fn set_spec(&mut self, spec: RateSpec, now: Nanos) {
        self.bucket.set_spec(spec, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn starts_full_then_caps_at_rate() {
        let mut b = TokenBucket::new(RateSpec::new(10, 5), 0);
        // The burst goes through at once.
        assert_eq!((0..20).filter(|_| b.try_take(0)).count(), 5);
        // Then 10 per second: over 3 virtual seconds, polled every ms, exactly 30 more.
        let mut sent = 0;
        for t in 1..=3000 {
            if b.try_take(t * MS) {
                sent += 1;
            }
        }
        assert_eq!(sent, 30);
    }

    #[test]
    fn refill_is_capped_by_burst() {
        let mut b = TokenBucket::new(RateSpec::new(1000, 3), 0);
        assert!(b.try_take_n(3, 0));
        assert!(!b.try_take(0));
        assert_eq!(b.available(3600 * NANOS_PER_SEC), 3);
    }

    #[test]
    fn fractional_rates_accumulate() {
        // 1 token every 2 s: nothing at 1.999 s, one at 2 s.
        let mut b = TokenBucket::new(RateSpec::new(1, 1), 0);
        assert!(b.try_take(0));
        let mut b2 = b.clone();
        assert!(!b.try_take(NANOS_PER_SEC - 1));
        assert!(b2.try_take(NANOS_PER_SEC));
    }

    #[test]
    fn clock_going_backwards_adds_nothing() {
        let mut b = TokenBucket::new(RateSpec::new(1, 1), 10 * NANOS_PER_SEC);
        assert!(b.try_take(10 * NANOS_PER_SEC));
        assert!(!b.try_take(0));
        assert!(!b.try_take(10 * NANOS_PER_SEC));
        assert!(b.try_take(11 * NANOS_PER_SEC));
    }

    #[test]
    fn zero_rate_allows_only_the_burst() {
        let mut b = TokenBucket::new(RateSpec::new(0, 2), 0);
        assert!(b.try_take(0) && b.try_take(5) && !b.try_take(u64::MAX));
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let mut b = TokenBucket::new(RateSpec::new(u64::MAX, u64::MAX), 0);
        assert!(b.try_take_n(u64::MAX, u64::MAX));
        assert_eq!(b.available(u64::MAX), 0);
    }

    #[test]
    fn set_spec_clamps_credit() {
        let mut b = TokenBucket::new(RateSpec::new(1, 100), 0);
        b.set_spec(RateSpec::new(1, 2), 0);
        assert_eq!(b.available(0), 2);
    }

    #[test]
    fn log_limiter_counts_suppressed() {
        let mut l = LogLimiter::new(RateSpec::new(1, 1), 0);
        assert_eq!(l.check(0), Some(0));
        assert_eq!(l.check(1), None);
        assert_eq!(l.check(2), None);
        assert_eq!(l.suppressed(), 2);
        assert_eq!(l.check(NANOS_PER_SEC + 2), Some(2));
        assert_eq!(l.suppressed(), 0);
    }
}
