//! Shared support for integration tests: network-namespace topologies, commands run inside namespaces,
//! clients for the backend servers, and bounded polling.
//!
//! Include with `mod common;` from a file in `tests/`. Not every test binary uses every helper.
#![allow(dead_code)]

pub mod appliance;
pub mod decap;
pub mod idle;
pub mod ipv6;
#[path = "../prereq/mod.rs"]
pub mod prereq;
pub mod topology;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use appliance::{Appliance, ConfigBuilder, TcpSession};
pub use topology::Topology;

/// Directory holding the namespace topology scripts (`scripts/netns`).
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join("netns")
}

/// True when the test process runs with effective UID 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Returns true (after printing why) when a namespace test must be skipped because we are not
/// root; a failure instead where prerequisites are required ([`prereq`]).
pub fn skip_unless_root(test: &str) -> bool {
    !is_root() && prereq::missing(test, "needs root (network namespaces)")
}

/// A name prefix unique to this process and call: `vmx<pid>_<n>`.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "vmx{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace of the test's own with a unique name (e.g. for a device's exception
/// TAP, which must not touch the host's routes), deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// Adds a namespace named by [`unique_prefix`].
    pub fn add() -> Netns {
        let name = unique_prefix();
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

/// Runs `cmd` inside network namespace `ns` (`ip netns exec`) and returns its output.
pub fn ns_exec(ns: &str, cmd: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip netns exec {ns} {}`: {e}", cmd.join(" ")))
}

/// Runs `cmd` in `ns`; stdout on success, else an error naming the command, status and stderr.
pub fn ns_exec_ok(ns: &str, cmd: &[&str]) -> Result<String, String> {
    let out = ns_exec(ns, cmd);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` in {ns} failed ({}): {}{}",
            cmd.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// HTTP GET of `url` from namespace `ns` with curl (5 s limit); the body when the status is 2xx.
pub fn curl_from(ns: &str, url: &str) -> Result<String, String> {
    ns_exec_ok(ns, &["curl", "-sS", "--fail", "-m", "5", url])
}

/// HTTP status code of a GET of `url` from `ns` (`None` when no answer came within 5 s).
pub fn http_status_from(ns: &str, url: &str) -> Option<u16> {
    let out = ns_exec(
        ns,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "5",
            url,
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|c| *c != 0)
}

/// A process started inside a namespace; killed (by its PID) and reaped when dropped.
#[derive(Debug)]
pub struct NsChild {
    child: Child,
}

impl NsChild {
    /// OS process id (`ip netns exec` execs the command, so this is the command's own PID).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Access to the underlying child (for its stdout/stderr pipes or exit status).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python script run in a namespace, talked to by lines: its stdin is a pipe and every line it
/// prints arrives on a channel (read by a helper thread); killed and reaped when dropped.
#[derive(Debug)]
pub struct NsScript {
    child: NsChild,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl NsScript {
    /// Runs `python3 -c script args...` in namespace `ns` (stderr goes to the test's output).
    pub fn start(ns: &str, script: &str, args: &[&str]) -> Result<NsScript, String> {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", script])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start a python client in {ns}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(NsScript {
            child: NsChild { child },
            stdin,
            lines,
        })
    }

    /// The next line the script prints, waiting at most `timeout`.
    pub fn line(&self, timeout: Duration) -> Result<String, String> {
        self.lines
            .recv_timeout(timeout)
            .map_err(|_| format!("the client printed nothing within {timeout:?}"))
    }

    /// Writes `line` and a newline to the script's stdin.
    pub fn send_line(&mut self, line: &str) -> Result<(), String> {
        use std::io::Write;
        writeln!(self.stdin, "{line}").map_err(|e| format!("client gone: {e}"))?;
        self.stdin.flush().map_err(|e| format!("client gone: {e}"))
    }

    /// True while the script runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}

/// Starts `cmd` in namespace `ns` with stdin closed and stdout/stderr appended to `log`.
pub fn spawn_in_ns(ns: &str, cmd: &[&str], log: &std::path::Path) -> std::io::Result<NsChild> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    Ok(NsChild { child })
}

/// Sends one UDP datagram `data` from `ns` to `to` (`IP:PORT`) and returns the reply (2 s limit).
pub fn udp_from(ns: &str, to: &str, data: &str) -> Result<String, String> {
    let script = scripts_dir().join("echo.py");
    let script = script.to_string_lossy();
    ns_exec_ok(
        ns,
        &["python3", &script, "udp-client", "--to", to, "--data", data],
    )
    .map(|s| s.trim_end().to_string())
}

/// Sends `data` over a new TCP connection from `ns` to `to`, half-closes, returns everything read.
pub fn tcp_from(ns: &str, to: &str, data: &str) -> Result<String, String> {
    let script = scripts_dir().join("echo.py");
    let script = script.to_string_lossy();
    ns_exec_ok(
        ns,
        &["python3", &script, "tcp-client", "--to", to, "--data", data],
    )
    .map(|s| s.trim_end().to_string())
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || cond().then_some(())).is_some()
}

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Names of the existing network namespaces that start with `<prefix>-`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("cannot run `ip netns list`");
    let want = format!("{prefix}-");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&want))
        .map(str::to_string)
        .collect()
}

/// One answer of a backend server: `backend=<name> client=<ip>:<port> dst=<ip> dport=<port>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendReply {
    /// Backend role name (`b1`, `b2`, ...).
    pub backend: String,
    /// Source address the backend saw.
    pub client_ip: String,
    /// Source port the backend saw.
    pub client_port: u16,
    /// Local address the request arrived on (the DIP, or the VIP with floating IP).
    pub dst: String,
    /// Local port the request arrived on.
    pub dport: u16,
}

impl BackendReply {
    /// Parses one answer line; `None` when it is not in the servers' format.
    pub fn parse(line: &str) -> Option<Self> {
        let mut backend = None;
        let mut client = None;
        let mut dst = None;
        let mut dport = None;
        for field in line.split_whitespace() {
            let (k, v) = field.split_once('=')?;
            match k {
                "backend" => backend = Some(v.to_string()),
                "client" => client = Some(v.rsplit_once(':')?),
                "dst" => dst = Some(v.to_string()),
                "dport" => dport = v.parse().ok(),
                _ => {}
            }
        }
        let (cip, cport) = client?;
        Some(Self {
            backend: backend?,
            client_ip: cip.to_string(),
            client_port: cport.parse().ok()?,
            dst: dst?,
            dport: dport?,
        })
    }
}

/// Sends `count` frames of a `scripts/netns/crafted.py` kind from the router's LAN interface
/// straight to the MUX's MAC (to the VIP, port 80), with `extra` arguments: the script's stdout.
pub fn crafted_send(
    topo: &Topology,
    kind: &str,
    count: u64,
    extra: &[&str],
) -> Result<String, String> {
    let script = scripts_dir()
        .join("crafted.py")
        .to_string_lossy()
        .into_owned();
    let count = count.to_string();
    let mut args = vec![
        "/usr/bin/python3",
        &script,
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
    ];
    args.extend_from_slice(extra);
    let out = ns_exec(&topo.ns("router"), &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "crafted.py send {kind} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Free 2 MiB hugepages (`HugePages_Free` of /proc/meminfo; 0 when unreadable).
pub fn hugepages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("HugePages_Free:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Kills and reaps a child process on drop (by its own PID, nothing else).
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded, 30 s) until the `vipmux pktgen` in `gen` listens on its memif socket `sock`.
pub fn wait_pktgen_listening(gen: &mut Reaper, sock: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        if let Some(st) = gen.0.try_wait().expect("wait pktgen") {
            panic!("pktgen exited before listening: {st}");
        }
        assert!(Instant::now() < deadline, "no memif socket after 30 s");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most `limit`; `check` runs between polls and may panic) for the `vipmux pktgen
/// --json` in `gen` to exit successfully, and returns its summary.
pub fn pktgen_summary(
    gen: &mut Reaper,
    limit: Duration,
    mut check: impl FnMut(),
) -> serde_json::Value {
    use std::io::Read;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = gen.0.try_wait().expect("wait pktgen") {
            break st;
        }
        check();
        assert!(
            Instant::now() < deadline,
            "pktgen did not finish in {limit:?}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    if let Some(mut stdout) = gen.0.stdout.take() {
        stdout.read_to_string(&mut out).expect("read stdout");
    }
    assert!(status.success(), "pktgen failed: {status}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("pktgen summary: {e}: {out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backend_reply() {
        let r = BackendReply::parse("backend=b2 client=10.9.0.10:40000 dst=10.1.0.12 dport=80\n")
            .expect("parse");
        assert_eq!(r.backend, "b2");
        assert_eq!(r.client_ip, "10.9.0.10");
        assert_eq!(r.client_port, 40000);
        assert_eq!(r.dst, "10.1.0.12");
        assert_eq!(r.dport, 80);
        assert!(BackendReply::parse("hello").is_none());
    }

    #[test]
    fn wait_until_is_bounded() {
        assert!(!wait_until(Duration::from_millis(50), || false));
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
    }
}
