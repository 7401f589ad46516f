//! [`Space`] against a reference that scans one sorted list of every used range (the planner's
//! first, quadratic, form): random takes, releases and questions give the same answers.

use super::*;
use proptest::prelude::*;

/// The reference: every used range in one list sorted by first port, scanned from the start.
#[derive(Debug, Default)]
struct Scan {
    used: Vec<(u16, u16, u8, User)>,
}

impl Scan {
    fn take(&mut self, lo: u16, hi: u16, bits: u8, by: User) {
        let (lo, hi) = (lo.max(SNAT_FIRST_PORT), hi.min(SNAT_LAST_PORT));
        if lo > hi {
            return;
        }
        let at = self.used.partition_point(|u| u.0 <= lo);
        self.used.insert(at, (lo, hi, bits, by));
    }

    fn release(&mut self, lo: u16, bits: u8) {
        if let Some(i) = self
            .used
            .iter()
            .position(|u| u.0 == lo && u.2 == bits && u.3 == User::Block)
        {
            self.used.remove(i);
        }
    }

    fn obstacle(&self, lo: u16, hi: u16, bits: u8) -> Option<User> {
        self.used
            .iter()
            .take_while(|u| u.0 <= hi)
            .find(|u| u.1 >= lo && u.2 & bits != 0)
            .map(|u| u.3.clone())
    }

    fn lowest_fit(&self, count: u16, bits: u8) -> Option<u16> {
        if count == 0 {
            return None;
        }
        let mut cand = u32::from(SNAT_FIRST_PORT);
        for u in self.used.iter().filter(|u| u.2 & bits != 0) {
            if u32::from(u.1) < cand {
                continue;
            }
            if u32::from(u.0) >= cand + u32::from(count) {
                break;
            }
            cand = u32::from(u.1) + 1;
        }
        let last = cand + u32::from(count) - 1;
        (last <= u32::from(SNAT_LAST_PORT)).then_some(cand as u16)
    }

    fn free(&self, bits: u8) -> (u32, u32) {
        let (mut total, mut largest, mut next) = (0u32, 0u32, u32::from(SNAT_FIRST_PORT));
        for u in self.used.iter().filter(|u| u.2 & bits != 0) {
            let n = u32::from(u.0).saturating_sub(next);
            total += n;
            largest = largest.max(n);
            next = next.max(u32::from(u.1) + 1);
        }
        let n = (u32::from(SNAT_LAST_PORT) + 1).saturating_sub(next);
        (total + n, largest.max(n))
    }
}

/// One operation on both.
#[derive(Debug, Clone)]
enum Op {
    /// A rule's range (`lo`, length, bits).
    Rule(u16, u16, u8),
    /// A block where it is free (`lo`, length, bits), as the kept pass places them.
    Keep(u16, u16, u8),
    /// A block in the lowest free range (length, bits), as new members are placed.
    Place(u16, u8),
    /// Release the `i`-th block placed.
    Release(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let bits = prop::sample::select(vec![TCP, UDP, TCP | UDP]);
    let len = prop::sample::select(vec![1u16, 8, 64, 500, 4000]);
    let port = 1000u16..=65535;
    prop::collection::vec(
        prop_oneof![
            1 => (port.clone(), 1u16..40, bits.clone()).prop_map(|(p, n, b)| Op::Rule(p, n, b)),
            3 => (port, len.clone(), bits.clone()).prop_map(|(p, n, b)| Op::Keep(p, n, b)),
            6 => (len, bits).prop_map(|(n, b)| Op::Place(n, b)),
            1 => (0usize..64).prop_map(Op::Release),
        ],
        1..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Both answer every question alike after every operation (rules only before blocks, as
    /// the planner reserves them first).
    #[test]
    fn the_indexed_space_answers_as_the_full_scan(mut seq in ops()) {
        seq.sort_by_key(|o| !matches!(o, Op::Rule(..)));
        let (mut fast, mut slow) = (Space::default(), Scan::default());
        let mut placed: Vec<(u16, u8)> = Vec::new();
        for op in seq {
            match op {
                Op::Rule(lo, n, b) => {
                    let by = User::Rule("load_balancing_rules", 0, format!("r{lo}"));
                    let hi = lo.saturating_add(n - 1);
                    fast.take(lo, hi, b, by.clone());
                    slow.take(lo, hi, b, by);
                }
                Op::Keep(lo, n, b) => {
                    let hi = lo.saturating_add(n - 1);
                    let o = slow.obstacle(lo, hi, b);
                    prop_assert_eq!(fast.obstacle(lo, hi, b), o.clone());
                    if o.is_none() && lo >= SNAT_FIRST_PORT && hi <= SNAT_LAST_PORT {
                        fast.take(lo, hi, b, User::Block);
                        slow.take(lo, hi, b, User::Block);
                        placed.push((lo, b));
                    }
                }
                Op::Place(n, b) => {
                    let at = slow.lowest_fit(n, b);
                    prop_assert_eq!(fast.lowest_fit(n, b), at);
                    if let Some(lo) = at {
                        fast.take(lo, lo + (n - 1), b, User::Block);
                        slow.take(lo, lo + (n - 1), b, User::Block);
                        placed.push((lo, b));
                    }
                }
                Op::Release(i) if !placed.is_empty() => {
                    let (lo, b) = placed.remove(i % placed.len());
                    fast.release(lo, b);
                    slow.release(lo, b);
                }
                Op::Release(_) => {}
            }
            for b in [TCP, UDP, TCP | UDP] {
                prop_assert_eq!(fast.free(b), slow.free(b));
            }
        }
    }
}

#[test]
fn a_rule_before_a_block_at_the_same_port_and_the_lowest_conflict_first() {
    let mut s = Space::default();
    let rule = User::Rule("inbound_nat_rules", 2, "ssh".into());
    s.take(2000, 2000, TCP, rule.clone());
    s.take(2000, 2063, TCP | UDP, User::Block);
    s.take(1500, 1599, UDP, User::Block);
    assert_eq!(s.obstacle(1990, 2010, TCP), Some(rule));
    assert_eq!(s.obstacle(1550, 2010, TCP | UDP), Some(User::Block));
    assert_eq!(s.obstacle(1600, 1999, TCP | UDP), None);
    assert_eq!(s.lowest_fit(600, UDP), Some(2064));
    assert_eq!(s.lowest_fit(476, UDP), Some(1024));
    assert_eq!(s.free(TCP), (64_000 - 64, 64_000 - 64 - 976));
}
