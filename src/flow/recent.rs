//! The recently-expired record (docs/design.md §3.7): which flows this worker expired lately.
//!
//! A non-SYN TCP packet with no flow entry is dropped (`idle_expired`) when its key is found here,
//! instead of being re-hashed into a new flow. The record is a fixed array of 64-byte buckets, each
//! holding 8 × (u32 signature, u32 forget-time), so a record costs 8 bytes; a key's bucket is
//! chosen by the low bits of its table hash and its signature is the high 32 bits, so a false
//! positive needs a 32-bit signature collision inside one bucket: at most 8 / 2^32 (about 2e-9)
//! per query when every slot is live; a test checks the rate stays there.
//!
//! Entries are forgotten `window` seconds after they were noted (never permanent). The window is
//! the longest idle timeout of the configuration, so that a late packet of any rule's flow is
//! recognised; it can change at any time ([`RecentlyExpired::set_window`], e.g. on reload) and
//! applies to keys noted from then on, while a key already noted keeps the forget-time it was
//! given. The memory does not depend on the window: it is fixed at construction. When a bucket is
//! full of live records, the one closest to being forgotten is overwritten: the record then forgets
//! a key early (a false negative), which only means that key's late packet is re-hashed — the
//! default behaviour for unknown flows. Retention follows the Poisson tail of 8-slot buckets: with
//! as many live records as capacity about 86 % are kept, at half that load about 99 % (a test
//! checks the retention at full load); so size it at twice the expirations expected within one
//! window.

use crate::platform::prefetch::prefetch;
use crate::platform::simd::eq_mask8;

/// Longest window accepted, seconds (one day, the longest idle timeout a configuration may set;
/// longer windows are clamped).
pub const MAX_WINDOW_SECS: u32 = 86_400;
/// Records per bucket.
pub const RECENT_WAYS: usize = 8;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct RBucket {
    sig: [u32; RECENT_WAYS],
    until: [u32; RECENT_WAYS],
}

/// Fixed-size, time-bounded set of recently expired flow keys (by table hash).
pub struct RecentlyExpired {
    buckets: Box<[RBucket]>,
    mask: usize,
    window: u32,
    /// The latest forget-time of any key noted: once it has passed, no record is live and the
    /// queries answer without reading a bucket (a SYN flood with nothing expiring never reads one).
    live_until: u32,
}

#[inline(always)]
fn sig_of(hash: u64) -> u32 {
    let s = (hash >> 32) as u32;
    if s == 0 {
        1
    } else {
        s
    }
}

/// True while `until` lies in the future of `now` (wrapping time).
#[inline(always)]
fn live(until: u32, now: u32) -> bool {
    (until.wrapping_sub(now) as i32) > 0
}

impl RecentlyExpired {
    /// A record of at least `capacity` keys (rounded up to a power of two, at least 8), remembering
    /// each for `window_secs` (clamped to [`MAX_WINDOW_SECS`]; a good value is the longest idle
    /// timeout of the configuration). All memory is allocated here.
    pub fn new(capacity: usize, window_secs: u32) -> Self {
        let slots = capacity.clamp(RECENT_WAYS, 1 << 31).next_power_of_two();
        let nb = slots / RECENT_WAYS;
        RecentlyExpired {
            buckets: vec![
                RBucket {
                    sig: [0; RECENT_WAYS],
                    until: [0; RECENT_WAYS],
                };
                nb
            ]
            .into_boxed_slice(),
            mask: nb - 1,
            window: window_secs.min(MAX_WINDOW_SECS),
            live_until: 0,
        }
    }

    /// Number of records it can hold.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * RECENT_WAYS
    }

    /// How long a record is kept, seconds.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Keeps keys noted from now on for `window_secs` (clamped to [`MAX_WINDOW_SECS`]; 0 stops
    /// noting). Keys already noted keep their forget-time. No allocation: the capacity stays.
    #[inline]
    pub fn set_window(&mut self, window_secs: u32) {
        self.window = window_secs.min(MAX_WINDOW_SECS);
    }

    /// Bytes of memory held.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<RBucket>()
    }

    /// Records that the flow with table hash `key_hash` expired at `now`.
    #[inline]
    pub fn note_expired(&mut self, key_hash: u64, now: u32) {
        if self.window == 0 {
            return;
        }
        let s = sig_of(key_hash);
        let until = now.wrapping_add(self.window);
        if !live(self.live_until, until) {
            self.live_until = until;
        }
        let b = &mut self.buckets[key_hash as usize & self.mask];
        let mut victim = 0;
        let mut victim_left = u32::MAX;
        for w in 0..RECENT_WAYS {
            if b.sig[w] == s {
                victim = w;
                break;
            }
            let left = if b.sig[w] == 0 || !live(b.until[w], now) {
                0
            } else {
                b.until[w].wrapping_sub(now)
            };
            if left < victim_left {
                victim = w;
                victim_left = left;
            }
        }
        b.sig[victim] = s;
        b.until[victim] = until;
    }

    /// True when `key_hash` was noted less than `window` seconds before `now`.
    #[inline]
    pub fn recently_expired(&self, key_hash: u64, now: u32) -> bool {
        if self.is_empty_at(now) {
            return false;
        }
        let s = sig_of(key_hash);
        let b = &self.buckets[key_hash as usize & self.mask];
        let mut m = eq_mask8(&b.sig, s);
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            if b.until.get(w).is_some_and(|&u| live(u, now)) {
                return true;
            }
            m &= m - 1;
        }
        false
    }

    /// Starts loading the bucket of `key_hash` into the cache (a hint: never blocks). The burst
    /// loop calls it for every packet the flow table missed, before it decides any of them: a
    /// SYN then forgets its key, another packet checks it, in a bucket already on its way.
    #[inline(always)]
    pub fn prefetch(&self, key_hash: u64) {
        if let Some(b) = self.buckets.get(key_hash as usize & self.mask) {
            prefetch(b);
        }
    }

    /// True when no record is live at `now` (every key noted was noted more than its window
    /// before): [`recently_expired`](Self::recently_expired) is false for every key.
    #[inline(always)]
    pub fn is_empty_at(&self, now: u32) -> bool {
        !live(self.live_until, now)
    }

    /// Forgets `key_hash` at `now` (e.g. when a SYN re-creates the flow); nothing to do when no
    /// record is live.
    #[inline]
    pub fn forget(&mut self, key_hash: u64, now: u32) {
        if self.is_empty_at(now) {
            return;
        }
        let s = sig_of(key_hash);
        let b = &mut self.buckets[key_hash as usize & self.mask];
        // Usually no record matches: one SIMD compare, no store.
        let mut m = eq_mask8(&b.sig, s);
        while m != 0 {
            if let Some(x) = b.sig.get_mut(m.trailing_zeros() as usize) {
                *x = 0;
            }
            m &= m - 1;
        }
    }
}

impl core::fmt::Debug for RecentlyExpired {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecentlyExpired")
            .field("capacity", &self.capacity())
            .field("window", &self.window)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::FlowKey;

    fn h(i: u32) -> u64 {
        FlowKey::new(0x0a00_0000 | i, 0xc000_0201, (i % 60000) as u16, 443, 6).table_hash()
    }

    #[test]
    fn empty_once_the_latest_forget_time_passed() {
        let mut r = RecentlyExpired::new(1024, 300);
        assert!(r.is_empty_at(1000));
        r.note_expired(h(1), 1000);
        // A shorter window later does not shorten the time the first key stays live.
        r.set_window(10);
        r.note_expired(h(2), 1100);
        assert!(!r.is_empty_at(1000));
        assert!(!r.is_empty_at(1299));
        assert!(r.recently_expired(h(1), 1299));
        r.forget(h(1), 1299);
        assert!(!r.recently_expired(h(1), 1299));
        assert!(r.is_empty_at(1300));
        // A key noted again makes the record live again.
        r.note_expired(h(3), 2000);
        assert!(r.recently_expired(h(3), 2009));
        assert!(!r.recently_expired(h(3), 2010));
        assert!(r.is_empty_at(2010));
    }

    #[test]
    fn remembered_within_window_then_forgotten() {
        let mut r = RecentlyExpired::new(1024, 300);
        r.note_expired(h(1), 1000);
        assert!(r.recently_expired(h(1), 1000));
        assert!(r.recently_expired(h(1), 1299));
        assert!(!r.recently_expired(h(1), 1300));
        assert!(!r.recently_expired(h(2), 1000));
        r.note_expired(h(1), 2000);
        assert!(r.recently_expired(h(1), 2001));
        r.forget(h(1), 2001);
        assert!(!r.recently_expired(h(1), 2001));
    }

    #[test]
    fn window_is_clamped_and_zero_disables() {
        assert_eq!(RecentlyExpired::new(8, 100_000).window(), MAX_WINDOW_SECS);
        let mut r = RecentlyExpired::new(8, 0);
        r.note_expired(h(1), 5);
        assert!(!r.recently_expired(h(1), 5));
    }

    #[test]
    fn a_new_window_applies_to_keys_noted_afterwards() {
        let mut r = RecentlyExpired::new(1024, 120);
        r.note_expired(h(1), 1000);
        r.set_window(600);
        r.note_expired(h(2), 1000);
        assert!(!r.recently_expired(h(1), 1120), "noted under 120 s");
        assert!(r.recently_expired(h(2), 1599));
        assert!(!r.recently_expired(h(2), 1600));
        r.set_window(100_000);
        assert_eq!(r.window(), MAX_WINDOW_SECS);
        let bytes = r.memory_bytes();
        r.set_window(30);
        assert_eq!(
            r.memory_bytes(),
            bytes,
            "the window does not change the memory"
        );
        assert_eq!(bytes, r.capacity() * 8, "8 bytes a record");
    }

    #[test]
    fn overfull_bucket_forgets_oldest_first() {
        // One bucket of 8: note 9 keys at increasing times; the first one goes.
        let mut r = RecentlyExpired::new(8, 100);
        for i in 0..9 {
            r.note_expired(h(i), i);
        }
        assert!(!r.recently_expired(h(0), 9));
        for i in 1..9 {
            assert!(r.recently_expired(h(i), 9));
        }
    }

    /// 1 M recorded keys in a 1 M-record table; 10 M other keys queried: false positives stay at 0
    /// (expected ≈ 10^7 × 8 / 2^32 ≈ 0.02 at most); most recorded keys are retained.
    #[test]
    fn false_positive_rate_at_one_million() {
        const N: u32 = 1 << 20;
        let mut r = RecentlyExpired::new(N as usize, 600);
        for i in 0..N {
            r.note_expired(h(i), 10);
        }
        let kept = (0..N).filter(|&i| r.recently_expired(h(i), 11)).count();
        let fp = (N..N + 10 * N)
            .filter(|&i| r.recently_expired(h(i), 11))
            .count();
        eprintln!(
            "recently-expired: kept {kept} of {N}, {fp} false positives in {} queries",
            10 * N
        );
        // Balls into 8-slot bins at load 1.0 keep ~87 %; the rest were overwritten (false negatives).
        assert!(kept as f64 > 0.8 * f64::from(N), "kept {kept}");
        assert!(fp <= 2, "false positives {fp}");
        // And never permanent.
        assert_eq!((0..N).filter(|&i| r.recently_expired(h(i), 610)).count(), 0);
    }
}
