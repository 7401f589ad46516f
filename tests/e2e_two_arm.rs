//! End to end on the two-arm topology: vipmux with two `net_af_packet` ports, the
//! client side (VIP 10.9.0.100 on-link, answered by the MUX's ARP) and the backend LAN. HTTP and UDP
//! through the VIP reach every backend, which see the client's own address, and the replies come
//! back through the MUX. The backends' health probes leave from the MUX's address on the backend
//! LAN (the second interface), not the first interface's. Also exercises the harness's two-arm
//! configuration. Needs root; skipped otherwise.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::appliance::{check, http_backend, start_or_panic};
use common::{skip_unless_root, udp_from, Appliance, BackendReply, ConfigBuilder, Topology};

const ALL: [&str; 3] = ["b1", "b2", "b3"];

fn config() -> ConfigBuilder {
    ConfigBuilder::two_arm()
        .pool("web", &ALL, "")
        .probe_http("http-80", 80, 1, 2)
        .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "")
        .lb_rule("echo-udp", "udp", 7000, 7000, "web", Some("http-80"), "")
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    probes_from_the_backend_lan(topo)?;
    let client = topo.ns("client");
    let vip = topo.get("VIP");
    let mut seen = BTreeSet::new();
    for i in 0..30 {
        let r = http_backend(&client, &format!("http://{vip}/"), None)
            .map_err(|e| format!("request {i}: {e}"))?;
        if r.client_ip != topo.get("CLIENT_IP") {
            return Err(format!("backend saw source {}: {r:?}", r.client_ip));
        }
        seen.insert(r.backend);
    }
    if seen.len() != ALL.len() {
        return Err(format!("30 requests reached only {seen:?}"));
    }
    for i in 0..10 {
        let got = udp_from(&client, &format!("{vip}:7000"), "whoami")
            .map_err(|e| format!("udp {i}: {e}"))?;
        let r = BackendReply::parse(&got).ok_or_else(|| format!("udp {i}: unexpected {got:?}"))?;
        if r.client_ip != topo.get("CLIENT_IP") {
            return Err(format!("udp {i}: backend saw {r:?}"));
        }
    }
    Ok(())
}

/// Every health probe a backend logged came from the MUX's address on the backends' LAN.
fn probes_from_the_backend_lan(topo: &Topology) -> Result<(), String> {
    let mux = topo.get("MUX_BACKEND_IP");
    for b in ALL {
        let log = topo.state_dir().join("logs").join(format!("{b}-http.log"));
        let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let probes: Vec<&str> = text.lines().filter(|l| l.contains("GET /health")).collect();
        if probes.is_empty() {
            return Err(format!("{b}: no probe logged"));
        }
        if let Some(l) = probes.iter().find(|l| l.split(' ').next() != Some(mux)) {
            return Err(format!(
                "{b}: a probe came from elsewhere than {mux}: {l:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn two_arm_nat() {
    if skip_unless_root("two_arm_nat") {
        return;
    }
    let topo = Topology::up("two-arm", &[]).expect("topology up");
    let app = start_or_panic(&topo, &config());
    check(&app, scenario(&topo, &app));
}
