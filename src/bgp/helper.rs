//! `vipmux bgp-helper`: the process ExaBGP runs as its API process. It bridges vipmux's control
//! socket and the daemon: every [`POLL_INTERVAL`] it reports the sessions' states (read from
//! ExaBGP's JSON messages on stdin) and what it has announced, receives the wanted routes, and
//! writes the difference as API commands on stdout.
//!
//! It exits when ExaBGP closes its stdin, and when vipmux stops answering (after
//! [`MAX_FAILURES`] consecutive failed requests once it has answered, [`MAX_STARTUP_FAILURES`]
//! before): ExaBGP, configured to terminate with its helper, then closes the sessions.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use super::exabgp::{parse_state, ExaBgp};
use super::{BgpSpeaker, Route};
use crate::control::socket::{BgpReport, ControlClient, Request};

/// How often the helper asks vipmux for the wanted routes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Consecutive failed requests after which the helper exits (vipmux is gone).
pub const MAX_FAILURES: u32 = 5;
/// Consecutive failed requests tolerated before vipmux first answers (start-up).
pub const MAX_STARTUP_FAILURES: u32 = 300;
/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the helper against the control socket at `socket`; the process exit code.
pub fn run(socket: &Path) -> i32 {
    let lines = spawn_stdin_reader();
    let stdout = std::io::stdout();
    let mut speaker = ExaBgp::new(stdout.lock());
    let mut sessions: BTreeMap<String, String> = BTreeMap::new();
    let (mut failures, mut answered) = (0u32, false);
    loop {
        if !read_states(&lines, &mut sessions) {
            eprintln!("vipmux bgp-helper: the daemon closed stdin; exiting");
            return 0;
        }
        let report = BgpReport {
            sessions: sessions.clone(),
            announced: speaker.announced(),
        };
        match ask(socket, report) {
            Ok(wanted) => {
                failures = 0;
                answered = true;
                if let Err(e) = speaker.apply(&wanted) {
                    eprintln!("vipmux bgp-helper: cannot write to the daemon: {e}");
                    return 1;
                }
            }
            Err(e) => {
                failures += 1;
                let limit = if answered {
                    MAX_FAILURES
                } else {
                    MAX_STARTUP_FAILURES
                };
                if failures >= limit {
                    eprintln!("vipmux bgp-helper: vipmux does not answer ({e}); exiting");
                    return 1;
                }
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// One `bgp` request: the wanted routes.
fn ask(socket: &Path, report: BgpReport) -> Result<Vec<Route>, String> {
    let data = ControlClient::connect_with_timeout(socket, REQUEST_TIMEOUT)
        .and_then(|mut c| c.request(&Request::Bgp(report)))
        .map_err(|e| e.to_string())?;
    let wanted = data.get("wanted").cloned().unwrap_or_default();
    serde_json::from_value(wanted).map_err(|e| format!("bad answer: {e}"))
}

/// Applies the state messages received so far; false once stdin is closed.
fn read_states(lines: &Receiver<String>, sessions: &mut BTreeMap<String, String>) -> bool {
    loop {
        match lines.try_recv() {
            Ok(line) => {
                if let Some((peer, state)) = parse_state(&line) {
                    sessions.insert(peer, state);
                }
            }
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

/// A thread forwarding stdin's lines; the channel closes at EOF.
fn spawn_stdin_reader() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
