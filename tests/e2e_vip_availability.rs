//! Data path availability (`vipmux_lb_vip_availability`, Azure's `VipAvailability`) end to end:
//! vipmux with two workers on `net_af_packet` in the one-arm topology, an HTTP rule over b1..b3
//! with an HTTP probe. The slow path's synthetic connection runs through both worker threads
//! every second:
//!
//! - with healthy members the metric reads 1, and the synthetic connections touch no counter a
//!   client's traffic would (the rule's SYN count stays 0: no client sent anything);
//! - every member's health endpoint failing (probes down): 0, and 1 again once they answer;
//! - worker 1's thread stopped (ptrace, the rest of the process running, probes still up): 0,
//!   and 1 again once it runs.
//!
//! Needs root; fails instead of skipping under `CI=true`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::appliance::{check, start_or_panic};
use common::{skip_unless_root, wait_for, Appliance, ConfigBuilder, Topology};

const ALL: [&str; 3] = ["b1", "b2", "b3"];

/// Generous bound for anything waiting on probes or the synthetic rounds under load.
const BOUND: Duration = Duration::from_secs(30);

/// Stops one thread (`argv[1]`, a thread id) with `PTRACE_SEIZE` + `PTRACE_INTERRUPT` — only that
/// thread stops, not its process — prints `stopped`, and lets it run again when stdin closes.
const STALL: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
for req in (0x4206, 0x4207):  # PTRACE_SEIZE, PTRACE_INTERRUPT
    if libc.ptrace(req, tid, None, None) != 0:
        sys.exit('ptrace %#x: %s' % (req, os.strerror(ctypes.get_errno())))
os.waitpid(tid, 0x40000000)  # __WALL
print('stopped', flush=True)
sys.stdin.read()
libc.ptrace(17, tid, None, None)  # PTRACE_DETACH
"#;

fn config() -> ConfigBuilder {
    ConfigBuilder::one_arm()
        .workers(2)
        .pool("web", &ALL, "")
        .probe_http("http-80", 80, 1, 2)
        .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "")
}

/// The rule's series of `family` (labels of frontend VIP:80/tcp, plus `extra`).
fn series(topo: &Topology, family: &str, extra: &str) -> String {
    let vip = topo.get("VIP");
    format!("{family}{{frontend_ip=\"{vip}\",frontend_port=\"80\",protocol=\"tcp\"{extra}}}")
}

/// Waits (bounded) until the availability metric reads `want`.
fn wait_availability(topo: &Topology, app: &Appliance, want: f64, why: &str) -> Result<(), String> {
    let s = series(topo, "vipmux_lb_vip_availability", "");
    wait_for(BOUND, || (app.metric(&s).ok()? == want).then_some(()))
        .ok_or_else(|| format!("{s} never read {want} {why}: {:?}", app.metric(&s)))
}

/// The thread id of vipmux's thread named `name`.
fn thread_id(app: &Appliance, name: &str) -> Result<String, String> {
    let pid = app.pid().ok_or("vipmux is not running")?;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())?;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return Ok(t.file_name().to_string_lossy().into_owned());
        }
    }
    Err(format!("vipmux has no thread {name}"))
}

/// A stopped thread: dropping it (stdin closed) lets the thread run again.
struct Stalled(Child);

impl Stalled {
    /// Stops thread `tid` and waits until it is stopped.
    fn thread(tid: &str) -> Result<Stalled, String> {
        let mut child = Command::new("python3")
            .args(["-c", STALL, tid])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let out: ChildStdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let stalled = Stalled(child);
        if line.trim() != "stopped" {
            return Err(format!("could not stop thread {tid}: {line:?}"));
        }
        Ok(stalled)
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.0.wait();
    }
}

fn scenario(topo: &Topology, app: &Appliance) -> Result<(), String> {
    app.wait_members_healthy(&ALL, BOUND)?;
    wait_availability(topo, app, 1.0, "with every member healthy")?;
    let syns = series(topo, "vipmux_lb_syns_total", ",direction=\"in\"");
    if app.metric(&syns)? != 0.0 {
        return Err(format!(
            "the synthetic connections were counted: {syns} > 0"
        ));
    }

    for b in ALL {
        topo.backend("health", b, &["fail"])?;
    }
    wait_availability(topo, app, 0.0, "with every member's probe failing")?;
    for b in ALL {
        topo.backend("health", b, &["ok"])?;
    }
    wait_availability(topo, app, 1.0, "once the members' probes answer again")?;

    let tid = thread_id(app, "vipmux-w1")?;
    {
        let _stalled = Stalled::thread(&tid)?;
        wait_availability(topo, app, 0.0, "with worker 1 stopped")?;
        // The members are still healthy: the stall, not the probes, made the frontend unavailable.
        app.wait_members_healthy(&ALL, BOUND)?;
    }
    wait_availability(topo, app, 1.0, "once worker 1 runs again")
}

#[test]
fn vip_availability_follows_members_and_worker_stalls() {
    if skip_unless_root("vip_availability_follows_members_and_worker_stalls") {
        return;
    }
    let topo = Topology::up("one-arm", &["--return", "gateway"]).expect("topology up");
    let app = start_or_panic(&topo, &config());
    check(&app, scenario(&topo, &app));
}
