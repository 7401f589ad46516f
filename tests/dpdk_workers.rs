//! Two workers on a memif port with two queue pairs: `vipmux pktgen` (the memif server) spreads
//! its flows over both queues (`--queues 2`, flow i on queue i mod 2) and sends an exact number
//! of frames (`--count`); `vipmux run` (the client, `workers = 2`, worker w polling queue w) must
//! hand every frame whose owner (docs/design.md §6.2) is the other worker to it. The test predicts
//! the hand-off count from the same pure ownership function and pktgen's flow set and spreading,
//! and checks it exactly, with no frame dropped on a full ring and no rewrite error.
//!
//! Needs root and free hugepages; skipped otherwise, and fails instead under `CI=true` or
//! `VIPMUX_REQUIRE_DPDK=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{hugepages_free, pktgen_summary, prereq, wait_pktgen_listening, Netns, Reaper};
use serde_json::Value;
use vipmux::balance::{Health, Reta, Snapshot};
use vipmux::config::Config;
use vipmux::control::{ControlClient, Request};
use vipmux::pktgen::engine::queue_of_flow;
use vipmux::pktgen::flows::{targets, FlowSet};

/// Flows pktgen sends (spread over the two queues).
const FLOWS: u32 = 64;
/// Frames pktgen sends in all (not a multiple of FLOWS: some flows get one more).
const FRAMES: u64 = 64 * 40 + 17;
/// Queue pairs, and workers.
const QUEUES: u16 = 2;

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// True when the test must skip (printing why); a failure instead where prerequisites are
/// required ([`prereq`]).
fn skip(what: &str) -> bool {
    prereq::missing("dpdk_workers", what)
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory for this process and `tag`.
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("vipmux-workers-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

/// True when this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The DUT's configuration: one memif interface, the VIP 10.1.0.100, TCP 80 NAT to 8080 over
/// eight on-link members, `workers` workers.
fn config_text(socket: &Path, workers: usize) -> String {
    let mut t = format!(
        "[appliance]\nname = \"workers\"\nhash_seed = 0x5eedcafe\n\n\
         [dataplane]\ndpdk_profile = \"{}\"\nworkers = {workers}\nflow_table_capacity = 65536\n\n\
         [control]\nsocket = \"{}\"\nmetrics = \"\"\n\n\
         [[interfaces]]\nname = \"lan\"\nport = \"net_memif0\"\naddress = \"10.1.0.2/24\"\n\n\
         [[frontends]]\nname = \"vip\"\naddress = \"10.1.0.100\"\ninterface = \"lan\"\n\n\
         [[backend_pools]]\nname = \"web\"\nmembers = [\n",
        repo("dpdk-config/memif-dut.toml"),
        socket.display()
    );
    for i in 1..=8 {
        t.push_str(&format!(
            "  {{ name = \"b{i}\", address = \"10.1.0.{}\" }},\n",
            10 + i
        ));
    }
    t.push_str(
        "]\n\n[[load_balancing_rules]]\nname = \"web\"\nfrontend = \"vip\"\nprotocol = \"tcp\"\n\
         frontend_port = 80\nbackend_port = 8080\nbackend_pool = \"web\"\n",
    );
    t
}

/// Hand-offs the ownership rule predicts: every frame of a flow whose owner is not the worker of
/// the queue pktgen sends it on.
fn predicted_handoffs(config: &Path) -> u64 {
    let cfg = Config::load(config).expect("config");
    let snap = Snapshot::compile(&cfg, &Health::all_up(&cfg));
    let flows = FlowSet::new(FLOWS, targets(&snap, None).expect("targets"));
    let reta = Reta::new(usize::from(QUEUES));
    (0..FLOWS)
        .filter(|f| {
            let c = flows.client(*f);
            reta.owner(u32::from(*c.ip()), c.port()) != usize::from(queue_of_flow(*f, QUEUES))
        })
        .map(|f| FRAMES / u64::from(FLOWS) + u64::from(u64::from(f) < FRAMES % u64::from(FLOWS)))
        .sum()
}

/// The DUT's counters, or `None` while its socket does not answer.
fn counters(socket: &Path) -> Option<Value> {
    ControlClient::connect(socket)
        .ok()?
        .request(&Request::Counters)
        .ok()
}

/// (sent, received, dropped) hand-offs summed over the workers.
fn handoffs(c: &Value) -> (u64, u64, u64) {
    let sum = |k: &str| {
        c["workers"]
            .as_array()
            .map(|ws| ws.iter().filter_map(|w| w[k].as_u64()).sum())
            .unwrap_or(0)
    };
    (
        sum("handoff_sent"),
        sum("handoff_received"),
        sum("handoff_full"),
    )
}

/// Flows in `vipmux flows` held by another worker than their owner; `Err` when the listing does
/// not have all [`FLOWS`] flows.
fn flows_off_owner(ctl: &Path) -> Result<usize, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_vipmux"))
        .args(["flows", "--json", "--socket"])
        .arg(ctl)
        .output()
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let rows = v["flows"].as_array().cloned().unwrap_or_default();
    if rows.len() != FLOWS as usize {
        return Err(format!("{} flows listed of {FLOWS}: {v}", rows.len()));
    }
    let reta = Reta::new(usize::from(QUEUES));
    Ok(rows
        .iter()
        .filter(|f| {
            let c: Option<std::net::SocketAddrV4> =
                f["client"].as_str().and_then(|c| c.parse().ok());
            c.map(|c| reta.owner(u32::from(*c.ip()), c.port()) as u64) != f["worker"].as_u64()
        })
        .count())
}

/// Starts pktgen (memif server) and waits for its socket; the summary comes on its stdout.
fn start_pktgen(config: &Path, sock: &str, spread: &str) -> Reaper {
    let mut gen = Reaper(
        Command::new(env!("CARGO_BIN_EXE_vipmux"))
            .args([
                "pktgen",
                "--profile",
                &repo("dpdk-config/memif-pktgen.toml"),
            ])
            .arg(format!(
                "--eal=--vdev=net_memif0,role=server,socket={sock},id=0,socket-abstract=no"
            ))
            .arg("--config")
            .arg(config)
            .args([
                "--flows",
                &FLOWS.to_string(),
                "--queues",
                &QUEUES.to_string(),
            ])
            .args(["--count", &FRAMES.to_string(), "--rate", "20000"])
            .args(["--spread", spread])
            .args(["--duration", "60", "--mode", "established", "--json"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vipmux pktgen"),
    );
    wait_pktgen_listening(&mut gen, Path::new(sock));
    gen
}

#[test]
fn two_workers_on_two_memif_queues_hand_each_frame_to_its_owner() {
    two_workers("flow");
}

/// pktgen puts each flow on its owner's queue (`--spread owner`, what NIC steering by the
/// ownership rule delivers): no frame needs a hand-off.
#[test]
fn two_workers_fed_by_owner_need_no_handoff() {
    two_workers("owner");
}

/// The run with pktgen's `--spread` = `spread` (`flow`: i mod 2, `owner`: the owner's queue).
fn two_workers(spread: &str) {
    if !is_root() && skip("not root") {
        return;
    }
    if hugepages_free() < 512 && skip("fewer than 512 free hugepages") {
        return;
    }
    let dir = Scratch::new(spread);
    let (ctl, config) = (dir.0.join("vipmux.sock"), dir.0.join("vipmux.toml"));
    std::fs::write(&config, config_text(&ctl, usize::from(QUEUES))).expect("write config");
    let sock = dir.0.join("memif.sock").display().to_string();
    let predicted = if spread == "owner" {
        0
    } else {
        predicted_handoffs(&config)
    };

    let mut gen = start_pktgen(&config, &sock, spread);
    let ns = Netns::add();
    let log = dir.0.join("vipmux.log");
    let cfg_arg = config.display().to_string();
    let vdev = format!("--eal=--vdev=net_memif0,role=client,socket={sock},id=0,socket-abstract=no");
    let mut dut = common::spawn_in_ns(
        &ns.0,
        &[
            env!("CARGO_BIN_EXE_vipmux"),
            "run",
            "--config",
            &cfg_arg,
            &vdev,
        ],
        &log,
    )
    .expect("start vipmux run");
    let summary = pktgen_summary(&mut gen, Duration::from_secs(120), || {
        assert!(
            dut.is_running(),
            "vipmux run exited:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    });
    eprintln!(
        "pktgen: tx {} rx {} errors {}",
        summary["tx_packets"], summary["rx_packets"], summary["errors"]
    );
    assert_eq!(summary["tx_packets"].as_u64(), Some(FRAMES), "{summary}");
    assert_eq!(summary["errors"].as_u64(), Some(0), "{summary}");
    assert!(summary["rx_packets"].as_u64().unwrap_or(0) > 0, "{summary}");

    // The counters are published every 100 ms: wait until the receiving side caught up.
    let (mut last, mut rx) = ((0, 0, 0), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(c) = counters(&ctl) {
            last = handoffs(&c);
            rx = c["received"].as_u64().unwrap_or(0);
            if last.0 >= predicted && last.1 == last.0 && rx >= FRAMES {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new(env!("CARGO_BIN_EXE_vipmux"))
        .args(["status", "--socket"])
        .arg(&ctl)
        .output()
        .expect("vipmux status");
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    let misplaced = flows_off_owner(&ctl);
    drop(dut);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("hand-offs (sent, received, dropped) {last:?}, predicted {predicted}");
    assert!(
        spread == "owner" || predicted > 0,
        "the flow set puts some flows on the wrong queue"
    );
    assert_eq!(last.0, predicted, "hand-offs sent\n{log_text}");
    assert_eq!(last.1, predicted, "hand-offs received\n{log_text}");
    assert_eq!(last.2, 0, "frames dropped on a full hand-off ring");
    assert!(rx >= FRAMES, "the DUT received {rx} frames of {FRAMES}");
    assert_eq!(
        misplaced,
        Ok(0),
        "flows held by a worker other than their owner"
    );
    assert!(
        status.contains("port lan (net_memif0): 2 rx queues, software-handoff (the device cannot hash on the source or the destination endpoint alone)"),
        "status: {status}"
    );
}

/// Writes the memif test configuration turned to `workers` workers on port `port` (no DPDK
/// profile: the default one) into `dir`; returns (control socket, configuration file).
fn config_on_port(dir: &Scratch, workers: usize, port: &str) -> (PathBuf, PathBuf) {
    let (ctl, config) = (dir.0.join("vipmux.sock"), dir.0.join("vipmux.toml"));
    let text = config_text(&ctl, workers)
        .replace("net_memif0", port)
        .lines()
        .filter(|l| !l.starts_with("dpdk_profile"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text).expect("write config");
    (ctl, config)
}

/// The EAL arguments of a run with port `vdev` and no hugepages.
fn no_huge_eal(vdev: &str) -> [String; 4] {
    [
        format!("--eal=--vdev={vdev}"),
        "--eal=--no-huge".into(),
        "--eal=-m".into(),
        "--eal=512".into(),
    ]
}

/// Runs `vipmux run` in a fresh namespace with the memif test configuration turned to `workers`
/// workers on port `port` (vdev `vdev`, no hugepages) and returns its stderr; it must refuse to
/// start.
fn refusal(name: &str, workers: usize, port: &str, vdev: &str) -> String {
    let dir = Scratch::new(name);
    let (_, config) = config_on_port(&dir, workers, port);
    let ns = Netns::add();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_vipmux"),
            "run",
            "--config",
        ])
        .arg(&config)
        .args(no_huge_eal(vdev))
        .output()
        .expect("run vipmux");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "started with too few queues: {stderr}"
    );
    stderr
}

/// Starts `vipmux run` with two workers on port `port` (vdev `vdev`, no hugepages) in a fresh
/// namespace, which has a veth pair `vmxa`/`vmxb` up for an `af_packet` port to bind to, and
/// returns the port's line of `vipmux status` once it answers (60 s at most).
fn steering_line(name: &str, port: &str, vdev: &str) -> String {
    let dir = Scratch::new(name);
    let (ctl, config) = config_on_port(&dir, 2, port);
    let ns = Netns::add();
    for args in [
        &[
            "link", "add", "vmxa", "type", "veth", "peer", "name", "vmxb",
        ][..],
        &["link", "set", "vmxa", "up"],
        &["link", "set", "vmxb", "up"],
    ] {
        let ok = Command::new("ip")
            .args(["-n", &ns.0])
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip -n {} {args:?}", ns.0);
    }
    let log = dir.0.join("vipmux.log");
    let cfg_arg = config.display().to_string();
    let eal = no_huge_eal(vdev);
    let mut cmd = vec![env!("CARGO_BIN_EXE_vipmux"), "run", "--config", &cfg_arg];
    cmd.extend(eal.iter().map(String::as_str));
    let mut dut = common::spawn_in_ns(&ns.0, &cmd, &log).expect("start vipmux run");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_vipmux"))
            .args(["status", "--socket"])
            .arg(&ctl)
            .output()
            .expect("vipmux status");
        let status = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(line) = status.lines().find(|l| l.starts_with("port lan ")) {
            return line.to_owned();
        }
        assert!(
            dut.is_running() && Instant::now() < deadline,
            "no port line in the status:\n{status}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two workers on the virtual devices of this machine: none can hash on the source or the
/// destination endpoint alone, so each port runs the software hand-off, and `vipmux status`
/// says so and why (docs/design.md §6.2). Traffic through that fallback is checked by the
/// memif tests above.
#[test]
fn two_workers_on_each_virtual_device_report_their_steering_and_why() {
    if !is_root() && skip("not root") {
        return;
    }
    let why =
        "software-handoff (the device cannot hash on the source or the destination endpoint alone)";
    for (name, port, vdev) in [
        ("tap-steer", "net_tap0", "net_tap0,iface=wtap0"),
        (
            "afp-steer",
            "net_af_packet0",
            "net_af_packet0,iface=vmxa,qpairs=2",
        ),
    ] {
        let line = steering_line(name, port, vdev);
        eprintln!("{port}: {line}");
        assert!(
            line.starts_with(&format!("port lan ({port}): 2 rx queues, {why}")),
            "{line}"
        );
    }
}

/// `workers = 2` on a port that can give one queue pair only (`net_af_packet` without `qpairs`, on
/// the namespace's loopback) is refused at start,
/// and the message says what the port can do and what to change.
#[test]
fn too_few_queues_are_refused_with_what_to_change() {
    if !is_root() && skip("not root") {
        return;
    }
    let stderr = refusal("refusal", 2, "net_af_packet0", "net_af_packet0,iface=lo");
    assert!(
        stderr.contains("interface lan: port net_af_packet0 can give 1 rx / 1 tx queues")
            && stderr.contains("workers = 2 needs one queue pair per worker")
            && stderr.contains("add qpairs=2 to its vdev arguments"),
        "{stderr}"
    );
}

/// More workers than a `net_tap` port has TAP queues is refused at start with its limit and
/// what to change.
#[test]
fn more_workers_than_tap_queues_are_refused() {
    if !is_root() && skip("not root") {
        return;
    }
    let stderr = refusal("tap-refusal", 64, "net_tap0", "net_tap0,iface=wtap0");
    assert!(
        stderr.contains("interface lan: port net_tap0 can give ")
            && stderr.contains("workers = 64 needs one queue pair per worker")
            && stderr.contains("one queue of its multi-queue TAP per worker"),
        "{stderr}"
    );
}
