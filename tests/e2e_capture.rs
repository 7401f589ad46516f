//! `vipmux capture` end to end: vipmux in the one-arm topology, a capture of one drop reason
//! (`ttl`) armed with `vipmux capture --reason ttl`, then crafted frames of three drop reasons
//! (`bad_header`, `unsupported`, `ttl`; `scripts/netns/crafted.py`, which prints the bytes it
//! sends) from the router straight to the MUX's MAC. After Ctrl-C the pcapng file must hold exactly
//! the `ttl` frames, byte for byte (read back with scapy), each with its reason, worker and
//! interface in the packet comment (read with tshark), and `tcpdump -r` must read it. Then a
//! capture whose command is killed is disarmed by the appliance, and a `--count 2 --format pcap`
//! capture ends by itself with a file tcpdump reads. Needs root; skipped otherwise.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::appliance::{check, spawn_capture};
use common::{crafted_send, skip_unless_root, wait_for, Appliance, ConfigBuilder, Topology};

/// Frames sent per kind.
const COUNT: usize = 3;

/// Sends `COUNT` crafted frames of `kind`; the hex of each frame sent.
fn send(topo: &Topology, kind: &str) -> Result<Vec<String>, String> {
    let out = crafted_send(topo, kind, COUNT as u64, &["--print-hex"])?;
    Ok(out
        .lines()
        .filter(|l| !l.starts_with("sent "))
        .map(str::to_string)
        .collect())
}

/// Runs a reader over `file`: its stdout lines, or why it failed.
fn reader_lines(program: &str, args: &[&str], file: &Path) -> Result<Vec<String>, String> {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} cannot read {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The frames of a pcapng file in hex, read with scapy.
fn frames_hex(file: &Path) -> Result<Vec<String>, String> {
    let code = "import sys, os\n\
        os.environ.setdefault('SCAPY_USE_LIBPCAP', 'no')\n\
        from scapy.utils import PcapNgReader\n\
        for p in PcapNgReader(sys.argv[1]):\n\
        \x20   print(bytes(p).hex())\n";
    reader_lines("/usr/bin/python3", &["-c", code], file)
}

/// The packet comments of a pcapng file, read with tshark.
fn comments(file: &Path) -> Result<Vec<String>, String> {
    reader_lines(
        "tshark",
        &["-T", "fields", "-e", "frame.comment", "-r"],
        file,
    )
}

/// The interface names of a pcapng file's packets, read with tshark.
fn interfaces(file: &Path) -> Result<Vec<String>, String> {
    reader_lines(
        "tshark",
        &["-T", "fields", "-e", "frame.interface_name", "-r"],
        file,
    )
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
    let capture = spawn_capture(app, &["--reason", "ttl", "--frontend", "fe"], &file)?;
    let before = app.drop_count("ttl")?;
    let mut expected = Vec::new();
    for kind in ["bad_ihl", "ttl1", "ipv6"] {
        let frames = send(topo, kind)?;
        if kind == "ttl1" {
            expected = frames;
        }
    }
    let counted = app.wait_counter("/drops/ttl", Duration::from_secs(10), before + COUNT as u64);
    let _ = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let out = capture
        .wait_with_output()
        .map_err(|e| format!("vipmux capture: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if counted.is_err() || !out.status.success() {
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
    let got = frames_hex(&file)?;
    if got != expected {
        return Err(format!(
            "captured {got:?}\nexpected the ttl1 frames {expected:?}"
        ));
    }
    let comments = comments(&file)?;
    let want = "exception ttl_exceeded (drop ttl); worker 0; interface dc";
    if comments.len() != COUNT || comments.iter().any(|c| c != want) {
        return Err(format!("comments {comments:?}, expected {want:?} each"));
    }
    let names = interfaces(&file)?;
    if names.len() != COUNT || names.iter().any(|n| n != "dc") {
        return Err(format!("interface names {names:?}"));
    }
    match tcpdump_count(&file)? {
        n if n == COUNT => {}
        n => return Err(format!("tcpdump -r read {n} packets, expected {COUNT}")),
    }
    abandoned_capture_is_disarmed(topo, app)?;
    count_stops_a_classic_pcap_capture(topo, app)
}

/// A capture whose command is killed (no Ctrl-C, no `stop`) is disarmed by the appliance.
fn abandoned_capture_is_disarmed(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let file = topo.state_dir().join("abandoned.pcapng");
    let mut capture = spawn_capture(app, &[], &file)?;
    let _ = capture.kill();
    let _ = capture.wait();
    wait_for(Duration::from_secs(30), || {
        app.log_text().contains("capture abandoned").then_some(())
    })
    .map(drop)
    .ok_or_else(|| format!("killed capture never disarmed; log:\n{}", app.log_text()))
}

/// `--count 2 --format pcap`: the capture ends by itself after two of three `bad_header` frames
/// and `tcpdump -r` reads both.
fn count_stops_a_classic_pcap_capture(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let file = topo.state_dir().join("bad.pcap");
    let args = ["--reason", "bad_header", "--count", "2", "--format", "pcap"];
    let capture = spawn_capture(app, &[&args[..], &["--seconds", "60"]].concat(), &file)?;
    send(topo, "bad_ihl")?;
    // Ends by itself once two frames are in (the --seconds limit is far away).
    let out = capture
        .wait_with_output()
        .map_err(|e| format!("vipmux capture: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "summary {stdout:?}: {e}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if summary["captured"] != 2 {
        return Err(format!("summary {summary}"));
    }
    match tcpdump_count(&file)? {
        2 => Ok(()),
        n => Err(format!(
            "tcpdump -r read {n} packets from {}, expected 2",
            file.display()
        )),
    }
}

#[test]
fn capture_writes_exactly_the_frames_of_one_reason() {
    if skip_unless_root("capture_writes_exactly_the_frames_of_one_reason") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let cfg = ConfigBuilder::one_arm_web();
    let mut app = Appliance::start(&topo, &cfg.build(&topo)).expect("vipmux start");
    let result = scenario(&topo, &mut app);
    check(&app, result);
}
