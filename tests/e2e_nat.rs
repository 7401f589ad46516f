//! End to end through the appliance: the one-arm topology with vipmux on `net_af_packet` in the
//! MUX namespace, real curl clients and Python HTTP backends. 100 requests through the VIP all
//! succeed, spread over the three backends, which see the client's address; then one backend's
//! HTTP server stops: its probe fails, `vipmux status --json` shows it down with the probe's
//! reason, and it gets no new flows. A second test drives the control surfaces: `flows`,
//! `diagnose`, the Prometheus endpoint, and `reload` (a broken file changes nothing; a valid one
//! removing a member applies at once). The first test runs on the built-in default DPDK profile,
//! the second on `dpdk-config/ci-af-packet.toml`; both take hugepages when the machine has them,
//! else the `--no-huge` fallback. The two-worker NAT test runs again on a `net_tap` port (a
//! multi-queue TAP bridged to the MUX's veth). Needs root; skipped otherwise.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::appliance::member;
use common::{
    curl_from, skip_unless_root, wait_for, Appliance, BackendReply, ConfigBuilder, Topology,
};

const PROBE_INTERVAL_SECS: u32 = 1;
const PROBE_THRESHOLD: u32 = 2;
const ALL: [&str; 3] = ["b1", "b2", "b3"];

/// The test configuration: HTTP on the VIP over b1..b3 with an HTTP probe.
fn config(with_profile: bool, workers: usize) -> ConfigBuilder {
    let c = ConfigBuilder::one_arm().workers(workers);
    let c = if with_profile { c.with_ci_profile() } else { c };
    c.pool("web", &ALL, "")
        .probe_http("http-80", 80, PROBE_INTERVAL_SECS, PROBE_THRESHOLD)
        .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "")
}

fn requests(topo: &Topology, n: usize) -> Result<BTreeMap<String, Vec<BackendReply>>, String> {
    let client = topo.ns("client");
    let url = format!("http://{}:{}/", topo.get("VIP"), topo.get("HTTP_PORT"));
    let mut seen: BTreeMap<String, Vec<BackendReply>> = BTreeMap::new();
    for i in 0..n {
        let body = curl_from(&client, &url).map_err(|e| format!("request {i}: {e}"))?;
        let reply = BackendReply::parse(&body)
            .ok_or_else(|| format!("request {i}: unexpected answer {body:?}"))?;
        seen.entry(reply.backend.clone()).or_default().push(reply);
    }
    Ok(seen)
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    let seen = requests(topo, 100)?;
    for b in topo.list("BACKEND_ROLES") {
        if !seen.contains_key(&b) {
            return Err(format!(
                "backend {b} got none of 100 requests: {:?}",
                seen.keys()
            ));
        }
    }
    for r in seen.values().flatten() {
        if r.client_ip != topo.get("CLIENT_IP") {
            return Err(format!(
                "backend saw source {} instead of the client: {r:?}",
                r.client_ip
            ));
        }
    }
    eprintln!(
        "spread over backends: {:?}",
        seen.iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect::<Vec<_>>()
    );

    // b2's HTTP server stops: its probe fails and it takes no new flows.
    topo.backend("stop", "b2", &["http"])?;
    let bound = Duration::from_secs(u64::from(PROBE_INTERVAL_SECS * PROBE_THRESHOLD) + 1 + 5);
    let reason = app.wait_member("b2", false, bound)?;
    if !reason.contains("down") || !(reason.contains("refused") || reason.contains("timeout")) {
        return Err(format!("b2 down without its probe reason: {reason:?}"));
    }
    eprintln!("b2: {reason}");
    let after = requests(topo, 30)?;
    if after.contains_key("b2") {
        return Err(format!(
            "b2 still got new flows after going down: {:?}",
            after.keys()
        ));
    }
    Ok(())
}

/// Starts vipmux in the one-arm topology, runs `scenario`, stops vipmux (SIGTERM) and tears the
/// topology down whatever happened; panics with the vipmux log on failure.
fn with_appliance(
    name: &str,
    with_profile: bool,
    workers: usize,
    scenario: impl FnOnce(&Topology, &Appliance) -> Result<(), String>,
) {
    let config = config(with_profile, workers);
    run(
        name,
        |topo| Appliance::start(topo, &config.build(topo)),
        scenario,
    );
}

/// Brings the one-arm topology up, starts vipmux with `start`, runs `scenario`, stops vipmux
/// (SIGTERM) and tears the topology down whatever happened; panics with the vipmux log on failure.
fn run(
    name: &str,
    start: impl FnOnce(&Topology) -> Result<Appliance, String>,
    scenario: impl FnOnce(&Topology, &Appliance) -> Result<(), String>,
) {
    if skip_unless_root(name) {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let mut app = match start(&topo) {
        Ok(app) => app,
        Err(e) => {
            let _ = topo.down();
            panic!("{e}");
        }
    };
    let result = scenario(&topo, &app);
    let clean = app.stop();
    let log_text = app.log_text();
    let socket_left = app.socket().exists();
    drop(app);
    let down = topo.down();
    if let Err(e) = &result {
        eprintln!("--- vipmux log ---\n{log_text}");
        panic!("{e}");
    }
    assert!(clean, "vipmux did not exit cleanly on SIGTERM:\n{log_text}");
    assert!(!socket_left, "control socket left behind");
    down.expect("topology down");
}

#[test]
fn nat_through_vip_and_probe_down() {
    with_appliance("nat_through_vip_and_probe_down", false, 1, scenario);
}

/// The same with two workers on two `af_packet` queue pairs: the kernel's fanout spreads each
/// direction of a NAT flow by its own tuple, so the replies meet their flow through the hand-off.
#[test]
fn nat_through_vip_and_probe_down_two_workers() {
    with_appliance(
        "nat_through_vip_and_probe_down_two_workers",
        false,
        2,
        |topo, app| {
            scenario(topo, app)?;
            app.check_handoffs()
        },
    );
}

/// The same NAT through the VIP with two workers on a `net_tap` port: vipmux's multi-queue TAP
/// bridged to the MUX's veth, whose kernel side picks a queue per flow hash. Status shows two rx
/// queues and the software hand-off (the fallback from NIC steering, and why), both workers hand
/// frames over, every flow is on its owner.
#[test]
fn nat_through_vip_two_workers_on_net_tap() {
    let config = config(false, 2).data_port("net_tap0");
    run(
        "nat_through_vip_two_workers_on_net_tap",
        |topo| Appliance::start_on_tap(topo, &config.build(topo)),
        |topo, app| {
            app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
            let seen = requests(topo, 100)?;
            if seen.len() != ALL.len() {
                return Err(format!("100 requests reached only {:?}", seen.keys()));
            }
            let (_, status, _) = app.cli(&["status"]);
            // The fallback from NIC steering, with its reason (net_tap hashes no single endpoint).
            if !status.contains("port dc (net_tap0): 2 rx queues, software-handoff (the device cannot hash on the source or the destination endpoint alone)") {
                return Err(format!(
                    "status does not show the TAP's two queues: {status}"
                ));
            }
            app.check_handoffs()?;
            let counters = app.counters_json()?;
            let workers = counters["workers"].as_array().cloned().unwrap_or_default();
            let each = |k: &str| workers.iter().map(|w| w[k].as_u64().unwrap_or(0)).collect();
            let (sent, received): (Vec<u64>, Vec<u64>) =
                (each("handoff_sent"), each("handoff_received"));
            eprintln!("per worker: sent {sent:?}, received {received:?}");
            if workers.len() != 2 || sent.contains(&0) || received.contains(&0) {
                return Err(format!(
                    "not both workers handed frames over: sent {sent:?}, received {received:?}"
                ));
            }
            Ok(())
        },
    );
}

/// A dual-stack configuration runs: the IPv6 frontend, pool and rule are accepted and shown by
/// `status`, no warning says IPv6 is not forwarded, and the IPv4 half forwards as before.
#[test]
fn dual_stack_config_runs_its_ipv4_half_without_ipv6_warnings() {
    let config = config(false, 1)
        .probe_tcp("tcp-80", 80, PROBE_INTERVAL_SECS, PROBE_THRESHOLD)
        .raw(
            r#"
[[frontends]]
name = "fe6"
address = "fd00:1::100"

[[backend_pools]]
name = "web6"
members = [{ name = "v6a", address = "fd00:1::11" }, { name = "v6b", address = "fd00:1::12" }]

[[load_balancing_rules]]
name = "web6"
frontend = "fe6"
protocol = "tcp"
frontend_port = 80
backend_pool = "web6"
probe = "tcp-80"
"#,
        );
    run(
        "dual_stack_config_runs_its_ipv4_half_without_ipv6_warnings",
        |topo| {
            let text = config.build(topo);
            let gw = "gateway = \"10.1.0.1\"";
            assert!(text.contains(gw), "{text}");
            let text = text.replacen(gw, &format!("{gw}\naddress6 = \"fd00:1::2/64\""), 1);
            Appliance::start(topo, &text)
        },
        |topo, app| {
            app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
            let seen = requests(topo, 30)?;
            if seen.len() != ALL.len() {
                return Err(format!("30 requests reached only {:?}", seen.keys()));
            }
            let log = app.log_text();
            if log.contains("IPv6 forwarding is not built yet") {
                return Err(format!("an IPv6 warning in the log:\n{log}"));
            }
            let s = app.status_json()?;
            let fe6 = s["frontends"]
                .as_array()
                .and_then(|f| f.iter().find(|f| f["name"] == "fe6"))
                .ok_or("status has no fe6")?;
            if fe6["address"] != "fd00:1::100" {
                return Err(format!("fe6 shown as {fe6}"));
            }
            if member(&s, "v6a").is_none() {
                return Err(format!("status has no IPv6 member: {}", s["pools"]));
            }
            let (_, text, _) = app.cli(&["status"]);
            if !text.contains("fd00:1::100") || !text.contains("fd00:1::11") {
                return Err(format!("status text lacks the IPv6 addresses:\n{text}"));
            }
            // A reload is accepted; one changing the interface's address6 is refused.
            let running = std::fs::read_to_string(app.config_path()).map_err(|e| e.to_string())?;
            app.reload_text("same.toml", &running)?;
            let moved = running.replace("fd00:1::2/64", "fd00:1::3/64");
            match app.reload_text("moved.toml", &moved) {
                Err(e) if e.contains("interfaces changed") => Ok(()),
                other => Err(format!("an address6 change was not refused: {other:?}")),
            }
        },
    );
}

fn control_scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    requests(topo, 20)?;

    // flows: the connections just made are listed (closing flows linger briefly).
    let flows = app.flows_json()?;
    let listed = flows["flows"].as_array().map(Vec::len).unwrap_or(0);
    if listed == 0
        || flows["flows"][0]["client"]
            .as_str()
            .is_none_or(|c| !c.starts_with(topo.get("CLIENT_IP")))
    {
        return Err(format!("flows does not list the client's flows: {flows}"));
    }

    // metrics on the namespace's loopback.
    wait_for(Duration::from_secs(10), || {
        app.metrics_text()
            .ok()
            .filter(|t| t.contains("vipmux_forwarding 1"))
    })
    .ok_or("metrics endpoint never reported vipmux_forwarding 1")?;
    // Counters are published every 100 ms: wait until the 20 requests' new flows are in.
    app.wait_metric(
        "vipmux_rule_new_flows_total{frontend=\"fe\",rule=\"web\"}",
        Duration::from_secs(10),
        "20 or more (one per request)",
        |v| v >= 20.0,
    )?;

    // diagnose: a member whose probe fails is reported (once down) with the reason.
    topo.backend("stop", "b1", &["http"])?;
    let finding = wait_for(Duration::from_secs(10), || {
        let (ok, out, _) = app.cli(&["diagnose", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        ok.then_some(())?;
        v["findings"].as_array()?.iter().find_map(|f| {
            (f["check"] == "probe_failing"
                && f["severity"] == "error"
                && f["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains("10.1.0.11")))
            .then(|| f["seen"].as_str().unwrap_or("").to_string())
        })
    })
    .ok_or("diagnose never reported b1's failing probe")?;
    if !finding.contains("refused") {
        return Err(format!("diagnose finding without the reason: {finding}"));
    }

    // reload: a broken file is refused and changes nothing.
    let text = std::fs::read_to_string(app.config_path()).map_err(|e| e.to_string())?;
    let err = app
        .reload_text(
            "bad.toml",
            &text.replace("probe = \"http-80\"", "probe = \"nope\""),
        )
        .err()
        .ok_or("broken reload not refused")?;
    if !err.contains("nope") {
        return Err(format!("broken reload refused without the error: {err}"));
    }
    let gen = app.status_json()?["config_generation"].clone();
    if gen != 1 {
        return Err(format!("generation changed by a refused reload: {gen}"));
    }
    // A valid file without b3 applies at once.
    let mut doc: toml::Table = text.parse().map_err(|e| format!("config text: {e}"))?;
    for pool in doc["backend_pools"].as_array_mut().into_iter().flatten() {
        if let Some(members) = pool.get_mut("members").and_then(|m| m.as_array_mut()) {
            members.retain(|m| m.get("name").and_then(|n| n.as_str()) != Some("b3"));
        }
    }
    let without_b3 = toml::to_string(&doc).map_err(|e| format!("config text: {e}"))?;
    app.reload_text("two.toml", &without_b3)
        .map_err(|e| format!("valid reload failed: {e}"))?;
    let st = app.status_json()?;
    if st["config_generation"] != 2 || member(&st, "b3").is_some() {
        return Err(format!("reload not applied: {st}"));
    }
    // b1 is down and b3 gone: every new flow goes to b2.
    let after = requests(topo, 20)?;
    if after.keys().any(|k| k != "b2") {
        return Err(format!("flows after reload went to {:?}", after.keys()));
    }
    Ok(())
}

#[test]
fn control_surfaces_and_reload() {
    with_appliance("control_surfaces_and_reload", true, 1, control_scenario);
}

/// Every family and sample name of an exposition, as the reference Prometheus parser (Python
/// `prometheus_client`, Debian `python3-prometheus-client`) reads it; a parse error is an error.
fn parsed_metric_names(text: &str) -> Result<std::collections::BTreeSet<String>, String> {
    use std::io::Write;
    const SCRIPT: &str =
        "import sys\nfrom prometheus_client.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n    print(f.name)\n    \
        for s in f.samples: print(s.name)\n";
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("/usr/bin/python3: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "the Prometheus parser rejects the scrape: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The metric names used by every query expression of the Grafana dashboard in the repository.
fn dashboard_metric_names() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/vipmux.json");
    let text = std::fs::read_to_string(path).expect("dashboards/vipmux.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut out = Vec::new();
    let mut exprs = Vec::new();
    for panel in doc["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for q in doc["templating"]["list"].as_array().into_iter().flatten() {
        exprs.push(q["query"].as_str().unwrap_or("").to_string());
    }
    for e in exprs {
        let mut rest = e.as_str();
        while let Some(at) = rest.find("vipmux_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            out.push((tail[..end].to_string(), e.clone()));
            rest = &tail[end..];
        }
    }
    out
}

fn azure_metrics_scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, Duration::from_secs(30))?;
    requests(topo, 20)?;
    let vip = topo.get("VIP");
    let fe = format!("frontend_ip=\"{vip}\",frontend_port=\"80\",protocol=\"tcp\"");
    let vip_up = format!("vipmux_lb_vip_availability{{{fe}}}");
    // Counters are published every 100 ms; wait until the 20 requests' SYNs are in.
    let syns = format!("vipmux_lb_syns_total{{{fe},direction=\"in\"}}");
    app.wait_metric(&syns, Duration::from_secs(10), "20 or more", |v| v >= 20.0)?;
    for dir in ["in", "out"] {
        for family in ["vipmux_lb_packets_total", "vipmux_lb_bytes_total"] {
            let v = app.metric(&format!("{family}{{{fe},direction=\"{dir}\"}}"))?;
            if v < 20.0 {
                return Err(format!("{family} direction {dir} = {v} after 20 requests"));
            }
        }
    }
    // Availability is the verdict of the workers' last synthetic round (one a second): a round
    // run during the first probe round reads 0, so the next one must read 1.
    let up = "1 with every member up";
    app.wait_metric(&vip_up, Duration::from_secs(5), up, |v| v == 1.0)?;

    // Every metric a dashboard query uses is exported by the running appliance (a sample, or a
    // declared family without samples yet, e.g. SNAT's: the parser names a counter family
    // without its `_total`).
    let text = app.metrics_text()?;
    let exported = parsed_metric_names(&text)?;
    for (name, expr) in dashboard_metric_names() {
        let family = name.strip_suffix("_total").unwrap_or(&name);
        if !exported.contains(&name) && !exported.contains(family) {
            return Err(format!(
                "dashboard query {expr:?} uses {name}, which the appliance does not export"
            ));
        }
    }

    // Health probe status follows each member; data path availability falls when none is left.
    let ips = topo.list("BACKEND_IPS");
    let dip = |ip: &str| {
        format!(
            "vipmux_lb_dip_availability{{frontend_ip=\"{vip}\",frontend_port=\"80\",\
             backend_ip=\"{ip}\",backend_port=\"80\",protocol=\"tcp\"}}"
        )
    };
    for ip in &ips {
        if app.metric(&dip(ip))? != 1.0 {
            return Err(format!("{} not 1 with the member up", dip(ip)));
        }
    }
    for role in ALL {
        topo.backend("stop", role, &["http"])?;
    }
    let down = "0 with every member's probe failing";
    app.wait_metric(&vip_up, Duration::from_secs(20), down, |v| v == 0.0)?;
    for ip in &ips {
        if app.metric(&dip(ip))? != 0.0 {
            return Err(format!("{} not 0 with the member down", dip(ip)));
        }
    }
    Ok(())
}

#[test]
fn azure_metrics_and_dashboard() {
    with_appliance(
        "azure_metrics_and_dashboard",
        false,
        1,
        azure_metrics_scenario,
    );
}
