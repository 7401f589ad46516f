//! Abuse of the appliance's own interfaces, and configuration faults at reload, end to end: vipmux
//! in the one-arm topology with a TCP rule on the echo port 7000 (real kernel stacks on both
//! sides), one appliance for every scenario below.
//!
//! - Control socket: 500 clients connect and never send, 20 more send 2 000 requests each and never
//!   read an answer, one sends malformed JSON, one a 10 MB line. Meanwhile the socket keeps
//!   answering others (`status`), TCP through the VIP keeps working, vipmux gains no thread per
//!   client and its resident memory grows by less than 64 MB; malformed JSON and the long line are
//!   answered with errors.
//! - Metrics endpoint: 200 connections that never send, one with a 1 MB header and one sending a
//!   byte at a time; a scrape from another client still succeeds and forwarding goes on.
//! - Reload faults: a missing file, a directory, a file over the 16 MB limit and, on SIGHUP, the
//!   running configuration file deleted: each reload fails with a message naming the cause, the
//!   configuration generation stays, and forwarding goes on.
//!
//! Needs root; skipped otherwise (fails when CI=true).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::appliance::{check, start_or_panic, tcp_whoami};
use common::{skip_unless_root, wait_until, Appliance, ConfigBuilder, NsScript, Topology};

const ALL: [&str; 3] = ["b1", "b2", "b3"];
/// Control-socket clients that connect and never send.
const IDLE_CLIENTS: usize = 500;
/// Control-socket clients that send many requests and never read.
const NON_READERS: usize = 20;
/// Most threads vipmux may gain during the abuse: the control and metrics servers' bounded
/// handler pools, plus slack for threads that come and go on their own (not one per client).
const THREAD_SLACK: u64 = 2 * vipmux::control::serve::HANDLER_THREADS as u64 + 4;
/// Most resident memory vipmux may gain during the abuse, in kB.
const RSS_SLACK_KB: u64 = 64 * 1024;

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .pool("web", &ALL, "")
        .lb_rule("echo", "tcp", 7000, 7000, "web", None, "")
}

/// A field of `/proc/PID/status` (e.g. `VmRSS` in kB, `Threads`), as a number.
fn proc_status(app: &Appliance, field: &str) -> Result<u64, String> {
    let pid = app.pid().ok_or("vipmux is not running")?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

/// Five TCP exchanges through the VIP, each answered by a backend.
fn forwarding(topo: &Topology, when: &str) -> Result<(), String> {
    let to = format!("{}:7000", topo.get("VIP"));
    for _ in 0..5 {
        tcp_whoami(&topo.ns("client"), &to).map_err(|e| format!("{when}: through the VIP: {e}"))?;
    }
    Ok(())
}

fn generation(app: &Appliance) -> Result<u64, String> {
    app.status_json()?["config_generation"]
        .as_u64()
        .ok_or("no config_generation in status".into())
}

/// Sends `line` on `stream` and returns the first answer line.
fn answer_to(stream: &mut UnixStream, line: &[u8]) -> Result<String, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let owned = line.to_vec();
    // The server may close before taking all of a long line: the writer's error is expected.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&owned);
    });
    let mut answer = String::new();
    BufReader::new(&*stream)
        .read_line(&mut answer)
        .map_err(|e| format!("no answer: {e}"))?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    Ok(answer)
}

/// The control-socket abuse; returns the clients so they stay open while the caller checks.
fn abuse_control(app: &Appliance) -> Result<Vec<UnixStream>, String> {
    let connect = || UnixStream::connect(app.socket()).map_err(|e| format!("connect: {e}"));
    let mut held = Vec::new();
    for _ in 0..IDLE_CLIENTS {
        held.push(connect()?);
    }
    let burst = "{\"cmd\":\"counters\"}\n".repeat(2000);
    for _ in 0..NON_READERS {
        let mut s = connect()?;
        s.set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        // Stops when the socket buffers are full; either way nothing is ever read.
        let _ = s.write_all(burst.as_bytes());
        held.push(s);
    }
    let bad = answer_to(&mut connect()?, b"{\"cmd\": nonsense\n")?;
    if !bad.contains("\"ok\":false") || !bad.contains("bad request") {
        return Err(format!("malformed JSON answered {bad:?}"));
    }
    let long = vec![b'x'; 10 * 1024 * 1024];
    let answer = answer_to(&mut connect()?, &long)?;
    if !answer.contains("longer than") {
        return Err(format!("a 10 MB line answered {answer:?}"));
    }
    Ok(held)
}

/// Holds 200 idle connections, one 1 MB header and one byte-at-a-time sender to the metrics
/// endpoint; prints READY when they are open and runs until stdin closes.
const METRICS_ABUSE: &str = r#"
import socket, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
addr = (host, int(port))
held = [socket.create_connection(addr, timeout=5) for _ in range(200)]
def huge():
    try:
        s = socket.create_connection(addr, timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20))
    except OSError:
        pass
def slow():
    try:
        s = socket.create_connection(addr, timeout=5)
        for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
            s.send(bytes([b]))
            time.sleep(0.5)
    except OSError:
        pass
for f in (huge, slow):
    threading.Thread(target=f, daemon=True).start()
print("READY", flush=True)
sys.stdin.readline()
"#;

fn scenario_interfaces(topo: &Topology, app: &Appliance) -> Result<(), String> {
    forwarding(topo, "before the abuse")?;
    let threads_before = proc_status(app, "Threads")?;
    let rss_before = proc_status(app, "VmRSS")?;
    let held = abuse_control(app)?;
    let metrics = NsScript::start(
        &topo.ns("mux"),
        METRICS_ABUSE,
        &[common::appliance::METRICS_ADDR],
    )?;
    let ready = metrics.line(Duration::from_secs(30))?;
    if ready != "READY" {
        return Err(format!("metrics abuse printed {ready:?}"));
    }
    for i in 0..5 {
        app.status_json()
            .map_err(|e| format!("status #{i} during the abuse: {e}"))?;
        app.metrics_text()
            .map_err(|e| format!("scrape #{i} during the abuse: {e}"))?;
    }
    forwarding(topo, "during the abuse")?;
    let threads = proc_status(app, "Threads")?;
    let rss = proc_status(app, "VmRSS")?;
    eprintln!(
        "abuse: threads {threads_before} -> {threads}, RSS {rss_before} kB -> {rss} kB \
         with {} control clients held",
        held.len()
    );
    if threads > threads_before + THREAD_SLACK {
        return Err(format!(
            "vipmux went from {threads_before} to {threads} threads"
        ));
    }
    if rss > rss_before + RSS_SLACK_KB {
        return Err(format!("vipmux RSS went from {rss_before} kB to {rss} kB"));
    }
    drop(held);
    drop(metrics);
    app.status_json().map_err(|e| format!("after: {e}"))?;
    forwarding(topo, "after the abuse")
}

fn scenario_reload_faults(topo: &Topology, app: &Appliance) -> Result<(), String> {
    let before = generation(app)?;
    let dir = app.config_path().with_file_name("abuse-reload");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let huge = dir.join("huge.toml");
    let mut text = std::fs::read_to_string(app.config_path()).map_err(|e| e.to_string())?;
    text.push_str(&format!("# {}\n", "x".repeat(17 * 1024 * 1024)));
    std::fs::write(&huge, text).map_err(|e| e.to_string())?;
    let cases = [
        (dir.join("missing.toml"), "No such file"),
        (dir.clone(), "directory"),
        (huge, "longer than"),
    ];
    for (file, why) in &cases {
        match app.reload(file) {
            Ok(out) => return Err(format!("reload of {} succeeded: {out}", file.display())),
            Err(e) if e.contains(why) => {}
            Err(e) => {
                return Err(format!(
                    "reload of {}: {e} (wanted {why:?})",
                    file.display()
                ))
            }
        }
        forwarding(topo, &format!("after reloading {}", file.display()))?;
    }
    // SIGHUP with the running configuration file gone: logged, the old configuration keeps going.
    let saved = std::fs::read(app.config_path()).map_err(|e| e.to_string())?;
    std::fs::remove_file(app.config_path()).map_err(|e| e.to_string())?;
    app.sighup()?;
    let logged = wait_until(Duration::from_secs(30), || {
        app.log_text().contains("cannot read file")
    });
    std::fs::write(app.config_path(), saved).map_err(|e| e.to_string())?;
    if !logged {
        return Err("SIGHUP with the file gone logged no read error".into());
    }
    let after = generation(app)?;
    if after != before {
        return Err(format!(
            "configuration generation moved {before} -> {after}"
        ));
    }
    forwarding(topo, "after the failed reloads")
}

#[test]
fn interfaces_withstand_abuse_and_bad_reloads() {
    if skip_unless_root("interfaces_withstand_abuse_and_bad_reloads") {
        return;
    }
    let topo =
        Topology::up("one-arm", &["--return", "gateway", "--backends", "3"]).expect("topology up");
    let app = start_or_panic(&topo, &config());
    check(&app, scenario_interfaces(&topo, &app));
    check(&app, scenario_reload_faults(&topo, &app));
}
