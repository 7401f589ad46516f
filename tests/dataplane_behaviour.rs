//! Behaviour of the pipeline over (virtual) time: idle expiry, silent vs reset, recently expired
//! vs rehash, health changes, all members down, a full flow table, and a counter for every drop.

mod dataplane_common;

use dataplane_common::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use vipmux::balance::ProbeState;
use vipmux::dataplane::{DropReason, Exception, Pipeline, PipelineConfig, Verdict};
use vipmux::flow::FlowState;
use vipmux::wire::{FrameSpec, PacketBuf, TcpFlags, VecBuf};

const FWD: Verdict = Verdict::Forward { port: 0 };

/// Destination IP of a forwarded frame (untagged).
fn dst_ip(frame: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33])
}

fn expire_all(p: &mut Pipeline, w: &World, now: u32) -> (usize, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let b = p.flow_buckets();
    let n = p.expire(&w.view(), now, b, |_, f| out.push(f.to_vec()));
    (n, out)
}

/// SYN then ACK of a client on the "web" rule; returns the member's address.
fn establish(p: &mut Pipeline, w: &World, client: Ipv4Addr, port: u16, now: u32) -> Ipv4Addr {
    let (v, out) = run(
        p,
        w,
        &tcp(sa(client, port), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
        now,
    );
    assert_eq!(v, FWD);
    let (v, out2) = run(
        p,
        w,
        &tcp(sa(client, port), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]),
        now,
    );
    assert_eq!(v, FWD);
    assert_eq!(dst_ip(&out), dst_ip(&out2));
    dst_ip(&out)
}

#[test]
fn idle_expiry_at_configured_time_and_silent() {
    let w = World::standard();
    let mut p = pipeline();
    establish(&mut p, &w, CLIENT, 1000, 100);
    // web: idle_timeout_seconds = 60.
    // The clock counts whole seconds: 60 s of silence is not yet more than the timeout.
    assert_eq!(expire_all(&mut p, &w, 160), (0, vec![]));
    assert_eq!(p.flows().count(), 1);
    assert_eq!(
        expire_all(&mut p, &w, 161),
        (1, vec![]),
        "expires silently once more than 60 s passed"
    );
    assert_eq!(p.flows().count(), 0);
    assert_eq!(p.counters().expired_flows, 1);
    assert_eq!(p.counters().resets_sent, 0);
    let web = rule_index(&w, "web");
    assert_eq!(p.counters().rules[web].active_flows(), 0);
    assert_eq!(p.counters().rules[web].new_flows, 1);
}

#[test]
fn refresh_postpones_expiry() {
    let w = World::standard();
    let mut p = pipeline();
    establish(&mut p, &w, CLIENT, 1000, 100);
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 1000), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]),
        150,
    );
    assert_eq!(v, FWD);
    assert_eq!(expire_all(&mut p, &w, 160).0, 0);
    assert_eq!(expire_all(&mut p, &w, 210).0, 0);
    assert_eq!(expire_all(&mut p, &w, 211).0, 1);
}

#[test]
fn no_reset_for_a_flow_never_established() {
    let w = World::standard();
    let mut p = pipeline();
    // Rule "rst" has enable_tcp_reset; a half-open flow expires (SYN timeout) without RSTs.
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 2000), sa(VIP_RST, 80), TcpFlags::SYN, 1, 0, &[]),
        0,
    );
    assert_eq!(v, FWD);
    assert_eq!(p.flows().next().unwrap().1.state, FlowState::SynSent);
    let (n, frames) = expire_all(&mut p, &w, 11);
    assert_eq!(n, 1);
    assert!(frames.is_empty());
}

#[test]
fn late_packet_idle_expired_but_unknown_mid_flow_rehashed() {
    let w = World::standard();
    let mut p = pipeline();
    let m = establish(&mut p, &w, CLIENT, 3000, 0);
    assert_eq!(expire_all(&mut p, &w, 61).0, 1);
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 3000), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]),
        62,
    );
    assert_eq!(v, Verdict::Drop(DropReason::IdleExpired));
    assert_eq!(p.counters().drop_count(DropReason::IdleExpired), 1);
    // A never-seen mid-flow packet (e.g. after a MUX restart) is re-hashed and adopted.
    let (v, out) = run(
        &mut p,
        &w,
        &tcp(
            sa(CLIENT, 3001),
            sa(VIP_NAT, 80),
            TcpFlags::ACK,
            50,
            60,
            &[],
        ),
        62,
    );
    assert_eq!(v, FWD);
    let (_, e) = p
        .flows()
        .find(|(k, _)| k.src_port == 3001)
        .expect("flow created");
    assert_eq!(e.state, FlowState::Established);
    assert_eq!(u32::from(dst_ip(&out)), e.member_addr);
    // A new SYN on the expired 5-tuple starts a fresh flow.
    let (v, out) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 3000), sa(VIP_NAT, 80), TcpFlags::SYN, 9, 0, &[]),
        63,
    );
    assert_eq!(v, FWD);
    assert_eq!(dst_ip(&out), m, "same hash, same member");
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 3000), sa(VIP_NAT, 80), TcpFlags::ACK, 10, 1, &[]),
        63,
    );
    assert_eq!(v, FWD);
}

#[test]
fn flow_found_expired_on_lookup_is_treated_as_expired() {
    let w = World::standard();
    let mut p = pipeline();
    establish(&mut p, &w, CLIENT, 3100, 0);
    // No sweep ran: the packet at t = 61 finds the entry expired.
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 3100), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]),
        61,
    );
    assert_eq!(v, Verdict::Drop(DropReason::IdleExpired));
    assert_eq!(p.flows().count(), 0);
}

/// The standard configuration with rule "web" at a 10-minute idle timeout (the longest).
fn web_idle_ten_minutes() -> World {
    World::new(&config_with(|t| {
        let rules = t
            .get_mut("load_balancing_rules")
            .and_then(toml::Value::as_array_mut)
            .expect("[[load_balancing_rules]]");
        let web = rules
            .iter_mut()
            .filter_map(toml::Value::as_table_mut)
            .find(|r| r.get("name").and_then(toml::Value::as_str) == Some("web"))
            .expect("rule web");
        web.remove("idle_timeout_seconds");
        web.insert("idle_timeout_minutes".into(), 10.into());
    }))
}

#[test]
fn recently_expired_covers_the_longest_idle_timeout() {
    let w = web_idle_ten_minutes();
    assert_eq!(w.snapshot.longest_idle_timeout_secs, 600);
    let mut p = pipeline();
    establish(&mut p, &w, CLIENT, 3200, 0);
    assert_eq!(expire_all(&mut p, &w, 600).0, 0);
    assert_eq!(expire_all(&mut p, &w, 601).0, 1);
    // Well past a fixed 120 s, within the 10 minutes: still the expired connection.
    let late = tcp(sa(CLIENT, 3200), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]);
    let (v, _) = run(&mut p, &w, &late, 601 + 599);
    assert_eq!(v, Verdict::Drop(DropReason::IdleExpired));
    // Once the window has passed it is forgotten: re-hashed like any unknown flow.
    let (v, _) = run(&mut p, &w, &late, 601 + 600);
    assert_eq!(v, FWD);
}

#[test]
fn reload_changing_the_longest_idle_timeout_applies_at_once() {
    let short = World::standard();
    let long = web_idle_ten_minutes();
    assert_eq!(short.snapshot.longest_idle_timeout_secs, 240);
    let mut p = pipeline();
    // A flow expired under the 240 s configuration is remembered 240 s.
    establish(&mut p, &short, CLIENT, 3300, 0);
    assert_eq!(expire_all(&mut p, &short, 61).0, 1);
    let late = |port| tcp(sa(CLIENT, port), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]);
    // Reload to 10 minutes: flows expired from now on are remembered 600 s.
    establish(&mut p, &long, CLIENT, 3301, 100);
    assert_eq!(expire_all(&mut p, &long, 701).0, 1);
    let (v, _) = run(&mut p, &long, &late(3301), 701 + 500);
    assert_eq!(v, Verdict::Drop(DropReason::IdleExpired));
    // The key noted before the reload kept its 240 s.
    let (v, _) = run(&mut p, &long, &late(3300), 61 + 240);
    assert_eq!(v, FWD);
}

#[test]
fn missing_flow_drop() {
    let w = World::new(&config_with(|t| {
        table(t, "appliance").insert("missing_flow".into(), "drop".into());
    }));
    let mut p = pipeline();
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(
            sa(CLIENT, 3002),
            sa(VIP_NAT, 80),
            TcpFlags::ACK,
            50,
            60,
            &[],
        ),
        1,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoFlow));
    assert_eq!(p.counters().drop_count(DropReason::NoFlow), 1);
    assert_eq!(p.flows().count(), 0);
}

#[test]
fn probe_down_tcp_flow_kept_new_flows_avoid_member() {
    let mut w = World::standard();
    let mut p = pipeline();
    let m = establish(&mut p, &w, CLIENT, 4000, 0);
    w.set_health(m, ProbeState::Down);
    for i in 0..5 {
        let (v, out) = web_segment(&mut p, &w, TcpFlags::ACK, 2 + i, 1, 1);
        assert_eq!(v, FWD);
        assert_eq!(dst_ip(&out), m, "established TCP keeps its member");
    }
    for port in 5000..5100 {
        let (v, out) = run(
            &mut p,
            &w,
            &tcp(sa(CLIENT, port), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
            1,
        );
        assert_eq!(v, FWD);
        assert_ne!(dst_ip(&out), m, "no new flow to a probe-down member");
    }
}

/// A segment from the client's port 4000 to the "web" rule at time `now`.
fn web_segment(
    p: &mut Pipeline,
    w: &World,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    now: u32,
) -> (Verdict, Vec<u8>) {
    let frame = tcp(sa(CLIENT, 4000), sa(VIP_NAT, 80), flags, seq, ack, &[]);
    run(p, w, &frame, now)
}

/// A client reusing a closed connection's 5-tuple opens a new connection: when the old member
/// went down meanwhile, the SYN is balanced afresh instead of following the stale entry (the
/// member, its service stopped, would refuse it).
#[test]
fn syn_reusing_a_closed_flow_avoids_a_down_member() {
    for close in [TcpFlags::FIN | TcpFlags::ACK, TcpFlags::RST] {
        let mut w = World::standard();
        let mut p = pipeline();
        let m = establish(&mut p, &w, CLIENT, 4000, 0);
        assert_eq!(web_segment(&mut p, &w, close, 2, 1, 1).0, FWD);
        w.set_health(m, ProbeState::Down);
        let (v, out) = web_segment(&mut p, &w, TcpFlags::SYN, 9000, 0, 2);
        assert_eq!(v, FWD);
        let m2 = dst_ip(&out);
        assert_ne!(
            m2, m,
            "a new connection on a closed 5-tuple went to the down member"
        );
        check(&out);
        let (_, e) = p.flows().next().unwrap();
        assert_eq!(
            (e.member_addr, e.state),
            (u32::from(m2), FlowState::SynSent)
        );
        // The new connection then stays with its new member.
        let (v, out) = web_segment(&mut p, &w, TcpFlags::ACK, 9001, 1, 2);
        assert_eq!((v, dst_ip(&out)), (FWD, m2));
    }
}

#[test]
fn udp_flow_moves_when_member_goes_down() {
    let mut w = World::standard();
    let mut p = pipeline();
    let (v, out) = run(&mut p, &w, &udp(sa(CLIENT, 6000), sa(VIP_NAT, 53), b"q"), 0);
    assert_eq!(v, FWD);
    let m = dst_ip(&out);
    w.set_health(m, ProbeState::Down);
    let (v, out) = run(&mut p, &w, &udp(sa(CLIENT, 6000), sa(VIP_NAT, 53), b"q"), 1);
    assert_eq!(v, FWD);
    let m2 = dst_ip(&out);
    assert_ne!(m2, m, "UDP flow moved");
    check(&out);
    let (_, e) = p.flows().next().unwrap();
    assert_eq!(e.member_addr, u32::from(m2));
    // The member comes back: the flow stays where it is.
    w.set_health(m, ProbeState::Up);
    let (_, out) = run(&mut p, &w, &udp(sa(CLIENT, 6000), sa(VIP_NAT, 53), b"q"), 2);
    assert_eq!(dst_ip(&out), m2);
    check(&out);
}

#[test]
fn all_members_down() {
    let mut w = World::standard();
    let mut p = pipeline();
    let m = establish(&mut p, &w, CLIENT, 7000, 0);
    let (_, _) = run(&mut p, &w, &udp(sa(CLIENT, 7001), sa(VIP_NAT, 53), b"q"), 0);
    for a in [VM1, VM2, VM3] {
        w.set_health(a, ProbeState::Down);
    }
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 7002), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
        1,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoHealthyBackend));
    let (v, out) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 7000), sa(VIP_NAT, 80), TcpFlags::ACK, 3, 1, &[]),
        1,
    );
    assert_eq!(v, FWD, "established TCP continues");
    assert_eq!(dst_ip(&out), m);
    let (v, _) = run(&mut p, &w, &udp(sa(CLIENT, 7001), sa(VIP_NAT, 53), b"q"), 1);
    assert_eq!(v, Verdict::Drop(DropReason::NoHealthyBackend), "UDP stops");
    assert_eq!(p.counters().drop_count(DropReason::NoHealthyBackend), 2);
}

#[test]
fn all_members_down_with_no_healthy_backends_all() {
    let mut w = World::new(&config_with(|t| {
        table(t, "appliance").insert("no_healthy_backends".into(), "all".into());
    }));
    let mut p = pipeline();
    for a in [VM1, VM2, VM3] {
        w.set_health(a, ProbeState::Down);
    }
    let mut seen = std::collections::HashSet::new();
    for port in 0..60 {
        let (v, out) = run(
            &mut p,
            &w,
            &tcp(
                sa(CLIENT, 8000 + port),
                sa(VIP_NAT, 80),
                TcpFlags::SYN,
                1,
                0,
                &[],
            ),
            1,
        );
        assert_eq!(v, FWD);
        seen.insert(dst_ip(&out));
    }
    assert_eq!(seen.len(), 3, "spread over all members as if up");
    let (v, _) = run(&mut p, &w, &udp(sa(CLIENT, 1), sa(VIP_NAT, 53), b"q"), 1);
    assert_eq!(v, FWD);
}

#[test]
fn table_full_keeps_established_flows() {
    let w = World::standard();
    // 16 slots: one bucket.
    let mut p = Pipeline::new(&PipelineConfig {
        flow_capacity: 16,
        recent_capacity: 64,
        flow_capacity6: None,
    });
    let mut members = Vec::new();
    for i in 0..15u16 {
        members.push(establish(&mut p, &w, CLIENT, 9000 + i, 0));
    }
    // One half-open flow: the first victim.
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 9100), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
        0,
    );
    assert_eq!(v, FWD);
    assert_eq!(p.flows().count(), 16);
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 9101), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
        1,
    );
    assert_eq!(v, FWD);
    assert!(
        p.flows().all(|(k, _)| k.src_port != 9100),
        "half-open evicted first"
    );
    assert_eq!(p.counters().drop_count(DropReason::FlowTableFull), 0);
    // Complete it: now 16 established flows.
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 9101), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]),
        1,
    );
    assert_eq!(v, FWD);
    // Full of established flows: new flows still forward, untracked, counted.
    for i in 0..10u16 {
        let (v, out) = run(
            &mut p,
            &w,
            &tcp(
                sa(CLIENT, 9200 + i),
                sa(VIP_NAT, 80),
                TcpFlags::SYN,
                1,
                0,
                &[],
            ),
            2,
        );
        assert_eq!(v, FWD);
        check(&out);
    }
    assert_eq!(p.counters().drop_count(DropReason::FlowTableFull), 10);
    assert_eq!(p.counters().untracked, 10);
    assert_eq!(p.flows().count(), 16);
    for (i, m) in members.iter().enumerate() {
        let (v, out) = run(
            &mut p,
            &w,
            &tcp(
                sa(CLIENT, 9000 + i as u16),
                sa(VIP_NAT, 80),
                TcpFlags::ACK,
                3,
                1,
                &[],
            ),
            3,
        );
        assert_eq!(v, FWD);
        assert_eq!(dst_ip(&out), *m, "established flow preserved");
    }
}

fn frame_with<'a>(f: impl FnOnce(&mut FrameSpec<'a>)) -> Vec<u8> {
    let mut s = FrameSpec::udp(sa(CLIENT, 5555), sa(VIP_NAT, 53), b"payload");
    s.src_mac = GW_MAC;
    s.dst_mac = PORT_MAC;
    f(&mut s);
    s.to_vec()
}

#[test]
fn every_drop_and_exception_has_its_counter() {
    // UDP only, 8 ports each: members' TCP has no outbound rule, their UDP can run out.
    let mut w = World::new(&config_with_outbound(toml::toml! {
        name = "egress"
        frontends = ["nat"]
        backend_pool = "web"
        protocol = "udp"
        allocated_outbound_ports = 8
    }));
    let mut p = pipeline();
    let expect =
        |p: &mut Pipeline, w: &World, frame: &[u8], v: Verdict, reason: Option<DropReason>| {
            let before = reason.map(|r| p.counters().drop_count(r));
            let (got, _) = run(p, w, frame, 1);
            assert_eq!(got, v);
            if let (Some(r), Some(b)) = (reason, before) {
                assert_eq!(p.counters().drop_count(r), b + 1, "{}", r.name());
            }
        };
    let good = frame_with(|_| {});
    expect(
        &mut p,
        &w,
        &good[..30],
        Verdict::Drop(DropReason::BadHeader),
        Some(DropReason::BadHeader),
    );
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    expect(
        &mut p,
        &w,
        &bad_ihl,
        Verdict::Drop(DropReason::BadHeader),
        Some(DropReason::BadHeader),
    );
    let mut long = good.clone();
    long[16..18].copy_from_slice(&2000u16.to_be_bytes());
    expect(
        &mut p,
        &w,
        &long,
        Verdict::Drop(DropReason::BadHeader),
        Some(DropReason::BadHeader),
    );
    let mut bad_doff = tcp(sa(CLIENT, 1), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]);
    bad_doff[46] = 0x20;
    expect(
        &mut p,
        &w,
        &bad_doff,
        Verdict::Drop(DropReason::BadHeader),
        Some(DropReason::BadHeader),
    );
    // An IPv4 packet labelled IPv6 fails IPv6 classification (version 4).
    let mut v6 = good.clone();
    v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    expect(
        &mut p,
        &w,
        &v6,
        Verdict::Drop(DropReason::BadHeader),
        Some(DropReason::BadHeader),
    );
    let mut lldp = good.clone();
    lldp[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    expect(
        &mut p,
        &w,
        &lldp,
        Verdict::Drop(DropReason::Unsupported),
        Some(DropReason::Unsupported),
    );
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    expect(&mut p, &w, &arp, Verdict::ToSlowPath(Exception::Arp), None);
    expect(
        &mut p,
        &w,
        &frame_with(|s| s.dst_ip = PORT_ADDR),
        Verdict::ToSlowPath(Exception::ToAppliance),
        None,
    );
    let ping = {
        let mut s = FrameSpec::echo_request(CLIENT, VIP_NAT, 1, 1);
        s.dst_mac = PORT_MAC;
        s.to_vec()
    };
    expect(
        &mut p,
        &w,
        &ping,
        Verdict::ToSlowPath(Exception::IcmpToFrontend),
        None,
    );
    let mut frag = good.clone();
    frag[20] |= 0x20; // MF
    expect(
        &mut p,
        &w,
        &frag,
        Verdict::ToSlowPath(Exception::Fragment),
        Some(DropReason::Fragment),
    );
    expect(
        &mut p,
        &w,
        &frame_with(|s| s.ttl = 1),
        Verdict::ToSlowPath(Exception::TtlExceeded),
        Some(DropReason::Ttl),
    );
    let big = vec![0u8; 1480];
    expect(
        &mut p,
        &w,
        &frame_with(|s| {
            s.payload = &big;
            s.dont_frag = false;
        }),
        Verdict::Drop(DropReason::TooBig),
        Some(DropReason::TooBig),
    );
    expect(
        &mut p,
        &w,
        &frame_with(|s| s.payload = &big),
        Verdict::ToSlowPath(Exception::TooBig { mtu: 1500 }),
        Some(DropReason::TooBig),
    );
    expect(
        &mut p,
        &w,
        &frame_with(|s| s.dst_ip = Ipv4Addr::new(10, 1, 0, 250)),
        Verdict::Drop(DropReason::NoRule),
        Some(DropReason::NoRule),
    );
    expect(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 1), sa(VIP_NAT, 81), TcpFlags::SYN, 1, 0, &[]),
        Verdict::Drop(DropReason::NoRule),
        Some(DropReason::NoRule),
    );
    // A member's own traffic that is no NAT reply and that no outbound rule covers (TCP).
    expect(
        &mut p,
        &w,
        &tcp(sa(VM1, 33333), sa(CLIENT, 443), TcpFlags::SYN, 1, 0, &[]),
        Verdict::Drop(DropReason::NoOutboundRule),
        Some(DropReason::NoOutboundRule),
    );
    // Its UDP is translated, until the 8 ports of its block are taken.
    for port in 0..8 {
        let q = udp(sa(VM1, 30000 + port), sa(CLIENT, 53), b"q");
        assert_eq!(run(&mut p, &w, &q, 1).0, FWD);
    }
    expect(
        &mut p,
        &w,
        &udp(sa(VM1, 30008), sa(CLIENT, 53), b"q"),
        Verdict::Drop(DropReason::SnatExhausted),
        Some(DropReason::SnatExhausted),
    );
    // No neighbour for the member yet.
    let saved = std::mem::take(&mut w.neighbours);
    expect(
        &mut p,
        &w,
        &tcp(sa(CLIENT, 2), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]),
        Verdict::Drop(DropReason::NoNeighbour),
        Some(DropReason::NoNeighbour),
    );
    w.neighbours = saved;
    // No headroom to encapsulate.
    let ipip = tcp(sa(CLIENT, 3), sa(VIP_IPIP, 443), TcpFlags::SYN, 1, 0, &[]);
    let mut bufs = [VecBuf::with_room(8, &ipip, 0)];
    let mut v = [Verdict::Drop(DropReason::TxFull)];
    p.process(&w.view(), 0, &mut bufs, &mut v, 1);
    assert_eq!(v[0], Verdict::Drop(DropReason::NoHeadroom));
    assert_eq!(p.counters().drop_count(DropReason::NoHeadroom), 1);
    // tx ring full, reported by the worker.
    let tx = p.counters().tx;
    p.note_tx(2);
    assert_eq!(p.counters().drop_count(DropReason::TxFull), 2);
    assert_eq!(p.counters().tx, tx.saturating_sub(2));
    // Exceptions are counted per kind.
    assert_eq!(p.counters().exception_count(Exception::Arp), 1);
    assert_eq!(p.counters().exception_count(Exception::ToAppliance), 1);
    assert_eq!(p.counters().exception_count(Exception::IcmpToFrontend), 1);
    assert_eq!(
        p.counters().rx,
        18 + 9,
        "18 frames, and 9 of a member's UDP"
    );
}

#[test]
fn no_route_without_gateway() {
    let w = World::new(include_str!("fixtures/dataplane_no_gateway.toml"));
    let mut p = pipeline();
    // A NAT reply toward a client that is neither on-link nor reachable by a gateway.
    let (v, _) = run(
        &mut p,
        &w,
        &tcp(sa(VM1, 8080), sa(CLIENT, 1), TcpFlags::ACK, 1, 1, &[]),
        1,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoRoute));
    assert_eq!(p.counters().drop_count(DropReason::NoRoute), 1);
}

#[test]
fn vlan_tag_is_kept() {
    let w = World::standard();
    let mut p = pipeline();
    let mut s = FrameSpec::tcp(sa(CLIENT, 1234), sa(VIP_NAT, 80), TcpFlags::SYN);
    s.vlan = Some(100);
    s.dst_mac = PORT_MAC;
    let (v, out) = run(&mut p, &w, &s.to_vec(), 1);
    assert_eq!(v, FWD);
    assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 100]);
    check(&out);
}

/// The index of the rule named `name` in the world's snapshot.
fn rule_index(w: &World, name: &str) -> usize {
    w.snapshot
        .rules
        .iter()
        .position(|r| r.name == name)
        .unwrap()
}

#[test]
fn burst_with_duplicate_new_flow_creates_one_entry() {
    let w = World::standard();
    let mut p = pipeline();
    let f = udp(sa(CLIENT, 4444), sa(VIP_NAT, 53), b"x");
    let mut bufs: Vec<VecBuf> = (0..32).map(|_| VecBuf::with_room(128, &f, 0)).collect();
    let mut v = [Verdict::Drop(DropReason::TxFull); 32];
    p.process(&w.view(), 0, &mut bufs, &mut v, 1);
    assert!(v.iter().all(|x| *x == FWD));
    assert_eq!(p.flows().count(), 1);
    assert!(bufs.windows(2).all(|b| b[0].data() == b[1].data()));
    let dns = rule_index(&w, "dns");
    assert_eq!(p.counters().rules[dns].new_flows, 1);
    assert_eq!(p.counters().rules[dns].packets, 32);
    assert_eq!(p.counters().tx, 32);
}

/// New flows of a burst, the first one's key again at the end: one entry per key, the repeat
/// finds the entry inserted earlier in the burst among the other inserts.
#[test]
fn burst_of_new_flows_with_a_repeat_at_the_end_creates_one_entry_per_key() {
    let w = World::standard();
    let mut p = pipeline();
    let f = |port| udp(sa(CLIENT, port), sa(VIP_NAT, 53), b"x");
    let mut bufs: Vec<VecBuf> = (0..31)
        .map(|i| f(5000 + i))
        .chain([f(5000)])
        .map(|f| VecBuf::with_room(128, &f, 0))
        .collect();
    let mut v = [Verdict::Drop(DropReason::TxFull); 32];
    p.process(&w.view(), 0, &mut bufs, &mut v, 1);
    assert!(v.iter().all(|x| *x == FWD));
    assert_eq!(p.flows().count(), 31);
    assert_eq!(bufs[0].data(), bufs[31].data());
    let dns = rule_index(&w, "dns");
    assert_eq!(p.counters().rules[dns].new_flows, 31);
    assert_eq!(p.counters().rules[dns].packets, 32);
}

/// A restart with `missing_flow = "rehash"`: while the first probe round is under way (one member
/// answered, the others unknown), every mid-flow packet still goes to the member it went to before
/// (unknown counts as up, docs/design.md §3.8) and SYNs are held as `probes_pending`; once the
/// round is complete, unknown members count as down again.
#[test]
fn restart_rehash_waits_for_the_first_probe_round() {
    let w = World::standard();
    let mut before = pipeline();
    let clients: Vec<(u16, Ipv4Addr)> = (0..64u16)
        .map(|i| (5000 + i, establish(&mut before, &w, CLIENT, 5000 + i, 0)))
        .collect();
    let used: std::collections::BTreeSet<_> = clients.iter().map(|(_, m)| *m).collect();
    assert!(used.len() >= 2, "64 flows on one member: {used:?}");

    // The restarted MUX: empty flow table, only VM1's first probe answered so far.
    let mut health = vipmux::balance::Health::at_start();
    health.set("p", VM1, ProbeState::Up);
    let mut restarted = World::standard();
    restarted.health = health;
    restarted.snapshot = vipmux::balance::Snapshot::compile(&restarted.config, &restarted.health);
    let mut p = pipeline();
    for (port, member) in &clients {
        let ack = tcp(sa(CLIENT, *port), sa(VIP_NAT, 80), TcpFlags::ACK, 9, 9, &[]);
        let (v, out) = run(&mut p, &restarted, &ack, 1);
        assert_eq!(v, FWD, "port {port}");
        assert_eq!(dst_ip(&out), *member, "port {port} rehashed elsewhere");
    }
    let syn = tcp(sa(CLIENT, 6000), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]);
    assert_eq!(
        run(&mut p, &restarted, &syn, 1).0,
        Verdict::Drop(DropReason::ProbesPending)
    );
    assert_eq!(p.counters().drop_count(DropReason::ProbesPending), 1);

    // Round complete with VM2 and VM3 still unknown: they count as down, new flows go to VM1.
    restarted.health.set_settling(false);
    restarted.snapshot = vipmux::balance::Snapshot::compile(&restarted.config, &restarted.health);
    let (v, out) = run(&mut p, &restarted, &syn, 2);
    assert_eq!(v, FWD);
    assert_eq!(dst_ip(&out), VM1);
}

/// The counters of the members that forwarded a packet.
fn used_members(p: &Pipeline) -> Vec<vipmux::dataplane::MemberCounters> {
    p.counters()
        .members
        .iter()
        .filter(|c| c.packets > 0)
        .copied()
        .collect()
}

/// A SYN retransmitted on a known flow is counted as a SYN of its rule and member (and as a
/// packet); plain ACKs count as packets only.
#[test]
fn known_flow_syn_is_counted_for_rule_and_member() {
    let w = World::standard();
    let mut p = pipeline();
    establish(&mut p, &w, CLIENT, 3100, 0);
    let syn = tcp(sa(CLIENT, 3100), sa(VIP_NAT, 80), TcpFlags::SYN, 1, 0, &[]);
    assert_eq!(run(&mut p, &w, &syn, 1).0, FWD);
    let ack = tcp(sa(CLIENT, 3100), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]);
    assert_eq!(run(&mut p, &w, &ack, 1).0, FWD);
    let web = rule_index(&w, "web");
    let rc = p.counters().rules[web];
    assert_eq!((rc.packets, rc.syns, rc.new_flows), (4, 2, 1));
    let used = used_members(&p);
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!((used[0].packets, used[0].syns), (4, 2));
    assert_eq!(p.counters().tx, 4);
}

#[test]
fn member_and_idle_counters_read_by_diagnose() {
    let w = World::standard();
    let mut p = pipeline();
    let m = establish(&mut p, &w, CLIENT, 3000, 0);
    let reply = tcp(sa(m, 8080), sa(CLIENT, 3000), TcpFlags::ACK, 1, 2, &[]);
    assert_eq!(run(&mut p, &w, &reply, 1).0, FWD);
    let used = used_members(&p);
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!((used[0].packets, used[0].syns, used[0].replies), (2, 1, 1));
    assert_eq!(expire_all(&mut p, &w, 62).0, 1);
    let late = tcp(sa(CLIENT, 3000), sa(VIP_NAT, 80), TcpFlags::ACK, 2, 1, &[]);
    assert_eq!(
        run(&mut p, &w, &late, 63).0,
        Verdict::Drop(DropReason::IdleExpired)
    );
    let idle: Vec<_> = p
        .counters()
        .rule_idle
        .iter()
        .filter(|r| r.expired > 0 || r.late_packets > 0)
        .copied()
        .collect();
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert_eq!((idle[0].expired, idle[0].late_packets), (1, 1));
}

/// Runs `frames` through `p` as one burst at `now`; returns the verdicts and output frames.
fn run_burst(p: &mut Pipeline, w: &World, frames: &[Vec<u8>], now: u32) -> Vec<(Verdict, Vec<u8>)> {
    let mut bufs: Vec<VecBuf> = frames
        .iter()
        .map(|f| VecBuf::with_room(128, f, 0))
        .collect();
    let mut v = vec![Verdict::Drop(DropReason::TxFull); frames.len()];
    p.process(&w.view(), 0, &mut bufs, &mut v, now);
    v.into_iter()
        .zip(bufs.iter().map(|b| b.data().to_vec()))
        .collect()
}

/// The established lane (a burst's leading plain ACKs of known flows, decided in a loop of their
/// own) decides as the general path: the same frames, verdicts, counters and flow entries when
/// the ACKs lead the burst (the lane takes them) as when a new flow's SYN leads it (the lane
/// stops at the SYN and the general path takes every packet). For every delivery the lane
/// makes: NAT at constant offsets, floating IP by MAC rewrite, IPIP and GUE.
#[test]
fn established_lane_decides_as_the_general_path() {
    for vip in [
        sa(VIP_NAT, 80),
        sa(VIP_FLOAT, 80),
        sa(VIP_IPIP, 443),
        sa(VIP_GUE, 443),
    ] {
        lane_against_general(vip);
    }
}

/// [`established_lane_decides_as_the_general_path`] for the rule of `vip`.
fn lane_against_general(vip: SocketAddrV4) {
    let w = World::standard();
    let clients: Vec<_> = (0..5).map(|i| sa(CLIENT, 41000 + i)).collect();
    let isn = |i: usize| (u32::MAX - 2500).wrapping_add(1000 * i as u32);
    let open = |p: &mut Pipeline| {
        for (i, &c) in clients.iter().enumerate() {
            run(p, &w, &tcp(c, vip, TcpFlags::SYN, isn(i), 0, &[]), 10);
            run(
                p,
                &w,
                &tcp(c, vip, TcpFlags::ACK, isn(i).wrapping_add(1), 9, &[]),
                10,
            );
        }
    };
    let (mut lane, mut general) = (pipeline(), pipeline());
    open(&mut lane);
    open(&mut general);
    // Plain ACKs with and without data (PSH too), sequence numbers across the wrap.
    let acks: Vec<Vec<u8>> = clients
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| {
            let seq = isn(i).wrapping_add(1);
            [
                tcp(c, vip, TcpFlags::ACK, seq, 9, b"hello"),
                tcp(
                    c,
                    vip,
                    TcpFlags::ACK | TcpFlags::PSH,
                    seq.wrapping_add(5),
                    30,
                    &[7; 1000],
                ),
                tcp(c, vip, TcpFlags::ACK, seq.wrapping_add(1005), 60, &[]),
            ]
        })
        .collect();
    let syn = tcp(sa(CLIENT, 42000), vip, TcpFlags::SYN, 5, 0, &[]);
    let lane_out = run_burst(
        &mut lane,
        &w,
        &[acks.clone(), vec![syn.clone()]].concat(),
        20,
    );
    let general_out = run_burst(&mut general, &w, &[vec![syn], acks.clone()].concat(), 20);
    assert!(
        lane_out
            .iter()
            .all(|(v, _)| matches!(v, Verdict::Forward { .. })),
        "{vip}"
    );
    // Outputs in each burst's order: the ACKs first in one, after the SYN in the other.
    assert_eq!(lane_out[acks.len()], general_out[0], "{vip}: the SYN");
    assert_eq!(lane_out[..acks.len()], general_out[1..], "{vip}: the ACKs");
    assert_ne!(lane_out[0].1, acks[0], "{vip}: rewritten");
    assert_eq!(
        format!("{:?}", lane.counters()),
        format!("{:?}", general.counters()),
        "{vip}"
    );
    let entries = |p: &Pipeline| {
        let mut e: Vec<_> = p.flows().map(|(k, e)| format!("{k:?} {e:?}")).collect();
        e.sort();
        e
    };
    assert_eq!(entries(&lane), entries(&general), "{vip}");
    assert_eq!(lane.flows().count(), clients.len() + 1, "{vip}");
}

/// Established packets of flows on rules other than the first (the established lane counts a
/// flow by its stored rule id): each rule's counters get its own flows' packets, no other rule's.
#[test]
fn established_packets_count_for_their_own_rule() {
    let w = World::standard();
    let mut p = pipeline();
    let (web, sip, float) = (
        rule_index(&w, "web"),
        rule_index(&w, "sip"),
        rule_index(&w, "float"),
    );
    assert!(sip > web && float > web, "rules after the first");
    for (vip, acks) in [(VIP_SIP, 5u32), (VIP_FLOAT, 3)] {
        let syn = tcp(sa(CLIENT, 7000), sa(vip, 80), TcpFlags::SYN, 1, 0, &[]);
        assert_eq!(run(&mut p, &w, &syn, 1).0, FWD);
        for i in 0..acks {
            let ack = tcp(sa(CLIENT, 7000), sa(vip, 80), TcpFlags::ACK, 2 + i, 1, &[]);
            assert_eq!(run(&mut p, &w, &ack, 1).0, FWD);
        }
    }
    let c = p.counters();
    assert_eq!(c.rules[sip].packets, 6, "the SYN and 5 ACKs");
    assert_eq!(c.rules[float].packets, 4, "the SYN and 3 ACKs");
    assert_eq!(c.rules[web].packets, 0);
}
