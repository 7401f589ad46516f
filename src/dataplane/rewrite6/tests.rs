//! Tests of [`super`]: every rewrite against the `wire` builders on golden frames (made by a real
//! stack's packet library, `wire::golden6`), and properties on mutated frames.

use super::*;
use crate::dataplane::classify6::{classify6, AddressList6};
use crate::wire::builder::{rewrite_endpoint_v6, Endpoint};
use crate::wire::golden6::{self, bytes, client_frame, CLIENT, SERVER};
use crate::wire::{FrameSpec, Icmpv6Packet, Ipv4Packet, Ipv6Packet, MacAddr, VecBuf};
use proptest::prelude::*;
use std::net::Ipv6Addr;

const MEMBER: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 7, 0, 0, 0, 0x42);
const OUR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 7, 0, 0, 0, 1);
const SRC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const DST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);

fn hop(mtu: u16) -> Hop {
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&DST_MAC.0);
    macs[6..].copy_from_slice(&SRC_MAC.0);
    Hop {
        port: 1,
        src_mac: SRC_MAC,
        dst_mac: DST_MAC,
        macs,
        mtu,
        src_addr: 0,
    }
}

fn target(floating: bool, encap: DsrEncapsulation) -> Target6 {
    Target6 {
        addr: MEMBER.to_bits(),
        port: 8080,
        floating,
        encap,
        gue_port: GUE_PORT,
        l4_delta: None,
    }
}

/// The golden client-to-VIP frames rewriting applies to: TCP SYN, UDP behind extension headers,
/// plain UDP, ICMPv6 echo (Ethernet included).
fn client_frames() -> Vec<Vec<u8>> {
    vec![
        client_frame(&bytes(golden6::TCP_SYN), None),
        client_frame(&bytes(golden6::UDP_EXT), None),
        client_frame(&bytes(golden6::UDP), None),
        bytes(golden6::ECHO_REQUEST),
    ]
}

fn meta(f: &[u8]) -> Meta6 {
    classify6(f, &AddressList6::default()).expect("classifies")
}

/// The TCP, UDP or ICMPv6 checksum of the Ethernet/IPv6 frame `f` verifies.
fn checksum_ok(f: &[u8]) -> bool {
    let Ok(ip) = Ipv6Packet::new_checked(&f[14..]) else {
        return false;
    };
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let Some((u, l4)) = ip.upper_layer_payload() else {
        return false;
    };
    match u.protocol {
        next_header::TCP => TcpPacket::new_checked(l4).is_ok_and(|t| t.verify_checksum_v6(s, d)),
        next_header::UDP => UdpPacket::new_checked(l4).is_ok_and(|p| p.verify_checksum_v6(s, d)),
        next_header::ICMPV6 => Icmpv6Packet::new_checked(l4).is_ok_and(|p| p.verify_checksum(s, d)),
        _ => true,
    }
}

/// What the builders make of `f` for one endpoint rewrite: NAT66 of the wire room, hop limit − 1,
/// the hop's MACs.
fn by_builder(f: &[u8], which: Endpoint, addr: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut want = f.to_vec();
    let m = meta(f);
    let port = matches!(m.key.proto, 6 | 17).then_some(port);
    rewrite_endpoint_v6(&mut want[14..], which, addr, port).unwrap();
    want[14 + 7] -= 1;
    want[..12].copy_from_slice(&hop(1500).macs);
    want
}

/// `f` classified and delivered to `t` in place (no encapsulation): the frame sent.
fn delivered(f: &[u8], t: &Target6) -> Vec<u8> {
    let mut b = VecBuf::from_slice(f);
    let v = to_member6(&mut b, &meta(f), t, &hop(1500), 0, 0);
    assert_eq!(v, Verdict::Forward { port: 1 });
    b.to_vec()
}

#[test]
fn nat66_to_member_matches_the_builder() {
    for f in client_frames() {
        let out = delivered(&f, &target(false, DsrEncapsulation::None));
        assert_eq!(out, by_builder(&f, Endpoint::Dst, MEMBER, 8080));
        assert!(checksum_ok(&out));
    }
}

#[test]
fn nat66_reply_matches_the_builder() {
    for f in client_frames() {
        // The member's reply: the client frame with source and destination swapped.
        let mut r = f.clone();
        let (s, d) = (14 + 8..14 + 24, 14 + 24..14 + 40);
        let src: Vec<u8> = r[s.clone()].to_vec();
        r.copy_within(d.clone(), s.start);
        r[d].copy_from_slice(&src);
        let m = meta(&r);
        let (vip, vip_port) = (Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 0x80), 443);
        let mut b = VecBuf::from_slice(&r);
        let v = reply_to_client6(&mut b, &m, vip.to_bits(), vip_port, &hop(1500));
        assert_eq!(v, Verdict::Forward { port: 1 });
        assert_eq!(b.to_vec(), by_builder(&r, Endpoint::Src, vip, vip_port));
        assert!(checksum_ok(&b.to_vec()));
    }
}

#[test]
fn floating_ip_rewrites_macs_port_and_hop_limit_only() {
    for f in client_frames() {
        let m = meta(&f);
        let out = delivered(&f, &target(true, DsrEncapsulation::None));
        let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (CLIENT, SERVER));
        assert_eq!(ip.hop_limit(), 63);
        assert_eq!(&out[..12], &hop(1500).macs);
        assert!(checksum_ok(&out));
        if matches!(m.key.proto, 6 | 17) {
            assert_eq!(
                &out[usize::from(m.l4) + 2..usize::from(m.l4) + 4],
                &[0x1f, 0x90]
            );
        }
    }
}

/// The encapsulation the builders make of the inner packet of `f` (from `l3`).
fn encap_by_builder(f: &[u8], l3: usize, encap: DsrEncapsulation, hash: u32) -> Vec<u8> {
    let mut b = VecBuf::with_room(128, &f[l3..], 0);
    let spec = EncapSpecV6 {
        outer_src: OUR_V6,
        outer_dst: MEMBER,
        hop_limit: 64,
    };
    match encap {
        DsrEncapsulation::Gue => prepend_gue6(&mut b, &spec, hash).unwrap(),
        _ => prepend_ip6ip6(&mut b, &spec, hash).unwrap(),
    };
    let l2 = L2Spec {
        src_mac: SRC_MAC,
        dst_mac: DST_MAC,
        vlan: None,
    };
    prepend_ethernet(&mut b, &l2, ethertype::IPV6).unwrap();
    b.to_vec()
}

#[test]
fn ip6ip6_and_gue6_match_the_builders() {
    for encap in [DsrEncapsulation::Ipip, DsrEncapsulation::Gue] {
        for f in client_frames() {
            let m = meta(&f);
            let mut t = target(true, encap);
            t.port = m.key.dst_port; // the inner packet as received
            let mut b = VecBuf::with_room(128, &f, 0);
            let v = to_member6(&mut b, &m, &t, &hop(1500), OUR_V6.to_bits(), 0xabcd_1234);
            assert_eq!(v, Verdict::Forward { port: 1 });
            assert_eq!(b.to_vec(), encap_by_builder(&f, 14, encap, 0xabcd_1234));
        }
    }
}

#[test]
fn gue6_to_another_port_keeps_the_outer_checksum_valid() {
    let f = client_frame(&bytes(golden6::TCP_SYN), None);
    let m = meta(&f);
    let mut t = target(true, DsrEncapsulation::Gue);
    t.gue_port = 7777;
    let mut b = VecBuf::with_room(128, &f, 0);
    let v = to_member6(&mut b, &m, &t, &hop(1500), OUR_V6.to_bits(), 5);
    assert_eq!(v, Verdict::Forward { port: 1 });
    let out = b.to_vec();
    assert!(checksum_ok(&out));
    let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(u.dst_port(), 7777);
    // The inner packet got the backend port, its checksum still right.
    let inner = &u.payload()[4..];
    assert!(checksum_ok(&client_frame(inner, None)));
    assert_eq!(&inner[42..44], &[0x1f, 0x90]);
}

#[test]
fn ipv4_inner_over_ipv6_matches_the_builder() {
    let f = FrameSpec::udp(
        "192.0.2.1:1000".parse().unwrap(),
        "10.1.0.100:53".parse().unwrap(),
        b"four",
    )
    .to_vec();
    let outer = Outer6 {
        src: OUR_V6.to_bits(),
        dst: MEMBER.to_bits(),
        gue_port: GUE_PORT,
        flow_hash: 99,
    };
    let inner = Inner { l3: 14, vlan: None };
    for encap in [DsrEncapsulation::Ipip, DsrEncapsulation::Gue] {
        let mut b = VecBuf::with_room(128, &f, 0);
        let v = encapsulate6(&mut b, &inner, &hop(1500), encap, &outer);
        assert_eq!(v, Verdict::Forward { port: 1 });
        assert_eq!(b.to_vec(), encap_by_builder(&f, 14, encap, 99));
    }
    // Over the MTU: with DF (FrameSpec sets it) fragmentation needed, without it dropped.
    let mut b = VecBuf::with_room(128, &f, 0);
    let v = encapsulate6(&mut b, &inner, &hop(60), DsrEncapsulation::Ipip, &outer);
    assert_eq!(v, Verdict::ToSlowPath(Exception::TooBig { mtu: 20 }));
    let mut nodf = f.clone();
    let mut ip = Ipv4Packet::new_unchecked(&mut nodf[14..]);
    ip.set_dont_frag(false);
    ip.fill_checksum();
    let mut b = VecBuf::with_room(128, &nodf, 0);
    let v = encapsulate6(&mut b, &inner, &hop(60), DsrEncapsulation::Ipip, &outer);
    assert_eq!(v, Verdict::Drop(DropReason::TooBig));
    assert_eq!(b.to_vec(), nodf);
}

#[test]
fn too_big_reports_the_usable_mtu_at_least_1280() {
    let f = client_frame(&bytes(golden6::TCP_SYN), None); // 64 bytes of IPv6
    let m = meta(&f);
    let nat = target(false, DsrEncapsulation::None);
    let gue = target(true, DsrEncapsulation::Gue);
    let mut b = VecBuf::with_room(128, &f, 0);
    assert_eq!(
        to_member6(&mut b, &m, &nat, &hop(63), 0, 0),
        Verdict::ToSlowPath(Exception::TooBig { mtu: 1280 })
    );
    assert_eq!(b.to_vec(), f, "unchanged, to be quoted");
    assert_eq!(mtu_check6(&hop(1500), 1500, 0), None);
    assert_eq!(
        mtu_check6(&hop(1500), 1500, GUE6_OVERHEAD),
        Some(Verdict::ToSlowPath(Exception::TooBig { mtu: 1500 - 52 }))
    );
    assert_eq!(
        to_member6(&mut b, &m, &gue, &hop(100), 0, 0),
        Verdict::ToSlowPath(Exception::TooBig { mtu: 1280 })
    );
    assert_eq!(
        reply_to_client6(&mut b, &m, 0, 0, &hop(63)),
        Verdict::ToSlowPath(Exception::TooBig { mtu: 1280 })
    );
    assert_eq!(b.to_vec(), f);
    // No headroom for the outer headers: dropped, the frame as it was.
    let mut tight = VecBuf::with_room(20, &f, 0);
    assert_eq!(
        to_member6(
            &mut tight,
            &m,
            &target(true, DsrEncapsulation::Ipip),
            &hop(1500),
            0,
            0
        ),
        Verdict::Drop(DropReason::NoHeadroom)
    );
}

/// Golden frames to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut v = client_frames();
    v.push(client_frame(&bytes(golden6::FRAGMENT), None));
    v.push(bytes(golden6::PTB));
    v
}

fn any_encap() -> impl Strategy<Value = DsrEncapsulation> {
    prop_oneof![
        Just(DsrEncapsulation::None),
        Just(DsrEncapsulation::Ipip),
        Just(DsrEncapsulation::Gue)
    ]
}

proptest! {
    /// Rewrites of any mutation of a golden frame that classifies never panic, keep valid
    /// checksums valid, and never write past the packet.
    #[test]
    fn rewrites_keep_checksums_and_never_panic(
        seed in 0usize..6,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        floating in any::<bool>(),
        encap in any_encap(),
        addr in any::<u128>(),
        port in any::<u16>(),
        reply in any::<bool>(),
        mtu in 0u16..2000,
    ) {
        let mut f = seeds().swap_remove(seed);
        for (i, v) in flips {
            let i = i % f.len();
            f[i] = v;
        }
        let Ok(m) = classify6(&f, &AddressList6::default()) else {
            return Ok(());
        };
        let valid = checksum_ok(&f);
        let mut b = VecBuf::with_room(128, &f, 8);
        let t = Target6 { addr, port, floating, encap, gue_port: port, l4_delta: None };
        let v = if reply {
            reply_to_client6(&mut b, &m, addr, port, &hop(mtu))
        } else {
            to_member6(&mut b, &m, &t, &hop(mtu), !addr, port.into())
        };
        let out = b.to_vec();
        match v {
            Verdict::Forward { .. } => {
                if valid {
                    prop_assert!(checksum_ok(&out));
                }
                if !t.floating || t.encap == DsrEncapsulation::None || reply {
                    // In place: nothing past the packet changed.
                    let end = usize::from(m.l3) + m.ip_len as usize;
                    prop_assert_eq!(&out[end..], &f[end..]);
                }
            }
            _ => prop_assert_eq!(&out, &f),
        }
    }

    /// A flow's stored NAT66 delta ([`nat66_delta`]) gives exactly the bytes of the delta
    /// computed from the packet, for any member address and port, on any classifying mutation.
    #[test]
    fn the_flow_nat66_delta_gives_the_same_bytes(
        seed in 0usize..6,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        addr in any::<u128>(),
        port in any::<u16>(),
    ) {
        let mut f = seeds().swap_remove(seed);
        for (i, v) in flips {
            let i = i % f.len();
            f[i] = v;
        }
        let Ok(m) = classify6(&f, &AddressList6::default()) else {
            return Ok(());
        };
        let per_packet = Target6::nat(addr, port);
        let per_flow = Target6 { l4_delta: Some(nat66_delta(&m, addr, port)), ..per_packet };
        let send = |t: &Target6| {
            let mut b = VecBuf::from_slice(&f);
            let v = to_member6(&mut b, &m, t, &hop(1500), 0, 0);
            (v, b.to_vec())
        };
        prop_assert_eq!(send(&per_flow), send(&per_packet));
    }

    #[test]
    fn random_meta_never_panics(
        b in proptest::collection::vec(any::<u8>(), 0..120),
        l3 in 0u16..200,
        l4 in 0u16..200,
        ip_len in 0u32..300,
        proto in prop_oneof![Just(6u8), Just(17), Just(58), any::<u8>()],
        encap in any_encap(),
    ) {
        let key = crate::flow::FlowKey6 { proto, ..Default::default() };
        let m = Meta6 { key, l3, l4, ip_len, ..Meta6::default() };
        let mut buf = VecBuf::with_room(64, &b, 0);
        let _ = to_member6(&mut buf, &m, &target(false, encap), &hop(1500), 1, 2);
        let _ = to_member6(&mut buf, &m, &target(true, encap), &hop(1500), 1, 2);
        // A flow's stored delta (the fixed-offset path for TCP and UDP of the common shape).
        let flow = Target6 { l4_delta: Some(0x1234), ..target(false, encap) };
        let _ = to_member6(&mut buf, &m, &flow, &hop(1500), 1, 2);
        let _ = reply_to_client6(&mut buf, &m, 3, 4, &hop(1500));
        let inner = Inner { l3, vlan: None };
        let o = Outer6 { src: 1, dst: 2, gue_port: 9, flow_hash: 3 };
        let _ = encapsulate6(&mut buf, &inner, &hop(1500), encap, &o);
    }
}
