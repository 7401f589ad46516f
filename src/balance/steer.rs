//! NIC steering by flow owner (docs/design.md §6.2): the flow rules a port capable of
//! source-only and destination-only RSS is given so that every frame of a flow arrives on its
//! owner's queue, described as plain data from a [`Snapshot`] and the worker count. The DPDK
//! side (`crate::dpdk`) turns each [`SteerRule`] into an `rte_flow` rule.
//!
//! Both rule kinds hash the **client endpoint** with the ownership key ([`RSS_KEY`]) over the
//! workers' queues, so the NIC computes what [`Reta::owner`](super::Reta::owner) computes:
//!
//! - to a frontend address (client → VIP, per protocol): RSS on the source endpoint
//!   (`L3_SRC_ONLY | L4_SRC_ONLY`);
//! - from a member's backend port (a NAT reply, member → client): RSS on the destination
//!   endpoint (`L3_DST_ONLY | L4_DST_ONLY`).
//!
//! Outbound SNAT (§3.5.6) adds a second group, which needs rule priorities:
//!
//! - from a member of an outbound rule (member → internet): RSS on the source endpoint, at the
//!   lower priority (1), under the member's NAT-reply rules;
//! - to a SNAT frontend IP, a worker's sub-block of a block: QUEUE to that worker, one rule per
//!   aligned power-of-two port range the sub-block splits into ([`port_prefixes`]), at priority 0
//!   above the frontend's RSS rule (then at priority 1).
//!
//! Only TCP and UDP are described; everything else (ARP, ICMP, fragments) is spread by the
//! port's own RSS and handed over in software.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::owner::RSS_KEY;
use super::snapshot::{ipv4_of, Snapshot};
use crate::config::Protocol;
use crate::wire::ipv4::protocol;

/// What a matched frame's queue is chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SteerAction {
    /// RSS over the workers' queues on the source endpoint (address, port) only.
    HashSource,
    /// RSS over the workers' queues on the destination endpoint (address, port) only.
    HashDestination,
    /// One queue.
    Queue(u16),
}

/// One flow rule: an untagged IPv4 frame of `proto` matching every field given, and its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SteerRule {
    /// Destination address to match.
    pub dst: Option<Ipv4Addr>,
    /// Source address to match.
    pub src: Option<Ipv4Addr>,
    /// IP protocol (TCP or UDP).
    pub proto: u8,
    /// Source port to match.
    pub src_port: Option<u16>,
    /// Destination port to match: (value, mask).
    pub dst_ports: Option<(u16, u16)>,
    /// Priority among overlapping rules (0 first).
    pub priority: u32,
    /// The action.
    pub action: SteerAction,
}

impl SteerRule {
    /// A rule matching every untagged IPv4 frame of `proto`, at priority 0, doing `action`
    /// (narrowed with struct update syntax).
    pub fn any(proto: u8, action: SteerAction) -> SteerRule {
        SteerRule {
            dst: None,
            src: None,
            proto,
            src_port: None,
            dst_ports: None,
            priority: 0,
            action,
        }
    }
}

impl std::fmt::Display for SteerRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.proto {
            protocol::TCP => "tcp",
            protocol::UDP => "udp",
            _ => "ip",
        };
        write!(f, "ipv4")?;
        if let Some(a) = self.src {
            write!(f, " src {a}")?;
        }
        if let Some(a) = self.dst {
            write!(f, " dst {a}")?;
        }
        write!(f, " {proto}")?;
        if let Some(p) = self.src_port {
            write!(f, " src port {p}")?;
        }
        if let Some((p, m)) = self.dst_ports {
            write!(f, " dst port {p}/{m:#06x}")?;
        }
        if self.priority > 0 {
            write!(f, " priority {}", self.priority)?;
        }
        match self.action {
            SteerAction::HashSource => write!(f, " -> rss source endpoint"),
            SteerAction::HashDestination => write!(f, " -> rss destination endpoint"),
            SteerAction::Queue(q) => write!(f, " -> queue {q}"),
        }
    }
}

/// The rules of a port steered by flow owner, or why it cannot be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteerPlan {
    /// Workers (the RSS actions' queues are `0..workers`).
    pub workers: u16,
    /// The rules, frontends first, each once, in a stable order.
    pub rules: Vec<SteerRule>,
    /// The outbound SNAT group (empty without outbound rules): with it the frontends' rules
    /// take priority 1 ([`SteerPlan::with_outbound`]).
    pub outbound: Vec<SteerRule>,
}

impl SteerPlan {
    /// The RSS key of every hashing rule: the ownership key.
    pub fn key(&self) -> &'static [u8] {
        &RSS_KEY
    }

    /// The queues every hashing rule spreads over: one per worker, in worker order.
    pub fn queues(&self) -> Vec<u16> {
        (0..self.workers).collect()
    }

    /// Every rule with the outbound group: the frontends' rules move to priority 1 so that the
    /// SNAT ports' QUEUE rules (priority 0) win over them.
    pub fn with_outbound(&self) -> Vec<SteerRule> {
        let lowered = self.rules.iter().map(|r| SteerRule {
            priority: if r.action == SteerAction::HashSource {
                1
            } else {
                r.priority
            },
            ..*r
        });
        lowered.chain(self.outbound.iter().copied()).collect()
    }
}

/// The aligned power-of-two ranges that cover ports `first..=last` exactly, as (value, mask)
/// pairs, lowest first (at most 30 for any range).
pub fn port_prefixes(first: u16, last: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(first), u32::from(last));
    while lo <= hi {
        // The largest aligned block starting at `lo` that stays within `hi`.
        let mut size = if lo == 0 {
            1 << 16
        } else {
            1u32 << lo.trailing_zeros()
        };
        while lo + size - 1 > hi {
            size /= 2;
        }
        out.push((lo as u16, !(size - 1) as u16));
        lo += size;
    }
    out
}

/// Why a port is not steered by flow owner in the NIC (shown in `vipmux status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteerRefusal {
    /// One worker: nothing to steer.
    OneWorker,
    /// The NIC fills its redirection table from the rule's queue list in turn; only a
    /// power-of-two worker count gives every hash the queue the ownership table gives it.
    NotPowerOfTwo(usize),
    /// No frontend or NAT reply to steer.
    NothingToSteer,
}

impl std::fmt::Display for SteerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SteerRefusal::OneWorker => write!(f, "one worker"),
            SteerRefusal::NotPowerOfTwo(n) => write!(
                f,
                "{n} workers is not a power of two: the NIC's table would not match the ownership rule"
            ),
            SteerRefusal::NothingToSteer => write!(f, "no frontend or NAT reply to steer"),
        }
    }
}

/// The IP protocols (TCP, UDP) a rule of `protocol` (HA ports: both) carries.
fn protocols(p: Protocol) -> &'static [u8] {
    match p {
        Protocol::Tcp => &[protocol::TCP],
        Protocol::Udp => &[protocol::UDP],
        Protocol::All => &[protocol::TCP, protocol::UDP],
    }
}

/// The rules that steer every TCP and UDP frame of `snapshot`'s frontends and NAT replies to its
/// owner among `workers` workers (docs/design.md §6.2).
pub fn steer_plan(snapshot: &Snapshot, workers: usize) -> Result<SteerPlan, SteerRefusal> {
    if workers <= 1 {
        return Err(SteerRefusal::OneWorker);
    }
    let n = u16::try_from(workers)
        .ok()
        .filter(|n| n.is_power_of_two())
        .ok_or(SteerRefusal::NotPowerOfTwo(workers))?;
    let mut to_frontends = BTreeSet::new();
    let mut replies = BTreeSet::new();
    for rule in &snapshot.rules {
        // The patterns are IPv4: IPv6 flows take the software hand-off (docs/design.md §6.2).
        let Some(vip) = ipv4_of(rule.frontend_addr) else {
            continue;
        };
        for &proto in protocols(rule.protocol) {
            to_frontends.insert(SteerRule {
                dst: Some(vip),
                ..SteerRule::any(proto, SteerAction::HashSource)
            });
            if rule.floating_ip {
                // The member answers the client directly (DSR): no reply reaches the MUX.
                continue;
            }
            let members = rule.members.iter().filter_map(|m| snapshot.member(*m));
            for addr in members.filter_map(|m| ipv4_of(m.addr)) {
                replies.insert(SteerRule {
                    src: Some(addr),
                    src_port: (!rule.ha_ports).then_some(rule.backend_port),
                    ..SteerRule::any(proto, SteerAction::HashDestination)
                });
            }
        }
    }
    if to_frontends.is_empty() {
        return Err(SteerRefusal::NothingToSteer);
    }
    let rules = to_frontends.into_iter().chain(replies).collect();
    Ok(SteerPlan {
        workers: n,
        rules,
        outbound: outbound_rules(snapshot, n),
    })
}

/// The outbound SNAT group of `snapshot` with `workers` workers (see the module documentation).
fn outbound_rules(snapshot: &Snapshot, workers: u16) -> Vec<SteerRule> {
    let mut from_members = BTreeSet::new();
    let mut snat_ports = BTreeSet::new();
    for ob in &snapshot.outbound {
        for &proto in protocols(ob.protocol) {
            for b in &ob.blocks {
                if let Some(addr) = snapshot.member(b.member).and_then(|m| ipv4_of(m.addr)) {
                    from_members.insert(SteerRule {
                        src: Some(addr),
                        priority: 1,
                        ..SteerRule::any(proto, SteerAction::HashSource)
                    });
                }
                // Replies to IPv6 frontends are not steered by port (the IPv6 lane's own rule).
                let Some(fe) = ipv4_of(b.frontend_addr) else {
                    continue;
                };
                for w in 0..workers {
                    let (first, count) = b.worker_ports(w, workers);
                    if count == 0 {
                        continue;
                    }
                    let last = first.saturating_add(count - 1);
                    for ports in port_prefixes(first, last) {
                        snat_ports.insert(SteerRule {
                            dst: Some(fe),
                            dst_ports: Some(ports),
                            ..SteerRule::any(proto, SteerAction::Queue(w))
                        });
                    }
                }
            }
        }
    }
    snat_ports.into_iter().chain(from_members).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Health;
    use crate::config::Config;

    fn snapshot(text: &str) -> Snapshot {
        let cfg = Config::from_str(text, "test.toml").expect("config");
        Snapshot::compile(&cfg, &Health::all_up(&cfg))
    }

    fn example() -> Snapshot {
        let path = format!("{}/examples/spec-example.toml", env!("CARGO_MANIFEST_DIR"));
        let cfg = Config::load(path).expect("config");
        Snapshot::compile(&cfg, &Health::all_up(&cfg))
    }

    fn ip(s: &str) -> Option<Ipv4Addr> {
        Some(s.parse().expect("address"))
    }

    #[test]
    fn ipv6_rules_are_not_steered() {
        let dual = include_str!("../../tests/fixtures/dual_stack.toml");
        let plan = steer_plan(&snapshot(dual), 2).expect("plan");
        // Only the IPv4 VIP and the IPv4 members' replies are steered.
        assert!(plan
            .rules
            .iter()
            .all(|r| r.dst.is_none() || r.dst == ip("10.1.0.100")));
        let sources: BTreeSet<_> = plan.rules.iter().filter_map(|r| r.src).collect();
        assert_eq!(
            sources,
            [ip("10.1.0.11"), ip("10.1.0.12")]
                .into_iter()
                .flatten()
                .collect()
        );
        assert!(plan.rules.iter().any(|r| r.dst == ip("10.1.0.100")));
    }

    #[test]
    fn frontends_hash_the_source_and_nat_replies_the_destination() {
        let plan = steer_plan(&example(), 2).expect("plan");
        assert_eq!(plan.workers, 2);
        assert_eq!(plan.queues(), vec![0, 1]);
        assert_eq!(plan.key(), &RSS_KEY);
        let to_vip = SteerRule {
            dst: ip("10.1.0.100"),
            ..SteerRule::any(protocol::TCP, SteerAction::HashSource)
        };
        assert!(plan.rules.contains(&to_vip), "{:#?}", plan.rules);
        for member in ["10.1.0.11", "10.1.0.12"] {
            let reply = SteerRule {
                src: ip(member),
                src_port: Some(8080),
                ..SteerRule::any(protocol::TCP, SteerAction::HashDestination)
            };
            assert!(plan.rules.contains(&reply), "{member}: {:#?}", plan.rules);
        }
        // Frontends come first, and no rule is described twice.
        let first_reply = plan
            .rules
            .iter()
            .position(|r| r.action == SteerAction::HashDestination)
            .expect("a reply rule");
        assert!(plan.rules[..first_reply]
            .iter()
            .all(|r| r.action == SteerAction::HashSource));
        let unique: BTreeSet<_> = plan.rules.iter().collect();
        assert_eq!(unique.len(), plan.rules.len());
        assert_eq!(
            to_vip.to_string(),
            "ipv4 dst 10.1.0.100 tcp -> rss source endpoint"
        );
    }

    /// `all` carries TCP and UDP; floating IP has no reply rule; HA ports match any source port.
    #[test]
    fn protocols_floating_ip_and_ha_ports() {
        let text = |rule: &str| {
            format!(
                "[appliance]\nname = \"t\"\n\n[[interfaces]]\nname = \"lan\"\nport = \"net_ring0\"\n\
                 address = \"10.1.0.2/24\"\n\n[[frontends]]\nname = \"vip\"\naddress = \"10.1.0.100\"\n\
                 interface = \"lan\"\n\n[[backend_pools]]\nname = \"p\"\n\
                 members = [{{ name = \"a\", address = \"10.1.0.11\" }}]\n\n\
                 [[load_balancing_rules]]\nname = \"r\"\nfrontend = \"vip\"\nbackend_pool = \"p\"\n{rule}"
            )
        };
        let dsr = snapshot(&text(
            "protocol = \"all\"\nfrontend_port = 53\nbackend_port = 53\nenable_floating_ip = true\n",
        ));
        let plan = steer_plan(&dsr, 4).expect("plan");
        let protos: Vec<_> = plan.rules.iter().map(|r| (r.proto, r.action)).collect();
        assert_eq!(
            protos,
            vec![
                (protocol::TCP, SteerAction::HashSource),
                (protocol::UDP, SteerAction::HashSource)
            ]
        );
        let ha = snapshot(&text(
            "protocol = \"all\"\nfrontend_port = 0\nbackend_port = 0\n",
        ));
        let plan = steer_plan(&ha, 2).expect("plan");
        assert!(plan
            .rules
            .iter()
            .filter(|r| r.action == SteerAction::HashDestination)
            .all(|r| r.src_port.is_none() && r.src == ip("10.1.0.11")));
        assert_eq!(plan.rules.len(), 4);
    }

    /// Each worker's SNAT sub-block goes to its queue (the port alone names the owner, as
    /// `snat_port_owner` says); members' outbound connections hash their source, under the
    /// NAT-reply rules; with the group, the frontends' rules drop to priority 1.
    #[test]
    fn snat_sub_blocks_go_to_their_workers_queue() {
        let snap = example();
        let plan = steer_plan(&snap, 2).expect("plan");
        let ob = &snap.outbound[0];
        for b in &ob.blocks {
            for port in [b.first_port, b.last_port(), b.first_port + b.count / 2] {
                let owner = crate::balance::snapshot::snat_port_owner(b, port, 2).expect("owner");
                let hits: Vec<_> = plan
                    .outbound
                    .iter()
                    .filter(|r| r.dst == ipv4_of(b.frontend_addr) && r.proto == protocol::TCP)
                    .filter(|r| r.dst_ports.is_some_and(|(v, m)| port & m == v))
                    .collect();
                assert_eq!(hits.len(), 1, "port {port}: {hits:?}");
                assert_eq!(hits[0].action, SteerAction::Queue(owner), "port {port}");
                assert_eq!(hits[0].priority, 0);
            }
        }
        let member = ipv4_of(snap.member(ob.blocks[0].member).expect("member").addr).unwrap();
        assert!(plan.outbound.contains(&SteerRule {
            src: Some(member),
            priority: 1,
            ..SteerRule::any(protocol::UDP, SteerAction::HashSource)
        }));
        let all = plan.with_outbound();
        assert_eq!(all.len(), plan.rules.len() + plan.outbound.len());
        assert!(all
            .iter()
            .filter(|r| r.dst.is_some() && r.action == SteerAction::HashSource)
            .all(|r| r.priority == 1));
        assert!(all
            .iter()
            .filter(|r| r.action == SteerAction::HashDestination)
            .all(|r| r.priority == 0));
    }

    #[test]
    fn port_ranges_split_into_exact_aligned_prefixes() {
        assert_eq!(port_prefixes(1024, 1535), vec![(1024, 0xfe00)]);
        assert_eq!(port_prefixes(0, 65535), vec![(0, 0)]);
        assert_eq!(port_prefixes(7, 7), vec![(7, 0xffff)]);
        assert_eq!(
            port_prefixes(1023, 1028),
            vec![(1023, 0xffff), (1024, 0xfffc), (1028, 0xffff)]
        );
        // Exact cover, for ranges of every shape.
        for (first, last) in [
            (1, 65534),
            (1024, 1535 + 3),
            (40_000, 40_999),
            (3, 3),
            (65535, 65535),
        ] {
            let p = port_prefixes(first, last);
            assert!(p.len() <= 30, "{first}..={last}: {}", p.len());
            for port in first.saturating_sub(2)..=last.saturating_add(2) {
                let n = p.iter().filter(|(v, m)| port & m == *v).count();
                let want = usize::from((first..=last).contains(&port));
                assert_eq!(n, want, "port {port} in {first}..={last}");
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        let snap = example();
        assert_eq!(steer_plan(&snap, 1), Err(SteerRefusal::OneWorker));
        assert_eq!(steer_plan(&snap, 3), Err(SteerRefusal::NotPowerOfTwo(3)));
        assert!(SteerRefusal::NotPowerOfTwo(3)
            .to_string()
            .contains("not a power of two"));
        assert!(steer_plan(&snap, 8).is_ok());
    }
}
