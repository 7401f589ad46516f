//! Outbound SNAT end to end on the two-arm topology: the client namespace stands for the
//! internet and its gateway (10.9.0.10, the MUX's `client` interface gateway, plus
//! 198.51.100.7 on its loopback, a host behind that gateway), with real TCP and UDP echo servers
//! that answer `whoami` with the peer address they see. The backends b1..b3 (default route via
//! the MUX) open connections to it:
//!
//! - every member's TCP and UDP leave as the frontend IP 10.9.0.100, from a port of that
//!   member's block (Azure's default for a pool of 3: 1,024 ports each, in pool order from
//!   1024), and the answers reach the member;
//! - 1,000 concurrent TCP connections from one member all work, each with its own port;
//! - the internet host's port unreachable for a member's UDP reaches the member translated back
//!   (its connected socket reads ECONNREFUSED);
//! - UDP is port-restricted cone: one member socket keeps its SNAT port toward one host and
//!   gets another toward a second host;
//! - with 16 ports per member, 17 simultaneous connections to one destination: 16 work, the 17th
//!   does not and `snat_exhausted` counts it (`diagnose` names the member and its ports by
//!   destination), another member still connects, and a connection
//!   to another destination port reuses a port of the full block; when one of a full block's
//!   connections ends with a RST, a new connection to the same destination is refused until the
//!   port is released (15 s after the RST, real time) and then gets that port;
//! - an outbound rule's idle timeout (3 s, `idle_timeout_seconds`) ends an idle connection: with
//!   `enable_tcp_reset` both real stacks get a RST (the member's read fails with ECONNRESET, the
//!   server's socket goes); without it nothing is sent and a late segment is dropped (`no_flow`).
//!
//! - a reload that adds a member keeps every other member's outbound connections (same frontend
//!   port, still echoing) and the new member gets a block after theirs;
//! - with two workers, each translation sits on the worker that owns its member endpoint, with a
//!   port of that worker's half of the block, and the replies (and the internet host's port
//!   unreachables) reach it through the hand-off.
//!
//! - on the one-arm topology (members' default route via the MUX's address, the internet host
//!   behind the router that is the MUX's gateway and routes the frontend IP to it), every
//!   member's TCP and UDP leave as the frontend IP from its block and the answers come back.
//!
//! Needs root; skipped otherwise (fails under CI=true).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::appliance::{check, socket_path};
use common::idle::{parse_outcome, parse_ready, reset_window, IdleClient};
use common::{
    ns_exec, ns_exec_ok, scripts_dir, skip_unless_root, spawn_in_ns, udp_from, wait_for,
    wait_until, Appliance, BackendReply, ConfigBuilder, NsChild, NsScript, TcpSession, Topology,
};
use std::time::Instant;

const ALL: [&str; 3] = ["b1", "b2", "b3"];
/// The echo servers' ports on the internet host.
const PORTS: [u16; 2] = [7000, 7001];
/// A second internet host, behind the gateway (on the client namespace's loopback).
const OTHER_HOST: &str = "198.51.100.7";

/// Opens `count` TCP connections at once from this namespace, spread over the destinations
/// `argv[1]` (`IP:PORT,IP:PORT...`), sends `whoami` on each and waits (at most `argv[3]`
/// seconds) for every answer, all connections held open meanwhile. Prints one line
/// `<answered> <failed> <peer> <peer> ...` (each peer: what the server saw, `IP:PORT`).
const MANY_CLIENT: &str = r#"
import selectors, socket, sys, time
dests = [(h, int(p)) for h, p in (d.rsplit(":", 1) for d in sys.argv[1].split(","))]
count, limit = int(sys.argv[2]), float(sys.argv[3])
sel = selectors.DefaultSelector()
conns = []
for i in range(count):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(dests[i % len(dests)])
    st = {"s": s, "buf": b"", "sent": False}
    conns.append(st)
    sel.register(s, selectors.EVENT_WRITE, st)
peers, failed, pending = [], 0, count
deadline = time.monotonic() + limit
while pending and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=0.2):
        st = key.data
        s = st["s"]
        try:
            if not st["sent"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, "connect")
                s.send(b"whoami\n")
                st["sent"] = True
                sel.modify(s, selectors.EVENT_READ, st)
                continue
            d = s.recv(4096)
            if not d:
                raise OSError("eof")
            st["buf"] += d
            if b"\n" not in st["buf"]:
                continue
            who = [w[7:] for w in st["buf"].decode().split() if w.startswith("client=")]
            peers.append(who[0] if who else "?")
        except OSError:
            failed += 1
        sel.unregister(s)
        pending -= 1
print(len(peers), failed + pending, " ".join(peers), flush=True)
"#;

/// Opens `argv[2]` TCP connections one after the other to `argv[1]` (`IP:PORT`), asks `whoami`
/// on each and prints `HELD <peer> <peer> ...` (what the server saw, `IP:PORT`), holding them
/// open. Each line on stdin then closes the last one still open with a RST (`SO_LINGER` 0) and
/// prints `RST <peer>`; EOF ends it.
const HOLD_CLIENT: &str = r#"
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
conns = []
for _ in range(int(sys.argv[2])):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"whoami\n")
    buf = b""
    while b"\n" not in buf:
        d = s.recv(4096)
        if not d:
            print("ERR eof", flush=True)
            sys.exit(1)
        buf += d
    who = [w[7:] for w in buf.decode().split() if w.startswith("client=")]
    conns.append((s, who[0] if who else "?"))
print("HELD", " ".join(w for _, w in conns), flush=True)
for _ in sys.stdin:
    s, who = conns.pop()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("RST", who, flush=True)
"#;

/// Sends one datagram to `argv[1]` (`IP:PORT`, where nothing listens) from a connected UDP
/// socket, up to 5 times, and prints `REFUSED` once a receive fails with ECONNREFUSED (the
/// kernel saw the remote host's port unreachable), else `SILENT`.
const REFUSED_CLIENT: &str = r#"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, int(port)))
s.settimeout(2)
for _ in range(5):
    try:
        s.send(b"anyone?")
        s.recv(100)
    except ConnectionRefusedError:
        print("REFUSED", flush=True)
        sys.exit(0)
    except (socket.timeout, OSError):
        pass
print("SILENT", flush=True)
"#;

/// What [`MANY_CLIENT`] reported.
#[derive(Debug)]
struct Many {
    failed: usize,
    /// (address, port) each server saw.
    peers: Vec<(String, u16)>,
}

/// Runs [`MANY_CLIENT`] in backend `role`.
fn many(
    topo: &Topology,
    role: &str,
    dests: &[String],
    count: usize,
    limit: u32,
) -> Result<Many, String> {
    let out = ns_exec_ok(
        &topo.ns(role),
        &[
            "python3",
            "-c",
            MANY_CLIENT,
            &dests.join(","),
            &count.to_string(),
            &limit.to_string(),
        ],
    )?;
    let mut words = out.split_whitespace();
    let mut num = || words.next().and_then(|w| w.parse::<usize>().ok());
    let (Some(answered), Some(failed)) = (num(), num()) else {
        return Err(format!("{role}: client printed {out:?}"));
    };
    let peers = out
        .split_whitespace()
        .skip(2)
        .map(|p| {
            let (ip, port) = p.rsplit_once(':').ok_or_else(|| format!("peer {p:?}"))?;
            Ok((
                ip.to_string(),
                port.parse().map_err(|_| format!("peer {p:?}"))?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if peers.len() != answered {
        return Err(format!(
            "{role}: {answered} answered but {} peers",
            peers.len()
        ));
    }
    Ok(Many { failed, peers })
}

/// The internet host's echo servers (TCP and UDP on each of [`PORTS`]), stopped when dropped.
struct Internet {
    _servers: Vec<NsChild>,
}

impl Internet {
    fn start(topo: &Topology) -> Result<Internet, String> {
        let ns = topo.ns("client");
        ns_exec_ok(
            &ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("{OTHER_HOST}/32"),
                "dev",
                "lo",
            ],
        )?;
        let echo = scripts_dir().join("echo.py");
        let echo = echo.to_string_lossy();
        let mut children = Vec::new();
        let mut pidfiles = Vec::new();
        for port in PORTS {
            for kind in ["tcp-server", "udp-server"] {
                let pidfile = topo.state_dir().join(format!("internet-{kind}-{port}.pid"));
                let log = topo.state_dir().join(format!("internet-{kind}-{port}.log"));
                let port = port.to_string();
                let pf = pidfile.to_string_lossy().to_string();
                let cmd = [
                    "python3",
                    &echo,
                    kind,
                    "--name",
                    "internet",
                    "--port",
                    &port,
                    "--pidfile",
                    &pf,
                ];
                children.push(spawn_in_ns(&ns, &cmd, &log).map_err(|e| e.to_string())?);
                pidfiles.push(pidfile);
            }
        }
        if !wait_until(Duration::from_secs(20), || {
            pidfiles.iter().all(|p| p.exists())
        }) {
            return Err("the internet host's servers did not start".into());
        }
        Ok(Internet { _servers: children })
    }
}

/// Waits (bounded) until `role`'s UDP gets an answer from the internet host: the MUX resolves
/// its gateway after start. Takes one SNAT port of `role`'s block.
fn wait_ready(topo: &Topology, role: &str) -> Result<(), String> {
    wait_for(Duration::from_secs(20), || {
        udp_from(&topo.ns(role), &dest(7000), "whoami").ok()
    })
    .map(|_| ())
    .ok_or_else(|| format!("{role}'s UDP never got an answer from the internet host"))
}

/// Outbound rule "egress": pool "web" leaves as frontend "fe", TCP and UDP.
const OUTBOUND: &str = "[[outbound_rules]]\nname = \"egress\"\nfrontends = [\"fe\"]\n\
                        backend_pool = \"web\"\nprotocol = \"all\"\n";

/// The first port of each member's block (pool order, `ports` each, from 1024).
fn block_of(role: &str, ports: u16) -> std::ops::Range<u16> {
    let i = ALL.iter().position(|r| *r == role).unwrap_or(0) as u16;
    let first = 1024 + i * ports;
    first..first + ports
}

/// Pool "web" of b1..b3 and outbound rule "egress" over it (`outbound_extra`: more of its
/// keys), the `client` interface's gateway being the internet host.
fn config(topo: &Topology, workers: usize, outbound_extra: &str) -> String {
    config_of(topo, workers, &ALL, outbound_extra)
}

/// [`config`] with pool "web" of `roles`.
fn config_of(topo: &Topology, workers: usize, roles: &[&str], outbound_extra: &str) -> String {
    let b = ConfigBuilder::two_arm()
        .workers(workers)
        .pool("web", roles, "")
        .raw(&format!("{OUTBOUND}{outbound_extra}\n"));
    let mut doc = b.document(&socket_path(topo));
    let client = doc
        .get_mut("interfaces")
        .and_then(|v| v.as_array_mut())
        .and_then(|a| a.first_mut())
        .and_then(|v| v.as_table_mut())
        .expect("the client interface");
    client.insert("gateway".into(), topo.get("CLIENT_IP").into());
    toml::to_string(&doc).expect("serialize the configuration")
}

/// The topology and vipmux with [`config`].
fn start(outbound_extra: &str) -> (Topology, Appliance) {
    start_workers(1, outbound_extra)
}

/// The topology and vipmux with [`config`] and `workers` workers.
fn start_workers(workers: usize, outbound_extra: &str) -> (Topology, Appliance) {
    let topo = Topology::up("two-arm", &[]).expect("topology up");
    let text = config(&topo, workers, outbound_extra);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    (topo, app)
}

fn dest(port: u16) -> String {
    format!("10.9.0.10:{port}")
}

/// Checks every peer is the frontend IP with a port of `role`'s block.
fn from_block(topo: &Topology, role: &str, ports: u16, m: &Many) -> Result<(), String> {
    let vip = topo.get("VIP");
    let block = block_of(role, ports);
    match m
        .peers
        .iter()
        .find(|(ip, port)| ip != vip || !block.contains(port))
    {
        Some(p) => Err(format!(
            "{role}: the server saw {p:?}, not {vip} in {block:?}"
        )),
        None => Ok(()),
    }
}

/// The SNAT port the internet host saw for a UDP `whoami` from `role`'s `src_port` to `to`.
fn udp_port(topo: &Topology, role: &str, src_port: u16, to: &str) -> Result<u16, String> {
    let bind = format!("0.0.0.0:{src_port}");
    let script = scripts_dir().join("echo.py");
    let script = script.to_string_lossy();
    let out = ns_exec_ok(
        &topo.ns(role),
        &[
            "python3",
            &script,
            "udp-client",
            "--to",
            to,
            "--data",
            "whoami",
            "--bind",
            &bind,
        ],
    )?;
    let r = BackendReply::parse(out.trim()).ok_or_else(|| format!("udp answer {out:?}"))?;
    if r.client_ip != topo.get("VIP") {
        return Err(format!(
            "{role}: UDP left as {}:{}",
            r.client_ip, r.client_port
        ));
    }
    Ok(r.client_port)
}

/// `times` runs of [`REFUSED_CLIENT`] from `role` (each from a new source port, so with several
/// workers the translations fall on either): the internet host's port unreachable reaches the
/// member's socket every time, translated back by the MUX (`to_snat_member`).
fn refused_through_the_mux(
    topo: &Topology,
    app: &Appliance,
    role: &str,
    times: u64,
) -> Result<(), String> {
    let before = app.counters_json()?["icmp_errors"]["to_snat_member"]
        .as_u64()
        .unwrap_or(0);
    for run in 1..=times {
        let out = ns_exec_ok(
            &topo.ns(role),
            &["python3", "-c", REFUSED_CLIENT, &dest(7999)],
        )?;
        if out.trim() != "REFUSED" {
            return Err(format!("{role}: UDP to a closed port, run {run}: {out:?}"));
        }
    }
    wait_for(Duration::from_secs(5), || {
        let c = app.counters_json().ok()?;
        c["icmp_errors"]["to_snat_member"]
            .as_u64()
            .filter(|n| *n >= before + times)
    })
    .map(|_| ())
    .ok_or_else(|| format!("to_snat_member not counted: {:?}", app.counters_json()))
}

/// Every member's TCP (4 connections) and UDP leave as the frontend IP from its 1,024-port
/// block and the answers come back.
fn every_member_gets_out(topo: &Topology) -> Result<(), String> {
    for role in ALL {
        let m = many(topo, role, &[dest(7000)], 4, 20)?;
        if m.failed > 0 {
            return Err(format!("{role}: {} of 4 TCP connections failed", m.failed));
        }
        from_block(topo, role, 1024, &m)?;
        let r = udp_from(&topo.ns(role), &dest(7000), "whoami")?;
        let r = BackendReply::parse(&r).ok_or_else(|| format!("udp answer {r:?}"))?;
        let m = Many {
            failed: 0,
            peers: vec![(r.client_ip, r.client_port)],
        };
        from_block(topo, role, 1024, &m)?;
    }
    Ok(())
}

fn default_blocks(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _internet = Internet::start(topo)?;
    every_member_gets_out(topo)?;
    // 1,000 concurrent connections from one member, each with a port of its own.
    let m = many(topo, "b1", &[dest(7000), dest(7001)], 1000, 60)?;
    if m.failed > 0 {
        return Err(format!(
            "b1: {} of 1000 concurrent connections failed",
            m.failed
        ));
    }
    from_block(topo, "b1", 1024, &m)?;
    let ports: BTreeSet<u16> = m.peers.iter().map(|p| p.1).collect();
    eprintln!("1000 connections from b1 used {} SNAT ports", ports.len());
    // UDP cone: one socket keeps its port toward one host, another host gets its own.
    let a = udp_port(topo, "b2", 5555, &dest(7000))?;
    let b = udp_port(topo, "b2", 5555, &dest(7001))?;
    let c = udp_port(topo, "b2", 5555, &format!("{OTHER_HOST}:7000"))?;
    if a != b || a == c {
        return Err(format!(
            "UDP from b2:5555 left by ports {a}, {b} (same host), {c} (other host)"
        ));
    }
    // The internet host's port unreachable reaches the member's socket through the MUX.
    refused_through_the_mux(topo, app, "b3", 1)?;
    let used = wait_for(Duration::from_secs(5), || {
        let c = app.counters_json().ok()?;
        let n = c["drops"]["snat_exhausted"].as_u64()?;
        Some(n)
    });
    if used != Some(0) {
        return Err(format!("snat_exhausted counted {used:?} with 1,024 ports"));
    }
    Ok(())
}

#[test]
fn outbound_connections_leave_as_the_frontend() {
    if skip_unless_root("outbound_connections_leave_as_the_frontend") {
        return;
    }
    let (topo, app) = start("");
    check(&app, default_blocks(&topo, &app));
}

/// One arm: the members (default route via the MUX's address) reach the client namespace
/// behind the router, the MUX's gateway; the router routes the frontend IP to the MUX.
fn one_arm(topo: &Topology) -> Result<(), String> {
    let _internet = Internet::start(topo)?;
    wait_ready(topo, "b1")?;
    every_member_gets_out(topo)
}

#[test]
fn outbound_connections_leave_as_the_frontend_on_one_arm() {
    if skip_unless_root("outbound_connections_leave_as_the_frontend_on_one_arm") {
        return;
    }
    let topo = Topology::up("one-arm", &[]).expect("topology up");
    let text = ConfigBuilder::one_arm()
        .pool("web", &ALL, "")
        .raw(OUTBOUND)
        .build(&topo);
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    check(&app, one_arm(&topo));
}

fn small_block(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _internet = Internet::start(topo)?;
    wait_ready(topo, "b3")?;
    let dests = vec![dest(7000); 17];
    let m = many(topo, "b1", &dests, 17, 8)?;
    if m.peers.len() != 16 || m.failed != 1 {
        return Err(format!(
            "17 connections with 16 ports: {m:?}; counters {}",
            app.counters_json()
                .map(|c| c.to_string())
                .unwrap_or_default()
        ));
    }
    from_block(topo, "b1", 16, &m)?;
    let exhausted = wait_for(Duration::from_secs(5), || {
        let n = app.drop_count("snat_exhausted").ok()?;
        (n >= 1).then_some(n)
    })
    .ok_or("snat_exhausted never counted the 17th connection")?;
    eprintln!("snat_exhausted = {exhausted} (the 17th SYN and its retransmissions)");
    // Another member is not affected.
    let other = many(topo, "b2", &[dest(7000)], 1, 10)?;
    if other.failed > 0 {
        return Err("b2 could not connect while b1's block was full".into());
    }
    from_block(topo, "b2", 16, &other)?;
    // b1's 16 ports are still held (closed connections keep them 240 s), yet a new destination
    // port may reuse one of them.
    let reuse = many(topo, "b1", &[dest(7001)], 1, 10)?;
    if reuse.failed > 0 {
        return Err("b1 could not reach another destination port with a full block".into());
    }
    from_block(topo, "b1", 16, &reuse)?;
    let again = many(topo, "b1", &[dest(7000)], 1, 5)?;
    if again.failed != 1 {
        return Err(format!("a port freed too early: {again:?}"));
    }
    observed(topo, app)?;
    reset_releases(topo, app)
}

/// The SNAT port of a peer `IP:PORT` as the server saw it.
fn peer_port(peer: &str) -> Result<u16, String> {
    peer.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or_else(|| format!("peer {peer:?}"))
}

/// b3 (16 ports) holds 16 connections to one destination; one of them ends with a RST; a new
/// connection there is refused until the MUX releases the port (15 s after the RST, real time)
/// and then leaves by that port.
fn reset_releases(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let mut held = NsScript::start(&topo.ns("b3"), HOLD_CLIENT, &[&dest(7000), "16"])?;
    let line = held.line(Duration::from_secs(60))?;
    let peers: Vec<&str> = line
        .strip_prefix("HELD ")
        .ok_or_else(|| format!("holder: {line}"))?
        .split_whitespace()
        .collect();
    let ports = peers
        .iter()
        .map(|p| peer_port(p))
        .collect::<Result<BTreeSet<u16>, String>>()?;
    if ports.len() != 16 || !ports.iter().all(|p| block_of("b3", 16).contains(p)) {
        return Err(format!("b3's 16 connections left by {peers:?}"));
    }
    let t0 = Instant::now();
    held.send_line("")?;
    let line = held.line(Duration::from_secs(10))?;
    let freed = peer_port(line.strip_prefix("RST ").unwrap_or(&line))?;
    // Refused before the release (the 15 s have not passed).
    let before = many(topo, "b3", &[dest(7000)], 1, 3)?;
    if before.failed != 1 || t0.elapsed() >= Duration::from_secs(15) {
        return Err(format!(
            "before the release: {before:?} at {:?}",
            t0.elapsed()
        ));
    }
    // Then, within a bounded deadline, a connection gets through with the freed port.
    let m = wait_for(Duration::from_secs(40), || {
        many(topo, "b3", &[dest(7000)], 1, 2)
            .ok()
            .filter(|m| m.failed == 0)
    })
    .ok_or_else(|| {
        format!(
            "no connection after the RST; counters {:?}",
            app.counters_json()
        )
    })?;
    let took = t0.elapsed();
    eprintln!("a connection got b3's freed port {freed} {took:?} after the RST");
    match m.peers.first() {
        Some((_, p)) if *p == freed && took >= Duration::from_secs(15) => Ok(()),
        _ => Err(format!("after {took:?}: {m:?}, freed port {freed}")),
    }
}

/// What `status`, `flows` and the metrics show after [`small_block`]: b1 holds its 16 ports
/// with 17 translations, b2 one port.
fn observed(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let status = app.status_json()?;
    let members = status["pools"][0]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ports = |name: &str| {
        members.iter().find(|m| m["name"] == name).map(|m| {
            (
                m["snat_ports_used"].as_u64(),
                m["snat_ports_allocated"].as_u64(),
            )
        })
    };
    let want = [("b1", 16), ("b2", 1)];
    let ok = wait_until(Duration::from_secs(5), || {
        let Ok(s) = app.status_json() else {
            return false;
        };
        let ms = s["pools"][0]["members"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        want.iter().all(|(n, used)| {
            ms.iter()
                .any(|m| m["name"] == *n && m["snat_ports_used"].as_u64() == Some(*used))
        })
    });
    if !ok {
        return Err(format!(
            "status: b1 {:?}, b2 {:?}",
            ports("b1"),
            ports("b2")
        ));
    }
    let flows = app.flows_json()?;
    let rows = flows["flows"].as_array().cloned().unwrap_or_default();
    let vip = topo.get("VIP");
    let b1: Vec<_> = rows
        .iter()
        .filter(|r| r["outbound"] == true && r["member"] == "b1")
        .collect();
    if b1.len() != 17
        || !b1
            .iter()
            .all(|r| r["vip"].as_str().is_some_and(|v| v.starts_with(vip)))
    {
        return Err(format!("flows lists b1's translations as {b1:?}"));
    }
    // diagnose names b1 and where its ports go: 16 toward 7000, one reused toward 7001.
    let d = app.diagnose_json()?;
    let named = d["findings"].as_array().is_some_and(|f| {
        f.iter().any(|x| {
            x["check"] == "snat_exhausted"
                && x["subject"].as_str().is_some_and(|s| s.contains("b1"))
                && x["seen"].as_str().is_some_and(|s| {
                    s.contains("by destination: 10.9.0.10:7000 tcp 16, 10.9.0.10:7001 tcp 1)")
                })
        })
    });
    if !named {
        return Err(format!("diagnose does not name b1's exhaustion: {d}"));
    }
    let metrics = app.metrics_text()?;
    let syns_out = format!(
        "vipmux_lb_syns_total{{frontend_ip=\"{vip}\",frontend_port=\"snat\",protocol=\"tcp\",direction=\"out\"}} "
    );
    let counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&syns_out))
        .and_then(|n| n.parse::<u64>().ok());
    // SYNs that left: b1's 16 and the one reusing a port, b2's one (b3's readiness is UDP; the
    // refused connections' SYNs found no port and did not leave).
    if counted.is_none_or(|n| n < 18) {
        return Err(format!("outbound SYNs: {counted:?} in {syns_out}"));
    }
    let used = "vipmux_snat_used_ports{rule=\"egress\",pool=\"web\",member=\"b1\"} 16";
    let allocated = "vipmux_snat_allocated_ports{rule=\"egress\",pool=\"web\",member=\"b1\"} 16";
    if !metrics.contains(used) || !metrics.contains(allocated) {
        let snat: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("vipmux_snat"))
            .collect();
        return Err(format!("metrics: {snat:#?}"));
    }
    Ok(())
}

#[test]
fn a_small_block_runs_out_for_its_member_only() {
    if skip_unless_root("a_small_block_runs_out_for_its_member_only") {
        return;
    }
    let (topo, app) = start("allocated_outbound_ports = 16");
    check(&app, small_block(&topo, &app));
}

/// The outbound rules' idle timeout in the idle tests.
const IDLE_SECS: u64 = 3;

/// Lines of `ss -tnH` on the internet host for the connection from SNAT port `port`.
fn server_sockets(topo: &Topology, port: u16) -> String {
    let filter = format!("( sport = :7000 and dport = :{port} )");
    let out = ns_exec(&topo.ns("client"), &["ss", "-tnH", "state", "all", &filter]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// b1 connects to the internet host and goes idle; returns the client and its SNAT port.
fn idle_connection(topo: &Topology, late: bool) -> Result<(IdleClient, u16), String> {
    // The idle client allows 5 s to connect.
    wait_ready(topo, "b1")?;
    let wait = if late { IDLE_SECS + 2 } else { IDLE_SECS + 5 };
    let client = IdleClient::start(&topo.ns("b1"), &dest(7000), wait, late)?;
    let (_, who) = parse_ready(&client.line(Duration::from_secs(10))?)?;
    let m = Many {
        failed: 0,
        peers: vec![(who.client_ip.clone(), who.client_port)],
    };
    from_block(topo, "b1", 1024, &m)?;
    if !server_sockets(topo, who.client_port).contains("ESTAB") {
        return Err(format!("the server does not show {who:?}"));
    }
    Ok((client, who.client_port))
}

fn idle_with_reset(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _internet = Internet::start(topo)?;
    let (client, port) = idle_connection(topo, false)?;
    let (word, secs) = parse_outcome(&client.line(Duration::from_secs(IDLE_SECS + 10))?)?;
    eprintln!("member's read ended with {word} after {secs:.3} s (idle timeout {IDLE_SECS} s)");
    let (lo, hi) = reset_window(IDLE_SECS);
    if word != "RESET" || secs < lo || secs > hi {
        return Err(format!(
            "{word} after {secs} s, not ECONNRESET within {lo}..{hi} s"
        ));
    }
    if !wait_until(Duration::from_secs(5), || {
        server_sockets(topo, port).is_empty()
    }) {
        return Err(format!(
            "the server still holds it: {}",
            server_sockets(topo, port)
        ));
    }
    wait_for(Duration::from_secs(5), || {
        let c = app.counters_json().ok()?;
        (c["resets_sent"].as_u64()? >= 2).then_some(())
    })
    .ok_or_else(|| "resets_sent never showed the pair".to_string())
}

#[test]
fn outbound_idle_timeout_with_reset_closes_both_sockets() {
    if skip_unless_root("outbound_idle_timeout_with_reset_closes_both_sockets") {
        return;
    }
    let (topo, app) = start(&format!(
        "idle_timeout_seconds = {IDLE_SECS}\nenable_tcp_reset = true"
    ));
    check(&app, idle_with_reset(&topo, &app));
}

fn idle_silent(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _internet = Internet::start(topo)?;
    let (mut client, port) = idle_connection(topo, true)?;
    let (word, secs) = parse_outcome(&client.line(Duration::from_secs(IDLE_SECS + 10))?)?;
    if word != "TIMEOUT" {
        return Err(format!(
            "without reset the member's read ended with {word} after {secs} s"
        ));
    }
    if !server_sockets(topo, port).contains("ESTAB") {
        return Err("without reset the server lost the connection".into());
    }
    // The translation leaves the flows listing before the late segment is sent.
    let snat = format!(":{port}");
    app.wait_flow_gone("the idle translation", Duration::from_secs(10), |r| {
        r["outbound"] == true
            && r["protocol"] == "tcp"
            && r["vip"].as_str().is_some_and(|v| v.ends_with(&snat))
    })?;
    let before = app.drop_count("no_flow")?;
    client.go_late()?;
    // The late segment is dropped: its flow is gone.
    app.wait_counter("/drops/no_flow", Duration::from_secs(5), before + 1)?;
    let late = client.line(Duration::from_secs(10))?;
    if late != "LATE_TIMEOUT" {
        return Err(format!("the late segment was not dropped: {late}"));
    }
    Ok(())
}

#[test]
fn outbound_idle_timeout_without_reset_is_silent() {
    if skip_unless_root("outbound_idle_timeout_without_reset_is_silent") {
        return;
    }
    let (topo, app) = start(&format!("idle_timeout_seconds = {IDLE_SECS}"));
    check(&app, idle_silent(&topo, &app));
}

/// Two workers: connections from b1 until some crossed workers; every translation on its owner
/// (f(member endpoint)) with a port of that worker's half of b1's block (1024..1536, 1536..2048).
fn two_workers(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _internet = Internet::start(topo)?;
    for attempt in 1..=4 {
        let m = many(topo, "b1", &[dest(7000), dest(7001)], 100, 30)?;
        if m.failed > 0 {
            return Err(format!(
                "attempt {attempt}: {} of 100 connections failed",
                m.failed
            ));
        }
        from_block(topo, "b1", 1024, &m)?;
        if app.handoffs()?.0 > 0 {
            break;
        }
    }
    let a = udp_port(topo, "b2", 5555, &dest(7000))?;
    let b = udp_port(topo, "b2", 5555, &dest(7001))?;
    if a != b {
        return Err(format!(
            "UDP from b2:5555 left by {a} and {b} with two workers"
        ));
    }
    refused_through_the_mux(topo, app, "b2", 4)?;
    app.check_handoffs()?;
    let rows = app.flows_json()?["flows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let b1: Vec<_> = rows
        .iter()
        .filter(|r| r["outbound"] == true && r["member"] == "b1")
        .collect();
    for r in &b1 {
        let port: u16 = r["vip"]
            .as_str()
            .and_then(|v| v.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| format!("row {r}"))?;
        let half = if port < 1536 { 0 } else { 1 };
        if r["worker"].as_u64() != Some(half) {
            return Err(format!(
                "translation on worker {} with port {port}: {r}",
                r["worker"]
            ));
        }
    }
    if b1.len() < 100 {
        return Err(format!("only {} of b1's translations listed", b1.len()));
    }
    Ok(())
}

#[test]
fn outbound_connections_with_two_workers() {
    if skip_unless_root("outbound_connections_with_two_workers") {
        return;
    }
    let (topo, app) = start_workers(2, "");
    check(&app, two_workers(&topo, &app));
}

/// Sessions from b1..b3 to the internet host survive a reload that adds b4 to the pool.
fn reload_adds_a_member(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let _internet = Internet::start(topo)?;
    wait_ready(topo, "b1")?;
    let mut sessions = Vec::new();
    for role in ALL {
        let mut s = TcpSession::connect(&topo.ns(role), &dest(7000), None)?;
        let who = s.whoami()?;
        let m = Many {
            failed: 0,
            peers: vec![(who.client_ip.clone(), who.client_port)],
        };
        from_block(topo, role, 1024, &m)?;
        sessions.push((role, s, who.client_port));
    }
    let text = config_of(topo, 1, &["b1", "b2", "b3", "b4"], "");
    app.reload_text("reload-b4.toml", &text)?;
    for (role, s, port) in &mut sessions {
        let who = s
            .whoami()
            .map_err(|e| format!("{role} after the reload: {e}"))?;
        if who.client_port != *port {
            return Err(format!(
                "{role}'s connection moved from port {port} to {who:?}"
            ));
        }
        s.echo("still here")
            .map_err(|e| format!("{role} after the reload: {e}"))?;
    }
    // The new member's block follows the others' (4 members: still 1,024 ports each).
    let m = many(topo, "b4", &[dest(7000)], 1, 10)?;
    match m.peers.first() {
        Some((_, p)) if (4096..5120).contains(p) && m.failed == 0 => Ok(()),
        _ => Err(format!("b4 after the reload: {m:?}")),
    }
}

#[test]
fn a_reload_that_adds_a_member_keeps_outbound_connections() {
    if skip_unless_root("a_reload_that_adds_a_member_keeps_outbound_connections") {
        return;
    }
    let topo = Topology::up("two-arm", &["--backends", "4"]).expect("topology up");
    let text = config(&topo, 1, "");
    let app = Appliance::start(&topo, &text).unwrap_or_else(|e| panic!("{e}"));
    check(&app, reload_adds_a_member(&topo, &app));
}
