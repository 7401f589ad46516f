//! Golden packets: for each rule kind and delivery mode, an input frame through the pipeline and
//! the expected output, both built from named fields by the test's own frame builder (etherparse). The
//! output is read back layer by layer with an independent parser — Ethernet, the tunnel's outer
//! IPv4/UDP/GUE, IPv4, TCP/UDP, every checksum — and then compared byte for byte. The member each
//! flow must reach is a pinned literal (see [`pinned`]), never asked of the code under test. Plus
//! the RST pair against a simulated client/server sequence space.

mod dataplane_common;

use dataplane_common::flags::{ACK, PSH, RST, SYN};
use dataplane_common::*;
use std::net::Ipv4Addr;
use vipmux::dataplane::{DropReason, Verdict};

const FWD: Verdict = Verdict::Forward { port: 0 };

/// What a forwarded frame's TTL is after the MUX routed it (one hop).
const ROUTED_TTL: u8 = 63;

/// The backends the MUX must choose, as literals.
///
/// Obtained once by running vipmux's distribution hash (the documented seeded MurmurHash3-finalizer
/// chain of the balance hash module, `hash_seed = 0x5eedcafe` as in the fixture) and the Maglev
/// table of pool "web" (vm1, vm2, vm3, equal weights) over exactly these tuples. That hash is a
/// stable, cross-MUX function — two MUXes with the same seed must pick the same backend — so a
/// change to the hash, the seed handling or the Maglev permutation must change these literals
/// deliberately. Never recompute them from the code under test.
mod pinned {
    use super::dataplane_common::{VM1, VM2, VM3};
    use std::net::Ipv4Addr;

    /// Rule "web": 192.0.2.10:40000 → 10.1.0.100:80 TCP.
    pub const WEB_40000: Ipv4Addr = VM1;
    /// Rule "dns": 192.0.2.10:5555 → 10.1.0.100:53 UDP.
    pub const DNS_5555: Ipv4Addr = VM2;
    /// Rule "float": 192.0.2.10:40001 → 10.1.0.101:80 TCP.
    pub const FLOAT_40001: Ipv4Addr = VM2;
    /// Rule "rst": 192.0.2.10:40100 → 10.1.0.107:80 TCP.
    pub const RST_40100: Ipv4Addr = VM3;
    /// GUE outer UDP source port of 192.0.2.10:7000 → 10.1.0.103:443 UDP (from the 5-tuple hash,
    /// folded into 49152..=65535).
    pub const GUE_SPORT_7000: u16 = 0xce30;

    /// Flow `i` of `distribution_modes` (client 192.0.2.(1 + i % 4), source port 20000 + i, to
    /// port 80 of the rule's VIP, TCP) goes to vm<digit i>.
    pub const WEB_5TUPLE: &str = "1222122222322332131233222132132332333322323222331332313311212211";
    /// The same flows under rule "sip" (source IP affinity).
    pub const SIP_2TUPLE: &str = "2131213121312131213121312131213121312131213121312131213121312131";
    /// The same flows under rule "sipp" (source IP and protocol affinity).
    pub const SIPP_3TUPLE: &str =
        "2312231223122312231223122312231223122312231223122312231223122312";

    /// The member a digit of the strings above names.
    pub fn vm(digit: u8) -> Ipv4Addr {
        match digit {
            b'1' => VM1,
            b'2' => VM2,
            b'3' => VM3,
            d => panic!("no vm{}", char::from(d)),
        }
    }
}

/// Runs `input` at time `now` and asserts it is forwarded as `want`.
fn forwards(p: &mut vipmux::dataplane::Pipeline, w: &World, input: &Frame, now: u32, want: &Frame) {
    let (v, out) = run(p, w, &input.bytes(), now);
    assert_eq!(v, FWD);
    assert_frame(&out, want);
}

/// A client's TCP frame as the gateway hands it to the MUX.
fn from_client(port: u16) -> Frame {
    Frame::tcp().from(CLIENT, port)
}

#[test]
fn nat_lb_rule_syn() {
    let w = World::standard();
    let mut p = pipeline();
    let dip = pinned::WEB_40000;
    let syn = from_client(40000).to(VIP_NAT, 80).flags(SYN).seq(1000);
    // Destination NAT to the member's backend port 8080; source kept; MAC to the member.
    let want = syn
        .clone()
        .eth(PORT_MAC, mac_of(dip))
        .to(dip, 8080)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &syn, 10, &want);
    // A data packet of the same flow with payload goes to the same member.
    let get = b"GET / HTTP/1.0\r\n\r\n";
    let data = syn.flags(ACK | PSH).seq(1001).ack(77).payload(get);
    let want = want.flags(ACK | PSH).seq(1001).ack(77).payload(get);
    forwards(&mut p, &w, &data, 11, &want);
}

#[test]
fn nat_udp_rule() {
    let w = World::standard();
    let mut p = pipeline();
    let dip = pinned::DNS_5555;
    let query = Frame::udp()
        .from(CLIENT, 5555)
        .to(VIP_NAT, 53)
        .payload(b"query");
    let want = query
        .clone()
        .eth(PORT_MAC, mac_of(dip))
        .to(dip, 5353)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &query, 1, &want);
    // The flow's next datagrams take the known-flow path (its stored checksum deltas).
    forwards(&mut p, &w, &query, 2, &want);
    let again = query.clone().payload(b"second query");
    let want = want.payload(b"second query");
    forwards(&mut p, &w, &again, 3, &want);
}

#[test]
fn nat_reply_reverse_rewrite() {
    let w = World::standard();
    let mut p = pipeline();
    // Behind the gateway: source becomes VIP:80, next hop the gateway.
    let syn_ack = Frame::tcp()
        .from(VM2, 8080)
        .to(CLIENT, 40000)
        .flags(SYN | ACK)
        .seq(5000)
        .ack(1001);
    let want = syn_ack
        .clone()
        .eth(PORT_MAC, GW_MAC)
        .from(VIP_NAT, 80)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &syn_ack, 1, &want);
    // On-link client: straight to its MAC.
    let answer = Frame::udp()
        .from(VM1, 5353)
        .to(CLIENT_LOCAL, 6000)
        .payload(b"answer");
    let want = answer
        .clone()
        .eth(PORT_MAC, mac_of(CLIENT_LOCAL))
        .from(VIP_NAT, 53)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &answer, 1, &want);
}

#[test]
fn floating_ip_mac_rewrite() {
    let w = World::standard();
    let mut p = pipeline();
    let dip = pinned::FLOAT_40001;
    let syn = from_client(40001).to(VIP_FLOAT, 80).flags(SYN).seq(7);
    // Destination stays the VIP; the port changes (backend_port 8080); MAC to the member.
    let want = syn
        .clone()
        .eth(PORT_MAC, mac_of(dip))
        .to(VIP_FLOAT, 8080)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &syn, 1, &want);
    // The flow's next packet takes the known-flow path: the same rewrite.
    let ack = syn.flags(ACK).seq(8).ack(99);
    let want = want.flags(ACK).seq(8).ack(99);
    forwards(&mut p, &w, &ack, 2, &want);
}

#[test]
fn ipip_encapsulation() {
    let w = World::standard();
    let mut p = pipeline();
    let syn = from_client(40002)
        .to(VIP_IPIP, 443)
        .flags(SYN)
        .seq(9)
        .payload(b"hi");
    // The member is not on-link: next hop = gateway. The inner packet is untouched (TTL kept);
    // the outer header is new (TTL 64) and copies DF and identification from the inner one.
    let outer = Tunnel::ipip(PORT_ADDR, TUN1)
        .ttl(64)
        .df(true)
        .ident(syn.ident);
    let want = syn.clone().eth(PORT_MAC, GW_MAC).tunnelled(outer);
    forwards(&mut p, &w, &syn, 1, &want);
}

#[test]
fn gue_encapsulation() {
    let w = World::standard();
    let mut p = pipeline();
    let quic = Frame::udp()
        .from(CLIENT, 7000)
        .to(VIP_GUE, 443)
        .payload(b"quic");
    // The pinned port must itself be in the ephemeral range (a re-pin from a broken hash would
    // not be): checked when the test compiles.
    const _: () = assert!(pinned::GUE_SPORT_7000 >= 0xc000);
    let sport = pinned::GUE_SPORT_7000;
    // Outer UDP to the pool's gue_port 6081, checksum 0; outer DF/ident copied from the inner.
    let outer = Tunnel::gue(PORT_ADDR, GUE1, sport, 6081)
        .ttl(64)
        .df(true)
        .ident(quic.ident);
    let want = quic.clone().eth(PORT_MAC, GW_MAC).tunnelled(outer);
    forwards(&mut p, &w, &quic, 1, &want);
    // The flow's next datagrams take the known-flow path (its stored source port): the same
    // outer port, first after the check that stamps the flow, then from the stamp.
    forwards(&mut p, &w, &quic, 2, &want);
    forwards(&mut p, &w, &quic, 3, &want);
}

#[test]
fn gue_mtu_too_big() {
    let w = World::standard();
    let mut p = pipeline();
    // 1500-byte IP packet: fits the port but not with 32 bytes of GUE.
    let input = Frame::udp()
        .from(CLIENT, 7001)
        .to(VIP_GUE, 443)
        .payload(&[0u8; 1500 - 28])
        .bytes();
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(
        v,
        Verdict::ToSlowPath(vipmux::dataplane::Exception::TooBig { mtu: 1468 })
    );
    assert_eq!(out, input, "a TooBig frame reaches the slow path untouched");
}

#[test]
fn inbound_nat_single_member() {
    let w = World::standard();
    let mut p = pipeline();
    // Rule "rdp": VIP:50001 → vm1:3389 (a single target: the choice is forced).
    let syn = from_client(40003).to(VIP_NAT, 50001).flags(SYN).seq(1);
    let want = syn
        .clone()
        .eth(PORT_MAC, mac_of(VM1))
        .to(VM1, 3389)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &syn, 1, &want);
    // Reply maps back to VIP:50001.
    let syn_ack = Frame::tcp()
        .from(VM1, 3389)
        .to(CLIENT, 40003)
        .flags(SYN | ACK)
        .seq(9)
        .ack(2);
    let want = syn_ack
        .clone()
        .eth(PORT_MAC, GW_MAC)
        .from(VIP_NAT, 50001)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &syn_ack, 1, &want);
}

#[test]
fn inbound_nat_port_range() {
    let w = World::standard();
    let mut p = pipeline();
    // Rule "ssh" (50100..=50199 → port 22): one frontend port per member, in configuration order.
    for (fport, m) in [(50100, VM1), (50101, VM2), (50102, VM3)] {
        let cport = fport - 50100 + 41000;
        let syn = from_client(cport).to(VIP_NAT, fport).flags(SYN).seq(1);
        let want = syn
            .clone()
            .eth(PORT_MAC, mac_of(m))
            .to(m, 22)
            .ttl(ROUTED_TTL);
        forwards(&mut p, &w, &syn, 1, &want);
        let reply = Frame::tcp()
            .from(m, 22)
            .to(CLIENT, cport)
            .flags(ACK)
            .seq(5)
            .ack(2);
        let want = reply
            .clone()
            .eth(PORT_MAC, GW_MAC)
            .from(VIP_NAT, fport)
            .ttl(ROUTED_TTL);
        forwards(&mut p, &w, &reply, 1, &want);
    }
    // A port of the range without a member (3 members, 100 ports).
    let syn = from_client(1).to(VIP_NAT, 50150).flags(SYN).seq(1);
    let (v, _) = run(&mut p, &w, &syn.bytes(), 1);
    assert_eq!(v, Verdict::Drop(DropReason::NoHealthyBackend));
}

#[test]
fn ha_ports_keep_port_any_protocol() {
    let w = World::standard();
    let mut p = pipeline();
    // Rule "ha": every port and protocol to pool "fw" (one member: the choice is forced).
    let syn = from_client(40004).to(VIP_HA, 3306).flags(SYN).seq(1);
    let want = syn
        .clone()
        .eth(PORT_MAC, mac_of(FW1))
        .to(FW1, 3306)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &syn, 1, &want);
    let dgram = Frame::udp()
        .from(CLIENT, 999)
        .to(VIP_HA, 4789)
        .payload(b"x");
    let want = dgram
        .clone()
        .eth(PORT_MAC, mac_of(FW1))
        .to(FW1, 4789)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &dgram, 1, &want);
    // Reply keeps the port too.
    let reply = Frame::udp().from(FW1, 4789).to(CLIENT, 999).payload(b"y");
    let want = reply
        .clone()
        .eth(PORT_MAC, GW_MAC)
        .from(VIP_HA, 4789)
        .ttl(ROUTED_TTL);
    forwards(&mut p, &w, &reply, 1, &want);
}

#[test]
fn distribution_modes() {
    let w = World::standard();
    let mut p = pipeline();
    for (name, vip, backend_port, members, affinity) in [
        ("web", VIP_NAT, 8080, pinned::WEB_5TUPLE, false),
        ("sip", VIP_SIP, 8081, pinned::SIP_2TUPLE, true),
        ("sipp", VIP_SIPP, 8082, pinned::SIPP_3TUPLE, true),
    ] {
        let mut seen = std::collections::HashSet::new();
        for (i, digit) in (0..64u16).zip(members.bytes()) {
            let client = Ipv4Addr::new(192, 0, 2, 1 + (i % 4) as u8);
            let m = pinned::vm(digit);
            let syn = Frame::tcp()
                .from(client, 20000 + i)
                .to(vip, 80)
                .flags(SYN)
                .seq(1);
            let want = syn
                .clone()
                .eth(PORT_MAC, mac_of(m))
                .to(m, backend_port)
                .ttl(ROUTED_TTL);
            let (v, out) = run(&mut p, &w, &syn.bytes(), 1);
            assert_eq!(v, FWD, "{name} #{i}");
            assert_frame(&out, &want);
            seen.insert((client, m));
        }
        // Each output matched the pinned member above; these check that the pinned tables
        // themselves have the mode's property, so a re-pin from a broken hash fails here.
        let used: std::collections::HashSet<_> = seen.iter().map(|x| x.1).collect();
        if affinity {
            // One member per client whatever the source port.
            assert_eq!(seen.len(), 4, "{name}: one member per client");
        } else {
            assert!(used.len() > 1, "{name}: the 5-tuple spreads one client");
        }
    }
}

/// The RST pair against a simulated client/server exchange.
#[test]
fn reset_pair_matches_both_rcv_nxt() {
    let w = World::standard();
    let mut p = pipeline();
    let dip = pinned::RST_40100;
    let client = from_client(40100).to(VIP_RST, 80);
    let server = Frame::tcp().from(dip, 8083).to(CLIENT, 40100);
    // Sequence spaces: client ISN 1000, server ISN 5000.
    let (mut c_nxt, mut s_nxt) = (1000u32, 5000u32);
    // What each end expects next (RCV.NXT).
    let (mut client_rcv_nxt, mut server_rcv_nxt);
    let mut t = 100;
    let send = |p: &mut vipmux::dataplane::Pipeline, f: &Frame, t: u32| {
        let (v, out) = run(p, &w, &f.bytes(), t);
        assert_eq!(v, FWD);
        check(&out);
    };
    send(&mut p, &client.clone().flags(SYN).seq(c_nxt), t);
    c_nxt += 1;
    server_rcv_nxt = c_nxt;
    t += 1;
    // SYN-ACK from the server through the MUX.
    send(
        &mut p,
        &server.clone().flags(SYN | ACK).seq(s_nxt).ack(c_nxt),
        t,
    );
    s_nxt += 1;
    client_rcv_nxt = s_nxt;
    send(
        &mut p,
        &client.clone().flags(ACK).seq(c_nxt).ack(client_rcv_nxt),
        t,
    );
    // Data both ways.
    for round in 0..3u32 {
        t += 5;
        let data = vec![b'c'; 100 + round as usize];
        let push = client
            .clone()
            .flags(ACK | PSH)
            .seq(c_nxt)
            .ack(client_rcv_nxt)
            .payload(&data);
        send(&mut p, &push, t);
        c_nxt += data.len() as u32;
        server_rcv_nxt = c_nxt;
        let push = server
            .clone()
            .flags(ACK | PSH)
            .seq(s_nxt)
            .ack(server_rcv_nxt)
            .payload(&[b's'; 300]);
        send(&mut p, &push, t);
        s_nxt += 300;
        client_rcv_nxt = s_nxt;
        send(
            &mut p,
            &client.clone().flags(ACK).seq(c_nxt).ack(client_rcv_nxt),
            t,
        );
    }
    // Not yet idle: 120 s of silence is not more than the 120 s timeout on the whole-second clock.
    let mut frames: Vec<(usize, Vec<u8>)> = Vec::new();
    let buckets = p.flow_buckets();
    p.expire(&w.view(), t + 120, buckets, |port, f| {
        frames.push((port, f.to_vec()))
    });
    assert!(frames.is_empty());
    let n = p.expire(&w.view(), t + 121, buckets, |port, f| {
        frames.push((port, f.to_vec()))
    });
    assert_eq!(n, 1);
    assert_eq!(frames.len(), 2, "two RSTs");
    assert_eq!((frames[0].0, frames[1].0), (0, 0), "both RSTs leave port 0");
    // A generated RST: identification 0, DF, window 0, no ACK.
    let rst = Frame::tcp().flags(RST).ident(0).window(0);
    // To the client: from VIP:80, seq = client's RCV.NXT, a fresh TTL, via the gateway.
    let want_client = rst
        .clone()
        .eth(PORT_MAC, GW_MAC)
        .from(VIP_RST, 80)
        .to(CLIENT, 40100)
        .seq(client_rcv_nxt)
        .ttl(64);
    assert_frame(&frames[0].1, &want_client);
    // To the backend: from client:port to DIP:8083 (as forwarded), seq = server's RCV.NXT.
    let want_backend = rst
        .eth(PORT_MAC, mac_of(dip))
        .from(CLIENT, 40100)
        .to(dip, 8083)
        .seq(server_rcv_nxt)
        .ttl(ROUTED_TTL);
    assert_frame(&frames[1].1, &want_backend);
    assert_eq!(p.counters().resets_sent, 2);
    // The late packet is dropped as idle-expired.
    let late = client.flags(ACK).seq(c_nxt).ack(client_rcv_nxt);
    let (v, _) = run(&mut p, &w, &late.bytes(), t + 121);
    assert_eq!(v, Verdict::Drop(DropReason::IdleExpired));
}
