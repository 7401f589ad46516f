//! Exposure, end to end: what the appliance shows to the network and what it says back.
//!
//! vipmux runs in the one-arm topology with three frontend ports on the VIP (TCP 80, TCP 7000,
//! UDP 7000) and its metrics endpoint on the MUX namespace's loopback.
//!
//! - Scans from the client (Debian's `nmap`): a TCP SYN scan of the VIP shows exactly the TCP
//!   frontend ports open, a UDP scan of a few ports shows only UDP 7000 open, and a TCP scan of
//!   the appliance's own address (10.1.0.2) shows nothing open (the metrics port included).
//! - The control socket is mode 0600 and owned by the user vipmux runs as.
//! - Every reply the appliance originates to a trigger is rate-limited: echo requests flooded at
//!   the VIP, UDP with TTL 1 on arrival (time exceeded), ARP requests for the VIP from the LAN. The
//!   flooder counts replies; the assertions are on counts: replies ≤ burst + rate × (the send
//!   window + 1 s), the appliance counted the rest `rate_limited` (or lost them in its exception
//!   queue), and, when the flood was faster than the limit, some were limited.
//!
//! Needs root (skipped otherwise; fails when CI=true) and nmap (installed by scripts/setup.sh).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use common::appliance::{check, start_or_panic};
use common::{ns_exec_ok, skip_unless_root, Appliance, ConfigBuilder, Topology};
use serde_json::Value;

const ALL: [&str; 3] = ["b1", "b2", "b3"];
/// Triggers sent per flood.
const FLOOD: u64 = 5000;
/// The slow path's default ICMP rate (per second, burst).
const ICMP_RATE: (u64, u64) = (1000, 50);
/// The slow path's default ARP-reply rate (per second, burst).
const ARP_RATE: (u64, u64) = (1000, 100);

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", &ALL, "")
        .lb_rule("web", "tcp", 80, 80, "web", None, "")
        .lb_rule("echo", "tcp", 7000, 7000, "web", None, "")
        .lb_rule("echo-udp", "udp", 7000, 7000, "web", None, "")
}

/// Ports nmap reports open in its grepable output.
fn open_ports(grepable: &str) -> BTreeSet<String> {
    grepable
        .lines()
        .filter_map(|l| l.split("Ports: ").nth(1))
        .flat_map(|ports| ports.split(", "))
        .filter_map(|p| {
            let f: Vec<&str> = p.split('/').collect();
            (f.get(1) == Some(&"open")).then(|| format!("{}/{}", f[0], f.get(2).unwrap_or(&"")))
        })
        .collect()
}

fn nmap(topo: &Topology, args: &[&str]) -> Result<BTreeSet<String>, String> {
    let mut cmd = vec!["nmap", "-n", "-Pn", "--max-retries", "1", "-oG", "-"];
    cmd.extend_from_slice(args);
    Ok(open_ports(&ns_exec_ok(&topo.ns("client"), &cmd)?))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn scenario_scans(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let vip = topo.get("VIP");
    let tcp = nmap(topo, &["-sS", "-p", "1-1024,7000,9469,19469", vip])?;
    if tcp != set(&["80/tcp", "7000/tcp"]) {
        return Err(format!("TCP ports open on the VIP: {tcp:?}"));
    }
    let udp = nmap(topo, &["-sU", "-p", "53,123,161,7000,9469", vip])?;
    if udp != set(&["7000/udp"]) {
        return Err(format!("UDP ports open on the VIP: {udp:?}"));
    }
    let own = nmap(
        topo,
        &["-sS", "-p", "1-1024,9469,19469", topo.get("MUX_IP")],
    )?;
    if !own.is_empty() {
        return Err(format!(
            "TCP ports open on the appliance's address: {own:?}"
        ));
    }
    let meta = std::fs::metadata(app.socket()).map_err(|e| format!("control socket: {e}"))?;
    let pid = app.pid().ok_or("vipmux is not running")?;
    let owner = std::fs::metadata(format!("/proc/{pid}"))
        .map_err(|e| e.to_string())?
        .uid();
    if meta.mode() & 0o777 != 0o600 || meta.uid() != owner {
        return Err(format!(
            "control socket mode {:o} uid {} (vipmux runs as uid {owner})",
            meta.mode() & 0o777,
            meta.uid()
        ));
    }
    Ok(())
}

/// Floods one trigger and counts the replies: argv = mode (echo|ttl|arp), count, target, then
/// for ttl the replying address, for arp the interface and our address. Prints
/// `SENT <n> WINDOW <seconds> REPLIES <n>`.
const FLOODER: &str = r#"
import os, socket, struct, sys, time
mode, count, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff

def drain(sock, match, quiet=1.5):
    n, end = 0, time.monotonic() + quiet
    sock.settimeout(0.2)
    while time.monotonic() < end:
        try:
            data = sock.recv(2048)
        except (socket.timeout, BlockingIOError):
            continue
        if match(data):
            n += 1
            end = time.monotonic() + quiet
    return n

if mode in ("echo", "ttl"):
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    icmp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    ident = os.getpid() & 0xffff
    t0 = time.monotonic()
    if mode == "echo":
        for seq in range(count):
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xffff)
            icmp.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + b"flood"), ident, seq & 0xffff) + b"flood", (target, 0))
        match = lambda d: d[20] == 0 and struct.unpack("!H", d[24:26])[0] == ident
    else:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 2)
        for _ in range(count):
            udp.sendto(b"ttl", (target, 7000))
        src = socket.inet_aton(sys.argv[4])
        match = lambda d: d[20] == 11 and d[12:16] == src
    window = time.monotonic() - t0
    replies = drain(icmp, match)
else:
    iface, ours = sys.argv[4], socket.inet_aton(sys.argv[5])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    s.bind((iface, 0x0806))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    mac = s.getsockname()[4]
    frame = b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) \
        + mac + ours + b"\0" * 6 + socket.inet_aton(target)
    t0 = time.monotonic()
    for _ in range(count):
        s.send(frame)
    window = time.monotonic() - t0
    vip = socket.inet_aton(target)
    replies = drain(s, lambda d: d[20:22] == b"\0\2" and d[28:32] == vip)
print("SENT", count, "WINDOW", "%.3f" % window, "REPLIES", replies, flush=True)
"#;

/// Runs the flooder in `ns`: (the send window in seconds, replies received).
fn flood(ns: &str, args: &[&str]) -> Result<(f64, u64), String> {
    let count = FLOOD.to_string();
    let mut cmd = vec!["python3", "-c", FLOODER, args[0], &count];
    cmd.extend_from_slice(&args[1..]);
    let out = ns_exec_ok(ns, &cmd)?;
    let f: Vec<&str> = out.split_whitespace().collect();
    match f.as_slice() {
        ["SENT", _, "WINDOW", w, "REPLIES", r] => Ok((
            w.parse().map_err(|_| format!("flooder said {out:?}"))?,
            r.parse().map_err(|_| format!("flooder said {out:?}"))?,
        )),
        _ => Err(format!("flooder said {out:?}")),
    }
}

/// The slow path's counters, and the exception-queue drops.
fn slow_counters(app: &Appliance) -> Result<(Value, u64), String> {
    let c = app.counters_json()?;
    let queue = c["exception_queue_full"].as_u64().unwrap_or(0);
    Ok((c["slow_path"].clone(), queue))
}

fn get(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// One flood of `what`: replies counted by the flooder within the limit, the rest accounted for.
fn limited(
    app: &Appliance,
    what: &str,
    ns: &str,
    args: &[&str],
    sent_counter: &str,
    (rate, burst): (u64, u64),
) -> Result<(), String> {
    let (before, queue_before) = slow_counters(app)?;
    let (window, replies) = flood(ns, args)?;
    let (after, queue_after) = slow_counters(app)?;
    let d = |path: &[&str]| get(&after, path).saturating_sub(get(&before, path));
    let sent = d(&[sent_counter]);
    let limited = d(&["drops", "rate_limited"]);
    let queue = queue_after.saturating_sub(queue_before);
    let cap = burst + (rate as f64 * (window + 1.0)) as u64;
    eprintln!(
        "{what}: {FLOOD} triggers in {window:.3} s -> {replies} replies received, vipmux sent \
         {sent}, rate-limited {limited}, exception queue full {queue} (cap {cap})"
    );
    if replies > cap || sent > cap {
        return Err(format!(
            "{what}: {replies} replies received ({sent} sent) for {FLOOD} triggers in {window:.3} s, \
             over the limit {burst} + {rate}/s x (window + 1 s) = {cap}"
        ));
    }
    let fast = (window + 1.0) * (rate as f64) + (burst as f64) < FLOOD as f64;
    if fast && limited == 0 && queue == 0 {
        return Err(format!(
            "{what}: a flood faster than the limit, yet nothing was limited"
        ));
    }
    Ok(())
}

fn scenario_rate_limits(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let (client, router) = (topo.ns("client"), topo.ns("router"));
    let (vip, mux_ip) = (topo.get("VIP"), topo.get("MUX_IP"));
    limited(
        app,
        "echo",
        &client,
        &["echo", vip],
        "echo_replies",
        ICMP_RATE,
    )?;
    limited(
        app,
        "ttl",
        &client,
        &["ttl", vip, mux_ip],
        "time_exceeded_sent",
        ICMP_RATE,
    )?;
    let router_ip = topo.get("ROUTER_LAN_IP");
    limited(
        app,
        "arp",
        &router,
        &["arp", vip, "eth1", router_ip],
        "arp_replies",
        ARP_RATE,
    )
}

#[test]
fn only_frontends_exposed_and_replies_rate_limited() {
    if skip_unless_root("only_frontends_exposed_and_replies_rate_limited") {
        return;
    }
    let topo =
        Topology::up("one-arm", &["--return", "gateway", "--backends", "3"]).expect("topology up");
    let app = start_or_panic(&topo, &config());
    check(&app, scenario_scans(&topo, &app));
    check(&app, scenario_rate_limits(&topo, &app));
}
