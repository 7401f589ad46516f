//! Tests of [`super`] on the golden Packet Too Big (made by a real stack's packet library,
//! `wire::golden6`): every delivery equals the error the builder makes about the translated
//! packet.

use super::*;
use crate::wire::builder::{icmpv6_error, rewrite_endpoint_v6, Endpoint, Icmpv6ErrorKind, L2Spec};
use crate::wire::golden6::{self, bytes, CLIENT, SERVER};
use crate::wire::{MacAddr, UdpPacket};
use proptest::prelude::*;
use std::net::Ipv6Addr;

const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
const MEMBER: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 7, 0, 0, 0, 0x42);
const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 0x80);

fn flow(f: &[u8]) -> QuotedFlow6 {
    match quoted_flow6(f) {
        Quote6::Flow(q) => q,
        other => panic!("no flow: {other:?}"),
    }
}

/// The golden error's frame rebuilt by the builder about the quoted packet translated by
/// `which`/`addr`/`port` (the hop limit as the delivery leaves it: 63).
fn built(which: Endpoint, addr: Ipv6Addr, port: u16) -> Vec<u8> {
    let golden = bytes(golden6::PTB);
    let mut quoted = golden[14 + 48..].to_vec();
    rewrite_endpoint_v6(&mut quoted, which, addr, Some(port)).unwrap();
    let l2 = L2Spec {
        src_mac: MacAddr::from_bytes(&golden[6..12]),
        dst_mac: MacAddr::from_bytes(&golden[..6]),
        vlan: None,
    };
    let mut out = [0u8; 256];
    let kind = Icmpv6ErrorKind::PacketTooBig { mtu: 1400 };
    let n = icmpv6_error(&mut out, &l2, ROUTER, kind, &quoted).unwrap();
    out[14 + 7] = 63;
    out[..n].to_vec()
}

#[test]
fn reads_the_quote() {
    let f = bytes(golden6::PTB);
    let q = flow(&f);
    assert_eq!(
        (q.l3, q.icmp, q.inner, q.inner_l4, q.end),
        (14, 54, 62, 102, f.len())
    );
    assert_eq!(
        (q.outer_src, q.outer_dst),
        (ROUTER.to_bits(), CLIENT.to_bits())
    );
    assert_eq!(
        (q.src, q.dst, q.sport, q.dport, q.proto),
        (CLIENT.to_bits(), SERVER.to_bits(), 1000, 2000, 17)
    );
    assert_eq!(
        q.client_key(),
        FlowKey6::new(SERVER.to_bits(), CLIENT.to_bits(), 2000, 1000, 17)
    );
    assert_eq!(
        q.quoted_key(),
        FlowKey6::new(CLIENT.to_bits(), SERVER.to_bits(), 1000, 2000, 17)
    );
    assert_eq!(
        quoted_flow6(&bytes(golden6::ECHO_REQUEST)),
        Quote6::NotFlowError
    );
    assert_eq!(quoted_flow6(&bytes(golden6::NS)), Quote6::NotFlowError);
    // A quote of an ICMPv6 packet carries no ports of a flow.
    let mut icmp = f.clone();
    icmp[62 + 6] = 58;
    assert_eq!(quoted_flow6(&icmp), Quote6::NoPorts);
    // A quote cut inside its IPv6 header.
    let mut short = f[..80].to_vec();
    short[18..20].copy_from_slice(&26u16.to_be_bytes());
    assert_eq!(quoted_flow6(&short), Quote6::Malformed);
}

#[test]
fn error_to_a_frontend_goes_to_the_member_like_the_builder_makes_it() {
    // The client's address is a VIP here: the quoted packet left the MUX from it (a NAT reply).
    let mut f = bytes(golden6::PTB);
    let q = flow(&f);
    rewrite_quote6(&mut f, &q, End6::Src, MEMBER.to_bits(), 8080);
    rewrite_outer6(&mut f, &q, End6::Dst, Some(MEMBER.to_bits()));
    assert_eq!(f, built(Endpoint::Src, MEMBER, 8080));
    // And its checksums verify.
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(m.verify_checksum(ROUTER, MEMBER));
}

#[test]
fn error_in_transit_goes_to_the_client_reverse_translated() {
    // The server is a member and 2000 its backend port; the client sent to VIP:80.
    let mut f = bytes(golden6::PTB);
    let q = flow(&f);
    rewrite_quote6(&mut f, &q, End6::Dst, VIP.to_bits(), 80);
    rewrite_outer6(&mut f, &q, End6::Src, None);
    assert_eq!(f, built(Endpoint::Dst, VIP, 80));
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    let inner = m.inner_ipv6().unwrap();
    let u = UdpPacket::new_checked(inner.payload()).unwrap();
    assert!(u.verify_checksum_v6(CLIENT, VIP));
}

proptest! {
    #[test]
    fn mutated_errors_never_panic_or_write_past_the_packet(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        addr in any::<u128>(),
        port in any::<u16>(),
    ) {
        let mut f = bytes(golden6::PTB);
        for (i, v) in flips {
            let i = i % f.len();
            f[i] = v;
        }
        let cut = (cut % (f.len() + 1)).max(40);
        f.truncate(cut);
        f.extend_from_slice(&[0xee; 8]);
        if let Quote6::Flow(q) = quoted_flow6(&f) {
            let before = f.clone();
            for end in [End6::Src, End6::Dst] {
                rewrite_quote6(&mut f, &q, end, addr, port);
                rewrite_outer6(&mut f, &q, end, Some(addr));
            }
            prop_assert_eq!(&f[q.end..], &before[q.end..]);
        }
    }
}
