//! End to end, restart under established connections: the one-arm topology with three backends
//! and `missing_flow = "rehash"`. Long-lived TCP echo connections are opened through the VIP until
//! every backend holds at least two. Then, five times, vipmux is killed with SIGKILL (a crash: no
//! drain) and started again with the same configuration; right after it reports forwarding — while
//! its first probe round is still under way — every connection must keep echoing on the same
//! socket, answered by the same backend (100 % of the established flows continue, none is reset
//! by a backend it was wrongly rehashed to; docs/design.md §3.8). The time from the kill until
//! every connection answered again, and from `vipmux run` to forwarding, are printed.
//! Needs root; skipped otherwise.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::appliance::{check, sessions_continue};
use common::{skip_unless_root, Appliance, ConfigBuilder, TcpSession, Topology};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
const PER_MEMBER: usize = 2;
const RESTARTS: usize = 5;

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .appliance("missing_flow = \"rehash\"")
        .pool("web", &ALL, "")
        // A 5 s interval spreads the first probes of a restart over 5 s: the connections are
        // checked while most members have no result yet (the window the restart rule covers).
        .probe_tcp("tcp-80", 80, 5, 2)
        .lb_rule("echo", "tcp", 7000, 7000, "web", Some("tcp-80"), "")
}

/// Opens connections until every member holds `PER_MEMBER` (bounded number of attempts).
fn sessions_on_every_member(topo: &Topology) -> Result<Vec<(String, TcpSession)>, String> {
    let client = topo.ns("client");
    let to = format!("{}:7000", topo.get("VIP"));
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    let mut sessions = Vec::new();
    for _ in 0..200 {
        if ALL
            .iter()
            .all(|m| per.get(*m).copied().unwrap_or(0) >= PER_MEMBER)
        {
            return Ok(sessions);
        }
        let mut s = TcpSession::connect(&client, &to, None)?;
        let who = s.whoami()?.backend;
        let n = per.entry(who.clone()).or_default();
        if *n < PER_MEMBER {
            *n += 1;
            sessions.push((who, s));
        }
    }
    Err(format!(
        "200 connections did not reach every member twice: {per:?}"
    ))
}

fn scenario(topo: &Topology, app: &mut Appliance, text: &str) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    let mut sessions = sessions_on_every_member(topo)?;
    sessions_continue(&mut sessions, "before restarts")?;
    for round in 1..=RESTARTS {
        let killed = Instant::now();
        app.kill()?;
        let started = Instant::now();
        *app = Appliance::start(topo, text)?;
        let to_forwarding = started.elapsed();
        sessions_continue(&mut sessions, &format!("after restart {round}"))?;
        eprintln!(
            "restart {round}: {} of {} connections continue; kill -> all answered {} ms, run -> forwarding {} ms",
            sessions.len(),
            sessions.len(),
            killed.elapsed().as_millis(),
            to_forwarding.as_millis()
        );
    }
    for (i, (b, s)) in sessions.iter_mut().enumerate() {
        if !s.is_alive() {
            return Err(format!("connection {i} to {b} closed"));
        }
    }
    // The reliability gauges are published: the worst busy iteration and the pool's mbufs in use
    // (the receive rings hold some at all times). The worker publishes every 100 ms, so the
    // echoes above may not be in the counters yet: await a publication that includes them.
    let mut last = String::new();
    let published = common::wait_until(Duration::from_secs(5), || {
        let Ok(c) = app.counters_json() else {
            return false;
        };
        let max_busy = c["workers"][0]["max_busy_iteration_ns"]
            .as_u64()
            .unwrap_or(0);
        let mbufs = c["mbufs_in_use"].as_u64().unwrap_or(0);
        last = format!("max_busy_iteration_ns {max_busy}, mbufs_in_use {mbufs} in {c}");
        max_busy > 0 && mbufs > 0
    });
    if !published {
        return Err(format!(
            "no publication within 5 s shows both gauges: {last}"
        ));
    }
    Ok(())
}

#[test]
fn restart_keeps_connections_to_every_member() {
    if skip_unless_root("restart_keeps_connections_to_every_member") {
        return;
    }
    let topo =
        Topology::up("one-arm", &["--return", "gateway", "--backends", "3"]).expect("topology up");
    let text = config().build(&topo);
    let mut app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    let r = scenario(&topo, &mut app, &text);
    check(&app, r);
}
