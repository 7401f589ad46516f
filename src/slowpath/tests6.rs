//! Tests of [`super::SlowPath::handle`] for IPv6: Neighbour Discovery for frontends and the
//! interface's `address6`, the IPv6 neighbour table, ICMPv6 echo with the health semantics of
//! IPv4, on frames built by the wire builders and golden frames, checked with etherparse.

use super::*;
use crate::wire::golden6::{self, bytes, CLIENT, SERVER};
use crate::wire::{Icmpv6Packet, Ipv6Packet};
use etherparse::{Icmpv6Type, NetSlice, SlicedPacket, TransportSlice};
use ratelimit::NANOS_PER_SEC;

const OUR_MAC: MacAddr = MacAddr([0x02, 0x66, 0x77, 0x88, 0x99, 0xaa]);
const PEER_MAC: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
/// The VIP (the golden frames' server), on-link of `address6`.
const VIP6: Ipv6Addr = SERVER;
const DOWN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 3);
const ROUTED6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 4);
const OWN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0xfe);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x11);
const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

fn slow_path() -> SlowPath {
    let dc = SlowPathInterface::new("dc", OUR_MAC, Ipv4Addr::new(10, 1, 0, 2), 24, None).with_ipv6(
        OWN6,
        64,
        Some(GW6),
    );
    let v4only = SlowPathInterface::new(
        "be",
        MacAddr([2, 0, 0, 0, 0, 0xbb]),
        Ipv4Addr::new(10, 2, 0, 2),
        24,
        None,
    );
    let fe = |addr: Ipv6Addr, iface, up| SlowPathFrontend {
        addr: addr.into(),
        iface,
        any_member_up: up,
    };
    SlowPath::new(
        SlowPathConfig::new(
            vec![dc, v4only],
            vec![
                fe(VIP6, Some(0), true),
                fe(DOWN6, Some(0), false),
                fe(ROUTED6, None, true),
            ],
        ),
        0,
    )
}

/// A solicitation for `target` from the peer, as a Linux host sends it (to the solicited-node
/// group, with its link-layer address).
fn ns(target: Ipv6Addr) -> Vec<u8> {
    nd::solicit(PEER_MAC, None, PEER6, target)
}

/// Parses an Ethernet/IPv6/ICMPv6 frame with etherparse, checking the ICMPv6 checksum:
/// (destination MAC, source MAC, source, destination, hop limit, type).
fn parse6(f: &[u8]) -> ([u8; 6], [u8; 6], Ipv6Addr, Ipv6Addr, u8, Icmpv6Type) {
    let p = SlicedPacket::from_ethernet(f).expect("etherparse accepts the frame");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link else {
        panic!("no Ethernet")
    };
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!("no IPv6")
    };
    let h = ip.header();
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
        panic!("no ICMPv6")
    };
    let (src, dst) = (h.source_addr(), h.destination_addr());
    let want = icmp
        .header()
        .icmp_type
        .calc_checksum(src.octets(), dst.octets(), icmp.payload())
        .unwrap();
    assert_eq!(icmp.header().checksum, want, "ICMPv6 checksum");
    let t = icmp.header().icmp_type;
    (eth.destination(), eth.source(), src, dst, h.hop_limit(), t)
}

#[test]
fn solicitation_for_an_ipv6_vip_is_answered_with_our_mac() {
    let mut sp = slow_path();
    for target in [VIP6, DOWN6] {
        let mut f = ns(target);
        assert_eq!(&f[..3], &[0x33, 0x33, 0xff], "multicast solicitation");
        let out = match sp.handle(Exception::NeighbourDiscovery, &mut f, 0, 0) {
            Action::SendOnPort { iface: 0, frame } => frame,
            other => panic!("{other:?}"),
        };
        let (dmac, smac, src, dst, hops, _) = parse6(&out);
        assert_eq!((dmac, smac), (PEER_MAC.0, OUR_MAC.0));
        assert_eq!((src, dst, hops), (target, PEER6, 255));
        let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(m.msg_type(), 136);
        assert_eq!(m.nd_target(), Some(target));
        assert_eq!(m.nd_flags(), 0x60, "solicited + override");
        assert_eq!(m.nd_ll_addr(2).unwrap(), Some(OUR_MAC));
    }
    // The asker is learned from its source link-layer option (passive: it asked for us).
    assert_eq!(sp.neighbours6().get(PEER6).unwrap().mac, Some(PEER_MAC));
    assert_eq!(sp.neighbour_map().get6(PEER6), Some((PEER_MAC, 0)));
    assert_eq!(sp.counters().nd_adverts, 2);
    assert_eq!(sp.counters().neighbours_learned, 1);
}

#[test]
fn solicitations_not_for_a_bound_vip_are_not_answered() {
    let mut sp = slow_path();
    let nd = Exception::NeighbourDiscovery;
    // The interface's own address and link-local addresses: the kernel's.
    for target in [OWN6, Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1)] {
        assert_eq!(
            sp.handle(nd, &mut ns(target), 0, 0),
            Action::ToKernel { iface: 0 }
        );
    }
    // A routed VIP, another host, a VIP on an interface it is not bound to.
    for target in [ROUTED6, Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x99)] {
        assert_eq!(
            sp.handle(nd, &mut ns(target), 0, 0),
            Action::Drop(SlowPathDrop::NotForUs)
        );
    }
    assert_eq!(
        sp.handle(nd, &mut ns(VIP6), 1, 0),
        Action::Drop(SlowPathDrop::NotForUs),
        "the VIP is bound to dc, not be"
    );
    // Our own frame looped back; another host claiming our address; a router advertisement.
    let mut own = nd::solicit(OUR_MAC, None, PEER6, VIP6);
    assert_eq!(
        sp.handle(nd, &mut own, 0, 0),
        Action::Drop(SlowPathDrop::OwnFrame)
    );
    let mut conflict = nd::solicit(PEER_MAC, None, VIP6, PEER6);
    assert_eq!(
        sp.handle(nd, &mut conflict, 0, 0),
        Action::Drop(SlowPathDrop::AddressConflict)
    );
    let mut f = ns(VIP6);
    let last = f.len() - 1;
    f[last] ^= 1;
    assert_eq!(
        sp.handle(nd, &mut f, 0, 0),
        Action::Drop(SlowPathDrop::BadChecksum)
    );
    assert_eq!(sp.counters().nd_adverts, 0);
}

#[test]
fn advertisements_go_to_the_kernel_and_teach_the_table() {
    let mut sp = slow_path();
    let nd = Exception::NeighbourDiscovery;
    let mut na = nd::unsolicited_adverts(PEER_MAC, None, &[PEER6]).remove(0);
    assert_eq!(sp.handle(nd, &mut na, 0, 0), Action::ToKernel { iface: 0 });
    assert_eq!(sp.neighbour_map().get6(PEER6), Some((PEER_MAC, 0)));
    // Another host advertising a VIP: a conflict, nothing learned, nothing passed on.
    let mut claim = nd::unsolicited_adverts(PEER_MAC, None, &[VIP6]).remove(0);
    assert_eq!(
        sp.handle(nd, &mut claim, 0, 0),
        Action::Drop(SlowPathDrop::AddressConflict)
    );
    assert!(sp.neighbours6().get(VIP6).is_none());
    assert_eq!(sp.counters().dropped(SlowPathDrop::AddressConflict), 1);
}

#[test]
fn neighbour_answers_share_the_arp_rate() {
    let cfg = SlowPathConfig {
        arp_rate: RateSpec::new(1, 2),
        ..slow_path_config()
    };
    let mut sp = SlowPath::new(cfg, 0);
    let nd = Exception::NeighbourDiscovery;
    let sent = (0..4)
        .filter(|_| {
            matches!(
                sp.handle(nd, &mut ns(VIP6), 0, 0),
                Action::SendOnPort { .. }
            )
        })
        .count();
    assert_eq!(sent, 2);
    assert_eq!(sp.counters().dropped(SlowPathDrop::RateLimited), 2);
    assert!(matches!(
        sp.handle(nd, &mut ns(VIP6), 0, NANOS_PER_SEC),
        Action::SendOnPort { .. }
    ));
}

fn slow_path_config() -> SlowPathConfig {
    let sp = slow_path();
    let frontends = [VIP6, DOWN6, ROUTED6]
        .iter()
        .map(|a| *sp.frontends().get(*a).unwrap())
        .collect();
    SlowPathConfig::new(sp.interfaces().to_vec(), frontends)
}

#[test]
fn echo_to_a_vip_follows_its_health() {
    let mut sp = slow_path();
    let mut f = bytes(golden6::ECHO_REQUEST);
    let n = bytes(golden6::ECHO_REPLY).len();
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut f, 0, 0),
        Action::ReplyInPlace { iface: 0, len: n }
    );
    assert_eq!(&f[..n], &bytes(golden6::ECHO_REPLY)[..]);
    assert_eq!(sp.counters().echo_replies, 1);
    // All members down: address unreachable from the VIP, to the sender's MAC, quoting the echo.
    assert!(sp.set_frontend_up(VIP6, false));
    let req = bytes(golden6::ECHO_REQUEST);
    let out = match sp.handle(Exception::IcmpToFrontend, &mut req.clone(), 0, 0) {
        Action::SendOnPort { iface: 0, frame } => frame,
        other => panic!("{other:?}"),
    };
    let (dmac, smac, src, dst, _, t) = parse6(&out);
    assert_eq!(
        (dmac, smac),
        (
            req[6..12].try_into().unwrap(),
            req[0..6].try_into().unwrap()
        )
    );
    assert_eq!((src, dst), (VIP6, CLIENT));
    assert_eq!(
        t,
        Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Address)
    );
    assert_eq!(sp.counters().unreachable_sent, 1);
    // Not a frontend; a bad checksum.
    let mut other = bytes(golden6::ECHO_REQUEST);
    Ipv6Packet::new_unchecked(&mut other[14..]).set_dst_addr(PEER6);
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut other, 0, 0),
        Action::Drop(SlowPathDrop::NoFlow)
    );
    let mut bad = bytes(golden6::ECHO_REQUEST);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut bad, 0, 0),
        Action::Drop(SlowPathDrop::BadChecksum)
    );
}

#[test]
fn echo_replies_share_the_icmp_rate() {
    let cfg = SlowPathConfig {
        icmp_rate: RateSpec::new(1, 3),
        ..slow_path_config()
    };
    let mut sp = SlowPath::new(cfg, 0);
    let replied = (0..5)
        .filter(|_| {
            let mut f = bytes(golden6::ECHO_REQUEST);
            matches!(
                sp.handle(Exception::IcmpToFrontend, &mut f, 0, 0),
                Action::ReplyInPlace { .. }
            )
        })
        .count();
    assert_eq!(replied, 3);
    assert_eq!(sp.counters().dropped(SlowPathDrop::RateLimited), 2);
}

#[test]
fn ipv6_neighbours_are_solicited_learned_and_published() {
    let mut sp = slow_path();
    let g0 = sp.neighbour_generation();
    sp.neighbours6_mut().set_wanted([(PEER6, 0), (GW6, 0)], 0);
    assert!(
        !sp.neighbours6_mut()
            .want(Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1), 0, 0),
        "off-link"
    );
    let frames = sp.poll_frames(0);
    assert_eq!(frames.len(), 2);
    for (iface, f) in &frames {
        assert_eq!(*iface, 0);
        let (dmac, smac, src, dst, hops, t) = parse6(f);
        assert_eq!(t.type_u8(), 135);
        assert_eq!((smac, src, hops), (OUR_MAC.0, OWN6, 255));
        assert_eq!(&dmac[..3], &[0x33, 0x33, 0xff], "solicited-node group");
        assert_eq!(dst.segments()[..6], [0xff02, 0, 0, 0, 0, 1]);
    }
    // The answer is learned and published (the generation moves).
    let mut na = nd::unsolicited_adverts(PEER_MAC, None, &[PEER6]).remove(0);
    sp.handle(Exception::NeighbourDiscovery, &mut na, 0, 0);
    assert_ne!(sp.neighbour_generation(), g0);
    let map = sp.neighbour_map();
    assert_eq!(map.generation(), sp.neighbour_generation());
    assert_eq!(map.get6(PEER6), Some((PEER_MAC, 0)));
    assert_eq!(map.get6(GW6), None, "not resolved yet");
    // Its refresh goes to its cached MAC and its own address (unicast), 45 s later.
    let refresh = sp.poll_frames(45 * NANOS_PER_SEC);
    let (dmac, _, _, dst, _, _) = parse6(
        &refresh
            .iter()
            .find(|(_, f)| f[..6] == PEER_MAC.0)
            .expect("unicast refresh")
            .1,
    );
    assert_eq!((dmac, dst), (PEER_MAC.0, PEER6));
}

#[test]
fn unsolicited_adverts_announce_bound_ipv6_frontends() {
    let sp = slow_path();
    let frames = sp.unsolicited_adverts(0);
    let mut targets: Vec<Ipv6Addr> = frames
        .iter()
        .map(|f| {
            let (dmac, smac, src, dst, _, t) = parse6(f);
            assert_eq!(t.type_u8(), 136);
            let m = Icmpv6Packet::new_checked(&f[14 + 40..]).unwrap();
            assert_eq!(m.nd_flags(), 0x20, "override only");
            assert_eq!(
                (dmac, smac, dst),
                (
                    [0x33, 0x33, 0, 0, 0, 1],
                    OUR_MAC.0,
                    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
                )
            );
            src
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![VIP6, DOWN6],
        "bound frontends only, no routed one"
    );
    assert!(sp.gratuitous_arps(0).is_empty(), "no IPv4 frontend");
    assert!(sp.unsolicited_adverts(1).is_empty());
}

#[test]
fn ipv6_hop_limit_and_too_big_are_answered_from_address6() {
    let mut sp = slow_path();
    let mut f = bytes(golden6::ECHO_REQUEST);
    let out = match sp.handle(Exception::TtlExceeded, &mut f, 0, 0) {
        Action::SendOnPort { iface: 0, frame } => frame,
        other => panic!("{other:?}"),
    };
    let (_, _, src, dst, _, t) = parse6(&out);
    assert_eq!((src, dst), (OWN6, CLIENT));
    assert!(matches!(t, Icmpv6Type::TimeExceeded(_)));
    let out = match sp.handle(
        Exception::TooBig { mtu: 1400 },
        &mut bytes(golden6::ECHO_REQUEST),
        0,
        0,
    ) {
        Action::SendOnPort { iface: 0, frame } => frame,
        other => panic!("{other:?}"),
    };
    assert_eq!(parse6(&out).5, Icmpv6Type::PacketTooBig { mtu: 1400 });
    assert_eq!(sp.counters().time_exceeded_sent, 1);
    assert_eq!(sp.counters().frag_needed_sent, 1);
    // Without an address6 there is no source to answer from.
    assert_eq!(
        sp.handle(
            Exception::TtlExceeded,
            &mut bytes(golden6::ECHO_REQUEST),
            1,
            0
        ),
        Action::Drop(SlowPathDrop::IcmpSuppressed)
    );
}

#[test]
fn a_reload_announces_an_added_ipv6_frontend_and_keeps_ipv6_neighbours() {
    let mut sp = slow_path();
    let mut na = nd::unsolicited_adverts(PEER_MAC, None, &[PEER6]).remove(0);
    sp.handle(Exception::NeighbourDiscovery, &mut na, 0, 0);
    let added = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 5);
    let mut cfg = slow_path_config();
    cfg.frontends.push(SlowPathFrontend {
        addr: added.into(),
        iface: Some(0),
        any_member_up: false,
    });
    sp.reconfigure(cfg, NANOS_PER_SEC);
    let announced: Vec<Ipv6Addr> = sp
        .unsolicited_adverts(0)
        .iter()
        .map(|f| parse6(f).2)
        .collect();
    assert!(announced.contains(&added), "{announced:?}");
    assert_eq!(sp.neighbour_map().get6(PEER6), Some((PEER_MAC, 0)));
    // The added VIP is answered at once.
    assert!(matches!(
        sp.handle(
            Exception::NeighbourDiscovery,
            &mut ns(added),
            0,
            NANOS_PER_SEC
        ),
        Action::SendOnPort { .. }
    ));
}
