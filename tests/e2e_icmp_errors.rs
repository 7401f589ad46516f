//! ICMP errors about flows through the MUX (docs/design.md §4.4), end to end on the one-arm
//! topology.
//!
//! Path-MTU discovery, on the one-arm topology
//! with one backend: the router's link toward the client gets MTU 1000 (the client's side keeps
//! 1500, so the client advertises an MSS of 1460 and the member sends full-size segments). The
//! router cannot forward them and answers "fragmentation needed, MTU 1000" to their source:
//!
//! - NAT rule: the source is the VIP (the MUX reverse-translated the member's reply), so the error
//!   goes to the MUX, which must send it on to the member with the quote translated back to the
//!   member's address and port;
//! - floating IP (members answer from the VIP on their loopback, straight through the router):
//!   the error to the VIP reaches the MUX too, which must hand it to the member unchanged (MAC
//!   rewrite).
//!
//! Either way a 1 MB HTTP download completes only when the member's kernel learns the smaller path
//! MTU: without the delivery the transfer stalls (Linux's default `tcp_mtu_probing = 0` never
//! recovers from a black hole) and curl times out. The test also checks that the member's kernel
//! cached the lowered MTU (`ip route get` in its namespace) and the MUX's `icmp_errors` counter.
//!
//! The other direction: a client's UDP datagram to a rule whose member has nothing listening earns
//! a port unreachable from the member, which the MUX must reverse-translate (source and quoted
//! destination → the VIP) so that the client's connected socket sees the refusal.
//!
//! Needs root; skipped otherwise.

mod common;

use std::time::Duration;

use common::appliance::{check, http_backend, start_or_panic};
use common::{ns_exec, ns_exec_ok, skip_unless_root, wait_for, Appliance, ConfigBuilder, Topology};

/// The MTU of the router's link toward the client.
const SMALL_MTU: &str = "1000";
/// Bytes downloaded.
const SIZE: usize = 1 << 20;

/// Narrows the router's client-side link and checks that a large download through the VIP
/// completes, that the member cached the small path MTU and that the MUX delivered the error.
fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let client = topo.ns("client");
    let vip = topo.get("VIP");
    // Small answers first (neighbours resolved, the rule works).
    wait_for(Duration::from_secs(15), || {
        http_backend(&client, &format!("http://{vip}/"), None).ok()
    })
    .ok_or("no HTTP answer through the VIP")?;
    ns_exec_ok(
        &topo.ns("router"),
        &["ip", "link", "set", "eth0", "mtu", SMALL_MTU],
    )?;
    let url = format!("http://{vip}/bytes/{SIZE}");
    let out = ns_exec(
        &client,
        &[
            "curl",
            "-sS",
            "--fail",
            "-m",
            "30",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &url,
        ],
    );
    let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || got != SIZE.to_string() {
        return Err(format!(
            "download of {SIZE} bytes through the 1000-byte hop failed (PMTUD black hole?): \
             got {got:?}, {}; counters: {}",
            String::from_utf8_lossy(&out.stderr).trim(),
            app.counters_json()
                .map(|c| c["icmp_errors"].to_string())
                .unwrap_or_default()
        ));
    }
    let route = ns_exec_ok(
        &topo.ns("b1"),
        &["ip", "route", "get", topo.get("CLIENT_IP")],
    )?;
    if !route.contains(&format!("mtu {SMALL_MTU}")) {
        return Err(format!(
            "the member cached no path MTU {SMALL_MTU}: {route}"
        ));
    }
    // Worker counters are published periodically: wait for the delivery to show.
    let delivered = |c: &serde_json::Value| {
        let n = |k: &str| c["icmp_errors"][k].as_u64().unwrap_or(0);
        n("to_member") + n("to_member_hashed")
    };
    let c = wait_for(Duration::from_secs(10), || {
        app.counters_json().ok().filter(|c| delivered(c) > 0)
    })
    .ok_or_else(|| {
        format!(
            "no ICMP error counted as delivered: {}",
            app.counters_json()
                .map(|c| c.to_string())
                .unwrap_or_default()
        )
    })?;
    eprintln!(
        "{SIZE} bytes through a {SMALL_MTU}-byte hop; member route: {}; icmp_errors: {}",
        route.trim(),
        c["icmp_errors"]
    );
    Ok(())
}

/// A UDP datagram from a connected client socket to VIP:7100 (no listener on the member) must be
/// refused: the member's port unreachable reached the client as from the VIP.
fn refused_scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    const SCRIPT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], 7100))
result = "TIMEOUT"
for attempt in range(5):
    try:
        s.send(b"x")
        s.recv(100)
        result = "ANSWER"
        break
    except ConnectionRefusedError:
        result = "REFUSED"
        break
    except socket.timeout:
        pass
print(result)
"#;
    let vip = topo.get("VIP");
    let got = ns_exec_ok(&topo.ns("client"), &["python3", "-c", SCRIPT, vip])?;
    if got.trim() != "REFUSED" {
        return Err(format!("the client's datagram was not refused: {got}"));
    }
    let c = wait_for(Duration::from_secs(10), || {
        app.counters_json()
            .ok()
            .filter(|c| c["icmp_errors"]["to_client"].as_u64().unwrap_or(0) > 0)
    })
    .ok_or("no ICMP error counted to_client")?;
    eprintln!(
        "port unreachable reached the client: icmp_errors {}",
        c["icmp_errors"]
    );
    Ok(())
}

#[test]
fn member_port_unreachable_reaches_the_client() {
    if skip_unless_root("member_port_unreachable_reaches_the_client") {
        return;
    }
    let topo = Topology::up("one-arm", &["--backends", "1"]).expect("topology up");
    let config = ConfigBuilder::one_arm()
        .pool("web", &["b1"], "")
        .lb_rule("closed", "udp", 7100, 7100, "web", None, "");
    let app = start_or_panic(&topo, &config);
    check(&app, refused_scenario(&topo, &app));
}

/// Runs the scenario on the one-arm topology (one backend, `--return ret`) with rule `extra`.
fn run(name: &str, ret: &str, extra: &str) {
    if skip_unless_root(name) {
        return;
    }
    let topo = Topology::up("one-arm", &["--backends", "1", "--return", ret]).expect("topology up");
    let config = ConfigBuilder::one_arm()
        .pool("web", &["b1"], "")
        .lb_rule("web", "tcp", 80, 80, "web", None, extra);
    let app = start_or_panic(&topo, &config);
    check(&app, scenario(&topo, &app));
}

#[test]
fn pmtud_through_nat() {
    run("pmtud_through_nat", "gateway", "");
}

#[test]
fn pmtud_through_floating_ip() {
    run(
        "pmtud_through_floating_ip",
        "dsr",
        "enable_floating_ip = true",
    );
}
