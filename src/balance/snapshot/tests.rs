//! Tests of snapshot compilation and lookups.

use super::*;
use crate::balance::hash::hash_5tuple;

const BASE: &str = r#"
[appliance]
hash_seed = 42

[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"

[[frontends]]
name = "fe"
address = "10.1.0.100"
interface = "dc"

[[frontends]]
name = "ha"
address = "10.1.0.101"

[[backend_pools]]
name = "web"
members = [
  { name = "vm1", address = "10.1.0.11" },
  { name = "vm2", address = "10.1.0.12", weight = 2 },
  { name = "vm3", address = "10.9.0.13", admin_state = "down" },
]

[[backend_pools]]
name = "fw"
members = [
  { name = "fw1", address = "10.1.0.21" },
  { name = "fw2", address = "10.1.0.22", admin_state = "down" },
]

[[probes]]
name = "p"
protocol = "tcp"
port = 80

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
probe = "p"
idle_timeout_seconds = 30

[[load_balancing_rules]]
name = "all"
frontend = "ha"
protocol = "all"
frontend_port = 0
backend_pool = "fw"

[[inbound_nat_rules]]
name = "rdp"
frontend = "fe"
protocol = "tcp"
frontend_port = 50001
target = { pool = "web", member = "vm1" }
backend_port = 3389

[[inbound_nat_rules]]
name = "ssh"
frontend = "fe"
protocol = "tcp"
frontend_port_range_start = 50100
frontend_port_range_end = 50109
backend_pool = "web"
backend_port = 22

[[outbound_rules]]
name = "out"
frontends = ["fe"]
backend_pool = "web"
"#;

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

pub(super) fn config(text: &str) -> Config {
    Config::from_str(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn all_up(c: &Config) -> Snapshot {
    Snapshot::compile(c, &Health::all_up(c))
}

#[test]
fn lookup_by_frontend_protocol_port() {
    let s = all_up(&config(BASE));
    let r = s.lookup(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    assert_eq!(r.name, "web");
    assert_eq!(r.kind, RuleKind::LoadBalancing);
    assert_eq!(r.backend_port, 8080);
    assert_eq!(r.idle_timeout_secs, 30);
    assert!(s.lookup(ip("10.1.0.100"), IPPROTO_UDP, 80).is_none());
    assert!(s.lookup(ip("10.1.0.100"), IPPROTO_TCP, 81).is_none());
    assert!(s.is_frontend(ip("10.1.0.100")));
    assert!(!s.is_frontend(ip("10.1.0.11")));
    let nat = s.lookup(ip("10.1.0.100"), IPPROTO_TCP, 50001).unwrap();
    assert_eq!((nat.kind, nat.backend_port), (RuleKind::InboundNat, 3389));
    assert_eq!(nat.idle_timeout_secs, 240, "default 4 minutes");
    let longest = s.rules.iter().map(|r| r.idle_timeout_secs).max().unwrap();
    assert_eq!(s.longest_idle_timeout_secs, longest);
    assert!(longest >= 240);
}

#[test]
fn each_rule_sits_at_its_id() {
    // The established lane counts a flow by its stored rule id without loading the rule.
    let s = all_up(&config(BASE));
    assert!(s.rules.len() >= 2, "load-balancing and inbound NAT rules");
    for (i, r) in s.rules.iter().enumerate() {
        assert_eq!(r.id.index(), i, "{}", r.name);
        assert_eq!(s.rule(r.id).map(|x| x.id), Some(r.id));
    }
}

#[test]
fn longest_idle_timeout_follows_the_rules() {
    let c = config(&BASE.replace("idle_timeout_seconds = 30", "idle_timeout_seconds = 5400"));
    assert_eq!(all_up(&c).longest_idle_timeout_secs, 5400);
}

#[test]
fn encapsulates_only_with_a_floating_ip_rule_over_a_tunnel() {
    let (pool, rule) = ("name = \"fw\"\n", "backend_pool = \"fw\"\n");
    let floating = format!("{rule}enable_floating_ip = true\n");
    let tunnel = format!("{pool}dsr_encapsulation = \"gue\"\n");
    assert!(!all_up(&config(BASE)).encapsulates);
    // Floating IP by MAC rewrite (on-link members) writes no outer header.
    let mac = BASE.replace(rule, &floating);
    assert!(!all_up(&config(&mac)).encapsulates);
    assert!(all_up(&config(&mac.replace(pool, &tunnel))).encapsulates);
    // A tunnel pool behind a rule without floating IP delivers by NAT: no outer header.
    assert!(!all_up(&config(&BASE.replace(pool, &tunnel))).encapsulates);
}

#[test]
fn ha_ports_match_any_protocol_and_port() {
    let s = all_up(&config(BASE));
    for (proto, port) in [(IPPROTO_TCP, 1), (IPPROTO_UDP, 53), (1, 0), (47, 0)] {
        let r = s.lookup(ip("10.1.0.101"), proto, port).unwrap();
        assert_eq!(r.name, "all");
        assert!(r.ha_ports);
        assert_eq!(r.backend_port_for(port), port);
    }
}

#[test]
fn eligibility_follows_probe_and_admin_state() {
    let c = config(BASE);
    let mut h = Health::new();
    h.set("p", "10.1.0.11".parse::<IpAddr>().unwrap(), ProbeState::Up);
    h.set(
        "p",
        "10.1.0.12".parse::<IpAddr>().unwrap(),
        ProbeState::Down,
    );
    h.set("p", "10.9.0.13".parse::<IpAddr>().unwrap(), ProbeState::Up);
    let s = Snapshot::compile(&c, &h);
    let web = s.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    let vm1 = s.member_by_addr(ip("10.1.0.11")).unwrap();
    let vm2 = s.member_by_addr(ip("10.1.0.12")).unwrap();
    let vm3 = s.member_by_addr(ip("10.9.0.13")).unwrap();
    assert!(s.is_eligible(web, vm1));
    assert!(!s.is_eligible(web, vm2), "probe down");
    assert!(!s.is_eligible(web, vm3), "admin down beats probe up");
    for k in 0..1000u32 {
        assert_eq!(s.pick(web, hash_5tuple(1, k, 2, 6, 3, 4)), Some(vm1));
    }
    // The HA rule has no probe: everyone but the admin-down member.
    let ha = s.lookup_id(ip("10.1.0.101"), IPPROTO_TCP, 1).unwrap();
    let fw1 = s.member_by_addr(ip("10.1.0.21")).unwrap();
    let fw2 = s.member_by_addr(ip("10.1.0.22")).unwrap();
    assert!(s.is_eligible(ha, fw1) && !s.is_eligible(ha, fw2));
    assert!(!s.is_eligible(ha, vm1), "not a member of that rule");
}

#[test]
fn admin_up_overrides_probe() {
    let text = BASE.replace(
        "{ name = \"vm1\", address = \"10.1.0.11\" }",
        "{ name = \"vm1\", address = \"10.1.0.11\", admin_state = \"up\" }",
    );
    let s = Snapshot::compile(&config(&text), &Health::new());
    let web = s.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    let vm1 = s.member_by_addr(ip("10.1.0.11")).unwrap();
    assert!(s.is_eligible(web, vm1));
    assert_eq!(s.pick(web, 12345), Some(vm1));
}

#[test]
fn all_down_drops_or_spreads() {
    let c = config(BASE);
    let s = Snapshot::compile(&c, &Health::new());
    let web = s.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    assert!(s.rule(web).unwrap().all_down);
    assert_eq!(s.pick(web, 1), None);
    assert!(
        s.frontend_has_healthy_member(FrontendId(0)),
        "NAT rules have no probe"
    );

    let text = BASE.replace(
        "hash_seed = 42",
        "hash_seed = 42\nno_healthy_backends = \"all\"",
    );
    let s = Snapshot::compile(&config(&text), &Health::new());
    let r = s.rule(web).unwrap();
    assert!(r.all_down);
    let vm3 = s.member_by_addr(ip("10.9.0.13")).unwrap();
    let picked: std::collections::HashSet<_> = (0..1000u32)
        .filter_map(|k| s.pick(web, hash_5tuple(1, k, 2, 6, 3, 4)))
        .collect();
    assert_eq!(picked.len(), 2, "vm1 and vm2, never the admin-down vm3");
    assert!(!picked.contains(&vm3));
}

#[test]
fn weights_reach_the_table() {
    let s = all_up(&config(BASE));
    let web = s.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    let t = s.maglev(web).unwrap();
    let c = t.counts(3);
    assert_eq!(c[2], 0);
    let ratio = f64::from(c[1]) / f64::from(c[0]);
    assert!((ratio - 2.0).abs() < 0.02, "{c:?}");
}

#[test]
fn reverse_nat_maps_replies_back() {
    let s = all_up(&config(BASE));
    let rev = s.reverse_nat(ip("10.1.0.12"), IPPROTO_TCP, 8080).unwrap();
    assert_eq!(s.rule(rev.rule).unwrap().name, "web");
    assert_eq!(s.member(rev.member).unwrap().addr4(), ip("10.1.0.12"));
    assert_eq!((rev.vip, rev.vip_port), ("10.1.0.100".parse().unwrap(), 80));
    let rev = s.reverse_nat(ip("10.1.0.11"), IPPROTO_TCP, 3389).unwrap();
    assert_eq!(rev.vip_port, 50001);
    // Range: vm2 holds slot 1.
    let rev = s.reverse_nat(ip("10.1.0.12"), IPPROTO_TCP, 22).unwrap();
    assert_eq!(rev.vip_port, 50101);
    // HA ports, non-floating: any port, kept.
    let rev = s.reverse_nat(ip("10.1.0.21"), IPPROTO_UDP, 5353).unwrap();
    assert_eq!(
        (rev.vip, rev.vip_port),
        ("10.1.0.101".parse().unwrap(), 5353)
    );
    assert!(s.reverse(ip("10.1.0.200"), IPPROTO_TCP, 8080).is_none());
}

#[test]
fn range_slots_and_choose() {
    let s = all_up(&config(BASE));
    let ssh = s.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 50100).unwrap();
    let r = s.rule(ssh).unwrap();
    assert_eq!(r.kind, RuleKind::InboundNatRange);
    assert_eq!((r.frontend_port, r.frontend_port_end), (50100, 50109));
    let vm2 = s.member_by_addr(ip("10.1.0.12")).unwrap();
    assert_eq!(s.nat_slot_member(ssh, 50101), Some(vm2));
    assert_eq!(s.choose(ssh, 50101, 0), Some(vm2));
    assert_eq!(s.choose(ssh, 50102, 0), None, "vm3 is admin down");
    assert_eq!(s.choose(ssh, 50103, 0), None, "empty slot");
    assert!(s.lookup(ip("10.1.0.100"), IPPROTO_TCP, 50109).is_some());
    assert!(s.lookup(ip("10.1.0.100"), IPPROTO_TCP, 50110).is_none());
}

#[test]
fn range_slots_are_stable_across_reloads() {
    let c1 = config(BASE);
    let s1 = all_up(&c1);
    // vm1 leaves, vm4 joins: vm2 and vm3 keep slots 1 and 2, vm4 takes the lowest free (0).
    let text = BASE
        .replace("  { name = \"vm1\", address = \"10.1.0.11\" },\n", "")
        .replacen(
            "admin_state = \"down\" },\n]",
            "admin_state = \"down\" },\n  { name = \"vm4\", address = \"10.1.0.14\" },\n]",
            1,
        )
        .replace(
            "target = { pool = \"web\", member = \"vm1\" }",
            "target = { pool = \"web\", member = \"vm2\" }",
        );
    let c2 = config(&text);
    let s2 = Snapshot::compile_with_previous(&c2, &Health::all_up(&c2), Some(&s1));
    assert_eq!(s2.epoch, s1.epoch + 1);
    let ssh = s2.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 50100).unwrap();
    let name = |p: u16| {
        s2.nat_slot_member(ssh, p)
            .map(|m| s2.member(m).unwrap().name.clone())
    };
    assert_eq!(name(50100).as_deref(), Some("vm4"));
    assert_eq!(name(50101).as_deref(), Some("vm2"));
    assert_eq!(name(50102).as_deref(), Some("vm3"));
    // Without the previous snapshot, pool order decides.
    let fresh = Snapshot::compile(&c2, &Health::all_up(&c2));
    let m = fresh.nat_slot_member(ssh, 50100).unwrap();
    assert_eq!(fresh.member(m).unwrap().name, "vm2");
}

#[test]
fn members_know_their_next_hop() {
    let s = all_up(&config(BASE));
    let vm1 = s
        .member(s.member_by_addr(ip("10.1.0.11")).unwrap())
        .unwrap();
    assert!(vm1.on_link);
    assert_eq!(vm1.next_hop, Some("10.1.0.11".parse().unwrap()));
    assert_eq!(vm1.interface, Some(InterfaceId(0)));
    let vm3 = s
        .member(s.member_by_addr(ip("10.9.0.13")).unwrap())
        .unwrap();
    assert!(!vm3.on_link);
    assert_eq!(vm3.next_hop, Some("10.1.0.1".parse().unwrap()));
}

#[test]
fn outbound_blocks_follow_the_default_table() {
    let s = all_up(&config(BASE));
    let (o, b) = s.outbound_for(ip("10.1.0.12"), IPPROTO_UDP).unwrap();
    assert_eq!(o.ports_per_member, 1024);
    assert_eq!(b.frontend4(), ip("10.1.0.100"));
    assert_eq!((b.first_port, b.count), (1024 + 1024, 1024));
    assert!(s.outbound_for(ip("10.1.0.99"), IPPROTO_TCP).is_none());
    assert_eq!(default_snat_ports(51), 512);
    assert_eq!(default_snat_ports(1000), 32);
}

/// An outbound rule on two frontends, 64 ports per member, over members `vm<n>` (10.1.0.1n),
/// and `extra` TOML.
fn snat_config(members: &[u32], extra: &str) -> Config {
    let ms: Vec<String> = members
        .iter()
        .map(|n| format!("{{ name = \"vm{n}\", address = \"10.1.0.{}\" }}", 10 + n))
        .collect();
    config(&format!(
        r#"
[[frontends]]
name = "fe"
address = "10.1.0.100"
[[frontends]]
name = "fe2"
address = "10.1.0.101"
[[backend_pools]]
name = "web"
members = [{}]
[[outbound_rules]]
name = "out"
frontends = ["fe", "fe2"]
backend_pool = "web"
allocated_outbound_ports = 64
{extra}
"#,
        ms.join(", ")
    ))
}

/// The first port of the TCP block of `vm<n>` on frontend IP `fe`.
fn first_port(s: &Snapshot, n: u32, fe: &str) -> Option<u16> {
    s.snat_block(ip(&format!("10.1.0.{}", 10 + n)), IPPROTO_TCP, ip(fe))
        .map(|b| b.first_port)
}

#[test]
fn a_member_has_a_block_on_each_frontend_and_replies_find_it() {
    let s = all_up(&snat_config(&[1, 2], ""));
    assert!(s.snat_errors().is_empty());
    let (o, blocks) = s.outbound_blocks(ip("10.1.0.12"), IPPROTO_TCP).unwrap();
    assert_eq!(o.name, "out");
    let got: Vec<(Ipv4Addr, u16, u16)> = blocks
        .iter()
        .map(|b| (b.frontend4().into(), b.first_port, b.last_port()))
        .collect();
    let (fe, fe2) = ("10.1.0.100", "10.1.0.101");
    assert_eq!(
        got,
        vec![
            (fe.parse().unwrap(), 1088, 1151),
            (fe2.parse().unwrap(), 1088, 1151)
        ]
    );
    assert_eq!(
        s.outbound_for(ip("10.1.0.12"), IPPROTO_UDP).unwrap().1,
        &blocks[0]
    );
    let b = s.snat_block(ip("10.1.0.12"), IPPROTO_UDP, ip(fe2)).unwrap();
    assert_eq!(b, &blocks[1]);
    assert!(s
        .snat_block(ip("10.1.0.12"), IPPROTO_UDP, ip("10.1.0.102"))
        .is_none());
    // One figure per member over both frontend IPs.
    let by_member: Vec<(MemberId, u64)> = o.ports_by_member().collect();
    assert_eq!(by_member.len(), 2, "{by_member:?}");
    assert!(by_member.iter().all(|(_, n)| *n == 128), "{by_member:?}");
    // A reply to frontend IP:port finds the block that holds the port.
    let (_, by_port) = s.snat_block_by_port(ip(fe2), IPPROTO_TCP, 1100).unwrap();
    assert_eq!(by_port, b);
    let (_, low) = s.snat_block_by_port(ip(fe), IPPROTO_UDP, 1087).unwrap();
    assert_eq!(low.first_port, 1024);
    assert!(s.snat_block_by_port(ip(fe), IPPROTO_TCP, 1152).is_none());
    assert!(s.snat_block_by_port(ip(fe), IPPROTO_TCP, 1023).is_none());
    assert!(s
        .snat_block_by_port(ip("10.1.0.11"), IPPROTO_TCP, 1100)
        .is_none());
    // Two workers: 1088-1119 belong to worker 0, 1120-1151 to worker 1.
    assert_eq!(b.worker_ports(1, 2), (1120, 32));
    assert_eq!(snat_port_owner(b, 1119, 2), Some(0));
    assert_eq!(snat_port_owner(b, 1120, 2), Some(1));
    assert_eq!(snat_port_owner(b, 1152, 2), None);
}

#[test]
fn blocks_stay_with_their_members_across_a_reload() {
    let fe = "10.1.0.100";
    let s1 = all_up(&snat_config(&[1, 2, 3], ""));
    let firsts = |s: &Snapshot, ns: &[u32]| -> Vec<Option<u16>> {
        ns.iter().map(|n| first_port(s, *n, fe)).collect()
    };
    assert_eq!(
        firsts(&s1, &[1, 2, 3]),
        vec![Some(1024), Some(1088), Some(1152)]
    );
    // vm2 leaves and vm4 comes first in the pool: vm1 and vm3 keep their ports on both
    // frontend IPs, vm4 takes the hole.
    let c2 = snat_config(&[4, 1, 3], "");
    let s2 = Snapshot::try_compile_with_previous(&c2, &Health::all_up(&c2), Some(&s1)).unwrap();
    assert_eq!(
        firsts(&s2, &[4, 1, 3]),
        vec![Some(1088), Some(1024), Some(1152)]
    );
    assert_eq!(first_port(&s2, 3, "10.1.0.101"), Some(1152));
    // A health recompile keeps them too; without a previous snapshot the pool order decides.
    let s3 = Snapshot::compile_with_previous(&c2, &Health::new(), Some(&s2));
    assert_eq!(
        firsts(&s3, &[4, 1, 3]),
        vec![Some(1088), Some(1024), Some(1152)]
    );
    assert_eq!(first_port(&all_up(&c2), 4, fe), Some(1024));
    // A reload whose new rule port lies in vm3's block is refused, naming both.
    let rule = "[[load_balancing_rules]]\nname = \"x\"\nfrontend = \"fe\"\nprotocol = \"tcp\"\nfrontend_port = 1200\nbackend_port = 80\nbackend_pool = \"web\"\n";
    let c4 = snat_config(&[4, 1, 3], rule);
    let e = Snapshot::try_compile_with_previous(&c4, &Health::all_up(&c4), Some(&s3))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("load_balancing_rules[0] (\"x\") frontend_port = 1200: uses a port inside member \"vm3\"'s SNAT block 1152-1215 on 10.1.0.100"),
        "{e}"
    );
}

#[test]
fn rules_over_the_same_pool_and_health_share_a_table() {
    let text = format!(
        "{BASE}\n[[load_balancing_rules]]\nname = \"web2\"\nfrontend = \"fe\"\nprotocol = \"tcp\"\nfrontend_port = 443\nbackend_pool = \"web\"\nprobe = \"p\"\n"
    );
    let s = all_up(&config(&text));
    // web and web2 (same pool and eligible set) share a table; the HA rule has its own.
    assert_eq!(s.table_count(), 2);
    let a = s.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    let b = s.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 443).unwrap();
    assert_eq!(s.pick(a, 99), s.pick(b, 99));
}

#[test]
fn same_config_same_choice() {
    let c = config(BASE);
    let a = all_up(&c);
    let b = all_up(&c);
    let web = a.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    for k in 0..2000u32 {
        let h = hash_5tuple(a.hash_seed, k, ip("10.1.0.100"), 6, 1000, 80);
        assert_eq!(a.pick(web, h), b.pick(web, h));
    }
}

#[test]
fn unchanged_tables_are_reused_after_a_health_change() {
    let c = config(BASE);
    let mut h = Health::all_up(&c);
    let s1 = Snapshot::compile(&c, &h);
    let web = s1.lookup_id(ip("10.1.0.100"), IPPROTO_TCP, 80).unwrap();
    let ha = s1.lookup_id(ip("10.1.0.101"), IPPROTO_TCP, 1).unwrap();
    h.set(
        "p",
        "10.1.0.12".parse::<IpAddr>().unwrap(),
        ProbeState::Down,
    );
    let s2 = Snapshot::compile_with_previous(&c, &h, Some(&s1));
    assert!(std::ptr::eq(s1.maglev(ha).unwrap(), s2.maglev(ha).unwrap()));
    assert!(!std::ptr::eq(
        s1.maglev(web).unwrap(),
        s2.maglev(web).unwrap()
    ));
    // Flows on vm1 stay on vm1 (Maglev minimal disruption with only two eligible members).
    let vm1 = s1.member_by_addr(ip("10.1.0.11")).unwrap();
    for k in 0..2000u32 {
        let hsh = hash_5tuple(42, k, 1, 6, 2, 80);
        if s1.pick(web, hsh) == Some(vm1) {
            assert_eq!(s2.pick(web, hsh), Some(vm1));
        }
    }
}

#[test]
fn rule_cache_agrees_with_the_map() {
    let mut map: Map<u64, RuleId> = Map::default();
    // More keys than the cache holds, with collisions, plus a value equal to the empty marker.
    for i in 0..40_000u64 {
        map.insert(
            i.wrapping_mul(0x1_0001_0003) ^ (i << 40),
            RuleId(i as u32 % 977),
        );
    }
    map.insert(7, RuleId(u32::MAX));
    let c = RuleCache::build(&map);
    let mut hits = 0;
    for (k, r) in &map {
        if let Some(x) = c.get(*k) {
            assert_eq!(x, *r);
            hits += 1;
        }
    }
    assert!(hits > 5_000, "hits {hits}");
    assert_eq!(c.get(7), None);
    for k in 1_000_000..1_010_000u64 {
        if !map.contains_key(&k) {
            assert_eq!(c.get(k), None);
        }
    }
    assert_eq!(RuleCache::default().get(0), None);
}

#[test]
fn a_probe_watches_each_member_of_its_pools_once() {
    // A second rule on "web" with the same probe adds nothing; a rule on "fw" adds its members.
    let text = format!(
        "{BASE}\n[[load_balancing_rules]]\nname = \"web2\"\nfrontend = \"fe\"\nprotocol = \"tcp\"\nfrontend_port = 81\nbackend_port = 8081\nbackend_pool = \"web\"\nprobe = \"p\"\n\n[[load_balancing_rules]]\nname = \"fw\"\nfrontend = \"fe\"\nprotocol = \"udp\"\nfrontend_port = 53\nbackend_pool = \"fw\"\nprobe = \"p\"\nenable_floating_ip = true\n"
    );
    let s = all_up(&config(&text));
    let watched: Vec<&str> = s.probes[0]
        .members
        .iter()
        .map(|m| s.members[m.index()].name.as_str())
        .collect();
    assert_eq!(watched, ["vm1", "vm2", "vm3", "fw1", "fw2"]);
}
