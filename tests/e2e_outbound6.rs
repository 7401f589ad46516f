//! Outbound SNAT of IPv6 members end to end, on the one-arm `--ipv6` topology (real Linux IPv6
//! stacks): the client namespace (2001:db8:9::10, behind the router, the MUX's `gateway6`) runs
//! a TCP echo server that answers `whoami` with the peer it sees; the backends b1..b3
//! (IPv6 default route via the MUX) connect to them through an outbound rule over the IPv6 pool
//! and the IPv6 frontend (2001:db8:1::100, which the router routes to the MUX):
//!
//! - each member's TCP connection leaves as the frontend address from a port of that member's
//!   block (a pool of 3: 1,024 ports each, in pool order from 1024), and the answer reaches the
//!   member;
//! - `vipmux flows` lists each member's translation as an outbound row from `[frontend]:port`;
//! - a member's connected UDP socket sending to a closed port of the internet host gets
//!   ECONNREFUSED: the host's ICMPv6 port unreachable, sent to the frontend, reaches the member;
//! - with `enable_tcp_reset`, an idle connection's translation expires with a RST to each end:
//!   the member's read ends with ECONNRESET at the idle timeout and the internet host's socket
//!   goes (both kernels accept their RST).
//!
//! Needs root; skipped otherwise (a failure with CI=true).

mod common;

use std::time::Duration;

use common::appliance::check;
use common::idle::{parse_outcome, reset_window, IdleClient};
use common::ipv6::{build6, pool6, up6, Frontends};
use common::{
    ns_exec, ns_exec_ok, scripts_dir, skip_unless_root, spawn_in_ns, wait_for, wait_until,
    Appliance, ConfigBuilder, NsChild, Topology,
};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
/// The echo servers' port in the client namespace.
const PORT: u16 = 7100;

/// A TCP echo server on [::]:[`PORT`] in the client namespace.
fn internet(topo: &Topology) -> Result<NsChild, String> {
    let echo = scripts_dir().join("echo.py");
    let pidfile = topo.state_dir().join("internet6-tcp.pid");
    let log = topo.state_dir().join("internet6-tcp.log");
    let (port, pf) = (PORT.to_string(), pidfile.to_string_lossy().to_string());
    let cmd = [
        "python3",
        &echo.to_string_lossy(),
        "tcp-server",
        "--name",
        "internet",
        "--port",
        &port,
        "--bind",
        "::",
        "--pidfile",
        &pf,
    ];
    let child = spawn_in_ns(&topo.ns("client"), &cmd, &log).map_err(|e| e.to_string())?;
    wait_for(Duration::from_secs(10), || pidfile.exists().then_some(()))
        .ok_or("the TCP server in the client namespace did not start")?;
    Ok(child)
}

/// The `client=ADDRESS:PORT` the internet host saw for `role`'s TCP `whoami`, retried for a
/// bounded time (the MUX resolves its IPv6 gateway after start).
fn seen_from(topo: &Topology, role: &str) -> Result<String, String> {
    let to = format!("[{}]:{PORT}", topo.get("CLIENT_IP6"));
    let echo = scripts_dir().join("echo.py");
    let cmd = [
        "python3",
        &echo.to_string_lossy(),
        "tcp-client",
        "--to",
        &to,
    ];
    let mut last = String::new();
    let out = wait_for(Duration::from_secs(30), || {
        ns_exec_ok(&topo.ns(role), &cmd).map_err(|e| last = e).ok()
    })
    .ok_or_else(|| format!("{role}'s TCP never got an answer: {last}"))?;
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("client="))
        .map(str::to_string)
        .ok_or_else(|| format!("{role}: answer {out:?}"))
}

/// A UDP datagram from `role` to a closed port of the internet host, then a receive: what the
/// socket reported (`refused` when the ICMPv6 port unreachable reached it).
const UDP_TO_CLOSED: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"x")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
"#;

/// `role`'s UDP to a closed port is refused (the ICMPv6 error about its translation reached it).
fn udp_refused(topo: &Topology, role: &str) -> Result<(), String> {
    let to = topo.get("CLIENT_IP6");
    let cmd = ["python3", "-c", UDP_TO_CLOSED, to, "7999"];
    let out = ns_exec_ok(&topo.ns(role), &cmd)?;
    if out.trim() != "refused" {
        return Err(format!(
            "{role}'s UDP to a closed port of the internet host: {out:?}, not refused (the ICMPv6 port unreachable did not reach it)"
        ));
    }
    Ok(())
}

/// `vipmux flows` lists an outbound row of `role` from `[vip6]:port`.
fn listed(app: &Appliance, role: &str, vip6: &str) -> Result<(), String> {
    let rows = app.flows_json()?["flows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let prefix = format!("[{vip6}]:");
    let found = rows.iter().any(|r| {
        r["outbound"] == true
            && r["member"] == role
            && r["vip"].as_str().is_some_and(|v| v.starts_with(&prefix))
    });
    if !found {
        return Err(format!(
            "flows does not list {role}'s translation: {rows:?}"
        ));
    }
    Ok(())
}

/// Every member's connection is seen from the frontend address and a port of its block, and
/// listed by `flows`; a member's UDP to a closed port is refused.
fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _server = internet(topo)?;
    let vip6 = topo.get("VIP6");
    for (i, role) in ALL.iter().enumerate() {
        let first = 1024 + 1024 * i as u16;
        let peer = seen_from(topo, role)?;
        let (ip, port) = peer
            .rsplit_once(':')
            .ok_or_else(|| format!("peer {peer:?}"))?;
        let inside = port
            .parse::<u16>()
            .is_ok_and(|p| (first..first + 1024).contains(&p));
        if ip != vip6 || !inside {
            return Err(format!(
                "{role}: the internet host saw {peer}, not {vip6} with a port of {first}..{}",
                first + 1024
            ));
        }
        listed(app, role, vip6)?;
    }
    udp_refused(topo, "b1")
}

/// The one-arm `--ipv6` topology and vipmux with the IPv6 outbound rule over b1..b3 (`extra`
/// lines added to the rule).
fn start(extra: &str) -> (Topology, Appliance) {
    let topo = up6("one-arm", &[]);
    let c = pool6(ConfigBuilder::one_arm(), "web6", &ALL, "").raw(&format!(
        "[[outbound_rules]]\nname = \"egress6\"\nfrontends = [\"fe\"]\nbackend_pool = \"web6\"\nprotocol = \"all\"\n{extra}\n"
    ));
    let text = build6(&c, &topo, Frontends::Ipv6);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    (topo, app)
}

#[test]
fn ipv6_members_connect_out_as_the_ipv6_frontend() {
    if skip_unless_root("ipv6_members_connect_out_as_the_ipv6_frontend") {
        return;
    }
    let (topo, app) = start("");
    check(&app, scenario(&topo, &app));
}

/// The outbound rule's idle timeout in the reset test.
const IDLE_SECS: u64 = 3;

/// b1's idle connection to the internet host ends with ECONNRESET at the idle timeout, the
/// host's socket goes too, and the appliance counts the RST pair.
fn idle_with_reset(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _server = internet(topo)?;
    seen_from(topo, "b1")?;
    let to = format!("{}:{PORT}", topo.get("CLIENT_IP6"));
    let client = IdleClient::start(&topo.ns("b1"), &to, IDLE_SECS + 5, false)?;
    let ready = client.line(Duration::from_secs(10))?;
    if !ready.starts_with("READY") {
        return Err(format!("b1's idle client: {ready}"));
    }
    let established = || {
        let filter = format!("( sport = :{PORT} )");
        let out = ns_exec(
            &topo.ns("client"),
            &["ss", "-tnH", "state", "established", &filter],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    if established().is_empty() {
        return Err("the internet host shows no connection from b1".into());
    }
    let (word, secs) = parse_outcome(&client.line(Duration::from_secs(IDLE_SECS + 10))?)?;
    eprintln!("b1's read ended with {word} after {secs:.3} s (idle timeout {IDLE_SECS} s)");
    let (lo, hi) = reset_window(IDLE_SECS);
    if word != "RESET" || secs < lo || secs > hi {
        return Err(format!(
            "{word} after {secs} s, not ECONNRESET within {lo}..{hi} s"
        ));
    }
    if !wait_until(Duration::from_secs(5), || established().is_empty()) {
        return Err(format!(
            "the internet host still holds it: {}",
            established()
        ));
    }
    wait_for(Duration::from_secs(5), || {
        let c = app.counters_json().ok()?;
        (c["resets_sent"].as_u64()? >= 2).then_some(())
    })
    .ok_or_else(|| "resets_sent never showed the pair".to_string())
}

#[test]
fn ipv6_outbound_idle_timeout_with_reset_closes_both_sockets() {
    if skip_unless_root("ipv6_outbound_idle_timeout_with_reset_closes_both_sockets") {
        return;
    }
    let (topo, app) = start(&format!(
        "idle_timeout_seconds = {IDLE_SECS}\nenable_tcp_reset = true"
    ));
    check(&app, idle_with_reset(&topo, &app));
}
