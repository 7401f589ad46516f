//! Outbound SNAT of IPv6 members end to end, on the one-arm `--ipv6` topology (real Linux IPv6
//! stacks): the client namespace (2001:db8:9::10, behind the router, the MUX's `gateway6`) runs
//! a TCP echo server that answers `whoami` with the peer it sees; the backends b1..b3
//! (IPv6 default route via the MUX) connect to them through an outbound rule over the IPv6 pool
//! and the IPv6 frontend (2001:db8:1::100, which the router routes to the MUX):
//!
//! - each member's TCP connection leaves as the frontend address from a port of that member's
//!   block (a pool of 3: 1,024 ports each, in pool order from 1024), and the answer reaches the
//!   member.
//!
//! Needs root; skipped otherwise (a failure with CI=true).

mod common;

use std::time::Duration;

use common::appliance::check;
use common::ipv6::{build6, pool6, up6, Frontends};
use common::{
    ns_exec_ok, scripts_dir, skip_unless_root, spawn_in_ns, wait_for, Appliance, ConfigBuilder,
    NsChild, Topology,
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

/// Every member's connection is seen from the frontend address and a port of its block.
fn scenario(topo: &Topology) -> Result<(), String> {
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
    }
    Ok(())
}

#[test]
fn ipv6_members_connect_out_as_the_ipv6_frontend() {
    if skip_unless_root("ipv6_members_connect_out_as_the_ipv6_frontend") {
        return;
    }
    let topo = up6("one-arm", &[]);
    let c = pool6(ConfigBuilder::one_arm(), "web6", &ALL, "").raw(
        "[[outbound_rules]]\nname = \"egress6\"\nfrontends = [\"fe\"]\nbackend_pool = \"web6\"\nprotocol = \"all\"\n",
    );
    let text = build6(&c, &topo, Frontends::Ipv6);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    check(&app, scenario(&topo));
}
