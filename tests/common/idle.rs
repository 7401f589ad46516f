//! The idle client of the idle-timeout tests (inbound rules and outbound SNAT): one TCP
//! connection that asks `whoami`, then waits in `recv` to see how the idle timeout ends it.

use std::time::Duration;

use super::{BackendReply, NsScript};

/// The client: connects to argv[1], asks `whoami`, prints `READY <local port> <answer>`, then
/// blocks in `recv` for at most argv[2] seconds and prints `RESET|EOF|DATA|TIMEOUT <elapsed>`.
/// With argv[3] == "late" it then waits for a line on stdin, sends `late\n` on the same
/// connection and prints `LATE_REPLY|LATE_EOF|LATE_RESET|LATE_TIMEOUT` (3 s limit).
pub const IDLE_CLIENT: &str = r#"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
wait = float(sys.argv[2])
late = len(sys.argv) > 3 and sys.argv[3] == "late"
try:
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"whoami\n")
    buf = b""
    while b"\n" not in buf:
        d = s.recv(4096)
        if not d:
            print("ERR eof before the whoami answer", flush=True)
            sys.exit(1)
        buf += d
except OSError as e:
    print(f"ERR {e}", flush=True)
    sys.exit(1)
print("READY", s.getsockname()[1], buf.split(b"\n")[0].decode(), flush=True)
t0 = time.monotonic()
s.settimeout(wait)
try:
    d = s.recv(4096)
    print("DATA" if d else "EOF", f"{time.monotonic() - t0:.3f}", flush=True)
    sys.exit(0)
except ConnectionResetError:
    print("RESET", f"{time.monotonic() - t0:.3f}", flush=True)
    sys.exit(0)
except socket.timeout:
    print("TIMEOUT", f"{time.monotonic() - t0:.3f}", flush=True)
if late:
    sys.stdin.readline()
    s.settimeout(3)
    try:
        s.sendall(b"late\n")
        d = s.recv(4096)
        print("LATE_REPLY" if d else "LATE_EOF", flush=True)
    except ConnectionResetError:
        print("LATE_RESET", flush=True)
    except socket.timeout:
        print("LATE_TIMEOUT", flush=True)
"#;

/// The window, in seconds after the client's clock started, in which the idle client's RST must
/// come for an idle timeout of `idle_secs`: never before the timeout (50 ms absorbs rounding:
/// the flow's last packet, the client's ACK, comes after its clock started), and at most
/// 2.5 s after it. vipmux's own bound is 1.5 s (its flow clock counts whole seconds and expiry
/// needs more than the timeout: up to 1 s; the sweep at its shortest period: 0.5 s); the rest is
/// margin on a loaded host for a delayed ACK, a descheduled worker that leaves part of a sweep to
/// the next pass, and the client's own wake-up. With the tests' 3 s timeout, a reset at twice the
/// timeout fails.
pub fn reset_window(idle_secs: u64) -> (f64, f64) {
    (idle_secs as f64 - 0.05, idle_secs as f64 + 2.5)
}

/// The idle client running in the client namespace.
pub struct IdleClient(NsScript);

impl IdleClient {
    /// Starts the client in `ns` toward `to`, reading for at most `wait_secs`; `late`: it
    /// sends a late segment when told ([`IdleClient::go_late`]).
    pub fn start(ns: &str, to: &str, wait_secs: u64, late: bool) -> Result<IdleClient, String> {
        let wait = wait_secs.to_string();
        let late = if late { "late" } else { "" };
        NsScript::start(ns, IDLE_CLIENT, &[to, &wait, late]).map(IdleClient)
    }

    /// The next line the client prints, waiting at most `timeout`.
    pub fn line(&self, timeout: Duration) -> Result<String, String> {
        self.0.line(timeout)
    }

    /// Lets the client send its late segment.
    pub fn go_late(&mut self) -> Result<(), String> {
        self.0.send_line("")
    }
}

/// `READY <port> <whoami answer>` → (the client's port, the answer).
pub fn parse_ready(line: &str) -> Result<(u16, BackendReply), String> {
    let rest = line
        .strip_prefix("READY ")
        .ok_or_else(|| format!("client: {line}"))?;
    let (port, answer) = rest
        .split_once(' ')
        .ok_or_else(|| format!("client: {line}"))?;
    let port = port.parse().map_err(|_| format!("client: {line}"))?;
    let reply = BackendReply::parse(answer).ok_or_else(|| format!("whoami answer {answer:?}"))?;
    Ok((port, reply))
}

/// `WORD <elapsed>` → (word, elapsed seconds).
pub fn parse_outcome(line: &str) -> Result<(String, f64), String> {
    let (word, secs) = line
        .split_once(' ')
        .ok_or_else(|| format!("client: {line}"))?;
    let secs = secs.parse().map_err(|_| format!("client: {line}"))?;
    Ok((word.to_string(), secs))
}
