//! Faults of the surroundings, end to end: vipmux in the one-arm topology (real kernel stacks,
//! `net_af_packet` on the MUX's veth), a TCP rule on the echo port 7000 probed by a TCP handshake
//! on port 80, one topology for every scenario below.
//!
//! - The port's link goes down and up (`ip link set mux0 down/up` in the MUX namespace): traffic
//!   through the VIP works again within a bounded wait after the link is back, and the appliance
//!   never stopped.
//! - A member's MAC changes: within 20 s new connections reach it again (the data path is not left
//!   on the stale MAC until the neighbour table's 45 s refresh).
//! - The kernel exception TAP is deleted from outside: the probes, which went out through the TAP,
//!   fail and status says why, an established connection through the VIP keeps working, the control
//!   socket keeps answering, `diagnose` reports `exception_tap_missing`, `status` marks the port
//!   `exception_tap_missing` and the log says so once (the TAP is not recreated: a restart brings
//!   it back; new connections find every member down until then);
//!   after a restart the members are healthy and the check has cleared.
//! - Hugepages missing at start (vipmux started in a private mount namespace without hugetlbfs):
//!   with `hugepages = "auto"` it falls back to `--no-huge`, says so in its log and forwards; with
//!   `hugepages = "on"` it exits non-zero with a message naming the profile field and the cause.
//! - A burst on the smallest packet pool the profile validation accepts (no per-core cache):
//!   bursts of datagrams to the appliance's own address (exceptions, which hold their mbufs in the
//!   worker's slow-path queue until the slow path hands them to the kernel) overflow that queue;
//!   the worker counts the refused frames (`exception_queue_full`), the port's device counters
//!   (`rx_nombuf`, `imissed`, `ierrors`, `oerrors`) are in `counters` and as `vipmux_port_*_total`
//!   series, vipmux keeps running and connections through the VIP work again afterwards. (The
//!   pool holds the full queue and a receive burst, so the port does not run out of mbufs here.)
//!
//! Needs root; skipped otherwise (fails when CI=true).

mod common;

use std::time::Duration;

use common::appliance::{check, findings_of, start_or_panic, tcp_whoami};
use vipmux::control::Request;

use common::{
    ns_exec_ok, skip_unless_root, wait_for, Appliance, ConfigBuilder, TcpSession, Topology,
};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
/// Generous bound for the recovery of a loaded machine.
const RECOVERY: Duration = Duration::from_secs(60);
/// How soon after a member's MAC changes new connections must reach it again.
const MAC_BOUND: Duration = Duration::from_secs(20);
/// Unmounts every hugetlbfs of a private mount namespace, then runs its arguments.
const NO_HUGETLBFS: &str =
    "for m in $(awk '$3 == \"hugetlbfs\" { print $2 }' /proc/mounts); do umount \"$m\" || exit 1; done; exec \"$@\"";

/// The smallest pool the CI profile's validation accepts (32 rx + 32 tx descriptors, the exception
/// TAP's 1024, 1024 in flight), no per-core cache, and a large kernel ring so a burst arrives at
/// once.
const SMALL_POOL: [(&str, &str); 5] = [
    ("mbufs = 8191", "mbufs = 2112"),
    ("cache = 256", "cache = 0"),
    ("framecnt=512", "framecnt=4096"),
    ("rx_descriptors = 512", "rx_descriptors = 32"),
    ("tx_descriptors = 512", "tx_descriptors = 32"),
];
/// Datagrams per burst, and bursts at most.
const BURST: u32 = 20_000;
const MAX_BURSTS: u32 = 6;
/// Sends argv[2] empty UDP datagrams to argv[1]:9 as fast as Python can, from four processes.
const SENDER: &str = "import os, socket, sys
for _ in range(3):
    if os.fork() == 0:
        break
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
a = (sys.argv[1], 9)
for _ in range(int(sys.argv[2]) // 4):
    try:
        s.sendto(b'', a)
    except OSError:
        pass
";

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", &ALL, "")
        .probe_tcp("tcp-80", 80, 1, 2)
        .lb_rule("echo", "tcp", 7000, 7000, "web", Some("tcp-80"), "")
}

/// Five TCP exchanges through the VIP, each answered by a backend.
fn forwarding(topo: &Topology) -> Result<(), String> {
    let to = format!("{}:7000", topo.get("VIP"));
    for _ in 0..5 {
        tcp_whoami(&topo.ns("client"), &to)?;
    }
    Ok(())
}

/// Waits (bounded) until [`forwarding`] succeeds; the time it took, or the last error.
fn forwarding_again(topo: &Topology, what: &str) -> Result<Duration, String> {
    let t0 = std::time::Instant::now();
    let mut last = String::new();
    wait_for(RECOVERY, || match forwarding(topo) {
        Ok(()) => Some(()),
        Err(e) => {
            last = e;
            None
        }
    })
    .ok_or_else(|| format!("{what}: no forwarding within {RECOVERY:?}: {last}"))?;
    let took = t0.elapsed();
    eprintln!("{what}: forwarding again after {took:?}");
    Ok(took)
}

fn scenario_link_flap(topo: &Topology, app: &mut Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, RECOVERY)?;
    forwarding(topo)?;
    let mux = topo.ns("mux");
    let link = topo.get("MUX_IF");
    ns_exec_ok(&mux, &["ip", "link", "set", link, "down"])?;
    // While down, nothing gets through (the veth has no carrier).
    let to = format!("{}:7000", topo.get("VIP"));
    if tcp_whoami(&topo.ns("client"), &to).is_ok() {
        return Err("a connection went through while the MUX's link was down".into());
    }
    ns_exec_ok(&mux, &["ip", "link", "set", link, "up"])?;
    forwarding_again(topo, "link down/up")?;
    if !app.is_running() {
        return Err("vipmux exited after the link flap".into());
    }
    Ok(())
}

/// A member's MAC changes (its interface replaced, as after a VM move): within [`MAC_BOUND`] new
/// connections reach it again, so the data path is not left on the stale MAC (the kernel behind
/// the TAP re-resolves it for the probes, and the slow path learns from the answer; a probe that
/// fails meanwhile makes the slow path ask itself).
fn scenario_member_mac_change(topo: &Topology, app: &mut Appliance) -> Result<(), String> {
    // The probes run through the TAP's kernel side: let it notice a changed MAC within seconds
    // (its defaults take 15 to 45 s and more), so the scenario stays short.
    let tap = exception_tap(topo)?;
    for knob in ["base_reachable_time_ms=4000", "delay_first_probe_time=1"] {
        let knob = format!("net.ipv4.neigh.{tap}.{knob}");
        ns_exec_ok(&topo.ns("mux"), &["sysctl", "-qw", &knob])?;
    }
    app.wait_members_healthy(&ALL, RECOVERY)?;
    let b1 = topo.ns("b1");
    ns_exec_ok(
        &b1,
        &["ip", "link", "set", "eth0", "address", "02:00:00:0f:a0:17"],
    )?;
    let t0 = std::time::Instant::now();
    let to = format!("{}:7000", topo.get("VIP"));
    let mut seen = Vec::new();
    while t0.elapsed() < MAC_BOUND {
        match tcp_whoami(&topo.ns("client"), &to) {
            Ok(who) if who.backend == "b1" => {
                eprintln!(
                    "MAC change: b1 reached again after {:?} ({seen:?})",
                    t0.elapsed()
                );
                return Ok(());
            }
            Ok(who) => seen.push(who.backend),
            Err(_) => seen.push("failed".into()),
        }
    }
    Err(format!(
        "b1 not reached within {MAC_BOUND:?} of its MAC change: {seen:?}\n{}",
        app.status_json()?
    ))
}

/// The name of vipmux's exception TAP in the MUX namespace.
fn exception_tap(topo: &Topology) -> Result<String, String> {
    let links = ns_exec_ok(&topo.ns("mux"), &["ip", "-o", "link", "show"])?;
    links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .find(|n| n.starts_with("vmx"))
        .map(str::to_string)
        .ok_or_else(|| format!("no exception TAP in {links}"))
}

fn scenario_tap_deleted(topo: &Topology, app: &mut Appliance) -> Result<(), String> {
    let mux = topo.ns("mux");
    let tap = exception_tap(topo)?;
    app.wait_members_healthy(&ALL, RECOVERY)?;
    let to = format!("{}:7000", topo.get("VIP"));
    let mut session = TcpSession::connect(&topo.ns("client"), &to, None)?;
    session.whoami()?;
    ns_exec_ok(&mux, &["ip", "link", "del", &tap])?;
    // Probes went out through the TAP: they now fail, and status says why (the TAP is not
    // recreated; a restart brings it back).
    let why = app.wait_member("b1", false, RECOVERY)?;
    eprintln!("TAP deleted: b1 then reported {why:?}");
    if !why.contains("os error") {
        return Err(format!("b1 down after the TAP was deleted, reason {why:?}"));
    }
    // Established connections keep their member although every probe now fails.
    session
        .whoami()
        .map_err(|e| format!("an established connection after the TAP was deleted: {e}"))?;
    let diagnose = app.request(&Request::Diagnose)?;
    let found = diagnose["findings"].as_array().is_some_and(|f| {
        f.iter().any(|f| {
            f["check"] == "exception_tap_missing"
                && f["severity"] == "error"
                && f["subject"] == format!("TAP {tap}")
        })
    });
    if !found {
        return Err(format!(
            "diagnose does not report the missing TAP: {diagnose}"
        ));
    }
    let status = app
        .status_json()
        .map_err(|e| format!("status after the TAP was deleted: {e}"))?;
    if status["ports"][0]["exception_tap_missing"] != true {
        return Err(format!("status does not say the TAP is missing: {status}"));
    }
    // The supervisor checks every second and logs the loss once.
    let deadline = std::time::Instant::now() + RECOVERY;
    while !app
        .log_text()
        .contains("exception TAP deleted from outside")
    {
        if std::time::Instant::now() > deadline {
            return Err("no log line about the deleted TAP".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !app.is_running() {
        return Err("vipmux exited after its TAP was deleted".into());
    }
    Ok(())
}

/// After a restart the members are probed healthy again and `diagnose` no longer names
/// `exception_tap_missing`.
fn tap_back_after_restart(app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, RECOVERY)?;
    let d = app.diagnose_json()?;
    if !findings_of(&d, "exception_tap_missing").is_empty() {
        return Err(format!("exception_tap_missing after a restart: {d}"));
    }
    Ok(())
}

/// The configuration of these tests on the CI af_packet profile with `edits` (text replacements)
/// applied, written as `file` in the topology's state directory.
fn config_with_ci_profile(
    topo: &Topology,
    file: &str,
    edits: &[(&str, &str)],
) -> Result<String, String> {
    let mut profile = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dpdk-config/ci-af-packet.toml"),
    )
    .map_err(|e| e.to_string())?;
    for (from, to) in edits {
        if !profile.contains(from) {
            return Err(format!("the CI profile has no {from:?}"));
        }
        profile = profile.replace(from, to);
    }
    let path = topo.state_dir().join(file);
    std::fs::write(&path, profile).map_err(|e| e.to_string())?;
    Ok(config().build(topo).replace(
        "[dataplane]",
        &format!(
            "[dataplane]\ndpdk_profile = {:?}",
            path.display().to_string()
        ),
    ))
}

fn scenario_pool_burst(topo: &Topology) -> Result<(), String> {
    let text = config_with_ci_profile(topo, "small-pool.toml", &SMALL_POOL)?;
    let mut app = Appliance::start(topo, &text)?;
    let result = pool_burst(topo, &mut app);
    if result.is_err() {
        eprintln!("--- vipmux log ---\n{}", app.log_text());
    }
    result
}

fn pool_burst(topo: &Topology, app: &mut Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, RECOVERY)?;
    forwarding_again(topo, "on the smallest pool")?;
    let before = app.counters_json()?;
    let queue_full = |c: &serde_json::Value| c["exception_queue_full"].as_u64().unwrap_or(0);
    // The worker counts what the full slow-path queue refused; a loaded machine may drain a burst
    // in time, so bursts repeat (a few at most) until one overflows the queue.
    let mut bursts = 0;
    let after = loop {
        ns_exec_ok(
            &topo.ns("router"),
            &[
                "python3",
                "-c",
                SENDER,
                topo.get("MUX_IP"),
                &BURST.to_string(),
            ],
        )?;
        bursts += 1;
        let overflowed = wait_for(Duration::from_secs(2), || {
            app.counters_json()
                .ok()
                .filter(|c| queue_full(c) > queue_full(&before))
        });
        match overflowed {
            Some(c) => break c,
            None if bursts >= MAX_BURSTS => {
                return Err(format!(
                    "{bursts} bursts of {BURST} datagrams to the appliance overflowed nothing: {}",
                    app.counters_json().unwrap_or_default()
                ))
            }
            None => {}
        }
    };
    let port = &after["ports"][0];
    eprintln!(
        "{bursts} burst(s): received {} -> {}, exception_queue_full {} -> {}, port {port}",
        before["received"],
        after["received"],
        queue_full(&before),
        queue_full(&after)
    );
    if port["interface"] != "dc" {
        return Err(format!("no port counters for interface dc: {after}"));
    }
    for (field, series) in [
        ("rx_nombuf", "vipmux_port_rx_nombuf_total"),
        ("imissed", "vipmux_port_rx_missed_total"),
        ("ierrors", "vipmux_port_rx_errors_total"),
        ("oerrors", "vipmux_port_tx_errors_total"),
    ] {
        let counted = port[field]
            .as_u64()
            .ok_or_else(|| format!("no ports[0].{field} in {after}"))?;
        let metric = app.metric(&format!("{series}{{interface=\"dc\"}}"))?;
        if metric < counted as f64 {
            return Err(format!("{series} says {metric}, counters said {counted}"));
        }
    }
    forwarding_again(topo, "after the burst")?;
    if !app.is_running() {
        return Err("vipmux exited after the burst".into());
    }
    Ok(())
}

fn scenario_no_hugepages(topo: &Topology) -> Result<(), String> {
    let wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        NO_HUGETLBFS,
        "sh",
    ];
    let app = Appliance::start_wrapped(topo, &config().build(topo), &wrapper)?;
    if !app
        .log_text()
        .contains("no hugepages (no hugetlbfs mounted")
    {
        return Err(format!(
            "no fallback message in the log:\n{}",
            app.log_text()
        ));
    }
    app.wait_members_healthy(&ALL, RECOVERY)?;
    forwarding_again(topo, "without hugepages")?;
    drop(app);

    let text = config_with_ci_profile(
        topo,
        "huge-on.toml",
        &[("hugepages = \"auto\"", "hugepages = \"on\"")],
    )?;
    match Appliance::start_wrapped(topo, &text, &wrapper) {
        Ok(_) => Err("hugepages = \"on\" without hugetlbfs started anyway".into()),
        Err(e) if e.contains("huge-on.toml: hugepages: \"on\" but no hugetlbfs mounted") => {
            eprintln!(
                "hugepages = \"on\" without hugetlbfs: {}",
                e.lines().last().unwrap_or("")
            );
            Ok(())
        }
        Err(e) => Err(format!(
            "hugepages = \"on\" without hugetlbfs failed unclearly: {e}"
        )),
    }
}

#[test]
fn survives_link_flap_tap_loss_and_missing_hugepages() {
    if skip_unless_root("survives_link_flap_tap_loss_and_missing_hugepages") {
        return;
    }
    let topo =
        Topology::up("one-arm", &["--return", "gateway", "--backends", "3"]).expect("topology up");
    let mut app = start_or_panic(&topo, &config());
    let flap = scenario_link_flap(&topo, &mut app);
    check(&app, flap);
    let mac = scenario_member_mac_change(&topo, &mut app);
    check(&app, mac);
    let tap = scenario_tap_deleted(&topo, &mut app);
    check(&app, tap);
    app.stop();
    drop(app);
    // The fix `diagnose` gives: restart. The TAP is back and the check clears.
    let app = start_or_panic(&topo, &config());
    check(&app, tap_back_after_restart(&app));
    drop(app);
    if let Err(e) = scenario_no_hugepages(&topo) {
        panic!("{e}");
    }
    if let Err(e) = scenario_pool_burst(&topo) {
        panic!("{e}");
    }
}
