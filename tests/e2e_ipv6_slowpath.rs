//! IPv6 on vipmux's slow path, end to end: the one-arm `--ipv6` topology (real Linux IPv6 stacks
//! on the router, client and backends), vipmux on `net_af_packet` with `address6`/`gateway6` on
//! its interface, an IPv6 VIP over two IPv6 backends with an HTTP probe (rule on port 80) and a
//! TCP probe (rule on the echo port).
//!
//! - Neighbour Discovery: a host on the LAN (b3, in no pool: the VIP is on-link for it) resolves
//!   the VIP and the interface's `address6` to vipmux's port MAC (`ip -6 neigh`): vipmux answers
//!   for the VIP, the kernel behind the exception TAP for its own address; the router (which
//!   routes the VIP via `address6`) and the probed backends resolve `address6` the same way.
//! - Probes over IPv6 leave the TAP with the right MACs and turn the backends up; `vipmux status`
//!   shows the interface's IPv6 address and the backends as IPv6 neighbours (learned from
//!   Neighbour Discovery and published to the workers).
//! - ping6: the VIP answers the client (behind the router) while a member is up; with every
//!   member's servers stopped both probes turn them down and ping6 gets "address unreachable"
//!   from the VIP; a restarted backend turns up again and ping6 is answered again.
//! - The counters show the slow path's neighbour advertisements and echo replies.
//! - The exception TAP carries `address6` with `gateway6` as IPv6 default route, router
//!   advertisements off; a TAP whose interface has no `address6` has IPv6 disabled (in a namespace
//!   where IPv6 is on by default).
//!
//! Needs root; skipped otherwise (a failure with CI=true).

mod common;

use std::time::Duration;

use common::appliance::check;
use common::ipv6::{backend_ip6, build6, pool6, rule_on, up6, Frontends};
use common::{ns_exec, ns_exec_ok, skip_unless_root, wait_for, Appliance, ConfigBuilder, Topology};

const MEMBERS: [&str; 2] = ["b1", "b2"];
const INTERVAL: u32 = 1;
const THRESHOLD: u32 = 2;
/// Generous bound for a health flip: interval × threshold, plus slack for a loaded machine.
const FLIP_BOUND: Duration = Duration::from_secs((INTERVAL * THRESHOLD) as u64 + 15);

fn config() -> ConfigBuilder {
    let c = pool6(ConfigBuilder::one_arm(), "web6", &MEMBERS, "")
        .probe_http("http-80", 80, INTERVAL, THRESHOLD)
        .probe_tcp("tcp-7000", 7000, INTERVAL, THRESHOLD)
        .lb_rule("web", "tcp", 80, 80, "web6", Some("http-80"), "");
    rule_on(c, "fe", "echo", ("tcp", 7000), "web6", Some("tcp-7000"), "")
}

/// One ping6 from `ns` to `to`: (answered, output).
fn ping6(ns: &str, to: &str) -> (bool, String) {
    let out = ns_exec(ns, &["ping", "-6", "-c", "1", "-W", "2", to]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.success(), text)
}

/// Waits (bounded) until ping6 from `ns` to `to` is answered (`answered`) or is refused with
/// "address unreachable" (`!answered`).
fn wait_ping6(ns: &str, to: &str, answered: bool) -> Result<(), String> {
    let mut last = String::new();
    wait_for(FLIP_BOUND, || {
        let (ok, text) = ping6(ns, to);
        last = text;
        let want = if answered {
            ok
        } else {
            !ok && last.to_lowercase().contains("address unreachable")
        };
        want.then_some(())
    })
    .ok_or_else(|| format!("ping6 {to} from {ns}: never answered={answered}; last:\n{last}"))
}

/// The MAC `ns` has for `ip` on `dev` (`ip -6 neigh`), after one ping6 made it resolve.
fn neighbour_mac(ns: &str, dev: &str, ip: &str) -> Result<String, String> {
    let (ok, text) = ping6(ns, ip);
    if !ok {
        return Err(format!("ping6 {ip} from {ns} got no answer:\n{text}"));
    }
    let out = ns_exec_ok(ns, &["ip", "-6", "neigh", "show", ip, "dev", dev])?;
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .ok_or_else(|| format!("{ns}: no neighbour entry for {ip}: {out:?}"))?;
    Ok(mac.to_lowercase())
}

/// The exception TAP's IPv6 sysctl `key` in the MUX namespace.
fn tap_sysctl(topo: &Topology, key: &str) -> Result<String, String> {
    let path = format!("/proc/sys/net/ipv6/conf/vmxdc/{key}");
    ns_exec_ok(&topo.ns("mux"), &["cat", &path]).map(|v| v.trim().to_string())
}

/// The TAP of an interface with `address6` carries it and `gateway6`, without router advertisements.
fn tap_has_ipv6(topo: &Topology) -> Result<(), String> {
    let mux = topo.ns("mux");
    let addrs = ns_exec_ok(&mux, &["ip", "-6", "addr", "show", "dev", "vmxdc"])?;
    let routes = ns_exec_ok(&mux, &["ip", "-6", "route", "show", "default"])?;
    let own = format!("{}/64", topo.get("MUX_IP6"));
    let via = format!("via {} dev vmxdc", topo.get("ROUTER_LAN_IP6"));
    let sysctls = (
        tap_sysctl(topo, "disable_ipv6")?,
        tap_sysctl(topo, "accept_ra")?,
    );
    if !addrs.contains(&own) || !routes.contains(&via) || sysctls != ("0".into(), "0".into()) {
        return Err(format!(
            "TAP without its IPv6 setup: addresses {addrs:?}, default routes {routes:?}, (disable_ipv6, accept_ra) {sysctls:?}"
        ));
    }
    Ok(())
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    tap_has_ipv6(topo)?;
    let mux_mac = topo.get("MUX_MAC").to_lowercase();
    let (lan_host, client) = (topo.ns("b3"), topo.ns("client"));
    let (vip6, own6) = (topo.get("VIP6"), topo.get("MUX_IP6"));

    // Probes over IPv6 through the TAP turn both members up.
    app.wait_members_healthy(&MEMBERS, Duration::from_secs(40))?;

    // Neighbour Discovery: the VIP (vipmux) and address6 (the TAP's kernel) at the port's MAC.
    for ip in [vip6, own6] {
        let mac = neighbour_mac(&lan_host, "eth0", ip)?;
        if mac != mux_mac {
            return Err(format!("b3 resolves {ip} to {mac}, not vipmux's {mux_mac}"));
        }
    }
    let mac = neighbour_mac(&topo.ns("router"), "eth1", own6)?;
    if mac != mux_mac {
        return Err(format!(
            "the router resolves {own6} to {mac}, not {mux_mac}"
        ));
    }
    let b1 = topo.ns("b1");
    let out = ns_exec_ok(&b1, &["ip", "-6", "neigh", "show", own6, "dev", "eth0"])?;
    if !out.to_lowercase().contains(&mux_mac) {
        return Err(format!("b1 does not resolve {own6} to {mux_mac}: {out:?}"));
    }

    // `vipmux status`: address6 and the backends as IPv6 neighbours.
    let (ok, text, err) = app.cli(&["status"]);
    let want = format!("{own6}/64; IPv6 neighbours: ");
    if !ok || !text.contains(&want) || !text.contains(&backend_ip6("b1")) {
        return Err(format!(
            "status lacks address6 or the IPv6 neighbours:\n{text}{err}"
        ));
    }

    // ping6 to the VIP from behind the router, with the frontends' health semantics.
    wait_ping6(&client, vip6, true)?;
    for b in MEMBERS {
        topo.backend("stop", b, &[])?;
    }
    for b in MEMBERS {
        let reason = app.wait_member(b, false, FLIP_BOUND)?;
        eprintln!("{b} down: {reason}");
    }
    wait_ping6(&client, vip6, false)?;
    topo.backend("start", "b1", &[])?;
    app.wait_member("b1", true, FLIP_BOUND)?;
    wait_ping6(&client, vip6, true)?;

    let c = app.counters_json()?;
    let slow = &c["slow_path"];
    for key in [
        "nd_adverts",
        "echo_replies",
        "unreachable_sent",
        "neighbours_learned",
    ] {
        if slow[key].as_u64().unwrap_or(0) == 0 {
            return Err(format!("slow_path.{key} is 0: {slow}"));
        }
    }
    eprintln!("slow path counters: {slow}");
    Ok(())
}

#[test]
fn neighbour_discovery_echo6_and_probes_over_ipv6() {
    let name = "neighbour_discovery_echo6_and_probes_over_ipv6";
    if skip_unless_root(name) {
        return;
    }
    let topo = up6("one-arm", &["--return", "gateway"]);
    let text = build6(&config(), &topo, Frontends::Ipv6);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    check(&app, scenario(&topo, &app));
}

#[test]
fn a_tap_without_address6_has_ipv6_disabled() {
    let name = "a_tap_without_address6_has_ipv6_disabled";
    if skip_unless_root(name) {
        return;
    }
    // The IPv6 topology (IPv6 on by default in the MUX namespace), an IPv4-only configuration.
    let topo = up6("one-arm", &["--return", "gateway"]);
    let text = ConfigBuilder::one_arm_web().build(&topo);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    let disabled = tap_sysctl(&topo, "disable_ipv6");
    check(
        &app,
        match disabled.as_deref() {
            Ok("1") => Ok(()),
            other => Err(format!("disable_ipv6 on the TAP: {other:?}")),
        },
    );
}
