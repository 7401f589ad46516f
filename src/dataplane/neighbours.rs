//! The neighbour map workers read to resolve a next hop's MAC: immutable, sorted
//! ip -> (MAC, interface) lists, one per address family.
//!
//! Only the read side lives here, with the pipeline that reads it. The slow path owns the
//! writable neighbour table (ARP resolution, refresh, backoff) and publishes a new map built with
//! [`NeighbourMap::from_entries`] whenever the table's content changes.

use crate::wire::MacAddr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Index of an interface (port) in the appliance's interface list (the snapshot's order).
pub type IfIndex = usize;

/// The immutable neighbour map workers read: ip -> (MAC, interface), sorted by address, IPv4
/// (from ARP) and IPv6 (from Neighbour Discovery) apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeighbourMap {
    entries: Vec<(Ipv4Addr, MacAddr, IfIndex)>,
    entries6: Vec<(Ipv6Addr, MacAddr, IfIndex)>,
    generation: u64,
}

impl NeighbourMap {
    /// A map of `entries` (in any order; one per address) published at table `generation`.
    pub fn from_entries(mut entries: Vec<(Ipv4Addr, MacAddr, IfIndex)>, generation: u64) -> Self {
        entries.sort_unstable_by_key(|e| e.0);
        NeighbourMap {
            entries,
            entries6: Vec::new(),
            generation,
        }
    }
    /// The same map with the IPv6 neighbours `entries6` (in any order; one per address).
    pub fn with_ipv6(mut self, mut entries6: Vec<(Ipv6Addr, MacAddr, IfIndex)>) -> Self {
        entries6.sort_unstable_by_key(|e| e.0);
        self.entries6 = entries6;
        self
    }
    /// The MAC and interface of the IPv6 neighbour `ip`, if known.
    #[inline]
    pub fn get6(&self, ip: Ipv6Addr) -> Option<(MacAddr, IfIndex)> {
        self.entries6
            .binary_search_by_key(&ip, |e| e.0)
            .ok()
            .map(|i| (self.entries6[i].1, self.entries6[i].2))
    }
    /// All IPv6 entries, sorted by address.
    pub fn iter6(&self) -> impl Iterator<Item = (Ipv6Addr, MacAddr, IfIndex)> + '_ {
        self.entries6.iter().copied()
    }
    /// The MAC and interface of `ip`, if known.
    #[inline]
    pub fn get(&self, ip: Ipv4Addr) -> Option<(MacAddr, IfIndex)> {
        self.entries
            .binary_search_by_key(&ip, |e| e.0)
            .ok()
            .map(|i| (self.entries[i].1, self.entries[i].2))
    }
    /// The table generation this map was published at.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Number of entries (both families).
    pub fn len(&self) -> usize {
        self.entries.len() + self.entries6.len()
    }
    /// True when empty (both families).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.entries6.is_empty()
    }
    /// All IPv4 entries, sorted by address.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, MacAddr, IfIndex)> + '_ {
        self.entries.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_entries_are_found_apart_from_ipv4() {
        let a = |x: u16| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, x);
        let m = |x| MacAddr([2, 0, 0, 0, 0, x]);
        let map = NeighbourMap::from_entries(vec![(Ipv4Addr::new(10, 0, 0, 1), m(1), 0)], 3)
            .with_ipv6(vec![(a(9), m(9), 1), (a(2), m(2), 0)]);
        assert_eq!(map.len(), 3);
        assert_eq!(map.get6(a(2)), Some((m(2), 0)));
        assert_eq!(map.get6(a(9)), Some((m(9), 1)));
        assert_eq!(map.get6(a(5)), None);
        assert_eq!(
            map.iter6().map(|e| e.0).collect::<Vec<_>>(),
            vec![a(2), a(9)]
        );
        assert_eq!(map.iter().count(), 1);
    }

    #[test]
    fn entries_are_sorted_and_found() {
        let a = |x| Ipv4Addr::new(10, 0, 0, x);
        let m = |x| MacAddr([2, 0, 0, 0, 0, x]);
        let map = NeighbourMap::from_entries(vec![(a(9), m(9), 1), (a(2), m(2), 0)], 7);
        assert_eq!(map.generation(), 7);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(a(2)), Some((m(2), 0)));
        assert_eq!(map.get(a(9)), Some((m(9), 1)));
        assert_eq!(map.get(a(5)), None);
        assert_eq!(
            map.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![a(2), a(9)]
        );
        assert!(NeighbourMap::default().is_empty());
    }
}
