//! Tests of IPv6 frontends, rules and members in a snapshot: the `6` lookups, routes per family,
//! health per address, and that the IPv4 maps hold IPv4 objects only.

use super::tests::{all_up, config};
use super::*;

/// The dual-stack fixture of the configuration tests.
const DUAL: &str = include_str!("../../../tests/fixtures/dual_stack.toml");

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

#[test]
fn ipv6_rules_are_found_by_the_6_lookups_only() {
    let s = all_up(&config(DUAL));
    let r = s.lookup6(v6("fd00:1::100"), IPPROTO_TCP, 80).unwrap();
    assert_eq!((r.name.as_str(), r.backend_port), ("web6", 8080));
    assert_eq!(r.frontend_addr, "fd00:1::100".parse::<IpAddr>().unwrap());
    assert_eq!(r.frontend_addr4(), 0);
    assert!(s.lookup6(v6("fd00:1::100"), IPPROTO_UDP, 80).is_none());
    let nat = s.lookup6(v6("fd00:1::100"), IPPROTO_TCP, 50101).unwrap();
    assert_eq!(nat.kind, RuleKind::InboundNatRange);
    // The IPv4 rule is where it was, and only there.
    let r4 = s.lookup(v4("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    assert_eq!(r4.name, "web4");
    assert_eq!(r4.frontend_addr4(), v4("10.1.0.100"));
    assert!(s
        .lookup6(v6("::ffff:10.1.0.100"), IPPROTO_TCP, 80)
        .is_none());
    assert!(s.is_frontend6(v6("fd00:1::100")));
    assert!(!s.is_frontend6(v6("fd00:1::11")));
    assert!(s.is_frontend(v4("10.1.0.100")));
    assert_eq!(s.frontend_by_addr6(v6("fd00:1::100")), Some(FrontendId(1)));
    assert!(s.has_ipv6_rules());
}

#[test]
fn ipv6_members_route_through_their_family() {
    let s = all_up(&config(DUAL));
    let m = |addr: u128| s.member(s.member_by_addr6(addr).unwrap()).unwrap();
    let on = m(v6("fd00:1::11"));
    assert!(on.on_link);
    assert_eq!(on.next_hop, Some("fd00:1::11".parse().unwrap()));
    assert_eq!(
        (on.addr6(), on.addr4(), on.next_hop4()),
        (v6("fd00:1::11"), 0, None)
    );
    let off = m(v6("fd00:2::13"));
    assert!(!off.on_link);
    assert_eq!(off.next_hop, Some("fe80::1".parse().unwrap()));
    assert_eq!(off.interface, Some(InterfaceId(0)));
    let four = s
        .member(s.member_by_addr(v4("10.1.0.11")).unwrap())
        .unwrap();
    assert_eq!(four.next_hop4(), Some(Ipv4Addr::new(10, 1, 0, 11)));
    assert_eq!(four.addr6(), 0);
    assert_eq!(s.member_by_addr(0), None, "no IPv6 member in the IPv4 map");
}

#[test]
fn ipv6_replies_map_back_to_the_vip() {
    let s = all_up(&config(DUAL));
    let rev = s.reverse_nat6(v6("fd00:1::12"), IPPROTO_TCP, 8080).unwrap();
    assert_eq!(s.rule(rev.rule).unwrap().name, "web6");
    assert_eq!(rev.vip, "fd00:1::100".parse::<Ipv6Addr>().unwrap());
    assert_eq!(rev.vip_port, 80);
    assert_eq!(s.member(rev.member).unwrap().addr6(), v6("fd00:1::12"));
    let ssh = s.reverse_nat6(v6("fd00:1::12"), IPPROTO_TCP, 22).unwrap();
    let rule = s.rule(ssh.rule).unwrap();
    assert_eq!(rule.name, "ssh6");
    assert_eq!(ssh.vip_port, rule.frontend_port_of(ssh.member).unwrap());
    assert_eq!(
        s.rule_member_by_addr6(rule.id, v6("fd00:1::12")),
        Some(ssh.member)
    );
    assert!(s.reverse6(v6("fd00:1::12"), IPPROTO_UDP, 8080).is_none());
    assert!(s.reverse_nat(0, IPPROTO_TCP, 8080).is_none());
    let rev4 = s.reverse_nat(v4("10.1.0.12"), IPPROTO_TCP, 8080).unwrap();
    assert_eq!(rev4.vip, Ipv4Addr::new(10, 1, 0, 100));
}

#[test]
fn ipv6_rules_pick_their_own_members() {
    let s = all_up(&config(DUAL));
    let r = s.lookup_id6(v6("fd00:1::100"), IPPROTO_TCP, 80).unwrap();
    for h in 0..64u64 {
        let m = s
            .choose(r, 80, h.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .unwrap();
        assert!(s.member(m).unwrap().addr.is_ipv6());
    }
}

#[test]
fn health_is_per_address_of_either_family() {
    let c = config(DUAL);
    let mut h = Health::all_up(&c);
    h.set(
        "hp",
        "fd00:1::11".parse::<IpAddr>().unwrap(),
        ProbeState::Down,
    );
    let s = Snapshot::compile(&c, &h);
    let web6 = s
        .rule(s.lookup_id6(v6("fd00:1::100"), IPPROTO_TCP, 80).unwrap())
        .unwrap();
    assert_eq!(web6.eligible, vec![false, true, true]);
    let web4 = s.lookup(v4("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    assert_eq!(
        web4.eligible,
        vec![true, true],
        "vm1's IPv4 address is still up"
    );
}

#[test]
fn outbound_rules_keep_their_ipv4_frontends() {
    let s = all_up(&config(DUAL));
    assert_eq!(
        s.outbound[0].frontends,
        vec![std::net::IpAddr::from(Ipv4Addr::new(10, 1, 0, 100))]
    );
    assert!(s.outbound_for(v4("10.1.0.11"), IPPROTO_TCP).is_some());
    assert_eq!(s.interfaces[0].gateway6, Some("fe80::1".parse().unwrap()));
}
