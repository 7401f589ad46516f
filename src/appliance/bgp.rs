//! The appliance's side of scale-out: answering the BGP helper with the routes to announce,
//! the BGP part of `status` and metrics, and draining (withdraw, wait for traffic to stop, stop).
//!
//! The decision itself is [`crate::bgp::decide`](mod@crate::bgp::decide); this room gathers its inputs from the hub.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::bgp::decide::{decisions, wanted, Readiness, VipDecision};
use crate::bgp::{AnnounceVerdict, BgpReport};
use crate::control::report::{BgpStatus, DiagnoseReport, StatusReport};
use crate::control::{Encoder, MetricType};
use crate::platform::signal;
use crate::runtime::Shared;

/// A helper report older than this means the daemon (or its helper) is not running.
pub const HELPER_STALE_AFTER: Duration = Duration::from_secs(2);
/// Traffic counts as stopped once no packet reached a rule for this long.
pub const QUIET_PERIOD: Duration = Duration::from_secs(1);
/// Longest drain accepted (a longer request is shortened to this).
pub const MAX_DRAIN_DEADLINE: Duration = Duration::from_secs(24 * 3600);
/// Deadline of the drain a stop signal starts.
pub const SIGNAL_DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// How often the drain thread looks at the counters and the helper's report.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// The MUX-wide inputs of the announce decision (the first probe round is latched by the slow
/// path).
pub fn readiness(shared: &Shared) -> Readiness {
    let state = &shared.bgp;
    let draining = state.draining();
    let graceful = shared
        .config
        .load()
        .bgp
        .as_ref()
        .is_some_and(|b| b.graceful_shutdown);
    Readiness {
        forwarding: shared.forwarding.load(Ordering::SeqCst),
        probes_complete: state.first_round_done.load(Ordering::SeqCst),
        draining,
        graceful_phase: graceful && state.graceful_phase_open(),
    }
}

/// Every frontend's decision now.
pub fn current_decisions(shared: &Shared) -> Vec<VipDecision> {
    decisions(
        &shared.config.load(),
        &shared.snapshot.load(),
        &readiness(shared),
    )
}

/// The answer to the helper's `bgp` request: records its report, returns `{"wanted":[...]}`.
pub fn answer_helper(shared: &Shared, report: BgpReport) -> Result<Value, String> {
    if shared.config.load().bgp.is_none() {
        return Err("no [bgp] table in the configuration".into());
    }
    shared.bgp.record_report(report);
    Ok(json!({ "wanted": wanted(&current_decisions(shared)) }))
}

/// Fills the BGP part of `status`: the helper's report and each frontend's announced flag.
pub fn fill_status(shared: &Shared, report: &mut StatusReport) {
    report.draining = shared.bgp.draining();
    let config = shared.config.load();
    let Some(bgp) = config.bgp.as_ref() else {
        return;
    };
    let fresh = shared.bgp.fresh_report(HELPER_STALE_AFTER);
    let helper = fresh.clone().unwrap_or_default();
    let mut sessions = BTreeMap::new();
    for p in &bgp.peers {
        let addr = p.address.to_string();
        let state = helper
            .sessions
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        sessions.insert(addr, state);
    }
    let withdrawn = current_decisions(shared)
        .into_iter()
        .filter_map(|d| match d.verdict {
            AnnounceVerdict::Withdraw(why) => Some((d.route.frontend, why.name().to_string())),
            AnnounceVerdict::Announce { .. } => None,
        })
        .collect();
    for fe in &mut report.frontends {
        fe.announced = Some(helper.announced.iter().any(|r| r.frontend == fe.name));
    }
    report.bgp = Some(BgpStatus {
        daemon: "exabgp".into(),
        daemon_running: fresh.is_some(),
        sessions,
        announced: helper
            .announced
            .iter()
            .map(|r| format!("{} next-hop {}", r.cidr(), r.next_hop))
            .collect(),
        withdrawn,
    });
}

/// The BGP checks of `diagnose`: the daemon not running, sessions not established, VIPs that
/// cannot be announced. Forwarding is never affected by these.
pub fn diagnose(shared: &Shared, report: &mut DiagnoseReport) {
    const CHECKS: [&str; 3] = [
        "bgp_daemon_not_running",
        "bgp_session_down",
        "vip_not_announced",
    ];
    let config = shared.config.load();
    let Some(bgp) = config.bgp.as_ref() else {
        for check in CHECKS {
            let why = "not applicable: no [bgp] section (the VIPs are not announced by vipmux)";
            report.add(check, "n/a", String::new(), why.into(), "");
        }
        return;
    };
    let Some(helper) = shared.bgp.fresh_report(HELPER_STALE_AFTER) else {
        report.add(
            CHECKS[0],
            "fail",
            "bgp daemon exabgp".into(),
            format!("no report from its helper in the last {}s: nothing is announced", HELPER_STALE_AFTER.as_secs()),
            "start it with the files of `vipmux bgp-config --config FILE -o exabgp.conf --env exabgp.env` (`exabgp --env exabgp.env exabgp.conf`) and check its log",
        );
        for check in &CHECKS[1..] {
            report.add(
                check,
                "n/a",
                String::new(),
                "not applicable: the BGP daemon is not running".into(),
                "",
            );
        }
        return;
    };
    report.add(
        CHECKS[0],
        "ok",
        String::new(),
        "the helper reports".into(),
        "",
    );
    for p in &bgp.peers {
        let addr = p.address.to_string();
        let state = helper.sessions.get(&addr).map_or("unknown", String::as_str);
        let status = if state == "up" { "ok" } else { "fail" };
        report.add(
            CHECKS[1],
            status,
            format!("bgp peer {addr}"),
            format!("session {state}"),
            if state == "up" { "" } else { "check the peer's address, AS numbers and reachability from the MUX's own address (TCP 179), and the daemon's log" },
        );
    }
    for d in current_decisions(shared) {
        match d.verdict {
            AnnounceVerdict::Withdraw(why) if why != crate::bgp::WithdrawReason::OptedOut => {
                report.add(
                    CHECKS[2],
                    "warn",
                    format!("frontend {}", d.route.frontend),
                    format!("withdrawn: {}", why.name()),
                    "see the frontend's rules and members in `vipmux status` (draining, no healthy member, no session)",
                );
            }
            _ => report.add(
                CHECKS[2],
                "ok",
                format!("frontend {}", d.route.frontend),
                "announced".into(),
                "",
            ),
        }
    }
}

/// Per frontend name: 1 when the daemon announces it, 0 when not (empty without `[bgp]`).
pub fn announced_gauges(shared: &Shared) -> Vec<(String, u64)> {
    let config = shared.config.load();
    if config.bgp.is_none() {
        return Vec::new();
    }
    let helper = shared
        .bgp
        .fresh_report(HELPER_STALE_AFTER)
        .unwrap_or_default();
    config
        .frontends
        .iter()
        .map(|fe| {
            let on = helper.announced.iter().any(|r| r.frontend == fe.name);
            (fe.name.clone(), u64::from(on))
        })
        .collect()
}

/// The BGP and drain metric families (`vipmux_bgp_announced{frontend}`,
/// `vipmux_bgp_session_up{peer}`, `vipmux_draining`).
pub fn render_metrics(shared: &Shared, enc: &mut Encoder) {
    use crate::control::metrics::names::{BGP_ANNOUNCED, BGP_SESSION_UP, DRAINING};
    enc.gauge(
        DRAINING,
        "1 while draining.",
        &[],
        u64::from(shared.bgp.draining()),
    );
    enc.family(
        BGP_ANNOUNCED,
        MetricType::Gauge,
        "1 while the BGP daemon announces the VIP.",
    );
    for (frontend, on) in announced_gauges(shared) {
        enc.sample(&[("frontend", &frontend)], on);
    }
    enc.family(
        BGP_SESSION_UP,
        MetricType::Gauge,
        "1 while the BGP session with the peer is up.",
    );
    let config = shared.config.load();
    if let Some(bgp) = config.bgp.as_ref() {
        let helper = shared
            .bgp
            .fresh_report(HELPER_STALE_AFTER)
            .unwrap_or_default();
        for p in &bgp.peers {
            let peer = p.address.to_string();
            let up = helper.sessions.get(&peer).is_some_and(|s| s == "up");
            enc.sample(&[("peer", &peer)], u64::from(up));
        }
    }
}

/// Starts draining with `deadline` (a thread withdraws, waits, then stops the appliance); false
/// if a drain is already under way.
pub fn start_drain(shared: &Arc<Shared>, deadline: Duration) -> bool {
    let deadline = deadline.min(MAX_DRAIN_DEADLINE);
    if !shared.bgp.start_draining() {
        return false;
    }
    tracing::info!(deadline_secs = deadline.as_secs_f64(), "draining");
    let shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("vipmux-drain".into())
        .spawn(move || drain(&shared, Instant::now() + deadline));
    if spawned.is_err() {
        signal::request_stop();
    }
    true
}

/// The drain: wait for the withdrawal to reach the daemon, then for traffic to stop, each
/// bounded by `deadline`; then stop.
fn drain(shared: &Shared, deadline: Instant) {
    let announces = shared.config.load().bgp.is_some();
    while announces && Instant::now() < deadline {
        let withdrawn = shared
            .bgp
            .fresh_report(HELPER_STALE_AFTER)
            .is_none_or(|r| r.announced.is_empty());
        if withdrawn {
            break;
        }
        std::thread::sleep(DRAIN_POLL);
    }
    let (mut last, mut since) = (rule_packets(shared), Instant::now());
    while Instant::now() < deadline && since.elapsed() < QUIET_PERIOD {
        std::thread::sleep(DRAIN_POLL);
        let now = rule_packets(shared);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    tracing::info!(
        traffic_stopped = since.elapsed() >= QUIET_PERIOD,
        "drained; stopping"
    );
    signal::request_stop();
}

/// Packets that reached any rule so far.
fn rule_packets(shared: &Shared) -> u64 {
    let (c, _, _) = shared.aggregate();
    c.rules.iter().map(|r| r.packets).sum()
}
