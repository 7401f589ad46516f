//! The ports of one frontend IP while its blocks are planned: the ranges rules use (few, kept
//! in a sorted list and scanned) and the blocks, one ordered map per protocol (a block never
//! overlaps another of a protocol it uses), so that placing `n` blocks costs O(n log n) rather
//! than a scan of every range per block.

use std::collections::{BTreeMap, HashMap};

use super::{User, SNAT_FIRST_PORT, SNAT_LAST_PORT, TCP, UDP};

/// The protocol bits, in the order of [`Space`]'s block maps.
const PROTOS: [u8; 2] = [TCP, UDP];

/// A range of ports a rule uses.
#[derive(Debug, Clone)]
struct RuleRange {
    lo: u16,
    hi: u16,
    bits: u8,
    by: User,
}

/// The used ports of one frontend IP (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Space {
    /// Rules' ranges, sorted by first port.
    rules: Vec<RuleRange>,
    /// Blocks using TCP, and blocks using UDP: first port → last port.
    blocks: [BTreeMap<u16, u16>; 2],
    /// Per (protocol bits, ports) the first port the last search for them returned: while ports
    /// are only taken, the lowest fit never goes down, so the next search starts there.
    hints: HashMap<(u8, u16), u32>,
}

impl Space {
    /// Marks `lo..=hi` used for `bits` (clamped to the SNAT ports; outside them it is ignored).
    pub(super) fn take(&mut self, lo: u16, hi: u16, bits: u8, by: User) {
        let (lo, hi) = (lo.max(SNAT_FIRST_PORT), hi.min(SNAT_LAST_PORT));
        if lo > hi {
            return;
        }
        if by == User::Block {
            for (map, p) in self.blocks.iter_mut().zip(PROTOS) {
                if bits & p != 0 {
                    map.insert(lo, hi);
                }
            }
            return;
        }
        let at = self.rules.partition_point(|u| u.lo <= lo);
        self.rules.insert(at, RuleRange { lo, hi, bits, by });
    }

    /// Frees the block `take` marked from `lo` for `bits`.
    pub(super) fn release(&mut self, lo: u16, bits: u8) {
        for (map, p) in self.blocks.iter_mut().zip(PROTOS) {
            if bits & p != 0 {
                map.remove(&lo);
            }
        }
        self.hints.clear();
    }

    /// Who uses the lowest-starting range that meets `lo..=hi` and conflicts with `bits` (a
    /// rule before a block starting at the same port).
    pub(super) fn obstacle(&self, lo: u16, hi: u16, bits: u8) -> Option<User> {
        self.first_conflict(lo, hi, bits).map(|(_, _, by)| by)
    }

    /// The lowest-starting use of `lo..=hi` that conflicts with `bits`: (first, last, who).
    fn first_conflict(&self, lo: u16, hi: u16, bits: u8) -> Option<(u16, u16, User)> {
        let mut best = self
            .rules
            .iter()
            .take_while(|u| u.lo <= hi)
            .find(|u| u.hi >= lo && u.bits & bits != 0)
            .map(|u| (u.lo, u.hi, u.by.clone()));
        for (map, p) in self.blocks.iter().zip(PROTOS) {
            if bits & p == 0 {
                continue;
            }
            let covering = map.range(..=lo).next_back().filter(|(_, &h)| h >= lo);
            let found = covering.or_else(|| map.range(lo..=hi).next());
            if let Some((&l, &h)) = found {
                if best.as_ref().is_none_or(|b| l < b.0) {
                    best = Some((l, h, User::Block));
                }
            }
        }
        best
    }

    /// The lowest first port of `count` free ports for `bits`.
    pub(super) fn lowest_fit(&mut self, count: u16, bits: u8) -> Option<u16> {
        if count == 0 {
            return None;
        }
        let key = (bits, count);
        let mut cand = self
            .hints
            .get(&key)
            .copied()
            .unwrap_or(u32::from(SNAT_FIRST_PORT));
        let found = loop {
            let last = cand + u32::from(count) - 1;
            if last > u32::from(SNAT_LAST_PORT) {
                break None;
            }
            match self.first_conflict(cand as u16, last as u16, bits) {
                None => break Some(cand as u16),
                Some((_, h, _)) => cand = u32::from(h) + 1,
            }
        };
        self.hints.insert(key, cand);
        found
    }

    /// Free ports for `bits`: (in all, in the largest free range).
    pub(super) fn free(&self, bits: u8) -> (u32, u32) {
        let mut used: Vec<(u16, u16)> = self
            .rules
            .iter()
            .filter(|u| u.bits & bits != 0)
            .map(|u| (u.lo, u.hi))
            .collect();
        for (map, p) in self.blocks.iter().zip(PROTOS) {
            if bits & p != 0 {
                used.extend(map.iter().map(|(&l, &h)| (l, h)));
            }
        }
        used.sort_unstable();
        let (mut total, mut largest, mut next) = (0u32, 0u32, u32::from(SNAT_FIRST_PORT));
        let mut gap = |from: u32, to: u32| {
            let n = to.saturating_sub(from);
            total += n;
            largest = largest.max(n);
        };
        for (lo, hi) in used {
            gap(next, u32::from(lo));
            next = next.max(u32::from(hi) + 1);
        }
        gap(next, u32::from(SNAT_LAST_PORT) + 1);
        (total, largest)
    }
}

#[cfg(test)]
mod tests;
