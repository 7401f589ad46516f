//! Outbound SNAT through the pure pipeline: golden frames for a member's TCP and UDP connections
//! and their replies, port blocks and exhaustion, the UDP cone, TCP port reuse, release timers
//! and reset on idle; a property test over random member and remote traffic. Frames are built
//! and read back with etherparse (see `dataplane_common`), never with vipmux's own packet code.

mod dataplane_common;

use dataplane_common::flags::{ACK, FIN, PSH, RST, SYN};
use dataplane_common::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use std::net::Ipv4Addr;
use vipmux::dataplane::{DropReason, Pipeline, SnatCounters, Verdict};
use vipmux::flow::PROTO_TCP;

const FWD: Verdict = Verdict::Forward { port: 0 };
const ROUTED_TTL: u8 = 63;
/// The block of each member of pool "web" on frontend "nat": 16 ports each, in pool order.
const VM1_FIRST: u16 = 1024;
const VM2_FIRST: u16 = 1040;
/// A host behind the gateway and one on-link.
const REMOTE: Ipv4Addr = CLIENT;
const REMOTE_LOCAL: Ipv4Addr = CLIENT_LOCAL;

/// The standard world plus outbound rule "egress": pool "web" leaves as frontend "nat",
/// 16 ports per member, 4-minute idle timeout, reset on idle.
fn world() -> World {
    World::new(&config_with_outbound(toml::toml! {
        name = "egress"
        frontends = ["nat"]
        backend_pool = "web"
        protocol = "all"
        allocated_outbound_ports = 16
        idle_timeout_minutes = 4
        enable_tcp_reset = true
    }))
}

fn forwards(p: &mut Pipeline, w: &World, input: &Frame, now: u32, want: &Frame) {
    let (v, out) = run(p, w, &input.bytes(), now);
    assert_eq!(v, FWD, "{input:?}");
    assert_frame(&out, want);
}

fn member_syn(member: Ipv4Addr, port: u16, remote: Ipv4Addr, rport: u16) -> Frame {
    Frame::tcp()
        .eth(mac_of(member), PORT_MAC)
        .from(member, port)
        .to(remote, rport)
        .flags(SYN)
        .seq(1000)
}

/// What leaves toward `remote` behind the gateway for `f` sent from `snat_port`.
fn leaves(f: &Frame, snat_port: u16) -> Frame {
    f.clone()
        .eth(PORT_MAC, GW_MAC)
        .from(VIP_NAT, snat_port)
        .ttl(ROUTED_TTL)
}

fn snat_of(p: &Pipeline, w: &World, member: Ipv4Addr) -> SnatCounters {
    let id = w
        .snapshot
        .member_by_addr(u32::from(member))
        .expect("member");
    p.counters().snat[id.index()]
}

/// REMOTE:443's SYN-ACK to frontend IP `fip`:`snat_port`, and how it reaches VM1's `port`.
fn syn_ack_to(fip: Ipv4Addr, snat_port: u16, port: u16) -> (Frame, Frame) {
    let syn_ack = Frame::tcp()
        .from(REMOTE, 443)
        .to(fip, snat_port)
        .flags(SYN | ACK)
        .seq(9000)
        .ack(1001);
    let back = syn_ack
        .clone()
        .eth(PORT_MAC, mac_of(VM1))
        .to(VM1, port)
        .ttl(ROUTED_TTL);
    (syn_ack, back)
}

/// The source port of the frame `f` leaves with.
fn out_sport(out: &[u8]) -> u16 {
    match SlicedPacket::from_ethernet(out).map(|s| s.transport) {
        Ok(Some(TransportSlice::Tcp(t))) => t.source_port(),
        Ok(Some(TransportSlice::Udp(u))) => u.source_port(),
        other => panic!("no TCP/UDP: {other:?}"),
    }
}

#[test]
fn tcp_connection_out_and_back() {
    let w = world();
    let mut p = pipeline();
    let syn = member_syn(VM1, 40000, REMOTE, 443);
    forwards(&mut p, &w, &syn, 10, &leaves(&syn, VM1_FIRST));
    // The answer to frontend IP:SNAT port goes back to the member's own endpoint.
    let (syn_ack, back) = syn_ack_to(VIP_NAT, VM1_FIRST, 40000);
    forwards(&mut p, &w, &syn_ack, 10, &back);
    let data = syn
        .clone()
        .flags(ACK | PSH)
        .seq(1001)
        .ack(9001)
        .payload(b"GET /");
    forwards(&mut p, &w, &data, 11, &leaves(&data, VM1_FIRST));
    let c = snat_of(&p, &w, VM1);
    assert_eq!((c.connections, c.successful, c.used_ports()), (1, 1, 1));
    assert_eq!(c.pending(), 0);
    // The SYN counts for the frontend IP (direction out), the data segment does not; a
    // retransmitted SYN counts again.
    let fe = w
        .snapshot
        .frontend_by_addr(u32::from(VIP_NAT))
        .expect("frontend");
    assert_eq!(p.counters().snat_syns[fe.index()], 1);
    forwards(&mut p, &w, &syn, 11, &leaves(&syn, VM1_FIRST));
    assert_eq!(p.counters().snat_syns[fe.index()], 2);
    // Another member takes a port of its own block.
    let syn2 = member_syn(VM2, 40000, REMOTE, 443);
    forwards(&mut p, &w, &syn2, 12, &leaves(&syn2, VM2_FIRST));
    assert_eq!(snat_of(&p, &w, VM2).pending(), 1);
    // A remote endpoint the member never sent to is not let in.
    let stray = Frame::tcp()
        .from(REMOTE, 444)
        .to(VIP_NAT, VM1_FIRST)
        .flags(SYN);
    assert_eq!(
        run(&mut p, &w, &stray.bytes(), 12).0,
        Verdict::Drop(DropReason::NoRule)
    );
    // A member's TCP segment of no known connection: the remote would not know it either.
    let lost = syn.clone().from(VM1, 40001).flags(ACK).seq(5);
    assert_eq!(
        run(&mut p, &w, &lost.bytes(), 12).0,
        Verdict::Drop(DropReason::NoFlow)
    );
}

#[test]
fn udp_is_port_restricted_cone() {
    let w = world();
    let mut p = pipeline();
    let q = Frame::udp()
        .eth(mac_of(VM1), PORT_MAC)
        .from(VM1, 5000)
        .to(REMOTE, 53)
        .payload(b"q");
    forwards(&mut p, &w, &q, 1, &leaves(&q, VM1_FIRST));
    // Same member endpoint and destination IP, another port: the same SNAT port.
    let q2 = q.clone().to(REMOTE, 5353);
    forwards(&mut p, &w, &q2, 1, &leaves(&q2, VM1_FIRST));
    // Another destination IP (on-link: straight to its MAC): a port of its own.
    let q3 = q.clone().to(REMOTE_LOCAL, 53);
    let want = q3
        .clone()
        .eth(PORT_MAC, mac_of(REMOTE_LOCAL))
        .from(VIP_NAT, VM1_FIRST + 1)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &q3, 1, &want);
    // Answers from the endpoints it sent to come back; any other port of the host does not.
    for rport in [53, 5353] {
        let a = Frame::udp()
            .from(REMOTE, rport)
            .to(VIP_NAT, VM1_FIRST)
            .payload(b"a");
        let back = a
            .clone()
            .eth(PORT_MAC, mac_of(VM1))
            .to(VM1, 5000)
            .ttl(ROUTED_TTL);
        forwards(&mut p, &w, &a, 2, &back);
    }
    let other = Frame::udp()
        .from(REMOTE, 9999)
        .to(VIP_NAT, VM1_FIRST)
        .payload(b"a");
    assert_eq!(
        run(&mut p, &w, &other.bytes(), 2).0,
        Verdict::Drop(DropReason::NoRule)
    );
}

#[test]
fn exhaustion_is_per_member_and_tcp_reuses_ports_per_destination() {
    let w = world();
    let mut p = pipeline();
    for i in 0..16u16 {
        let syn = member_syn(VM1, 41000 + i, REMOTE, 443);
        forwards(&mut p, &w, &syn, 1, &leaves(&syn, VM1_FIRST + i));
    }
    let before = p.counters().drop_count(DropReason::SnatExhausted);
    let syn17 = member_syn(VM1, 41016, REMOTE, 443);
    assert_eq!(
        run(&mut p, &w, &syn17.bytes(), 1).0,
        Verdict::Drop(DropReason::SnatExhausted)
    );
    assert_eq!(
        p.counters().drop_count(DropReason::SnatExhausted),
        before + 1
    );
    let c = snat_of(&p, &w, VM1);
    assert_eq!((c.exhausted, c.failed(), c.used_ports()), (1, 1, 16));
    // Another member is unaffected.
    let other = member_syn(VM2, 41000, REMOTE, 443);
    forwards(&mut p, &w, &other, 1, &leaves(&other, VM2_FIRST));
    assert_eq!(snat_of(&p, &w, VM2).exhausted, 0);
    // Another destination port of the same host reuses the lowest port.
    let syn80 = member_syn(VM1, 41017, REMOTE, 80);
    forwards(&mut p, &w, &syn80, 1, &leaves(&syn80, VM1_FIRST));
}

#[test]
fn a_reset_port_is_free_again_after_15_seconds() {
    let w = world();
    let mut p = pipeline();
    for i in 0..16u16 {
        let syn = member_syn(VM1, 42000 + i, REMOTE, 443);
        forwards(&mut p, &w, &syn, 100, &leaves(&syn, VM1_FIRST + i));
    }
    // The remote refuses the connection on the 4th port.
    let rst = Frame::tcp()
        .from(REMOTE, 443)
        .to(VIP_NAT, VM1_FIRST + 3)
        .flags(RST | ACK)
        .ack(1001);
    assert_eq!(run(&mut p, &w, &rst.bytes(), 100).0, FWD);
    let next = member_syn(VM1, 42100, REMOTE, 443);
    let sweep = |p: &mut Pipeline, now| p.expire(&w.view(), now, 1 << 20, |_, _| {});
    sweep(&mut p, 115);
    assert_eq!(
        run(&mut p, &w, &next.bytes(), 115).0,
        Verdict::Drop(DropReason::SnatExhausted)
    );
    sweep(&mut p, 116);
    forwards(&mut p, &w, &next, 116, &leaves(&next, VM1_FIRST + 3));
    let c = snat_of(&p, &w, VM1);
    assert_eq!((c.connections, c.successful), (17, 1));
}

#[test]
fn fins_both_ways_hold_the_port_240_seconds() {
    let w = world();
    let mut p = pipeline();
    let syn = member_syn(VM1, 43000, REMOTE, 443);
    forwards(&mut p, &w, &syn, 0, &leaves(&syn, VM1_FIRST));
    let from_remote = |flags, seq, ack| {
        Frame::tcp()
            .from(REMOTE, 443)
            .to(VIP_NAT, VM1_FIRST)
            .flags(flags)
            .seq(seq)
            .ack(ack)
    };
    assert_eq!(
        run(&mut p, &w, &from_remote(SYN | ACK, 9000, 1001).bytes(), 0).0,
        FWD
    );
    for f in [
        syn.clone().flags(ACK).seq(1001).ack(9001),
        syn.clone().flags(FIN | ACK).seq(1001).ack(9001),
    ] {
        assert_eq!(run(&mut p, &w, &f.bytes(), 1).0, FWD);
    }
    assert_eq!(
        run(&mut p, &w, &from_remote(FIN | ACK, 9001, 1002).bytes(), 1).0,
        FWD
    );
    let used = |p: &Pipeline| snat_of(p, &w, VM1).used_ports();
    p.expire(&w.view(), 241, 1 << 20, |_, _| {});
    assert_eq!(used(&p), 1);
    p.expire(&w.view(), 242, 1 << 20, |_, _| {});
    assert_eq!(used(&p), 0);
}

/// The TCP header fields of an emitted RST: (source, destination, seq, flags byte).
fn rst_fields(frame: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16), u32, bool) {
    let s = check(frame);
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    let h = ip.header();
    let Some(TransportSlice::Tcp(t)) = &s.transport else {
        panic!("not TCP")
    };
    (
        (h.source_addr(), t.source_port()),
        (h.destination_addr(), t.destination_port()),
        t.sequence_number(),
        t.rst() && !t.syn() && !t.fin(),
    )
}

#[test]
fn reset_on_idle_sends_a_rst_each_way() {
    let w = world();
    let mut p = pipeline();
    let syn = member_syn(VM1, 44000, REMOTE, 443).seq(1000);
    assert_eq!(run(&mut p, &w, &syn.bytes(), 0).0, FWD);
    let syn_ack = Frame::tcp()
        .from(REMOTE, 443)
        .to(VIP_NAT, VM1_FIRST)
        .flags(SYN | ACK)
        .seq(7000)
        .ack(1001);
    assert_eq!(run(&mut p, &w, &syn_ack.bytes(), 0).0, FWD);
    let data = syn
        .clone()
        .flags(ACK | PSH)
        .seq(1001)
        .ack(7001)
        .payload(b"hello");
    assert_eq!(run(&mut p, &w, &data.bytes(), 10).0, FWD);
    let mut sent: Vec<(usize, Vec<u8>)> = Vec::new();
    p.expire(&w.view(), 250, 1 << 20, |port, f| {
        sent.push((port, f.to_vec()))
    });
    assert!(sent.is_empty(), "not idle for 240 s yet");
    p.expire(&w.view(), 251, 1 << 20, |port, f| {
        sent.push((port, f.to_vec()))
    });
    assert_eq!(sent.len(), 2, "a RST each way");
    let to_member = rst_fields(&sent[0].1);
    assert_eq!(to_member, ((REMOTE, 443), (VM1, 44000), 7001, true));
    let to_remote = rst_fields(&sent[1].1);
    assert_eq!(to_remote, ((VIP_NAT, VM1_FIRST), (REMOTE, 443), 1006, true));
    assert_eq!(&sent[0].1[..6], &mac_of(VM1).0);
    assert_eq!(&sent[1].1[..6], &GW_MAC.0);
    assert_eq!(snat_of(&p, &w, VM1).used_ports(), 0);
}

#[test]
fn a_member_no_outbound_rule_covers_is_still_counted() {
    let w = World::new(&config_with_outbound(toml::toml! {
        name = "egress"
        frontends = ["nat"]
        backend_pool = "web"
        protocol = "udp"
    }));
    let mut p = pipeline();
    // TCP is not covered by the UDP-only rule.
    let syn = member_syn(VM1, 45000, REMOTE, 443);
    assert_eq!(
        run(&mut p, &w, &syn.bytes(), 0).0,
        Verdict::Drop(DropReason::NoOutboundRule)
    );
    let q = Frame::udp()
        .eth(mac_of(VM1), PORT_MAC)
        .from(VM1, 5000)
        .to(REMOTE, 53);
    assert_eq!(run(&mut p, &w, &q.bytes(), 0).0, FWD);
}

/// One step of the property test: a member's packet or a remote's packet.
#[derive(Debug, Clone)]
enum Step {
    /// member index, member port, remote port, TCP flags (0 = UDP)
    Member(usize, u16, u16, u8),
    /// remote port, SNAT port offset, TCP flags (0 = UDP)
    Remote(u16, u16, u8),
    /// seconds pass, then a sweep
    Wait(u32),
}

fn step() -> impl Strategy<Value = Step> {
    let flags = prop_oneof![Just(0u8), Just(SYN), Just(ACK), Just(FIN | ACK), Just(RST)];
    prop_oneof![
        4 => (0usize..3, 40000u16..40006, 80u16..83, flags.clone()).prop_map(|(m, a, b, f)| Step::Member(m, a, b, f)),
        3 => (80u16..83, 0u16..48, flags).prop_map(|(a, b, f)| Step::Remote(a, b, f)),
        1 => (1u32..300).prop_map(Step::Wait),
    ]
}

fn frame_of(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8) -> Frame {
    let f = if flags == 0 {
        Frame::udp()
    } else {
        Frame::tcp().flags(flags)
    };
    f.from(src.0, src.1).to(dst.0, dst.1).seq(1).ack(1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever members and remotes send: a member's packet leaves from the frontend IP and a
    /// port of that member's block; a remote's packet reaches a member only at the endpoint that
    /// earlier left by that SNAT port toward that remote endpoint; nothing panics.
    #[test]
    fn translations_are_consistent(steps in proptest::collection::vec(step(), 1..120)) {
        let w = world();
        let mut p = pipeline();
        let members = [VM1, VM2, VM3];
        // (snat port, protocol, remote port) -> member endpoint, from what was seen leaving.
        let mut seen: std::collections::HashMap<(u16, u8, u16), (Ipv4Addr, u16)> = Default::default();
        let mut now = 0;
        for s in steps {
            match s {
                Step::Member(m, mport, rport, flags) => {
                    let f = frame_of((members[m], mport), (REMOTE, rport), flags);
                    let (v, out) = run(&mut p, &w, &f.bytes(), now);
                    if v == FWD {
                        let sp = out_sport(&out);
                        let first = VM1_FIRST + 16 * m as u16;
                        prop_assert!((first..first + 16).contains(&sp), "port {sp} outside vm{}'s block", m + 1);
                        seen.insert((sp, if flags == 0 { 17 } else { 6 }, rport), (members[m], mport));
                    } else {
                        prop_assert!(matches!(v, Verdict::Drop(DropReason::NoFlow | DropReason::SnatExhausted)), "{v:?}");
                    }
                }
                Step::Remote(rport, off, flags) => {
                    let sp = VM1_FIRST + off;
                    let f = frame_of((REMOTE, rport), (VIP_NAT, sp), flags);
                    let (v, out) = run(&mut p, &w, &f.bytes(), now);
                    if v == FWD {
                        let proto = if flags == 0 { 17 } else { 6 };
                        let want = seen.get(&(sp, proto, rport)).copied();
                        let s = check(&out);
                        let Some(NetSlice::Ipv4(ip)) = &s.net else { panic!("not IPv4") };
                        let dport = match &s.transport {
                            Some(TransportSlice::Tcp(t)) => t.destination_port(),
                            Some(TransportSlice::Udp(u)) => u.destination_port(),
                            _ => 0,
                        };
                        prop_assert_eq!(Some((ip.header().destination_addr(), dport)), want);
                    }
                }
                Step::Wait(d) => {
                    now += d;
                    p.expire(&w.view(), now, 1 << 20, |_, _| {});
                }
            }
        }
    }
}

/// The outbound rule of [`world`] over two frontend IPs: "nat", then "float".
fn world_two_frontends() -> World {
    World::new(&config_with_outbound(toml::toml! {
        name = "egress"
        frontends = ["nat", "float"]
        backend_pool = "web"
        protocol = "all"
        allocated_outbound_ports = 16
        idle_timeout_minutes = 4
    }))
}

#[test]
fn a_second_frontend_ip_adds_ports_once_the_first_is_exhausted() {
    let w = world_two_frontends();
    let mut p = pipeline();
    let float = w
        .snapshot
        .snat_block(u32::from(VM1), PROTO_TCP, u32::from(VIP_FLOAT))
        .expect("VM1's block on the second frontend IP")
        .first_port;
    for i in 0..16u16 {
        let syn = member_syn(VM1, 41000 + i, REMOTE, 443);
        forwards(&mut p, &w, &syn, 1, &leaves(&syn, VM1_FIRST + i));
    }
    // The first frontend IP's block is full: the 17th leaves from the second's.
    let syn17 = member_syn(VM1, 41016, REMOTE, 443);
    let want = leaves(&syn17, float).from(VIP_FLOAT, float);
    forwards(&mut p, &w, &syn17, 1, &want);
    // Its reply, found by that block's port, reaches the member.
    let (syn_ack, back) = syn_ack_to(VIP_FLOAT, float, 41016);
    forwards(&mut p, &w, &syn_ack, 1, &back);
    // UDP to the second frontend IP (the first is full).
    let q = Frame::udp()
        .eth(mac_of(VM1), PORT_MAC)
        .from(VM1, 5000)
        .to(REMOTE, 53)
        .payload(b"q");
    forwards(
        &mut p,
        &w,
        &q,
        1,
        &leaves(&q, float + 1).from(VIP_FLOAT, float + 1),
    );
    // The rest of the second block (TCP reuses the UDP port last), then nothing is left.
    for i in 0..15u16 {
        let syn = member_syn(VM1, 41100 + i, REMOTE, 443);
        let port = if i < 14 { float + 2 + i } else { float + 1 };
        forwards(
            &mut p,
            &w,
            &syn,
            1,
            &leaves(&syn, port).from(VIP_FLOAT, port),
        );
    }
    let last = member_syn(VM1, 41200, REMOTE, 443);
    assert_eq!(
        run(&mut p, &w, &last.bytes(), 1).0,
        Verdict::Drop(DropReason::SnatExhausted)
    );
    let c = snat_of(&p, &w, VM1);
    assert_eq!((c.exhausted, c.used_ports()), (1, 32));
    // A RST frees a port of the first frontend IP; the UDP socket's cone still keeps the second
    // for another port of the same host.
    let rst = Frame::tcp()
        .from(REMOTE, 443)
        .to(VIP_NAT, VM1_FIRST + 3)
        .flags(RST | ACK)
        .ack(1001);
    assert_eq!(run(&mut p, &w, &rst.bytes(), 1).0, FWD);
    p.expire(&w.view(), 17, 1 << 20, |_, _| {});
    let q2 = q.clone().to(REMOTE, 5353);
    let want = leaves(&q2, float + 1).from(VIP_FLOAT, float + 1);
    forwards(&mut p, &w, &q2, 17, &want);
    let syn = member_syn(VM1, 41300, REMOTE, 443);
    forwards(&mut p, &w, &syn, 17, &leaves(&syn, VM1_FIRST + 3));
}
