//! Idle timeout end to end: vipmux in the one-arm topology, a real kernel TCP
//! connection from the client through the VIP to a backend's echo server (port 7000), with a rule
//! whose idle timeout is 3 s (`idle_timeout_seconds`, the vipmux extension).
//!
//! - `enable_tcp_reset = true`: after the data exchange the connection goes idle; a blocking read
//!   on the client fails with ECONNRESET about the timeout later, and the backend's socket for
//!   that connection disappears (`ss` in the backend namespace) — both stacks accepted the RSTs.
//! - without it: nothing is sent (the client's read does not fail before it gives up at
//!   timeout + 2 s, and the backend still holds the connection); a late data segment from the
//!   client, sent once the flow has left `vipmux flows`, is dropped (no echo comes back) and
//!   counted `idle_expired`.
//!
//! The behaviour under test *is* time passing, so the client measures how long its read waited
//! and the tests check that loosely (from the timeout to timeout + 2.5 s, `reset_window`); every
//! other wait is a bounded poll for an event. Needs root; skipped otherwise.

mod common;

use std::time::Duration;

use common::appliance::check;
use common::idle::{parse_outcome, parse_ready, reset_window, IdleClient};
use common::{skip_unless_root, wait_for, wait_until, Appliance, ConfigBuilder, Topology};

/// The rule's idle timeout.
const IDLE_SECS: u64 = 3;
/// Echo port on every backend.
const ECHO: u16 = 7000;

/// Lines of `ss -tnH` in backend `role`'s namespace for connections from the client's `port`.
fn backend_sockets(topo: &Topology, role: &str, port: u16) -> String {
    let filter = format!("( sport = :{ECHO} and dport = :{port} )");
    let out = common::ns_exec(&topo.ns(role), &["ss", "-tnH", "state", "all", &filter]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Echo on the VIP over b1..b3 (no probe: members count as up) with the short idle timeout.
fn config(reset: bool, workers: usize) -> ConfigBuilder {
    let extra = format!("idle_timeout_seconds = {IDLE_SECS}\nenable_tcp_reset = {reset}\n");
    ConfigBuilder::one_arm()
        .workers(workers)
        .pool("echo", &["b1", "b2", "b3"], "")
        .lb_rule("echo", "tcp", ECHO, ECHO, "echo", None, &extra)
}

fn start(reset: bool, workers: usize) -> (Topology, Appliance) {
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let app = Appliance::start(&topo, &config(reset, workers).build(&topo)).expect("vipmux start");
    (topo, app)
}

fn reset_scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let to = format!("{}:{ECHO}", topo.get("VIP"));
    // The client waits up to timeout + 5 s for the reset; the test bounds every wait.
    let client = IdleClient::start(&topo.ns("client"), &to, IDLE_SECS + 5, false)?;
    let (port, who) = parse_ready(&client.line(Duration::from_secs(10))?)?;
    let before = backend_sockets(topo, &who.backend, port);
    if !before.contains("ESTAB") {
        return Err(format!(
            "backend {} does not show the connection from port {port}: {before:?}",
            who.backend
        ));
    }
    let (word, secs) = parse_outcome(&client.line(Duration::from_secs(IDLE_SECS + 10))?)?;
    eprintln!("client read ended with {word} after {secs:.3} s (idle timeout {IDLE_SECS} s)");
    if word != "RESET" {
        return Err(format!(
            "client read ended with {word} after {secs} s, not ECONNRESET"
        ));
    }
    let (lo, hi) = reset_window(IDLE_SECS);
    if secs < lo || secs > hi {
        return Err(format!(
            "reset after {secs} s, outside the window {lo}..{hi} s"
        ));
    }
    let gone = wait_until(Duration::from_secs(5), || {
        backend_sockets(topo, &who.backend, port).is_empty()
    });
    if !gone {
        return Err(format!(
            "backend {} still holds the connection after the reset: {}",
            who.backend,
            backend_sockets(topo, &who.backend, port)
        ));
    }
    // Workers publish their counters every 100 ms: wait for the pair to show.
    wait_for(Duration::from_secs(5), || {
        let c = app.counters_json().ok()?;
        (c["resets_sent"].as_u64()? >= 2 && c["expired_flows"].as_u64()? >= 1).then_some(())
    })
    .ok_or_else(|| {
        format!(
            "counters never showed the expiry and its two resets: {}",
            app.counters_json()
                .map(|c| c.to_string())
                .unwrap_or_default()
        )
    })?;
    Ok(())
}

#[test]
fn idle_timeout_with_tcp_reset_closes_both_sockets() {
    if skip_unless_root("idle_timeout_with_tcp_reset_closes_both_sockets") {
        return;
    }
    let (topo, app) = start(true, 1);
    check(&app, reset_scenario(&topo, &app));
}

/// The reset scenario until one connection's packets crossed workers (the kernel's fanout picks
/// the queue of each direction by its own tuple: about three connections in four cross), at most
/// four times; then the hand-off counters must agree.
fn reset_crossing_workers(topo: &Topology, app: &Appliance) -> Result<(), String> {
    for attempt in 1..=4 {
        reset_scenario(topo, app)?;
        if app.handoffs()?.0 > 0 {
            break;
        }
        eprintln!("attempt {attempt}: the connection stayed on one worker, once more");
    }
    app.check_handoffs()
}

/// The same with two workers: the reply direction, handled by the flow's owner through the
/// hand-off, keeps the sequence numbers the RSTs need current.
#[test]
fn idle_timeout_with_tcp_reset_closes_both_sockets_two_workers() {
    if skip_unless_root("idle_timeout_with_tcp_reset_closes_both_sockets_two_workers") {
        return;
    }
    let (topo, app) = start(true, 2);
    check(&app, reset_crossing_workers(&topo, &app));
}

fn silent_scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let to = format!("{}:{ECHO}", topo.get("VIP"));
    // The client gives up at timeout + 2 s; nothing must arrive before.
    let mut client = IdleClient::start(&topo.ns("client"), &to, IDLE_SECS + 2, true)?;
    let (port, who) = parse_ready(&client.line(Duration::from_secs(10))?)?;
    let (word, secs) = parse_outcome(&client.line(Duration::from_secs(IDLE_SECS + 10))?)?;
    eprintln!("client read ended with {word} after {secs:.3} s (idle timeout {IDLE_SECS} s)");
    if word != "TIMEOUT" {
        return Err(format!(
            "without enable_tcp_reset the client's read ended with {word} after {secs} s"
        ));
    }
    let held = backend_sockets(topo, &who.backend, port);
    if !held.contains("ESTAB") {
        return Err(format!(
            "without enable_tcp_reset backend {} lost the connection: {held:?}",
            who.backend
        ));
    }
    // Once the flow has left the flows listing, a late segment is dropped and counted.
    app.wait_flow_gone("the idle flow", Duration::from_secs(10), |f| {
        f["rule"] == "echo"
    })?;
    let expired_before = app.drop_count("idle_expired")?;
    client.go_late()?;
    // The late segment is dropped as expired.
    let counted = app.wait_counter(
        "/drops/idle_expired",
        Duration::from_secs(5),
        expired_before + 1,
    )?;
    let late = client.line(Duration::from_secs(10))?;
    eprintln!("late segment: {late}, idle_expired = {counted}");
    if late != "LATE_TIMEOUT" {
        return Err(format!(
            "the late segment was not dropped: the client saw {late}"
        ));
    }
    Ok(())
}

#[test]
fn idle_timeout_without_reset_is_silent_then_drops_late_packets() {
    if skip_unless_root("idle_timeout_without_reset_is_silent_then_drops_late_packets") {
        return;
    }
    let (topo, app) = start(false, 1);
    check(&app, silent_scenario(&topo, &app));
}
