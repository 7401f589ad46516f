//! One IPv6 flow's record: the IPv4 record's state, timers and reset numbers (so the TCP tracker,
//! the timeouts and the eviction policy are the same code) with a 128-bit member address.
//!
//! 64 bytes (`repr(C)`, checked by a test: the 16-byte address, then the IPv4 record's 40 bytes,
//! padded to the address's alignment): with its 48-byte key a slot needs 116 bytes, so an IPv6
//! table slot is two cache lines (see [`super::table`]). The address comes first so that it fills
//! the key's line: a known flow's packet only reads that line (key compare, rewrite target) and
//! writes nothing but the second one (the record's timers, TCP numbers and the slot's stamp),
//! which is also the only line the expiry sweep and the eviction scan read.

use super::entry::FlowEntry;
use super::table::TableEntry;

/// An IPv6 flow's record: [`FlowEntry`] (whose `member_addr` stays 0) and the member's address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FlowEntry6 {
    /// Rewrite target: the member's IPv6 address (`u128::from(Ipv6Addr)`).
    pub member_addr: u128,
    /// Rule, member id, backend port, flags, TCP state, reset numbers and timers, as for IPv4;
    /// drive it with [`super::track`] like an IPv4 entry. Its `member_addr` is unused (0); of its
    /// `sums`, only `l4_delta` is used (the flow's NAT66 checksum delta, set at each check).
    pub flow: FlowEntry,
}

impl FlowEntry6 {
    /// A fresh entry in state `New`, last seen at `now` (see [`FlowEntry::new`]).
    #[inline]
    pub fn new(
        rule_id: u32,
        member_addr: u128,
        backend_port: u16,
        member_id: u32,
        flags: super::FlowFlags,
        idle_timeout: u32,
        now: u32,
    ) -> Self {
        FlowEntry6 {
            member_addr,
            flow: FlowEntry::new(
                rule_id,
                0,
                backend_port,
                member_id,
                flags,
                idle_timeout,
                now,
            ),
        }
    }
}

impl TableEntry for FlowEntry6 {
    const EMPTY: Self = FlowEntry6 {
        member_addr: 0,
        flow: <FlowEntry as TableEntry>::EMPTY,
    };
    #[inline(always)]
    fn is_expired(&self, now: u32) -> bool {
        self.flow.is_expired(now)
    }
    #[inline]
    fn is_trusted(&self) -> bool {
        self.flow.is_trusted()
    }
    #[inline]
    fn last_seen(&self) -> u32 {
        self.flow.last_seen
    }
    #[inline(always)]
    fn may_be_expired(&self, now: u32) -> bool {
        self.flow.may_be_expired(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{tcp_flags, track, Direction, FlowFlags, FlowState};

    #[test]
    fn entry_is_64_bytes_address_first() {
        assert_eq!(core::mem::size_of::<FlowEntry6>(), 64);
        assert_eq!(core::mem::offset_of!(FlowEntry6, member_addr), 0);
        assert_eq!(core::mem::offset_of!(FlowEntry6, flow), 16);
    }

    #[test]
    fn tracked_like_an_ipv4_entry() {
        let m = 0xfd00_0000_0000_0000_0000_0000_0000_0042;
        let mut e = FlowEntry6::new(1, m, 8080, 3, FlowFlags::RESET_ENABLED, 240, 100);
        assert_eq!((e.member_addr, e.flow.member_addr), (m, 0));
        track(
            &mut e.flow,
            Direction::ClientToServer,
            tcp_flags::SYN,
            1,
            0,
            0,
            100,
        );
        assert_eq!(e.flow.state, FlowState::SynSent);
        assert!(!TableEntry::is_trusted(&e));
        track(
            &mut e.flow,
            Direction::ClientToServer,
            tcp_flags::ACK,
            2,
            9,
            0,
            101,
        );
        assert!(TableEntry::is_trusted(&e));
        assert!(e.flow.wants_reset_on_expiry());
        assert_eq!(TableEntry::last_seen(&e), 101);
        assert!(!TableEntry::is_expired(&e, 341));
        assert!(TableEntry::is_expired(&e, 342));
    }
}
