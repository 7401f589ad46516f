//! The appliance's control surfaces: [`ControlHandler`](crate::control::ControlHandler) (status,
//! flows, diagnose, reload, counters) and [`MetricsSource`] over the hub the threads share.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::balance::{RuleKind, Snapshot};
use crate::config::AdminState;
use crate::control::metrics::{
    ApplianceMetrics, MemberMetrics, PortMetrics, RuleMetrics, SnatMetrics, WorkerMetrics,
};
use crate::control::report::{
    FlowRow, FlowsReport, FrontendStatus, MemberStatus, NatMapping, NeighbourStatus, PoolStatus,
    PortStatus, RuleStatus, StatusReport,
};
use crate::control::{Encoder, FlowFilter, MetricsSource};
use crate::dataplane::icmp_error::IcmpErrorOutcome;
use crate::dataplane::{DropReason, SnatCounters, WorkerCounters};
use crate::runtime::{FlowListing, FlowRequest, ReloadRequest, Shared, MAX_FLOWS_PER_REQUEST};
use crate::slowpath::probe::{HealthState, TargetStatus};

/// How long a control request waits for a worker or the slow path.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Default and maximum number of flows listed.
const DEFAULT_FLOW_LIMIT: usize = 1000;

/// The control handler and metrics source of a running appliance.
#[derive(Debug, Clone)]
pub struct ApplianceControl {
    shared: Arc<Shared>,
    captures: Arc<super::capture::Captures>,
    baseline: Arc<super::diagnose::Baseline>,
}

impl ApplianceControl {
    /// A handler over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        ApplianceControl {
            shared,
            captures: Arc::default(),
            baseline: Arc::default(),
        }
    }

    fn probe_statuses(&self) -> Vec<(String, TargetStatus)> {
        let Some(p) = self.shared.prober.get() else {
            return Vec::new();
        };
        let meta = self.shared.targets.load();
        p.snapshot()
            .into_iter()
            .filter_map(|s| meta.get(s.id as usize).map(|m| (m.probe.clone(), s)))
            .collect()
    }

    /// The full status report (typed).
    pub fn status_report(&self) -> StatusReport {
        let snap = self.shared.snapshot.load();
        let (counters, _, _) = self.shared.aggregate();
        let probes = self.probe_statuses();
        let mut by_addr: HashMap<std::net::IpAddr, Vec<&(String, TargetStatus)>> = HashMap::new();
        for p in &probes {
            by_addr.entry(p.1.addr).or_default().push(p);
        }
        let frontends = snap
            .frontends
            .iter()
            .map(|fe| FrontendStatus {
                name: fe.name.clone(),
                address: fe.addr.to_string(),
                announced: None,
                rules: fe
                    .rules
                    .iter()
                    .filter_map(|r| snap.rule(*r))
                    .map(|r| RuleStatus {
                        name: r.name.clone(),
                        kind: match r.kind {
                            RuleKind::LoadBalancing => "lb",
                            _ => "inbound_nat",
                        }
                        .into(),
                        protocol: format!("{:?}", r.protocol).to_lowercase(),
                        frontend_port: r.frontend_port,
                        backend_port: r.backend_port,
                        pool: snap
                            .pools
                            .get(r.pool.index())
                            .map(|p| p.name.clone())
                            .unwrap_or_default(),
                        healthy_members: r.eligible.iter().filter(|e| **e).count() as u32,
                        total_members: r.members.len() as u32,
                        active_flows: counters
                            .rules
                            .get(r.id.index())
                            .map(|c| c.active_flows())
                            .unwrap_or(0),
                    })
                    .collect(),
            })
            .collect();
        let now = SystemTime::now();
        let pools = snap
            .pools
            .iter()
            .map(|pool| PoolStatus {
                name: pool.name.clone(),
                members: pool
                    .members
                    .iter()
                    .filter_map(|m| snap.member(*m).map(|info| (*m, info)))
                    .map(|(id, m)| {
                        let results = by_addr.get(&m.addr).cloned().unwrap_or_default();
                        let latest = results.iter().max_by_key(|p| p.1.last_probe);
                        MemberStatus {
                            name: m.name.clone(),
                            address: m.addr.to_string(),
                            healthy: member_healthy(&snap, id)
                                && !awaiting_first_probe(&snap, &results),
                            admin_state: match m.admin_state {
                                AdminState::Down => "down",
                                AdminState::Up => "up",
                                _ => "none",
                            }
                            .into(),
                            last_probe: latest.map(|p| {
                                let reason =
                                    p.1.last_reason
                                        .as_ref()
                                        .map(|r| r.to_string())
                                        .unwrap_or_else(|| "no result yet".into());
                                format!("{} ({reason}, probe {})", p.1.state, p.0)
                            }),
                            last_probe_age_secs: latest.and_then(|p| {
                                p.1.last_probe
                                    .and_then(|t| now.duration_since(t).ok())
                                    .map(|d| d.as_secs_f64())
                            }),
                            active_flows: counters
                                .members
                                .get(id.index())
                                .map(|c| c.active_flows())
                                .unwrap_or(0),
                            snat_ports_allocated: snat_allocated(&snap, id),
                            snat_ports_used: counters
                                .snat
                                .get(id.index())
                                .map_or(0, |c| c.used_ports()),
                        }
                    })
                    .collect(),
            })
            .collect();
        StatusReport {
            forwarding: self.shared.forwarding.load(Ordering::SeqCst),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.shared.started.elapsed().as_secs(),
            config_path: self
                .shared
                .config_path
                .lock()
                .ok()
                .map(|p| p.display().to_string()),
            config_generation: self.shared.generation.load(Ordering::SeqCst),
            workers: self.shared.workers.len() as u32,
            frontends,
            pools,
            nat_mappings: Self::nat_mappings(&self.shared.snapshot.load()),
            bgp: None,
            draining: false,
            ports: self.port_statuses(),
        }
    }

    /// Inbound NAT port mappings: one entry per (rule, frontend port, member).
    fn nat_mappings(snap: &Snapshot) -> Vec<NatMapping> {
        let mut out = Vec::new();
        for r in &snap.rules {
            if r.kind == RuleKind::LoadBalancing {
                continue;
            }
            for m in &r.members {
                let Some(info) = snap.member(*m) else {
                    continue;
                };
                if let Some(fp) = r.frontend_port_of(*m) {
                    out.push(NatMapping {
                        rule: r.name.clone(),
                        frontend: SocketAddr::new(r.frontend_addr, fp).to_string(),
                        member: info.name.clone(),
                        backend: SocketAddr::new(info.addr, r.backend_port).to_string(),
                    });
                }
            }
        }
        out
    }

    /// Aggregated counters as JSON.
    pub fn counters_value(&self) -> Value {
        let snap = self.shared.snapshot.load();
        let (c, exc_drops, tx_full) = self.shared.aggregate();
        let drops: serde_json::Map<String, Value> = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), json!(c.drop_count(*r))))
            .collect();
        let slow = self
            .shared
            .slow_counters
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let slow_drops: serde_json::Map<String, Value> = crate::slowpath::SlowPathDrop::ALL
            .iter()
            .map(|r| (r.name().to_string(), json!(slow.dropped(*r))))
            .collect();
        let workers: Vec<Value> = self
            .worker_runtime()
            .into_iter()
            .zip(&self.shared.workers)
            .enumerate()
            .map(|(i, (w, slot))| {
                let rx = slot.counters.lock().map(|c| c.rx).unwrap_or(0);
                let per = |n: u64, d: u64| if d > 0 { n as f64 / d as f64 } else { 0.0 };
                json!({
                    "worker": i,
                    "received": rx,
                    "polls": w.polls,
                    "busy_polls": w.busy_polls,
                    "busy_ns": w.busy_ns,
                    "max_busy_iteration_ns": w.max_busy_ns,
                    "busy_ns_per_packet": per(w.busy_ns, rx),
                    "packets_per_busy_poll": per(rx, w.busy_polls),
                    "handoff_sent": w.handoff_sent,
                    "handoff_received": w.handoff_received,
                    "handoff_full": w.handoff_full,
                    "tx_blocked": w.tx_blocked,
                    "tx_blocked_ns": w.tx_blocked_ns,
                })
            })
            .collect();
        json!({
            "received": c.rx,
            "transmitted": c.tx,
            "workers": workers,
            "drops": drops,
            "tx_full_originated": tx_full,
            "exception_queue_full": exc_drops,
            "mbufs_in_use": self.shared.mbufs_in_use.load(Ordering::Relaxed),
            "untracked": c.untracked,
            "expired_flows": c.expired_flows,
            "resets_sent": c.resets_sent,
            "rules": rule_metrics(&snap, &c),
            "members": member_metrics(&snap, &c),
            "snat": snat_rows(&snap, &c).iter().map(|(s, sc)| json!({
                "rule": s.rule, "pool": s.pool, "member": s.member,
                "allocated_ports": s.allocated_ports, "used_ports": s.used_ports,
                "pending": s.pending, "successful": s.successful, "failed": s.failed,
                "exhausted": sc.exhausted,
            })).collect::<Vec<_>>(),
            "exceptions": crate::dataplane::Exception::ALL.iter().zip(c.exceptions.iter())
                .map(|(e, v)| (e.name().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "ports": self.port_counters(),
            "icmp_errors": IcmpErrorOutcome::ALL.iter()
                .zip(c.icmp_errors.iter())
                .map(|(e, v)| (e.name().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "slow_path": {
                "handled": slow.handled,
                "arp_replies": slow.arp_replies,
                "nd_adverts": slow.nd_adverts,
                "to_kernel": slow.to_kernel,
                "echo_replies": slow.echo_replies,
                "unreachable_sent": slow.unreachable_sent,
                "frag_needed_sent": slow.frag_needed_sent,
                "time_exceeded_sent": slow.time_exceeded_sent,
                "icmp_errors_to_flows": slow.icmp_errors_to_flows,
                "neighbours_learned": slow.neighbours_learned,
                "tx_dropped": self.shared.slow_tx_drops.load(Ordering::Relaxed),
                "drops": slow_drops,
            },
        })
    }

    /// The physical ports' last published counters with their interface names.
    fn port_metrics(&self) -> Vec<PortMetrics> {
        let stats = self
            .shared
            .port_stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let links = self.shared.link_counts();
        self.shared
            .port_names
            .iter()
            .zip(stats)
            .enumerate()
            .map(|(i, (name, s))| {
                let link = links.get(i).copied().unwrap_or_default();
                PortMetrics {
                    interface: name.clone(),
                    rx_missed: s.imissed,
                    rx_nombuf: s.rx_nombuf,
                    rx_errors: s.ierrors,
                    tx_errors: s.oerrors,
                    link_downs: link.downs,
                    link_ups: link.ups,
                }
            })
            .collect()
    }

    /// The `ports` part of `counters`: per interface, the device's drop and error counters under
    /// their DPDK names.
    fn port_counters(&self) -> Vec<Value> {
        self.port_metrics()
            .into_iter()
            .map(|p| {
                json!({
                    "interface": p.interface,
                    "imissed": p.rx_missed,
                    "rx_nombuf": p.rx_nombuf,
                    "ierrors": p.rx_errors,
                    "oerrors": p.tx_errors,
                    "link_downs": p.link_downs,
                    "link_ups": p.link_ups,
                })
            })
            .collect()
    }

    /// The metrics view of the aggregated counters.
    pub fn metrics(&self) -> ApplianceMetrics {
        let snap = self.shared.snapshot.load();
        let (c, exc_drops, tx_full) = self.shared.aggregate();
        let mut drops: Vec<(String, u64)> = DropReason::ALL
            .iter()
            .map(|r| {
                let extra = if *r == DropReason::TxFull { tx_full } else { 0 };
                (r.name().to_string(), c.drop_count(*r) + extra)
            })
            .collect();
        drops.push(("slow_path_queue_full".into(), exc_drops));
        let handoff_full = self
            .shared
            .workers
            .iter()
            .map(|w| w.runtime.handoffs().2)
            .sum();
        drops.push(("handoff_full".into(), handoff_full));
        let forwarding = self.shared.forwarding.load(Ordering::SeqCst);
        ApplianceMetrics {
            lb_frontends: super::azure_metrics::lb_frontends(
                &snap,
                &c,
                forwarding,
                &self.shared.vip_availability,
            ),
            lb_backends: super::azure_metrics::lb_backends(&snap),
            snat_syns: super::azure_metrics::snat_syns(&snap, &c),
            forwarding,
            config_generation: self.shared.generation.load(Ordering::SeqCst),
            received: c.rx,
            transmitted: c.tx,
            drops,
            icmp_errors: IcmpErrorOutcome::ALL
                .iter()
                .map(|o| (o.name().to_string(), c.icmp_errors[o.index()]))
                .collect(),
            rules: rule_metrics(&snap, &c),
            members: member_metrics(&snap, &c),
            snat: snat_rows(&snap, &c).into_iter().map(|(m, _)| m).collect(),
            workers: self.worker_runtime(),
            mbufs_in_use: self.shared.mbufs_in_use.load(Ordering::Relaxed),
            ports: self.port_metrics(),
        }
    }

    /// Every interface's port: queues and steering mode.
    fn port_statuses(&self) -> Vec<PortStatus> {
        let queues = self
            .shared
            .port_queues
            .get()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let links = self.shared.link_counts();
        let config = self.shared.config.load();
        let taps = super::tap_names(&config);
        let missing = super::kernel::missing_taps(&taps);
        let neighbours = self.shared.neighbours.load();
        self.shared
            .port_names
            .iter()
            .zip(queues)
            .enumerate()
            .map(|(i, (name, q))| PortStatus {
                interface: name.clone(),
                port: q.port.clone(),
                rx_queues: q.rx_queues,
                steering: q.steering.name().into(),
                steering_note: q.note.clone(),
                link: match links.get(i) {
                    Some(l) if l.up => "up".into(),
                    Some(_) => "down".into(),
                    None => String::new(),
                },
                link_downs: links.get(i).map_or(0, |l| l.downs),
                exception_tap_missing: taps.get(i).is_some_and(|t| missing.contains(t)),
                address: config
                    .interfaces
                    .get(i)
                    .map_or(String::new(), |c| c.address.to_string()),
                address6: config
                    .interfaces
                    .get(i)
                    .and_then(|c| c.address6)
                    .map_or(String::new(), |a| a.to_string()),
                neighbours6: neighbours
                    .iter6()
                    .filter(|n| n.2 == i)
                    .map(|(ip, mac, _)| NeighbourStatus {
                        address: ip.to_string(),
                        mac: super::kernel::mac_text(mac),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Every worker's published poll-loop runtime.
    fn worker_runtime(&self) -> Vec<WorkerMetrics> {
        self.shared
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (polls, busy_polls, busy_ns) = w.runtime.read();
                let (handoff_sent, handoff_received, handoff_full) = w.runtime.handoffs();
                let (tx_blocked, tx_blocked_ns) = w.runtime.tx_blocked();
                WorkerMetrics {
                    worker: i.to_string(),
                    polls,
                    busy_polls,
                    busy_ns,
                    max_busy_ns: w.runtime.max_busy_ns.load(Ordering::Relaxed),
                    handoff_sent,
                    handoff_received,
                    handoff_full,
                    tx_blocked,
                    tx_blocked_ns,
                }
            })
            .collect()
    }
}

/// While the first probe round after a start settles, a member counts as up for rehashing
/// (docs/design.md §3.8) but is not reported healthy until one of its probes has answered.
fn awaiting_first_probe(snap: &Snapshot, results: &[&(String, TargetStatus)]) -> bool {
    snap.probes_settling
        && !results.is_empty()
        && !results.iter().any(|p| p.1.state == HealthState::Up)
}

/// A member is healthy when it is eligible in at least one rule that uses it (or, unused, when
/// its admin state is not down).
fn member_healthy(snap: &Snapshot, id: crate::balance::MemberId) -> bool {
    let mut used = false;
    for r in &snap.rules {
        if let Some(pos) = r.members.iter().position(|m| *m == id) {
            used = true;
            if r.eligible.get(pos).copied().unwrap_or(false) && !r.all_down {
                return true;
            }
        }
    }
    !used
        && snap
            .member(id)
            .is_some_and(|m| m.admin_state != AdminState::Down)
}

/// Per pool member figures (metrics and the `counters` JSON).
fn member_metrics(snap: &Snapshot, c: &WorkerCounters) -> Vec<MemberMetrics> {
    snap.members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mc = c.members.get(i).copied().unwrap_or_default();
            MemberMetrics {
                pool: snap
                    .pools
                    .get(m.pool.index())
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                member: m.name.clone(),
                new_flows: mc.new_flows,
                active_flows: mc.active_flows(),
                packets: mc.packets,
                syns: mc.syns,
                replies: mc.replies,
                healthy: member_healthy(snap, crate::balance::MemberId(i as u32)),
            }
        })
        .collect()
}

/// SNAT ports of `member`'s blocks over every outbound rule.
fn snat_allocated(snap: &Snapshot, member: crate::balance::MemberId) -> u64 {
    snap.outbound
        .iter()
        .flat_map(|o| &o.blocks)
        .filter(|b| b.member == member)
        .map(|b| u64::from(b.count))
        .sum()
}

/// Per outbound rule and member SNAT figures (metrics and the `counters` JSON): the size of the
/// member's blocks (over the rule's frontend IPs), and the member's SNAT counters summed over workers (a member under two outbound rules,
/// one per protocol, shows the same counters under both).
fn snat_rows(snap: &Snapshot, c: &WorkerCounters) -> Vec<(SnatMetrics, SnatCounters)> {
    let mut v = Vec::new();
    for o in &snap.outbound {
        let pool = snap.pools.get(o.pool.index()).map(|p| p.name.clone());
        for (member, allocated) in o.ports_by_member() {
            let sc = c.snat.get(member.index()).copied().unwrap_or_default();
            let m = SnatMetrics {
                rule: o.name.clone(),
                pool: pool.clone().unwrap_or_default(),
                member: snap
                    .member(member)
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                allocated_ports: allocated,
                used_ports: sc.used_ports(),
                pending: sc.pending(),
                successful: sc.successful,
                failed: sc.failed(),
            };
            v.push((m, sc));
        }
    }
    v
}

/// Per frontend and rule figures (metrics and the `counters` JSON).
fn rule_metrics(snap: &Snapshot, c: &WorkerCounters) -> Vec<RuleMetrics> {
    snap.rules
        .iter()
        .map(|r| {
            let rc = c.rules.get(r.id.index()).copied().unwrap_or_default();
            let idle = c.rule_idle.get(r.id.index()).copied().unwrap_or_default();
            RuleMetrics {
                frontend: snap
                    .frontends
                    .get(r.frontend.index())
                    .map(|f| f.name.clone())
                    .unwrap_or_default(),
                rule: r.name.clone(),
                packets: rc.packets + rc.reply_packets,
                bytes: rc.bytes + rc.reply_bytes,
                syns: rc.syns,
                new_flows: rc.new_flows,
                active_flows: rc.active_flows(),
                idle_expired_flows: idle.expired,
                idle_late_packets: idle.late_packets,
            }
        })
        .collect()
}

fn tcp_state_name(e: &crate::flow::FlowEntry) -> String {
    format!("{:?}", e.state).to_lowercase()
}

/// The `flows` rows of a worker's SNAT translations of both families (see [`FlowRow::outbound`];
/// IPv6 endpoints as `[address]:port`).
fn snat_flow_rows(snap: &Snapshot, listing: &FlowListing, worker: u32) -> Vec<FlowRow> {
    let now = listing.now;
    let v4 = listing.snat.iter().map(|t| {
        let ep = |ip: u32, port: u16| format!("{}:{port}", Ipv4Addr::from(ip));
        snat_flow_row(snap, t, snap.frontend_by_addr(t.frontend), ep, now, worker)
    });
    let v6 = listing.snat6.iter().map(|t| {
        let ep = |ip: u128, port: u16| format!("[{}]:{port}", std::net::Ipv6Addr::from(ip));
        snat_flow_row(snap, t, snap.frontend_by_addr6(t.frontend), ep, now, worker)
    });
    v4.chain(v6).collect()
}

/// The `flows` row of one SNAT translation (`fe`: its frontend IP's frontend; `ep` shows an
/// endpoint).
fn snat_flow_row<A: crate::flow::snat::SnatAddr>(
    snap: &Snapshot,
    t: &crate::flow::Translation<A>,
    fe: Option<crate::balance::snapshot::FrontendId>,
    ep: impl Fn(A, u16) -> String,
    now: u32,
    worker: u32,
) -> FlowRow {
    FlowRow {
        frontend: fe
            .and_then(|f| snap.frontends.get(f.index()))
            .map(|f| f.name.clone())
            .unwrap_or_default(),
        rule: snap
            .outbound
            .get(t.outbound as usize)
            .map(|o| o.name.clone())
            .unwrap_or_default(),
        protocol: match t.proto {
            6 => "tcp".into(),
            17 => "udp".into(),
            p => p.to_string(),
        },
        client: ep(t.member, t.member_port),
        vip: ep(t.frontend, t.snat_port),
        backend: ep(t.remote, t.remote_port),
        member: snap
            .member(crate::balance::MemberId(t.entry.member_id))
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        state: if t.proto == 17 {
            "udp".into()
        } else {
            tcp_state_name(&t.entry)
        },
        idle_secs: u64::from(now.saturating_sub(t.entry.last_seen)),
        packets: 0,
        bytes: 0,
        worker,
        outbound: true,
    }
}

impl ApplianceControl {
    /// Each worker's listing of up to `limit` flows (only its SNAT translations with
    /// `outbound_only`), in worker order: a control-time walk of its tables.
    fn listings(&self, limit: usize, outbound_only: bool) -> Result<Vec<FlowListing>, String> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut out = Vec::with_capacity(self.shared.workers.len());
        for (w, slot) in self.shared.workers.iter().enumerate() {
            let (tx, rx) = crossbeam::channel::bounded(1);
            let req = FlowRequest {
                limit,
                outbound_only,
                reply: tx,
            };
            if slot
                .flow_requests
                .send_timeout(req, REQUEST_TIMEOUT)
                .is_err()
            {
                return Err(format!("worker {w} does not answer"));
            }
            let listing = rx
                .recv_deadline(deadline)
                .map_err(|_| format!("worker {w} did not answer in time"))?;
            out.push(listing);
        }
        Ok(out)
    }

    /// Every worker's SNAT translations (up to [`MAX_FLOWS_PER_REQUEST`] each; none when a
    /// worker does not answer), for `diagnose`.
    fn snat_translations(&self) -> super::diagnose::SnatListing {
        let mut all = super::diagnose::SnatListing::default();
        for l in self
            .listings(MAX_FLOWS_PER_REQUEST, true)
            .unwrap_or_default()
        {
            all.v4.extend(l.snat);
            all.v6.extend(l.snat6);
        }
        all
    }
}

impl crate::control::ControlHandler for ApplianceControl {
    fn status(&self) -> Value {
        let mut report = self.status_report();
        super::bgp::fill_status(&self.shared, &mut report);
        let mut v = serde_json::to_value(report).unwrap_or(Value::Null);
        if let Value::Object(o) = &mut v {
            let (c, _, _) = self.shared.aggregate();
            let active: u64 = c.rules.iter().map(|r| r.active_flows()).sum();
            o.insert("active_flows".into(), json!(active));
        }
        v
    }

    fn flows(&self, filter: &FlowFilter) -> Result<Value, String> {
        let snap = self.shared.snapshot.load();
        if let Some(fe) = &filter.frontend {
            if !snap.frontends.iter().any(|f| &f.name == fe) {
                return Err(format!("unknown frontend {fe:?}"));
            }
        }
        if let Some(rule) = &filter.rule {
            if !snap.rules.iter().any(|r| &r.name == rule)
                && !snap.outbound.iter().any(|o| &o.name == rule)
            {
                return Err(format!("unknown rule {rule:?}"));
            }
        }
        let limit = filter
            .limit
            .unwrap_or(DEFAULT_FLOW_LIMIT)
            .min(DEFAULT_FLOW_LIMIT * 10);
        let mut report = FlowsReport::default();
        let mut total = 0u64;
        for (w, listing) in self.listings(limit, false)?.into_iter().enumerate() {
            total += listing.total;
            // Both families as (protocol, client, VIP, backend, entry); IPv6 shows as [addr]:port.
            let v4 = listing.flows.iter().map(|(k, e)| {
                let sa = |a: u32, p: u16| SocketAddr::from((Ipv4Addr::from(a), p));
                let ends = (sa(k.src_ip, k.src_port), sa(k.dst_ip, k.dst_port));
                (k.proto, ends, sa(e.member_addr, e.backend_port), *e)
            });
            let v6 = listing.flows6.iter().map(|(k, e)| {
                let sa = |a: u128, p: u16| SocketAddr::from((Ipv6Addr::from(a), p));
                let ends = (sa(k.src_ip, k.src_port), sa(k.dst_ip, k.dst_port));
                (
                    k.proto,
                    ends,
                    sa(e.member_addr, e.flow.backend_port),
                    e.flow,
                )
            });
            for (proto, (client, vip), backend, e) in v4.chain(v6) {
                let Some(rule) = snap.rule(crate::balance::RuleId(e.rule_id)) else {
                    continue;
                };
                let frontend = snap
                    .frontends
                    .get(rule.frontend.index())
                    .map(|f| f.name.clone())
                    .unwrap_or_default();
                if filter.frontend.as_ref().is_some_and(|f| *f != frontend)
                    || filter.rule.as_ref().is_some_and(|r| *r != rule.name)
                {
                    continue;
                }
                if report.flows.len() >= limit {
                    report.truncated = true;
                    continue;
                }
                let member = snap
                    .member(crate::balance::MemberId(e.member_id))
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                report.flows.push(FlowRow {
                    frontend,
                    rule: rule.name.clone(),
                    protocol: match proto {
                        6 => "tcp".into(),
                        17 => "udp".into(),
                        p => p.to_string(),
                    },
                    client: client.to_string(),
                    vip: vip.to_string(),
                    backend: backend.to_string(),
                    member,
                    state: if proto == 17 {
                        "udp".into()
                    } else {
                        tcp_state_name(&e)
                    },
                    idle_secs: u64::from(listing.now.saturating_sub(e.last_seen)),
                    packets: 0,
                    bytes: 0,
                    worker: w as u32,
                    outbound: false,
                });
            }
            for row in snat_flow_rows(&snap, &listing, w as u32) {
                let wanted = filter.frontend.as_ref().is_none_or(|f| *f == row.frontend)
                    && filter.rule.as_ref().is_none_or(|r| *r == row.rule);
                if !wanted {
                    continue;
                }
                if report.flows.len() >= limit {
                    report.truncated = true;
                    continue;
                }
                report.flows.push(row);
            }
        }
        report.total = Some(total);
        if total > report.flows.len() as u64 && filter.frontend.is_none() && filter.rule.is_none() {
            report.truncated = true;
        }
        serde_json::to_value(report).map_err(|e| e.to_string())
    }

    fn diagnose(&self) -> Value {
        let snap = self.shared.snapshot.load();
        let (counters, _, _) = self.shared.aggregate();
        let probes = self.probe_statuses();
        let mut report = super::diagnose::run(
            &snap,
            &probes,
            &self.baseline,
            counters,
            self.shared.started,
            &|| self.snat_translations(),
        );
        super::bgp::diagnose(&self.shared, &mut report);
        let taps = super::tap_names(&self.shared.config.load());
        for tap in super::kernel::missing_taps(&taps) {
            report.add(
                "exception_tap_missing",
                "fail",
                format!("TAP {tap}"),
                "its kernel interface is gone (deleted from outside?): the appliance's own address, ARP for it and health probes no longer work".into(),
                "restart vipmux (it creates its TAPs at start); established flows survive the restart",
            );
        }
        report.finish(&super::diagnose::CHECKS);
        serde_json::to_value(report).unwrap_or(Value::Null)
    }

    fn reload(&self, path: Option<PathBuf>) -> Result<String, String> {
        let (tx, rx) = crossbeam::channel::bounded(1);
        self.shared
            .reload_tx
            .send_timeout(ReloadRequest { path, reply: tx }, REQUEST_TIMEOUT)
            .map_err(|_| "the slow path does not take reload requests".to_string())?;
        rx.recv_timeout(REQUEST_TIMEOUT * 2)
            .map_err(|_| "the slow path did not answer the reload in time".to_string())?
    }

    fn counters(&self) -> Value {
        self.counters_value()
    }

    fn bgp(&self, report: crate::bgp::BgpReport) -> Result<Value, String> {
        super::bgp::answer_helper(&self.shared, report)
    }

    fn capture(&self, op: crate::control::capture::CaptureOp) -> Result<Value, String> {
        self.captures.handle(&self.shared, op)
    }

    fn drain(&self, deadline: Duration) -> Result<Value, String> {
        let started = super::bgp::start_drain(&self.shared, deadline);
        Ok(
            json!({ "draining": true, "already": !started, "deadline_secs": deadline.as_secs_f64() }),
        )
    }
}

impl MetricsSource for ApplianceControl {
    fn render(&self, enc: &mut Encoder) {
        self.metrics().render(enc);
        super::bgp::render_metrics(&self.shared, enc);
    }
}
