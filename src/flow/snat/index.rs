//! [`KeyIndex`]: a fixed-capacity open-addressing map from a flow key (IPv4 or IPv6) to a slot number, the
//! two lookups of the SNAT table (member side and remote side) are built on it.
//!
//! Linear probing over a power-of-two array sized at construction to at least twice the most
//! keys it will ever hold (so a probe run stays short and an insert always finds room), deletion
//! by backward shift (no tombstones, so a long-lived table never degrades). Allocation happens in
//! [`KeyIndex::new`] only.

use crate::flow::key::TableKey;

/// Marks an empty cell.
const EMPTY: u32 = u32::MAX;

/// Seed of the index hash (spreads keys only; not the distribution hash).
const INDEX_SEED: u64 = 0x2d35_8dcc_aa6c_78a5;

/// A map from a flow key to `u32`, fixed capacity (see the module documentation).
pub struct KeyIndex<K> {
    keys: Vec<K>,
    vals: Vec<u32>,
    mask: usize,
    len: usize,
}

impl<K: TableKey + Default> KeyIndex<K> {
    /// An index for at most `max_keys` keys (cells: the next power of two of twice that).
    pub fn new(max_keys: usize) -> Self {
        let cells = (max_keys.max(1) * 2).next_power_of_two();
        KeyIndex {
            keys: vec![K::default(); cells],
            vals: vec![EMPTY; cells],
            mask: cells - 1,
            len: 0,
        }
    }

    /// Keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.keys.len() * (core::mem::size_of::<K>() + 4)
    }

    #[inline(always)]
    fn home(&self, key: &K) -> usize {
        key.hash_seeded(INDEX_SEED) as usize & self.mask
    }

    /// The cell holding `key`, if stored.
    #[inline]
    fn find(&self, key: &K) -> Option<usize> {
        let mut i = self.home(key);
        for _ in 0..=self.mask {
            let v = *self.vals.get(i)?;
            if v == EMPTY {
                return None;
            }
            if self.keys.get(i).is_some_and(|k| k.same(key)) {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: &K) -> Option<u32> {
        self.find(key).and_then(|i| self.vals.get(i).copied())
    }

    /// Stores `key → val` (replacing an existing value); false when the index is full.
    pub fn insert(&mut self, key: K, val: u32) -> bool {
        let mut i = self.home(&key);
        for _ in 0..=self.mask {
            let (Some(k), Some(v)) = (self.keys.get_mut(i), self.vals.get_mut(i)) else {
                return false;
            };
            if *v == EMPTY {
                // Keep one cell in two free: the probe runs stay short.
                if self.len * 2 > self.mask {
                    return false;
                }
                *k = key;
                *v = val;
                self.len += 1;
                return true;
            }
            if k.same(&key) {
                *v = val;
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }

    /// Removes `key` when it maps to `val` (another slot's key stays); returns whether it did.
    pub fn remove_if(&mut self, key: &K, val: u32) -> bool {
        let Some(mut hole) = self.find(key) else {
            return false;
        };
        if self.vals.get(hole) != Some(&val) {
            return false;
        }
        self.len -= 1;
        // Backward shift: move later members of the run into the hole when their home allows.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let v = self.vals.get(j).copied().unwrap_or(EMPTY);
            if v == EMPTY {
                break;
            }
            let Some(k) = self.keys.get(j).copied() else {
                break;
            };
            let home = self.home(&k);
            // `k` may fill the hole when its home is not strictly between hole and j (cyclic).
            let dist_j = j.wrapping_sub(home) & self.mask;
            let dist_hole = hole.wrapping_sub(home) & self.mask;
            if dist_hole <= dist_j {
                if let (Some(kh), Some(vh)) = (self.keys.get_mut(hole), self.vals.get_mut(hole)) {
                    *kh = k;
                    *vh = v;
                }
                hole = j;
            }
        }
        if let Some(vh) = self.vals.get_mut(hole) {
            *vh = EMPTY;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{FlowKey, FlowKey6};

    fn k(i: u32) -> FlowKey {
        FlowKey::new(i, i.wrapping_mul(7), (i % 65536) as u16, 80, 6)
    }

    #[test]
    fn insert_get_remove_keep_every_other_key() {
        let mut ix = KeyIndex::new(1000);
        for i in 0..1000 {
            assert!(ix.insert(k(i), i));
        }
        assert_eq!(ix.len(), 1000);
        for i in (0..1000).step_by(3) {
            assert!(ix.remove_if(&k(i), i));
        }
        for i in 0..1000 {
            let want = (i % 3 != 0).then_some(i);
            assert_eq!(ix.get(&k(i)), want, "key {i}");
        }
    }

    #[test]
    fn remove_if_keeps_a_key_of_another_value() {
        let mut ix = KeyIndex::new(4);
        assert!(ix.insert(k(1), 5));
        assert!(!ix.remove_if(&k(1), 6));
        assert_eq!(ix.get(&k(1)), Some(5));
        assert!(ix.insert(k(1), 6));
        assert_eq!(ix.get(&k(1)), Some(6));
    }

    #[test]
    fn ipv6_keys_too() {
        let k6 = |i: u128| FlowKey6::new(i << 64 | 1, 7, 1000, 80, 6);
        let mut ix = KeyIndex::new(100);
        for i in 0..100 {
            assert!(ix.insert(k6(i), i as u32));
        }
        assert!(ix.remove_if(&k6(5), 5));
        assert_eq!(ix.get(&k6(5)), None);
        assert_eq!(ix.get(&k6(6)), Some(6));
    }

    #[test]
    fn refuses_beyond_half_load() {
        let mut ix = KeyIndex::new(2);
        let mut stored = 0;
        for i in 0..100 {
            stored += usize::from(ix.insert(k(i), i));
        }
        assert_eq!(stored, 2);
    }
}
