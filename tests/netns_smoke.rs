//! Smoke tests of the namespace topologies with the Linux kernel stand-in MUX (nftables DNAT): real
//! TCP/UDP traffic from the client namespace to the VIP reaches every backend, the backends see the
//! client's address, and teardown leaves no namespace behind. Needs root; skipped otherwise.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    curl_from, http_status_from, namespaces_with_prefix, skip_unless_root, spawn_in_ns, tcp_from,
    udp_from, wait_until, BackendReply, Topology,
};

const REQUESTS: usize = 30;

/// Sends `REQUESTS` HTTP requests from the client to the VIP; returns the answers per backend.
fn http_spread(topo: &Topology) -> BTreeMap<String, Vec<BackendReply>> {
    let client = topo.ns("client");
    let url = format!("http://{}:{}/", topo.get("VIP"), topo.get("HTTP_PORT"));
    let mut seen: BTreeMap<String, Vec<BackendReply>> = BTreeMap::new();
    for i in 0..REQUESTS {
        let body = curl_from(&client, &url).unwrap_or_else(|e| panic!("request {i}: {e}"));
        let reply = BackendReply::parse(&body)
            .unwrap_or_else(|| panic!("request {i}: unexpected answer {body:?}"));
        seen.entry(reply.backend.clone()).or_default().push(reply);
    }
    seen
}

/// Asserts the answers came from every backend, each saw the client address, and `dst` is as expected.
fn assert_spread(topo: &Topology, seen: &BTreeMap<String, Vec<BackendReply>>, dst_is_vip: bool) {
    let roles = topo.list("BACKEND_ROLES");
    let ips = topo.list("BACKEND_IPS");
    for role in &roles {
        assert!(
            seen.contains_key(role),
            "backend {role} got none of {REQUESTS} requests: {seen:?}"
        );
    }
    assert_eq!(seen.values().map(Vec::len).sum::<usize>(), REQUESTS);
    for (role, replies) in seen {
        let idx = roles
            .iter()
            .position(|r| r == role)
            .unwrap_or_else(|| panic!("answer from unknown backend {role}"));
        for r in replies {
            assert_eq!(
                r.client_ip,
                topo.get("CLIENT_IP"),
                "{role} saw another source: {r:?}"
            );
            let want_dst = if dst_is_vip {
                topo.get("VIP")
            } else {
                &ips[idx]
            };
            assert_eq!(r.dst, want_dst, "{role} was reached at {r:?}");
            assert_eq!(r.dport.to_string(), topo.get("HTTP_PORT"));
        }
    }
}

/// UDP and TCP echo through the VIP, plus the `whoami` identity answer over UDP.
fn assert_echo(topo: &Topology) {
    let client = topo.ns("client");
    let to = format!("{}:{}", topo.get("VIP"), topo.get("ECHO_PORT"));
    assert_eq!(
        udp_from(&client, &to, "ping-udp").expect("udp echo"),
        "ping-udp"
    );
    let who = udp_from(&client, &to, "whoami").expect("udp whoami");
    let who = BackendReply::parse(&who).unwrap_or_else(|| panic!("udp whoami answer {who:?}"));
    assert_eq!(who.client_ip, topo.get("CLIENT_IP"));
    assert!(topo.list("BACKEND_ROLES").contains(&who.backend));
    assert_eq!(
        tcp_from(&client, &to, "ping-tcp").expect("tcp echo"),
        "ping-tcp"
    );
}

fn assert_gone(prefix: &str) {
    let left = namespaces_with_prefix(prefix);
    assert!(left.is_empty(), "namespaces left after down: {left:?}");
}

#[test]
fn one_arm_kernel_mux_nat() {
    if skip_unless_root("one_arm_kernel_mux_nat") {
        return;
    }
    let topo = Topology::up("one-arm", &["--mux", "kernel"]).expect("one-arm up");
    let prefix = topo.prefix().to_string();
    assert_eq!(topo.get("MUX_IF"), "mux0");
    assert_eq!(topo.get("VIP"), "10.1.0.100");
    assert_eq!(topo.list("BACKEND_IPS").len(), 3);
    let seen = http_spread(&topo);
    assert_spread(&topo, &seen, false);
    assert_echo(&topo);
    topo.down().expect("one-arm down");
    assert_gone(&prefix);
}

#[test]
fn one_arm_kernel_mux_dsr() {
    if skip_unless_root("one_arm_kernel_mux_dsr") {
        return;
    }
    let topo =
        Topology::up("one-arm", &["--mux", "kernel", "--return", "dsr"]).expect("one-arm dsr up");
    let prefix = topo.prefix().to_string();
    let seen = http_spread(&topo);
    assert_spread(&topo, &seen, true);
    assert_echo(&topo);
    topo.down().expect("one-arm dsr down");
    assert_gone(&prefix);
}

#[test]
fn one_arm_kernel_mux_policy_return() {
    if skip_unless_root("one_arm_kernel_mux_policy_return") {
        return;
    }
    let topo = Topology::up("one-arm", &["--mux", "kernel", "--return", "policy"])
        .expect("one-arm policy up");
    let prefix = topo.prefix().to_string();
    let seen = http_spread(&topo);
    assert_spread(&topo, &seen, false);
    assert_echo(&topo);
    topo.down().expect("one-arm policy down");
    assert_gone(&prefix);
}

#[test]
fn two_arm_kernel_mux_nat_and_outbound() {
    if skip_unless_root("two_arm_kernel_mux_nat_and_outbound") {
        return;
    }
    let topo = Topology::up("two-arm", &["--mux", "kernel"]).expect("two-arm up");
    let prefix = topo.prefix().to_string();
    assert_eq!(topo.get("MUX_CLIENT_IF"), "mux0");
    assert_eq!(topo.get("MUX_BACKEND_IF"), "mux1");
    let seen = http_spread(&topo);
    assert_spread(&topo, &seen, false);
    assert_echo(&topo);

    // Outbound rule: a backend's own connection leaves with the VIP as source.
    let echo = common::scripts_dir().join("echo.py");
    let echo = echo.to_string_lossy();
    // In pids/ so that teardown also stops it should this test fail before the guard drops.
    let pidfile = topo.state_dir().join("pids").join("client-udp.pid");
    let pidfile_s = pidfile.to_string_lossy();
    let server = spawn_in_ns(
        &topo.ns("client"),
        &[
            "python3",
            &echo,
            "udp-server",
            "--name",
            "client",
            "--port",
            "9999",
            "--pidfile",
            &pidfile_s,
        ],
        &topo.state_dir().join("logs").join("client-udp.log"),
    )
    .expect("start client udp server");
    assert!(
        wait_until(Duration::from_secs(10), || pidfile.exists()),
        "client udp server did not start"
    );
    let who = udp_from(
        &topo.ns("b1"),
        &format!("{}:9999", topo.get("CLIENT_IP")),
        "whoami",
    );
    drop(server);
    let who = who.expect("backend -> client udp");
    let who = BackendReply::parse(&who).unwrap_or_else(|| panic!("answer {who:?}"));
    assert_eq!(who.client_ip, topo.get("VIP"), "outbound SNAT source");

    topo.down().expect("two-arm down");
    assert_gone(&prefix);
}

#[test]
fn backend_health_flag_and_stop() {
    if skip_unless_root("backend_health_flag_and_stop") {
        return;
    }
    let topo = Topology::up("one-arm", &["--mux", "kernel", "--backends", "1"]).expect("up");
    let router = topo.ns("router");
    let health = "http://10.1.0.11/health";
    assert_eq!(http_status_from(&router, health), Some(200));
    topo.backend("health", "b1", &["fail"])
        .expect("health fail");
    assert_eq!(http_status_from(&router, health), Some(503));
    topo.backend("health", "b1", &["ok"]).expect("health ok");
    assert_eq!(http_status_from(&router, health), Some(200));
    topo.backend("stop", "b1", &["http"]).expect("stop http");
    assert_eq!(http_status_from(&router, health), None);
    assert!(topo
        .backend("status", "b1", &[])
        .expect("status")
        .contains("http down"));
    topo.backend("start", "b1", &[]).expect("restart");
    assert_eq!(http_status_from(&router, health), Some(200));
}

#[test]
fn drop_tears_down_on_panic() {
    if skip_unless_root("drop_tears_down_on_panic") {
        return;
    }
    let prefix = std::thread::spawn(|| {
        let topo = Topology::up("two-arm", &["--mux", "kernel", "--no-servers"]).expect("up");
        let prefix = topo.prefix().to_string();
        assert!(!common::namespaces_with_prefix(&prefix).is_empty());
        std::panic::panic_any(prefix);
    })
    .join()
    .expect_err("thread must panic");
    let prefix = prefix.downcast::<String>().expect("panic payload");
    assert_gone(&prefix);
}
