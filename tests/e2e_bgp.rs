//! End to end, scale-out: the scale-out topology (an FRR router with L4 ECMP, three MUXes each
//! running vipmux on af_packet with ExaBGP, three DSR backends running real echo servers).
//! - Every MUX announces the routed VIP once forwarding and probed: the router's kernel table shows
//!   the VIP with the three MUXes as next hops (the time is printed); `status` shows the session up
//!   and the VIP announced.
//! - Long-lived TCP connections from many client addresses spread over the MUXes by ECMP.
//! - `kill -9` of one MUX: its route is withdrawn (the time is printed: the router's hold time, as
//!   the dead MUX cannot close its session), and every connection still reaches the same backend
//!   through another MUX (same hash, `missing_flow = "rehash"`); the stall per connection is printed.
//! - `vipmux drain` on a second MUX: its route leaves the router, the command returns once vipmux
//!   stopped, and no connection breaks.
//! - The killed MUX's ExaBGP stops by itself (fate sharing).
//! - Every member's probe down (`no_healthy_backends = "drop"`): the VIP is withdrawn, and
//!   re-announced when the members come back; `diagnose` names the withdrawn VIP.
//! - The killed MUX rejoins: two next hops again, connections ECMP moves to it keep their backend,
//!   new connections reach it.
//!
//! Needs root, FRR and ExaBGP; skipped otherwise.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::appliance::VIPMUX;
use common::{skip_unless_root, wait_for, TcpSession, Topology};

const MUXES: usize = 3;
const SESSIONS: usize = 30;
const ROUTE_BOUND: Duration = Duration::from_secs(60);
/// Hold time 3 s, plus slack for a loaded machine.
const WITHDRAW_BOUND: Duration = Duration::from_secs(20);

fn tools_present() -> bool {
    Path::new("/usr/lib/frr/bgpd").exists()
        && Command::new("exabgp").arg("--version").output().is_ok()
}

/// The configuration of MUX `i` (1-based): the same frontends, pool, rule and hash seed on every
/// MUX; its own address, router id and control socket.
fn mux_config(topo: &Topology, i: usize) -> String {
    let ip = &topo.list("MUX_IPS")[i - 1];
    let socket = topo.state_dir().join(format!("mux{i}.sock"));
    let members: Vec<String> = topo
        .list("BACKEND_ROLES")
        .iter()
        .zip(topo.list("BACKEND_IPS"))
        .map(|(r, a)| format!("{{ name = \"{r}\", address = \"{a}\" }}"))
        .collect();
    format!(
        r#"[appliance]
name = "mux{i}"
hash_seed = 7
missing_flow = "rehash"

[dataplane]
workers = 1
flow_table_capacity = 65536

[control]
socket = "{socket}"
metrics = ""

[[interfaces]]
name = "dc"
port = "net_af_packet0"
address = "{ip}/24"
gateway = "{router}"

[[frontends]]
name = "fe"
address = "{vip}"

[[backend_pools]]
name = "web"
members = [{members}]

[[probes]]
name = "http"
protocol = "tcp"
port = 80
interval_seconds = 1

[[load_balancing_rules]]
name = "echo"
frontend = "fe"
protocol = "tcp"
frontend_port = 7000
backend_pool = "web"
probe = "http"
enable_floating_ip = true

[bgp]
local_as = {mux_as}
router_id = "{ip}"

[[bgp.peers]]
address = "{router}"
remote_as = {router_as}
hold_time_seconds = 3
"#,
        socket = socket.display(),
        router = topo.get("ROUTER_LAN_IP"),
        vip = topo.get("VIP"),
        members = members.join(", "),
        mux_as = topo.get("MUX_AS"),
        router_as = topo.get("ROUTER_AS"),
    )
}

fn routes(topo: &Topology) -> Vec<String> {
    topo.script(&["routes"], &[])
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn status_json(topo: &Topology, i: usize) -> Result<serde_json::Value, String> {
    let socket = topo.state_dir().join(format!("mux{i}.sock"));
    let out = Command::new(VIPMUX)
        .args(["status", "--json", "--socket"])
        .arg(&socket)
        .output()
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&out.stdout).map_err(|e| format!("status of mux{i}: {e}"))
}

/// Whoami on every session: (broken count, longest exchange), checking each stays on `backends[k]`.
fn check_sessions(sessions: &mut [(String, TcpSession)]) -> (usize, Duration) {
    let mut broken = 0;
    let mut worst = Duration::ZERO;
    for (backend, s) in sessions.iter_mut() {
        let t = Instant::now();
        match s.whoami() {
            Ok(who) if &who.backend == backend => worst = worst.max(t.elapsed()),
            Ok(who) => {
                eprintln!("connection moved from {backend} to {}", who.backend);
                broken += 1
            }
            Err(e) => {
                eprintln!("connection to {backend} broke: {e}");
                broken += 1
            }
        }
    }
    (broken, worst)
}

fn mux_logs(topo: &Topology) -> String {
    let mut s = String::new();
    for i in 1..=MUXES {
        for what in ["vipmux", "exabgp"] {
            let p = topo.state_dir().join(format!("logs/mux{i}-{what}.log"));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s.push_str(&format!("--- mux{i} {what} (last lines)\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
    }
    s
}

#[test]
fn vip_announced_by_every_mux_survives_a_mux_loss_and_a_drain() {
    if skip_unless_root("e2e_bgp") {
        return;
    }
    if !tools_present() {
        eprintln!("skipped: FRR (bgpd) or ExaBGP not installed (scripts/setup.sh)");
        return;
    }
    let n = MUXES.to_string();
    let topo = Topology::up(
        "scale-out",
        &["--muxes", &n, "--backends", "3", "--clients", "20"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = scenario(&topo) {
        panic!("{e}\n{}", mux_logs(&topo));
    }
}

fn scenario(topo: &Topology) -> Result<(), String> {
    let env = [("VIPMUX_BIN", VIPMUX)];
    let t0 = Instant::now();
    for i in 1..=MUXES {
        let path = topo.state_dir().join(format!("mux{i}.toml"));
        std::fs::write(&path, mux_config(topo, i)).map_err(|e| e.to_string())?;
        topo.script(
            &["mux-start", &i.to_string(), &path.display().to_string()],
            &env,
        )?;
    }
    let mux_ips = topo.list("MUX_IPS");
    let all = wait_for(ROUTE_BOUND, || {
        let r = routes(topo);
        (r == mux_ips).then_some(r)
    });
    if all.is_none() {
        return Err(format!(
            "the router never had {MUXES} next hops: {:?}",
            routes(topo)
        ));
    }
    eprintln!(
        "VIP learned with {MUXES} next hops {:.1} s after the MUXes started",
        t0.elapsed().as_secs_f64()
    );
    let st = status_json(topo, 1)?;
    let bgp = &st["bgp"];
    if bgp["daemon_running"] != true || bgp["sessions"][topo.get("ROUTER_LAN_IP")] != "up" {
        return Err(format!(
            "status of mux1 does not show the session up: {bgp}"
        ));
    }
    if st["frontends"][0]["announced"] != true {
        return Err(format!(
            "status of mux1 does not show the VIP announced: {st}"
        ));
    }

    let clients = topo.list("CLIENT_IPS");
    let to = format!("{}:7000", topo.get("VIP"));
    let mut sessions = Vec::new();
    for k in 0..SESSIONS {
        let src = &clients[k % clients.len()];
        let mut s = TcpSession::connect(&topo.ns("client"), &to, Some(src))?;
        let who = s.whoami()?;
        sessions.push((who.backend, s));
    }

    // ECMP spread the connections: every MUX holds some of them.
    for i in 1..=MUXES {
        let flows = status_json(topo, i)?["frontends"][0]["rules"][0]["active_flows"].clone();
        eprintln!("mux{i}: {flows} connections");
        if flows.as_u64().unwrap_or(0) == 0 {
            return Err(format!("mux{i} carries none of the {SESSIONS} connections"));
        }
    }

    // kill -9 of mux1: withdrawn when the router's hold timer expires.
    let t = Instant::now();
    topo.script(&["mux-kill", "1"], &[])?;
    let gone = wait_for(WITHDRAW_BOUND, || {
        (!routes(topo).contains(&mux_ips[0])).then_some(())
    });
    if gone.is_none() {
        return Err(format!("mux1's route is still there: {:?}", routes(topo)));
    }
    eprintln!(
        "kill -9 of mux1: route withdrawn after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    exabgp_follows(topo, 1)?;
    let (broken, worst) = check_sessions(&mut sessions);
    eprintln!("after the loss of mux1: {broken}/{SESSIONS} connections broken, longest exchange {worst:?}");
    if broken > 0 {
        return Err(format!(
            "{broken} of {SESSIONS} connections broke when mux1 died"
        ));
    }

    // vipmux drain on mux2: withdrawn, then stops; no connection breaks.
    let socket2 = topo.state_dir().join("mux2.sock");
    let t = Instant::now();
    let out = Command::new(VIPMUX)
        .args(["drain", "--deadline", "10", "--socket"])
        .arg(&socket2)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "vipmux drain failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!(
        "vipmux drain of mux2 returned after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let r = routes(topo);
    if r != [mux_ips[2].clone()] {
        return Err(format!(
            "after the drain the router should route via mux3 only: {r:?}"
        ));
    }
    let (broken, worst) = check_sessions(&mut sessions);
    eprintln!("after the drain of mux2: {broken}/{SESSIONS} connections broken, longest exchange {worst:?}");
    if broken > 0 {
        return Err(format!(
            "{broken} of {SESSIONS} connections broke during the drain"
        ));
    }
    all_probes_down_withdraws(topo, &mux_ips[2])?;
    rejoin(topo, &mut sessions, &env)
}

/// ExaBGP of mux `i` stops by itself once its vipmux is gone (the session shares vipmux's fate).
fn exabgp_follows(topo: &Topology, i: usize) -> Result<(), String> {
    let pidfile = topo.state_dir().join(format!("pids/mux{i}-exabgp.pid"));
    let pid =
        std::fs::read_to_string(&pidfile).map_err(|e| format!("{}: {e}", pidfile.display()))?;
    let status = format!("/proc/{}/status", pid.trim());
    let gone = || {
        std::fs::read_to_string(&status).map_or(true, |s| {
            s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
    };
    if wait_for(WITHDRAW_BOUND, || gone().then_some(())).is_none() {
        return Err(format!("ExaBGP of mux{i} still runs after its vipmux died"));
    }
    Ok(())
}

/// mux1 comes back into the running pool: the router has two next hops again, the connections
/// ECMP moves to it keep their backend (rehash), and new connections reach it.
fn rejoin(
    topo: &Topology,
    sessions: &mut [(String, TcpSession)],
    env: &[(&str, &str)],
) -> Result<(), String> {
    let path = topo.state_dir().join("mux1.toml");
    topo.script(&["mux-start", "1", &path.display().to_string()], env)?;
    let ips = topo.list("MUX_IPS");
    let want = vec![ips[0].clone(), ips[2].clone()];
    if wait_for(ROUTE_BOUND, || (routes(topo) == want).then_some(())).is_none() {
        return Err(format!(
            "mux1 rejoined but the router has {:?}",
            routes(topo)
        ));
    }
    let (broken, worst) = check_sessions(sessions);
    eprintln!("mux1 rejoined: {broken}/{SESSIONS} connections broken, longest exchange {worst:?}");
    if broken > 0 {
        return Err(format!(
            "{broken} of {SESSIONS} connections broke when mux1 rejoined"
        ));
    }
    let moved = status_json(topo, 1)?["frontends"][0]["rules"][0]["active_flows"]
        .as_u64()
        .unwrap_or(0);
    let clients = topo.list("CLIENT_IPS");
    let to = format!("{}:7000", topo.get("VIP"));
    let mut fresh = Vec::new();
    for k in 0..SESSIONS {
        let mut s =
            TcpSession::connect(&topo.ns("client"), &to, Some(&clients[k % clients.len()]))?;
        s.whoami()?;
        fresh.push(s);
    }
    let now = status_json(topo, 1)?["frontends"][0]["rules"][0]["active_flows"]
        .as_u64()
        .unwrap_or(0);
    eprintln!(
        "mux1 rejoined: {moved} moved connections, then {} of {SESSIONS} new ones",
        now.saturating_sub(moved)
    );
    if now <= moved {
        return Err("no new connection reached the rejoined mux1".into());
    }
    Ok(())
}

/// Every member's probe fails (HTTP servers stopped): the VIP is withdrawn; back when they return.
fn all_probes_down_withdraws(topo: &Topology, mux: &str) -> Result<(), String> {
    let roles = topo.list("BACKEND_ROLES");
    for r in &roles {
        topo.backend("stop", r, &["http"])?;
    }
    if wait_for(WITHDRAW_BOUND, || routes(topo).is_empty().then_some(())).is_none() {
        return Err(format!(
            "all probes down, the VIP is still routed: {:?}",
            routes(topo)
        ));
    }
    let diag = Command::new(VIPMUX)
        .args(["diagnose", "--json", "--socket"])
        .arg(topo.state_dir().join("mux3.sock"))
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&diag.stdout).contains("vip_not_announced") {
        return Err(format!(
            "diagnose does not report the withdrawn VIP: {}",
            String::from_utf8_lossy(&diag.stdout)
        ));
    }
    let st = status_json(topo, 3)?;
    if st["bgp"]["withdrawn"]["fe"] != "no_eligible_member" {
        return Err(format!(
            "status does not say why the VIP is withdrawn: {}",
            st["bgp"]
        ));
    }
    for r in &roles {
        topo.backend("start", r, &[])?;
    }
    if wait_for(WITHDRAW_BOUND, || (routes(topo) == [mux]).then_some(())).is_none() {
        return Err(format!(
            "members back, the VIP is not re-announced: {:?}",
            routes(topo)
        ));
    }
    eprintln!("all probes down: withdrawn; members back: re-announced");
    Ok(())
}
