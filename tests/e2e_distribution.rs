//! End to end, `load_distribution = "source_ip"` (the 2-tuple hash): the one-arm topology with
//! eight client addresses (10.9.0.10 and 10.9.0.11..17 added to the client namespace). 50 HTTP
//! connections from one address all land on one backend; every address sticks to one backend
//! across its connections, and the addresses together use more than one backend. A second rule on
//! the same pool with the default 5-tuple distribution spreads one address's connections over
//! several backends, the control case. Needs root; skipped otherwise.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::appliance::{check, http_backend, start_or_panic};
use common::{ns_exec_ok, skip_unless_root, Appliance, ConfigBuilder, Topology};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
const EXTRA_CLIENTS: [&str; 7] = [
    "10.9.0.11",
    "10.9.0.12",
    "10.9.0.13",
    "10.9.0.14",
    "10.9.0.15",
    "10.9.0.16",
    "10.9.0.17",
];

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", &ALL, "")
        .probe_http("http-80", 80, 1, 2)
        .lb_rule(
            "sticky",
            "tcp",
            80,
            80,
            "web",
            Some("http-80"),
            "load_distribution = \"source_ip\"",
        )
        // The control case: the same backends through another frontend port, 5-tuple hashing.
        // Floating IP is off, so it needs its own backend port: the echo port, asked `whoami`.
        .lb_rule("spread", "tcp", 7000, 7000, "web", Some("http-80"), "")
}

/// Backends chosen for `n` HTTP connections from source `src`.
fn backends_for(topo: &Topology, src: &str, n: usize) -> Result<Vec<String>, String> {
    let client = topo.ns("client");
    let url = format!("http://{}:{}/", topo.get("VIP"), topo.get("HTTP_PORT"));
    (0..n)
        .map(|i| {
            let r = http_backend(&client, &url, Some(src))
                .map_err(|e| format!("{src} request {i}: {e}"))?;
            if r.client_ip != src {
                return Err(format!("backend saw {} instead of {src}", r.client_ip));
            }
            Ok(r.backend)
        })
        .collect()
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let client = topo.ns("client");
    for a in EXTRA_CLIENTS {
        ns_exec_ok(
            &client,
            &["ip", "addr", "add", &format!("{a}/24"), "dev", "eth0"],
        )?;
    }
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;

    let main_ip = topo.get("CLIENT_IP").to_string();
    let first = backends_for(topo, &main_ip, 50)?;
    let used: BTreeSet<_> = first.iter().cloned().collect();
    if used.len() != 1 {
        return Err(format!(
            "50 connections from {main_ip} spread over {used:?}"
        ));
    }

    let mut by_addr: BTreeMap<String, String> = BTreeMap::new();
    by_addr.insert(main_ip.clone(), first[0].clone());
    for a in EXTRA_CLIENTS {
        let got = backends_for(topo, a, 10)?;
        let used: BTreeSet<_> = got.iter().cloned().collect();
        if used.len() != 1 {
            return Err(format!("10 connections from {a} spread over {used:?}"));
        }
        by_addr.insert(a.to_string(), got[0].clone());
    }
    let backends: BTreeSet<_> = by_addr.values().cloned().collect();
    eprintln!("source_ip mapping: {by_addr:?}");
    if backends.len() < 2 {
        return Err(format!("8 client addresses all hashed to {backends:?}"));
    }

    // Control: 5-tuple hashing spreads one address's connections.
    let to = format!("{}:7000", topo.get("VIP"));
    let mut spread = BTreeSet::new();
    for i in 0..30 {
        let r =
            common::appliance::tcp_whoami(&client, &to).map_err(|e| format!("spread {i}: {e}"))?;
        spread.insert(r.backend);
    }
    if spread.len() < 2 {
        return Err(format!(
            "5-tuple rule sent 30 connections only to {spread:?}"
        ));
    }
    Ok(())
}

#[test]
fn source_ip_affinity() {
    if skip_unless_root("source_ip_affinity") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let app = start_or_panic(&topo, &config());
    check(&app, scenario(&topo, &app));
}
