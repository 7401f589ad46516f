//! End to end, hitless reload: the one-arm topology with four backends, b4 not
//! in the first configuration. Long-lived TCP echo connections are opened through the VIP; then a
//! reload adds b4 to the pool, changes the echo rule's idle timeout and adds a second rule (HTTP on
//! port 80). Every established connection keeps exchanging data on the same socket with the same
//! backend, new flows reach b4, and the new rule answers. A second reload, by SIGHUP after
//! rewriting the original file, changes the idle timeout again with the same guarantees. The
//! appliance runs with `missing_flow = "drop"`, so a connection survives only through its flow
//! entry (a rehash cannot hide a lost entry), and `no_flow`/`idle_expired` stay 0.
//! A third test reloads files whose SNAT blocks would have to move: the running appliance refuses
//! them with the rule, frontend IP and block named, and keeps its configuration.
//! Needs root; skipped otherwise.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::appliance::{check, http_backend, sessions_continue, start_or_panic, tcp_whoami};
use common::{skip_unless_root, wait_until, Appliance, ConfigBuilder, TcpSession, Topology};

const SESSIONS: usize = 9;

fn config(workers: usize, members: &[&str], idle: &str, with_http: bool) -> ConfigBuilder {
    // With missing_flow = "drop", a connection survives only if its flow entry does (no rehash).
    let c = ConfigBuilder::one_arm()
        .workers(workers)
        .appliance("missing_flow = \"drop\"")
        .pool("web", members, "")
        .probe_tcp("tcp-80", 80, 1, 2)
        .lb_rule("echo", "tcp", 7000, 7000, "web", Some("tcp-80"), idle);
    if with_http {
        c.lb_rule("web", "tcp", 80, 80, "web", Some("tcp-80"), "")
    } else {
        c
    }
}

fn generation(app: &Appliance) -> Option<u64> {
    app.status_json().ok()?["config_generation"].as_u64()
}

fn scenario(topo: &Topology, app: &Appliance, workers: usize) -> Result<(), String> {
    app.wait_members_healthy(&["b1", "b2", "b3"], Duration::from_secs(30))?;
    let client = topo.ns("client");
    let vip = topo.get("VIP");
    let to = format!("{vip}:7000");

    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let mut s = TcpSession::connect(&client, &to, None)?;
        let who = s.whoami()?;
        if who.backend == "b4" {
            return Err("a flow reached b4 before it was configured".into());
        }
        sessions.push((who.backend, s));
    }
    let used: BTreeSet<_> = sessions.iter().map(|(b, _)| b.clone()).collect();
    eprintln!("{SESSIONS} long-lived connections on {used:?}");
    sessions_continue(&mut sessions, "before reload")?;

    // Reload 1: add b4, change the idle timeout, add an HTTP rule.
    let text = config(
        workers,
        &["b1", "b2", "b3", "b4"],
        "idle_timeout_minutes = 10",
        true,
    )
    .build(topo);
    let summary = app.reload_text("reload1.toml", &text)?;
    eprintln!("reload 1: {}", summary.trim());
    if generation(app) != Some(2) {
        return Err(format!("generation after reload 1: {:?}", generation(app)));
    }
    sessions_continue(&mut sessions, "after reload 1")?;
    app.wait_members_healthy(&["b1", "b2", "b3", "b4"], Duration::from_secs(15))?;
    let reached_b4 = (0..60).any(|_| tcp_whoami(&client, &to).is_ok_and(|r| r.backend == "b4"));
    if !reached_b4 {
        return Err("60 new connections after adding b4, none reached it".into());
    }
    let mut http_seen = BTreeSet::new();
    for i in 0..20 {
        let r = http_backend(&client, &format!("http://{vip}/"), None)
            .map_err(|e| format!("new HTTP rule, request {i}: {e}"))?;
        http_seen.insert(r.backend);
    }
    if http_seen.len() < 2 {
        return Err(format!(
            "new HTTP rule sent 20 requests only to {http_seen:?}"
        ));
    }
    sessions_continue(&mut sessions, "after new flows")?;

    // Reload 2 by SIGHUP: the original file rewritten with another idle timeout.
    let text = config(
        workers,
        &["b1", "b2", "b3", "b4"],
        "idle_timeout_seconds = 900",
        true,
    )
    .build(topo);
    std::fs::write(app.config_path(), text).map_err(|e| e.to_string())?;
    app.sighup()?;
    if !wait_until(Duration::from_secs(10), || generation(app) == Some(3)) {
        return Err(format!(
            "SIGHUP reload not applied: generation {:?}",
            generation(app)
        ));
    }
    sessions_continue(&mut sessions, "after SIGHUP reload")?;
    for (i, (b, s)) in sessions.iter_mut().enumerate() {
        if !s.is_alive() {
            return Err(format!("connection {i} to {b} closed"));
        }
    }
    let lost = app.drop_count("no_flow")? + app.drop_count("idle_expired")?;
    if lost != 0 {
        return Err(format!(
            "{lost} packets dropped for a missing or expired flow"
        ));
    }
    Ok(())
}

/// Runs the scenario with `workers` workers (two: every connection meets its owner through the
/// hand-off, before and after the reloads).
fn reload_with(name: &str, workers: usize) {
    if skip_unless_root(name) {
        return;
    }
    let topo =
        Topology::up("one-arm", &["--return", "gateway", "--backends", "4"]).expect("topology up");
    let app = start_or_panic(
        &topo,
        &config(
            workers,
            &["b1", "b2", "b3"],
            "idle_timeout_minutes = 4",
            false,
        ),
    );
    let result = scenario(&topo, &app, workers);
    let result = match result {
        Ok(()) if workers > 1 => app.check_handoffs(),
        r => r,
    };
    check(&app, result);
}

#[test]
fn reload_keeps_established_and_adds_backend() {
    reload_with("reload_keeps_established_and_adds_backend", 1);
}

#[test]
fn reload_keeps_established_and_adds_backend_two_workers() {
    reload_with("reload_keeps_established_and_adds_backend_two_workers", 2);
}

/// The one-arm configuration with an outbound rule of 64 ports per member over `members`, and
/// the echo rule on `port`.
fn snat_config(members: &[&str], port: u16) -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", members, "")
        .lb_rule("echo", "tcp", port, 7000, "web", None, "")
        .raw(
            "[[outbound_rules]]\nname = \"egress\"\nfrontends = [\"fe\"]\nbackend_pool = \"web\"\nallocated_outbound_ports = 64\n",
        )
}

#[test]
fn reload_refuses_to_move_snat_blocks() {
    if skip_unless_root("reload_refuses_to_move_snat_blocks") {
        return;
    }
    let topo =
        Topology::up("one-arm", &["--return", "gateway", "--backends", "3"]).expect("topology up");
    let app = start_or_panic(&topo, &snat_config(&["b1", "b2"], 7000));
    let result = (|| -> Result<(), String> {
        // b2's block is 1088-1151: a rule on 1100 would have to move it.
        let text = snat_config(&["b1", "b2"], 1100).build(&topo);
        let err = match app.reload_text("snat-hit.toml", &text) {
            Ok(out) => return Err(format!("reload moving a SNAT block applied: {out}")),
            Err(e) => e,
        };
        for want in [
            "snat-hit.toml",
            "load_balancing_rules[0] (\"echo\") frontend_port = 1100: uses a port inside member \"b2\"'s SNAT block 1088-1151",
            "1 error, nothing applied",
        ] {
            if !err.contains(want) {
                return Err(format!("reload error lacks `{want}`: {err}"));
            }
        }
        if generation(&app) != Some(1) {
            return Err(format!(
                "refused reload changed the generation: {:?}",
                generation(&app)
            ));
        }
        // b1 leaves and b3 comes: b2 keeps 1088-1151 (a fresh plan would give it 1024-1087 and
        // carve b3's block around 1100), so 1100 is still refused; a port outside every block is
        // applied.
        let text = snat_config(&["b2", "b3"], 1100).build(&topo);
        let err = app.reload_text("snat-hit2.toml", &text).unwrap_err();
        if !err.contains("member \"b2\"'s SNAT block 1088-1151") {
            return Err(format!("second refusal: {err}"));
        }
        let text = snat_config(&["b2", "b3"], 7000).build(&topo);
        app.reload_text("snat-ok.toml", &text)?;
        if generation(&app) != Some(2) {
            return Err(format!(
                "generation after the good reload: {:?}",
                generation(&app)
            ));
        }
        Ok(())
    })();
    check(&app, result);
}
