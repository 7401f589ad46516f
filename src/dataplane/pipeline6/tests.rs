//! Tests of [`super`] through the whole [`Pipeline`]: golden IPv6 frames (made by a real stack's
//! packet library, `wire::golden6`) for every rule kind, compared byte for byte with what the
//! `wire` builders make of them, and the flow state they leave.

use crate::balance::{Health, Snapshot};
use crate::config::Config;
use crate::dataplane::{
    DropReason, EgressPort, Exception, NeighbourMap, Pipeline, PipelineConfig, Verdict, View,
};
use crate::flow::FlowState;
use crate::wire::builder::{
    prepend_ethernet, prepend_gue6, prepend_ip6ip6, rewrite_endpoint_v6, EncapSpecV6, Endpoint,
    L2Spec,
};
use crate::wire::golden6::{self, bytes, CLIENT, SERVER};
use crate::wire::{ethertype, MacAddr, PacketBuf, VecBuf};
use std::net::{Ipv4Addr, Ipv6Addr};

const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
const GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const OWN6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2);
const VM1: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x11);
const VM2: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x12);
const TUN1: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x31);
const GUE1: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x41);

/// The configuration every test extends with its rule: one dual-stack interface, the golden
/// frames' server address as a routed IPv6 frontend, a NAT pool and two tunnel pools.
const BASE: &str = r#"
[appliance]
name = "t6"
hash_seed = 0x5eedcafe
missing_flow = "rehash"

[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"
address6 = "fd00:1::2/64"
gateway6 = "fe80::1"

[[frontends]]
name = "fe6"
address = "2001:db8:0:1::2"

[[backend_pools]]
name = "web6"
members = [
  { name = "vm1", address = "fd00:1::11" },
  { name = "vm2", address = "fd00:1::12" },
]

[[backend_pools]]
name = "tun6"
dsr_encapsulation = "ipip"
members = [ { name = "t1", address = "fd00:1::31" } ]

[[backend_pools]]
name = "gue6"
dsr_encapsulation = "gue"
gue_port = 6080
members = [ { name = "g1", address = "fd00:1::41" } ]
"#;

/// MAC of an IPv6 neighbour: 02:00:00:00:00:<last byte>.
fn mac_of(ip: Ipv6Addr) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, ip.octets()[15]])
}

/// Everything a `View` borrows.
struct World {
    snapshot: Snapshot,
    neighbours: NeighbourMap,
    ports: Vec<EgressPort>,
}

impl World {
    /// [`BASE`] with `rules` (TOML tables) appended.
    fn new(rules: &str) -> World {
        World::with_base(BASE, rules)
    }

    /// `base` (a variant of [`BASE`]) with `rules` appended.
    fn with_base(base: &str, rules: &str) -> World {
        let text = format!("{base}\n{rules}");
        let config = Config::from_str(&text, "t6.toml").unwrap_or_else(|e| panic!("{e}"));
        let snapshot = Snapshot::compile(&config, &Health::all_up(&config));
        let six = [GW6, VM1, VM2, TUN1, GUE1].map(|a| (a, mac_of(a), 0));
        let neighbours = NeighbourMap::from_entries(vec![], 1).with_ipv6(six.to_vec());
        World {
            snapshot,
            neighbours,
            ports: vec![EgressPort {
                mac: PORT_MAC,
                addr: Ipv4Addr::new(10, 1, 0, 2),
                mtu: 1500,
            }],
        }
    }

    fn view(&self) -> View<'_> {
        View {
            snapshot: &self.snapshot,
            neighbours: &self.neighbours,
            ports: &self.ports,
        }
    }
}

/// A load-balancing rule on the frontend: `extra` adds fields.
fn lb(protocol: &str, port: u16, backend_port: u16, pool: &str, extra: &str) -> String {
    format!(
        "[[load_balancing_rules]]\nname = \"r{port}\"\nfrontend = \"fe6\"\nprotocol = \"{protocol}\"\nfrontend_port = {port}\nbackend_port = {backend_port}\nbackend_pool = \"{pool}\"\n{extra}\n"
    )
}

fn pipeline() -> Pipeline {
    Pipeline::new(&PipelineConfig {
        flow_capacity: 4096,
        recent_capacity: 4096,
        flow_capacity6: None,
    })
}

/// `ip` (a bare golden IPv6 packet) as the gateway hands it to the MUX.
fn eth(ip: &[&str]) -> Vec<u8> {
    let mut f = GW_MAC.0.to_vec();
    f.splice(0..0, PORT_MAC.0);
    f.extend_from_slice(&ethertype::IPV6.to_be_bytes());
    f.extend_from_slice(&bytes(ip));
    f
}

/// Runs `frame` through the pipeline at `now`: the verdict and the frame after it.
fn run(p: &mut Pipeline, w: &World, frame: &[u8], now: u32) -> (Verdict, Vec<u8>) {
    let mut out = run_burst(p, w, &[frame.to_vec()], now);
    out.pop().expect("one frame in, one verdict out")
}

/// What the builders make of `f` for one endpoint rewrite toward the neighbour `to`: NAT66,
/// hop limit − 1, MACs.
fn nat_by_builder(f: &[u8], which: Endpoint, addr: Ipv6Addr, port: u16, to: MacAddr) -> Vec<u8> {
    let mut want = f.to_vec();
    rewrite_endpoint_v6(&mut want[14..], which, addr, Some(port)).unwrap();
    want[14 + 7] -= 1;
    want[..6].copy_from_slice(&to.0);
    want[6..12].copy_from_slice(&PORT_MAC.0);
    want
}

/// The destination address of the IPv6 frame `f`.
fn dst_of(f: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&f[14 + 24..14 + 40]).unwrap())
}

/// `f` with source and destination (addresses and ports) swapped: the other direction. The
/// checksum stays valid (the same words in another order).
fn reversed(f: &[u8]) -> Vec<u8> {
    let mut r = f.to_vec();
    let (s, d) = (14 + 8..14 + 24, 14 + 24..14 + 40);
    let src = r[s.clone()].to_vec();
    r.copy_within(d.clone(), s.start);
    r[d].copy_from_slice(&src);
    let l4 = 14 + 40;
    let sport = [r[l4], r[l4 + 1]];
    r.copy_within(l4 + 2..l4 + 4, l4);
    r[l4 + 2..l4 + 4].copy_from_slice(&sport);
    r
}

#[test]
fn nat66_syn_and_data_go_to_one_member_and_replies_come_back_from_the_vip() {
    let w = World::new(&lb("tcp", 80, 8080, "web6", ""));
    let mut p = pipeline();
    let syn = eth(golden6::TCP_SYN);
    let (v, out) = run(&mut p, &w, &syn, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let member = dst_of(&out);
    assert!([VM1, VM2].contains(&member), "{member}");
    assert_eq!(
        out,
        nat_by_builder(&syn, Endpoint::Dst, member, 8080, mac_of(member))
    );
    assert_eq!(p.flows6().count(), 1);
    let (k, e) = p.flows6().next().unwrap();
    assert_eq!((k.src_ip, k.dst_ip), (CLIENT.to_bits(), SERVER.to_bits()));
    assert_eq!(
        (e.member_addr, e.flow.state),
        (member.to_bits(), FlowState::SynSent)
    );
    // The same SYN again keeps the member.
    assert_eq!(run(&mut p, &w, &syn, 11).1, out);
    // The member's SYN-ACK-like reply (the SYN reversed from the member's NATed form).
    let reply = reversed(&out);
    let (v, back) = run(&mut p, &w, &reply, 12);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let mut want = nat_by_builder(&reply, Endpoint::Src, SERVER, 80, GW_MAC);
    // The reply went out NATed from the member: back to the VIP, toward the gateway.
    assert_eq!(back, want);
    want.clear();
    let c = p.counters();
    assert_eq!(c.tx, 3);
    assert_eq!(c.rules[0].reply_packets, 1);
    assert_eq!(c.rules[0].packets, 2);
}

#[test]
fn udp_nat66_behind_extension_headers() {
    let w = World::new(&lb("udp", 53, 5353, "web6", ""));
    let mut p = pipeline();
    let f = eth(golden6::UDP_EXT);
    let (v, out) = run(&mut p, &w, &f, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let member = dst_of(&out);
    assert_eq!(
        out,
        nat_by_builder(&f, Endpoint::Dst, member, 5353, mac_of(member))
    );
}

/// A new flow's insert stamps it as checked under the snapshot that chose its rule and member:
/// its next packet skips the check.
#[test]
fn a_new_flow_is_stamped_checked_by_its_insert() {
    let w = World::new(&lb("tcp", 80, 8080, "web6", ""));
    let mut p = pipeline();
    assert_eq!(
        run(&mut p, &w, &eth(golden6::TCP_SYN), 10).0,
        Verdict::Forward { port: 0 }
    );
    let k = p.flows6().next().map(|(k, _)| *k).expect("the SYN's flow");
    let hash = k.hash_seeded(p.seed);
    let gen = p.gen;
    let (_, stamp) = p.v6.table.lookup_stamped(&k, hash).expect("its slot");
    assert!(
        crate::dataplane::recheck::is_current(*stamp, gen, false),
        "checked by its insert: {stamp}"
    );
}

/// A known flow is checked once per snapshot (its slot stamp): under one snapshot its packets
/// keep their member; after a reload that takes that member out of the pool they move to the
/// other one; after a reload that removes the rule they are `no_rule`.
#[test]
fn a_known_flow_is_checked_again_after_each_reload() {
    let rule = lb("udp", 53, 5353, "web6", "");
    let w = World::new(&rule);
    let mut p = pipeline();
    let f = eth(golden6::UDP_EXT);
    let first = dst_of(&run(&mut p, &w, &f, 10).1);
    for now in 11..14 {
        assert_eq!(dst_of(&run(&mut p, &w, &f, now).1), first, "same snapshot");
    }
    let (gone, other) = if first == VM1 {
        ("{ name = \"vm1\", address = \"fd00:1::11\" },", VM2)
    } else {
        ("{ name = \"vm2\", address = \"fd00:1::12\" },", VM1)
    };
    assert!(BASE.contains(gone));
    let w2 = World::with_base(&BASE.replace(gone, ""), &rule);
    for now in 14..17 {
        let (v, out) = run(&mut p, &w2, &f, now);
        assert_eq!(v, Verdict::Forward { port: 0 });
        assert_eq!(dst_of(&out), other, "member removed: the flow moves");
    }
    let w3 = World::new("");
    for now in 17..19 {
        assert_eq!(
            run(&mut p, &w3, &f, now).0,
            Verdict::Drop(DropReason::NoRule)
        );
    }
    assert_eq!(
        dst_of(&run(&mut p, &w2, &f, 19).1),
        other,
        "the rule is back"
    );
}

#[test]
fn ipv6_of_no_rule_is_counted_no_rule_and_other_ethertypes_stay_unsupported() {
    let w = World::new(&lb("tcp", 443, 443, "web6", ""));
    let mut p = pipeline();
    let (v, _) = run(&mut p, &w, &eth(golden6::TCP_SYN), 10);
    assert_eq!(v, Verdict::Drop(DropReason::NoRule));
    let mut other = eth(golden6::TCP_SYN);
    other[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    let (v, _) = run(&mut p, &w, &other, 10);
    assert_eq!(v, Verdict::Drop(DropReason::Unsupported));
    let c = p.counters();
    assert_eq!(c.drops[DropReason::NoRule.index()], 1);
    assert_eq!(c.drops[DropReason::Unsupported.index()], 1);
}

/// `f` (an untagged Ethernet frame) behind an 802.1Q tag with TCI `tci`.
fn tagged(f: &[u8], tci: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

#[test]
fn an_ipv6_frame_gets_its_own_verdict_and_is_never_counted_unsupported() {
    let w = World::new(&lb("tcp", 80, 8080, "web6", ""));
    let mut p = pipeline();
    let syn = eth(golden6::TCP_SYN);
    let (v, out) = run(&mut p, &w, &syn, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert!([VM1, VM2].contains(&dst_of(&out)));
    // Behind one 802.1Q tag too (the tag is kept).
    let (v, out) = run(&mut p, &w, &tagged(&syn, 7), 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 0x07]);
    let c = p.counters();
    assert_eq!(c.drops[DropReason::Unsupported.index()], 0);
    assert_eq!((c.rx, c.tx), (2, 2));
}

/// The IPv6 SYN of client port `port` (the golden SYN with another source port; the checksum
/// is not checked on the way).
fn syn_from(port: u16) -> Vec<u8> {
    let mut f = eth(golden6::TCP_SYN);
    f[14 + 40..14 + 42].copy_from_slice(&port.to_be_bytes());
    f
}

#[test]
fn a_burst_mixing_ipv4_ipv6_and_others_gives_each_frame_its_verdict_in_its_slot() {
    use crate::wire::{FrameSpec, TcpFlags};
    use std::net::SocketAddrV4;
    let w = World::new(&lb("tcp", 80, 8080, "web6", ""));
    let mut p = pipeline();
    let v4 = FrameSpec::tcp(
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4000),
        SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 80),
        TcpFlags::SYN,
    )
    .to_vec();
    let mut arp = v4.clone();
    arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
    let mut other = syn_from(1);
    other[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    let mut no_rule = syn_from(2);
    no_rule[14 + 40 + 2..14 + 40 + 4].copy_from_slice(&81u16.to_be_bytes());
    let forward = Verdict::Forward { port: 0 };
    // 40 frames (a burst and a part): each kind in turn; the IPv6 SYNs of 8 flows, each flow
    // twice in a burst (its second packet finds the entry its first inserted).
    let mut frames = Vec::new();
    let mut want = Vec::new();
    for i in 0..40u16 {
        let (f, v) = match i % 5 {
            0 | 3 => (syn_from(5000 + (i / 5) % 8), forward),
            1 => (v4.clone(), Verdict::Drop(DropReason::NoRule)),
            2 => (arp.clone(), Verdict::ToSlowPath(Exception::Arp)),
            _ if i % 2 == 0 => (other.clone(), Verdict::Drop(DropReason::Unsupported)),
            _ => (no_rule.clone(), Verdict::Drop(DropReason::NoRule)),
        };
        frames.push(f);
        want.push(v);
    }
    let mut bufs: Vec<VecBuf> = frames
        .iter()
        .map(|f| VecBuf::with_room(128, f, 0))
        .collect();
    let mut got = vec![Verdict::Drop(DropReason::TxFull); frames.len()];
    p.process(&w.view(), 0, &mut bufs, &mut got, 10);
    assert_eq!(got, want);
    // Every IPv6 SYN went to a member, both packets of a flow to the same one.
    let mut member = std::collections::HashMap::new();
    for (i, b) in bufs
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(i % 5, 0 | 3))
    {
        let to = dst_of(b.data());
        assert!([VM1, VM2].contains(&to), "slot {i}");
        assert_eq!(*member.entry((i / 5) % 8).or_insert(to), to, "slot {i}");
    }
    assert_eq!(p.flows6().count(), 8);
    let c = p.counters();
    assert_eq!(c.rx, 40);
    assert_eq!(c.tx, 16);
    assert_eq!(c.drops[DropReason::Unsupported.index()], 4);
    assert_eq!(c.drops[DropReason::NoRule.index()], 8 + 4);
}

#[test]
fn neighbour_discovery_and_echo_to_the_vip_go_to_the_slow_path() {
    let w = World::new(&lb("tcp", 80, 8080, "web6", ""));
    let mut p = pipeline();
    let (v, _) = run(&mut p, &w, &bytes(golden6::NS), 10);
    assert_eq!(v, Verdict::ToSlowPath(Exception::NeighbourDiscovery));
    let (v, _) = run(&mut p, &w, &bytes(golden6::ECHO_REQUEST), 10);
    assert_eq!(v, Verdict::ToSlowPath(Exception::IcmpToFrontend));
    // To the appliance's own IPv6 address: the kernel's.
    let mut own = eth(golden6::TCP_SYN);
    own[14 + 24..14 + 40].copy_from_slice(&OWN6.octets());
    let (v, _) = run(&mut p, &w, &own, 10);
    assert_eq!(v, Verdict::ToSlowPath(Exception::ToAppliance));
}

#[test]
fn every_interface_s_own_ipv6_address_is_the_kernel_s() {
    // Two interfaces (a two-arm appliance): the check walks them all.
    let second = "[[interfaces]]\nname = \"out\"\nport = \"p1\"\naddress = \"10.2.0.2/24\"\naddress6 = \"fd00:2::2/64\"\n";
    let base = BASE.replacen("[[frontends]]", &format!("{second}\n[[frontends]]"), 1);
    let w = World::with_base(&base, &lb("tcp", 80, 8080, "web6", ""));
    let mut p = pipeline();
    let second_own: Ipv6Addr = "fd00:2::2".parse().unwrap();
    for own in [OWN6, second_own] {
        let mut f = eth(golden6::TCP_SYN);
        f[14 + 24..14 + 40].copy_from_slice(&own.octets());
        let (v, _) = run(&mut p, &w, &f, 10);
        assert_eq!(v, Verdict::ToSlowPath(Exception::ToAppliance), "{own}");
    }
}

#[test]
fn floating_ip_rewrites_macs_and_hop_limit_only() {
    let w = World::new(&lb("udp", 6080, 6080, "web6", "enable_floating_ip = true"));
    let mut p = pipeline();
    let f = eth(golden6::UDP);
    let (v, out) = run(&mut p, &w, &f, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let member = Ipv6Addr::from(p.flows6().next().unwrap().1.member_addr);
    let mut want = f.clone();
    want[14 + 7] -= 1;
    want[..6].copy_from_slice(&mac_of(member).0);
    want[6..12].copy_from_slice(&PORT_MAC.0);
    assert_eq!(out, want);
    // Known now: the same bytes, and its check stored no NAT66 delta (a floating flow never
    // reads one).
    assert_eq!(run(&mut p, &w, &f, 11), (v, want));
    assert_eq!(p.flows6().next().unwrap().1.flow.sums.l4_delta, 0);
}

/// What the builders make of `f`'s IPv6 packet encapsulated toward `member`.
fn encap_by_builder(f: &[u8], member: Ipv6Addr, gue: bool, hash: u32) -> Vec<u8> {
    let mut b = VecBuf::with_room(128, &f[14..], 0);
    let spec = EncapSpecV6 {
        outer_src: OWN6,
        outer_dst: member,
        hop_limit: 64,
    };
    if gue {
        prepend_gue6(&mut b, &spec, hash).unwrap();
    } else {
        prepend_ip6ip6(&mut b, &spec, hash).unwrap();
    }
    let l2 = L2Spec {
        src_mac: PORT_MAC,
        dst_mac: mac_of(member),
        vlan: None,
    };
    prepend_ethernet(&mut b, &l2, ethertype::IPV6).unwrap();
    b.data().to_vec()
}

#[test]
fn ip6ip6_and_gue_over_ipv6_match_the_builders() {
    for (pool, member, gue) in [("tun6", TUN1, false), ("gue6", GUE1, true)] {
        let w = World::new(&lb("tcp", 80, 80, pool, "enable_floating_ip = true"));
        let mut p = pipeline();
        let f = eth(golden6::TCP_SYN);
        let (v, out) = run(&mut p, &w, &f, 10);
        assert_eq!(v, Verdict::Forward { port: 0 }, "{pool}");
        let hash = crate::balance::hash::hash_5tuple6(
            0x5eed_cafe,
            CLIENT.to_bits(),
            SERVER.to_bits(),
            6,
            49152,
            80,
        ) as u32;
        assert_eq!(out, encap_by_builder(&f, member, gue, hash), "{pool}");
    }
}

#[test]
fn packet_too_big_goes_to_the_slow_path_with_the_usable_mtu() {
    let mut w = World::new(&lb("tcp", 80, 80, "tun6", "enable_floating_ip = true"));
    w.ports[0].mtu = 1280;
    let mut p = pipeline();
    // A 1260-byte packet fits 1280 but not with the 40 bytes of IPv6-in-IPv6.
    let mut f = eth(golden6::TCP_SYN);
    let grow = 1260 - (f.len() - 14);
    f.extend(std::iter::repeat_n(0u8, grow));
    let pl = (1260 - 40) as u16;
    f[14 + 4..14 + 6].copy_from_slice(&pl.to_be_bytes());
    let (v, _) = run(&mut p, &w, &f, 10);
    assert_eq!(v, Verdict::ToSlowPath(Exception::TooBig { mtu: 1280 }));
    assert_eq!(p.counters().drops[DropReason::TooBig.index()], 1);
}

#[test]
fn inbound_nat_and_ha_ports_rules() {
    let nat = "[[inbound_nat_rules]]\nname = \"ssh\"\nfrontend = \"fe6\"\nprotocol = \"tcp\"\nfrontend_port_range_start = 80\nfrontend_port_range_end = 81\nbackend_pool = \"web6\"\nbackend_port = 22\n";
    let w = World::new(nat);
    let mut p = pipeline();
    let f = eth(golden6::TCP_SYN);
    let (v, out) = run(&mut p, &w, &f, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    // Port 80 is the range's first port: the pool's first member.
    assert_eq!(out, nat_by_builder(&f, Endpoint::Dst, VM1, 22, mac_of(VM1)));
    let w = World::new(&lb("all", 0, 0, "web6", ""));
    let mut p = pipeline();
    for g in [golden6::TCP_SYN, golden6::UDP] {
        let f = eth(g);
        let (v, out) = run(&mut p, &w, &f, 10);
        assert_eq!(v, Verdict::Forward { port: 0 });
        let member = dst_of(&out);
        let port = u16::from_be_bytes([f[14 + 42], f[14 + 43]]);
        assert_eq!(
            out,
            nat_by_builder(&f, Endpoint::Dst, member, port, mac_of(member))
        );
    }
}

#[test]
fn a_late_packet_of_an_expired_flow_is_idle_expired() {
    let w = World::new(&lb("tcp", 80, 8080, "web6", "idle_timeout_seconds = 4"));
    let mut p = pipeline();
    let syn = eth(golden6::TCP_SYN);
    assert_eq!(run(&mut p, &w, &syn, 10).0, Verdict::Forward { port: 0 });
    // Establish: the client's ACK (flags byte at 13 of TCP).
    let mut ack = syn.clone();
    let l4 = 14 + 40;
    ack[l4 + 13] = 0x10;
    // Keep the checksum valid: SYN (0x02) → ACK (0x10) in the flags word.
    let c = u16::from_be_bytes([ack[l4 + 16], ack[l4 + 17]]);
    let c = crate::wire::checksum::apply(c, crate::wire::checksum::delta_u16(0x5002, 0x5010));
    ack[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    assert_eq!(run(&mut p, &w, &ack, 11).0, Verdict::Forward { port: 0 });
    // Long after the idle timeout, a data packet: removed, recorded, dropped.
    let (v, _) = run(&mut p, &w, &ack, 11 + 4000);
    assert_eq!(v, Verdict::Drop(DropReason::IdleExpired));
    assert_eq!(p.flows6().count(), 0);
}

/// An ICMPv6 error from `from` about the IPv6 packet of the frame `about`, as sent to the MUX.
fn icmp_error_about(about: &[u8], from: Ipv6Addr) -> Vec<u8> {
    use crate::wire::builder::originate6::{icmpv6_error, Icmpv6ErrorKind};
    let mut e = vec![0u8; 1600];
    let l2 = L2Spec {
        src_mac: GW_MAC,
        dst_mac: PORT_MAC,
        vlan: None,
    };
    let kind = Icmpv6ErrorKind::DestUnreachable(4);
    let n = icmpv6_error(&mut e, &l2, from, kind, &about[14..]).unwrap();
    e.truncate(n);
    e
}

/// The outer addresses, quoted addresses and ports of an ICMPv6 error frame, checking its
/// checksum.
fn error_fields(f: &[u8]) -> ((Ipv6Addr, Ipv6Addr), (Ipv6Addr, u16, Ipv6Addr, u16)) {
    let ip = crate::wire::Ipv6Packet::new_checked(&f[14..]).unwrap();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let icmp = crate::wire::Icmpv6Packet::new_checked(&f[14 + 40..]).unwrap();
    assert!(icmp.verify_checksum(s, d), "ICMPv6 checksum");
    let q = icmp.inner_flow().unwrap();
    let (sp, dp) = q.ports.unwrap();
    ((s, d), (q.src_addr, sp, q.dst_addr, dp))
}

#[test]
fn icmpv6_errors_about_a_flow_reach_the_client_and_the_member() {
    use crate::dataplane::icmp_error::IcmpErrorOutcome;
    let w = World::new(&lb("tcp", 80, 8080, "web6", ""));
    let mut p = pipeline();
    let (_, to_member) = run(&mut p, &w, &eth(golden6::TCP_SYN), 10);
    let member = dst_of(&to_member);
    // The member reports the client's packet (client → member:8080): to the client, as from
    // the VIP about client → VIP:80.
    let e = icmp_error_about(&to_member, member);
    let (v, out) = run(&mut p, &w, &e, 11);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert_eq!(&out[..6], &GW_MAC.0);
    assert_eq!(out[14 + 7], 63);
    assert_eq!(
        error_fields(&out),
        ((SERVER, CLIENT), (CLIENT, 49152, SERVER, 80))
    );
    // A router on the client's side reports a reply (VIP:80 → client): to the member, about
    // member:8080 → client.
    let (_, reply) = run(&mut p, &w, &reversed(&to_member), 12);
    let router = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
    let e = icmp_error_about(&reply, router);
    let (v, out) = run(&mut p, &w, &e, 13);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert_eq!(&out[..6], &mac_of(member).0);
    assert_eq!(
        error_fields(&out),
        ((router, member), (member, 8080, CLIENT, 49152))
    );
    let c = p.counters();
    assert_eq!(c.icmp_errors[IcmpErrorOutcome::ToClient.index()], 1);
    assert_eq!(c.icmp_errors[IcmpErrorOutcome::ToMember.index()], 1);
    // About no flow: counted and dropped.
    let mut other = to_member.clone();
    other[14 + 24 + 15] ^= 0x70; // another destination than any member
    let (v, _) = run(&mut p, &w, &icmp_error_about(&other, member), 14);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
}

/// `f` (a TCP frame) with flags `flags`, sequence `seq` and acknowledgement `ack`, its checksum
/// recomputed.
fn tcp_with(f: &[u8], flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let mut g = f.to_vec();
    let ip = crate::wire::Ipv6Packet::new_checked(&g[14..]).unwrap();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let mut t = crate::wire::TcpPacket::new_unchecked(&mut g[14 + 40..]);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_flags(crate::wire::tcp::Flags(u16::from(flags)));
    t.fill_checksum_v6(s, d);
    g
}

#[test]
fn reset_on_idle_sends_both_rsts_with_each_receivers_next_sequence() {
    let w = World::new(&lb(
        "tcp",
        80,
        8080,
        "web6",
        "idle_timeout_seconds = 4\nenable_tcp_reset = true",
    ));
    let mut p = pipeline();
    let syn = eth(golden6::TCP_SYN);
    // Client seq 1 (SYN), the server's ISN 5000; the client's ACK then 10 bytes of data.
    let (_, to_member) = run(&mut p, &w, &syn, 10);
    let member = dst_of(&to_member);
    let synack = tcp_with(&reversed(&to_member), 0x12, 5000, 2);
    assert_eq!(run(&mut p, &w, &synack, 10).0, Verdict::Forward { port: 0 });
    let ack = tcp_with(&syn, 0x10, 2, 5001);
    assert_eq!(run(&mut p, &w, &ack, 11).0, Verdict::Forward { port: 0 });
    let mut sent = Vec::new();
    let n = p.expire(&w.view(), 11 + 4000, usize::MAX / 4, |port, f| {
        sent.push((port, f.to_vec()))
    });
    assert_eq!(n, 1);
    assert_eq!(sent.len(), 2, "an RST to each end");
    let rst = |f: &[u8]| {
        let ip = crate::wire::Ipv6Packet::new_checked(&f[14..]).unwrap();
        let t = crate::wire::TcpPacket::new_checked(&f[14 + 40..]).unwrap();
        assert!(t.verify_checksum_v6(ip.src_addr(), ip.dst_addr()));
        (
            ip.src_addr(),
            t.src_port(),
            ip.dst_addr(),
            t.dst_port(),
            t.seq_number(),
        )
    };
    // To the client from VIP:80 with the client's latest ACK (5001); to the member from the
    // client, NATed to member:8080, with the client's next sequence (2).
    assert_eq!(rst(&sent[0].1), (SERVER, 80, CLIENT, 49152, 5001));
    assert_eq!(&sent[0].1[..6], &GW_MAC.0);
    assert_eq!(rst(&sent[1].1), (CLIENT, 49152, member, 8080, 2));
    assert_eq!(&sent[1].1[..6], &mac_of(member).0);
    assert_eq!(p.counters().resets_sent, 2);
}

#[test]
fn the_ipv6_table_holds_a_quarter_of_the_capacity_at_132_bytes_a_flow() {
    let p = Pipeline::new(&PipelineConfig {
        flow_capacity: 1 << 16,
        recent_capacity: 1024,
        flow_capacity6: None,
    });
    assert_eq!(p.v6.table.capacity(), 1 << 14);
    assert_eq!(p.v6.table.memory_bytes(), (1 << 14) * 132);
    // The smallest table still holds 1024 flows.
    assert_eq!(pipeline().v6.table.capacity(), 1024);
    // `flow_capacity6` sets it apart from the IPv4 table.
    let p = Pipeline::new(&PipelineConfig {
        flow_capacity: 1 << 12,
        recent_capacity: 1024,
        flow_capacity6: Some(1 << 15),
    });
    assert_eq!(
        (p.table.capacity(), p.v6.table.capacity()),
        (1 << 12, 1 << 15)
    );
}

/// The IPv6 SNAT frontend of [`outbound6`].
const SNAT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x100);
/// A remote endpoint on the client side.
const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 7);

/// An outbound rule over pool "web6" on frontend [`SNAT6`], `ports` ports per member.
fn outbound6(ports: u16) -> String {
    format!(
        "[[frontends]]\nname = \"out6\"\naddress = \"{SNAT6}\"\n[[outbound_rules]]\nname = \"egress6\"\nfrontends = [\"out6\"]\nbackend_pool = \"web6\"\nallocated_outbound_ports = {ports}\nidle_timeout_seconds = 60\n"
    )
}

/// The golden SYN as vm1 sends it from `port` to [`REMOTE6`]:443.
fn member_syn(port: u16) -> Vec<u8> {
    let mut f = eth(golden6::TCP_SYN);
    rewrite_endpoint_v6(&mut f[14..], Endpoint::Src, VM1, Some(port)).unwrap();
    rewrite_endpoint_v6(&mut f[14..], Endpoint::Dst, REMOTE6, Some(443)).unwrap();
    f
}

#[test]
fn a_members_syn_leaves_from_the_frontend_and_the_reply_comes_back_to_the_member() {
    let w = World::new(&outbound6(8));
    let mut p = pipeline();
    let syn = member_syn(40000);
    let (v, out) = run(&mut p, &w, &syn, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    // Source → frontend:first port of vm1's block (1024), checksum over the new pseudo-header,
    // hop limit − 1, toward the gateway.
    assert_eq!(
        out,
        nat_by_builder(&syn, Endpoint::Src, SNAT6, 1024, GW_MAC)
    );
    let t: Vec<_> = p.v6.snat.iter().copied().collect();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].member, t[0].member_port, t[0].frontend, t[0].snat_port),
        (VM1.to_bits(), 40000, SNAT6.to_bits(), 1024)
    );
    // The remote's answer to frontend:1024 goes to vm1:40000 at its MAC.
    let reply = reversed(&out);
    let (v, back) = run(&mut p, &w, &reply, 11);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert_eq!(
        back,
        nat_by_builder(&reply, Endpoint::Dst, VM1, 40000, mac_of(VM1))
    );
    // The same connection keeps its port; another one takes the next.
    assert_eq!(run(&mut p, &w, &syn, 12).1, out);
    let (v, out2) = run(&mut p, &w, &member_syn(40001), 12);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let second = member_syn(40001);
    assert_eq!(
        out2,
        nat_by_builder(&second, Endpoint::Src, SNAT6, 1025, GW_MAC)
    );
    let vm1 = w.snapshot.member_by_addr6(VM1.to_bits()).unwrap();
    let s = p.counters().snat[vm1.index()];
    assert_eq!((s.connections, s.successful, s.ports_taken), (2, 1, 2));
    // A remote endpoint vm1 never sent to gets nothing.
    let mut stranger = reply.clone();
    rewrite_endpoint_v6(&mut stranger[14..], Endpoint::Src, REMOTE6, Some(444)).unwrap();
    assert_eq!(
        run(&mut p, &w, &stranger, 13).0,
        Verdict::Drop(DropReason::NoRule)
    );
}

#[test]
fn ipv6_snat_ports_run_out_like_ipv4_and_come_back_after_idle_expiry() {
    let w = World::new(&outbound6(8));
    let mut p = pipeline();
    for i in 0..8 {
        let (v, _) = run(&mut p, &w, &member_syn(40000 + i), 10);
        assert_eq!(v, Verdict::Forward { port: 0 }, "connection {i}");
    }
    assert_eq!(
        run(&mut p, &w, &member_syn(40100), 10).0,
        Verdict::Drop(DropReason::SnatExhausted)
    );
    let vm1 = w.snapshot.member_by_addr6(VM1.to_bits()).unwrap();
    assert_eq!(p.counters().snat[vm1.index()].exhausted, 1);
    // A non-SYN without a translation does not leave.
    let ack = tcp_with(&member_syn(40200), 0x10, 2, 5001);
    assert_eq!(
        run(&mut p, &w, &ack, 10).0,
        Verdict::Drop(DropReason::NoFlow)
    );
    // After the idle timeout (60 s) the sweep releases every translation and its port.
    p.expire(&w.view(), 10 + 61, usize::MAX / 4, |_, _| {});
    assert_eq!(p.v6.snat.len(), 0);
    assert_eq!(p.counters().snat[vm1.index()].ports_released, 8);
    assert_eq!(
        run(&mut p, &w, &member_syn(40100), 80).0,
        Verdict::Forward { port: 0 }
    );
}

/// The golden UDP datagram as vm1 sends it from 5000 to [`REMOTE6`]:`port`.
fn member_udp(port: u16) -> Vec<u8> {
    let mut f = eth(golden6::UDP);
    rewrite_endpoint_v6(&mut f[14..], Endpoint::Src, VM1, Some(5000)).unwrap();
    rewrite_endpoint_v6(&mut f[14..], Endpoint::Dst, REMOTE6, Some(port)).unwrap();
    f
}

#[test]
fn ipv6_udp_leaves_from_the_frontend_keeps_its_port_per_remote_ip_and_is_answered() {
    let w = World::new(&outbound6(8));
    let mut p = pipeline();
    let d = member_udp(53);
    let (v, out) = run(&mut p, &w, &d, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert_eq!(out, nat_by_builder(&d, Endpoint::Src, SNAT6, 1024, GW_MAC));
    let reply = reversed(&out);
    let (v, back) = run(&mut p, &w, &reply, 11);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert_eq!(
        back,
        nat_by_builder(&reply, Endpoint::Dst, VM1, 5000, mac_of(VM1))
    );
    // Port-restricted cone: another port of the same remote IP keeps the SNAT port.
    let d2 = member_udp(54);
    let (_, out2) = run(&mut p, &w, &d2, 12);
    assert_eq!(
        out2,
        nat_by_builder(&d2, Endpoint::Src, SNAT6, 1024, GW_MAC)
    );
    // The IPv6 SNAT table (allocated with the IPv6 outbound rule) counts in the worker's memory.
    assert!(p.v6.snat.capacity() >= 256);
    let others = p.table.memory_bytes()
        + p.v6.table.memory_bytes()
        + p.recent.memory_bytes()
        + p.snat.memory_bytes();
    assert_eq!(p.memory_bytes(), others + p.v6.snat.memory_bytes());
}

/// The TCP endpoints and sequence number of an RST frame, checking its checksum.
fn rst_fields(f: &[u8]) -> (Ipv6Addr, u16, Ipv6Addr, u16, u32) {
    let ip = crate::wire::Ipv6Packet::new_checked(&f[14..]).unwrap();
    let t = crate::wire::TcpPacket::new_checked(&f[14 + 40..]).unwrap();
    assert!(t.verify_checksum_v6(ip.src_addr(), ip.dst_addr()));
    assert_eq!(t.flags().0 & 0x3f, 0x04, "RST only");
    (
        ip.src_addr(),
        t.src_port(),
        ip.dst_addr(),
        t.dst_port(),
        t.seq_number(),
    )
}

/// vm1:`port` → REMOTE6:443 established through the SNAT (member ISN 1, remote ISN 5000), at
/// time 10..11.
fn snat_established(p: &mut Pipeline, w: &World, port: u16) {
    let syn = tcp_with(&member_syn(port), 0x02, 1, 0);
    let (v, out) = run(p, w, &syn, 10);
    assert_eq!(v, Verdict::Forward { port: 0 });
    let synack = tcp_with(&reversed(&out), 0x12, 5000, 2);
    assert_eq!(run(p, w, &synack, 10).0, Verdict::Forward { port: 0 });
    let ack = tcp_with(&syn, 0x10, 2, 5001);
    assert_eq!(run(p, w, &ack, 11).0, Verdict::Forward { port: 0 });
}

#[test]
fn ipv6_snat_reset_on_idle_sends_rsts_to_the_member_and_the_remote() {
    let w = World::new(&format!("{}enable_tcp_reset = true\n", outbound6(8)));
    let mut p = pipeline();
    snat_established(&mut p, &w, 40000);
    let mut sent = Vec::new();
    let n = p.expire(&w.view(), 11 + 61, usize::MAX / 4, |port, f| {
        sent.push((port, f.to_vec()))
    });
    assert_eq!(n, 0, "translations are not flows of the table");
    assert_eq!(p.v6.snat.len(), 0);
    assert_eq!(sent.len(), 2, "an RST to each end");
    // To the member from the remote with the member's latest ACK; to the remote from the
    // frontend:SNAT port with the member's next sequence.
    assert_eq!(rst_fields(&sent[0].1), (REMOTE6, 443, VM1, 40000, 5001));
    assert_eq!(&sent[0].1[..6], &mac_of(VM1).0);
    assert_eq!(rst_fields(&sent[1].1), (SNAT6, 1024, REMOTE6, 443, 2));
    assert_eq!(&sent[1].1[..6], &GW_MAC.0);
    assert_eq!(p.counters().resets_sent, 2);
    // Found expired by a late packet of the member: released on the spot (the packet is
    // no_flow), its RSTs sent by the next sweep.
    snat_established(&mut p, &w, 40001);
    let late = tcp_with(&member_syn(40001), 0x10, 2, 5001);
    assert_eq!(
        run(&mut p, &w, &late, 11 + 61).0,
        Verdict::Drop(DropReason::NoFlow)
    );
    assert_eq!(p.v6.snat.len(), 0);
    sent.clear();
    p.expire(&w.view(), 11 + 62, usize::MAX / 4, |port, f| {
        sent.push((port, f.to_vec()))
    });
    assert_eq!(sent.len(), 2, "the queued RSTs");
    assert_eq!(rst_fields(&sent[0].1), (REMOTE6, 443, VM1, 40001, 5001));
    // Without enable_tcp_reset: released silently.
    let w = World::new(&outbound6(8));
    let mut p = pipeline();
    snat_established(&mut p, &w, 40000);
    let mut n = 0;
    p.expire(&w.view(), 11 + 61, usize::MAX / 4, |_, _| n += 1);
    assert_eq!((n, p.v6.snat.len()), (0, 0));
}

#[test]
fn icmpv6_error_about_a_snat_connection_reaches_its_member() {
    use crate::dataplane::icmp_error::IcmpErrorOutcome;
    let w = World::new(&outbound6(8));
    let mut p = pipeline();
    let (_, out) = run(&mut p, &w, &member_syn(40000), 10);
    // A router on the way reports frontend:1024 → REMOTE6:443: to vm1, about vm1:40000 →
    // REMOTE6:443, hop limit − 1, checksums valid.
    let router = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
    let (v, back) = run(&mut p, &w, &icmp_error_about(&out, router), 11);
    assert_eq!(v, Verdict::Forward { port: 0 });
    assert_eq!(&back[..6], &mac_of(VM1).0);
    assert_eq!(back[14 + 7], 63);
    assert_eq!(
        error_fields(&back),
        ((router, VM1), (VM1, 40000, REMOTE6, 443))
    );
    let c = p.counters();
    assert_eq!(c.icmp_errors[IcmpErrorOutcome::ToSnatMember.index()], 1);
    // About a port no translation holds: no flow.
    let mut other = out.clone();
    rewrite_endpoint_v6(&mut other[14..], Endpoint::Src, SNAT6, Some(1030)).unwrap();
    let (v, _) = run(&mut p, &w, &icmp_error_about(&other, router), 12);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
}

/// A TCP frame from [`CLIENT`] port `sport` to [`SERVER`] port `dport` with `flags`, `seq`, `ack`
/// and `data`, as the gateway hands it to the MUX (lengths and checksum filled).
fn tcp6(sport: u16, dport: u16, flags: u8, (seq, ack): (u32, u32), data: &[u8]) -> Vec<u8> {
    let mut f = [PORT_MAC.0, GW_MAC.0].concat();
    f.extend_from_slice(&ethertype::IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(20 + data.len() as u16).to_be_bytes());
    f.extend_from_slice(&[6, 64]);
    f.extend_from_slice(&CLIENT.octets());
    f.extend_from_slice(&SERVER.octets());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0; 16]);
    f[14 + 40 + 12] = 0x50;
    f[14 + 40 + 14..14 + 40 + 16].copy_from_slice(&1024u16.to_be_bytes());
    f.extend_from_slice(data);
    tcp_with(&f, flags, seq, ack)
}

/// Runs `frames` through `p` as one burst at `now`: each frame's verdict and bytes after it.
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

/// The IPv6 established lane (a burst's leading plain ACKs of known NAT66 flows, decided in a
/// loop of their own) decides as the general path: the same frames, verdicts, counters and flow
/// entries when the ACKs lead the burst (the lane takes them) as when a new flow's SYN leads it
/// (the general path takes every packet). For NAT66, NAT66 with resets on idle (the lane tracks
/// the numbers) and floating IP (the lane leaves it to the general path).
#[test]
fn established_lane6_decides_as_the_general_path() {
    for extra in ["", "enable_tcp_reset = true", "enable_floating_ip = true"] {
        let w = World::new(&lb("tcp", 80, 8080, "web6", extra));
        let ports: Vec<u16> = (0..5).map(|i| 41000 + i).collect();
        let isn = |i: usize| (u32::MAX - 2500).wrapping_add(1000 * i as u32);
        let open = |p: &mut Pipeline| {
            for (i, &sport) in ports.iter().enumerate() {
                run(p, &w, &tcp6(sport, 80, 0x02, (isn(i), 0), &[]), 10);
                let ack = tcp6(sport, 80, 0x10, (isn(i).wrapping_add(1), 9), &[]);
                assert_eq!(run(p, &w, &ack, 10).0, Verdict::Forward { port: 0 });
            }
        };
        let (mut lane, mut general) = (pipeline(), pipeline());
        open(&mut lane);
        open(&mut general);
        // Plain ACKs with and without data (PSH too), sequence numbers across the wrap.
        let acks: Vec<Vec<u8>> = ports
            .iter()
            .enumerate()
            .flat_map(|(i, &sport)| {
                let seq = isn(i).wrapping_add(1);
                [
                    tcp6(sport, 80, 0x10, (seq, 9), b"hello"),
                    tcp6(sport, 80, 0x18, (seq.wrapping_add(5), 30), &[7; 1000]),
                    tcp6(sport, 80, 0x10, (seq.wrapping_add(1005), 60), &[]),
                ]
            })
            .collect();
        let syn = tcp6(42000, 80, 0x02, (5, 0), &[]);
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
                .all(|(v, _)| *v == Verdict::Forward { port: 0 }),
            "{extra}: {lane_out:?}"
        );
        assert_eq!(lane_out[acks.len()], general_out[0], "{extra}: the SYN");
        assert_eq!(
            lane_out[..acks.len()],
            general_out[1..],
            "{extra}: the ACKs"
        );
        assert_ne!(lane_out[0].1, acks[0], "{extra}: rewritten");
        assert_eq!(
            format!("{:?}", lane.counters()),
            format!("{:?}", general.counters()),
            "{extra}"
        );
        let entries = |p: &Pipeline| {
            let mut e: Vec<_> = p.flows6().map(|(k, e)| format!("{k:?} {e:?}")).collect();
            e.sort();
            e
        };
        assert_eq!(entries(&lane), entries(&general), "{extra}");
        assert_eq!(lane.flows6().count(), ports.len() + 1, "{extra}");
    }
}
