//! Golden packets: for each rule kind and delivery mode, an input frame through the pipeline and
//! the exact expected output, built independently (etherparse), compared byte for byte; checksums
//! verified by etherparse. Plus the RST pair against a simulated client/server sequence space.

mod dataplane_common;

use dataplane_common::expect::{self, Ip};
use dataplane_common::*;
use std::net::Ipv4Addr;
use vipmux::balance::hash::{flow_hash, hash_2tuple, hash_3tuple, hash_5tuple};
use vipmux::balance::{MemberId, RuleId, Snapshot};
use vipmux::config::LoadDistribution;
use vipmux::dataplane::Verdict;
use vipmux::wire::builder::gue_source_port;
use vipmux::wire::TcpFlags;

const SEED: u64 = 0x5eedcafe;
const FWD: Verdict = Verdict::Forward { port: 0 };

fn rule(s: &Snapshot, name: &str) -> RuleId {
    s.rules.iter().find(|r| r.name == name).expect("rule").id
}

fn member_addr(s: &Snapshot, m: MemberId) -> Ipv4Addr {
    s.member(m).unwrap().addr
}

/// The member the pipeline must choose for a new flow (SPEC 3.3).
fn chosen(
    s: &Snapshot,
    r: RuleId,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    proto: u8,
) -> Ipv4Addr {
    let dist = s.rule(r).unwrap().load_distribution;
    let h = flow_hash(
        SEED,
        dist,
        u32::from(src),
        u32::from(dst),
        proto,
        sport,
        dport,
    );
    member_addr(s, s.choose(r, dport, h).expect("eligible member"))
}

fn ip(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Ip {
    Ip {
        src,
        dst,
        ttl,
        ident: 0x1234,
        df: true,
    }
}

fn frame(eth_src: vipmux::wire::MacAddr, eth_dst: vipmux::wire::MacAddr, l3: &[u8]) -> Vec<u8> {
    let mut v = expect::eth(eth_src, eth_dst);
    v.extend_from_slice(l3);
    v
}

#[test]
fn nat_lb_rule_syn() {
    let w = World::standard();
    let mut p = pipeline();
    let r = rule(&w.snapshot, "web");
    let dip = chosen(&w.snapshot, r, CLIENT, 40000, VIP_NAT, 80, 6);
    let input = tcp(
        sa(CLIENT, 40000),
        sa(VIP_NAT, 80),
        TcpFlags::SYN,
        1000,
        0,
        &[],
    );
    let (v, out) = run(&mut p, &w, &input, 10);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        mac_of(dip),
        &expect::tcp_packet(
            &ip(CLIENT, dip, 63),
            40000,
            8080,
            1000,
            0,
            true,
            false,
            false,
            false,
            8192,
            &[],
        ),
    );
    assert_eq!(out, want);
    check(&out);
    // A data packet of the same flow with payload goes to the same member.
    let input = tcp(
        sa(CLIENT, 40000),
        sa(VIP_NAT, 80),
        TcpFlags::ACK | TcpFlags::PSH,
        1001,
        77,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let (v, out) = run(&mut p, &w, &input, 11);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        mac_of(dip),
        &expect::tcp_packet(
            &ip(CLIENT, dip, 63),
            40000,
            8080,
            1001,
            77,
            false,
            true,
            false,
            true,
            8192,
            b"GET / HTTP/1.0\r\n\r\n",
        ),
    );
    assert_eq!(out, want);
    check(&out);
}

#[test]
fn nat_udp_rule() {
    let w = World::standard();
    let mut p = pipeline();
    let r = rule(&w.snapshot, "dns");
    let dip = chosen(&w.snapshot, r, CLIENT, 5555, VIP_NAT, 53, 17);
    let (v, out) = run(
        &mut p,
        &w,
        &udp(sa(CLIENT, 5555), sa(VIP_NAT, 53), b"query"),
        1,
    );
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        mac_of(dip),
        &expect::udp_packet(&ip(CLIENT, dip, 63), 5555, 5353, b"query"),
    );
    assert_eq!(out, want);
    check(&out);
}

#[test]
fn nat_reply_reverse_rewrite() {
    let w = World::standard();
    let mut p = pipeline();
    // Behind the gateway.
    let input = tcp(
        sa(VM2, 8080),
        sa(CLIENT, 40000),
        TcpFlags::SYN | TcpFlags::ACK,
        5000,
        1001,
        &[],
    );
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        GW_MAC,
        &expect::tcp_packet(
            &ip(VIP_NAT, CLIENT, 63),
            80,
            40000,
            5000,
            1001,
            true,
            true,
            false,
            false,
            8192,
            &[],
        ),
    );
    assert_eq!(out, want);
    check(&out);
    // On-link client: straight to its MAC.
    let input = udp(sa(VM1, 5353), sa(CLIENT_LOCAL, 6000), b"answer");
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        mac_of(CLIENT_LOCAL),
        &expect::udp_packet(&ip(VIP_NAT, CLIENT_LOCAL, 63), 53, 6000, b"answer"),
    );
    assert_eq!(out, want);
    check(&out);
}

#[test]
fn floating_ip_mac_rewrite() {
    let w = World::standard();
    let mut p = pipeline();
    let r = rule(&w.snapshot, "float");
    let dip = chosen(&w.snapshot, r, CLIENT, 40001, VIP_FLOAT, 80, 6);
    let input = tcp(
        sa(CLIENT, 40001),
        sa(VIP_FLOAT, 80),
        TcpFlags::SYN,
        7,
        0,
        &[],
    );
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, FWD);
    // Destination stays the VIP; the port changes (backend_port 8080); MAC to the member.
    let want = frame(
        PORT_MAC,
        mac_of(dip),
        &expect::tcp_packet(
            &ip(CLIENT, VIP_FLOAT, 63),
            40001,
            8080,
            7,
            0,
            true,
            false,
            false,
            false,
            8192,
            &[],
        ),
    );
    assert_eq!(out, want);
    check(&out);
}

#[test]
fn ipip_encapsulation() {
    let w = World::standard();
    let mut p = pipeline();
    let input = tcp(
        sa(CLIENT, 40002),
        sa(VIP_IPIP, 443),
        TcpFlags::SYN,
        9,
        0,
        b"hi",
    );
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, FWD);
    let inner = expect::tcp_packet(
        &ip(CLIENT, VIP_IPIP, 64),
        40002,
        443,
        9,
        0,
        true,
        false,
        false,
        false,
        8192,
        b"hi",
    );
    // The member is not on-link: next hop = gateway; outer TTL 64, inner TTL kept.
    let want = frame(
        PORT_MAC,
        GW_MAC,
        &expect::ipip(&ip(PORT_ADDR, TUN1, 64), &inner),
    );
    assert_eq!(out, want);
    check(&out);
    check(&frame(PORT_MAC, GW_MAC, &out[34..]));
}

#[test]
fn gue_encapsulation() {
    let w = World::standard();
    let mut p = pipeline();
    let input = udp(sa(CLIENT, 7000), sa(VIP_GUE, 443), b"quic");
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, FWD);
    let inner = expect::udp_packet(&ip(CLIENT, VIP_GUE, 64), 7000, 443, b"quic");
    let sport =
        gue_source_port(
            hash_5tuple(SEED, u32::from(CLIENT), u32::from(VIP_GUE), 17, 7000, 443) as u32,
        );
    assert!(sport >= 0xc000);
    let want = frame(
        PORT_MAC,
        GW_MAC,
        &expect::gue(&ip(PORT_ADDR, GUE1, 64), sport, 6081, &inner),
    );
    assert_eq!(out, want);
    check(&out);
    check(&frame(PORT_MAC, GW_MAC, &out[14 + 32..]));
}

#[test]
fn gue_mtu_too_big() {
    let w = World::standard();
    let mut p = pipeline();
    // 1500-byte IP packet: fits the port but not with 32 bytes of GUE.
    let payload = vec![0u8; 1500 - 28];
    let input = udp(sa(CLIENT, 7001), sa(VIP_GUE, 443), &payload);
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
    let input = tcp(
        sa(CLIENT, 40003),
        sa(VIP_NAT, 50001),
        TcpFlags::SYN,
        1,
        0,
        &[],
    );
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        mac_of(VM1),
        &expect::tcp_packet(
            &ip(CLIENT, VM1, 63),
            40003,
            3389,
            1,
            0,
            true,
            false,
            false,
            false,
            8192,
            &[],
        ),
    );
    assert_eq!(out, want);
    check(&out);
    // Reply maps back to VIP:50001.
    let (v, out) = run(
        &mut p,
        &w,
        &tcp(
            sa(VM1, 3389),
            sa(CLIENT, 40003),
            TcpFlags::SYN | TcpFlags::ACK,
            9,
            2,
            &[],
        ),
        1,
    );
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        GW_MAC,
        &expect::tcp_packet(
            &ip(VIP_NAT, CLIENT, 63),
            50001,
            40003,
            9,
            2,
            true,
            true,
            false,
            false,
            8192,
            &[],
        ),
    );
    assert_eq!(out, want);
}

#[test]
fn inbound_nat_port_range() {
    let w = World::standard();
    let mut p = pipeline();
    let r = rule(&w.snapshot, "ssh");
    let slots = w.snapshot.rule(r).unwrap().slots.clone();
    for (k, m) in slots.iter().enumerate().take(3) {
        let m = member_addr(&w.snapshot, m.expect("slot filled"));
        let fport = 50100 + k as u16;
        let input = tcp(
            sa(CLIENT, 41000 + k as u16),
            sa(VIP_NAT, fport),
            TcpFlags::SYN,
            1,
            0,
            &[],
        );
        let (v, out) = run(&mut p, &w, &input, 1);
        assert_eq!(v, FWD);
        let want = frame(
            PORT_MAC,
            mac_of(m),
            &expect::tcp_packet(
                &ip(CLIENT, m, 63),
                41000 + k as u16,
                22,
                1,
                0,
                true,
                false,
                false,
                false,
                8192,
                &[],
            ),
        );
        assert_eq!(out, want, "slot {k}");
        let (v, out) = run(
            &mut p,
            &w,
            &tcp(
                sa(m, 22),
                sa(CLIENT, 41000 + k as u16),
                TcpFlags::ACK,
                5,
                2,
                &[],
            ),
            1,
        );
        assert_eq!(v, FWD);
        let want = frame(
            PORT_MAC,
            GW_MAC,
            &expect::tcp_packet(
                &ip(VIP_NAT, CLIENT, 63),
                fport,
                41000 + k as u16,
                5,
                2,
                false,
                true,
                false,
                false,
                8192,
                &[],
            ),
        );
        assert_eq!(out, want, "reply of slot {k}");
    }
    // A port of the range without a member (3 members, 100 ports).
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 1), sa(VIP_NAT, 50150), TcpFlags::SYN, 1, 0, &[]),
        1,
    );
    assert_eq!(
        v,
        Verdict::Drop(vipmux::dataplane::DropReason::NoHealthyBackend)
    );
}

#[test]
fn ha_ports_keep_port_any_protocol() {
    let w = World::standard();
    let mut p = pipeline();
    let input = tcp(
        sa(CLIENT, 40004),
        sa(VIP_HA, 3306),
        TcpFlags::SYN,
        1,
        0,
        &[],
    );
    let (v, out) = run(&mut p, &w, &input, 1);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        mac_of(FW1),
        &expect::tcp_packet(
            &ip(CLIENT, FW1, 63),
            40004,
            3306,
            1,
            0,
            true,
            false,
            false,
            false,
            8192,
            &[],
        ),
    );
    assert_eq!(out, want);
    let (v, out) = run(&mut p, &w, &udp(sa(CLIENT, 999), sa(VIP_HA, 4789), b"x"), 1);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        mac_of(FW1),
        &expect::udp_packet(&ip(CLIENT, FW1, 63), 999, 4789, b"x"),
    );
    assert_eq!(out, want);
    // Reply keeps the port too.
    let (v, out) = run(&mut p, &w, &udp(sa(FW1, 4789), sa(CLIENT, 999), b"y"), 1);
    assert_eq!(v, FWD);
    let want = frame(
        PORT_MAC,
        GW_MAC,
        &expect::udp_packet(&ip(VIP_HA, CLIENT, 63), 4789, 999, b"y"),
    );
    assert_eq!(out, want);
}

#[test]
fn distribution_modes() {
    let w = World::standard();
    let s = &w.snapshot;
    let mut p = pipeline();
    for (name, vip, bport, dist) in [
        ("web", VIP_NAT, 8080, LoadDistribution::Default),
        ("sip", VIP_SIP, 8081, LoadDistribution::SourceIp),
        ("sipp", VIP_SIPP, 8082, LoadDistribution::SourceIpProtocol),
    ] {
        let r = rule(s, name);
        assert_eq!(s.rule(r).unwrap().load_distribution, dist);
        let mut seen = std::collections::HashSet::new();
        for i in 0..64u16 {
            let client = Ipv4Addr::new(192, 0, 2, 1 + (i % 4) as u8);
            let sport = 20000 + i;
            let (c, d) = (u32::from(client), u32::from(vip));
            let h = match dist {
                LoadDistribution::Default => hash_5tuple(SEED, c, d, 6, sport, 80),
                LoadDistribution::SourceIp => hash_2tuple(SEED, c, d),
                LoadDistribution::SourceIpProtocol => hash_3tuple(SEED, c, d, 6),
            };
            let m = member_addr(s, s.choose(r, 80, h).unwrap());
            let (v, out) = run(
                &mut p,
                &w,
                &tcp(sa(client, sport), sa(vip, 80), TcpFlags::SYN, 1, 0, &[]),
                1,
            );
            assert_eq!(v, FWD);
            let want = frame(
                PORT_MAC,
                mac_of(m),
                &expect::tcp_packet(
                    &ip(client, m, 63),
                    sport,
                    bport,
                    1,
                    0,
                    true,
                    false,
                    false,
                    false,
                    8192,
                    &[],
                ),
            );
            assert_eq!(out, want, "{name} #{i}");
            seen.insert((client, m));
        }
        let members: std::collections::HashSet<_> = seen.iter().map(|x| x.1).collect();
        match dist {
            // Affinity: one member per client whatever the source port.
            LoadDistribution::SourceIp | LoadDistribution::SourceIpProtocol => {
                assert_eq!(seen.len(), 4)
            }
            LoadDistribution::Default => assert!(members.len() > 1, "5-tuple spreads one client"),
        }
    }
}

/// The RST pair against a simulated client/server exchange (SPEC 3.6).
#[test]
fn reset_pair_matches_both_rcv_nxt() {
    let w = World::standard();
    let mut p = pipeline();
    let r = rule(&w.snapshot, "rst");
    let c = sa(CLIENT, 40100);
    let vip = sa(VIP_RST, 80);
    let dip = chosen(&w.snapshot, r, CLIENT, 40100, VIP_RST, 80, 6);
    let dsa = sa(dip, 8083);
    // Sequence spaces: client ISN 1000, server ISN 5000.
    let (mut c_nxt, mut s_nxt) = (1000u32, 5000u32);
    // What each end expects next (RCV.NXT).
    let (mut client_rcv_nxt, mut server_rcv_nxt);
    let mut t = 100;
    let send_c = |p: &mut vipmux::dataplane::Pipeline,
                  f: TcpFlags,
                  seq: u32,
                  ack: u32,
                  data: &[u8],
                  t: u32| {
        let (v, out) = run(p, &w, &tcp(c, vip, f, seq, ack, data), t);
        assert_eq!(v, FWD);
        check(&out);
    };
    send_c(&mut p, TcpFlags::SYN, c_nxt, 0, &[], t);
    c_nxt += 1;
    server_rcv_nxt = c_nxt;
    t += 1;
    // SYN-ACK from the server through the MUX.
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(dsa, c, TcpFlags::SYN | TcpFlags::ACK, s_nxt, c_nxt, &[]),
        t,
    );
    assert_eq!(v, FWD);
    s_nxt += 1;
    client_rcv_nxt = s_nxt;
    send_c(&mut p, TcpFlags::ACK, c_nxt, client_rcv_nxt, &[], t);
    // Data both ways.
    for round in 0..3u32 {
        t += 5;
        let data = vec![b'c'; 100 + round as usize];
        send_c(
            &mut p,
            TcpFlags::ACK | TcpFlags::PSH,
            c_nxt,
            client_rcv_nxt,
            &data,
            t,
        );
        c_nxt += data.len() as u32;
        server_rcv_nxt = c_nxt;
        let sdata = vec![b's'; 300];
        let (v, _) = run(
            &mut p,
            &w,
            &tcp(
                dsa,
                c,
                TcpFlags::ACK | TcpFlags::PSH,
                s_nxt,
                server_rcv_nxt,
                &sdata,
            ),
            t,
        );
        assert_eq!(v, FWD);
        s_nxt += 300;
        client_rcv_nxt = s_nxt;
        send_c(&mut p, TcpFlags::ACK, c_nxt, client_rcv_nxt, &[], t);
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
    // To the client: from VIP:80, seq = client's RCV.NXT, via the gateway.
    let want_client = frame(
        PORT_MAC,
        GW_MAC,
        &expect::tcp_packet(
            &Ip {
                src: VIP_RST,
                dst: CLIENT,
                ttl: 64,
                ident: 0,
                df: true,
            },
            80,
            40100,
            client_rcv_nxt,
            0,
            false,
            false,
            true,
            false,
            0,
            &[],
        ),
    );
    assert_eq!(frames[0], (0, want_client));
    // To the backend: from client:port to DIP:8083 (as forwarded), seq = server's RCV.NXT.
    let want_backend = frame(
        PORT_MAC,
        mac_of(dip),
        &expect::tcp_packet(
            &Ip {
                src: CLIENT,
                dst: dip,
                ttl: 63,
                ident: 0,
                df: true,
            },
            40100,
            8083,
            server_rcv_nxt,
            0,
            false,
            false,
            true,
            false,
            0,
            &[],
        ),
    );
    assert_eq!(frames[1], (0, want_backend));
    for (_, f) in &frames {
        check(f);
    }
    assert_eq!(p.counters().resets_sent, 2);
    // The late packet is dropped as idle-expired.
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(c, vip, TcpFlags::ACK, c_nxt, client_rcv_nxt, &[]),
        t + 121,
    );
    assert_eq!(v, Verdict::Drop(vipmux::dataplane::DropReason::IdleExpired));
}
