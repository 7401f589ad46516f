//! Shared helpers of the builders' tests: addresses, MACs, and an etherparse cross-check of
//! headers and checksums.

use std::net::Ipv4Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::L2Spec;
use crate::wire::checksum;
use crate::wire::ethernet::MacAddr;

/// A client-side address.
pub(super) const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// A server-side address.
pub(super) const B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
/// The source MAC of [`l2`].
pub(super) const MAC1: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
/// The destination MAC of [`l2`].
pub(super) const MAC2: MacAddr = MacAddr([0x02, 0x66, 0x77, 0x88, 0x99, 0xaa]);

/// Link layer MAC1 -> MAC2, optionally tagged.
pub(super) fn l2(vlan: Option<u16>) -> L2Spec {
    L2Spec {
        src_mac: MAC1,
        dst_mac: MAC2,
        vlan,
    }
}

/// Cross-checks a frame with etherparse: headers and every checksum.
pub(super) fn etherparse_check(frame: &[u8]) -> SlicedPacket<'_> {
    let s = SlicedPacket::from_ethernet(frame).expect("etherparse parses the frame");
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    match &s.transport {
        Some(TransportSlice::Tcp(t)) => {
            let c = t
                .to_header()
                .calc_checksum_ipv4(&h, t.payload())
                .expect("tcp checksum");
            assert_eq!(c, t.checksum(), "TCP checksum");
        }
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let c = u
                .to_header()
                .calc_checksum_ipv4(&h, u.payload())
                .expect("udp checksum");
            assert_eq!(c, u.checksum(), "UDP checksum");
        }
        Some(TransportSlice::Icmpv4(i)) => {
            assert!(checksum::verify(i.slice()), "ICMP checksum");
        }
        _ => {}
    }
    s
}
