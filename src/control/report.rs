//! The shapes of the `status`, `flows` and `diagnose` answers on the control socket.
//!
//! The appliance builds these and returns them with `serde_json::to_value(..)` from its
//! [`ControlHandler`](super::socket::ControlHandler); the CLI parses them back to print tables.
//! Every field has a default, so a partial report still renders; unknown fields are ignored, so
//! either side may add fields without breaking the other.

use serde::{Deserialize, Serialize};

/// Answer to `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusReport {
    /// True once the appliance is forwarding traffic (ports started, workers polling, config loaded).
    pub forwarding: bool,
    /// Program version.
    pub version: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Configuration file in use.
    pub config_path: Option<String>,
    /// Incremented at every successful reload (1 after start).
    pub config_generation: u64,
    /// Number of forwarding workers.
    pub workers: u32,
    /// Frontends and their rules.
    pub frontends: Vec<FrontendStatus>,
    /// Backend pools and their members.
    pub pools: Vec<PoolStatus>,
    /// Inbound NAT port mappings: frontend ip:port to member ip:port, per rule.
    pub nat_mappings: Vec<NatMapping>,
    /// Scale-out: the BGP daemon's sessions and announcements; `None` without `[bgp]`.
    pub bgp: Option<BgpStatus>,
    /// True while draining (`vipmux drain` or a stop signal).
    pub draining: bool,
    /// Each interface's port: queues and how flows reach their owning worker.
    pub ports: Vec<PortStatus>,
}

/// One interface's DPDK port in [`StatusReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortStatus {
    /// Interface name.
    pub interface: String,
    /// DPDK port name.
    pub port: String,
    /// Rx queues (one per worker).
    pub rx_queues: u16,
    /// How each flow's packets reach their owner: `nic-steering` (the NIC's flow rules),
    /// `software-handoff` (worker to worker over rings) or `single-queue` (one worker).
    pub steering: String,
    /// Why the port runs that mode (e.g. the device's refusal of NIC steering).
    pub steering_note: String,
    /// Link state: `up`, `down` (not polled until it comes back), empty when not yet known.
    pub link: String,
    /// Times the link went down since start.
    pub link_downs: u64,
    /// The interface's exception TAP was deleted from outside (restart vipmux to get it back).
    pub exception_tap_missing: bool,
    /// The interface's own IPv4 address (CIDR).
    pub address: String,
    /// The interface's own IPv6 address (`address6`, CIDR); empty without one.
    pub address6: String,
    /// The IPv6 neighbours resolved on the interface (what workers use as next hops), by address.
    pub neighbours6: Vec<NeighbourStatus>,
}

/// One resolved neighbour in [`PortStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NeighbourStatus {
    /// Its address.
    pub address: String,
    /// Its MAC address.
    pub mac: String,
}

/// The BGP part of [`StatusReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BgpStatus {
    /// The daemon driven (`exabgp`).
    pub daemon: String,
    /// Whether the daemon's helper reported recently (else the daemon is not running).
    pub daemon_running: bool,
    /// Session state per configured peer (`up`, `down`, `connected`, or `unknown`).
    pub sessions: std::collections::BTreeMap<String, String>,
    /// Routes the daemon announces, `PREFIX next-hop NH`.
    pub announced: Vec<String>,
    /// Why each frontend not wanted announced is not (`no_eligible_member`, `draining`...).
    pub withdrawn: std::collections::BTreeMap<String, String>,
}

/// One inbound NAT port mapping in [`StatusReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatMapping {
    /// Inbound NAT rule name.
    pub rule: String,
    /// Frontend `ip:port`.
    pub frontend: String,
    /// Member name.
    pub member: String,
    /// Member `ip:port` the frontend port maps to.
    pub backend: String,
}

/// One frontend in [`StatusReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrontendStatus {
    /// Frontend name.
    pub name: String,
    /// Its address (the VIP).
    pub address: String,
    /// Whether the VIP is announced to the routers (scale-out); `None` when there is no BGP driver.
    pub announced: Option<bool>,
    /// Its load-balancing and inbound NAT rules.
    pub rules: Vec<RuleStatus>,
}

/// One rule in [`FrontendStatus`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleStatus {
    /// Rule name.
    pub name: String,
    /// Kind of rule: "lb", "inbound_nat" or "outbound".
    pub kind: String,
    /// "tcp", "udp" or "all".
    pub protocol: String,
    /// Frontend port (0 for HA ports).
    pub frontend_port: u16,
    /// Backend port (0 for HA ports).
    pub backend_port: u16,
    /// Backend pool name.
    pub pool: String,
    /// Members of the pool currently eligible for new flows.
    pub healthy_members: u32,
    /// Members of the pool.
    pub total_members: u32,
    /// Active flows on this rule, summed over workers.
    pub active_flows: u64,
}

/// One backend pool in [`StatusReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// Its members.
    pub members: Vec<MemberStatus>,
}

/// One pool member in [`PoolStatus`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberStatus {
    /// Member name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Eligible for new flows (probe up and admin state up).
    pub healthy: bool,
    /// Administrative state: "up" or "down".
    pub admin_state: String,
    /// Last probe result, e.g. "up", "refused", "timeout", "HTTP 503", "TLS error".
    pub last_probe: Option<String>,
    /// Seconds since the last probe.
    pub last_probe_age_secs: Option<f64>,
    /// Active flows to this member, summed over workers.
    pub active_flows: u64,
    /// SNAT ports of its outbound rule's block (0 when no outbound rule covers it).
    pub snat_ports_allocated: u64,
    /// Of those, ports in use by its outbound connections, summed over workers.
    pub snat_ports_used: u64,
}

/// Answer to `flows`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowsReport {
    /// The flows listed (at most the requested limit).
    pub flows: Vec<FlowRow>,
    /// Flows matching the filter in total, when known.
    pub total: Option<u64>,
    /// True when `flows` was cut at the limit.
    pub truncated: bool,
}

/// One flow-table entry in [`FlowsReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowRow {
    /// Frontend name.
    pub frontend: String,
    /// Rule name.
    pub rule: String,
    /// "tcp" or "udp".
    pub protocol: String,
    /// Client address and port, "ip:port".
    pub client: String,
    /// Frontend address and port, "ip:port".
    pub vip: String,
    /// Backend address and port, "ip:port".
    pub backend: String,
    /// Pool member name.
    pub member: String,
    /// TCP state ("syn", "established", "fin", ...) or "udp".
    pub state: String,
    /// Seconds since the last packet.
    pub idle_secs: u64,
    /// Packets seen on the flow.
    pub packets: u64,
    /// Bytes seen on the flow.
    pub bytes: u64,
    /// Worker owning the entry.
    pub worker: u32,
    /// An outbound SNAT translation: `client` is the member's endpoint, `vip` the frontend IP
    /// and SNAT port it leaves with, `backend` the remote endpoint, `rule` the outbound rule.
    pub outbound: bool,
}

/// Answer to `diagnose`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiagnoseReport {
    /// What the checklist found, most severe first.
    pub findings: Vec<Finding>,
    /// Names of the checks that ran.
    pub checks_run: Vec<String>,
    /// The checklist as a table: one row per check, or per subject where a check found something.
    pub checks: Vec<CheckRow>,
    /// Seconds the counter-based checks look back over (since the previous `diagnose`, or start).
    pub window_secs: f64,
}

/// One row of the `diagnose` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckRow {
    /// Check identifier, e.g. "backend_port_closed".
    pub check: String,
    /// "ok", "warn", "fail" or "n/a".
    pub status: String,
    /// What it is about ("" for the whole appliance).
    pub subject: String,
    /// What was seen (counters, probe and connect results), or why the check does not apply.
    pub evidence: String,
    /// What to change ("" when nothing).
    pub fix: String,
}

impl DiagnoseReport {
    /// Adds a row (and, for "warn" and "fail", the matching finding).
    pub fn add(&mut self, check: &str, status: &str, subject: String, evidence: String, fix: &str) {
        let severity = match status {
            "fail" => Some("error"),
            "warn" => Some("warning"),
            _ => None,
        };
        if let Some(severity) = severity {
            self.findings.push(Finding {
                severity: severity.into(),
                check: check.into(),
                subject: subject.clone(),
                seen: evidence.clone(),
                fix: fix.into(),
            });
        }
        self.checks.push(CheckRow {
            check: check.into(),
            status: status.into(),
            subject,
            evidence,
            fix: fix.into(),
        });
    }

    /// Orders the table by `order` (checks with no row get an "ok" row; an "ok" row of a check
    /// that also has other rows is dropped), sorts the findings most severe first and lists
    /// `order` as the checks run.
    pub fn finish(&mut self, order: &[&str]) {
        let mut rows = std::mem::take(&mut self.checks);
        for check in order {
            let mine: Vec<CheckRow> = rows.iter().filter(|r| r.check == *check).cloned().collect();
            rows.retain(|r| r.check != *check);
            let problems = mine
                .iter()
                .any(|r| r.status == "fail" || r.status == "warn");
            let kept: Vec<CheckRow> = mine
                .into_iter()
                .filter(|r| !problems || r.status == "fail" || r.status == "warn")
                .collect();
            if kept.is_empty() {
                self.checks.push(CheckRow {
                    check: check.to_string(),
                    status: "ok".into(),
                    ..Default::default()
                });
            }
            self.checks.extend(kept);
        }
        self.checks.extend(rows);
        self.findings.sort_by_key(|f| match f.severity.as_str() {
            "error" => 0,
            "warning" => 1,
            _ => 2,
        });
        self.checks_run = order.iter().map(|s| s.to_string()).collect();
    }
}

/// One finding of `diagnose`: what was seen and what to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Finding {
    /// "error", "warning" or "info".
    pub severity: String,
    /// Check identifier, e.g. "probe_failing", "backend_port_closed", "snat_exhausted".
    pub check: String,
    /// What it is about, e.g. "pool web member vm1" or "rule web/https".
    pub subject: String,
    /// What was seen (counters, probe results).
    pub seen: String,
    /// What to change.
    pub fix: String,
}
