//! Idle-expiry pacing: the flow table is swept by time, not by loop iterations.
//!
//! A sweep step reads buckets that are cold by construction, so a step on every loop iteration
//! would cost a fixed number of cache misses per burst however little there is to expire. Paced,
//! the whole table is visited once per sweep period in steps of [`EXPIRE_MIN_STEP`] to
//! [`EXPIRE_MAX_STEP`] buckets, so its cost does not grow with the packet rate.
//!
//! The period follows the timeouts in effect ([`sweep_period`]): an eighth of the shortest idle
//! timeout the configuration sets, between [`EXPIRY_SWEEP`] and [`EXPIRY_SWEEP_MAX`]. With the
//! default 4-minute timeouts a 1 M-flow table costs ~32 K bucket reads per second instead of ~130 K
//! at the shortest period.

use std::time::Duration;

use crate::balance::Snapshot;

/// The shortest sweep period: idle expiry visits every bucket of the flow table at most this often
/// (the period for idle timeouts up to 4 s, e.g. tests with short timeouts).
pub const EXPIRY_SWEEP: Duration = Duration::from_millis(500);
/// The longest sweep period (idle timeouts of 32 s and more, the defaults among them): a flow is
/// swept, and its reset-on-idle RSTs sent, at most this long after its deadline.
pub const EXPIRY_SWEEP_MAX: Duration = Duration::from_secs(4);
/// The period is the shortest idle timeout divided by this (an idle flow is freed at most an
/// eighth of its timeout late, within the bounds above).
pub const EXPIRY_SWEEP_DIVISOR: u32 = 8;

/// The sweep period for a shortest idle timeout of `shortest_secs` seconds (`None`: no rule sets
/// one, nothing to hurry): `shortest / 8`, clamped to [`EXPIRY_SWEEP`]..=[`EXPIRY_SWEEP_MAX`].
pub fn sweep_period(shortest_secs: Option<u32>) -> Duration {
    match shortest_secs {
        None => EXPIRY_SWEEP_MAX,
        Some(s) => (Duration::from_secs(u64::from(s)) / EXPIRY_SWEEP_DIVISOR)
            .clamp(EXPIRY_SWEEP, EXPIRY_SWEEP_MAX),
    }
}

/// The shortest idle timeout, seconds, of the snapshot's load-balancing, inbound NAT and outbound
/// rules (`None` without rules). The fixed per-state timeouts of closing or reset TCP flows are
/// not counted: they only free slots and ports a little later (a full bucket reuses an expired
/// slot at once), and no reset-on-idle RST depends on them.
pub fn shortest_idle_timeout(snapshot: &Snapshot) -> Option<u32> {
    let rules = snapshot.rules.iter().map(|r| r.idle_timeout_secs);
    let outbound = snapshot.outbound.iter().map(|o| o.idle_timeout_secs);
    rules.chain(outbound).min()
}
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
    /// The instant (ns) the current period took effect: progress is counted from there.
    origin_ns: u128,
    /// Buckets counted as visited since `origin_ns`.
    swept: u128,
    /// `Snapshot::uid` of the snapshot the period was last derived from (0: none yet).
    snapshot_uid: u64,
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
            origin_ns: 0,
            swept: 0,
            snapshot_uid: 0,
            next_ns: 0,
        }
    }

    /// Derives the period from `snapshot`'s timeouts ([`sweep_period`]) when it is not the
    /// snapshot of the last call (a reload): one compare otherwise.
    #[inline]
    pub fn follow(&mut self, snapshot: &Snapshot, elapsed: Duration) {
        if snapshot.uid() != self.snapshot_uid {
            self.snapshot_uid = snapshot.uid();
            self.set_sweep(sweep_period(shortest_idle_timeout(snapshot)), elapsed);
        }
    }

    /// The current sweep period.
    pub fn sweep(&self) -> Duration {
        Duration::from_nanos(self.sweep_ns.min(u128::from(u64::MAX)) as u64)
    }

    /// Sweeps once per `sweep` from `elapsed` on (after the worker started); the pass under way
    /// continues from where it is, at the new pace (no backlog is created or forgiven).
    pub fn set_sweep(&mut self, sweep: Duration, elapsed: Duration) {
        let sweep_ns = sweep.as_nanos().max(1);
        if sweep_ns == self.sweep_ns {
            return;
        }
        self.sweep_ns = sweep_ns;
        self.origin_ns = elapsed.as_nanos();
        self.swept = 0;
        self.next_ns = self.threshold();
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
        let target = ns.saturating_sub(self.origin_ns) * self.buckets / self.sweep_ns;
        let due = target.saturating_sub(self.swept);
        let step = if due < EXPIRE_MIN_STEP as u128 {
            0
        } else {
            // Everything due is visited now, or forgiven beyond one step.
            self.swept = target;
            due.min(EXPIRE_MAX_STEP as u128) as usize
        };
        self.next_ns = self.threshold();
        step
    }

    /// The first instant (ns) at which [`EXPIRE_MIN_STEP`] more buckets are due.
    fn threshold(&self) -> u128 {
        // target >= swept + MIN  <=>  (ns - origin) * buckets >= (swept + MIN) * sweep_ns.
        let k = (self.swept + EXPIRE_MIN_STEP as u128) * self.sweep_ns;
        match self.buckets {
            0 => u128::MAX,
            b => self.origin_ns + k.div_ceil(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_period_is_an_eighth_of_the_shortest_timeout_within_bounds() {
        let ms = |s| sweep_period(s).as_millis();
        // Short timeouts (tests: 1 to 4 s) keep the shortest period.
        for s in [0, 1, 3, 4] {
            assert_eq!(ms(Some(s)), 500, "{s} s");
        }
        assert_eq!(ms(Some(5)), 625);
        assert_eq!(ms(Some(10)), 1_250);
        assert_eq!(ms(Some(16)), 2_000);
        // 32 s and more, the 4-minute default among them, get the longest.
        for s in [32, 240, 6_000, 86_400, u32::MAX] {
            assert_eq!(ms(Some(s)), 4_000, "{s} s");
        }
        assert_eq!(sweep_period(None), EXPIRY_SWEEP_MAX);
    }

    /// A snapshot whose load-balancing, inbound NAT and outbound rules have these idle timeouts.
    fn snapshot(lb: u32, nat: u32, out: u32) -> Snapshot {
        use crate::balance::Health;
        use crate::config::Config;
        let text = format!(
            r#"
[[frontends]]
name = "fe"
address = "10.1.0.100"

[[backend_pools]]
name = "web"
members = [{{ name = "vm1", address = "10.1.0.11" }}]

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
idle_timeout_seconds = {lb}

[[inbound_nat_rules]]
name = "rdp"
frontend = "fe"
protocol = "tcp"
frontend_port = 50001
target = {{ pool = "web", member = "vm1" }}
backend_port = 3389
idle_timeout_seconds = {nat}

[[outbound_rules]]
name = "out"
frontends = ["fe"]
backend_pool = "web"
idle_timeout_seconds = {out}
"#
        );
        let c = Config::from_str(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        Snapshot::compile(&c, &Health::all_up(&c))
    }

    #[test]
    fn shortest_timeout_covers_rules_and_outbound_rules() {
        use crate::balance::Health;
        use crate::config::Config;
        let shortest = |lb, nat, out| shortest_idle_timeout(&snapshot(lb, nat, out));
        assert_eq!(shortest(300, 600, 900), Some(300));
        assert_eq!(shortest(300, 7, 900), Some(7));
        assert_eq!(shortest(300, 600, 3), Some(3));
        let empty = Config::from_str("", "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let none = Snapshot::compile(&empty, &Health::all_up(&empty));
        assert_eq!(shortest_idle_timeout(&none), None);
    }

    #[test]
    fn the_pacer_follows_each_new_snapshot_s_timeouts() {
        let mut p = ExpiryPacer::new(1 << 16, EXPIRY_SWEEP);
        let long = snapshot(240, 240, 240);
        p.follow(&long, Duration::from_millis(10));
        assert_eq!(p.sweep(), EXPIRY_SWEEP_MAX);
        // A reload to a 10-second timeout: an eighth of it.
        let short = snapshot(240, 10, 240);
        p.follow(&short, Duration::from_millis(20));
        assert_eq!(p.sweep(), Duration::from_millis(1_250));
        // The same snapshot again changes nothing; back to the long timeouts, the longest period.
        p.follow(&short, Duration::from_millis(30));
        assert_eq!(p.sweep(), Duration::from_millis(1_250));
        p.follow(&snapshot(240, 240, 240), Duration::from_millis(40));
        assert_eq!(p.sweep(), EXPIRY_SWEEP_MAX);
    }

    #[test]
    fn a_new_period_continues_the_pass_at_the_new_pace() {
        let buckets = 1 << 16;
        let mut p = ExpiryPacer::new(buckets, EXPIRY_SWEEP);
        let step = Duration::from_micros(10);
        let run = |p: &mut ExpiryPacer, from: Duration, to: Duration| {
            let (mut t, mut total) = (from, 0);
            while t < to {
                t += step;
                total += p.due(t);
            }
            total
        };
        // Half a pass at 500 ms, then the period grows to 4 s: no stall, no burst, 1/8 the pace.
        let half = run(&mut p, Duration::ZERO, Duration::from_millis(250));
        assert!(half.abs_diff(buckets / 2) <= EXPIRE_MIN_STEP, "{half}");
        p.set_sweep(EXPIRY_SWEEP_MAX, Duration::from_millis(250));
        assert_eq!(p.sweep(), EXPIRY_SWEEP_MAX);
        let slow = run(
            &mut p,
            Duration::from_millis(250),
            Duration::from_millis(750),
        );
        assert!(slow.abs_diff(buckets / 8) <= EXPIRE_MIN_STEP, "{slow}");
        // Back to 500 ms: the full pace at once, without a backlog of the slow time.
        p.set_sweep(EXPIRY_SWEEP, Duration::from_millis(750));
        assert_eq!(p.due(Duration::from_millis(750) + step), 0);
        let fast = run(
            &mut p,
            Duration::from_millis(750),
            Duration::from_millis(1_000),
        );
        assert!(fast.abs_diff(buckets / 2) <= 2 * EXPIRE_MIN_STEP, "{fast}");
        // The same period again changes nothing.
        let before = p.clone();
        p.set_sweep(EXPIRY_SWEEP, Duration::from_secs(5));
        assert_eq!(p.origin_ns, before.origin_ns);
    }

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
