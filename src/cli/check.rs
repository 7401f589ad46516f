//! `vipmux check`: validate a configuration file and print what it compiles to.
//!
//! On success the summary is compiled as if every probe were up (the running appliance starts
//! with probes unknown), and what is valid but probably not meant is printed as warnings on
//! stderr (a pool without members, a floating-IP rule whose replies would show the backend
//! port). On error every error is printed, one per line, and the exit code is 1.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::CliResult;
use crate::balance::snapshot::{OutboundInfo, PoolInfo, Rule, RuleKind, Snapshot, SnatBlock};
use crate::balance::Health;
use crate::config::Config;

/// Arguments of `vipmux check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file to validate.
    pub file: std::path::PathBuf,
}

/// Entry point of `vipmux check`.
pub fn main(args: Args) -> CliResult {
    match Config::load(&args.file) {
        Ok(config) => {
            for w in warnings(&config) {
                eprintln!("{}: warning: {w}", args.file.display());
            }
            let snap = Snapshot::compile(&config, &Health::all_up(&config));
            let workers = u16::try_from(config.dataplane.workers).unwrap_or(1);
            let origin = args.file.display().to_string();
            print!("{}", summary(&origin, &snap, workers));
            print!("{}", bgp_summary(&config));
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error{}, nothing applied",
                args.file.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// What is valid but probably not what the operator means.
pub fn warnings(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for p in c.backend_pools.iter().filter(|p| p.members.is_empty()) {
        out.push(format!(
            "backend_pools \"{}\" has no members: the rules that use it drop all their traffic",
            p.name
        ));
    }
    for r in &c.load_balancing_rules {
        match r.backend_port {
            Some(b) if r.enable_floating_ip && r.frontend_port != 0 && b != r.frontend_port => {
                out.push(format!(
                    "load_balancing_rules \"{}\": floating IP with backend_port {b} != frontend_port {}: the members' replies bypass the MUX, so the client would see port {b}; the member must answer on the frontend port",
                    r.name, r.frontend_port
                ));
            }
            _ => {}
        }
    }
    out
}

/// The human-readable summary of a compiled snapshot, SNAT blocks split over `workers`.
pub fn summary(origin: &str, s: &Snapshot, workers: u16) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{origin}: OK — appliance \"{}\", hash_seed {:#x}, missing_flow {:?}, no_healthy_backends {:?}",
        s.name, s.hash_seed, s.missing_flow, s.no_healthy_backends
    );
    for i in &s.interfaces {
        let gw = i.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        let v6 = i.address6.map(|a| {
            let gw6 = i.gateway6.map(|g| format!(" via {g}")).unwrap_or_default();
            format!(", {a}{gw6}")
        });
        let _ = writeln!(
            o,
            "interface {} on {}: {}{gw}{}, mtu {}",
            i.name,
            i.port,
            i.address,
            v6.unwrap_or_default(),
            i.mtu
        );
    }
    for p in &s.pools {
        pool_lines(&mut o, s, p);
    }
    for fe in &s.frontends {
        let _ = writeln!(o, "frontend {} {}:", fe.name, fe.addr);
        for r in fe.rules.iter().filter_map(|r| s.rule(*r)) {
            rule_lines(&mut o, s, r);
        }
    }
    for ob in &s.outbound {
        outbound_lines(&mut o, s, ob, workers);
    }
    o
}

/// The `[bgp]` lines of the summary: identity, next hop, peers, and which frontends are announced.
pub fn bgp_summary(c: &Config) -> String {
    let Some(b) = c.bgp.as_ref() else {
        return String::new();
    };
    let mut o = String::new();
    let nh = crate::bgp::decide::next_hop(c).map_or("-".into(), |n| n.to_string());
    let _ = writeln!(
        o,
        "bgp {}: AS {} router-id {} next-hop {nh}{}",
        match b.daemon {
            crate::config::BgpDaemon::Exabgp => "exabgp",
        },
        b.local_as,
        b.router_id,
        if b.communities.is_empty() {
            String::new()
        } else {
            format!(" communities {}", b.communities.join(" "))
        }
    );
    for p in &b.peers {
        let _ = writeln!(
            o,
            "  peer {} AS {} hold {} s",
            p.address, p.remote_as, p.hold_time_seconds
        );
    }
    let (on, off): (Vec<_>, Vec<_>) = c.frontends.iter().partition(|f| f.announced(Some(b)));
    let names = |v: &[&crate::config::Frontend]| {
        v.iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        o,
        "  announces: {}",
        if on.is_empty() {
            "-".into()
        } else {
            names(&on)
        }
    );
    if !off.is_empty() {
        let _ = writeln!(o, "  not announced (announce = false): {}", names(&off));
    }
    o
}

/// A pool and its members with how each is reached.
fn pool_lines(o: &mut String, s: &Snapshot, p: &PoolInfo) {
    let _ = writeln!(
        o,
        "pool {} ({} members, dsr_encapsulation {:?}):",
        p.name,
        p.members.len(),
        p.dsr_encapsulation
    );
    for m in p.members.iter().filter_map(|m| s.member(*m)) {
        let hop = match (m.on_link, m.next_hop) {
            (true, _) => "on-link".to_string(),
            (false, Some(g)) => format!("via {g}"),
            (false, None) => "no route".to_string(),
        };
        let _ = writeln!(
            o,
            "  member {} {} weight {} admin_state {:?} ({hop})",
            m.name, m.addr, m.weight, m.admin_state
        );
    }
}

/// A rule of a frontend (and, for a port range, its slots).
fn rule_lines(o: &mut String, s: &Snapshot, r: &Rule) {
    let pool = s
        .pools
        .get(r.pool.index())
        .map(|p| p.name.as_str())
        .unwrap_or("?");
    let mode = if r.floating_ip {
        format!("floating IP ({:?})", r.dsr_encapsulation)
    } else {
        "NAT".to_string()
    };
    let reset = if r.enable_tcp_reset {
        ", tcp reset"
    } else {
        ""
    };
    match r.kind {
        RuleKind::LoadBalancing => {
            let ports = if r.ha_ports {
                "HA ports (every protocol and port)".to_string()
            } else {
                format!(
                    "{} {} -> {}",
                    r.protocol.as_str(),
                    r.frontend_port,
                    r.backend_port
                )
            };
            let probe = r
                .probe
                .and_then(|p| s.probes.get(p.index()))
                .map(|p| p.name.as_str())
                .unwrap_or("none");
            let size = s.maglev(r.id).map(|t| t.size()).unwrap_or(0);
            let _ = writeln!(
                o,
                "  rule {}: {ports}, pool {pool} ({} members), probe {probe}, {:?} distribution, {mode}, idle {} s{reset}, maglev {size} entries",
                r.name,
                r.members.len(),
                r.load_distribution,
                r.idle_timeout_secs
            );
        }
        RuleKind::InboundNat => {
            let target = r
                .members
                .first()
                .and_then(|m| s.member(*m))
                .map(|m| format!("{} ({})", m.name, m.addr))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  inbound NAT {}: {} {} -> {target}:{}, {mode}, idle {} s{reset}",
                r.name,
                r.protocol.as_str(),
                r.frontend_port,
                r.backend_port,
                r.idle_timeout_secs
            );
        }
        RuleKind::InboundNatRange => {
            let _ = writeln!(
                o,
                "  inbound NAT {}: {} {}..={} -> pool {pool} port {}, {mode}, idle {} s{reset}",
                r.name,
                r.protocol.as_str(),
                r.frontend_port,
                r.frontend_port_end,
                r.backend_port,
                r.idle_timeout_secs
            );
            for (slot, m) in r.slots.iter().enumerate() {
                if let Some(m) = m.and_then(|m| s.member(m)) {
                    let _ = writeln!(
                        o,
                        "    {} -> {} ({}):{}",
                        usize::from(r.frontend_port) + slot,
                        m.name,
                        m.addr,
                        r.backend_port
                    );
                }
            }
        }
    }
}

/// An outbound rule, then each member's SNAT blocks: frontend IP, first-last port and the
/// sub-block of each of the `workers` workers (docs/design.md §6.2).
fn outbound_lines(o: &mut String, s: &Snapshot, ob: &OutboundInfo, workers: u16) {
    let fes: Vec<String> = ob.frontends.iter().map(|f| f.to_string()).collect();
    let pool = s.pools.get(ob.pool.index());
    let _ = writeln!(
        o,
        "outbound {}: pool {} ({} members) -> {} ({}), {} ports per member per frontend IP, idle {} s",
        ob.name,
        pool.map(|p| p.name.as_str()).unwrap_or("?"),
        pool.map(|p| p.members.len()).unwrap_or(0),
        fes.join(", "),
        ob.protocol.as_str(),
        ob.ports_per_member,
        ob.idle_timeout_secs
    );
    for m in pool.map(|p| p.members.as_slice()).unwrap_or_default() {
        let Some(info) = s.member(*m) else { continue };
        let blocks: Vec<String> = ob
            .blocks
            .iter()
            .filter(|b| b.member == *m)
            .map(|b| block_text(b, workers))
            .collect();
        let blocks = if blocks.is_empty() {
            "no block".to_string()
        } else {
            blocks.join("; ")
        };
        let _ = writeln!(o, "  {} {}: {blocks}", info.name, info.addr);
    }
}

/// `ADDR ports FIRST-LAST (worker 0: A-B, ...)`; one worker: no split.
fn block_text(b: &SnatBlock, workers: u16) -> String {
    let mut t = format!(
        "{} ports {}-{}",
        b.frontend_addr,
        b.first_port,
        b.last_port()
    );
    if workers > 1 {
        let split: Vec<String> = (0..workers)
            .map(|w| {
                let (first, n) = b.worker_ports(w, workers);
                let last = first.saturating_add(n.saturating_sub(1));
                format!("worker {w}: {first}-{last}")
            })
            .collect();
        let _ = write!(t, " ({})", split.join(", "));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_on_empty_pools_and_floating_port_changes() {
        let c = Config::from_str(
            r#"
[appliance]
name = "t"
[[frontends]]
name = "fe"
address = "10.0.0.9"
[[backend_pools]]
name = "empty"
members = []
[[backend_pools]]
name = "p"
dsr_encapsulation = "ipip"
members = [{ name = "a", address = "10.0.1.4" }]
[[load_balancing_rules]]
name = "r"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
backend_pool = "p"
enable_floating_ip = true
"#,
            "t",
        )
        .unwrap();
        let w = warnings(&c);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("\"empty\" has no members"), "{w:?}");
        assert!(w[1].contains("client would see port 8080"), "{w:?}");
    }

    #[test]
    fn shows_each_members_blocks_and_their_worker_split() {
        let c = Config::from_str(
            r#"
[dataplane]
workers = 2
[[frontends]]
name = "fe"
address = "10.0.0.9"
[[frontends]]
name = "fe2"
address = "10.0.0.10"
[[backend_pools]]
name = "p"
members = [{ name = "a", address = "10.0.1.4" }, { name = "b", address = "10.0.1.5" }]
[[outbound_rules]]
name = "out"
frontends = ["fe", "fe2"]
backend_pool = "p"
allocated_outbound_ports = 64
"#,
            "t",
        )
        .unwrap();
        let snap = Snapshot::compile(&c, &Health::all_up(&c));
        let text = summary("t", &snap, 2);
        assert!(
            text.contains("outbound out: pool p (2 members) -> 10.0.0.9, 10.0.0.10 (all), 64 ports per member per frontend IP, idle 240 s\n"),
            "{text}"
        );
        assert!(
            text.contains("  b 10.0.1.5: 10.0.0.9 ports 1088-1151 (worker 0: 1088-1119, worker 1: 1120-1151); 10.0.0.10 ports 1088-1151 (worker 0: 1088-1119, worker 1: 1120-1151)\n"),
            "{text}"
        );
        let one = summary("t", &snap, 1);
        assert!(
            one.contains("  a 10.0.1.4: 10.0.0.9 ports 1024-1087; 10.0.0.10 ports 1024-1087\n"),
            "{one}"
        );
    }
}
