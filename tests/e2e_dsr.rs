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
    skip_unless_root, udp_from, wait_for, Appliance, BackendReply, ConfigBuilder, Topology,
};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
const REQUESTS: usize = 40;

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm_floating("dsr_encapsulation = \"none\"")
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    topo.install_reply_counters("e2e_dsr")?;
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
    let (via_mux, total) = topo.reply_counters("e2e_dsr")?;
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
