//! What shows IPv6 state, end to end: after HTTP over IPv6 through the IPv6 VIP (real Linux IPv6
//! stacks in the `--ipv6` one-arm topology), `vipmux flows` lists the IPv6 flows with
//! `[address]:port` endpoints and the worker that holds them, and `status` counts the rule's
//! active IPv6 flows like IPv4 ones; `vipmux capture --exceptions --frontend` of the IPv6 frontend
//! copies the echo requests pinged to it (read back by `tcpdump`).
//!
//! Needs root; skipped otherwise (a failure with CI=true).

mod common;

use std::time::Duration;

use common::appliance::{check, spawn_capture};
use common::ipv6::{build6, pool6, up6, url6, Frontends};
use common::{curl_from, skip_unless_root, wait_for, Appliance, ConfigBuilder};

#[test]
fn flows_and_status_show_ipv6_flows() {
    let name = "flows_and_status_show_ipv6_flows";
    if skip_unless_root(name) {
        return;
    }
    let topo = up6("one-arm", &["--return", "gateway"]);
    let config = pool6(ConfigBuilder::one_arm(), "web6", &["b1", "b2", "b3"], "")
        .lb_rule("web", "tcp", 80, 80, "web6", None, "");
    let text = build6(&config, &topo, Frontends::Ipv6);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    let (client, client_ip) = (topo.ns("client"), topo.get("CLIENT_IP6"));
    let vip = topo.get("VIP6");
    let url = url6(vip, topo.get("HTTP_PORT"));
    let scenario = || -> Result<(), String> {
        // A request, then the listing: the flow lingers a while after the connection closes.
        let listed = wait_for(Duration::from_secs(20), || {
            curl_from(&client, &url).ok()?;
            let (ok, out, _) = app.cli(&["flows"]);
            (ok && out.contains(&format!("[{client_ip}]:"))).then_some(out)
        })
        .ok_or("`vipmux flows` never listed the client's IPv6 flow")?;
        let want_vip = format!("[{vip}]:80");
        if !listed.contains(&want_vip) {
            return Err(format!("flows lack {want_vip}:\n{listed}"));
        }
        // The rule's flow counters count IPv6 flows (family-neutral).
        let web = |s: &serde_json::Value| {
            s["frontends"]
                .as_array()?
                .iter()
                .flat_map(|f| f["rules"].as_array().into_iter().flatten())
                .find(|r| r["name"] == "web")
                .and_then(|r| r["active_flows"].as_u64())
        };
        wait_for(Duration::from_secs(20), || {
            curl_from(&client, &url).ok()?;
            web(&app.status_json().ok()?).filter(|&n| n > 0)
        })
        .ok_or("status never counted an active IPv6 flow of rule web")?;
        let ping = || {
            let vip = topo.get("VIP6");
            common::ns_exec_ok(&client, &["ping", "-6", "-c", "1", "-W", "1", vip]).map(|_| ())
        };
        capture_by_frontend(&app, &topo, &ping)
    };
    check(&app, scenario());
}

/// Frames a capture by frontend waits for.
const CAPTURED: usize = 4;

/// `vipmux capture --exceptions --frontend fe --count CAPTURED` ends by itself while `request`
/// pings the IPv6 VIP (echo to a frontend is an exception, taken as received), and `tcpdump -r`
/// reads that many ICMPv6 echo requests to the VIP.
fn capture_by_frontend(
    app: &Appliance,
    topo: &common::Topology,
    request: &dyn Fn() -> Result<(), String>,
) -> Result<(), String> {
    let file = topo.state_dir().join("frontend6.pcapng");
    let count = CAPTURED.to_string();
    let args = ["--exceptions", "--frontend", "fe", "--count", &count];
    let mut child = spawn_capture(app, &args, &file)?;
    let done = wait_for(Duration::from_secs(30), || {
        let _ = request();
        child.try_wait().ok().flatten()
    });
    let Some(status) = done else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("a capture of the IPv6 frontend never reached its count".into());
    };
    if !status.success() {
        return Err(format!("vipmux capture --frontend fe failed: {status}"));
    }
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&file)
        .output()
        .map_err(|e| format!("tcpdump: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let to_vip = format!("> {}: ICMP6, echo request", topo.get("VIP6"));
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != CAPTURED || !lines.iter().all(|l| l.contains(&to_vip)) {
        return Err(format!(
            "the capture of frontend fe holds {} frames, not {CAPTURED} echo requests to the VIP:\n{text}",
            lines.len()
        ));
    }
    Ok(())
}
