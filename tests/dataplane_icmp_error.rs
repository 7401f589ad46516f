//! Golden ICMP errors about flows (docs/design.md §4.4): each input error and its expected output
//! are built from named fields with etherparse (the quoted packets by the dataplane tests' own
//! frame builder), then compared byte for byte, so every checksum (outer IPv4, ICMP, quoted IPv4,
//! quoted TCP/UDP) is checked against an independent computation. The members are the pinned
//! literals of `dataplane_golden.rs` (same fixture, same tuples). Plus truncations and random
//! quotes: never a panic, never a forward with a wrong checksum.

mod dataplane_common;

use dataplane_common::flags::{ACK, SYN};
use dataplane_common::*;
use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
use etherparse::{EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header};
use proptest::prelude::*;
use std::net::Ipv4Addr;
use vipmux::balance::ProbeState;
use vipmux::dataplane::icmp_error::{quoted_flow, IcmpErrorOutcome, Quote};
use vipmux::dataplane::{DropReason, Exception, Pipeline, Verdict};
use vipmux::flow::FlowKey;
use vipmux::wire::MacAddr;

const FWD: Verdict = Verdict::Forward { port: 0 };

/// A router on the client's side of the gateway, which reports a too-small link.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The MTU it reports.
const FRAG_NEEDED: Icmpv4Type =
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu: 1000,
    });
/// Identification of every ICMP error the tests build.
const ICMP_IDENT: u16 = 0x4321;

/// Rule "web": 192.0.2.10:40000 → VIP 10.1.0.100:80 goes to vm1 (dataplane_golden's pin).
const WEB_40000: Ipv4Addr = VM1;
/// Rule "dns": 192.0.2.10:5555 → VIP:53 goes to vm2.
const DNS_5555: Ipv4Addr = VM2;
/// Rule "float": 192.0.2.10:40001 → 10.1.0.101:80 goes to vm2.
const FLOAT_40001: Ipv4Addr = VM2;

/// An IPv4 header (identification [`ICMP_IDENT`], DF clear, checksum computed).
fn ipv4(from: Ipv4Addr, to: Ipv4Addr, ttl: u8, proto: IpNumber, payload_len: usize) -> Ipv4Header {
    let len = u16::try_from(payload_len).unwrap();
    let mut ip = Ipv4Header::new(len, ttl, proto, from.octets(), to.octets()).unwrap();
    ip.identification = ICMP_IDENT;
    ip.dont_fragment = false;
    ip.header_checksum = ip.calc_header_checksum();
    ip
}

/// The IPv4 packet of an ICMP error `kind` from `from` to `to` (TTL `ttl`) quoting `quote`.
fn icmp_error_ip(from: Ipv4Addr, to: Ipv4Addr, ttl: u8, kind: Icmpv4Type, quote: &[u8]) -> Vec<u8> {
    let icmp = Icmpv4Header::with_checksum(kind, quote);
    let ip = ipv4(
        from,
        to,
        ttl,
        IpNumber::ICMP,
        icmp.header_len() + quote.len(),
    );
    let mut v = Vec::new();
    ip.write(&mut v).unwrap();
    icmp.write(&mut v).unwrap();
    v.extend_from_slice(quote);
    v
}

/// `ip` behind an Ethernet header from `src` to `dst`.
fn eth(src: MacAddr, dst: MacAddr, ip: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    Ethernet2Header {
        source: src.0,
        destination: dst.0,
        ether_type: EtherType::IPV4,
    }
    .write(&mut v)
    .unwrap();
    v.extend_from_slice(ip);
    v
}

/// The first `n` bytes of `f`'s IPv4 packet (what an ICMP error quotes).
fn quote(f: &Frame, n: usize) -> Vec<u8> {
    let mut p = f.ip_packet();
    p.truncate(n);
    p
}

/// A frag-needed error from [`ROUTER`] to `vip` about `reply`, quoted to `n` bytes, as the
/// gateway hands it to the MUX.
fn frag_needed_to(vip: Ipv4Addr, reply: &Frame, n: usize) -> Vec<u8> {
    eth(
        GW_MAC,
        PORT_MAC,
        &icmp_error_ip(ROUTER, vip, 60, FRAG_NEEDED, &quote(reply, n)),
    )
}

/// Runs `input` and asserts it forwards exactly `want`.
fn forwards(p: &mut Pipeline, w: &World, input: &[u8], want: &[u8]) {
    let (v, out) = run(p, w, input, 5);
    assert_eq!(v, FWD);
    check(&out);
    assert_eq!(out, want, "output frame");
}

/// Asserts that error `kind` from `from` to the VIP `reply` came from, quoting `n` bytes of
/// `reply`, reaches `member` quoting `as_sent` (the reply before reverse NAT) instead.
fn assert_reaches_member(
    (p, w): (&mut Pipeline, &World),
    (from, kind): (Ipv4Addr, Icmpv4Type),
    (reply, as_sent, n): (&Frame, &Frame, usize),
    member: Ipv4Addr,
) {
    let vip = Ipv4Addr::from(reply.ipv4_header().source);
    let error = icmp_error_ip(from, vip, 60, kind.clone(), &quote(reply, n));
    let input = eth(GW_MAC, PORT_MAC, &error);
    let on = icmp_error_ip(from, member, 59, kind, &quote(as_sent, n));
    forwards(p, w, &input, &eth(PORT_MAC, mac_of(member), &on));
}

/// How many ICMP errors had `outcome`.
fn outcome(p: &Pipeline, outcome: IcmpErrorOutcome) -> u64 {
    p.counters().icmp_errors[outcome.index()]
}

/// The member's answer to a client's packet, as the MUX sent it on after reverse NAT.
fn web_reply_from_vip() -> Frame {
    Frame::tcp()
        .from(VIP_NAT, 80)
        .to(CLIENT, 40000)
        .flags(ACK)
        .seq(5000)
        .ack(1001)
        .ttl(63)
        .payload(&[0x55; 1400])
}

/// Opens the client's flow CLIENT:40000 → VIP_NAT:80 (to [`WEB_40000`]) with its SYN.
fn open_web_flow(p: &mut Pipeline, w: &World) {
    let syn = Frame::tcp()
        .from(CLIENT, 40000)
        .to(VIP_NAT, 80)
        .flags(SYN)
        .seq(1000);
    assert_eq!(run(p, w, &syn.bytes(), 1).0, FWD);
}

#[test]
fn nat_frag_needed_reaches_the_flow_member_rewritten() {
    let w = World::standard();
    let mut p = pipeline();
    open_web_flow(&mut p, &w);
    let reply = web_reply_from_vip();
    // The quote the member must see: its own addresses, the TTL the MUX sent the reply with.
    let as_sent = reply.clone().from(WEB_40000, 8080);
    for n in [28, 40, 576 - 28] {
        let quotes = (&reply, &as_sent, n);
        assert_reaches_member((&mut p, &w), (ROUTER, FRAG_NEEDED), quotes, WEB_40000);
    }
    assert_eq!(outcome(&p, IcmpErrorOutcome::ToMember), 3);
}

/// The one parser of quotes names the client's flow the way the flow table keys it (what worker
/// ownership of errors will hash), and the quote as is.
#[test]
fn quoted_flow_names_the_clients_flow() {
    let input = frag_needed_to(VIP_NAT, &web_reply_from_vip(), 28);
    let Quote::Flow(q) = quoted_flow(&input) else {
        panic!("no flow quoted");
    };
    let (client, vip) = (u32::from(CLIENT), u32::from(VIP_NAT));
    assert_eq!(q.client_key(), FlowKey::new(client, vip, 40000, 80, 6));
    assert_eq!(q.quoted_key(), FlowKey::new(vip, client, 80, 40000, 6));
    assert_eq!((q.outer_src, q.outer_dst), (u32::from(ROUTER), vip));
    let echo = Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 1 });
    let ping = eth(
        GW_MAC,
        PORT_MAC,
        &icmp_error_ip(CLIENT, VIP_NAT, 64, echo, b"x"),
    );
    assert_eq!(quoted_flow(&ping), Quote::NotFlowError);
    assert_eq!(
        quoted_flow(&input[..14 + 20 + 8 + 20 + 4]),
        Quote::NotFlowError
    );
    let mut short = input[..14 + 20 + 8 + 20 + 4].to_vec();
    short[14 + 3] = (20 + 8 + 20 + 4) as u8; // total length fits the cut frame
    assert_eq!(quoted_flow(&short), Quote::Malformed);
}

#[test]
fn flow_entry_wins_over_the_hash() {
    let mut w = World::standard();
    let mut p = pipeline();
    open_web_flow(&mut p, &w);
    // vm1 goes down: a new flow of this tuple would go elsewhere, the flow (TCP) stays on vm1.
    w.set_health(VM1, ProbeState::Down);
    let input = frag_needed_to(VIP_NAT, &web_reply_from_vip(), 28);
    let (v, out) = run(&mut p, &w, &input, 5);
    assert_eq!(v, FWD);
    assert_eq!(out[..6], mac_of(VM1).0);
    assert_eq!(outcome(&p, IcmpErrorOutcome::ToMember), 1);
    // Another worker (a fresh pipeline) has no entry: the hash, now without vm1.
    let mut other = pipeline();
    let (v, out) = run(&mut other, &w, &input, 5);
    assert_eq!(v, FWD);
    assert!(out[..6] == mac_of(VM2).0 || out[..6] == mac_of(VM3).0);
    assert_eq!(outcome(&other, IcmpErrorOutcome::ToMemberHashed), 1);
}

#[test]
fn nat_without_flow_entry_uses_the_new_flow_hash() {
    let w = World::standard();
    let mut p = pipeline();
    let reply = web_reply_from_vip();
    let as_sent = reply.clone().from(WEB_40000, 8080);
    let quotes = (&reply, &as_sent, 28);
    assert_reaches_member((&mut p, &w), (ROUTER, FRAG_NEEDED), quotes, WEB_40000);
    assert_eq!(outcome(&p, IcmpErrorOutcome::ToMemberHashed), 1);
    assert_eq!(p.flow_count(), 0, "an ICMP error creates no flow");
}

/// A UDP reply's port unreachable (its whole quote: the UDP checksum follows) and time
/// exceeded (8 bytes of UDP quoted).
#[test]
fn udp_errors_reach_the_member() {
    let w = World::standard();
    let mut p = pipeline();
    let port_unreachable = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
    let ttl_exceeded = Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit);
    for (from, kind, ttl, n) in [
        (CLIENT, port_unreachable, 63, 99),
        (ROUTER, ttl_exceeded, 1, 28),
    ] {
        let reply = Frame::udp()
            .from(VIP_NAT, 53)
            .to(CLIENT, 5555)
            .ttl(ttl)
            .payload(b"answer");
        let as_sent = reply.clone().from(DNS_5555, 5353);
        let quotes = (&reply, &as_sent, n);
        assert_reaches_member((&mut p, &w), (from, kind), quotes, DNS_5555);
    }
}

#[test]
fn floating_ip_error_goes_to_the_member_unchanged_but_macs_and_ttl() {
    let w = World::standard();
    let mut p = pipeline();
    // The member answered from the VIP itself (direct server return).
    let reply = Frame::tcp()
        .from(VIP_FLOAT, 80)
        .to(CLIENT, 40001)
        .flags(ACK)
        .payload(&[1; 1400]);
    let input = frag_needed_to(VIP_FLOAT, &reply, 28);
    let want = eth(
        PORT_MAC,
        mac_of(FLOAT_40001),
        &icmp_error_ip(ROUTER, VIP_FLOAT, 59, FRAG_NEEDED, &quote(&reply, 28)),
    );
    forwards(&mut p, &w, &input, &want);
}

#[test]
fn ipip_error_is_encapsulated_toward_the_member() {
    let w = World::standard();
    let mut p = pipeline();
    let reply = Frame::tcp()
        .from(VIP_IPIP, 443)
        .to(CLIENT, 40002)
        .flags(ACK)
        .payload(&[2; 1400]);
    let inner = icmp_error_ip(ROUTER, VIP_IPIP, 60, FRAG_NEEDED, &quote(&reply, 28));
    let input = eth(GW_MAC, PORT_MAC, &inner);
    // Outer: from the port's address to the (off-link) member, TTL 64, ident and DF copied; the
    // inner ICMP packet untouched (its TTL too).
    let outer = ipv4(PORT_ADDR, TUN1, 64, IpNumber::IPV4, inner.len());
    let mut ip = Vec::new();
    outer.write(&mut ip).unwrap();
    ip.extend_from_slice(&inner);
    forwards(&mut p, &w, &input, &eth(PORT_MAC, GW_MAC, &ip));
}

#[test]
fn member_error_about_a_client_packet_is_reverse_translated() {
    let w = World::standard();
    let mut p = pipeline();
    // The member got client → vm1:8080 (after NAT) and answers port unreachable to the client.
    let got = Frame::tcp()
        .from(CLIENT, 40000)
        .to(VM1, 8080)
        .flags(SYN)
        .ttl(63);
    let client_saw = got.clone().to(VIP_NAT, 80);
    let kind = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
    // The error from `from` (quoting `n` bytes) reaches the client from `to_client`.
    let mut reaches_client = |from, n, to_client| {
        let error = icmp_error_ip(from, CLIENT, 64, kind.clone(), &quote(&got, n));
        let input = eth(mac_of(VM1), PORT_MAC, &error);
        let on = icmp_error_ip(to_client, CLIENT, 63, kind.clone(), &quote(&client_saw, n));
        forwards(&mut p, &w, &input, &eth(PORT_MAC, GW_MAC, &on));
    };
    reaches_client(VM1, 40, VIP_NAT);
    // A hop between the MUX and the member keeps its own address as the source.
    let hop = Ipv4Addr::new(10, 1, 0, 77);
    reaches_client(hop, 28, hop);
    assert_eq!(outcome(&p, IcmpErrorOutcome::ToClient), 2);
}

#[test]
fn errors_quoting_no_flow_are_dropped_and_counted() {
    let w = World::standard();
    let mut p = pipeline();
    // No rule for VIP:9999.
    let other = Frame::tcp().from(VIP_NAT, 9999).to(CLIENT, 1).flags(ACK);
    let (v, _) = run(&mut p, &w, &frag_needed_to(VIP_NAT, &other, 28), 1);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
    // Quoting another source than the VIP it is addressed to.
    let spoof = Frame::tcp().from(VM1, 80).to(CLIENT, 40000).flags(ACK);
    let (v, _) = run(&mut p, &w, &frag_needed_to(VIP_NAT, &spoof, 28), 1);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
    // In transit, quoting no member's backend port.
    let stray = Frame::udp()
        .from(CLIENT, 1)
        .to(Ipv4Addr::new(10, 1, 0, 99), 2);
    let input = eth(
        GW_MAC,
        PORT_MAC,
        &icmp_error_ip(ROUTER, CLIENT, 64, FRAG_NEEDED, &quote(&stray, 28)),
    );
    let (v, _) = run(&mut p, &w, &input, 1);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
    assert_eq!(outcome(&p, IcmpErrorOutcome::NoFlow), 3);
    assert_eq!(p.counters().drop_count(DropReason::IcmpNoFlow), 3);
}

#[test]
fn short_quotes_are_malformed_and_echo_stays_on_the_slow_path() {
    let w = World::standard();
    let mut p = pipeline();
    let reply = web_reply_from_vip();
    // IPv4 header + 4 bytes of TCP: less than the 8 bytes every error quotes.
    let (v, _) = run(&mut p, &w, &frag_needed_to(VIP_NAT, &reply, 24), 1);
    assert_eq!(v, Verdict::Drop(DropReason::BadHeader));
    assert_eq!(outcome(&p, IcmpErrorOutcome::Malformed), 1);
    let echo = Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 1 });
    let input = eth(
        GW_MAC,
        PORT_MAC,
        &icmp_error_ip(CLIENT, VIP_NAT, 64, echo, b"ping"),
    );
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, Verdict::ToSlowPath(Exception::IcmpToFrontend));
    assert_eq!(out, input);
}

#[test]
fn every_truncation_is_handled_without_panic() {
    let w = World::standard();
    let mut p = pipeline();
    let input = frag_needed_to(VIP_NAT, &web_reply_from_vip(), 60);
    for n in 0..input.len() {
        let (v, out) = run(&mut p, &w, &input[..n], 1);
        if v == FWD {
            check(&out);
        }
    }
}

proptest! {
    /// Whatever the quote holds (any bytes after a plausible IPv4 header), the data path never
    /// panics, and what it forwards has a correct ICMP checksum.
    #[test]
    fn random_quotes_never_panic_or_corrupt(
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        cut in 0usize..80,
        to_vip in any::<bool>(),
    ) {
        let w = World::standard();
        let mut p = pipeline();
        let mut q = quote(&web_reply_from_vip(), 28);
        q.truncate(cut.min(28));
        q.extend_from_slice(&tail);
        let dst = if to_vip { VIP_NAT } else { CLIENT };
        let input = eth(GW_MAC, PORT_MAC, &icmp_error_ip(ROUTER, dst, 64, FRAG_NEEDED, &q));
        let (v, out) = run(&mut p, &w, &input, 1);
        if v == FWD {
            let icmp = &out[14 + 20..];
            prop_assert!(etherparse::Icmpv4Slice::from_slice(icmp).is_ok());
            let sum = icmp
                .chunks(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
                .sum::<u32>();
            let folded = (sum & 0xffff) + (sum >> 16);
            prop_assert_eq!((folded & 0xffff) + (folded >> 16), 0xffff);
        }
    }
}

#[test]
fn errors_about_outbound_connections_reach_the_member_translated_back() {
    let w = World::new(&config_with_outbound(toml::toml! {
        name = "egress"
        frontends = ["nat"]
        backend_pool = "web"
        protocol = "all"
        allocated_outbound_ports = 16
    }));
    let mut p = pipeline();
    // VM1's datagram and SYN leave as VIP_NAT:1024 and :1025 (the first ports of its block).
    let dgram = Frame::udp()
        .eth(mac_of(VM1), PORT_MAC)
        .from(VM1, 5000)
        .to(CLIENT, 53)
        .payload(b"query");
    let syn = Frame::tcp()
        .eth(mac_of(VM1), PORT_MAC)
        .from(VM1, 40000)
        .to(CLIENT, 443)
        .flags(SYN)
        .seq(1000)
        .payload(&[0x55; 1200]);
    for f in [&dgram, &syn] {
        assert_eq!(run(&mut p, &w, &f.bytes(), 1).0, FWD);
    }
    let left = |f: &Frame, snat_port| {
        f.clone()
            .eth(PORT_MAC, GW_MAC)
            .from(VIP_NAT, snat_port)
            .ttl(63)
    };
    // The quotes the member must see: its own endpoint, as the MUX sent the packet on.
    let (udp_sent, udp_back) = (left(&dgram, 1024), left(&dgram, 1024).from(VM1, 5000));
    let (tcp_sent, tcp_back) = (left(&syn, 1025), left(&syn, 1025).from(VM1, 40000));
    let port_unreachable = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
    let ttl_exceeded = Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit);
    for n in [28, 33] {
        let quotes = (&udp_sent, &udp_back, n);
        let from = (CLIENT, port_unreachable.clone());
        assert_reaches_member((&mut p, &w), from, quotes, VM1);
    }
    for (kind, n) in [
        (ttl_exceeded, 28),
        (FRAG_NEEDED, 40),
        (FRAG_NEEDED, 576 - 28),
    ] {
        let quotes = (&tcp_sent, &tcp_back, n);
        assert_reaches_member((&mut p, &w), (ROUTER, kind), quotes, VM1);
    }
    assert_eq!(outcome(&p, IcmpErrorOutcome::ToSnatMember), 5);
    // Another remote port than the datagram's (the cone lets only its endpoints answer), and
    // the translation once it idled out (the rule's 4 minutes): no flow.
    let other = udp_sent.clone().to(CLIENT, 54);
    let (v, _) = run(&mut p, &w, &frag_needed_to(VIP_NAT, &other, 28), 2);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
    let late = frag_needed_to(VIP_NAT, &udp_sent, 28);
    let (v, _) = run(&mut p, &w, &late, 1 + 241);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
    assert_eq!(outcome(&p, IcmpErrorOutcome::NoFlow), 2);
}
