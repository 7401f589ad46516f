//! End to end through the appliance: the one-arm topology with vipmux on `net_af_packet` in the
//! MUX namespace, real curl clients and Python HTTP backends. 100 requests through the VIP all
//! succeed, spread over the three backends, which see the client's address; then one backend's
//! HTTP server stops: its probe fails, `vipmux status --json` shows it down with the probe's
//! reason, and it gets no new flows. A second test drives the control surfaces: `flows`,
//! `diagnose`, the Prometheus endpoint, and `reload` (a broken file changes nothing; a valid one
//! removing a member applies at once). The first test runs on the built-in default DPDK profile,
//! the second on `dpdk-config/ci-af-packet.toml`; both take hugepages when the machine has them,
//! else the `--no-huge` fallback. Needs root; skipped otherwise.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    curl_from, ns_exec, skip_unless_root, spawn_in_ns, wait_for, wait_until, BackendReply, NsChild,
    Topology,
};

const VIPMUX: &str = env!("CARGO_BIN_EXE_vipmux");
const PROBE_INTERVAL_SECS: u64 = 1;
const PROBE_THRESHOLD: u64 = 2;
const METRICS: &str = "127.0.0.1:19469";

/// Writes the test configuration; `with_profile` names the CI profile, else the built-in default
/// profile is used.
fn write_config(dir: &Path, socket: &Path, with_profile: bool) -> PathBuf {
    let profile = if with_profile {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("dpdk-config/ci-af-packet.toml");
        format!("dpdk_profile = \"{}\"", p.display())
    } else {
        String::new()
    };
    let text = format!(
        r#"[appliance]
name = "e2e"

[dataplane]
{profile}
workers = 1
flow_table_capacity = 65536

[control]
socket = "{socket}"
metrics = "{METRICS}"

[[interfaces]]
name = "dc"
port = "net_af_packet0"
address = "10.1.0.2/24"
gateway = "10.1.0.1"

[[frontends]]
name = "web-fe"
address = "10.1.0.100"
interface = "dc"

[[backend_pools]]
name = "web"
members = [
  {{ name = "b1", address = "10.1.0.11" }},
  {{ name = "b2", address = "10.1.0.12" }},
  {{ name = "b3", address = "10.1.0.13" }},
]

[[probes]]
name = "http-80"
protocol = "http"
port = 80
request_path = "/health"
interval_seconds = {PROBE_INTERVAL_SECS}
probe_threshold = {PROBE_THRESHOLD}

[[load_balancing_rules]]
name = "web"
frontend = "web-fe"
protocol = "tcp"
frontend_port = 80
backend_port = 80
backend_pool = "web"
probe = "http-80"
"#,
        socket = socket.display(),
    );
    let path = dir.join("vipmux.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `vipmux status --json` parsed, if the appliance answers.
fn status(socket: &Path) -> Option<serde_json::Value> {
    let out = Command::new(VIPMUX)
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// (healthy, last_probe) of member `name`.
fn member(status: &serde_json::Value, name: &str) -> Option<(bool, String)> {
    status["pools"].as_array()?.iter().find_map(|p| {
        p["members"].as_array()?.iter().find_map(|m| {
            (m["name"] == name).then(|| {
                (
                    m["healthy"].as_bool().unwrap_or(false),
                    m["last_probe"].as_str().unwrap_or("").to_string(),
                )
            })
        })
    })
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

/// Stops vipmux with SIGTERM and waits (bounded) for it to exit; true when it exited cleanly.
fn stop(mut child: NsChild) -> bool {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exited = wait_until(Duration::from_secs(20), || !child.is_running());
    let ok = exited
        && child
            .child_mut()
            .try_wait()
            .ok()
            .flatten()
            .is_some_and(|s| s.success());
    drop(child);
    ok
}

/// Runs `vipmux <args> --socket S`; (exit success, stdout, stderr).
fn cli(socket: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(VIPMUX)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .expect("run vipmux client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits (bounded) until the appliance forwards and every member is healthy.
fn wait_ready(socket: &Path) -> Result<(), String> {
    wait_for(Duration::from_secs(60), || {
        status(socket).filter(|s| s["forwarding"] == true)
    })
    .ok_or("vipmux status never reported forwarding")?;
    let all_up = wait_for(Duration::from_secs(30), || {
        let s = status(socket)?;
        ["b1", "b2", "b3"]
            .iter()
            .all(|m| member(&s, m).is_some_and(|(h, _)| h))
            .then_some(s)
    });
    if all_up.is_none() {
        return Err(format!(
            "members never all healthy: {}",
            status(socket)
                .map(|s| s["pools"].to_string())
                .unwrap_or_default()
        ));
    }
    Ok(())
}

fn scenario(topo: &Topology, socket: &Path) -> Result<(), String> {
    wait_ready(socket)?;
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
    let bound = Duration::from_secs(PROBE_INTERVAL_SECS * PROBE_THRESHOLD + 1 + 5);
    let down = wait_for(bound, || {
        let s = status(socket)?;
        member(&s, "b2").filter(|(h, _)| !h)
    })
    .ok_or("b2 never reported down")?;
    if !down.1.contains("down") || !(down.1.contains("refused") || down.1.contains("timeout")) {
        return Err(format!("b2 down without its probe reason: {:?}", down.1));
    }
    eprintln!("b2: {}", down.1);
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
    scenario: impl FnOnce(&Topology, &Path, &Path) -> Result<(), String>,
) {
    if skip_unless_root(name) {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let socket = topo.state_dir().join("vipmux.sock");
    let config = write_config(topo.state_dir(), &socket, with_profile);
    let log = topo.state_dir().join("vipmux.log");
    let child = spawn_in_ns(
        &topo.ns("mux"),
        &[
            VIPMUX,
            "run",
            "--config",
            &config.to_string_lossy(),
            "--eal=--vdev=net_af_packet0,iface=mux0",
        ],
        &log,
    )
    .expect("start vipmux");
    let result = scenario(&topo, &socket, &config);
    let clean = stop(child);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let socket_left = socket.exists();
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
    with_appliance(
        "nat_through_vip_and_probe_down",
        false,
        |topo, socket, _| scenario(topo, socket),
    );
}

fn control_scenario(topo: &Topology, socket: &Path, config: &Path) -> Result<(), String> {
    wait_ready(socket)?;
    requests(topo, 20)?;

    // flows: the connections just made are listed (closing flows linger briefly).
    let (ok, out, err) = cli(socket, &["flows", "--json"]);
    if !ok {
        return Err(format!("vipmux flows failed: {err}"));
    }
    let flows: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    let listed = flows["flows"].as_array().map(Vec::len).unwrap_or(0);
    if listed == 0
        || flows["flows"][0]["client"]
            .as_str()
            .is_none_or(|c| !c.starts_with(topo.get("CLIENT_IP")))
    {
        return Err(format!("flows does not list the client's flows: {}", out));
    }

    // metrics on the namespace's loopback.
    let mux = topo.ns("mux");
    ns_exec(&mux, &["ip", "link", "set", "lo", "up"]);
    let url = format!("http://{METRICS}/metrics");
    let metrics = wait_for(Duration::from_secs(10), || {
        let out = ns_exec(&mux, &["curl", "-s", "-m", "2", &url]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("vipmux_forwarding 1").then_some(text)
    })
    .ok_or("metrics endpoint never reported vipmux_forwarding 1")?;
    let new_flows: u64 = metrics
        .lines()
        .find(|l| l.starts_with("vipmux_rule_new_flows_total{frontend=\"web-fe\",rule=\"web\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .ok_or_else(|| format!("no rule new-flows sample in:\n{metrics}"))?;
    if new_flows < 20 {
        return Err(format!("rule new flows {new_flows} < 20 requests"));
    }

    // diagnose: a member whose probe fails is reported (once down) with the reason.
    topo.backend("stop", "b1", &["http"])?;
    let finding = wait_for(Duration::from_secs(10), || {
        let (ok, out, _) = cli(socket, &["diagnose", "--json"]);
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
    let text = std::fs::read_to_string(config).map_err(|e| e.to_string())?;
    let bad = config.with_file_name("bad.toml");
    std::fs::write(
        &bad,
        text.replace("probe = \"http-80\"", "probe = \"nope\""),
    )
    .map_err(|e| e.to_string())?;
    let (ok, _, err) = cli(socket, &["reload", "--file", &bad.to_string_lossy()]);
    if ok || !err.contains("nope") {
        return Err(format!(
            "broken reload not refused with the error: ok={ok} {err}"
        ));
    }
    let gen = status(socket).ok_or("no status")?["config_generation"].clone();
    if gen != 1 {
        return Err(format!("generation changed by a refused reload: {gen}"));
    }
    // A valid file without b3 applies at once.
    let two = config.with_file_name("two.toml");
    let without_b3: String = text
        .lines()
        .filter(|l| !l.contains("\"b3\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&two, without_b3).map_err(|e| e.to_string())?;
    let (ok, out, err) = cli(socket, &["reload", "--file", &two.to_string_lossy()]);
    if !ok {
        return Err(format!("valid reload failed: {out} {err}"));
    }
    let st = status(socket).ok_or("no status")?;
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
    with_appliance("control_surfaces_and_reload", true, control_scenario);
}
