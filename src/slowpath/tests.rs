//! Tests of [`super::SlowPath::handle`] end to end, with frames built by the wire builders and
//! checked with etherparse (an independent parser), checksums included.

use super::*;
use crate::wire::{builder, FrameSpec, IcmpErrorKind, L2Spec, TcpFlags};
use etherparse::{Icmpv4Header, Icmpv4Slice, Ipv4Header, NetSlice, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use ratelimit::NANOS_PER_SEC;
use std::net::SocketAddrV4;

const MS: u64 = 1_000_000;
const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
const BE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xbb]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);
const DOWN_VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 101);
const OWN: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const DIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 11);

fn config() -> SlowPathConfig {
    SlowPathConfig::new(
        vec![
            SlowPathInterface::new("dc", OUR_MAC, OWN, 24, Some(ROUTER)),
            SlowPathInterface::new("be", BE_MAC, Ipv4Addr::new(10, 2, 0, 2), 24, None),
        ],
        vec![
            SlowPathFrontend {
                addr: VIP.into(),
                iface: Some(0),
                any_member_up: true,
            },
            SlowPathFrontend {
                addr: DOWN_VIP.into(),
                iface: Some(0),
                any_member_up: false,
            },
        ],
    )
}

fn slow_path() -> SlowPath {
    SlowPath::new(config(), 0)
}

/// An Ethernet frame from the router's MAC (PEER_MAC) to ours.
fn from_peer(mut spec: FrameSpec<'_>) -> Vec<u8> {
    spec.src_mac = PEER_MAC;
    spec.dst_mac = OUR_MAC;
    spec.to_vec()
}

fn echo(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    from_peer(FrameSpec {
        payload,
        ..FrameSpec::echo_request(CLIENT, dst, 0x1234, 7)
    })
}

/// Parses an Ethernet/IPv4/ICMP frame with etherparse, checking the IPv4 and ICMP checksums.
fn parse_icmp(f: &[u8]) -> ([u8; 6], [u8; 6], Ipv4Header, Icmpv4Slice<'_>) {
    let p = SlicedPacket::from_ethernet(f).expect("etherparse accepts the frame");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link else {
        panic!("no Ethernet")
    };
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("no IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.calc_header_checksum(), h.header_checksum, "IPv4 checksum");
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
        panic!("no ICMP")
    };
    let want = Icmpv4Header::with_checksum(icmp.icmp_type(), icmp.payload()).checksum;
    assert_eq!(icmp.checksum(), want, "ICMP checksum");
    (eth.destination(), eth.source(), h, icmp)
}

#[test]
fn drop_reason_table_is_consistent() {
    for (i, r) in SlowPathDrop::ALL.iter().enumerate() {
        assert_eq!(r.index(), i);
    }
    let mut names: Vec<_> = SlowPathDrop::ALL.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), SlowPathDrop::COUNT);
}

#[test]
fn arp_for_vip_is_answered_and_own_address_goes_to_kernel() {
    let mut sp = slow_path();
    let client = Ipv4Addr::new(10, 1, 0, 50);
    let mut req = vec![0u8; 60];
    builder::arp_request(&mut req, PEER_MAC, None, client, VIP).unwrap();
    match sp.handle(Exception::Arp, &mut req, 0, 0) {
        Action::ReplyInPlace { iface: 0, len: 60 } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(&req[0..6], &PEER_MAC.0);
    assert_eq!(
        &req[14 + 8..14 + 14],
        &OUR_MAC.0,
        "sender MAC is the port's"
    );
    assert_eq!(&req[14 + 14..14 + 18], &VIP.octets());
    let mut own = vec![0u8; 60];
    builder::arp_request(&mut own, PEER_MAC, None, client, OWN).unwrap();
    assert_eq!(
        sp.handle(Exception::Arp, &mut own, 0, 0),
        Action::ToKernel { iface: 0 }
    );
    let c = sp.counters();
    assert_eq!(
        (c.arp_replies, c.to_kernel, c.neighbours_learned),
        (1, 1, 1)
    );
    assert_eq!(sp.neighbours().snapshot().get(client), Some((PEER_MAC, 0)));
    assert_eq!(sp.gratuitous_arps(0).len(), 2);
}

#[test]
fn neighbour_refresh_through_slow_path_poll() {
    let mut sp = slow_path();
    assert!(sp.neighbours_mut().want(DIP, 1, 0));
    let first = sp.poll(0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].iface, 1);
    assert_eq!(first[0].src_mac, BE_MAC);
    // The backend answers: the reply goes to the kernel and resolves the entry.
    let mut reply = vec![0u8; 60];
    builder::arp_request(&mut reply, PEER_MAC, None, DIP, Ipv4Addr::new(10, 2, 0, 2)).unwrap();
    reply[14 + 7] = 2;
    let g = sp.neighbours().generation();
    assert_eq!(
        sp.handle(Exception::Arp, &mut reply, 1, 500 * MS),
        Action::ToKernel { iface: 1 }
    );
    assert!(sp.neighbours().generation() > g);
    assert_eq!(sp.neighbours().snapshot().get(DIP), Some((PEER_MAC, 1)));
    assert!(sp.poll(44 * NANOS_PER_SEC).is_empty());
    assert_eq!(
        sp.poll(46 * NANOS_PER_SEC).len(),
        1,
        "refresh before expiry"
    );
}

#[test]
fn echo_reply_is_correct() {
    let mut sp = slow_path();
    let payload = b"abcdefghijklmnopqrstuvwxyz012345";
    let mut f = echo(VIP, payload);
    // Ethernet padding behind the datagram must not be echoed.
    f.extend_from_slice(&[0xee; 6]);
    let len = match sp.handle(Exception::IcmpToFrontend, &mut f, 0, 0) {
        Action::ReplyInPlace { iface: 0, len } => len,
        other => panic!("{other:?}"),
    };
    let (dst, src, ip, icmp) = parse_icmp(&f[..len]);
    assert_eq!((dst, src), (PEER_MAC.0, OUR_MAC.0));
    assert_eq!((ip.source, ip.destination), (VIP.octets(), CLIENT.octets()));
    match icmp.icmp_type() {
        etherparse::Icmpv4Type::EchoReply(e) => assert_eq!((e.id, e.seq), (0x1234, 7)),
        other => panic!("{other:?}"),
    }
    assert_eq!(icmp.payload(), payload);
    assert_eq!(sp.counters().echo_replies, 1);
}

#[test]
fn unreachable_when_all_members_down() {
    let mut sp = slow_path();
    let orig = echo(DOWN_VIP, b"ping");
    let mut f = orig.clone();
    let out = match sp.handle(Exception::IcmpToFrontend, &mut f, 0, 0) {
        Action::SendOnPort { iface: 0, frame } => frame,
        other => panic!("{other:?}"),
    };
    assert_eq!(f, orig, "input untouched");
    let (dst, src, ip, icmp) = parse_icmp(&out);
    assert_eq!((dst, src), (PEER_MAC.0, OUR_MAC.0));
    assert_eq!(
        (ip.source, ip.destination),
        (DOWN_VIP.octets(), CLIENT.octets())
    );
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (3, 1), "host unreachable");
    assert_eq!(
        icmp.payload(),
        &orig[14..14 + 28],
        "quotes header + 8 bytes"
    );
    // Health comes back: echo answered.
    assert!(sp.set_frontend_up(DOWN_VIP, true));
    let mut f = orig.clone();
    assert!(matches!(
        sp.handle(Exception::IcmpToFrontend, &mut f, 0, 0),
        Action::ReplyInPlace { .. }
    ));
    assert_eq!(sp.counters().unreachable_sent, 1);
}

#[test]
fn icmp_rate_limit_caps_on_virtual_clock() {
    let mut cfg = config();
    cfg.icmp_rate = RateSpec::new(10, 5);
    let mut sp = SlowPath::new(cfg, 0);
    let req = echo(VIP, b"x");
    let (mut sent, mut limited) = (0, 0);
    // 1000 requests over 2 virtual seconds: burst 5 + 10/s x 2 s.
    for k in 0..1000u64 {
        let mut f = req.clone();
        match sp.handle(Exception::IcmpToFrontend, &mut f, 0, k * 2 * MS) {
            Action::ReplyInPlace { .. } => sent += 1,
            Action::Drop(SlowPathDrop::RateLimited) => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        sent,
        5 + 19,
        "the 2 s mark itself is not reached (last at 1.998 s)"
    );
    assert_eq!(limited, 1000 - sent);
    assert_eq!(sp.counters().dropped(SlowPathDrop::RateLimited), limited);
    // Originated errors share the same budget.
    let big = big_udp(true);
    let mut f = big.clone();
    assert_eq!(
        sp.handle(Exception::TooBig { mtu: 1400 }, &mut f, 0, 1999 * MS),
        Action::Drop(SlowPathDrop::RateLimited)
    );
    let mut f = big.clone();
    assert!(matches!(
        sp.handle(Exception::TooBig { mtu: 1400 }, &mut f, 0, 2100 * MS),
        Action::SendOnPort { .. }
    ));
}

fn big_udp(df: bool) -> Vec<u8> {
    let payload = vec![0x5a; 1472];
    from_peer(FrameSpec {
        dont_frag: df,
        ..FrameSpec::udp(
            SocketAddrV4::new(CLIENT, 40000),
            SocketAddrV4::new(VIP, 53),
            &payload,
        )
    })
}

#[test]
fn frag_needed_carries_mtu_and_quoted_header() {
    let mut sp = slow_path();
    let orig = big_udp(true);
    let mut f = orig.clone();
    let out = match sp.handle(Exception::TooBig { mtu: 1480 }, &mut f, 0, 0) {
        Action::SendOnPort { iface: 0, frame } => frame,
        other => panic!("{other:?}"),
    };
    let (dst, src, ip, icmp) = parse_icmp(&out);
    assert_eq!((dst, src), (PEER_MAC.0, OUR_MAC.0));
    assert_eq!((ip.source, ip.destination), (OWN.octets(), CLIENT.octets()));
    match icmp.icmp_type() {
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
        ) => assert_eq!(next_hop_mtu, 1480),
        other => panic!("{other:?}"),
    }
    assert_eq!(icmp.payload(), &orig[14..14 + 28]);
    let (quoted, _) = Ipv4Header::from_slice(icmp.payload()).unwrap();
    assert_eq!(quoted.source, CLIENT.octets());
    assert_eq!(sp.counters().frag_needed_sent, 1);
    // Tiny MTUs are raised to 68; no DF -> silent drop.
    let mut f = orig.clone();
    let out = match sp.handle(Exception::TooBig { mtu: 10 }, &mut f, 0, 0) {
        Action::SendOnPort { frame, .. } => frame,
        other => panic!("{other:?}"),
    };
    assert_eq!(&out[14 + 20 + 6..14 + 20 + 8], &68u16.to_be_bytes());
    let mut f = big_udp(false);
    assert_eq!(
        sp.handle(Exception::TooBig { mtu: 1480 }, &mut f, 0, 0),
        Action::Drop(SlowPathDrop::TooBigNoDf)
    );
}

#[test]
fn time_exceeded_for_ttl_one() {
    let mut sp = slow_path();
    let orig = from_peer(FrameSpec {
        ttl: 1,
        vlan: Some(9),
        ..FrameSpec::tcp(
            SocketAddrV4::new(CLIENT, 40000),
            SocketAddrV4::new(VIP, 80),
            TcpFlags::SYN,
        )
    });
    let mut f = orig.clone();
    let out = match sp.handle(Exception::TtlExceeded, &mut f, 0, 0) {
        Action::SendOnPort { iface: 0, frame } => frame,
        other => panic!("{other:?}"),
    };
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    match p.vlan {
        Some(etherparse::VlanSlice::SingleVlan(v)) => assert_eq!(v.vlan_identifier().value(), 9),
        other => panic!("{other:?}"),
    }
    let (_, _, ip, icmp) = parse_icmp(&out);
    assert_eq!((ip.source, ip.destination), (OWN.octets(), CLIENT.octets()));
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (11, 0));
    assert_eq!(icmp.payload(), &orig[18..18 + 28]);
    assert_eq!(sp.counters().time_exceeded_sent, 1);
}

/// An ICMP error from `from` to the source of `original` (an Ethernet frame), sent by the peer.
fn icmp_error_about(original: &[u8], from: Ipv4Addr, kind: IcmpErrorKind) -> Vec<u8> {
    let l2 = L2Spec {
        src_mac: PEER_MAC,
        dst_mac: OUR_MAC,
        vlan: None,
    };
    let mut out = vec![0u8; 200];
    let n = builder::icmp_error(&mut out, &l2, from, kind, &original[14..]).unwrap();
    out.truncate(n);
    out
}

#[test]
fn no_icmp_error_about_icmp_errors_fragments_or_broadcasts() {
    let mut sp = slow_path();
    // An ICMP error arriving with TTL 1, or too big: never answered with another error.
    let reply = from_peer(FrameSpec::tcp(
        SocketAddrV4::new(VIP, 80),
        SocketAddrV4::new(CLIENT, 40000),
        TcpFlags::ACK,
    ));
    let mut err = icmp_error_about(&reply, ROUTER, IcmpErrorKind::PORT_UNREACHABLE);
    {
        let mut ip = crate::wire::Ipv4Packet::new_unchecked(&mut err[14..]);
        ip.set_dont_frag(true);
        ip.fill_checksum();
    }
    for why in [Exception::TtlExceeded, Exception::TooBig { mtu: 576 }] {
        let mut f = err.clone();
        assert_eq!(
            sp.handle(why, &mut f, 0, 0),
            Action::Drop(SlowPathDrop::IcmpSuppressed)
        );
    }
    // A non-first fragment.
    let mut frag = big_udp(false);
    {
        let mut ip = crate::wire::Ipv4Packet::new_unchecked(&mut frag[14..]);
        ip.set_frag_offset(1480);
        ip.fill_checksum();
    }
    assert_eq!(
        sp.handle(Exception::TtlExceeded, &mut frag, 0, 0),
        Action::Drop(SlowPathDrop::IcmpSuppressed)
    );
    // Broadcast / multicast sources, broadcast destination, multicast MAC.
    for (src, dst) in [
        (Ipv4Addr::BROADCAST, VIP),
        (Ipv4Addr::new(224, 0, 0, 5), VIP),
        (Ipv4Addr::new(10, 1, 0, 255), VIP),
        (Ipv4Addr::UNSPECIFIED, VIP),
        (CLIENT, Ipv4Addr::new(10, 1, 0, 255)),
    ] {
        let mut f = from_peer(FrameSpec {
            ttl: 1,
            ..FrameSpec::udp(SocketAddrV4::new(src, 1), SocketAddrV4::new(dst, 2), b"")
        });
        assert_eq!(
            sp.handle(Exception::TtlExceeded, &mut f, 0, 0),
            Action::Drop(SlowPathDrop::IcmpSuppressed),
            "{src} -> {dst}"
        );
    }
    let mut f = echo(VIP, b"");
    f[0..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(
        sp.handle(Exception::TtlExceeded, &mut f, 0, 0),
        Action::Drop(SlowPathDrop::IcmpSuppressed)
    );
    // An echo request (informational) may get an error.
    let mut f = echo(Ipv4Addr::new(203, 0, 113, 1), b"");
    assert!(matches!(
        sp.handle(Exception::TtlExceeded, &mut f, 0, 0),
        Action::SendOnPort { .. }
    ));
    assert_eq!(sp.counters().dropped(SlowPathDrop::IcmpSuppressed), 9);
}

#[test]
fn icmp_error_to_frontend_returns_the_client_to_vip_tuple() {
    let mut sp = slow_path();
    // The MUX sent VIP:80 -> CLIENT:40000 (a NAT reply); a router answers frag needed.
    let reply = from_peer(FrameSpec::tcp(
        SocketAddrV4::new(VIP, 80),
        SocketAddrV4::new(CLIENT, 40000),
        TcpFlags::ACK,
    ));
    let mut err = icmp_error_about(&reply, ROUTER, IcmpErrorKind::FragNeeded { mtu: 1400 });
    let orig = err.clone();
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut err, 0, 0),
        Action::DeliverToFlow {
            iface: 0,
            flow: FlowTuple {
                src: CLIENT,
                dst: VIP,
                protocol: 6,
                src_port: 40000,
                dst_port: 80,
            },
            side: IcmpSide::ToFrontend,
            error: IcmpErrorInfo {
                msg_type: 3,
                code: 4,
                next_hop_mtu: Some(1400),
            },
        }
    );
    assert_eq!(err, orig, "the error is forwarded unchanged by the caller");
    // The same kind of error handed over as IcmpError is recognised as to a frontend.
    let mut err = icmp_error_about(&reply, ROUTER, IcmpErrorKind::TTL_EXCEEDED);
    match sp.handle(Exception::IcmpError, &mut err, 0, 0) {
        Action::DeliverToFlow { side, error, .. } => {
            assert_eq!(side, IcmpSide::ToFrontend);
            assert_eq!(
                (error.msg_type, error.code, error.next_hop_mtu),
                (11, 0, None)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sp.counters().icmp_errors_to_flows, 2);
}

#[test]
fn transit_icmp_error_returns_the_quoted_tuple() {
    let mut sp = slow_path();
    // The MUX forwarded CLIENT:40000 -> DIP:8080 (NAT); the backend answers port unreachable.
    let fwd = from_peer(FrameSpec::udp(
        SocketAddrV4::new(CLIENT, 40000),
        SocketAddrV4::new(DIP, 8080),
        b"q",
    ));
    let mut err = icmp_error_about(&fwd, DIP, IcmpErrorKind::PORT_UNREACHABLE);
    match sp.handle(Exception::IcmpError, &mut err, 1, 0) {
        Action::DeliverToFlow {
            iface: 1,
            flow,
            side: IcmpSide::Transit,
            error,
        } => {
            assert_eq!(
                flow,
                FlowTuple {
                    src: CLIENT,
                    dst: DIP,
                    protocol: 17,
                    src_port: 40000,
                    dst_port: 8080,
                }
            );
            assert_eq!((error.msg_type, error.code), (3, 3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn icmp_errors_that_belong_to_no_flow_are_dropped() {
    let mut sp = slow_path();
    // Quoting an echo: not a load-balanced flow.
    let mut as_from_vip = echo(VIP, b"");
    {
        let mut ip = crate::wire::Ipv4Packet::new_unchecked(&mut as_from_vip[14..]);
        ip.set_src_addr(VIP);
        ip.set_dst_addr(CLIENT);
        ip.fill_checksum();
    }
    let mut e = icmp_error_about(&as_from_vip, ROUTER, IcmpErrorKind::HOST_UNREACHABLE);
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut e, 0, 0),
        Action::Drop(SlowPathDrop::NoFlow)
    );
    // Quoting a packet that did not come from that frontend.
    let other = from_peer(FrameSpec::tcp(
        SocketAddrV4::new(DOWN_VIP, 80),
        SocketAddrV4::new(CLIENT, 1),
        TcpFlags::ACK,
    ));
    let mut e = icmp_error_about(&other, ROUTER, IcmpErrorKind::HOST_UNREACHABLE);
    {
        let mut ip = crate::wire::Ipv4Packet::new_unchecked(&mut e[14..]);
        ip.set_dst_addr(VIP);
        ip.fill_checksum();
    }
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut e, 0, 0),
        Action::Drop(SlowPathDrop::NoFlow)
    );
    // A corrupted ICMP checksum.
    let reply = from_peer(FrameSpec::tcp(
        SocketAddrV4::new(VIP, 80),
        SocketAddrV4::new(CLIENT, 40000),
        TcpFlags::ACK,
    ));
    let mut e = icmp_error_about(&reply, ROUTER, IcmpErrorKind::PORT_UNREACHABLE);
    e[14 + 20 + 2] ^= 0xff;
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut e, 0, 0),
        Action::Drop(SlowPathDrop::BadChecksum)
    );
    // An echo to a non-frontend address.
    let mut f = echo(Ipv4Addr::new(10, 1, 0, 9), b"");
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut f, 0, 0),
        Action::Drop(SlowPathDrop::NotForUs)
    );
}

#[test]
fn appliance_fragments_and_unknown_interfaces() {
    let mut sp = slow_path();
    let mut f = echo(OWN, b"");
    assert_eq!(
        sp.handle(Exception::ToAppliance, &mut f, 0, 0),
        Action::ToKernel { iface: 0 }
    );
    let mut f = big_udp(false);
    assert_eq!(
        sp.handle(Exception::Fragment, &mut f, 0, 0),
        Action::Drop(SlowPathDrop::Fragment)
    );
    assert_eq!(
        sp.handle(Exception::ToAppliance, &mut f, 7, 0),
        Action::Drop(SlowPathDrop::UnknownInterface)
    );
    let c = sp.counters();
    assert_eq!(c.handled, 3);
    assert_eq!(c.dropped(SlowPathDrop::Fragment), 1);
    assert_eq!(c.dropped(SlowPathDrop::UnknownInterface), 1);
}

#[test]
fn reconfigure_keeps_neighbours_and_applies_frontends() {
    let mut sp = slow_path();
    sp.neighbours_mut()
        .learn(0, Ipv4Addr::new(10, 1, 0, 50), PEER_MAC, 0, true);
    let mut cfg = config();
    cfg.frontends.retain(|f| f.addr != VIP);
    sp.reconfigure(cfg, 0);
    assert!(sp.neighbours().get(Ipv4Addr::new(10, 1, 0, 50)).is_some());
    let mut f = echo(VIP, b"");
    assert_eq!(
        sp.handle(Exception::IcmpToFrontend, &mut f, 0, 0),
        Action::Drop(SlowPathDrop::NotForUs)
    );
    assert_eq!(sp.gratuitous_arps(0).len(), 1);
}

const EXCEPTIONS: [Exception; 9] = [
    Exception::Arp,
    Exception::IcmpToFrontend,
    Exception::ToAppliance,
    Exception::Fragment,
    Exception::TooBig { mtu: 1400 },
    Exception::TooBig { mtu: 0 },
    Exception::TtlExceeded,
    Exception::IcmpError,
    Exception::NeighbourDiscovery,
];

fn seeds() -> Vec<Vec<u8>> {
    let reply = from_peer(FrameSpec::tcp(
        SocketAddrV4::new(VIP, 80),
        SocketAddrV4::new(CLIENT, 40000),
        TcpFlags::ACK,
    ));
    let mut arp = vec![0u8; 64];
    let n = builder::arp_request(
        &mut arp,
        PEER_MAC,
        Some(3),
        Ipv4Addr::new(10, 1, 0, 50),
        VIP,
    )
    .unwrap();
    arp.truncate(n);
    vec![
        echo(VIP, b"hello"),
        echo(DOWN_VIP, b""),
        big_udp(true)[..200].to_vec(),
        icmp_error_about(&reply, ROUTER, IcmpErrorKind::FragNeeded { mtu: 1400 }),
        reply,
        arp,
    ]
}

/// Checks what `handle` returned is self-consistent.
fn check_action(a: &Action, len: usize) {
    match a {
        Action::ReplyInPlace { len: n, .. } => assert!(*n <= len),
        Action::SendOnPort { frame, .. } => {
            parse_icmp(frame);
        }
        _ => {}
    }
}

proptest! {
    #[test]
    fn random_frames_never_panic(
        b in proptest::collection::vec(any::<u8>(), 0..200),
        iface in 0usize..3,
        t in any::<u64>(),
    ) {
        let mut sp = slow_path();
        for why in EXCEPTIONS {
            let mut f = b.clone();
            let a = sp.handle(why, &mut f, iface, t);
            check_action(&a, f.len());
        }
    }

    #[test]
    fn mutated_frames_never_panic(
        seed in 0usize..6,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        iface in 0usize..2,
    ) {
        let mut sp = slow_path();
        let mut b = seeds()[seed].clone();
        for (pos, v) in flips {
            let n = b.len();
            b[pos % n] = v;
        }
        b.truncate(cut % (b.len() + 1).max(1) + b.len() / 2);
        for why in EXCEPTIONS {
            let mut f = b.clone();
            let a = sp.handle(why, &mut f, iface, 0);
            check_action(&a, f.len());
        }
        sp.poll(u64::MAX);
        let _ = sp.neighbours().snapshot();
    }
}

#[test]
fn arp_replies_are_rate_limited_on_virtual_clock() {
    let mut cfg = config();
    cfg.arp_rate = RateSpec::new(10, 5);
    let mut sp = SlowPath::new(cfg, 0);
    let mut req = vec![0u8; 64];
    let n = builder::arp_request(&mut req, PEER_MAC, None, CLIENT, VIP).unwrap();
    req.truncate(n);
    let (mut sent, mut limited) = (0, 0);
    // 1000 requests for a frontend over 2 virtual seconds: burst 5 + 10/s x 2 s.
    for k in 0..1000u64 {
        let mut f = req.clone();
        match sp.handle(Exception::Arp, &mut f, 0, k * 2 * MS) {
            Action::ReplyInPlace { .. } => sent += 1,
            Action::Drop(SlowPathDrop::RateLimited) => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sent, 5 + 19);
    assert_eq!(sp.counters().arp_replies, sent);
    assert_eq!(sp.counters().dropped(SlowPathDrop::RateLimited), limited);
    assert_eq!(limited, 1000 - sent);
}
