//! The IPv6 flow key (5-tuple with 128-bit addresses, as received) and its fast table hash, in the
//! style of [`super::key`]: folded multiplies, a few more of them for the wider addresses.
//!
//! Like the IPv4 key's, this hash only places keys in a worker's own table (and its
//! recently-expired record, which keeps the hash, not the key); it is not the distribution hash
//! that chooses a backend.

use super::key::{fold_mul, TableKey, K1, K2, K3};

/// An IPv6 transport 5-tuple, in the orientation of the flow's first packet as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub struct FlowKey6 {
    /// Source IPv6 address (`u128::from(Ipv6Addr)`, the address read as a big-endian number).
    pub src_ip: u128,
    /// Destination IPv6 address (as `src_ip`).
    pub dst_ip: u128,
    /// Source transport port (0 for protocols without ports).
    pub src_port: u16,
    /// Destination transport port (0 for protocols without ports).
    pub dst_port: u16,
    /// Upper-layer protocol after the extension headers (6 = TCP, 17 = UDP).
    pub proto: u8,
}

impl FlowKey6 {
    /// Builds a key from its five fields.
    #[inline]
    pub const fn new(src_ip: u128, dst_ip: u128, src_port: u16, dst_port: u16, proto: u8) -> Self {
        FlowKey6 {
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            proto,
        }
    }

    /// Table hash with an explicit key: three folded multiplies over the two addresses' halves,
    /// then the ports and protocol word as the IPv4 key's last round.
    #[inline(always)]
    pub fn hash_seeded(&self, seed: u64) -> u64 {
        let (s_hi, s_lo) = ((self.src_ip >> 64) as u64, self.src_ip as u64);
        let (d_hi, d_lo) = ((self.dst_ip >> 64) as u64, self.dst_ip as u64);
        let b = (u64::from(self.src_port) << 48)
            | (u64::from(self.dst_port) << 32)
            | (u64::from(self.proto) << 24);
        let h = fold_mul(s_lo ^ seed ^ K1, s_hi ^ K2);
        let h = fold_mul(h ^ d_lo ^ K3, d_hi ^ K1);
        let h = fold_mul(h ^ b ^ K2, seed ^ K3);
        fold_mul(h ^ K3, seed ^ K1 ^ b.rotate_left(17))
    }

    /// `self == other` with one branch: the addresses' and the ports' and protocol's differences
    /// ORed into one 128-bit test (the table compares a stored key on every hit).
    #[inline(always)]
    pub fn same(&self, other: &FlowKey6) -> bool {
        let rest = |k: &FlowKey6| {
            u64::from(k.src_port) | u64::from(k.dst_port) << 16 | u64::from(k.proto) << 32
        };
        ((self.src_ip ^ other.src_ip)
            | (self.dst_ip ^ other.dst_ip)
            | u128::from(rest(self) ^ rest(other)))
            == 0
    }

    /// Table hash with [`super::DEFAULT_TABLE_SEED`].
    #[inline(always)]
    pub fn table_hash(&self) -> u64 {
        self.hash_seeded(super::DEFAULT_TABLE_SEED)
    }
}

impl TableKey for FlowKey6 {
    const EMPTY: Self = FlowKey6::new(0, 0, 0, 0, 0);
    #[inline(always)]
    fn hash_seeded(&self, seed: u64) -> u64 {
        FlowKey6::hash_seeded(self, seed)
    }
    #[inline(always)]
    fn same(&self, other: &Self) -> bool {
        FlowKey6::same(self, other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{PROTO_TCP, PROTO_UDP};
    use std::collections::HashSet;

    const CLIENTS: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0000;
    const VIP: u128 = 0x2001_0db8_0000_0001_0000_0000_0000_0002;

    #[test]
    fn key_is_48_bytes() {
        assert_eq!(core::mem::size_of::<FlowKey6>(), 48);
    }

    /// `k` with one field changed, for each field (both ends of each address), and `k` with its
    /// source and destination swapped: each another flow.
    fn other_flows(k: FlowKey6) -> [FlowKey6; 9] {
        let with = |f: fn(&mut FlowKey6)| {
            let mut v = k;
            f(&mut v);
            v
        };
        [
            with(|v| v.proto = PROTO_UDP),
            with(|v| v.src_ip ^= 1),
            with(|v| v.src_ip ^= 1 << 127),
            with(|v| v.dst_ip ^= 1),
            with(|v| v.dst_ip ^= 1 << 64),
            with(|v| v.dst_ip ^= 1 << 127),
            with(|v| v.src_port ^= 1),
            with(|v| v.dst_port ^= 1),
            FlowKey6::new(k.dst_ip, k.src_ip, k.dst_port, k.src_port, k.proto),
        ]
    }

    #[test]
    fn hash_is_deterministic_seeded_and_covers_every_field() {
        let k = FlowKey6::new(CLIENTS | 1, VIP, 1234, 80, PROTO_TCP);
        assert_eq!(k.table_hash(), k.table_hash());
        assert_ne!(k.hash_seeded(1), k.hash_seeded(2));
        for v in other_flows(k) {
            assert_ne!(k.table_hash(), v.table_hash(), "{v:?}");
        }
    }

    #[test]
    fn same_is_equality() {
        let k = FlowKey6::new(CLIENTS | 1, VIP, 1234, 80, PROTO_TCP);
        assert!(k.same(&k));
        for v in other_flows(k) {
            assert!(!k.same(&v) && !v.same(&k), "{v:?}");
            assert_eq!(k.same(&v), k == v);
        }
    }

    #[test]
    fn sequential_keys_spread_over_low_and_high_bits() {
        // Clients of one /64 with sequential interface ids and ports (the IPv4 key's test).
        let mut low = HashSet::new();
        let mut high = HashSet::new();
        for i in 0..4096u32 {
            let src = CLIENTS | u128::from(i >> 4);
            let k = FlowKey6::new(src, VIP, 1024 + (i & 15) as u16, 80, PROTO_TCP);
            let h = k.table_hash();
            low.insert(h & 0xfff);
            high.insert(h >> 32);
        }
        assert!(low.len() > 2400, "low bits poorly spread: {}", low.len());
        assert_eq!(high.len(), 4096);
    }
}
