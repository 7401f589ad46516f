//! The allocator on a virtual clock: block sizes, exhaustion, release timers, TCP reuse and
//! the UDP cone.

use super::*;
use crate::flow::{tcp_flags, track_general, Direction, FlowKey};

const FIP: u32 = 0x0a00_0064; // 10.0.0.100
const MEMBER: u32 = 0x0a01_000b; // 10.1.0.11
const REMOTE: u32 = 0xc633_6407; // 198.51.100.7
const IDLE: u32 = 240;

fn table() -> SnatTable {
    let mut t = SnatTable::new(1024);
    t.add_frontend(FIP);
    t
}

fn conn(member_port: u16, remote: u32, remote_port: u16, proto: u8) -> NewTranslation {
    NewTranslation {
        key: FlowKey::new(MEMBER, remote, member_port, remote_port, proto),
        frontend: FIP,
        first_port: 1024,
        ports: 16,
        outbound: 0,
        member_id: 0,
        idle_timeout: IDLE,
        reset: false,
    }
}

fn port_of(t: &SnatTable, slot: u32) -> u16 {
    t.get(slot).map(|x| x.snat_port).unwrap_or(0)
}

#[test]
fn sixteen_ports_then_exhausted_lowest_first() {
    let mut t = table();
    for i in 0..16u16 {
        let slot = t
            .create(&conn(40000 + i, REMOTE, 443, PROTO_TCP), 0)
            .unwrap();
        assert_eq!(port_of(&t, slot), 1024 + i, "lowest free first");
    }
    assert_eq!(
        t.create(&conn(40016, REMOTE, 443, PROTO_TCP), 0),
        Err(SnatError::Exhausted)
    );
    assert_eq!(t.used_ports(FIP, 1024, 16), 16);
}

#[test]
fn both_directions_find_the_translation() {
    let mut t = table();
    let c = conn(40000, REMOTE, 443, PROTO_TCP);
    let slot = t.create(&c, 0).unwrap();
    assert_eq!(t.lookup_egress(&c.key), Some(slot));
    let reply = FlowKey::new(REMOTE, FIP, 443, 1024, PROTO_TCP);
    assert_eq!(t.lookup_reply(&reply), Some(slot));
    // Another remote port of the same host is not this connection's reply.
    let other = FlowKey::new(REMOTE, FIP, 444, 1024, PROTO_TCP);
    assert_eq!(t.lookup_reply(&other), None);
}

#[test]
fn a_freed_port_returns_only_after_its_release_timer() {
    let mut t = table();
    let mut slots = Vec::new();
    for i in 0..16u16 {
        slots.push(
            t.create(&conn(40000 + i, REMOTE, 443, PROTO_TCP), 0)
                .unwrap(),
        );
    }
    // The connection on port 1027 closes with FINs both ways at t = 10.
    let s = slots[3];
    if let Some(x) = t.get_mut(s) {
        let e = &mut x.entry;
        track_general(e, Direction::ClientToServer, tcp_flags::SYN, 1, 0, 0, 0);
        track_general(
            e,
            Direction::ClientToServer,
            tcp_flags::FIN | tcp_flags::ACK,
            2,
            1,
            0,
            10,
        );
        track_general(
            e,
            Direction::ServerToClient,
            tcp_flags::FIN | tcp_flags::ACK,
            1,
            3,
            0,
            10,
        );
    }
    assert_eq!(t.get(s).map(Translation::timeout), Some(SNAT_FIN_TIMEOUT));
    // Everyone else keeps talking; until 240 s after the FINs the port stays taken.
    for now in [11, 100, 250] {
        for (i, &o) in slots.iter().enumerate() {
            if i != 3 {
                if let Some(x) = t.get_mut(o) {
                    x.entry.touch(now);
                }
            }
        }
        t.expire_step(now, 1024, |_, _| {});
        assert_eq!(
            t.create(&conn(41000, REMOTE, 443, PROTO_TCP), now),
            Err(SnatError::Exhausted),
            "at {now}"
        );
    }
    for &o in &slots {
        if let Some(x) = t.get_mut(o) {
            x.entry.touch(251);
        }
    }
    if let Some(x) = t.get_mut(s) {
        x.entry.touch(10);
    }
    let mut released = Vec::new();
    assert_eq!(
        t.expire_step(251, 1024, |x, freed| released.push((x.snat_port, freed))),
        1
    );
    assert_eq!(released, vec![(1027, true)]);
    let slot = t.create(&conn(41000, REMOTE, 443, PROTO_TCP), 251).unwrap();
    assert_eq!(port_of(&t, slot), 1027);
}

#[test]
fn release_times_by_state() {
    let mut t = table();
    let slot = t.create(&conn(40000, REMOTE, 443, PROTO_TCP), 0).unwrap();
    let x = t.get_mut(slot).unwrap();
    assert_eq!(x.timeout(), IDLE);
    track_general(
        &mut x.entry,
        Direction::ClientToServer,
        tcp_flags::SYN,
        1,
        0,
        0,
        0,
    );
    assert_eq!(
        x.timeout(),
        IDLE,
        "half-open holds its port for the idle timeout"
    );
    track_general(
        &mut x.entry,
        Direction::ServerToClient,
        tcp_flags::RST,
        0,
        0,
        0,
        5,
    );
    assert_eq!(x.timeout(), SNAT_RST_TIMEOUT);
    assert!(!x.is_expired(5 + SNAT_RST_TIMEOUT));
    assert!(x.is_expired(6 + SNAT_RST_TIMEOUT));
    x.entry.state = FlowState::Established;
    assert!(!x.is_expired(5 + IDLE));
    assert!(x.is_expired(6 + IDLE));
}

#[test]
fn tcp_reuses_a_port_for_another_destination() {
    let mut t = table();
    for i in 0..16u16 {
        t.create(&conn(40000 + i, REMOTE, 443, PROTO_TCP), 0)
            .unwrap();
    }
    // The block is full toward REMOTE:443, but REMOTE:80 and another host may share its ports.
    let a = t.create(&conn(40100, REMOTE, 80, PROTO_TCP), 0).unwrap();
    let b = t.create(&conn(40101, REMOTE, 80, PROTO_TCP), 0).unwrap();
    let c = t
        .create(&conn(40102, REMOTE + 1, 443, PROTO_TCP), 0)
        .unwrap();
    assert_eq!(
        (port_of(&t, a), port_of(&t, b), port_of(&t, c)),
        (1024, 1025, 1024)
    );
    let reply = FlowKey::new(REMOTE, FIP, 80, 1024, PROTO_TCP);
    assert_eq!(t.lookup_reply(&reply), Some(a));
    // Removing the reused translation leaves the first user of the port in place.
    t.remove(a);
    assert_eq!(t.used_ports(FIP, 1024, 16), 16);
    assert!(t
        .lookup_reply(&FlowKey::new(REMOTE, FIP, 443, 1024, PROTO_TCP))
        .is_some());
}

#[test]
fn udp_is_port_restricted_cone() {
    let mut t = table();
    let a = t.create(&conn(5000, REMOTE, 53, PROTO_UDP), 0).unwrap();
    // Same member endpoint, same destination IP, another port: the same SNAT port.
    let b = t.create(&conn(5000, REMOTE, 5353, PROTO_UDP), 0).unwrap();
    assert_eq!(port_of(&t, a), port_of(&t, b));
    // Another destination IP: a port of its own.
    let c = t.create(&conn(5000, REMOTE + 1, 53, PROTO_UDP), 0).unwrap();
    assert_ne!(port_of(&t, c), port_of(&t, a));
    // Only the endpoints it sent to may answer.
    let p = port_of(&t, a);
    assert_eq!(
        t.lookup_reply(&FlowKey::new(REMOTE, FIP, 5353, p, PROTO_UDP)),
        Some(b)
    );
    assert_eq!(
        t.lookup_reply(&FlowKey::new(REMOTE, FIP, 9999, p, PROTO_UDP)),
        None
    );
    // UDP does not share a busy port: 16 member endpoints to one host fill the block.
    let mut t = table();
    for i in 0..16u16 {
        t.create(&conn(6000 + i, REMOTE, 53, PROTO_UDP), 0).unwrap();
    }
    assert_eq!(
        t.create(&conn(6100, REMOTE + 9, 53, PROTO_UDP), 0),
        Err(SnatError::Exhausted)
    );
}

#[test]
fn a_full_table_and_an_unknown_frontend_are_refused() {
    let mut t = SnatTable::new(2);
    t.add_frontend(FIP);
    t.create(&conn(1, REMOTE, 1, PROTO_TCP), 0).unwrap();
    t.create(&conn(2, REMOTE, 1, PROTO_TCP), 0).unwrap();
    assert_eq!(
        t.create(&conn(3, REMOTE, 1, PROTO_TCP), 0),
        Err(SnatError::TableFull)
    );
    let mut n = conn(4, REMOTE, 1, PROTO_TCP);
    n.frontend = FIP + 1;
    assert_eq!(t.create(&n, 0), Err(SnatError::UnknownFrontend));
    assert_eq!(t.len(), 2);
}

#[test]
fn the_sweep_releases_every_idle_translation() {
    let mut t = table();
    for i in 0..10u16 {
        t.create(&conn(100 + i, REMOTE, 80, PROTO_UDP), 0).unwrap();
    }
    assert_eq!(t.expire_step(IDLE, 1024, |_, _| {}), 0);
    let mut n = 0;
    // In small steps: the cursor wraps over the whole table.
    for _ in 0..200 {
        n += t.expire_step(IDLE + 1, 8, |_, _| {});
    }
    assert_eq!(n, 10);
    assert!(t.is_empty());
    assert_eq!(t.used_ports(FIP, 1024, 16), 0);
}

mod model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    #[derive(Debug, Clone)]
    enum Op {
        /// member port, remote index, remote port index, TCP?
        Open(u16, u32, u16, bool),
        /// Remove the i-th live translation.
        Close(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u16..40, 0u32..3, 0u16..3, any::<bool>()).prop_map(|(a, b, c, d)| Op::Open(a, b, c, d)),
            1 => (0usize..64).prop_map(Op::Close),
        ]
    }

    proptest! {
        #[test]
        fn translations_stay_unique_and_inside_the_block(ops in proptest::collection::vec(op(), 1..200)) {
            let mut t = table();
            let mut live: Vec<u32> = Vec::new();
            for op in ops {
                match op {
                    Op::Open(mp, r, rp, tcp) => {
                        let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
                        let c = conn(30000 + mp, REMOTE + r, 80 + rp, proto);
                        if t.lookup_egress(&c.key).is_some_and(|s| t.get(s).is_some_and(|x| x.egress_key() == c.key)) {
                            continue;
                        }
                        match t.create(&c, 0) {
                            Ok(s) => live.push(s),
                            Err(e) => prop_assert_eq!(e, SnatError::Exhausted),
                        }
                    }
                    Op::Close(i) => {
                        if !live.is_empty() {
                            let s = live.swap_remove(i % live.len());
                            prop_assert!(t.remove(s).is_some());
                        }
                    }
                }
                let mut replies = HashSet::new();
                let mut uses: HashMap<u16, u32> = HashMap::new();
                for x in t.iter() {
                    prop_assert!((1024..1040).contains(&x.snat_port));
                    prop_assert!(replies.insert(x.reply_key()), "two translations share {:?}", x.reply_key());
                    *uses.entry(x.snat_port).or_default() += 1;
                    prop_assert_eq!(t.lookup_reply(&x.reply_key()).and_then(|s| t.get(s)), Some(x));
                }
                prop_assert_eq!(t.len(), live.len());
                prop_assert_eq!(t.used_ports(FIP, 1024, 16), uses.len() as u32);
            }
        }
    }
}

#[test]
fn a_udp_endpoint_names_the_frontend_ip_of_its_cone() {
    let mut t = table();
    let other = FIP + 1;
    t.add_frontend(other);
    let udp = NewTranslation {
        frontend: other,
        ..conn(5000, REMOTE, 53, PROTO_UDP)
    };
    assert_eq!(t.cone_frontend(&udp.key), None);
    t.create(&udp, 0).unwrap();
    // Another port of the same host: the cone's frontend IP; another host or TCP: none.
    let same_host = FlowKey::new(MEMBER, REMOTE, 5000, 5353, PROTO_UDP);
    assert_eq!(t.cone_frontend(&same_host), Some(other));
    let other_host = FlowKey::new(MEMBER, REMOTE + 1, 5000, 53, PROTO_UDP);
    assert_eq!(t.cone_frontend(&other_host), None);
    let tcp = FlowKey::new(MEMBER, REMOTE, 5000, 53, PROTO_TCP);
    assert_eq!(t.cone_frontend(&tcp), None);
}
