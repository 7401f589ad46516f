//! Prometheus metrics: a text-exposition encoder (format 0.0.4), the appliance's metric set
//! (docs/design.md §3.9) as plain data, and a small HTTP server answering `GET /metrics`.
//!
//! The appliance implements [`MetricsSource`] — most simply by filling an [`ApplianceMetrics`] from
//! its aggregated counters and calling [`ApplianceMetrics::render`] — and starts a [`MetricsServer`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::serve::{self, ServerThread};

/// Content type of the text exposition format served on `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Largest HTTP request head the server reads before answering 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a scrape connection has to send its whole request head, and again to take the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Most scrape connections served at the same time; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 256;

/// Type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic counter (name should end in `_total`).
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// No type information.
    Untyped,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A value a sample can carry: integers are written exactly, floats in Prometheus notation.
pub trait PromValue {
    /// Append the value's text form to `out`.
    fn write_to(&self, out: &mut String);
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl PromValue for $t {
            fn write_to(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64, usize, i32, i64);

impl PromValue for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl PromValue for bool {
    fn write_to(&self, out: &mut String) {
        out.push(if *self { '1' } else { '0' });
    }
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    body: String,
}

/// Builds a text exposition: families (one `# HELP` and `# TYPE` each) and their samples.
///
/// Selecting a family that already exists appends to it, so samples of one family stay together
/// whatever order the caller emits them in. Invalid characters in metric and label names become `_`.
#[derive(Debug, Default)]
pub struct Encoder {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    current: Option<usize>,
}

impl Encoder {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Select (creating if new) the family `name` of type `kind` with `help`; later samples go to it.
    /// For an existing family, the first type and help text are kept.
    pub fn family(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Self {
        let name = sanitize_name(name, true);
        let idx = match self.index.get(&name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.clone(),
                    help: help.to_string(),
                    kind,
                    body: String::new(),
                });
                self.index.insert(name, self.families.len() - 1);
                self.families.len() - 1
            }
        };
        self.current = Some(idx);
        self
    }

    /// Add a sample with `labels` to the selected family (ignored if no family is selected).
    pub fn sample<V: PromValue>(&mut self, labels: &[(&str, &str)], value: V) -> &mut Self {
        let Some(idx) = self.current else { return self };
        let fam = &mut self.families[idx];
        fam.body.push_str(&fam.name);
        if !labels.is_empty() {
            fam.body.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    fam.body.push(',');
                }
                fam.body.push_str(&sanitize_name(k, false));
                fam.body.push_str("=\"");
                escape_label_value(v, &mut fam.body);
                fam.body.push('"');
            }
            fam.body.push('}');
        }
        fam.body.push(' ');
        value.write_to(&mut fam.body);
        fam.body.push('\n');
        self
    }

    /// Shorthand: select counter family `name` and add one sample.
    pub fn counter<V: PromValue>(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: V) {
        self.family(name, MetricType::Counter, help)
            .sample(labels, v);
    }

    /// Shorthand: select gauge family `name` and add one sample.
    pub fn gauge<V: PromValue>(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: V) {
        self.family(name, MetricType::Gauge, help).sample(labels, v);
    }

    /// The exposition text (families in first-use order; families without samples still listed).
    pub fn finish(self) -> String {
        let mut out = String::new();
        for f in &self.families {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            escape_help(&f.help, &mut out);
            out.push('\n');
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            out.push_str(&f.body);
        }
        out
    }
}

/// Replace characters not allowed in a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or a label name
/// (`[a-zA-Z_][a-zA-Z0-9_]*`) with `_`.
pub fn sanitize_name(name: &str, metric: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphabetic()
            || c == '_'
            || (metric && c == ':')
            || (i > 0 && c.is_ascii_digit());
        if ok {
            out.push(c);
        } else if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Escape a label value: backslash, double quote and newline.
pub fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escape a HELP text: backslash and newline.
pub fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Something that writes the current metrics into an [`Encoder`]; called once per scrape, from the
/// metrics thread.
pub trait MetricsSource: Send + Sync {
    /// Write every family and sample of the current state.
    fn render(&self, enc: &mut Encoder);
}

/// Metric names (docs/design.md §3.9), in one place so the appliance, the docs and the tests
/// agree.
pub mod names {
    /// Counter: packets received from the ports.
    pub const PACKETS_RECEIVED: &str = "vipmux_packets_received_total";
    /// Counter: packets transmitted on the ports.
    pub const PACKETS_TRANSMITTED: &str = "vipmux_packets_transmitted_total";
    /// Counter `{reason}`: packets dropped.
    pub const DROPS: &str = "vipmux_drops_total";
    /// Counter `{outcome}`: ICMP errors about flows, by what the data path did with them.
    pub const ICMP_ERRORS: &str = "vipmux_icmp_errors_total";
    /// Counter `{frontend,rule}`: packets matched by a rule.
    pub const RULE_PACKETS: &str = "vipmux_rule_packets_total";
    /// Counter `{frontend,rule}`: bytes matched by a rule.
    pub const RULE_BYTES: &str = "vipmux_rule_bytes_total";
    /// Counter `{frontend,rule}`: TCP SYNs matched by a rule.
    pub const RULE_SYNS: &str = "vipmux_rule_syns_total";
    /// Counter `{frontend,rule}`: flows created on a rule.
    pub const RULE_NEW_FLOWS: &str = "vipmux_rule_new_flows_total";
    /// Gauge `{frontend,rule}`: active flows on a rule.
    pub const RULE_ACTIVE_FLOWS: &str = "vipmux_rule_active_flows";
    /// Counter `{frontend,rule}`: flows of a rule removed by its idle timeout.
    pub const RULE_IDLE_EXPIRED_FLOWS: &str = "vipmux_rule_idle_expired_flows_total";
    /// Counter `{frontend,rule}`: later TCP packets of such flows (dropped as `idle_expired`).
    pub const RULE_IDLE_LATE_PACKETS: &str = "vipmux_rule_idle_late_packets_total";
    /// Counter `{pool,member}`: flows sent to a member.
    pub const MEMBER_NEW_FLOWS: &str = "vipmux_member_new_flows_total";
    /// Gauge `{pool,member}`: active flows to a member.
    pub const MEMBER_ACTIVE_FLOWS: &str = "vipmux_member_active_flows";
    /// Counter `{pool,member}`: client packets forwarded to a member.
    pub const MEMBER_PACKETS: &str = "vipmux_member_packets_total";
    /// Counter `{pool,member}`: of those, TCP SYNs (without ACK).
    pub const MEMBER_SYNS: &str = "vipmux_member_syns_total";
    /// Counter `{pool,member}`: NAT replies from a member forwarded back to clients.
    pub const MEMBER_REPLIES: &str = "vipmux_member_replies_total";
    /// Gauge `{pool,member}`: 1 if the member takes new flows, else 0.
    pub const MEMBER_HEALTH: &str = "vipmux_member_health";
    /// Gauge `{rule,pool,member}`: SNAT ports allocated to a member by an outbound rule.
    pub const SNAT_ALLOCATED_PORTS: &str = "vipmux_snat_allocated_ports";
    /// Gauge `{rule,pool,member}`: SNAT ports in use.
    pub const SNAT_USED_PORTS: &str = "vipmux_snat_used_ports";
    /// Gauge `{rule,pool,member}`: outbound connections waiting for their first answer.
    pub const SNAT_PENDING: &str = "vipmux_snat_connections_pending";
    /// Counter `{worker,result}`: polls (loop iterations and idle rx-only rounds; `busy`: received
    /// frames, `empty`).
    pub const WORKER_POLLS: &str = "vipmux_worker_polls_total";
    /// Counter `{worker}`: seconds spent in busy poll-loop iterations.
    pub const WORKER_BUSY_SECONDS: &str = "vipmux_worker_busy_seconds_total";
    /// Gauge `{worker}`: seconds of the longest poll-loop iteration that received frames.
    pub const WORKER_MAX_BUSY_ITERATION: &str = "vipmux_worker_max_busy_iteration_seconds";
    /// Gauge: mbufs of the packet pool in use.
    pub const MBUFS_IN_USE: &str = "vipmux_mbufs_in_use";
    /// Counter `{interface}`: frames the port's device dropped because its rx queues were full
    /// (`rte_eth_stats.imissed`).
    pub const PORT_RX_MISSED: &str = "vipmux_port_rx_missed_total";
    /// Counter `{interface}`: frames the port could not receive for want of an mbuf
    /// (`rte_eth_stats.rx_nombuf`, the packet pool was empty).
    pub const PORT_RX_NOMBUF: &str = "vipmux_port_rx_nombuf_total";
    /// Counter `{interface}`: erroneous frames received (`rte_eth_stats.ierrors`).
    pub const PORT_RX_ERRORS: &str = "vipmux_port_rx_errors_total";
    /// Counter `{interface}`: failed transmissions (`rte_eth_stats.oerrors`).
    pub const PORT_TX_ERRORS: &str = "vipmux_port_tx_errors_total";
    /// Counter `{interface}`: times the port's link went down (a memif peer that went away).
    pub const PORT_LINK_DOWNS: &str = "vipmux_port_link_down_total";
    /// Counter `{interface}`: times the port's link came back up.
    pub const PORT_LINK_UPS: &str = "vipmux_port_link_up_total";
    /// Counter `{worker,direction}`: frames handed between workers (`sent` to their owner,
    /// `received` from another worker, `dropped` on a full ring).
    pub const WORKER_HANDOFFS: &str = "vipmux_worker_handoffs_total";
    /// Counter `{worker}`: transmit back-pressure episodes (a tx queue refused frames; the
    /// worker kept them and stopped receiving until they were sent or freed at the bound).
    pub const WORKER_TX_BLOCKED: &str = "vipmux_worker_tx_blocked_total";
    /// Counter `{worker}`: seconds tx queues held refused frames (summed over queues).
    pub const WORKER_TX_BLOCKED_SECONDS: &str = "vipmux_worker_tx_blocked_seconds_total";
    /// Counter `{rule,pool,member,state}`: outbound connections by result (`successful`, `failed`).
    pub const SNAT_CONNECTIONS: &str = "vipmux_snat_connections_total";
    /// Gauge: 1 while the appliance forwards traffic.
    pub const FORWARDING: &str = "vipmux_forwarding";
    /// Gauge: configuration generation (1 after start, +1 per reload).
    pub const CONFIG_GENERATION: &str = "vipmux_config_generation";
    /// Gauge `{frontend}`: 1 while the BGP daemon announces the VIP.
    pub const BGP_ANNOUNCED: &str = "vipmux_bgp_announced";
    /// Gauge `{peer}`: 1 while the BGP session with the peer is up.
    pub const BGP_SESSION_UP: &str = "vipmux_bgp_session_up";
    /// Gauge: 1 while draining.
    pub const DRAINING: &str = "vipmux_draining";
    /// Gauge `{frontend_ip,frontend_port,protocol}`: Azure's data path availability
    /// (`VipAvailability`): 1 while a new connection to the frontend would reach a member.
    pub const LB_VIP_AVAILABILITY: &str = "vipmux_lb_vip_availability";
    /// Gauge `{frontend_ip,frontend_port,backend_ip,backend_port,protocol}`: Azure's health probe
    /// status (`DipAvailability`): 1 while the member takes new flows of the rule.
    pub const LB_DIP_AVAILABILITY: &str = "vipmux_lb_dip_availability";
    /// Counter `{frontend_ip,frontend_port,protocol,direction}`: Azure's packet count.
    pub const LB_PACKETS: &str = "vipmux_lb_packets_total";
    /// Counter `{frontend_ip,frontend_port,protocol,direction}`: Azure's byte count.
    pub const LB_BYTES: &str = "vipmux_lb_bytes_total";
    /// Counter `{frontend_ip,frontend_port,protocol,direction}`: Azure's SYN count.
    pub const LB_SYNS: &str = "vipmux_lb_syns_total";
}

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

/// Render `source` into a complete exposition text.
pub fn render_text(source: &dyn MetricsSource) -> String {
    let mut enc = Encoder::new();
    source.render(&mut enc);
    enc.finish()
}

/// A running metrics HTTP server; dropping it stops the server.
pub struct MetricsServer {
    addr: SocketAddr,
    thread: ServerThread,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MetricsServer {
    /// Listen on `addr` (e.g. "127.0.0.1:9469"; port 0 picks one) and serve `source` on a new
    /// thread: at most [`MAX_CONNECTIONS`] requests at once, each read and answered within
    /// [`IO_TIMEOUT`].
    pub fn start(
        addr: impl ToSocketAddrs,
        source: Arc<dyn MetricsSource>,
    ) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let thread =
            ServerThread::spawn("vipmux-metrics", move |stop| serve(listener, source, stop))?;
        Ok(MetricsServer { addr, thread })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop the server and wait for its thread.
    pub fn shutdown(mut self) {
        self.thread.stop();
    }
}

async fn serve(
    listener: TcpListener,
    source: Arc<dyn MetricsSource>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot serve");
            return;
        }
    };
    let handle = |conn| {
        let source = Arc::clone(&source);
        async move {
            if let Err(e) = handle(conn, source).await {
                tracing::debug!(error = %e, "metrics: request failed");
            }
        }
    };
    let busy = |mut conn: TcpStream| async move {
        let answer = respond(
            &mut conn,
            "503 Service Unavailable",
            "text/plain",
            b"busy\n",
            true,
        );
        let _ = tokio::time::timeout(IO_TIMEOUT, answer).await;
    };
    serve::accept_loop(listener, MAX_CONNECTIONS, handle, busy, stop).await;
}

/// Read a request head (bounded in size, whole within [`IO_TIMEOUT`]), answer it, close.
async fn handle(mut stream: TcpStream, source: Arc<dyn MetricsSource>) -> io::Result<()> {
    let head = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    };
    let Some(head) = head else {
        let answer = respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            "text/plain",
            b"request too large\n",
            true,
        );
        return within_timeout(answer).await;
    };
    let first = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let first = String::from_utf8_lossy(first);
    let mut parts = first.trim_end().split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let with_body = method == "GET";
    let answer = async {
        match (method, path) {
            ("GET" | "HEAD", "/metrics") => {
                match serve::off_thread(move || render_text(source.as_ref())).await {
                    Some(text) => {
                        respond(
                            &mut stream,
                            "200 OK",
                            CONTENT_TYPE,
                            text.as_bytes(),
                            with_body,
                        )
                        .await
                    }
                    None => {
                        let body = b"metrics source failed\n";
                        respond(
                            &mut stream,
                            "500 Internal Server Error",
                            "text/plain",
                            body,
                            true,
                        )
                        .await
                    }
                }
            }
            ("GET" | "HEAD", _) => {
                let body = b"not found; try /metrics\n";
                respond(&mut stream, "404 Not Found", "text/plain", body, with_body).await
            }
            _ => {
                respond(
                    &mut stream,
                    "405 Method Not Allowed",
                    "text/plain",
                    b"method not allowed\n",
                    true,
                )
                .await
            }
        }
    };
    within_timeout(answer).await
}

/// The request head up to its blank line; `None` when it passes [`MAX_REQUEST_HEAD`] first.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok((!head.is_empty()).then_some(head));
        }
        head.extend_from_slice(&buf[..n]);
    }
}

async fn within_timeout(
    answer: impl std::future::Future<Output = io::Result<()>>,
) -> io::Result<()> {
    match tokio::time::timeout(IO_TIMEOUT, answer).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if with_body {
        stream.write_all(body).await?;
    }
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_groups_families_and_escapes() {
        let mut e = Encoder::new();
        e.counter("a_total", "first\\line\nsecond", &[("k", "v")], 1u64);
        e.gauge("b", "bee", &[], 2.5f64);
        e.counter("a_total", "ignored", &[("k", "x\"y\\z\nw")], 3u64);
        e.gauge("c", "inf", &[("bad-name", "v")], f64::INFINITY);
        e.gauge("d", "nan", &[], f64::NAN);
        let t = e.finish();
        assert_eq!(
            t,
            "# HELP a_total first\\\\line\\nsecond\n# TYPE a_total counter\na_total{k=\"v\"} 1\n\
             a_total{k=\"x\\\"y\\\\z\\nw\"} 3\n# HELP b bee\n# TYPE b gauge\nb 2.5\n\
             # HELP c inf\n# TYPE c gauge\nc{bad_name=\"v\"} +Inf\n# HELP d nan\n# TYPE d gauge\nd NaN\n"
        );
    }

    #[test]
    fn sample_without_family_is_ignored() {
        let mut e = Encoder::new();
        e.sample(&[], 1u64);
        assert_eq!(e.finish(), "");
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("ok_name:x", true), "ok_name:x");
        assert_eq!(sanitize_name("ok:x", false), "ok_x");
        assert_eq!(sanitize_name("9lives", false), "_9lives");
        assert_eq!(sanitize_name("", true), "_");
        assert_eq!(sanitize_name("a-b.c", true), "a_b_c");
    }

    #[test]
    fn appliance_metrics_declare_every_family() {
        let t = render_text(&ApplianceMetrics::default());
        for name in [
            names::PACKETS_RECEIVED,
            names::DROPS,
            names::ICMP_ERRORS,
            names::RULE_ACTIVE_FLOWS,
            names::MEMBER_HEALTH,
            names::SNAT_CONNECTIONS,
        ] {
            assert!(
                t.contains(&format!("# TYPE {name} ")),
                "{name} missing in\n{t}"
            );
        }
    }

    #[test]
    fn azure_families_carry_azure_dimensions() {
        let m = ApplianceMetrics {
            lb_frontends: vec![LbFrontendMetrics {
                frontend_ip: "10.0.0.1".into(),
                frontend_port: "80".into(),
                protocol: "tcp".into(),
                packets_in: 5,
                packets_out: 4,
                bytes_in: 500,
                bytes_out: 400,
                syns_in: 1,
                vip_available: true,
            }],
            lb_backends: vec![LbBackendMetrics {
                frontend_ip: "10.0.0.1".into(),
                frontend_port: "80".into(),
                backend_ip: "10.1.0.11".into(),
                backend_port: "8080".into(),
                protocol: "tcp".into(),
                available: false,
            }],
            ..ApplianceMetrics::default()
        };
        let t = render_text(&m);
        let fe = "frontend_ip=\"10.0.0.1\",frontend_port=\"80\",protocol=\"tcp\"";
        for line in [
            format!("vipmux_lb_vip_availability{{{fe}}} 1"),
            format!("vipmux_lb_packets_total{{{fe},direction=\"out\"}} 4"),
            format!("vipmux_lb_bytes_total{{{fe},direction=\"in\"}} 500"),
            format!("vipmux_lb_syns_total{{{fe},direction=\"in\"}} 1"),
            "vipmux_lb_dip_availability{frontend_ip=\"10.0.0.1\",frontend_port=\"80\",\
             backend_ip=\"10.1.0.11\",backend_port=\"8080\",protocol=\"tcp\"} 0"
                .to_string(),
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing in\n{t}");
        }
    }
}
