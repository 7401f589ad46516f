//! Azure's load-balancer metrics with Azure's dimensions (frontend IP and port, backend IP and
//! port, protocol, direction), derived at scrape time from the snapshot and the aggregated
//! counters — nothing is added to the packet path.
//!
//! Data path availability (`VipAvailability`) is what the slow path's synthetic rounds judged
//! (see [`crate::runtime::synthetic`]): a crafted new connection to each rule's frontend, run by
//! every worker thread through its pipeline code against the live snapshot, neighbour map and
//! ports; available when every worker would have forwarded it to a member (the rule matches, a
//! member is eligible, its next hop's MAC is known, the frame fits the egress MTU) and the
//! appliance is forwarding. The member's own answer is what the health probe status
//! (`DipAvailability`) measures.

use crate::balance::{Rule, RuleKind, Snapshot};
use crate::control::metrics::{LbBackendMetrics, LbFrontendMetrics};
use crate::dataplane::WorkerCounters;
use crate::runtime::synthetic::VipAvailability;

/// The frontend port label of a rule: the port, `start-end` for an inbound NAT range.
fn frontend_port(r: &Rule) -> String {
    if r.kind == RuleKind::InboundNatRange && r.frontend_port_end != r.frontend_port {
        format!("{}-{}", r.frontend_port, r.frontend_port_end)
    } else {
        r.frontend_port.to_string()
    }
}

/// Per rule: traffic by direction and data path availability (the latest synthetic round's).
pub fn lb_frontends(
    snap: &Snapshot,
    c: &WorkerCounters,
    forwarding: bool,
    available: &VipAvailability,
) -> Vec<LbFrontendMetrics> {
    snap.rules
        .iter()
        .map(|r| {
            let rc = c.rules.get(r.id.index()).copied().unwrap_or_default();
            LbFrontendMetrics {
                frontend_ip: r.frontend_addr.to_string(),
                frontend_port: frontend_port(r),
                protocol: r.protocol.as_str().to_string(),
                packets_in: rc.packets,
                packets_out: rc.reply_packets,
                bytes_in: rc.bytes,
                bytes_out: rc.reply_bytes,
                syns_in: rc.syns,
                vip_available: forwarding && available.get(&r.name),
            }
        })
        .collect()
}

/// Per frontend IP of an outbound rule (in frontend order): TCP SYNs members sent out with it.
pub fn snat_syns(snap: &Snapshot, c: &WorkerCounters) -> Vec<(String, u64)> {
    snap.frontends
        .iter()
        .enumerate()
        .filter(|(_, f)| snap.outbound.iter().any(|o| o.frontends.contains(&f.addr)))
        .map(|(i, f)| (f.addr.to_string(), c.snat_syns.get(i).copied().unwrap_or(0)))
        .collect()
}

/// Per rule and member: whether the member takes the rule's new flows (health probe status).
pub fn lb_backends(snap: &Snapshot) -> Vec<LbBackendMetrics> {
    let mut out = Vec::new();
    for r in &snap.rules {
        for (pos, id) in r.members.iter().enumerate() {
            let Some(m) = snap.member(*id) else { continue };
            out.push(LbBackendMetrics {
                frontend_ip: r.frontend_addr.to_string(),
                frontend_port: frontend_port(r),
                backend_ip: m.addr.to_string(),
                backend_port: r.backend_port.to_string(),
                protocol: r.protocol.as_str().to_string(),
                available: r.eligible.get(pos).copied().unwrap_or(false),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    use crate::balance::{Health, ProbeState};
    use crate::config::Config;
    use crate::dataplane::synthetic::{synthetic_frame, SYNTHETIC_FRAME_MAX};
    use crate::dataplane::{EgressPort, NeighbourMap, Pipeline, PipelineConfig, Verdict, View};
    use crate::slowpath::{NeighbourTable, NeighbourTimers, SlowPathInterface};
    use crate::wire::MacAddr;
    use crate::wire::VecBuf;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);

    /// A TCP rule over a probed pool, a UDP rule over an unprobed one.
    const CONFIG: &str = r#"
[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"

[[frontends]]
name = "fe"
address = "10.1.0.100"
interface = "dc"

[[backend_pools]]
name = "web"
members = [{ name = "vm1", address = "10.1.0.11" }, { name = "vm2", address = "10.1.0.12" }]

[[backend_pools]]
name = "dns"
members = [{ name = "ns1", address = "10.1.0.21" }]

[[probes]]
name = "tcp-80"
protocol = "tcp"
port = 80

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "web"
probe = "tcp-80"

[[load_balancing_rules]]
name = "dns"
frontend = "fe"
protocol = "udp"
frontend_port = 53
backend_port = 53
backend_pool = "dns"
"#;

    /// The neighbour map with `known` hosts' MACs learned.
    fn neighbours(known: &[u8]) -> NeighbourMap {
        let mut t = NeighbourTable::new(
            vec![SlowPathInterface::new(
                "dc",
                MAC,
                Ipv4Addr::new(10, 1, 0, 2),
                24,
                Some(Ipv4Addr::new(10, 1, 0, 1)),
            )],
            NeighbourTimers::default(),
        );
        for last in known {
            t.learn(
                0,
                Ipv4Addr::new(10, 1, 0, *last),
                MacAddr([2, 0, 0, 0, 0, *last]),
                0,
                true,
            );
        }
        t.snapshot()
    }

    /// What a synthetic round over `view` would publish: each rule's synthetic frame run through
    /// a pipeline as a worker runs it.
    fn synthetic_round(view: &View<'_>) -> VipAvailability {
        let mut pipeline = Pipeline::new(&PipelineConfig {
            flow_capacity: 64,
            recent_capacity: 16,
            flow_capacity6: None,
        });
        let mut judged = HashMap::new();
        for r in &view.snapshot.rules {
            let mut frame = [0u8; SYNTHETIC_FRAME_MAX];
            let (port, len) = synthetic_frame(view, r, 1, &mut frame).expect("frame");
            let mut bufs = [VecBuf::with_room(128, &frame[..len], 0)];
            let mut verdict = [Verdict::Drop(crate::dataplane::DropReason::NoRule)];
            pipeline.process(view, port, &mut bufs, &mut verdict, 0);
            judged.insert(
                r.name.clone(),
                matches!(verdict[0], Verdict::Forward { .. }),
            );
        }
        let available = VipAvailability::default();
        available.publish(judged);
        available
    }

    /// (vip_available per rule, available per rule member) for `health` and `known` MACs.
    fn availability(health: &Health, known: &[u8], forwarding: bool) -> (Vec<bool>, Vec<bool>) {
        let config = Config::from_str(CONFIG, "test.toml").expect("config");
        let snapshot = Snapshot::compile(&config, health);
        let neighbours = neighbours(known);
        let ports = [EgressPort {
            mac: MAC,
            addr: Ipv4Addr::new(10, 1, 0, 2),
            mtu: 1500,
        }];
        let view = View {
            snapshot: &snapshot,
            neighbours: &neighbours,
            ports: &ports,
        };
        let c = WorkerCounters::default();
        let fe = lb_frontends(&snapshot, &c, forwarding, &synthetic_round(&view));
        let be = lb_backends(&snapshot);
        assert_eq!(
            (fe[0].protocol.as_str(), fe[0].frontend_port.as_str()),
            ("tcp", "80")
        );
        assert_eq!(
            (fe[1].protocol.as_str(), fe[1].frontend_port.as_str()),
            ("udp", "53")
        );
        assert_eq!(be[0].backend_ip, "10.1.0.11");
        assert_eq!(be[0].backend_port, "8080");
        (
            fe.iter().map(|f| f.vip_available).collect(),
            be.iter().map(|b| b.available).collect(),
        )
    }

    #[test]
    fn synthetic_connection_reaches_a_member_of_each_rule() {
        let config = Config::from_str(CONFIG, "test.toml").expect("config");
        let all = [11, 12, 21];
        let up = Health::all_up(&config);
        assert_eq!(
            availability(&up, &all, true),
            (vec![true, true], vec![true, true, true])
        );
        // Not forwarding: nothing is available.
        assert_eq!(availability(&up, &all, false).0, vec![false, false]);
    }

    #[test]
    fn probes_down_and_unknown_next_hops_make_the_vip_unavailable() {
        let all = [11, 12, 21];
        let mut down = Health::new();
        down.set("tcp-80", Ipv4Addr::new(10, 1, 0, 11), ProbeState::Down);
        down.set("tcp-80", Ipv4Addr::new(10, 1, 0, 12), ProbeState::Up);
        assert_eq!(
            availability(&down, &all, true),
            (vec![true, true], vec![false, true, true])
        );
        down.set("tcp-80", Ipv4Addr::new(10, 1, 0, 12), ProbeState::Down);
        assert_eq!(
            availability(&down, &all, true),
            (vec![false, true], vec![false, false, true])
        );
        // Members up but no MAC known for the DNS member: the frame could not leave.
        let config = Config::from_str(CONFIG, "test.toml").expect("config");
        assert_eq!(
            availability(&Health::all_up(&config), &[11, 12], true).0,
            vec![true, false]
        );
    }
}
