//! `diagnose`: the "traffic through the load balancer does not work" checklist, from live state
//! (probe results, a connect to each rule's backend port, the configuration, the data path's
//! counters). Each check adds rows to the report: ok, warn, fail or n/a, with its evidence and
//! the fix in one line. Counter-based checks look at what changed since the previous `diagnose`
//! (or since start), so a fixed fault clears at the next call that sees new traffic.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::balance::snapshot::ProbeId;
use crate::balance::{Rule, Snapshot};
use crate::config::{AdminState, Protocol};
use crate::control::report::DiagnoseReport;
use crate::dataplane::{DropReason, WorkerCounters};
use crate::runtime::slowpath::setup::probe_source;
use crate::slowpath::probe::{tcp_reachability, HealthState, ProbeReason, TargetStatus};

mod snat;

pub use snat::{by_destination, ports_by_destination, Destination, SnatListing, TOP_DESTINATIONS};

/// Every check, in the order of the table.
pub const CHECKS: [&str; 14] = [
    "probe_failing",
    "backend_port_closed",
    "rule_all_members_down",
    "member_admin_down",
    "nat_replies_missing",
    "floating_ip_no_answer",
    "idle_timeout_without_reset",
    "fragments_dropped",
    "oversize_dropped",
    "snat_exhausted",
    "bgp_daemon_not_running",
    "bgp_session_down",
    "vip_not_announced",
    "exception_tap_missing",
];

/// SYNs forwarded to a member without any answer before the member is reported.
pub const MIN_UNANSWERED_SYNS: u64 = 2;

/// How long a backend-port connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Most backend ports connected to by one `diagnose`.
const MAX_CONNECTS: usize = 256;

/// The counters as of the previous `diagnose`: the counter-based checks look at the difference.
#[derive(Debug, Default)]
pub struct Baseline(Mutex<Option<(Instant, WorkerCounters)>>);

impl Baseline {
    /// What changed since the previous call (or since `started`), and over how long; `now`
    /// becomes the new baseline.
    fn since(&self, now: WorkerCounters, started: Instant) -> (WorkerCounters, Duration) {
        let mut guard = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (at, then) = guard.take().unwrap_or((started, WorkerCounters::default()));
        let delta = difference(&now, &then);
        *guard = Some((Instant::now(), now));
        (delta, at.elapsed())
    }
}

/// `now - then` for the counters the checks read (drops, members, per-rule idle counters).
fn difference(now: &WorkerCounters, then: &WorkerCounters) -> WorkerCounters {
    let mut d = now.clone();
    for (a, b) in d.drops.iter_mut().zip(then.drops.iter()) {
        *a = a.saturating_sub(*b);
    }
    for (a, b) in d.members.iter_mut().zip(then.members.iter()) {
        a.packets = a.packets.saturating_sub(b.packets);
        a.syns = a.syns.saturating_sub(b.syns);
        a.replies = a.replies.saturating_sub(b.replies);
    }
    for (a, b) in d.rule_idle.iter_mut().zip(then.rule_idle.iter()) {
        a.expired = a.expired.saturating_sub(b.expired);
        a.late_packets = a.late_packets.saturating_sub(b.late_packets);
    }
    for (a, b) in d.snat.iter_mut().zip(then.snat.iter()) {
        a.exhausted = a.exhausted.saturating_sub(b.exhausted);
    }
    d
}

/// The checks that do not need the BGP state (`super::bgp::diagnose` adds those) over the
/// snapshot, the latest probe results (probe name, status) and the counters, whose difference
/// since the previous call (or since `started`) the counter-based checks read; `translations`
/// lists the workers' SNAT translations (called only when a member ran out of ports).
pub fn run(
    snap: &Snapshot,
    probes: &[(String, TargetStatus)],
    baseline: &Baseline,
    counters: WorkerCounters,
    started: Instant,
    translations: &dyn Fn() -> SnatListing,
) -> DiagnoseReport {
    let (delta, window) = baseline.since(counters, started);
    let mut report = DiagnoseReport {
        window_secs: window.as_secs_f64(),
        ..Default::default()
    };
    let ports = backend_ports(snap);
    probe_checks(&mut report, snap, probes, &ports);
    backend_port_check(&mut report, snap, probes, &ports);
    member_checks(&mut report, snap, &delta);
    reply_checks(&mut report, snap, &delta, window);
    idle_check(&mut report, snap, &delta, window);
    drop_checks(&mut report, &delta, window);
    snat::snat_check(&mut report, snap, &delta, window, translations);
    report
}

/// The probe's port of `rule`, if it has a probe.
fn probe_port(snap: &Snapshot, rule: &Rule) -> Option<u16> {
    rule.probe
        .and_then(|p| snap.probes.get(p.index()))
        .map(|p| p.port)
}

/// Whether `rule` carries TCP to a fixed backend port the appliance can connect to (floating-IP
/// members listen on the VIP, not on their own address; HA ports have no one port).
fn connectable(rule: &Rule) -> bool {
    !rule.floating_ip && !rule.ha_ports && rule.backend_port != 0 && rule.protocol != Protocol::Udp
}

/// Connects to each (member, backend port) of the TCP rules whose probe watches another port
/// (or that have none): what listens there, by (address, port).
fn backend_ports(snap: &Snapshot) -> HashMap<(IpAddr, u16), ProbeReason> {
    let mut wanted: BTreeMap<(IpAddr, u16), Option<IpAddr>> = BTreeMap::new();
    for r in snap.rules.iter().filter(|r| connectable(r)) {
        if probe_port(snap, r) == Some(r.backend_port) {
            continue;
        }
        let members = r.members.iter().filter_map(|m| snap.member(*m));
        for m in members.filter(|m| m.admin_state != AdminState::Down) {
            if wanted.len() < MAX_CONNECTS {
                wanted.insert((m.addr, r.backend_port), probe_source(snap, m));
            }
        }
    }
    let targets: Vec<(IpAddr, u16, Option<IpAddr>)> =
        wanted.iter().map(|(&(a, p), &s)| (a, p, s)).collect();
    let results = tcp_reachability(&targets, CONNECT_TIMEOUT);
    targets
        .into_iter()
        .zip(results)
        .map(|((a, p, _), r)| ((a, p), r))
        .collect()
}

/// "open" or the connect's failure.
fn port_state(r: &ProbeReason) -> String {
    if r.is_success() {
        "open".into()
    } else {
        r.to_string()
    }
}

/// The name of the member with address `addr` ("" if none).
fn member_name(snap: &Snapshot, addr: IpAddr) -> String {
    snap.members
        .iter()
        .find(|m| m.addr == addr)
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

/// Rules using the probe named `name`.
fn rules_of_probe<'s>(snap: &'s Snapshot, name: &str) -> Vec<&'s Rule> {
    let id = snap
        .probes
        .iter()
        .position(|p| p.name == name)
        .map(|i| ProbeId(i as u32));
    snap.rules
        .iter()
        .filter(|r| id.is_some() && r.probe == id)
        .collect()
}

/// The fix for a failing probe of `s`; `serving` is a backend port of the member's rules that
/// accepts connections while the probe's port does not.
fn probe_fix(s: &TargetStatus, serving: Option<u16>) -> String {
    let (addr, port) = (s.addr, s.spec.port);
    match (&s.last_reason, serving) {
        (Some(ProbeReason::Refused), Some(bp)) => format!("the service listens on port {bp} but the probe watches {port}: set the probe's port to {bp} or serve the probe on {port}"),
        (Some(ProbeReason::Refused), None) => format!("nothing listens on {addr}:{port}: start the service or fix the probe port"),
        (Some(ProbeReason::Timeout), _) => format!("no answer from {addr}:{port} within the probe timeout: let the appliance's address through the member's firewall and check that the service is not hung"),
        (Some(ProbeReason::HttpStatus(code)), _) => format!("the health endpoint {} answers HTTP {code}: it must answer 200", s.spec.request_path),
        (Some(ProbeReason::TlsError(_)), _) => "the TLS handshake fails: check the member's certificate setup and protocol versions".into(),
        _ => "check the member and the probe settings".into(),
    }
}

/// Check 1: failing probes, why, and what listens on the rules' backend ports of that member.
fn probe_checks(
    report: &mut DiagnoseReport,
    snap: &Snapshot,
    probes: &[(String, TargetStatus)],
    ports: &HashMap<(IpAddr, u16), ProbeReason>,
) {
    let mut up = 0;
    for (probe, s) in probes {
        let failed = s.last_reason.as_ref().is_some_and(|r| !r.is_success());
        if s.state != HealthState::Down && !failed {
            up += usize::from(s.state == HealthState::Up);
            continue;
        }
        let reason = s
            .last_reason
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let mut evidence = format!(
            "port {}: state {}, last result {reason}, {} consecutive",
            s.spec.port, s.state, s.consecutive
        );
        let mut serving_port = None;
        for r in rules_of_probe(snap, probe) {
            if let Some(res) = ports.get(&(s.addr, r.backend_port)) {
                evidence.push_str(&format!(
                    "; rule {} backend port {}: {}",
                    r.name,
                    r.backend_port,
                    port_state(res)
                ));
                if res.is_success() {
                    serving_port = Some(r.backend_port);
                }
            }
        }
        let fix = probe_fix(s, serving_port);
        let status = if s.state == HealthState::Down {
            "fail"
        } else {
            "warn"
        };
        let subject = format!(
            "probe {probe} member {} ({})",
            member_name(snap, s.addr),
            s.addr
        );
        report.add("probe_failing", status, subject, evidence, &fix);
    }
    report.add(
        "probe_failing",
        "ok",
        String::new(),
        format!("{up} of {} probe targets up", probes.len()),
        "",
    );
}

/// Check 2: a rule's backend port with nothing listening while its probe answers (or without a
/// probe).
fn backend_port_check(
    report: &mut DiagnoseReport,
    snap: &Snapshot,
    probes: &[(String, TargetStatus)],
    ports: &HashMap<(IpAddr, u16), ProbeReason>,
) {
    let state: HashMap<(&str, IpAddr), HealthState> = probes
        .iter()
        .map(|(p, s)| ((p.as_str(), s.addr), s.state))
        .collect();
    let mut open = 0;
    for r in snap.rules.iter().filter(|r| connectable(r)) {
        let probe = r.probe.and_then(|p| snap.probes.get(p.index()));
        for m in r.members.iter().filter_map(|m| snap.member(*m)) {
            let Some(res) = ports.get(&(m.addr, r.backend_port)) else {
                continue;
            };
            if res.is_success() {
                open += 1;
                continue;
            }
            let seen = match probe {
                Some(p) if state.get(&(p.name.as_str(), m.addr)) == Some(&HealthState::Up) => {
                    format!("probe {} on port {} answers", p.name, p.port)
                }
                Some(_) => continue, // the probe fails too: probe_failing names it
                None => "no probe".into(),
            };
            report.add(
                "backend_port_closed",
                "fail",
                format!("rule {} member {} ({})", r.name, m.name, m.addr),
                format!("{seen}, but {}:{}: {}", m.addr, r.backend_port, port_state(res)),
                &format!("start the service on port {} of the member, or set the rule's backend_port to the port it listens on (and probe that port)", r.backend_port),
            );
        }
    }
    report.add(
        "backend_port_closed",
        "ok",
        String::new(),
        format!(
            "{open} backend ports checked open (rules whose probe watches another port, or none)"
        ),
        "",
    );
}

/// Check 3 (rules without eligible members) and check 8 (members administratively down).
fn member_checks(report: &mut DiagnoseReport, snap: &Snapshot, delta: &WorkerCounters) {
    for r in snap
        .rules
        .iter()
        .filter(|r| r.all_down && !r.members.is_empty())
    {
        report.add(
            "rule_all_members_down",
            "fail",
            format!("rule {}", r.name),
            format!("none of {} members is eligible; new flows are dropped (no_healthy_backend {} recently)", r.members.len(), delta.drop_count(DropReason::NoHealthyBackend)),
            "bring a member up (probe or admin_state), or set no_healthy_backends = \"all\"",
        );
    }
    for m in snap
        .members
        .iter()
        .filter(|m| m.admin_state == AdminState::Down)
    {
        let pool = snap
            .pools
            .get(m.pool.index())
            .map(|p| p.name.as_str())
            .unwrap_or("");
        report.add(
            "member_admin_down",
            "warn",
            format!("pool {pool} member {} ({})", m.name, m.addr),
            "admin_state = \"down\" in the configuration: no new flows whatever its probe says"
                .into(),
            "remove admin_state (the probe decides) or set it to \"up\", then `vipmux reload`",
        );
    }
}

/// Members used only by NAT-mode rules (`false`) or only by floating-IP rules (`true`); members
/// used by both kinds are left out (their counters mix the two).
fn member_modes(snap: &Snapshot) -> BTreeMap<usize, bool> {
    let mut modes: BTreeMap<usize, Option<bool>> = BTreeMap::new();
    for r in &snap.rules {
        for m in &r.members {
            let e = modes.entry(m.index()).or_insert(Some(r.floating_ip));
            if *e != Some(r.floating_ip) {
                *e = None;
            }
        }
    }
    modes
        .into_iter()
        .filter_map(|(i, m)| m.map(|f| (i, f)))
        .collect()
}

/// Checks 3 and 4: SYNs forwarded to a member and nothing back — no reply through the MUX (NAT
/// mode), or no client ACK after them (floating IP: the member never answered for the VIP).
fn reply_checks(
    report: &mut DiagnoseReport,
    snap: &Snapshot,
    delta: &WorkerCounters,
    window: Duration,
) {
    let secs = window.as_secs();
    for (i, floating) in member_modes(snap) {
        let (Some(m), Some(c)) = (snap.members.get(i), delta.members.get(i)) else {
            continue;
        };
        if c.syns < MIN_UNANSWERED_SYNS {
            continue;
        }
        let subject = format!("member {} ({})", m.name, m.addr);
        if !floating && c.replies == 0 {
            report.add(
                "nat_replies_missing",
                "fail",
                subject,
                format!("{} packets ({} SYNs) forwarded in the last {secs}s, no reply came back through the MUX", c.packets, c.syns),
                "in NAT mode replies must return through the MUX: make the member's default route (or its route to the clients) point at the MUX, or use floating IP",
            );
        } else if floating && c.packets == c.syns {
            report.add(
                "floating_ip_no_answer",
                "fail",
                subject,
                format!("{} SYNs for the VIP forwarded in the last {secs}s and no client ever got past the handshake (no ACK followed)", c.syns),
                "configure the VIP on the member (e.g. `ip addr add VIP/32 dev lo`, arp_ignore=1, arp_announce=2) and have the service listen on it, or turn floating IP off",
            );
        }
    }
    let window_note = format!("members with SYNs in the last {secs}s all answered");
    report.add(
        "nat_replies_missing",
        "ok",
        String::new(),
        window_note.clone(),
        "",
    );
    report.add(
        "floating_ip_no_answer",
        "ok",
        String::new(),
        window_note,
        "",
    );
}

/// Check 5: flows of rules without `enable_tcp_reset` expired idle, and their later packets
/// were dropped (the clients did not know).
fn idle_check(
    report: &mut DiagnoseReport,
    snap: &Snapshot,
    delta: &WorkerCounters,
    window: Duration,
) {
    for r in &snap.rules {
        let Some(c) = delta.rule_idle.get(r.id.index()) else {
            continue;
        };
        if r.enable_tcp_reset || c.late_packets == 0 {
            continue;
        }
        report.add(
            "idle_timeout_without_reset",
            "warn",
            format!("rule {}", r.name),
            format!("{} flows expired after {} s idle and {} later packets of them were dropped in the last {}s", c.expired, r.idle_timeout_secs, c.late_packets, window.as_secs()),
            "set enable_tcp_reset = true so both ends learn at once, raise idle_timeout_minutes, or use TCP keepalives shorter than the idle timeout",
        );
    }
}

/// Check 6: fragments and packets over the egress MTU dropped.
fn drop_checks(report: &mut DiagnoseReport, delta: &WorkerCounters, window: Duration) {
    let checks = [
        (
            DropReason::Fragment,
            "fragments_dropped",
            "IP fragments dropped",
            "vipmux (like Azure LB) forwards no fragments: lower the sender's packet size (UDP payload <= 1472 bytes at MTU 1500) or enable path MTU discovery",
        ),
        (
            DropReason::TooBig,
            "oversize_dropped",
            "packets larger than the egress MTU dropped",
            "send smaller packets (UDP payload <= 1472 bytes at MTU 1500, less with encapsulation)",
        ),
    ];
    for (reason, check, what, fix) in checks {
        let n = delta.drop_count(reason);
        if n > 0 {
            let seen = format!("{n} {what} in the last {}s", window.as_secs());
            report.add(check, "warn", "data path".into(), seen, fix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Health;
    use crate::config::Config;

    const CONFIG: &str = r#"
[[interfaces]]
name = "dc"
port = "p0"
address = "10.1.0.2/24"

[[frontends]]
name = "fe"
address = "10.1.0.100"

[[backend_pools]]
name = "nat"
members = [{ name = "n1", address = "10.1.0.11" }, { name = "n2", address = "10.1.0.12", admin_state = "down" }]

[[backend_pools]]
name = "dsr"
members = [{ name = "d1", address = "10.1.0.21" }]

[[probes]]
name = "p"
protocol = "tcp"
port = 80

[[load_balancing_rules]]
name = "web"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_pool = "nat"
probe = "p"
idle_timeout_seconds = 30

[[load_balancing_rules]]
name = "float"
frontend = "fe"
protocol = "tcp"
frontend_port = 81
backend_pool = "dsr"
enable_floating_ip = true
enable_tcp_reset = true
"#;

    fn snapshot() -> Snapshot {
        let c = Config::from_str(CONFIG, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        Snapshot::compile(&c, &Health::all_up(&c))
    }

    /// The `snat_exhausted` findings of `r`.
    fn snat_findings(r: &DiagnoseReport) -> Vec<&crate::control::report::Finding> {
        r.findings
            .iter()
            .filter(|f| f.check == "snat_exhausted")
            .collect()
    }

    #[test]
    fn a_member_out_of_snat_ports_is_named_until_it_stops() {
        let text = format!(
            "{CONFIG}\n[[outbound_rules]]\nname = \"egress\"\nfrontends = [\"fe\"]\nbackend_pool = \"nat\"\nallocated_outbound_ports = 16\n"
        );
        let c = Config::from_str(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let snap = Snapshot::compile(&c, &Health::all_up(&c));
        let mut counters = WorkerCounters::default();
        counters.ensure(snap.rules.len(), snap.members.len());
        counters.snat[0].exhausted = 3;
        counters.snat[0].ports_taken = 16;
        let baseline = Baseline::default();
        let block = snap.outbound[0].blocks[0];
        let r = run(
            &snap,
            &[],
            &baseline,
            counters.clone(),
            Instant::now(),
            &|| SnatListing {
                v4: snat::tests::translations(block.first_port),
                v6: Vec::new(),
            },
        );
        let f = snat_findings(&r);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].subject.contains("n1") && f[0].subject.contains("egress"),
            "{f:?}"
        );
        assert!(
            f[0].seen.starts_with("3 new outbound") && f[0].seen.contains("16 of 16"),
            "{f:?}"
        );
        assert!(
            f[0].seen.ends_with(
                "by destination: 192.0.2.1:443 tcp 3, 192.0.2.1:80 tcp 1, 198.51.100.7 udp 1)"
            ),
            "{f:?}"
        );
        // Nothing more since: the finding clears.
        let r = run(
            &snap,
            &[],
            &baseline,
            counters,
            Instant::now(),
            &SnatListing::default,
        );
        assert!(r.findings.iter().all(|f| f.check != "snat_exhausted"));
    }

    #[test]
    fn an_ipv6_member_out_of_snat_ports_is_named_with_its_destinations() {
        let text = "[[interfaces]]\nname = \"dc\"\nport = \"p0\"\naddress = \"10.1.0.2/24\"\naddress6 = \"fd00:1::2/64\"\n\n\
            [[frontends]]\nname = \"fe6\"\naddress = \"fd00:1::100\"\n\n\
            [[backend_pools]]\nname = \"p6\"\nmembers = [{ name = \"v1\", address = \"fd00:1::11\" }]\n\n\
            [[outbound_rules]]\nname = \"egress6\"\nfrontends = [\"fe6\"]\nbackend_pool = \"p6\"\nallocated_outbound_ports = 16\n";
        let c = Config::from_str(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let snap = Snapshot::compile(&c, &Health::all_up(&c));
        let mut counters = WorkerCounters::default();
        counters.ensure(snap.rules.len(), snap.members.len());
        counters.snat[0].exhausted = 2;
        let first = snap.outbound[0].blocks[0].first_port;
        let addr = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
        let t = |port: u16, remote_port: u16| crate::flow::Translation::<u128> {
            member: addr("fd00:1::11"),
            member_port: 40000 + port,
            remote: addr("2001:db8::7"),
            remote_port,
            proto: 6,
            frontend: addr("fd00:1::100"),
            snat_port: first + port,
            ..Default::default()
        };
        let listing = SnatListing {
            v4: Vec::new(),
            v6: vec![t(0, 443), t(1, 443), t(2, 80)],
        };
        let r = run(
            &snap,
            &[],
            &Baseline::default(),
            counters,
            Instant::now(),
            &|| listing.clone(),
        );
        let f = snat_findings(&r);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].subject.contains("v1"), "{f:?}");
        assert!(
            f[0].seen
                .ends_with("by destination: [2001:db8::7]:443 tcp 2, [2001:db8::7]:80 tcp 1)"),
            "{f:?}"
        );
    }

    fn rows<'r>(r: &'r DiagnoseReport, check: &str) -> Vec<&'r crate::control::report::CheckRow> {
        r.checks.iter().filter(|c| c.check == check).collect()
    }

    #[test]
    fn unanswered_syns_admin_state_idle_and_drops_are_named() {
        let snap = snapshot();
        let id = |name: &str| snap.members.iter().position(|m| m.name == name).unwrap();
        let mut c = WorkerCounters::default();
        c.ensure(snap.rules.len(), snap.members.len());
        c.members[id("n1")].syns = 3;
        c.members[id("n1")].packets = 3;
        c.members[id("d1")].syns = 2;
        c.members[id("d1")].packets = 2;
        c.rule_idle[0].expired = 4;
        c.rule_idle[0].late_packets = 5;
        c.rule_idle[1].late_packets = 5; // resets enabled: not a finding
        c.count_drop(DropReason::Fragment);
        let baseline = Baseline::default();
        let mut r = run(
            &snap,
            &[],
            &baseline,
            c.clone(),
            Instant::now(),
            &SnatListing::default,
        );
        r.finish(&CHECKS);
        let names = |r: &DiagnoseReport| -> Vec<(String, String)> {
            r.findings
                .iter()
                .map(|f| (f.check.clone(), f.subject.clone()))
                .collect()
        };
        let found = names(&r);
        for (check, subject) in [
            ("nat_replies_missing", "member n1"),
            ("floating_ip_no_answer", "member d1"),
            ("member_admin_down", "member n2"),
            ("idle_timeout_without_reset", "rule web"),
            ("fragments_dropped", "data path"),
        ] {
            assert!(
                found.iter().any(|(c, s)| c == check && s.contains(subject)),
                "{check} {subject}: {found:?}"
            );
        }
        assert_eq!(found.len(), 5, "{found:?}");
        assert_eq!(rows(&r, "snat_exhausted")[0].status, "n/a");
        assert_eq!(rows(&r, "probe_failing")[0].status, "ok");
        // The next call looks only at what changed since: replies and ACKs came, nothing else.
        c.members[id("n1")].replies = 1;
        c.members[id("d1")].syns = 4;
        c.members[id("d1")].packets = 5;
        let mut r = run(
            &snap,
            &[],
            &baseline,
            c,
            Instant::now(),
            &SnatListing::default,
        );
        r.finish(&CHECKS);
        let found = names(&r);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "member_admin_down");
        assert_eq!(r.checks.len(), CHECKS.len());
    }
}
