//! `vipmux capture` end to end: vipmux in the one-arm topology, a capture of one drop reason
//! (`ttl`) armed with `vipmux capture --reason ttl`, then crafted frames of three drop reasons
//! (`bad_header`, `unsupported`, `ttl`; `scripts/netns/crafted.py`, which prints the bytes it
//! sends) from the router straight to the MUX's MAC. After Ctrl-C the pcapng file must hold exactly
//! the `ttl` frames, byte for byte, each with its reason in the packet comment (read back with
//! scapy's pcapng reader), and `tcpdump -r` must read it. Needs root; skipped otherwise.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::appliance::{check, VIPMUX};
use common::{
    ns_exec, scripts_dir, skip_unless_root, wait_for, Appliance, ConfigBuilder, Topology,
};

/// Frames sent per kind.
const COUNT: usize = 3;

/// Sends `COUNT` crafted frames of `kind`; the hex of each frame sent.
fn send(topo: &Topology, kind: &str) -> Result<Vec<String>, String> {
    let script = scripts_dir().join("crafted.py");
    let count = COUNT.to_string();
    let out = ns_exec(
        &topo.ns("router"),
        &[
            "/usr/bin/python3",
            &script.to_string_lossy(),
            "send",
            kind,
            "--iface",
            "eth1",
            "--dst-mac",
            topo.get("MUX_MAC"),
            "--src-ip",
            topo.get("ROUTER_LAN_IP"),
            "--vip",
            topo.get("VIP"),
            "--port",
            "80",
            "--count",
            &count,
            "--print-hex",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "crafted.py send {kind} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout
        .lines()
        .filter(|l| !l.starts_with("sent "))
        .map(str::to_string)
        .collect())
}

/// Reads a pcapng file with scapy: one (hex, comment) per packet.
fn read_pcapng(file: &Path) -> Result<Vec<(String, String)>, String> {
    let code = "import sys, os\n\
        os.environ.setdefault('SCAPY_USE_LIBPCAP', 'no')\n\
        from scapy.utils import PcapNgReader\n\
        for p in PcapNgReader(sys.argv[1]):\n\
        \x20   c = getattr(p, 'comment', None) or b''\n\
        \x20   print(bytes(p).hex(), c.decode() if isinstance(c, bytes) else c)\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", code])
        .arg(file)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scapy cannot read {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (hex, comment) = l.split_once(' ').unwrap_or((l, ""));
            (hex.to_string(), comment.to_string())
        })
        .collect())
}

/// Packets `tcpdump -r` reads from `file`.
fn tcpdump_count(file: &Path) -> Result<usize, String> {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .output()
        .map_err(|e| format!("tcpdump: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tcpdump -r failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().count())
}

fn scenario(topo: &Topology, app: &mut Appliance) -> Result<(), String> {
    app.wait_members_healthy(&["b1", "b2", "b3"], Duration::from_secs(30))?;
    let file = topo.state_dir().join("ttl.pcapng");
    let mut capture = Command::new(VIPMUX)
        .args([
            "capture",
            "--reason",
            "ttl",
            "--frontend",
            "fe",
            "--json",
            "-w",
        ])
        .arg(&file)
        .arg("--socket")
        .arg(app.socket())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("vipmux capture: {e}"))?;
    let armed = wait_for(Duration::from_secs(10), || {
        app.log_text().contains("capture armed").then_some(())
    });
    if armed.is_none() {
        let _ = capture.kill();
        return Err(format!("capture never armed; log:\n{}", app.log_text()));
    }
    let before = app.drop_count("ttl")?;
    let mut expected = Vec::new();
    for kind in ["bad_ihl", "ttl1", "ipv6"] {
        let frames = send(topo, kind)?;
        if kind == "ttl1" {
            expected = frames;
        }
    }
    let counted = wait_for(Duration::from_secs(10), || {
        app.drop_count("ttl")
            .ok()
            .filter(|n| *n >= before + COUNT as u64)
    });
    let _ = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let out = capture
        .wait_with_output()
        .map_err(|e| format!("vipmux capture: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if counted.is_none() || !out.status.success() {
        return Err(format!(
            "ttl counted: {counted:?}; capture exit {}: {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let summary: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("summary {stdout:?}: {e}"))?;
    if summary["captured"] != COUNT || summary["matched"] != COUNT || summary["lost"] != 0 {
        return Err(format!("summary {summary}"));
    }
    let packets = read_pcapng(&file)?;
    let got: Vec<&String> = packets.iter().map(|(h, _)| h).collect();
    let want: Vec<&String> = expected.iter().collect();
    if got != want {
        return Err(format!(
            "captured {got:?}\nexpected the ttl1 frames {want:?}"
        ));
    }
    for (_, comment) in &packets {
        if !comment.contains("(drop ttl)") || !comment.contains("worker 0") {
            return Err(format!("comment {comment:?} lacks the reason or worker"));
        }
    }
    match tcpdump_count(&file)? {
        n if n == COUNT => Ok(()),
        n => Err(format!("tcpdump -r read {n} packets, expected {COUNT}")),
    }
}

#[test]
fn capture_writes_exactly_the_frames_of_one_reason() {
    if skip_unless_root("capture_writes_exactly_the_frames_of_one_reason") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let cfg = ConfigBuilder::one_arm()
        .pool("web", &["b1", "b2", "b3"], "")
        .probe_http("http-80", 80, 1, 2)
        .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "");
    let mut app = Appliance::start(&topo, &cfg.build(&topo)).expect("vipmux start");
    let result = scenario(&topo, &mut app);
    check(&app, result);
}
