//! The appliance's metric set as plain data: per frontend, backend, rule, member, SNAT frontend,
//! worker and port, rendered into an [`Encoder`].

use super::encode::{Encoder, MetricType, MetricsSource};
use super::names;

/// One family of a per-row table: name, type, help and the row's figure.
type FamilyOf<T> = (&'static str, MetricType, &'static str, fn(&T) -> u64);

/// Writes one family per `(name, type, help, field)` of `families`, with one sample per row of
/// `rows` labelled by `labels`.
fn render_families<T>(
    enc: &mut Encoder,
    families: &[FamilyOf<T>],
    rows: &[T],
    labels: fn(&T) -> [(&'static str, &String); 2],
) {
    for (name, kind, help, field) in families {
        enc.family(name, *kind, help);
        for row in rows {
            let l = labels(row);
            enc.sample(&[(l[0].0, l[0].1), (l[1].0, l[1].1)], field(row));
        }
    }
}

/// One frontend IP, port and protocol (one rule) with Azure's dimensions in [`ApplianceMetrics`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LbFrontendMetrics {
    /// Frontend IP (the VIP).
    pub frontend_ip: String,
    /// Frontend port (`start-end` for an inbound NAT port range, `0` for HA ports).
    pub frontend_port: String,
    /// Protocol (`tcp`, `udp`, `all`).
    pub protocol: String,
    /// Packets from clients (direction `in`).
    pub packets_in: u64,
    /// Packets back to clients (direction `out`).
    pub packets_out: u64,
    /// Bytes from clients.
    pub bytes_in: u64,
    /// Bytes back to clients.
    pub bytes_out: u64,
    /// SYNs from clients.
    pub syns_in: u64,
    /// A new connection to the frontend reaches a member (data path availability).
    pub vip_available: bool,
}

/// One member of one rule with Azure's dimensions in [`ApplianceMetrics`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LbBackendMetrics {
    /// Frontend IP.
    pub frontend_ip: String,
    /// Frontend port.
    pub frontend_port: String,
    /// Backend (member) IP.
    pub backend_ip: String,
    /// Backend port.
    pub backend_port: String,
    /// Protocol.
    pub protocol: String,
    /// The member takes new flows of the rule (health probe status).
    pub available: bool,
}

/// Per-rule figures in [`ApplianceMetrics`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RuleMetrics {
    /// Frontend name.
    pub frontend: String,
    /// Rule name.
    pub rule: String,
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
    /// TCP SYNs matched.
    pub syns: u64,
    /// Flows created.
    pub new_flows: u64,
    /// Flows active now.
    pub active_flows: u64,
    /// Flows removed by the idle timeout.
    pub idle_expired_flows: u64,
    /// Later TCP packets of idle-expired flows (dropped).
    pub idle_late_packets: u64,
}

/// Per-member figures in [`ApplianceMetrics`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MemberMetrics {
    /// Pool name.
    pub pool: String,
    /// Member name.
    pub member: String,
    /// Flows sent to it.
    pub new_flows: u64,
    /// Flows active now.
    pub active_flows: u64,
    /// Client packets forwarded to it.
    pub packets: u64,
    /// Of those, TCP SYNs.
    pub syns: u64,
    /// NAT replies from it forwarded back to clients.
    pub replies: u64,
    /// Takes new flows.
    pub healthy: bool,
}

/// Per outbound rule and member SNAT figures in [`ApplianceMetrics`] (Azure's metric set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnatMetrics {
    /// Outbound rule name.
    pub rule: String,
    /// Pool name.
    pub pool: String,
    /// Member name.
    pub member: String,
    /// Ports allocated.
    pub allocated_ports: u64,
    /// Ports in use.
    pub used_ports: u64,
    /// Connections waiting for their first answer.
    pub pending: u64,
    /// Connections that got an answer.
    pub successful: u64,
    /// Connections that failed (no port, timeout, reset).
    pub failed: u64,
}

/// One worker's poll-loop runtime in [`ApplianceMetrics`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerMetrics {
    /// Worker index.
    pub worker: String,
    /// Loop iterations.
    pub polls: u64,
    /// Iterations that received frames.
    pub busy_polls: u64,
    /// Nanoseconds spent in busy iterations.
    pub busy_ns: u64,
    /// The longest busy iteration, nanoseconds.
    pub max_busy_ns: u64,
    /// Frames handed to their owning worker.
    pub handoff_sent: u64,
    /// Frames received from other workers.
    pub handoff_received: u64,
    /// Frames dropped because a hand-off ring was full.
    pub handoff_full: u64,
    /// Transmit back-pressure episodes.
    pub tx_blocked: u64,
    /// Nanoseconds tx queues held refused frames.
    pub tx_blocked_ns: u64,
}

/// One physical port's drop and error counters (`rte_eth_stats`) in [`ApplianceMetrics`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortMetrics {
    /// Interface name.
    pub interface: String,
    /// Frames dropped by the device, rx queues full (`imissed`).
    pub rx_missed: u64,
    /// Frames not received for want of an mbuf (`rx_nombuf`).
    pub rx_nombuf: u64,
    /// Erroneous frames received (`ierrors`).
    pub rx_errors: u64,
    /// Failed transmissions (`oerrors`).
    pub tx_errors: u64,
    /// Times the link went down (seen by the slow path's link watch).
    pub link_downs: u64,
    /// Times the link came back up.
    pub link_ups: u64,
}

/// The appliance's whole metric set (docs/design.md §3.9) as plain data;
/// [`render`](Self::render) writes every family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplianceMetrics {
    /// Whether the appliance is forwarding.
    pub forwarding: bool,
    /// Configuration generation.
    pub config_generation: u64,
    /// Packets received.
    pub received: u64,
    /// Packets transmitted.
    pub transmitted: u64,
    /// Drops by reason name (every reason listed, zeros included, so rates work from the start).
    pub drops: Vec<(String, u64)>,
    /// ICMP errors about flows by outcome (every outcome listed, zeros included).
    pub icmp_errors: Vec<(String, u64)>,
    /// Per frontend and rule.
    pub rules: Vec<RuleMetrics>,
    /// Per pool member.
    pub members: Vec<MemberMetrics>,
    /// Per outbound rule and member.
    pub snat: Vec<SnatMetrics>,
    /// Per forwarding worker.
    pub workers: Vec<WorkerMetrics>,
    /// Mbufs of the packet pool in use.
    pub mbufs_in_use: u64,
    /// Per physical port, in interface order.
    pub ports: Vec<PortMetrics>,
    /// Per frontend IP, port and protocol (Azure's dimensions).
    pub lb_frontends: Vec<LbFrontendMetrics>,
    /// Per rule and member (Azure's dimensions).
    pub lb_backends: Vec<LbBackendMetrics>,
    /// Per SNAT frontend IP: TCP SYNs members sent out through it (SYN count, direction `out`).
    pub snat_syns: Vec<(String, u64)>,
}

impl ApplianceMetrics {
    /// Write every metric family (families with no samples are still declared).
    pub fn render(&self, enc: &mut Encoder) {
        self.render_totals(enc);
        self.render_rules(enc);
        self.render_members(enc);
        self.render_snat_ports(enc);
        self.render_workers(enc);
        self.render_snat_connections(enc);
        self.render_ports(enc);
        self.render_azure(enc);
    }

    /// Azure's metric set with Azure's dimensions as labels (README "Metrics").
    fn render_azure(&self, enc: &mut Encoder) {
        use names::*;
        use MetricType::{Counter, Gauge};
        enc.family(
            LB_VIP_AVAILABILITY,
            Gauge,
            "Data path availability: 1 while a new connection to the frontend reaches a member (Azure VipAvailability).",
        );
        for f in &self.lb_frontends {
            enc.sample(&f.labels(None), f.vip_available);
        }
        enc.family(
            LB_DIP_AVAILABILITY,
            Gauge,
            "Health probe status: 1 while the member takes new flows of the rule (Azure DipAvailability).",
        );
        for b in &self.lb_backends {
            let labels = [
                ("frontend_ip", b.frontend_ip.as_str()),
                ("frontend_port", &b.frontend_port),
                ("backend_ip", &b.backend_ip),
                ("backend_port", &b.backend_port),
                ("protocol", &b.protocol),
            ];
            enc.sample(&labels, b.available);
        }
        type Dir = fn(&LbFrontendMetrics) -> [(&'static str, u64); 2];
        let traffic: [(&str, &str, Dir); 3] = [
            (
                LB_PACKETS,
                "Packets by frontend and direction (Azure PacketCount).",
                |f| [("in", f.packets_in), ("out", f.packets_out)],
            ),
            (
                LB_BYTES,
                "Bytes by frontend and direction (Azure ByteCount).",
                |f| [("in", f.bytes_in), ("out", f.bytes_out)],
            ),
            (
                LB_SYNS,
                "TCP SYNs by frontend and direction (Azure SYNCount; out: members' SYNs through outbound SNAT, frontend_port \"snat\").",
                |f| [("in", f.syns_in), ("out", 0)],
            ),
        ];
        for (name, help, dirs) in traffic {
            enc.family(name, Counter, help);
            for f in &self.lb_frontends {
                for (dir, n) in dirs(f) {
                    enc.sample(&f.labels(Some(dir)), n);
                }
            }
            if name == LB_SYNS {
                for (ip, n) in &self.snat_syns {
                    let labels = [
                        ("frontend_ip", ip.as_str()),
                        ("frontend_port", "snat"),
                        ("protocol", "tcp"),
                        ("direction", "out"),
                    ];
                    enc.sample(&labels, *n);
                }
            }
        }
    }

    /// The per port drop and error counters of the devices.
    fn render_ports(&self, enc: &mut Encoder) {
        use names::*;
        type Field = fn(&PortMetrics) -> u64;
        let families: [(&str, &str, Field); 6] = [
            (
                PORT_RX_MISSED,
                "Frames the port's device dropped because its rx queues were full.",
                |p| p.rx_missed,
            ),
            (
                PORT_RX_NOMBUF,
                "Frames the port could not receive because the packet pool was empty.",
                |p| p.rx_nombuf,
            ),
            (PORT_RX_ERRORS, "Erroneous frames the port received.", |p| {
                p.rx_errors
            }),
            (PORT_TX_ERRORS, "Failed transmissions of the port.", |p| {
                p.tx_errors
            }),
            (PORT_LINK_DOWNS, "Times the port's link went down.", |p| {
                p.link_downs
            }),
            (PORT_LINK_UPS, "Times the port's link came back up.", |p| {
                p.link_ups
            }),
        ];
        for (name, help, field) in families {
            enc.family(name, MetricType::Counter, help);
            for p in &self.ports {
                enc.sample(&[("interface", &p.interface)], field(p));
            }
        }
    }

    /// State, generation, packet totals and drops by reason.
    fn render_totals(&self, enc: &mut Encoder) {
        use names::*;
        use MetricType::Counter;
        enc.gauge(
            FORWARDING,
            "1 while the appliance forwards traffic.",
            &[],
            self.forwarding,
        );
        enc.gauge(
            CONFIG_GENERATION,
            "Configuration generation, +1 per reload.",
            &[],
            self.config_generation,
        );
        enc.counter(
            PACKETS_RECEIVED,
            "Packets received from the ports.",
            &[],
            self.received,
        );
        enc.counter(
            PACKETS_TRANSMITTED,
            "Packets transmitted on the ports.",
            &[],
            self.transmitted,
        );
        enc.family(DROPS, Counter, "Packets dropped, by reason.");
        for (reason, n) in &self.drops {
            enc.sample(&[("reason", reason)], *n);
        }
        enc.family(
            ICMP_ERRORS,
            Counter,
            "ICMP errors about flows, by what the data path did with them.",
        );
        for (outcome, n) in &self.icmp_errors {
            enc.sample(&[("outcome", outcome)], *n);
        }
    }

    /// The per frontend and rule families.
    fn render_rules(&self, enc: &mut Encoder) {
        use names::*;
        use MetricType::{Counter, Gauge};
        let rule_families: [FamilyOf<RuleMetrics>; 7] = [
            (RULE_PACKETS, Counter, "Packets matched by a rule.", |r| {
                r.packets
            }),
            (RULE_BYTES, Counter, "Bytes matched by a rule.", |r| r.bytes),
            (RULE_SYNS, Counter, "TCP SYNs matched by a rule.", |r| {
                r.syns
            }),
            (RULE_NEW_FLOWS, Counter, "Flows created on a rule.", |r| {
                r.new_flows
            }),
            (RULE_ACTIVE_FLOWS, Gauge, "Flows active on a rule.", |r| {
                r.active_flows
            }),
            (
                RULE_IDLE_EXPIRED_FLOWS,
                Counter,
                "Flows of a rule removed by its idle timeout.",
                |r| r.idle_expired_flows,
            ),
            (
                RULE_IDLE_LATE_PACKETS,
                Counter,
                "Later TCP packets of idle-expired flows of a rule, dropped.",
                |r| r.idle_late_packets,
            ),
        ];
        render_families(enc, &rule_families, &self.rules, |r| {
            [("frontend", &r.frontend), ("rule", &r.rule)]
        });
    }

    /// The per pool member families.
    fn render_members(&self, enc: &mut Encoder) {
        use names::*;
        use MetricType::{Counter, Gauge};
        let member_families: [FamilyOf<MemberMetrics>; 5] = [
            (
                MEMBER_NEW_FLOWS,
                Counter,
                "Flows sent to a pool member.",
                |m| m.new_flows,
            ),
            (
                MEMBER_ACTIVE_FLOWS,
                Gauge,
                "Flows active to a pool member.",
                |m| m.active_flows,
            ),
            (
                MEMBER_PACKETS,
                Counter,
                "Client packets forwarded to a pool member.",
                |m| m.packets,
            ),
            (
                MEMBER_SYNS,
                Counter,
                "TCP SYNs forwarded to a pool member.",
                |m| m.syns,
            ),
            (
                MEMBER_REPLIES,
                Counter,
                "NAT replies from a pool member forwarded back to clients.",
                |m| m.replies,
            ),
        ];
        render_families(enc, &member_families, &self.members, |m| {
            [("pool", &m.pool), ("member", &m.member)]
        });
        enc.family(
            MEMBER_HEALTH,
            Gauge,
            "1 if the pool member takes new flows, else 0.",
        );
        for m in &self.members {
            enc.sample(&[("pool", &m.pool), ("member", &m.member)], m.healthy);
        }
    }

    /// The per outbound rule and member SNAT port gauges.
    fn render_snat_ports(&self, enc: &mut Encoder) {
        use names::*;
        use MetricType::Gauge;
        type SnatField = fn(&SnatMetrics) -> u64;
        let snat_gauges: [(&str, &str, SnatField); 3] = [
            (
                SNAT_ALLOCATED_PORTS,
                "SNAT ports allocated to a member by an outbound rule.",
                |s| s.allocated_ports,
            ),
            (SNAT_USED_PORTS, "SNAT ports in use by a member.", |s| {
                s.used_ports
            }),
            (
                SNAT_PENDING,
                "Outbound connections waiting for their first answer.",
                |s| s.pending,
            ),
        ];
        for (name, help, field) in snat_gauges {
            enc.family(name, Gauge, help);
            for s in &self.snat {
                enc.sample(
                    &[("rule", &s.rule), ("pool", &s.pool), ("member", &s.member)],
                    field(s),
                );
            }
        }
    }

    /// The per worker poll-loop families.
    fn render_workers(&self, enc: &mut Encoder) {
        use names::*;
        use MetricType::Counter;
        enc.family(
            WORKER_POLLS,
            Counter,
            "Polls of a worker (loop iterations and idle rx-only rounds), by whether they received frames.",
        );
        for w in &self.workers {
            let empty = w.polls.saturating_sub(w.busy_polls);
            for (result, n) in [("busy", w.busy_polls), ("empty", empty)] {
                enc.sample(&[("worker", &w.worker), ("result", result)], n);
            }
        }
        enc.family(
            WORKER_BUSY_SECONDS,
            Counter,
            "Time a worker spent in iterations that received frames (busy time / packets = cost per packet).",
        );
        for w in &self.workers {
            enc.sample(&[("worker", &w.worker)], w.busy_ns as f64 / 1e9);
        }
        enc.family(
            WORKER_MAX_BUSY_ITERATION,
            MetricType::Gauge,
            "The longest poll-loop iteration of a worker that received frames (a stall under load).",
        );
        for w in &self.workers {
            enc.sample(&[("worker", &w.worker)], w.max_busy_ns as f64 / 1e9);
        }
        enc.gauge(
            MBUFS_IN_USE,
            "Mbufs of the packet pool in use (back to the idle level once traffic stops).",
            &[],
            self.mbufs_in_use,
        );
        enc.family(
            WORKER_HANDOFFS,
            Counter,
            "Frames handed between workers so each flow's packets meet its owner (sent, received, dropped on a full ring).",
        );
        for w in &self.workers {
            for (direction, n) in [
                ("sent", w.handoff_sent),
                ("received", w.handoff_received),
                ("dropped", w.handoff_full),
            ] {
                enc.sample(&[("worker", &w.worker), ("direction", direction)], n);
            }
        }
        enc.family(
            WORKER_TX_BLOCKED,
            Counter,
            "Times a worker's tx queue refused frames and the worker held them, receiving nothing, until sent or freed (tx_full).",
        );
        for w in &self.workers {
            enc.sample(&[("worker", &w.worker)], w.tx_blocked);
        }
        enc.family(
            WORKER_TX_BLOCKED_SECONDS,
            Counter,
            "Time a worker's tx queues held refused frames (transmit back-pressure).",
        );
        for w in &self.workers {
            enc.sample(&[("worker", &w.worker)], w.tx_blocked_ns as f64 / 1e9);
        }
    }

    /// The SNAT connections by result.
    fn render_snat_connections(&self, enc: &mut Encoder) {
        use names::*;
        use MetricType::Counter;
        enc.family(
            SNAT_CONNECTIONS,
            Counter,
            "Outbound (SNAT) connections, by result.",
        );
        for s in &self.snat {
            for (state, n) in [("successful", s.successful), ("failed", s.failed)] {
                enc.sample(
                    &[
                        ("rule", &s.rule),
                        ("pool", &s.pool),
                        ("member", &s.member),
                        ("state", state),
                    ],
                    n,
                );
            }
        }
    }
}

impl LbFrontendMetrics {
    /// The Azure dimensions of this frontend, with `direction` when given.
    fn labels(&self, direction: Option<&'static str>) -> Vec<(&str, &str)> {
        let mut l = vec![
            ("frontend_ip", self.frontend_ip.as_str()),
            ("frontend_port", self.frontend_port.as_str()),
            ("protocol", self.protocol.as_str()),
        ];
        if let Some(d) = direction {
            l.push(("direction", d));
        }
        l
    }
}

impl MetricsSource for ApplianceMetrics {
    fn render(&self, enc: &mut Encoder) {
        ApplianceMetrics::render(self, enc);
    }
}
