//! End to end, Floating IP delivered through a tunnel (`dsr_encapsulation = "ipip"` and `"gue"`),
//! checked against a real decapsulating receiver: the one-arm topology with `--return dsr`
//! (backends hold the VIP on `lo`, default route via the router), and in every backend namespace
//! `scripts/netns/decap.py`, which strips the outer header (IPv4, or IPv4 + UDP + GUE) and hands
//! the inner packet to the namespace's stack through a TUN device (the kernel needs no ipip or fou
//! module). The GUE pool uses a non-default `gue_port`, and the receiver listens only there.
//!
//! HTTP and UDP through the VIP succeed; the backends see the VIP as destination and the client as
//! source; the requests spread over more than one backend; every answering backend's TUN device
//! received packets through its receiver, which rejected none and exits on SIGTERM; and the replies
//! reach the router straight from the backends (nftables counters in the router namespace, by
//! source MAC: none from the MUX's MAC). Needs root; skipped otherwise (a failure with
//! `VIPMUX_REQUIRE_NETNS=1`).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::appliance::{check, http_backend, start_or_panic};
use common::decap::{tun_rx_packets, Receivers, DEV};
use common::{skip_unless_root, udp_from, Appliance, BackendReply, ConfigBuilder, Topology};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
const REQUESTS: usize = 40;
/// The GUE pool's port: not the default, so the test sees the pool's setting honoured.
const GUE_PORT: u16 = 6081;

/// The tunnel under test.
#[derive(Debug, Clone, Copy)]
enum Tunnel {
    Ipip,
    Gue,
}

impl Tunnel {
    fn pool_extra(self) -> String {
        match self {
            Tunnel::Ipip => "dsr_encapsulation = \"ipip\"".to_string(),
            Tunnel::Gue => format!("dsr_encapsulation = \"gue\"\ngue_port = {GUE_PORT}"),
        }
    }

    fn receiver_args(self) -> Vec<String> {
        match self {
            Tunnel::Ipip => vec!["ipip".into()],
            Tunnel::Gue => vec!["gue".into(), "--port".into(), GUE_PORT.to_string()],
        }
    }
}

fn config(tunnel: Tunnel) -> ConfigBuilder {
    ConfigBuilder::one_arm_floating(&tunnel.pool_extra())
}

/// Checks one backend answer: the VIP as destination, the client as source.
fn check_reply(topo: &Topology, what: &str, r: &BackendReply) -> Result<(), String> {
    if r.dst != topo.get("VIP") {
        return Err(format!("{what}: backend saw destination {}: {r:?}", r.dst));
    }
    if r.client_ip != topo.get("CLIENT_IP") {
        return Err(format!("{what}: backend saw source {}: {r:?}", r.client_ip));
    }
    Ok(())
}

fn scenario(topo: &Topology, app: &Appliance, rx: &mut Receivers) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    topo.install_reply_counters("e2e_encap")?;
    let client = topo.ns("client");
    let vip = topo.get("VIP");
    let url = format!("http://{vip}:{}/", topo.get("HTTP_PORT"));
    let mut seen = BTreeSet::new();
    for i in 0..REQUESTS {
        let what = format!("request {i}");
        let r = http_backend(&client, &url, None)
            .map_err(|e| format!("{what}: {e}\nreceivers:\n{}", rx.logs()))?;
        check_reply(topo, &what, &r)?;
        if r.dport != 80 {
            return Err(format!("{what}: backend saw port {}: {r:?}", r.dport));
        }
        seen.insert(r.backend);
    }
    if seen.len() < 2 {
        return Err(format!("{REQUESTS} requests all went to {seen:?}"));
    }
    for role in &seen {
        let n = tun_rx_packets(topo, role)?;
        if n < 3 {
            return Err(format!(
                "{role} answered but its {DEV} received only {n} packets"
            ));
        }
    }
    let (via_mux, total) = topo.reply_counters("e2e_encap")?;
    eprintln!(
        "{REQUESTS} requests over {seen:?}: router saw {total} reply packets from the backends, \
         {via_mux} from the MUX's MAC"
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
    for i in 0..10 {
        let what = format!("udp {i}");
        let got = udp_from(&client, &format!("{vip}:7000"), "whoami")
            .map_err(|e| format!("{what}: {e}"))?;
        let r = BackendReply::parse(&got).ok_or_else(|| format!("{what}: unexpected {got:?}"))?;
        check_reply(topo, &what, &r)?;
    }
    eprintln!("receivers: {}", rx.stop()?);
    Ok(())
}

fn run(test: &str, tunnel: Tunnel) {
    if skip_unless_root(test) {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "dsr"]).expect("topology up");
    let mut rx =
        Receivers::start(&topo, &ALL, &tunnel.receiver_args()).unwrap_or_else(|e| panic!("{e}"));
    let app = start_or_panic(&topo, &config(tunnel));
    check(&app, scenario(&topo, &app, &mut rx));
}

#[test]
fn floating_ip_ipip_to_decapsulating_backends() {
    run("floating_ip_ipip_to_decapsulating_backends", Tunnel::Ipip);
}

#[test]
fn floating_ip_gue_to_decapsulating_backends() {
    run("floating_ip_gue_to_decapsulating_backends", Tunnel::Gue);
}
