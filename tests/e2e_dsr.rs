//! End to end, Floating IP with MAC rewrite (`dsr_encapsulation = "none"`): the one-arm
//! topology with `--return dsr` (backends hold the VIP on `lo`, default route via the router).
//! HTTP and UDP through the VIP succeed; the backends see the VIP as destination (the servers'
//! `dst=` field) and the client as source; and the replies reach the router straight from the
//! backends: nftables counters in the router namespace count reply packets (source VIP:80) arriving
//! on its LAN side, by source MAC — none come from the MUX's MAC. Needs root; skipped otherwise.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::appliance::{check, http_backend, start_or_panic};
use common::{
    ns_exec_ok, skip_unless_root, udp_from, wait_for, Appliance, BackendReply, ConfigBuilder,
    Topology,
};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
const REQUESTS: usize = 40;

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", &ALL, "dsr_encapsulation = \"none\"")
        .probe_http("http-80", 80, 1, 2)
        .lb_rule(
            "web",
            "tcp",
            80,
            80,
            "web",
            Some("http-80"),
            "enable_floating_ip = true",
        )
        .lb_rule(
            "echo-udp",
            "udp",
            7000,
            7000,
            "web",
            Some("http-80"),
            "enable_floating_ip = true",
        )
}

/// nftables counters in the router: reply packets from VIP:80 entering on the LAN side (eth1),
/// first those whose source MAC is the MUX's, then all of them.
fn install_reply_counters(topo: &Topology) -> Result<(), String> {
    let rules = format!(
        "table ip e2e_dsr {{\n  chain pre {{\n    type filter hook prerouting priority -300; policy accept;\n    iifname \"eth1\" ip saddr {vip} tcp sport 80 ether saddr {mac} counter\n    iifname \"eth1\" ip saddr {vip} tcp sport 80 counter\n  }}\n}}\n",
        vip = topo.get("VIP"),
        mac = topo.get("MUX_MAC"),
    );
    let file = topo.state_dir().join("e2e_dsr.nft");
    std::fs::write(&file, rules).map_err(|e| e.to_string())?;
    ns_exec_ok(&topo.ns("router"), &["nft", "-f", &file.to_string_lossy()]).map(|_| ())
}

/// (via the MUX's MAC, total) reply packets counted by the router.
fn reply_counters(topo: &Topology) -> Result<(u64, u64), String> {
    let out = ns_exec_ok(
        &topo.ns("router"),
        &["nft", "list", "table", "ip", "e2e_dsr"],
    )?;
    let counts: Vec<u64> = out
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "packets")
        .filter_map(|w| w[1].parse().ok())
        .collect();
    match counts.as_slice() {
        [mux, total] => Ok((*mux, *total)),
        _ => Err(format!("unexpected nft listing:\n{out}")),
    }
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    install_reply_counters(topo)?;
    let client = topo.ns("client");
    let vip = topo.get("VIP");
    let url = format!("http://{vip}:{}/", topo.get("HTTP_PORT"));
    let rx_before = app.rx_count()?;
    let mut seen = BTreeSet::new();
    for i in 0..REQUESTS {
        let r = http_backend(&client, &url, None).map_err(|e| format!("request {i}: {e}"))?;
        if r.dst != vip || r.dport != 80 {
            return Err(format!(
                "backend saw destination {}:{} instead of the VIP: {r:?}",
                r.dst, r.dport
            ));
        }
        if r.client_ip != topo.get("CLIENT_IP") {
            return Err(format!(
                "backend saw source {} instead of the client: {r:?}",
                r.client_ip
            ));
        }
        seen.insert(r.backend);
    }
    let rx_delta = app.rx_count()? - rx_before;
    if seen.len() < 2 {
        return Err(format!("{REQUESTS} requests all went to {seen:?}"));
    }
    let (via_mux, total) = reply_counters(topo)?;
    eprintln!(
        "{REQUESTS} requests over {seen:?}: router saw {total} reply packets from the backends, \
         {via_mux} from the MUX's MAC; MUX received {rx_delta} frames"
    );
    if total < REQUESTS as u64 * 3 {
        return Err(format!(
            "router counted only {total} reply packets for {REQUESTS} requests"
        ));
    }
    if via_mux != 0 {
        return Err(format!(
            "{via_mux} of {total} reply packets came through the MUX"
        ));
    }
    // The worker's runtime accounting saw the traffic: busy iterations with time, never more
    // busy iterations than iterations or than frames.
    let runtime = wait_for(Duration::from_secs(5), || {
        app.worker_runtime()
            .ok()
            .filter(|&(rx, _, busy, ns)| rx >= rx_delta && busy > 0 && ns > 0)
    })
    .ok_or_else(|| {
        format!(
            "worker runtime never showed the traffic: {:?}",
            app.worker_runtime()
        )
    })?;
    let (rx, polls, busy, ns) = runtime;
    if busy > polls || busy > rx {
        return Err(format!("inconsistent runtime: {runtime:?}"));
    }
    eprintln!(
        "worker 0: {polls} polls, {busy} busy, {rx} frames, {:.0} ns busy per frame",
        ns as f64 / rx as f64
    );

    // UDP with floating IP: the reply comes from the VIP, the backend saw the VIP.
    for i in 0..10 {
        let got = udp_from(&client, &format!("{vip}:7000"), "whoami")
            .map_err(|e| format!("udp {i}: {e}"))?;
        let r = BackendReply::parse(&got).ok_or_else(|| format!("udp {i}: unexpected {got:?}"))?;
        if r.dst != vip || r.client_ip != topo.get("CLIENT_IP") {
            return Err(format!("udp {i}: backend saw {r:?}"));
        }
    }
    Ok(())
}

#[test]
fn floating_ip_mac_rewrite_direct_return() {
    if skip_unless_root("floating_ip_mac_rewrite_direct_return") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "dsr"]).expect("topology up");
    let app = start_or_panic(&topo, &config());
    check(&app, scenario(&topo, &app));
}
