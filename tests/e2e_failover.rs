//! End to end, probe failover: the one-arm topology; a TCP rule and a UDP rule on the
//! echo port 7000 whose probe is a TCP handshake on port 80, so stopping a backend's HTTP server
//! marks it down while its echo servers keep running. Before the failover, long-lived TCP
//! connections through the VIP are opened until one reaches b2, and a UDP source port whose flow
//! goes to b2 is found. Then b2's HTTP server stops:
//! - `vipmux status --json` shows b2 down with the probe's reason (refused) within a generous
//!   bound of interval × threshold (the measured time is printed);
//! - the ESTABLISHED connection to b2 keeps exchanging data on the same socket;
//! - new TCP connections never reach b2, and the UDP flow moves to another member;
//! - after the server restarts, b2 is up again and new connections reach it.
//!
//! Needs root; skipped otherwise.

mod common;

use std::time::{Duration, Instant};

use common::appliance::{check, start_or_panic, tcp_whoami};
use common::{
    ns_exec_ok, scripts_dir, skip_unless_root, Appliance, BackendReply, ConfigBuilder, TcpSession,
    Topology,
};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
const INTERVAL: u32 = 1;
const THRESHOLD: u32 = 2;
/// Generous bound for a health flip: interval × threshold + 1 s, plus slack for a loaded machine.
const FLIP_BOUND: Duration = Duration::from_secs((INTERVAL * THRESHOLD) as u64 + 1 + 10);

fn config(workers: usize) -> ConfigBuilder {
    // missing_flow = "drop": the connection to b2 can only survive through its flow entry.
    ConfigBuilder::one_arm()
        .workers(workers)
        .appliance("missing_flow = \"drop\"")
        .pool("web", &ALL, "")
        .probe_tcp("tcp-80", 80, INTERVAL, THRESHOLD)
        .lb_rule("echo", "tcp", 7000, 7000, "web", Some("tcp-80"), "")
        .lb_rule("echo-udp", "udp", 7000, 7000, "web", Some("tcp-80"), "")
}

/// `whoami` over UDP from the client's address and source port `sport`.
fn udp_whoami(topo: &Topology, sport: u16) -> Result<BackendReply, String> {
    let script = scripts_dir().join("echo.py");
    let bind = format!("{}:{sport}", topo.get("CLIENT_IP"));
    let to = format!("{}:7000", topo.get("VIP"));
    let got = ns_exec_ok(
        &topo.ns("client"),
        &[
            "python3",
            &script.to_string_lossy(),
            "udp-client",
            "--to",
            &to,
            "--bind",
            &bind,
            "--data",
            "whoami",
        ],
    )?;
    BackendReply::parse(got.trim()).ok_or_else(|| format!("unexpected UDP answer {got:?}"))
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    let client = topo.ns("client");
    let to = format!("{}:7000", topo.get("VIP"));

    // Long-lived connections until one reaches b2 (5-tuple hashing: a few tries suffice).
    let mut sessions: Vec<(String, TcpSession)> = Vec::new();
    for _ in 0..40 {
        let mut s = TcpSession::connect(&client, &to, None)?;
        let who = s.whoami()?;
        let on_b2 = who.backend == "b2";
        sessions.push((who.backend, s));
        if on_b2 {
            break;
        }
    }
    if !sessions.iter().any(|(b, _)| b == "b2") {
        return Err("40 connections, none reached b2".into());
    }
    // A UDP source port whose flow goes to b2.
    let udp_port = (40000..40060)
        .find(|p| udp_whoami(topo, *p).is_ok_and(|r| r.backend == "b2"))
        .ok_or("no UDP source port in 40000..40060 reached b2")?;

    // b2's HTTP server stops: the TCP probe on 80 is refused, b2 goes down.
    let t0 = Instant::now();
    topo.backend("stop", "b2", &["http"])?;
    let reason = app.wait_member("b2", false, FLIP_BOUND)?;
    let took_down = t0.elapsed();
    eprintln!(
        "b2 marked down {:.2} s after its server stopped (interval {INTERVAL} s × threshold {THRESHOLD}): {reason}",
        took_down.as_secs_f64()
    );
    if !reason.contains("refused") {
        return Err(format!("b2 down without the probe's reason: {reason:?}"));
    }
    let st = app.status_json()?;
    let rule = st["frontends"][0]["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "echo"))
        .cloned()
        .unwrap_or_default();
    if rule["healthy_members"] != 2 || rule["total_members"] != 3 {
        return Err(format!("rule echo after b2 down: {rule}"));
    }

    // Established connections, b2's included, keep working on the same sockets.
    for (i, (backend, s)) in sessions.iter_mut().enumerate() {
        s.echo(&format!("after-down {i}"))
            .map_err(|e| format!("connection {i} to {backend} after b2 went down: {e}"))?;
        let who = s.whoami()?;
        if who.backend != *backend {
            return Err(format!(
                "connection {i} moved from {backend} to {}",
                who.backend
            ));
        }
    }
    // New flows avoid b2.
    for i in 0..30 {
        let r = tcp_whoami(&client, &to).map_err(|e| format!("new flow {i}: {e}"))?;
        if r.backend == "b2" {
            return Err(format!("new flow {i} reached b2 while it is down"));
        }
    }
    // The UDP flow moves to a healthy member on its next packet.
    let moved = udp_whoami(topo, udp_port)?;
    if moved.backend == "b2" {
        return Err(format!("UDP flow from port {udp_port} stayed on down b2"));
    }

    // Restart: b2 comes back and gets new flows again.
    let t1 = Instant::now();
    topo.backend("start", "b2", &[])?;
    let reason = app.wait_member("b2", true, FLIP_BOUND)?;
    eprintln!(
        "b2 marked up {:.2} s after its server restarted: {reason}",
        t1.elapsed().as_secs_f64()
    );
    let back = (0..60).any(|_| tcp_whoami(&client, &to).is_ok_and(|r| r.backend == "b2"));
    if !back {
        return Err("60 new connections after b2 came back, none reached it".into());
    }
    for (i, (backend, s)) in sessions.iter_mut().enumerate() {
        s.echo(&format!("after-up {i}"))
            .map_err(|e| format!("connection {i} to {backend} after b2 came back: {e}"))?;
    }
    Ok(())
}

/// Runs the scenario with `workers` workers (two: the established connection's packets meet
/// their owner through the hand-off).
fn failover_with(name: &str, workers: usize) {
    if skip_unless_root(name) {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let app = start_or_panic(&topo, &config(workers));
    let result = match scenario(&topo, &app) {
        Ok(()) if workers > 1 => app.check_handoffs(),
        r => r,
    };
    check(&app, result);
}

#[test]
fn probe_failover_keeps_established() {
    failover_with("probe_failover_keeps_established", 1);
}

#[test]
fn probe_failover_keeps_established_two_workers() {
    failover_with("probe_failover_keeps_established_two_workers", 2);
}
