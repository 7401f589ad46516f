//! Tests of [`super`]: the RST checked by an independent parser (etherparse), and the pair of an
//! expired flow through NAT66 and GUE over IPv6.

use super::*;
use crate::config::DsrEncapsulation;
use crate::flow::{track, Direction};
use crate::wire::golden6::{CLIENT, SERVER};
use crate::wire::{Ipv6Packet, MacAddr, TcpPacket, UdpPacket};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

const MEMBER: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 7, 0, 0, 0, 0x42);

fn hop(port: usize, last: u8) -> Hop {
    let (src, dst) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, last]));
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&dst.0);
    macs[6..].copy_from_slice(&src.0);
    Hop {
        port,
        src_mac: src,
        dst_mac: dst,
        macs,
        mtu: 1500,
        src_addr: 0,
    }
}

#[test]
fn rst_is_valid_for_an_independent_parser() {
    let l2 = L2Spec {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        vlan: Some(5),
    };
    let (s, d) = (
        SocketAddrV6::new(SERVER, 80, 0, 0),
        SocketAddrV6::new(CLIENT, 40000, 0, 0),
    );
    let mut out = [0u8; 128];
    let n = tcp_rst6(&mut out, &l2, s, d, 0xdead_beef).unwrap();
    assert_eq!(n, 18 + 40 + 20);
    let p = SlicedPacket::from_ethernet(&out[..n]).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("not IPv6")
    };
    assert_eq!(
        (ip.header().source_addr(), ip.header().destination_addr()),
        (SERVER, CLIENT)
    );
    assert_eq!(ip.header().hop_limit(), 64);
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        panic!("not TCP")
    };
    assert!(t.rst() && !t.ack() && !t.syn() && !t.fin());
    assert_eq!((t.source_port(), t.destination_port()), (80, 40000));
    assert_eq!((t.sequence_number(), t.window_size()), (0xdead_beef, 0));
    let want = t
        .to_header()
        .calc_checksum_ipv6(&ip.header().to_header(), &[])
        .unwrap();
    assert_eq!(t.checksum(), want);
    assert!(tcp_rst6(&mut out[..77], &l2, s, d, 1).is_err());
}

/// An established flow client:40000 → VIP:80 with reset on idle; the client's next sequence is
/// 1001 and its latest acknowledgement 5001.
fn established(floating: bool) -> (FlowKey6, FlowEntry6) {
    let key = FlowKey6::new(CLIENT.to_bits(), SERVER.to_bits(), 40000, 80, 6);
    let mut flags = FlowFlags::RESET_ENABLED;
    if floating {
        flags.insert(FlowFlags::FLOATING);
    }
    let mut e = FlowEntry6::new(1, MEMBER.to_bits(), 8080, 0, flags, 240, 0);
    track(
        &mut e.flow,
        Direction::ClientToServer,
        tcp_flags::SYN,
        999,
        0,
        0,
        0,
    );
    track(
        &mut e.flow,
        Direction::ClientToServer,
        tcp_flags::ACK,
        1000,
        5001,
        1,
        1,
    );
    (key, e)
}

fn route<'a>(client: &'a Hop, member: &'a Hop, encap: DsrEncapsulation) -> ResetRoute6<'a> {
    ResetRoute6 {
        client: Some(client),
        member: Some(member),
        target: Target6 {
            addr: MEMBER.to_bits(),
            port: 8080,
            floating: false,
            encap,
            gue_port: 6080,
            l4_delta: None,
        },
        outer_src: 0xfd00_0000_0000_0007_0000_0000_0000_0001,
        flow_hash: 77,
    }
}

/// The TCP segment of the IPv6 packet `ip`, checksum verified.
fn tcp_of(ip: &[u8]) -> (Ipv6Addr, Ipv6Addr, u16, u16, u32, u8) {
    let p = Ipv6Packet::new_checked(ip).unwrap();
    let t = TcpPacket::new_checked(p.payload()).unwrap();
    assert!(t.verify_checksum_v6(p.src_addr(), p.dst_addr()));
    let f = t.flags().bits() as u8;
    (
        p.src_addr(),
        p.dst_addr(),
        t.src_port(),
        t.dst_port(),
        t.seq_number(),
        f,
    )
}

#[test]
fn nat66_flow_gets_both_resets() {
    let (key, e) = established(false);
    let (c, m) = (hop(0, 0xc), hop(1, 0xd));
    let mut sent = Vec::new();
    let mut s = Scratch::new();
    let n = send_resets6(
        &mut s,
        &key,
        &e,
        &route(&c, &m, DsrEncapsulation::None),
        &mut |p, f| sent.push((p, f.to_vec())),
    );
    assert_eq!((n, sent.len()), (2, 2));
    let (p0, f0) = &sent[0];
    assert_eq!((*p0, &f0[..6]), (0, &[2, 0, 0, 0, 0, 0xc][..]));
    assert_eq!(tcp_of(&f0[14..]), (SERVER, CLIENT, 80, 40000, 5001, 0x04));
    let (p1, f1) = &sent[1];
    assert_eq!((*p1, &f1[..6]), (1, &[2, 0, 0, 0, 0, 0xd][..]));
    assert_eq!(tcp_of(&f1[14..]), (CLIENT, MEMBER, 40000, 8080, 1001, 0x04));
    assert_eq!(
        f1[14 + 7],
        63,
        "forwarded like the flow's packets: hop limit - 1"
    );
}

#[test]
fn floating_gue_flow_gets_an_encapsulated_reset() {
    let (key, e) = established(true);
    let (c, m) = (hop(0, 0xc), hop(1, 0xd));
    let mut sent = Vec::new();
    let mut s = Scratch::new();
    let r = route(&c, &m, DsrEncapsulation::Gue);
    assert_eq!(
        send_resets6(&mut s, &key, &e, &r, &mut |p, f| sent.push((p, f.to_vec()))),
        2
    );
    let outer = Ipv6Packet::new_checked(&sent[1].1[14..]).unwrap();
    assert_eq!(outer.dst_addr(), MEMBER);
    let u = UdpPacket::new_checked(outer.payload()).unwrap();
    assert!(u.verify_checksum_v6(outer.src_addr(), outer.dst_addr()));
    assert_eq!(
        tcp_of(&u.payload()[4..]),
        (CLIENT, SERVER, 40000, 8080, 1001, 0x04)
    );
}

#[test]
fn no_resets_without_reset_or_establishment_or_hops() {
    let (key, mut e) = established(false);
    let (c, m) = (hop(0, 0xc), hop(1, 0xd));
    let mut s = Scratch::new();
    let mut count = 0;
    let mut r = route(&c, &m, DsrEncapsulation::None);
    r.client = None;
    assert_eq!(
        send_resets6(&mut s, &key, &e, &r, &mut |_, _| count += 1),
        1
    );
    r.member = None;
    assert_eq!(
        send_resets6(&mut s, &key, &e, &r, &mut |_, _| count += 1),
        0
    );
    e.flow.flags.remove(FlowFlags::RESET_ENABLED);
    let r = route(&c, &m, DsrEncapsulation::None);
    assert_eq!(
        send_resets6(&mut s, &key, &e, &r, &mut |_, _| count += 1),
        0
    );
    assert_eq!(count, 1);
}
