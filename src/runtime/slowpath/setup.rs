//! The slow-path thread's setup helpers: what it derives from a snapshot to configure the pure
//! slow path, the neighbour table and the prober (at start and on every reload).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::balance::snapshot::MemberInfo;
use crate::balance::Snapshot;
use crate::runtime::hub::TargetMeta;
use crate::slowpath::probe::{ProbeSpec, ProbeTarget};
use crate::slowpath::{SlowPathFrontend, SlowPathInterface};
use crate::wire::MacAddr;

/// The slow path's view of a snapshot's interfaces (with the ports' MACs), IPv6 address and
/// gateway included.
pub fn interfaces_of(snapshot: &Snapshot, macs: &[MacAddr]) -> Vec<SlowPathInterface> {
    snapshot
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, ifc)| {
            let v4 = SlowPathInterface::new(
                &ifc.name,
                macs.get(i).copied().unwrap_or(MacAddr([0; 6])),
                ifc.address.addr,
                ifc.address.prefix_len,
                ifc.gateway,
            );
            match ifc.address6 {
                Some(a) => v4.with_ipv6(a.addr, a.prefix_len, ifc.gateway6),
                None => v4,
            }
        })
        .collect()
}

/// The slow path's view of a snapshot's frontends, both families (ARP and ICMP for IPv4,
/// Neighbour Discovery and ICMPv6 for IPv6).
pub fn frontends_of(snapshot: &Snapshot) -> Vec<SlowPathFrontend> {
    snapshot
        .frontends
        .iter()
        .enumerate()
        .map(|(i, fe)| SlowPathFrontend {
            addr: fe.addr,
            iface: fe.interface.map(|x| x.index()),
            any_member_up: snapshot
                .frontend_has_healthy_member(crate::balance::snapshot::FrontendId(i as u32)),
        })
        .collect()
}

/// IPv4 neighbours to keep resolved: members' next hops and interface gateways.
pub fn wanted_neighbours(snapshot: &Snapshot) -> Vec<(Ipv4Addr, usize)> {
    let mut set = BTreeSet::new();
    for m in &snapshot.members {
        if let (Some(nh), Some(ifc)) = (m.next_hop4(), m.interface) {
            set.insert((nh, ifc.index()));
        }
    }
    for (i, ifc) in snapshot.interfaces.iter().enumerate() {
        if let Some(gw) = ifc.gateway {
            set.insert((gw, i));
        }
    }
    set.into_iter().collect()
}

/// IPv6 neighbours to keep resolved: IPv6 members' next hops and interface IPv6 gateways.
pub fn wanted_neighbours6(snapshot: &Snapshot) -> Vec<(Ipv6Addr, usize)> {
    let mut set = BTreeSet::new();
    for m in &snapshot.members {
        if let (Some(IpAddr::V6(nh)), Some(ifc)) = (m.next_hop, m.interface) {
            set.insert((nh, ifc.index()));
        }
    }
    for (i, ifc) in snapshot.interfaces.iter().enumerate() {
        if let Some(gw) = ifc.gateway6 {
            set.insert((gw, i));
        }
    }
    set.into_iter().collect()
}

/// The address probes to `member` leave from: the appliance's address on the interface the
/// data path reaches the member through (the interface it is on-link with, else the gateway's),
/// so the member sees its probes come from the subnet it answers; `None` when the member has no
/// route (the prober's default source is used). An IPv6 member's probes leave from the
/// interface's `address6`.
pub fn probe_source(snapshot: &Snapshot, member: &MemberInfo) -> Option<IpAddr> {
    let ifc = snapshot.interfaces.get(member.interface?.index())?;
    match member.addr {
        IpAddr::V4(_) => Some(IpAddr::V4(ifc.address.addr)),
        IpAddr::V6(_) => ifc.address6.map(|a| IpAddr::V6(a.addr)),
    }
}

/// Prober targets for a snapshot: one per (probe, member address) of the probes' members, each
/// leaving from [`probe_source`].
pub fn probe_targets(snapshot: &Snapshot) -> (Vec<ProbeTarget>, Vec<TargetMeta>) {
    let mut targets = Vec::new();
    let mut meta = Vec::new();
    for p in &snapshot.probes {
        let spec = ProbeSpec {
            protocol: p.protocol,
            port: p.port,
            request_path: p.request_path.clone().unwrap_or_else(|| "/".into()),
            interval: Duration::from_secs(u64::from(p.interval_seconds.max(1))),
            threshold: p.probe_threshold.max(1),
        };
        // One target per address (the same address has the same route in every pool).
        let addrs: BTreeMap<IpAddr, Option<IpAddr>> = p
            .members
            .iter()
            .filter_map(|m| snapshot.member(*m))
            .map(|m| (m.addr, probe_source(snapshot, m)))
            .collect();
        for (addr, source) in addrs {
            let id = targets.len() as u32;
            targets.push(ProbeTarget::new(id, addr, spec.clone()).with_source(source));
            meta.push(TargetMeta {
                probe: p.name.clone(),
                addr,
            });
        }
    }
    (targets, meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Health;
    use crate::config::Config;

    const CONFIG: &str = r#"
[[interfaces]]
name = "dc"
port = "net_af_packet0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"

[[frontends]]
name = "fe"
address = "10.1.0.100"
interface = "dc"

[[backend_pools]]
name = "web"
members = [
  { name = "a", address = "10.1.0.11" },
  { name = "b", address = "10.2.0.12" },
]

[[probes]]
name = "http"
protocol = "http"
port = 80
request_path = "/health"
interval_seconds = 2
probe_threshold = 3

[[probes]]
name = "tcp"
protocol = "tcp"
port = 22

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_pool = "web"
probe = "http"

[[load_balancing_rules]]
name = "ssh"
frontend = "fe"
protocol = "tcp"
frontend_port = 22
backend_pool = "web"
probe = "tcp"
"#;

    fn snapshot() -> Snapshot {
        let c = Config::from_str(CONFIG, "test").expect("valid config");
        Snapshot::compile(&c, &Health::new())
    }

    #[test]
    fn one_target_per_probe_and_member() {
        let (targets, meta) = probe_targets(&snapshot());
        assert_eq!(targets.len(), 4);
        assert_eq!(meta.len(), 4);
        for (i, t) in targets.iter().enumerate() {
            assert_eq!(t.id as usize, i);
            assert_eq!(t.addr, meta[i].addr);
        }
        let http: Vec<_> = targets
            .iter()
            .zip(&meta)
            .filter(|(_, m)| m.probe == "http")
            .collect();
        assert_eq!(http.len(), 2);
        assert_eq!(http[0].0.spec.protocol, crate::config::ProbeProtocol::Http);
        assert_eq!(http[0].0.spec.request_path, "/health");
        assert_eq!(http[0].0.spec.interval, Duration::from_secs(2));
        assert_eq!(http[0].0.spec.threshold, 3);
    }

    #[test]
    fn probes_leave_from_the_interface_toward_the_member() {
        // A first interface without a gateway, then the gateway's: on-link members get their
        // interface's address, an off-link member the gateway interface's (not the first one).
        let two_arms = CONFIG.replacen(
            "[[interfaces]]",
            "[[interfaces]]\nname = \"be\"\nport = \"net_af_packet1\"\naddress = \"10.3.0.2/24\"\n\n[[interfaces]]",
            1,
        )
        .replace(
            "{ name = \"a\", address = \"10.1.0.11\" },",
            "{ name = \"a\", address = \"10.1.0.11\" },\n  { name = \"c\", address = \"10.3.0.13\" },",
        );
        let c = Config::from_str(&two_arms, "test").expect("valid config");
        let s = Snapshot::compile(&c, &Health::new());
        let ip = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        let source_of = |addr| {
            let m = s.members.iter().find(|m| m.addr == addr).expect("member");
            probe_source(&s, m)
        };
        assert_eq!(source_of(ip(10, 3, 0, 13)), Some(ip(10, 3, 0, 2)));
        assert_eq!(source_of(ip(10, 1, 0, 11)), Some(ip(10, 1, 0, 2)));
        assert_eq!(source_of(ip(10, 2, 0, 12)), Some(ip(10, 1, 0, 2)));
        let (targets, _) = probe_targets(&s);
        assert_eq!(targets.len(), 6);
        for t in &targets {
            assert_eq!(t.source, source_of(t.addr), "{t:?}");
        }
    }

    #[test]
    fn wants_next_hops_and_gateway() {
        let w = wanted_neighbours(&snapshot());
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        assert!(w.contains(&(Ipv4Addr::new(10, 1, 0, 11), 0)));
        assert!(w.contains(&(gw, 0)), "gateway wanted: {w:?}");
        // the off-link member is reached through the gateway: no entry for it
        assert!(!w.iter().any(|(ip, _)| *ip == Ipv4Addr::new(10, 2, 0, 12)));
    }

    #[test]
    fn ipv6_interface_frontends_and_neighbours() {
        let v6 = CONFIG
            .replace(
                "gateway = \"10.1.0.1\"",
                "gateway = \"10.1.0.1\"\naddress6 = \"2001:db8:1::2/64\"\ngateway6 = \"fe80::1\"",
            )
            .replace(
                "[[backend_pools]]",
                "[[frontends]]\nname = \"fe6\"\naddress = \"2001:db8:1::100\"\ninterface = \"dc\"\n\n[[backend_pools]]\nname = \"web6\"\nmembers = [{ name = \"a6\", address = \"2001:db8:1::11\" }, { name = \"b6\", address = \"2001:db8:7::12\" }]\n\n[[backend_pools]]",
            );
        let c = Config::from_str(&v6, "test").expect("valid config");
        let s = Snapshot::compile(&c, &Health::new());
        let i = interfaces_of(&s, &[MacAddr([2, 0, 0, 0, 0, 1])]);
        assert_eq!(i[0].addr6, Some("2001:db8:1::2".parse().unwrap()));
        assert_eq!(i[0].prefix6_len, 64);
        assert_eq!(i[0].gateway6, Some("fe80::1".parse().unwrap()));
        let f = frontends_of(&s);
        assert!(f
            .iter()
            .any(|f| f.addr == "2001:db8:1::100".parse::<IpAddr>().unwrap()));
        let w = wanted_neighbours6(&s);
        let a = |t: &str| t.parse::<Ipv6Addr>().unwrap();
        assert_eq!(w, vec![(a("2001:db8:1::11"), 0), (a("fe80::1"), 0)]);
    }

    #[test]
    fn frontends_down_until_probed() {
        let f = frontends_of(&snapshot());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].addr, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 100)));
        assert_eq!(f[0].iface, Some(0));
        assert!(!f[0].any_member_up);
        let i = interfaces_of(&snapshot(), &[MacAddr([2, 0, 0, 0, 0, 1])]);
        assert_eq!(i[0].addr, Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(i[0].gateway, Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(i[0].mac, MacAddr([2, 0, 0, 0, 0, 1]));
    }
}
