//! `vipmux pktgen`: the rewrite checker on hand-built frames, and short runs over memif, the
//! two-process benchmark setup: against dpdk-testpmd reflecting frames (macswap), once with the
//! right expectation (exit 0, every checksum verified) and once with a deliberately wrong one
//! (pktgen must exit non-zero: the gate), and against vipmux itself (the gate passes).
//!
//! The DPDK test needs root, free hugepages and `dpdk-testpmd`; without them it says why and
//! passes (set VIPMUX_REQUIRE_DPDK=1 to make a missing prerequisite a failure).

use std::io::Read;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;
use vipmux::pktgen::flows::{targets, FlowSet};
use vipmux::pktgen::frames::{build, FrameKind, Macs, L3_OFFSET};
use vipmux::pktgen::{neighbour_mac, Checker, Expect, MismatchKind, Outcome};
use vipmux::wire::builder::{rewrite_endpoint, Endpoint};
use vipmux::wire::MacAddr;

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A checker for the load-balancing rule of `examples/spec-example.toml`
/// (10.1.0.100:80 -> web:8080).
fn spec_checker(flows: u32) -> Checker {
    let cfg = Config::load(repo("examples/spec-example.toml")).expect("config");
    let snap = Snapshot::compile(&cfg, &Health::all_up(&cfg));
    let fs = FlowSet::new(flows, targets(&snap, None).expect("targets"));
    Checker::new(
        snap,
        fs,
        Expect::Rewrite,
        false,
        MacAddr([2, 0, 0, 0, 0, 0x99]),
        Ipv4Addr::new(10, 1, 0, 254),
    )
}

/// The frame pktgen sends for `flow` (10.1.0.100:80 is the only target).
fn sent(flow: u32) -> Vec<u8> {
    let cfg = Config::load(repo("examples/spec-example.toml")).expect("config");
    let snap = Snapshot::compile(&cfg, &Health::all_up(&cfg));
    let fs = FlowSet::new(16, targets(&snap, None).expect("targets"));
    let mut f = vec![0; 60];
    let macs = Macs {
        src: MacAddr([2, 0, 0, 0, 0, 0x99]),
        dst: MacAddr([2, 0, 0, 0, 0, 1]),
    };
    build(
        &mut f,
        macs,
        fs.client(flow),
        fs.target(flow),
        0,
        FrameKind::Data,
        1,
    );
    f
}

/// What vipmux does in NAT mode: destination to member:port, next-hop MAC.
fn nat(frame: &mut [u8], member: Ipv4Addr, port: u16) {
    rewrite_endpoint(&mut frame[L3_OFFSET..], Endpoint::Dst, member, Some(port)).expect("rewrite");
    frame[..6].copy_from_slice(&neighbour_mac(member).0);
}

#[test]
fn checker_classifies_hand_built_frames() {
    let mut c = spec_checker(16);
    let (vm1, vm2) = (Ipv4Addr::new(10, 1, 0, 11), Ipv4Addr::new(10, 1, 0, 12));

    let mut ok = sent(0);
    nat(&mut ok, vm1, 8080);
    assert!(matches!(c.handle(&mut ok, true), Outcome::Ok(Some(_))));
    let mut ok2 = sent(1);
    nat(&mut ok2, vm2, 8080);
    assert!(matches!(c.handle(&mut ok2, true), Outcome::Ok(Some(_))));

    let mut not_member = sent(2);
    nat(&mut not_member, Ipv4Addr::new(10, 1, 0, 99), 8080);
    assert_eq!(
        c.handle(&mut not_member, true),
        Outcome::Mismatch(MismatchKind::WrongDst)
    );
    let mut wrong_port = sent(3);
    nat(&mut wrong_port, vm1, 80);
    assert_eq!(
        c.handle(&mut wrong_port, true),
        Outcome::Mismatch(MismatchKind::WrongDst)
    );
    let mut bad_ip = sent(4);
    nat(&mut bad_ip, vm1, 8080);
    bad_ip[L3_OFFSET + 8] ^= 1; // TTL changed without fixing the header checksum
    assert_eq!(
        c.handle(&mut bad_ip, true),
        Outcome::Mismatch(MismatchKind::BadIpChecksum)
    );
    let mut bad_l4 = sent(5);
    nat(&mut bad_l4, vm1, 8080);
    let last = bad_l4.len() - 1;
    bad_l4[last] ^= 0x55; // payload byte changed without fixing the TCP checksum
    assert_eq!(
        c.handle(&mut bad_l4, true),
        Outcome::Mismatch(MismatchKind::BadL4Checksum)
    );
    let mut moved = sent(0);
    nat(&mut moved, vm2, 8080);
    assert_eq!(
        c.handle(&mut moved, true),
        Outcome::Mismatch(MismatchKind::Moved)
    );
    let mut snat = sent(6);
    nat(&mut snat, vm1, 8080);
    rewrite_endpoint(
        &mut snat[L3_OFFSET..],
        Endpoint::Src,
        Ipv4Addr::new(10, 1, 0, 2),
        None,
    )
    .unwrap();
    assert_eq!(
        c.handle(&mut snat, true),
        Outcome::Mismatch(MismatchKind::WrongSrc)
    );

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
}

/// Kills and reaps a child process on drop (by its own PID, nothing else).
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn missing(what: &str) -> bool {
    if std::env::var_os("VIPMUX_REQUIRE_DPDK").is_some_and(|v| v == "1") {
        panic!("prerequisite missing: {what}");
    }
    eprintln!("skipping: {what}");
    true
}

fn hugepages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("HugePages_Free:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// True when the DPDK runs can go ahead (root, 256 free hugepages); otherwise says why (and fails
/// under VIPMUX_REQUIRE_DPDK=1).
fn dpdk_ready() -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !uid && missing("not root") {
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

/// Runs `vipmux pktgen` as the memif server on a fresh socket for 3 s with `config` and `args`,
/// starts the device under test with `peer(socket)` once pktgen listens, and returns pktgen's exit
/// status and stdout (its JSON summary).
fn pktgen_run(
    config: &str,
    args: &[&str],
    peer: impl FnOnce(&str) -> Command,
) -> (std::process::ExitStatus, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let sock = std::env::temp_dir().join(format!(
        "vipmux-pktgen-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&sock);
    let sock = sock.display().to_string();
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
                "3",
                "--json",
            ])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vipmux pktgen"),
    );
    let appeared = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(&sock).exists() {
        if let Some(st) = gen.0.try_wait().expect("wait pktgen") {
            panic!("pktgen exited before listening: {st}");
        }
        assert!(Instant::now() < appeared, "no memif socket after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let _ = std::fs::remove_file(&sock);
    (status, out)
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

/// A network namespace for the device under test (its kernel TAP must not touch the host's
/// routes), deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("vmxpg{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The gate against vipmux itself: `vipmux run` (memif client, in a namespace) load-balances
/// pktgen's flows over 8 on-link members; every returned frame must carry the configuration's NAT
/// rewrite with correct checksums (all verified), or pktgen exits non-zero.
#[test]
fn pktgen_gate_against_vipmux() {
    if !dpdk_ready() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("vipmux-pktgen-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let cfg = dir.join("vipmux.toml");
    let members: Vec<String> = (1..=8)
        .map(|i| format!("{{ name = \"b{i}\", address = \"10.1.0.{}\" }}", 10 + i))
        .collect();
    let text = format!(
        "[appliance]\nname = \"pktgen-gate\"\n\n[dataplane]\ndpdk_profile = \"{}\"\nworkers = 1\n\n\
         [control]\nsocket = \"{}\"\nmetrics = \"\"\n\n\
         [[interfaces]]\nname = \"lan\"\nport = \"net_memif0\"\naddress = \"10.1.0.2/24\"\n\n\
         [[frontends]]\nname = \"vip\"\naddress = \"10.1.0.100\"\ninterface = \"lan\"\n\n\
         [[backend_pools]]\nname = \"web\"\nmembers = [{}]\n\n\
         [[load_balancing_rules]]\nname = \"web\"\nfrontend = \"vip\"\nprotocol = \"tcp\"\n\
         frontend_port = 80\nbackend_port = 8080\nbackend_pool = \"web\"\n",
        repo("dpdk-config/memif-dut.toml"),
        dir.join("ctl.sock").display(),
        members.join(", ")
    );
    std::fs::write(&cfg, text).expect("write config");
    let ns = Netns::new();
    let cfg = cfg.display().to_string();
    let (status, out) = pktgen_run(&cfg, &["--expect", "rewrite"], |s| {
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
}
