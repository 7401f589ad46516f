//! Human-readable rendering of control-socket answers: plain aligned text tables.

use std::fmt::Write as _;

use serde_json::Value;

use super::report::{BgpStatus, DiagnoseReport, FlowsReport, PortStatus, StatusReport};

/// A text table: a header row and data rows, columns padded to their widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Append a row (missing cells print empty, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether no rows were added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, each ending with a newline.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().take(n).enumerate() {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut s = String::new();
            for (i, w) in width.iter().enumerate() {
                let cell = cells.next().unwrap_or("");
                if i + 1 == n {
                    s.push_str(cell);
                } else {
                    let _ = write!(s, "{cell:<w$}  ");
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut self.header.iter().map(String::as_str));
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str));
        }
        out
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn port(p: u16) -> String {
    if p == 0 {
        "all".into()
    } else {
        p.to_string()
    }
}

/// The BGP lines of `status`: daemon, sessions, announcements, withdrawals and why.
fn bgp_status(out: &mut String, b: &BgpStatus) {
    let sessions: Vec<String> = b.sessions.iter().map(|(p, s)| format!("{p} {s}")).collect();
    let _ = writeln!(
        out,
        "bgp: {} {}   sessions: {}",
        or_dash(&b.daemon),
        if b.daemon_running {
            "running"
        } else {
            "NOT RUNNING"
        },
        if sessions.is_empty() {
            "-".into()
        } else {
            sessions.join(", ")
        }
    );
    let announced = if b.announced.is_empty() {
        "-".into()
    } else {
        b.announced.join(", ")
    };
    let _ = writeln!(out, "bgp announced: {announced}");
    if !b.withdrawn.is_empty() {
        let w: Vec<String> = b
            .withdrawn
            .iter()
            .map(|(f, why)| format!("{f} ({why})"))
            .collect();
        let _ = writeln!(out, "bgp withdrawn: {}", w.join(", "));
    }
}

/// `status` as text: a summary line, the BGP lines, the rules table and the members table.
pub fn status(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "forwarding: {}   version: {}   uptime: {}s   workers: {}   config: {} (generation {})",
        if r.forwarding { "yes" } else { "NO" },
        or_dash(&r.version),
        r.uptime_secs,
        r.workers,
        r.config_path.as_deref().unwrap_or("-"),
        r.config_generation
    );
    for p in &r.ports {
        let _ = write!(
            out,
            "port {} ({}): {} rx queue{}, {}",
            p.interface,
            p.port,
            p.rx_queues,
            if p.rx_queues == 1 { "" } else { "s" },
            p.steering
        );
        if !p.steering_note.is_empty() && p.steering != "single-queue" {
            let _ = write!(out, " ({})", p.steering_note);
        }
        if !p.link.is_empty() {
            let _ = write!(out, ", link {} ({} down since start)", p.link, p.link_downs);
        }
        if p.exception_tap_missing {
            out.push_str(", exception TAP missing (deleted from outside: restart vipmux)");
        }
        out.push('\n');
        port_addresses(&mut out, p);
    }
    if r.draining {
        out.push_str(
            "draining: yes (VIPs withdrawn; stops once traffic stops or the deadline passes)\n",
        );
    }
    if let Some(b) = &r.bgp {
        bgp_status(&mut out, b);
    }
    let mut rules = Table::new(&[
        "FRONTEND",
        "ADDRESS",
        "ANNOUNCED",
        "RULE",
        "KIND",
        "PROTO",
        "PORT",
        "BACKEND_PORT",
        "POOL",
        "HEALTHY",
        "FLOWS",
    ]);
    for fe in &r.frontends {
        let announced = match fe.announced {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        if fe.rules.is_empty() {
            rules.row(vec![fe.name.clone(), fe.address.clone(), announced.into()]);
        }
        for rule in &fe.rules {
            rules.row(vec![
                fe.name.clone(),
                fe.address.clone(),
                announced.into(),
                rule.name.clone(),
                or_dash(&rule.kind),
                or_dash(&rule.protocol),
                port(rule.frontend_port),
                port(rule.backend_port),
                or_dash(&rule.pool),
                format!("{}/{}", rule.healthy_members, rule.total_members),
                rule.active_flows.to_string(),
            ]);
        }
    }
    if !rules.is_empty() {
        out.push('\n');
        out.push_str(&rules.render());
    }
    let members = members_table(r);
    if !members.is_empty() {
        out.push('\n');
        out.push_str(&members.render());
    }
    let mut nat = Table::new(&["NAT_RULE", "FRONTEND", "MEMBER", "BACKEND"]);
    for m in &r.nat_mappings {
        nat.row(vec![
            m.rule.clone(),
            m.frontend.clone(),
            m.member.clone(),
            m.backend.clone(),
        ]);
    }
    if !nat.is_empty() {
        out.push('\n');
        out.push_str(&nat.render());
    }
    out
}

/// A port's own addresses and IPv6 neighbours in the `status` text (nothing when unknown).
fn port_addresses(out: &mut String, p: &PortStatus) {
    if p.address.is_empty() && p.address6.is_empty() {
        return;
    }
    let both = [p.address.as_str(), p.address6.as_str()];
    let addrs: Vec<&str> = both.into_iter().filter(|a| !a.is_empty()).collect();
    let _ = write!(out, "  address {}", addrs.join(", "));
    if !p.address6.is_empty() {
        let n: Vec<String> = p
            .neighbours6
            .iter()
            .map(|n| format!("{} at {}", n.address, n.mac))
            .collect();
        let list = if n.is_empty() {
            "none".into()
        } else {
            n.join(", ")
        };
        let _ = write!(out, "; IPv6 neighbours: {list}");
    }
    out.push('\n');
}

/// The pools' members in the `status` text: health, probe, flows and SNAT ports.
fn members_table(r: &StatusReport) -> Table {
    let mut members = Table::new(&[
        "POOL",
        "MEMBER",
        "ADDRESS",
        "HEALTH",
        "ADMIN",
        "LAST_PROBE",
        "AGE",
        "FLOWS",
        "SNAT_PORTS",
    ]);
    for pool in &r.pools {
        for m in &pool.members {
            members.row(vec![
                pool.name.clone(),
                m.name.clone(),
                m.address.clone(),
                if m.healthy { "up" } else { "down" }.into(),
                or_dash(&m.admin_state),
                m.last_probe.clone().unwrap_or_else(|| "-".into()),
                m.last_probe_age_secs
                    .map(|a| format!("{a:.1}s"))
                    .unwrap_or_else(|| "-".into()),
                m.active_flows.to_string(),
                if m.snat_ports_allocated == 0 {
                    "-".into()
                } else {
                    format!("{}/{}", m.snat_ports_used, m.snat_ports_allocated)
                },
            ]);
        }
    }
    members
}

/// `flows` as a table, with a note when the list was cut.
pub fn flows(r: &FlowsReport) -> String {
    let mut t = Table::new(&[
        "FRONTEND", "RULE", "PROTO", "CLIENT", "VIP", "BACKEND", "MEMBER", "STATE", "IDLE",
        "PACKETS", "BYTES", "WORKER",
    ]);
    for f in &r.flows {
        t.row(vec![
            f.frontend.clone(),
            if f.outbound {
                format!("{} (outbound)", f.rule)
            } else {
                f.rule.clone()
            },
            f.protocol.clone(),
            f.client.clone(),
            f.vip.clone(),
            f.backend.clone(),
            or_dash(&f.member),
            or_dash(&f.state),
            format!("{}s", f.idle_secs),
            f.packets.to_string(),
            f.bytes.to_string(),
            f.worker.to_string(),
        ]);
    }
    let mut out = t.render();
    let shown = r.flows.len();
    match (r.total, r.truncated) {
        (Some(total), _) => {
            let _ = writeln!(out, "{shown} of {total} flows shown");
        }
        (None, true) => {
            let _ = writeln!(out, "{shown} flows shown (list cut at the limit)");
        }
        (None, false) => {
            let _ = writeln!(out, "{shown} flows");
        }
    }
    out
}

/// Width of the check column of the `diagnose` table.
const CHECK_WIDTH: usize = 28;

/// The `diagnose` table: check, status, subject and evidence, then the fix under each row that has
/// one; a report without table rows (an older appliance) as its list of findings.
pub fn diagnose(r: &DiagnoseReport) -> String {
    if r.checks.is_empty() {
        return diagnose_findings(r);
    }
    let mut out = String::new();
    let pad = " ".repeat(CHECK_WIDTH + 7);
    let _ = writeln!(out, "{:<CHECK_WIDTH$} {:<5} EVIDENCE", "CHECK", "STATUS");
    for row in &r.checks {
        let _ = write!(out, "{:<CHECK_WIDTH$} {:<5} ", row.check, row.status);
        match (row.subject.is_empty(), row.evidence.is_empty()) {
            (true, _) => {
                let _ = writeln!(out, "{}", row.evidence);
            }
            (false, true) => {
                let _ = writeln!(out, "{}", row.subject);
            }
            (false, false) => {
                let _ = writeln!(out, "{}: {}", row.subject, row.evidence);
            }
        }
        if !row.fix.is_empty() {
            let _ = writeln!(out, "{pad}fix: {}", row.fix);
        }
    }
    let count = |s: &str| r.checks.iter().filter(|c| c.status == s).count();
    let _ = writeln!(
        out,
        "{} fail, {} warn, {} ok, {} n/a (counters over the last {:.0}s)",
        count("fail"),
        count("warn"),
        count("ok"),
        count("n/a"),
        r.window_secs
    );
    out
}

/// `diagnose` findings as a list: severity, check and subject, then what was seen and what to change.
fn diagnose_findings(r: &DiagnoseReport) -> String {
    let mut out = String::new();
    if r.findings.is_empty() {
        let _ = writeln!(out, "no problems found ({} checks run)", r.checks_run.len());
        return out;
    }
    for f in &r.findings {
        let _ = writeln!(
            out,
            "[{}] {}: {}",
            f.severity.to_uppercase(),
            f.check,
            f.subject
        );
        if !f.seen.is_empty() {
            let _ = writeln!(out, "    seen: {}", f.seen);
        }
        if !f.fix.is_empty() {
            let _ = writeln!(out, "    fix:  {}", f.fix);
        }
    }
    let errors = r.findings.iter().filter(|f| f.severity == "error").count();
    let _ = writeln!(out, "{} findings ({} errors)", r.findings.len(), errors);
    out
}

/// Parse `data` as `T` and render it with `f`, or fall back to pretty JSON if it has another shape.
pub fn typed_or_json<T: serde::de::DeserializeOwned>(data: &Value, f: fn(&T) -> String) -> String {
    match serde_json::from_value::<T>(data.clone()) {
        Ok(t) => f(&t),
        Err(_) => pretty_json(data),
    }
}

/// `data` as indented JSON with a trailing newline.
pub fn pretty_json(data: &Value) -> String {
    let mut s = serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::report::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        t.row(vec!["b".into()]);
        assert_eq!(t.render(), "A          LONGER\nwide cell  x\nb\n");
    }

    #[test]
    fn status_shows_each_ports_steering() {
        let r = StatusReport {
            ports: vec![PortStatus {
                interface: "dc".into(),
                port: "net_memif0".into(),
                rx_queues: 2,
                steering: "software-handoff".into(),
                steering_note:
                    "the device cannot hash on the source or the destination endpoint alone".into(),
                link: "down".into(),
                link_downs: 3,
                exception_tap_missing: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(
            status(&r).contains(
                "port dc (net_memif0): 2 rx queues, software-handoff (the device cannot hash on the source or the destination endpoint alone), link down (3 down since start), exception TAP missing"
            ),
            "{}",
            status(&r)
        );
    }

    #[test]
    fn status_shows_each_ports_addresses_and_ipv6_neighbours() {
        let port = |address6: &str, neighbours6| PortStatus {
            interface: "dc".into(),
            address: "10.1.0.2/24".into(),
            address6: address6.into(),
            neighbours6,
            ..Default::default()
        };
        let n = NeighbourStatus {
            address: "2001:db8:1::11".into(),
            mac: "02:00:00:00:00:11".into(),
        };
        let r = StatusReport {
            ports: vec![port("2001:db8:1::2/64", vec![n]), port("", vec![])],
            ..Default::default()
        };
        let text = status(&r);
        assert!(
            text.contains("  address 10.1.0.2/24, 2001:db8:1::2/64; IPv6 neighbours: 2001:db8:1::11 at 02:00:00:00:00:11\n"),
            "{text}"
        );
        assert!(text.contains("  address 10.1.0.2/24\n"), "{text}");
    }

    #[test]
    fn status_shows_bgp_and_draining() {
        let r = StatusReport {
            draining: true,
            bgp: Some(BgpStatus {
                daemon: "exabgp".into(),
                daemon_running: true,
                sessions: [("10.1.0.1".to_string(), "up".to_string())].into(),
                announced: vec!["10.9.0.1/32 next-hop 10.1.0.2".into()],
                withdrawn: [("quiet".to_string(), "opted_out".to_string())].into(),
            }),
            ..Default::default()
        };
        let s = status(&r);
        assert!(s.contains("draining: yes"), "{s}");
        assert!(
            s.contains("bgp: exabgp running   sessions: 10.1.0.1 up"),
            "{s}"
        );
        assert!(
            s.contains("bgp announced: 10.9.0.1/32 next-hop 10.1.0.2"),
            "{s}"
        );
        assert!(s.contains("bgp withdrawn: quiet (opted_out)"), "{s}");
        let stopped = StatusReport {
            bgp: Some(BgpStatus::default()),
            ..Default::default()
        };
        assert!(status(&stopped).contains("NOT RUNNING"));
    }

    #[test]
    fn status_shows_rules_and_members() {
        let r = StatusReport {
            forwarding: true,
            version: "0.1.0".into(),
            workers: 2,
            config_generation: 1,
            frontends: vec![FrontendStatus {
                name: "web".into(),
                address: "10.0.0.10".into(),
                announced: None,
                rules: vec![RuleStatus {
                    name: "https".into(),
                    kind: "lb".into(),
                    protocol: "tcp".into(),
                    frontend_port: 443,
                    backend_port: 8443,
                    pool: "be".into(),
                    healthy_members: 1,
                    total_members: 2,
                    active_flows: 7,
                }],
            }],
            pools: vec![PoolStatus {
                name: "be".into(),
                members: vec![MemberStatus {
                    name: "vm1".into(),
                    address: "10.1.0.4".into(),
                    healthy: false,
                    admin_state: "up".into(),
                    last_probe: Some("HTTP 503".into()),
                    last_probe_age_secs: Some(1.5),
                    active_flows: 3,
                    snat_ports_allocated: 1024,
                    snat_ports_used: 17,
                }],
            }],
            nat_mappings: vec![NatMapping {
                rule: "ssh".into(),
                frontend: "10.0.0.10:50100".into(),
                member: "vm1".into(),
                backend: "10.1.0.4:22".into(),
            }],
            ..Default::default()
        };
        let s = status(&r);
        assert!(
            s.contains("10.0.0.10:50100") && s.contains("10.1.0.4:22"),
            "{s}"
        );
        assert!(s.starts_with("forwarding: yes"));
        assert!(s.contains("https"), "{s}");
        assert!(s.contains("8443") && s.contains("1/2"), "{s}");
        assert!(s.contains("HTTP 503") && s.contains("1.5s"), "{s}");
        assert!(s.contains("SNAT_PORTS") && s.contains("17/1024"), "{s}");
    }

    #[test]
    fn status_aligns_ipv6_addresses() {
        let fe = |name: &str, address: &str| FrontendStatus {
            name: name.into(),
            address: address.into(),
            announced: None,
            rules: vec![RuleStatus {
                name: format!("r-{name}"),
                kind: "lb".into(),
                protocol: "tcp".into(),
                frontend_port: 80,
                backend_port: 8080,
                pool: "p".into(),
                healthy_members: 1,
                total_members: 1,
                active_flows: 0,
            }],
        };
        let r = StatusReport {
            forwarding: true,
            frontends: vec![
                fe("fe4", "10.0.0.10"),
                fe("fe6", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:100"),
            ],
            nat_mappings: vec![NatMapping {
                rule: "ssh6".into(),
                frontend: "[2001:db8::100]:50100".into(),
                member: "vm1".into(),
                backend: "[2001:db8::11]:22".into(),
            }],
            ..Default::default()
        };
        let s = status(&r);
        assert!(
            s.contains("[2001:db8::100]:50100") && s.contains("[2001:db8::11]:22"),
            "{s}"
        );
        let col = |needle: &str| {
            let line = s.lines().find(|l| l.contains(needle)).unwrap();
            line.find(needle).unwrap()
        };
        assert!(s.contains("2001:db8:aaaa:bbbb:cccc:dddd:eeee:100"), "{s}");
        assert_eq!(col("r-fe4"), col("r-fe6"), "{s}");
    }

    #[test]
    fn flows_and_diagnose_render() {
        let r = FlowsReport {
            flows: vec![
                FlowRow {
                    client: "1.2.3.4:5555".into(),
                    ..Default::default()
                },
                FlowRow {
                    rule: "egress".into(),
                    outbound: true,
                    ..Default::default()
                },
            ],
            total: Some(10),
            truncated: true,
        };
        let s = flows(&r);
        assert!(
            s.contains("1.2.3.4:5555") && s.ends_with("2 of 10 flows shown\n"),
            "{s}"
        );
        assert!(s.contains("egress (outbound)"), "{s}");
        let d = DiagnoseReport {
            findings: vec![Finding {
                severity: "error".into(),
                check: "backend_port_closed".into(),
                subject: "rule web/sql".into(),
                seen: "nothing listens on 1443".into(),
                fix: "set backend_port = 1433".into(),
            }],
            ..Default::default()
        };
        let s = diagnose(&d);
        assert!(
            s.starts_with("[ERROR] backend_port_closed: rule web/sql\n"),
            "{s}"
        );
        assert!(s.contains("fix:  set backend_port = 1433"));
        assert!(diagnose(&DiagnoseReport::default()).starts_with("no problems found"));
    }

    #[test]
    fn diagnose_table_has_every_status() {
        let mut d = DiagnoseReport::default();
        d.add(
            "probe_failing",
            "fail",
            "probe p member vm1".into(),
            "refused".into(),
            "start it",
        );
        d.add(
            "snat_exhausted",
            "n/a",
            String::new(),
            "not built".into(),
            "",
        );
        d.finish(&["probe_failing", "backend_port_closed", "snat_exhausted"]);
        d.window_secs = 12.0;
        let s = diagnose(&d);
        let lines: Vec<&str> = s.lines().collect();
        assert!(
            lines[0].starts_with("CHECK") && lines[0].ends_with("STATUS EVIDENCE"),
            "{s}"
        );
        assert!(
            lines[1].starts_with("probe_failing")
                && lines[1].contains(" fail  probe p member vm1: refused"),
            "{s}"
        );
        assert!(lines[2].trim_start().starts_with("fix: start it"), "{s}");
        assert!(
            lines[3].starts_with("backend_port_closed") && lines[3].contains(" ok "),
            "{s}"
        );
        assert!(lines[4].contains(" n/a   not built"), "{s}");
        assert_eq!(
            lines[5],
            "1 fail, 0 warn, 1 ok, 1 n/a (counters over the last 12s)"
        );
        assert_eq!(d.findings.len(), 1);
        assert_eq!(d.findings[0].severity, "error");
        assert_eq!(d.checks_run.len(), 3);
    }

    #[test]
    fn unexpected_shapes_fall_back_to_json() {
        let v = serde_json::json!({"flows": "not a list"});
        assert_eq!(typed_or_json(&v, flows), pretty_json(&v));
    }
}
