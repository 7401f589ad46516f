//! End to end, inbound NAT: the one-arm topology. A single-member rule maps frontend
//! port 50001 to b2's echo port only; a port-range rule maps 50100..=50102 to port 80 of the pool's
//! members, one frontend port per member. The mapping `vipmux status --json` shows (`nat_mappings`)
//! must match which backend answers on each port; a port outside every rule gets no answer and is
//! counted as `no_rule`. After a reload removing b1, b2 and b3 keep their slots and b1's
//! port stops answering. Needs root; skipped otherwise.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::appliance::{backend_ip, check, http_backend, start_or_panic, tcp_whoami};
use common::{skip_unless_root, tcp_from, Appliance, ConfigBuilder, Topology};

fn config(members: &[&str]) -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", members, "")
        .nat_rule_member("to-b2", "tcp", 50001, "web", "b2", 7000)
        .nat_rule_range("http-range", "tcp", 50100, 50102, "web", 80)
}

/// The `nat_mappings` of rule `rule`: frontend port → (member, backend "ip:port").
fn mappings(app: &Appliance, rule: &str) -> Result<BTreeMap<u16, (String, String)>, String> {
    let st = app.status_json()?;
    let list = st["nat_mappings"]
        .as_array()
        .ok_or_else(|| format!("status has no nat_mappings: {st}"))?;
    list.iter()
        .filter(|m| m["rule"] == rule)
        .map(|m| {
            let fe = m["frontend"].as_str().unwrap_or("");
            let port = fe
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .ok_or_else(|| format!("bad mapping {m}"))?;
            Ok((
                port,
                (
                    m["member"].as_str().unwrap_or("").to_string(),
                    m["backend"].as_str().unwrap_or("").to_string(),
                ),
            ))
        })
        .collect()
}

/// Checks every range mapping against the backend that answers on that frontend port.
fn check_range(topo: &Topology, map: &BTreeMap<u16, (String, String)>) -> Result<(), String> {
    let client = topo.ns("client");
    for (port, (member, backend)) in map {
        if *backend != format!("{}:80", backend_ip(member)) {
            return Err(format!(
                "port {port}: mapping to {member} names backend {backend}"
            ));
        }
        let url = format!("http://{}:{port}/", topo.get("VIP"));
        for i in 0..5 {
            let r =
                http_backend(&client, &url, None).map_err(|e| format!("port {port} #{i}: {e}"))?;
            if r.backend != *member || r.dst != backend_ip(member) || r.dport != 80 {
                return Err(format!(
                    "port {port} mapped to {member} but answered by {r:?}"
                ));
            }
            if r.client_ip != topo.get("CLIENT_IP") {
                return Err(format!("port {port}: backend saw source {}", r.client_ip));
            }
        }
    }
    Ok(())
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let client = topo.ns("client");
    let vip = topo.get("VIP");

    // Single-member rule: only b2's echo port, from the client's own address.
    let single = mappings(app, "to-b2")?;
    if single.get(&50001).map(|(m, b)| (m.as_str(), b.as_str())) != Some(("b2", "10.1.0.12:7000")) {
        return Err(format!("to-b2 mapping: {single:?}"));
    }
    for i in 0..20 {
        let r =
            tcp_whoami(&client, &format!("{vip}:50001")).map_err(|e| format!("50001 #{i}: {e}"))?;
        if r.backend != "b2" || r.dst != "10.1.0.12" || r.dport != 7000 {
            return Err(format!("50001 answered by {r:?}"));
        }
        if r.client_ip != topo.get("CLIENT_IP") {
            return Err(format!("50001: backend saw source {}", r.client_ip));
        }
    }

    // Port range: one port per member, the answering backend matches the mapping.
    let range = mappings(app, "http-range")?;
    eprintln!("http-range mapping: {range:?}");
    let ports: Vec<u16> = range.keys().copied().collect();
    let mut members: Vec<&str> = range.values().map(|(m, _)| m.as_str()).collect();
    members.sort_unstable();
    if ports != [50100, 50101, 50102] || members != ["b1", "b2", "b3"] {
        return Err(format!(
            "http-range does not map 50100..=50102 one-to-one: {range:?}"
        ));
    }
    check_range(topo, &range)?;

    // Outside every rule: no answer, counted as no_rule.
    let before = app.drop_count("no_rule")?;
    if let Ok(got) = tcp_from(&client, &format!("{vip}:50103"), "hello") {
        return Err(format!("port 50103 (no rule) answered: {got:?}"));
    }
    app.wait_counter("/drops/no_rule", Duration::from_secs(5), before + 1)?;

    // Reload without b1: b2 and b3 keep their frontend ports; b1's port is gone.
    let text = config(&["b2", "b3"]).build(topo);
    app.reload_text("without-b1.toml", &text)?;
    let after = mappings(app, "http-range")?;
    let expected: BTreeMap<u16, (String, String)> = range
        .iter()
        .filter(|(_, (m, _))| m != "b1")
        .map(|(p, v)| (*p, v.clone()))
        .collect();
    if after != expected {
        return Err(format!(
            "after removing b1: {after:?}, expected {expected:?}"
        ));
    }
    check_range(topo, &after)?;
    let b1_port = range
        .iter()
        .find(|(_, (m, _))| m == "b1")
        .map(|(p, _)| *p)
        .ok_or("no b1 port")?;
    if let Ok(r) = http_backend(&client, &format!("http://{vip}:{b1_port}/"), None) {
        return Err(format!("b1's old port {b1_port} still answered: {r:?}"));
    }
    Ok(())
}

#[test]
fn inbound_nat_single_and_range() {
    if skip_unless_root("inbound_nat_single_and_range") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let app = start_or_panic(&topo, &config(&["b1", "b2", "b3"]));
    check(&app, scenario(&topo, &app));
}
