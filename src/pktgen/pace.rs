//! Token-bucket pacing on the monotonic clock: one clock read per burst, no per-packet syscalls
//! (`Instant::now` is served by the vDSO on Linux).

use std::time::Instant;

/// A token bucket: `rate` packets per second, holding at most `depth` tokens.
#[derive(Debug, Clone)]
pub struct RatePacer {
    rate: f64,
    depth: f64,
    tokens: f64,
    last: Instant,
}

impl RatePacer {
    /// A bucket filling at `rate` packets/s (0 = unlimited), at most `depth` tokens, starting empty.
    pub fn new(rate: u64, depth: u32, now: Instant) -> RatePacer {
        RatePacer {
            rate: rate as f64,
            depth: f64::from(depth.max(1)),
            tokens: 0.0,
            last: now,
        }
    }

    /// True when the bucket does not limit.
    #[inline]
    pub fn unlimited(&self) -> bool {
        self.rate <= 0.0
    }

    /// Packets that may be sent now, at most `want`.
    #[inline]
    pub fn available(&mut self, now: Instant, want: usize) -> usize {
        if self.unlimited() {
            return want;
        }
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.depth);
        (self.tokens as usize).min(want)
    }

    /// Takes `n` tokens (the packets actually sent).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        if !self.unlimited() {
            self.tokens = (self.tokens - n as f64).max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fills_at_rate_up_to_depth() {
        let t0 = Instant::now();
        let mut b = RatePacer::new(1_000_000, 64, t0);
        assert_eq!(b.available(t0, 32), 0);
        assert_eq!(b.available(t0 + Duration::from_micros(10), 32), 10);
        b.consume(10);
        assert_eq!(b.available(t0 + Duration::from_micros(20), 32), 10);
        // A long pause is capped at the depth.
        assert_eq!(b.available(t0 + Duration::from_secs(1), 1000), 64);
        let mut u = RatePacer::new(0, 32, t0);
        assert!(u.unlimited());
        assert_eq!(u.available(t0, 32), 32);
    }
}
