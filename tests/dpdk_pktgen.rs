//! `vipmux pktgen`: the rewrite checker on hand-built frames, and short runs over memif, the
//! two-process benchmark setup: against dpdk-testpmd reflecting frames (macswap), once with the
//! right expectation (exit 0, every checksum verified) and once with a deliberately wrong one
//! (pktgen must exit non-zero: the gate), and against vipmux itself (the gate passes), inbound and
//! outbound (`--direction outbound`: the members' connections through SNAT and the remote hosts'
//! answers back). The outbound frames also go through vipmux's pure pipeline into the checker.
//!
//! The DPDK test needs root, free hugepages and `dpdk-testpmd`; without them it says why and
//! passes (under `CI=true` a missing prerequisite is a failure: `tests/prereq`).

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;
use vipmux::dataplane::{
    EgressPort, IfIndex, NeighbourMap, Pipeline, PipelineConfig, Verdict, View,
};
use vipmux::pktgen::flows::{targets, targets_of, Family, FlowSet};
use vipmux::pktgen::frames::{
    build, patch_client, FrameKind, Macs, TemplateRef, Templates, L3_OFFSET,
};
use vipmux::pktgen::{
    neighbour_mac, neighbour_mac6, Checker, Expect, MismatchKind, OutboundCheck, OutboundFlows,
    Outcome,
};
use vipmux::slowpath::{NeighbourTable, NeighbourTimers, SlowPathInterface};
use vipmux::wire::builder::{rewrite_endpoint, Endpoint};
use vipmux::wire::{MacAddr, PacketBuf, VecBuf};

mod common;
use common::{hugepages_free, is_root, prereq, Netns, Reaper};

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// The snapshot of the configuration file `path` with every member up.
fn snapshot_of(path: String) -> Snapshot {
    let cfg = Config::load(path).expect("config");
    Snapshot::compile(&cfg, &Health::all_up(&cfg))
}

/// The snapshot of `examples/spec-example.toml` with every member up.
fn spec_snapshot() -> Snapshot {
    snapshot_of(repo("examples/spec-example.toml"))
}

/// pktgen's MAC address.
const GEN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);
/// The device's port MAC address.
const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// The MACs of pktgen's frames to the device.
const MACS: Macs = Macs {
    src: GEN_MAC,
    dst: PORT_MAC,
};

/// A checker expecting `snap`'s rewrites of the flows `set` (pktgen at 10.1.0.253).
fn checker_of(snap: &Snapshot, set: &FlowSet) -> Checker {
    let own_ip = Ipv4Addr::new(10, 1, 0, 253);
    Checker::new(
        snap.clone(),
        set.clone(),
        Expect::Rewrite,
        false,
        GEN_MAC,
        own_ip,
    )
}

/// A checker for the load-balancing rule of `examples/spec-example.toml`
/// (10.1.0.100:80 -> web:8080).
fn spec_checker(flows: u32) -> Checker {
    let snap = spec_snapshot();
    checker_of(
        &snap,
        &FlowSet::new(flows, targets(&snap, None).expect("targets")),
    )
}

/// The frame pktgen sends for `flow` (10.1.0.100:80 is the only target).
fn sent(flow: u32) -> Vec<u8> {
    let snap = spec_snapshot();
    let fs = FlowSet::new(16, targets(&snap, None).expect("targets"));
    let mut f = vec![0; 60];
    build(
        &mut f,
        MACS,
        fs.client(flow),
        fs.target(flow),
        0,
        FrameKind::Data,
        1,
    );
    f
}

/// The frame pktgen sends for `flow` as vipmux's NAT makes it: destination to member:port,
/// next-hop MAC.
fn natted(flow: u32, member: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut frame = sent(flow);
    rewrite_endpoint(&mut frame[L3_OFFSET..], Endpoint::Dst, member, Some(port)).expect("rewrite");
    frame[..6].copy_from_slice(&neighbour_mac(member).0);
    frame
}

#[test]
fn checker_classifies_hand_built_frames() {
    let mut c = spec_checker(16);
    let (vm1, vm2) = (Ipv4Addr::new(10, 1, 0, 11), Ipv4Addr::new(10, 1, 0, 12));

    let mut ok = natted(0, vm1, 8080);
    assert!(matches!(c.handle(&mut ok, true), Outcome::Ok(Some(_))));
    let mut ok2 = natted(1, vm2, 8080);
    assert!(matches!(c.handle(&mut ok2, true), Outcome::Ok(Some(_))));

    let mut cases = vec![
        (
            MismatchKind::WrongDst,
            natted(2, Ipv4Addr::new(10, 1, 0, 99), 8080),
        ),
        (MismatchKind::WrongDst, natted(3, vm1, 80)),
    ];
    let mut bad_ip = natted(4, vm1, 8080);
    bad_ip[L3_OFFSET + 8] ^= 1; // TTL changed without fixing the header checksum
    cases.push((MismatchKind::BadIpChecksum, bad_ip));
    let mut bad_l4 = natted(5, vm1, 8080);
    let last = bad_l4.len() - 1;
    bad_l4[last] ^= 0x55; // payload byte changed without fixing the TCP checksum
    cases.push((MismatchKind::BadL4Checksum, bad_l4));
    cases.push((MismatchKind::Moved, natted(0, vm2, 8080)));
    let mut snat = natted(6, vm1, 8080);
    let appliance = Ipv4Addr::new(10, 1, 0, 2);
    rewrite_endpoint(&mut snat[L3_OFFSET..], Endpoint::Src, appliance, None).unwrap();
    cases.push((MismatchKind::WrongSrc, snat));
    for (kind, mut f) in cases {
        assert_eq!(c.handle(&mut f, true), Outcome::Mismatch(kind), "{kind:?}");
    }

    let m = |k| c.mismatches.get(k);
    assert_eq!(
        (
            m(MismatchKind::WrongDst),
            m(MismatchKind::BadIpChecksum),
            m(MismatchKind::BadL4Checksum),
            m(MismatchKind::Moved),
            m(MismatchKind::WrongSrc)
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(c.mismatches.total(), 6);
    assert_eq!(c.ok, 2);
    let spread: Vec<u64> = c
        .member_packets
        .iter()
        .copied()
        .filter(|p| *p > 0)
        .collect();
    assert_eq!(spread, vec![1, 1], "one frame at each member");
    // Per flow: its first member, whether it moved since, its frames that passed.
    let outcomes: Vec<_> = c.flow_outcomes().collect();
    let member_of = |ip| c.snapshot().members.iter().position(|m| m.addr == ip);
    let (o0, o1) = (outcomes[0], outcomes[1]);
    assert_eq!(o0.0.map(|m| m.index()), member_of(vm1));
    assert_eq!((o0.1, o0.2), (true, 1), "flow 0 moved after one good frame");
    assert_eq!(o1.0.map(|m| m.index()), member_of(vm2));
    assert_eq!((o1.1, o1.2), (false, 1));
    assert_eq!(
        outcomes[2],
        (None, false, 0),
        "a rejected frame is not received"
    );
}

/// One frame through vipmux's pure pipeline (one worker); the frame it forwards on port 0.
fn through_pipeline(p: &mut Pipeline, view: &View<'_>, frame: &[u8]) -> Vec<u8> {
    let mut bufs = [VecBuf::with_room(128, frame, 0)];
    let mut v = [Verdict::Drop(vipmux::dataplane::DropReason::TxFull)];
    p.process(view, 0, &mut bufs, &mut v, 10);
    assert_eq!(v[0], Verdict::Forward { port: 0 }, "vipmux forwards it");
    bufs[0].data().to_vec()
}

/// vipmux's pure pipeline (one worker) and what its [`View`] borrows: the configuration, the
/// neighbours, and port 0 (`port_mac`, 10.1.0.2, MTU 1500).
struct Rig {
    snap: Snapshot,
    neighbours: NeighbourMap,
    ports: Vec<EgressPort>,
    p: Pipeline,
}

impl Rig {
    fn new(snap: Snapshot, neighbours: NeighbourMap, port_mac: MacAddr) -> Rig {
        Rig {
            snap,
            neighbours,
            ports: vec![EgressPort {
                mac: port_mac,
                addr: Ipv4Addr::new(10, 1, 0, 2),
                mtu: 1500,
            }],
            p: Pipeline::new(&PipelineConfig {
                flow_capacity: 4096,
                recent_capacity: 4096,
                flow_capacity6: None,
            }),
        }
    }

    /// `frame` through the pipeline: the frame it forwards on port 0.
    fn forward(&mut self, frame: &[u8]) -> Vec<u8> {
        let view = View {
            snapshot: &self.snap,
            neighbours: &self.neighbours,
            ports: &self.ports,
        };
        through_pipeline(&mut self.p, &view, frame)
    }
}

/// pktgen's outbound frames through vipmux's own pipeline (no DPDK) into pktgen's checker: the
/// blocks pktgen expects are those vipmux allocates from. Every member's SYN opens its
/// connection, then every member data segment and every remote answer to the SNAT endpoint
/// learnt passes.
#[test]
fn outbound_frames_through_the_pipeline_pass_the_checker() {
    let dir = std::env::temp_dir().join(format!("vipmux-pktgen-pipe-{}", std::process::id()));
    let snap = snapshot_of(write_config(&dir, true));
    let _ = std::fs::remove_dir_all(&dir);
    let gw = Ipv4Addr::new(10, 1, 0, 1);
    let iface = SlowPathInterface::new("lan", PORT_MAC, Ipv4Addr::new(10, 1, 0, 2), 24, Some(gw));
    let mut table = NeighbourTable::new(vec![iface], NeighbourTimers::default());
    for ip in std::iter::once(gw).chain((11..=18).map(|d| Ipv4Addr::new(10, 1, 0, d))) {
        table.learn(0, ip, neighbour_mac(ip), 0, true);
    }
    let mut rig = Rig::new(snap.clone(), table.snapshot(), PORT_MAC);
    let flows = OutboundFlows::new(&snap, None, 64, true).expect("outbound flows");
    let set = FlowSet::new(flows.units(), vec![flows.target()]);
    let mut c = checker_of(&snap, &set).with_outbound(OutboundCheck::new(flows.clone(), &snap));
    let mut pass = |c: &mut Checker, t: TemplateRef<'_>| {
        let TemplateRef::Ready(f) = t else {
            panic!("outbound templates are per flow")
        };
        let mut out = rig.forward(f);
        let got = c.handle(&mut out, true);
        assert!(matches!(got, Outcome::Ok(Some(_))), "{got:?}");
    };
    let syns = flows.templates(&[FrameKind::Syn], 64, MACS, None);
    for f in 0..flows.count {
        pass(&mut c, syns.get(&set, f, FrameKind::Syn));
    }
    assert_eq!(c.outbound().map(|o| o.opened()), Some(64));
    let data = flows.templates(&[FrameKind::Data], 64, MACS, c.outbound());
    for u in 0..flows.units() {
        pass(&mut c, data.get(&set, u, FrameKind::Data));
    }
    assert_eq!((c.ok, c.mismatches.total()), (64 * 3, 0));
    // Answers count under their own units, at the members of their connections.
    let rx: Vec<u64> = c.flow_outcomes().map(|o| o.2).collect();
    assert_eq!(rx, [vec![2; 64], vec![1; 64]].concat());
}

/// pktgen's IPv6 flows (`--family 6`) through vipmux's own pipeline (no DPDK) into pktgen's
/// checker: every frame of every flow, SYN and data, comes out NAT66-rewritten to an IPv6 member
/// with its MAC, the backend port, the hop limit less one and a right checksum, each flow at one
/// member; and the checker fails what vipmux did not do.
#[test]
fn ipv6_frames_through_the_pipeline_pass_the_checker() {
    let dir = std::env::temp_dir().join(format!("vipmux-pktgen-pipe6-{}", std::process::id()));
    let snap = snapshot_of(write_config6(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    let members6: Vec<(Ipv6Addr, MacAddr, IfIndex)> = (0x11..=0x18)
        .map(|d| {
            let ip = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, d);
            (ip, neighbour_mac6(ip), 0)
        })
        .collect();
    let neighbours = NeighbourMap::from_entries(Vec::new(), 1).with_ipv6(members6);
    let mut rig = Rig::new(snap.clone(), neighbours, PORT_MAC);
    let set = FlowSet::new(
        64,
        targets_of(&snap, None, Family::V6).expect("IPv6 targets"),
    );
    let mut c = checker_of(&snap, &set);
    let kinds = [FrameKind::Syn, FrameKind::Data];
    let templates = Templates::build(&set, &kinds, 128, MACS, false);
    for kind in kinds {
        for f in 0..set.count {
            let TemplateRef::Patch(t, client) = templates.get(&set, f, kind) else {
                panic!("patched templates")
            };
            let mut frame = t.to_vec();
            patch_client(&mut frame, client);
            let mut out = rig.forward(&frame);
            let got = c.handle(&mut out, true);
            assert!(
                matches!(got, Outcome::Ok(Some(_))),
                "flow {f} {kind:?}: {got:?}"
            );
            // The frame as sent (not rewritten) fails the check.
            assert_eq!(
                c.handle(&mut frame, true),
                Outcome::Mismatch(MismatchKind::WrongDst)
            );
        }
    }
    assert_eq!((c.ok, c.checksums_checked), (128, 256));
    assert_eq!(c.mismatches.get(MismatchKind::WrongDst), 128);
    let spread = c.member_flows();
    assert_eq!(spread.iter().sum::<u64>(), 64);
    assert!(
        spread.iter().filter(|&&n| n > 0).count() >= 6,
        "64 flows spread over the 8 members: {spread:?}"
    );
}

/// Reports a missing prerequisite of the DPDK runs: a skip, or a failure where prerequisites are
/// required ([`prereq`]).
fn missing(what: &str) -> bool {
    prereq::missing("dpdk_pktgen", what)
}

/// True when the DPDK runs can go ahead (root, 256 free hugepages); otherwise says why (a failure
/// where prerequisites are required).
fn dpdk_ready() -> bool {
    if !is_root() && missing("not root") {
        return false;
    }
    !(hugepages_free() < 256 && missing("fewer than 256 free hugepages"))
}

/// The installed dpdk-testpmd, if any (a missing one is reported as [`missing`] does).
fn testpmd() -> Option<&'static str> {
    let found = ["/usr/bin/dpdk-testpmd", "/usr/local/bin/dpdk-testpmd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        assert!(missing("dpdk-testpmd not installed"));
    }
    found
}

/// A fresh memif socket path (not created).
fn fresh_socket() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let sock = std::env::temp_dir().join(format!(
        "vipmux-pktgen-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&sock);
    sock.display().to_string()
}

/// Starts `vipmux pktgen` as the memif server on `sock` for `secs` seconds with `config` and
/// `args`, and returns once it listens.
fn spawn_pktgen(sock: &str, config: &str, secs: &str, args: &[&str]) -> Reaper {
    spawn_pktgen_logging(sock, config, secs, args, ("warn", Stdio::inherit()))
}

/// [`spawn_pktgen`] with `RUST_LOG` = `log.0` and its stderr to `log.1`.
fn spawn_pktgen_logging(
    sock: &str,
    config: &str,
    secs: &str,
    args: &[&str],
    log: (&str, Stdio),
) -> Reaper {
    let mut gen = Reaper(
        Command::new(env!("CARGO_BIN_EXE_vipmux"))
            .args([
                "pktgen",
                "--profile",
                &repo("dpdk-config/memif-pktgen.toml"),
                &format!(
                    "--eal=--vdev=net_memif0,role=server,socket={sock},id=0,socket-abstract=no"
                ),
                "--config",
                config,
                "--flows",
                "1024",
                "--size",
                "64",
                "--duration",
                secs,
                "--json",
            ])
            .args(args)
            .env("RUST_LOG", log.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.1)
            .spawn()
            .expect("start vipmux pktgen"),
    );
    let appeared = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(sock).exists() {
        if let Some(st) = gen.0.try_wait().expect("wait pktgen") {
            panic!("pktgen exited before listening: {st}");
        }
        assert!(Instant::now() < appeared, "no memif socket after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    gen
}

/// Waits (bounded) for pktgen to finish; returns its exit status and stdout (its JSON summary).
fn wait_pktgen(mut gen: Reaper) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(st) = gen.0.try_wait().expect("wait pktgen") {
            break st;
        }
        assert!(Instant::now() < deadline, "pktgen did not finish in 90 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    gen.0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    (status, out)
}

/// Runs `vipmux pktgen` as the memif server on a fresh socket for 3 s with `config` and `args`,
/// starts the device under test with `peer(socket)` once pktgen listens, and returns pktgen's exit
/// status and stdout (its JSON summary).
fn pktgen_run(
    config: &str,
    args: &[&str],
    peer: impl FnOnce(&str) -> Command,
) -> (std::process::ExitStatus, String) {
    let sock = fresh_socket();
    let gen = spawn_pktgen(&sock, config, "3", args);
    // The peer is the memif client: it connects once, so the server (pktgen) goes first and
    // waits for it (pktgen starts its clock when the link comes up).
    let _peer = Reaper(
        peer(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the device under test"),
    );
    // Bounded wait for pktgen to finish (it sends for 3 s and drains briefly).
    let out = wait_pktgen(gen);
    let _ = std::fs::remove_file(&sock);
    out
}

/// dpdk-testpmd reflecting frames (macswap) as the memif client on `sock`.
fn testpmd_macswap(testpmd: &str, sock: &str) -> Command {
    let mut c = Command::new(testpmd);
    c.args([
        "--lcores=0@1,1@1",
        "--in-memory",
        "--single-file-segments",
        "--no-pci",
        "--log-level=*:warning",
        &format!("--vdev=net_memif0,role=client,socket={sock},id=0,socket-abstract=no"),
        "--",
        "--forward-mode=macswap",
        "--auto-start",
        "--stats-period=1",
        "--total-num-mbufs=8192",
    ]);
    c
}

/// pktgen with `--expect expect` against testpmd reflecting its frames, for the rule of
/// `examples/spec-example.toml`; `None` (after saying why) without the prerequisites.
fn against_testpmd(expect: &str) -> Option<(std::process::ExitStatus, String)> {
    if !dpdk_ready() {
        return None;
    }
    let testpmd = testpmd()?;
    let spec = repo("examples/spec-example.toml");
    let args = ["--expect", expect, "--dst-mac", "02:00:00:00:00:01"];
    Some(pktgen_run(&spec, &args, |s| testpmd_macswap(testpmd, s)))
}

/// The JSON summary's `key` as a number.
fn num(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn pktgen_against_testpmd_macswap_over_memif() {
    let Some((status, out)) = against_testpmd("echo") else {
        return;
    };
    assert!(status.success(), "pktgen failed: {status}\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    let (tx, rx) = (num(&v, "tx_packets"), num(&v, "rx_packets"));
    eprintln!(
        "pktgen via testpmd macswap: tx {tx} ({} Mpps), rx {rx} ({} Mpps), errors {}",
        v["tx_mpps"], v["rx_mpps"], v["errors"]
    );
    assert!(tx > 0, "nothing sent: {out}");
    assert!(rx > 0, "nothing came back: {out}");
    assert_eq!(num(&v, "errors"), 0, "echoed frames are unchanged: {out}");
    assert_eq!(
        num(&v, "checksums_checked"),
        rx,
        "without --sample-checksums every returned frame's checksums are verified: {out}"
    );
    assert_eq!(v["mode"], "established");
}

/// `--wait-for-file`: once the link is up pktgen holds its traffic until the file exists, then
/// runs as without it (testpmd reflecting). `--hold-after-file`: after the run pktgen keeps the
/// link up until its file exists, so testpmd, stopped meanwhile, still prints its cycle totals
/// (memif clears the port's counters once the peer leaves, and testpmd then prints none).
#[test]
fn pktgen_holds_until_its_file_exists() {
    if !dpdk_ready() {
        return;
    }
    let Some(testpmd) = testpmd() else {
        return;
    };
    let sock = fresh_socket();
    let (go, done) = (format!("{sock}.go"), format!("{sock}.done"));
    let _ = std::fs::remove_file(&go);
    let _ = std::fs::remove_file(&done);
    let args = ["--expect", "echo", "--dst-mac", "02:00:00:00:00:01"];
    let args = [
        &args[..],
        &["--wait-for-file", &go, "--hold-after-file", &done],
    ]
    .concat();
    let spec = repo("examples/spec-example.toml");
    let mut gen = spawn_pktgen_logging(&sock, &spec, "1", &args, ("info", Stdio::piped()));
    let (lines, seen) = std::sync::mpsc::channel();
    let err = gen.0.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for l in std::io::BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok) {
            let _ = lines.send(l);
        }
    });
    let mut peer = Reaper(
        testpmd_macswap(testpmd, &sock)
            .arg("--record-core-cycles")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start testpmd"),
    );
    let log_until = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match seen.recv_timeout(left) {
                Ok(l) if l.contains(what) => return,
                Ok(_) => {}
                Err(e) => panic!("no log line with {what:?}: {e}"),
            }
        }
    };
    log_until("holding until");
    std::fs::write(&go, b"").expect("the file");
    log_until("exists after");
    log_until("run over: holding the link until");
    assert!(
        gen.0.try_wait().expect("poll pktgen").is_none(),
        "pktgen closed before its --hold-after-file exists"
    );
    // testpmd stopped while the link is up: its counters are live, so it prints its cycles.
    let _ = Command::new("kill")
        .args(["-INT", &peer.0.id().to_string()])
        .status();
    // Read on a thread (testpmd's output ends when it exits), waited for at most 30 s.
    let mut out = peer.0.stdout.take().expect("testpmd stdout");
    let (text, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = text.send(s);
    });
    let testpmd_out = got
        .recv_timeout(Duration::from_secs(30))
        .expect("testpmd did not exit within 30 s of SIGINT");
    assert!(
        testpmd_out.contains("total cycles="),
        "testpmd printed no cycle totals on stop:\n{testpmd_out}"
    );
    std::fs::write(&done, b"").expect("the file");
    log_until("exists after");
    let (status, out) = wait_pktgen(gen);
    let _ = std::fs::remove_file(&go);
    let _ = std::fs::remove_file(&done);
    let _ = std::fs::remove_file(&sock);
    assert!(status.success(), "pktgen failed: {status}\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    assert!(num(&v, "tx_packets") > 0, "nothing sent: {out}");
    assert!(num(&v, "rx_packets") > 0, "nothing came back: {out}");
}

/// The gate: expecting vipmux's rewrite from a reflector that returns frames unchanged (a
/// deliberately wrong expectation, as a broken rewrite would look) makes pktgen exit with its
/// wrong-frames code, after printing the summary that counts them.
#[test]
fn pktgen_exits_non_zero_on_wrong_frames() {
    let Some((status, out)) = against_testpmd("rewrite") else {
        return;
    };
    assert_eq!(status.code(), Some(3), "pktgen must fail the gate: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    assert!(num(&v, "rx_packets") > 0, "frames came back: {out}");
    assert_eq!(
        num(&v, "errors"),
        num(&v, "rx_packets"),
        "every one is wrong: {out}"
    );
}

/// Writes the device-under-test configuration into `dir` (one memif interface, the VIP 10.1.0.100,
/// TCP 80 -> 8080 over 8 on-link members, the control socket `dir/ctl.sock`); returns its path.
fn write_dut_config(dir: &std::path::Path) -> String {
    write_config(dir, false)
}

/// [`write_dut_config`], with `outbound` also the gateway 10.1.0.1 and an outbound rule: the
/// members' connections leave as 10.1.0.100 and a port of their 1,024-port block.
fn write_config(dir: &std::path::Path, outbound: bool) -> String {
    std::fs::create_dir_all(dir).expect("scratch dir");
    let cfg = dir.join("vipmux.toml");
    let members: Vec<String> = (1..=8)
        .map(|i| format!("{{ name = \"b{i}\", address = \"10.1.0.{}\" }}", 10 + i))
        .collect();
    let text = format!(
        "[appliance]\nname = \"pktgen-gate\"\n\n[dataplane]\ndpdk_profile = \"{}\"\nworkers = 1\n\n\
         [control]\nsocket = \"{}\"\nmetrics = \"\"\n\n\
         [[interfaces]]\nname = \"lan\"\nport = \"net_memif0\"\naddress = \"10.1.0.2/24\"\n{}\n\
         [[frontends]]\nname = \"vip\"\naddress = \"10.1.0.100\"\ninterface = \"lan\"\n\n\
         [[backend_pools]]\nname = \"web\"\nmembers = [{}]\n\n\
         [[load_balancing_rules]]\nname = \"web\"\nfrontend = \"vip\"\nprotocol = \"tcp\"\n\
         frontend_port = 80\nbackend_port = 8080\nbackend_pool = \"web\"\n{}",
        repo("dpdk-config/memif-dut.toml"),
        dir.join("ctl.sock").display(),
        if outbound { "gateway = \"10.1.0.1\"\n" } else { "" },
        members.join(", "),
        if outbound { OUTBOUND_RULE } else { "" }
    );
    std::fs::write(&cfg, text).expect("write config");
    cfg.display().to_string()
}

/// The IPv6 device-under-test configuration in `dir`: [`write_dut_config`] with the interface's
/// IPv6 address 2001:db8:1::2/64, the VIP 2001:db8:1::100 and TCP 80 -> 8080 over 8 on-link IPv6
/// members 2001:db8:1::11..18; returns its path.
fn write_config6(dir: &std::path::Path) -> String {
    let path = write_config(dir, false);
    let members: Vec<String> = (1..=8)
        .map(|i| {
            format!(
                "{{ name = \"b{i}\", address = \"2001:db8:1::{}\" }}",
                10 + i
            )
        })
        .collect();
    let mut text = String::new();
    for line in std::fs::read_to_string(&path).expect("config").lines() {
        if line.starts_with("members = [") {
            text += &format!("members = [{}]\n", members.join(", "));
            continue;
        }
        text += &line.replace("\"10.1.0.100\"", "\"2001:db8:1::100\"");
        text.push('\n');
        if line == "address = \"10.1.0.2/24\"" {
            text += "address6 = \"2001:db8:1::2/64\"\n";
        }
    }
    std::fs::write(&path, text).expect("write config");
    path
}

/// The outbound rule of [`write_config`].
const OUTBOUND_RULE: &str = "\n[[outbound_rules]]\nname = \"egress\"\nfrontends = [\"vip\"]\n\
                             backend_pool = \"web\"\nprotocol = \"tcp\"\n";

/// The gate against vipmux itself: `vipmux run` (memif client, in a namespace) load-balances
/// pktgen's flows over 8 on-link members; every returned frame must carry the configuration's NAT
/// rewrite with correct checksums (all verified), or pktgen exits non-zero.
#[test]
fn pktgen_gate_against_vipmux() {
    if !dpdk_ready() {
        return;
    }
    gate_against_vipmux("g", &["--expect", "rewrite"]);
}

/// The outbound gate: pktgen plays the 8 members opening 1,024 connections to remote hosts behind
/// the gateway (it answers the gateway's ARP) and the remotes answering; vipmux (one worker) must
/// SNAT every member frame to 10.1.0.100 and a port of that member's block, the same port for
/// every frame of a connection, and translate every answer back to the member's endpoint, with
/// correct checksums (all verified), or pktgen exits non-zero.
#[test]
fn pktgen_outbound_gate_against_vipmux() {
    if !dpdk_ready() {
        return;
    }
    let v = gate_against_vipmux("o", &["--direction", "outbound", "--mode", "established"]);
    assert_eq!(v["direction"], "outbound");
    assert_eq!(num(&v, "flows"), 1024);
    // Every connection opened and both directions came back: 2,048 units, none silent.
    assert_eq!(num(&v, "unanswered_flows"), 0, "{v}");
    let members = v["members"].as_array().expect("members");
    assert_eq!(members.len(), 8, "{v}");
    for m in members {
        assert_eq!(num(m, "flows"), 256, "128 connections each, both ways: {m}");
    }
}

/// The IPv6 gate: pktgen's IPv6 flows (`--family 6`, a mix of SYNs and data) to vipmux's IPv6
/// VIP over 8 on-link IPv6 members (pktgen answers vipmux's Neighbour Solicitations as them);
/// every returned frame must carry the NAT66 rewrite (member, its MAC, port, hop limit) with a
/// right checksum over the IPv6 pseudo-header, or pktgen exits non-zero.
#[test]
fn pktgen_ipv6_gate_against_vipmux() {
    if !dpdk_ready() {
        return;
    }
    let v = gate_against_vipmux("6", &["--family", "6", "--mode", "mix"]);
    let members = v["members"].as_array().expect("members");
    assert_eq!(members.len(), 8, "{v}");
}

/// Runs pktgen with `args` (tag `tag` names the scratch directory) against `vipmux run` on the
/// configuration of [`write_config`] (outbound when `args` say so, IPv6 with `--family 6`) for
/// 3 s; asserts the gate passed with frames back, all checked; returns the JSON summary.
fn gate_against_vipmux(tag: &str, args: &[&str]) -> serde_json::Value {
    let outbound = args.contains(&"outbound");
    let dir = std::env::temp_dir().join(format!("vipmux-pktgen-gate{tag}-{}", std::process::id()));
    let cfg = if args.windows(2).any(|w| w == ["--family", "6"]) {
        write_config6(&dir)
    } else {
        write_config(&dir, outbound)
    };
    let ns = Netns::add();
    let (status, out) = pktgen_run(&cfg, args, |s| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_vipmux"), "run"])
            .args(["--config", &cfg])
            .arg(format!(
                "--eal=--vdev=net_memif0,role=client,socket={s},id=0,socket-abstract=no"
            ));
        c
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        status.success(),
        "pktgen against vipmux failed: {status}\n{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    let rx = num(&v, "rx_packets");
    eprintln!(
        "pktgen via vipmux: tx {} ({} Mpps), rx {rx} ({} Mpps), errors {}, checksums checked {}",
        v["tx_packets"], v["tx_mpps"], v["rx_mpps"], v["errors"], v["checksums_checked"]
    );
    assert!(rx > 0, "nothing came back: {out}");
    assert_eq!(num(&v, "errors"), 0, "{out}");
    assert_eq!(num(&v, "checksums_checked"), rx, "{out}");
    v
}

/// The control socket's answer to `{"cmd": cmd}` (its `data`), or `None` while it does not answer.
fn control(socket: &std::path::Path, cmd: &str) -> Option<serde_json::Value> {
    use std::io::{BufRead, BufReader, Write};
    let mut conn = std::os::unix::net::UnixStream::connect(socket).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    writeln!(conn, "{{\"cmd\": \"{cmd}\"}}").ok()?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).ok()?;
    let v: serde_json::Value = serde_json::from_str(&line).ok()?;
    Some(v["data"].clone())
}

/// The link counts of vipmux's first port, `(link_downs, link_ups)`, from its counters.
fn link_counts(socket: &std::path::Path) -> Option<(u64, u64)> {
    let c = control(socket, "counters")?;
    let p = &c["ports"][0];
    Some((p["link_downs"].as_u64()?, p["link_ups"].as_u64()?))
}

/// Polls `vipmux` (bounded) until its first port has counted `downs` link losses; fails when it
/// exits meanwhile.
fn await_link_downs(mux: &mut Reaper, socket: &std::path::Path, downs: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = mux.0.try_wait().expect("wait vipmux") {
            panic!("vipmux exited when its memif peer went away: {st}");
        }
        if let Some(c) = link_counts(socket).filter(|c| c.0 >= downs) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "vipmux did not count link loss {downs} within 30 s (counts {:?})",
            link_counts(socket)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `vipmux run` as the memif client of `sock` in `ns` with the configuration `cfg`.
fn start_dut(ns: &Netns, cfg: &str, sock: &str, zero_copy: bool) -> Reaper {
    let zc = if zero_copy { "yes" } else { "no" };
    Reaper(
        Command::new("ip")
            .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_vipmux"), "run"])
            .args(["--config", cfg])
            .arg(format!(
                "--eal=--vdev=net_memif0,role=client,socket={sock},id=0,socket-abstract=no,zero-copy={zc}"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vipmux run"),
    )
}

/// Stops `vipmux run` with SIGTERM (by its own PID) and asserts it exits 0 within 30 s.
fn stop_dut(mut mux: Reaper) {
    let pid = mux.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = mux.0.try_wait().expect("wait vipmux") {
            break st;
        }
        assert!(Instant::now() < deadline, "vipmux did not stop within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "vipmux exit status after SIGTERM: {status}"
    );
}

/// One pktgen run against the running vipmux (`gen` already listening, or a new one on `sock`):
/// the gate must pass with frames back; then waits until vipmux counted the `run`-th link loss.
fn peer_run(
    gen: Option<Reaper>,
    (sock, cfg): (&str, &str),
    mux: &mut Reaper,
    ctl: &std::path::Path,
    run: u64,
) -> (u64, u64) {
    let args = ["--expect", "rewrite"];
    let g = gen.unwrap_or_else(|| spawn_pktgen(sock, cfg, "2", &args));
    let (status, out) = wait_pktgen(g);
    assert!(
        status.success(),
        "pktgen run {run} against vipmux failed: {status}\n{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    eprintln!(
        "run {run}: tx {} rx {} errors {}",
        v["tx_packets"], v["rx_packets"], v["errors"]
    );
    assert!(
        num(&v, "rx_packets") > 0,
        "run {run}: nothing came back: {out}"
    );
    // The server removed its socket when it exited; vipmux sees the link go down.
    let counts = await_link_downs(mux, ctl, run);
    let _ = std::fs::remove_file(sock);
    counts
}

/// `vipmux run` (the memif client, zero-copy when `zero_copy`) against pktgen (the memif
/// server) for `runs` runs of pktgen, each gated and ended by pktgen's exit ([`peer_run`]);
/// `then` gets the control socket before vipmux stops. Returns the link losses and returns
/// vipmux counted.
fn memif_peer_runs(
    tag: &str,
    zero_copy: bool,
    runs: u64,
    then: impl FnOnce(&std::path::Path),
) -> (u64, u64) {
    let dir = std::env::temp_dir().join(format!("vipmux-pktgen-{tag}-{}", std::process::id()));
    let cfg = write_dut_config(&dir);
    let ctl = dir.join("ctl.sock");
    let ns = Netns::add();
    let sock = fresh_socket();
    let mut gen = Some(spawn_pktgen(&sock, &cfg, "2", &["--expect", "rewrite"]));
    let mut mux = start_dut(&ns, &cfg, &sock, zero_copy);
    let mut counts = (0, 0);
    for run in 1..=runs {
        counts = peer_run(gen.take(), (&sock, &cfg), &mut mux, &ctl, run);
    }
    then(&ctl);
    stop_dut(mux);
    let _ = std::fs::remove_dir_all(&dir);
    counts
}

/// A memif peer that exits and comes back: `vipmux run` (memif client) stays up while pktgen, the
/// memif server, exits and starts again three times on the same socket; vipmux counts each link
/// loss and return (`ports[0].link_downs` / `link_ups` in `counters`), every run's gate passes
/// (frames came back, each with the configuration's rewrite), and vipmux stops cleanly after.
#[test]
fn vipmux_survives_memif_peer_restarts() {
    if !dpdk_ready() {
        return;
    }
    let runs = 3u64;
    let counts = memif_peer_runs("restart", false, runs, |_| {});
    eprintln!("link downs {}, ups {}", counts.0, counts.1);
    assert_eq!(counts.0, runs, "one link loss per pktgen exit");
    // The first connection may be up before the watch starts (not counted as a return).
    assert!(
        counts.1 >= runs - 1,
        "each restart counted as a return: {counts:?}"
    );
}

/// A zero-copy memif client cannot connect again (DPDK 22.11's driver, docs/design.md §5.1), but
/// it survives its peer's exit: vipmux stays up with the port down, counts the loss and stops
/// cleanly.
#[test]
fn zero_copy_memif_client_survives_its_peer_exit() {
    if !dpdk_ready() {
        return;
    }
    let counts = memif_peer_runs("zc", true, 1, |ctl| {
        let status = control(ctl, "status").expect("status answers with the port down");
        eprintln!("status with the port down: {status}");
    });
    assert_eq!(counts.0, 1, "the peer's exit counted as a link loss");
}
