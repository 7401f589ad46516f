//! [`SnatAddr`]: what the SNAT table needs of an address family, so one [`super::SnatTable`]
//! serves IPv4 (`u32`, keys [`FlowKey`]) and IPv6 (`u128`, keys [`FlowKey6`]).

use crate::flow::key::TableKey;
use crate::flow::{FlowKey, FlowKey6};

/// An address family of SNAT translations: a host-order address and its flow key.
pub trait SnatAddr: Copy + Default + Eq + core::fmt::Debug {
    /// The 5-tuple key of this family.
    type Key: TableKey + Default + Eq + core::fmt::Debug;
    /// A key from its five fields.
    fn key(src: Self, dst: Self, src_port: u16, dst_port: u16, proto: u8) -> Self::Key;
    /// The key's (source, destination) addresses.
    fn addrs(k: &Self::Key) -> (Self, Self);
    /// The key's (source port, destination port, protocol).
    fn ports(k: &Self::Key) -> (u16, u16, u8);
    /// The address a translation's [`crate::flow::FlowEntry`] keeps as `member_addr` (the
    /// frontend IP for IPv4; 0 for IPv6, whose translation holds it in full).
    fn entry_addr(self) -> u32;
}

/// Implements [`SnatAddr`] for address type `$a` with key `$k`; `$entry` maps an address to
/// the entry's `member_addr`.
macro_rules! snat_addr {
    ($a:ty, $k:ident, $entry:expr) => {
        impl SnatAddr for $a {
            type Key = $k;
            #[inline(always)]
            fn key(src: $a, dst: $a, src_port: u16, dst_port: u16, proto: u8) -> $k {
                $k::new(src, dst, src_port, dst_port, proto)
            }
            #[inline(always)]
            fn addrs(k: &$k) -> ($a, $a) {
                (k.src_ip, k.dst_ip)
            }
            #[inline(always)]
            fn ports(k: &$k) -> (u16, u16, u8) {
                (k.src_port, k.dst_port, k.proto)
            }
            #[inline(always)]
            fn entry_addr(self) -> u32 {
                let f: fn($a) -> u32 = $entry;
                f(self)
            }
        }
    };
}

snat_addr!(u32, FlowKey, |a| a);
snat_addr!(u128, FlowKey6, |_| 0);
