//! The flow key (IPv4 5-tuple as received) and the fast hash that places it in a flow table.
//!
//! This hash only spreads keys over a worker's own table; it is **not** the stable, seeded hash that
//! chooses a backend (that one lives in `balance`). It is a two-round folded multiply (the 128-bit
//! product's halves XORed, as in wyhash/aHash's fallback): a handful of cycles, good avalanche in both
//! halves of the result. The table uses the low bits to choose a bucket and the high 32 bits as the
//! signature stored in the bucket; the recently-expired record does the same with its own mask.

/// An IPv4 transport 5-tuple, in the orientation of the flow's first packet as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub struct FlowKey {
    /// Source IPv4 address (host byte order).
    pub src_ip: u32,
    /// Destination IPv4 address (host byte order).
    pub dst_ip: u32,
    /// Source transport port (0 for protocols without ports).
    pub src_port: u16,
    /// Destination transport port (0 for protocols without ports).
    pub dst_port: u16,
    /// IP protocol number (6 = TCP, 17 = UDP).
    pub proto: u8,
}

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// Default key of the table hash (any odd-looking constant; not a security boundary by itself).
pub const DEFAULT_TABLE_SEED: u64 = 0x5f0e_1d2c_3b4a_6978;

pub(super) const K1: u64 = 0x9e37_79b9_7f4a_7c15;
pub(super) const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
pub(super) const K3: u64 = 0x1656_67b1_9e37_79f9;

/// What a flow table needs of its key: an empty value to fill memory with, equality, and the
/// seeded table hash. [`FlowKey`] (IPv4) and [`super::FlowKey6`] (IPv6) implement it.
pub trait TableKey: Copy + PartialEq {
    /// The value free slots hold (never compared: a zero signature marks a slot free).
    const EMPTY: Self;
    /// The table hash of the key under `seed`.
    fn hash_seeded(&self, seed: u64) -> u64;
    /// Key equality as the table compares stored keys (a key may compare fewer, wider words).
    #[inline(always)]
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

/// What a burst lookup reads each key from: the key itself, or a per-packet record that holds
/// it (the pipeline's classification), so the burst needs no separate array of keys.
pub trait HoldsKey<K> {
    /// The key held.
    fn held_key(&self) -> &K;
}

impl<K: TableKey> HoldsKey<K> for K {
    #[inline(always)]
    fn held_key(&self) -> &K {
        self
    }
}

/// The 128-bit product of `a` and `b`, its halves XORed.
#[inline(always)]
pub(super) fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl FlowKey {
    /// Builds a key from its five fields.
    #[inline]
    pub const fn new(src_ip: u32, dst_ip: u32, src_port: u16, dst_port: u16, proto: u8) -> Self {
        FlowKey {
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            proto,
        }
    }

    /// Table hash with an explicit key (a worker may pick a random seed at start to resist flooding).
    #[inline(always)]
    pub fn hash_seeded(&self, seed: u64) -> u64 {
        let a = (u64::from(self.src_ip) << 32) | u64::from(self.dst_ip);
        let b = (u64::from(self.src_port) << 48)
            | (u64::from(self.dst_port) << 32)
            | (u64::from(self.proto) << 24);
        let h = fold_mul(a ^ seed ^ K1, b ^ K2);
        fold_mul(h ^ K3, seed ^ K1 ^ b.rotate_left(17))
    }

    /// `self == other`, compared as one 8-byte word (the addresses), one 4-byte word (the ports)
    /// and the protocol: three compares where the derived `==` makes five (the table compares a
    /// stored key on every hit).
    #[inline(always)]
    pub fn same(&self, other: &FlowKey) -> bool {
        self.addrs() == other.addrs() && self.ports() == other.ports() && self.proto == other.proto
    }

    /// Both addresses in one word (adjacent fields: one load).
    #[inline(always)]
    fn addrs(&self) -> u64 {
        u64::from(self.src_ip) | (u64::from(self.dst_ip) << 32)
    }

    /// Both ports in one word (adjacent fields: one load).
    #[inline(always)]
    fn ports(&self) -> u32 {
        u32::from(self.src_port) | (u32::from(self.dst_port) << 16)
    }

    /// Table hash with [`DEFAULT_TABLE_SEED`].
    #[inline(always)]
    pub fn table_hash(&self) -> u64 {
        self.hash_seeded(DEFAULT_TABLE_SEED)
    }
}

impl TableKey for FlowKey {
    const EMPTY: Self = FlowKey::new(0, 0, 0, 0, 0);
    #[inline(always)]
    fn hash_seeded(&self, seed: u64) -> u64 {
        FlowKey::hash_seeded(self, seed)
    }
    #[inline(always)]
    fn same(&self, other: &Self) -> bool {
        FlowKey::same(self, other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn key_is_16_bytes() {
        assert_eq!(core::mem::size_of::<FlowKey>(), 16);
    }

    #[test]
    fn hash_is_deterministic_and_seeded() {
        let k = FlowKey::new(0x0a00_0001, 0x0a00_0002, 1234, 80, PROTO_TCP);
        assert_eq!(k.table_hash(), k.table_hash());
        assert_ne!(k.hash_seeded(1), k.hash_seeded(2));
        let mut k2 = k;
        k2.proto = PROTO_UDP;
        assert_ne!(k.table_hash(), k2.table_hash());
    }

    #[test]
    fn sequential_keys_spread_over_low_and_high_bits() {
        // Clients from one /16 with sequential ports: low 12 bits and high 32 bits both spread.
        let mut low = HashSet::new();
        let mut high = HashSet::new();
        for i in 0..4096u32 {
            let k = FlowKey::new(
                0x0a00_0000 + (i >> 4),
                0xc000_0201,
                1024 + (i & 15) as u16,
                80,
                6,
            );
            let h = k.table_hash();
            low.insert(h & 0xfff);
            high.insert(h >> 32);
        }
        // 4096 balls in 4096 bins: about 63 % distinct for a random function.
        assert!(low.len() > 2400, "low bits poorly spread: {}", low.len());
        assert_eq!(high.len(), 4096);
    }

    #[test]
    fn same_is_equality() {
        let k = FlowKey::new(0x0a00_0001, 0x0a00_0002, 1234, 80, PROTO_TCP);
        assert!(k.same(&k));
        let variants = [
            FlowKey { src_ip: 9, ..k },
            FlowKey { dst_ip: 9, ..k },
            FlowKey { src_port: 9, ..k },
            FlowKey { dst_port: 9, ..k },
            FlowKey {
                proto: PROTO_UDP,
                ..k
            },
            // The addresses or the ports swapped: the words differ although the sums do not.
            FlowKey::new(0x0a00_0002, 0x0a00_0001, 1234, 80, PROTO_TCP),
            FlowKey::new(0x0a00_0001, 0x0a00_0002, 80, 1234, PROTO_TCP),
        ];
        for v in variants {
            assert!(!k.same(&v) && !v.same(&k), "{v:?}");
            assert_eq!(k.same(&v), k == v);
        }
    }
}
