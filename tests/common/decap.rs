//! The user-space decapsulating receivers of the encapsulation tests (`scripts/netns/decap.py` in
//! backend namespaces: the kernel here has no ipip, ip6tnl or fou device), and the packets their
//! TUN devices delivered.

use std::path::PathBuf;
use std::time::Duration;

use super::{ns_exec_ok, scripts_dir, spawn_in_ns, wait_until, NsChild, Topology};

/// The TUN device each receiver creates.
pub const DEV: &str = "decap0";

/// One receiver per backend, killed (by PID) when the list is dropped.
pub struct Receivers {
    children: Vec<(String, NsChild, PathBuf)>,
}

impl Receivers {
    /// Starts `decap.py <args>` in the namespace of every backend of `roles` and waits (bounded)
    /// until each says `ready`.
    pub fn start(topo: &Topology, roles: &[&str], args: &[String]) -> Result<Self, String> {
        let script = scripts_dir().join("decap.py");
        let script = script.to_string_lossy().into_owned();
        let mut cmd = vec!["python3".to_string(), script];
        cmd.extend(args.iter().cloned());
        cmd.extend(["--dev".to_string(), DEV.to_string()]);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let mut children = Vec::new();
        for role in roles {
            let log = topo.state_dir().join(format!("decap-{role}.log"));
            let child = spawn_in_ns(&topo.ns(role), &cmd, &log)
                .map_err(|e| format!("start decap.py in {role}: {e}"))?;
            children.push((role.to_string(), child, log));
        }
        let mut me = Receivers { children };
        for i in 0..me.children.len() {
            let ready = wait_until(Duration::from_secs(10), || {
                let (_, child, log) = &mut me.children[i];
                !child.is_running() || read(log).contains("ready")
            });
            let (role, child, log) = &mut me.children[i];
            if !ready || !child.is_running() {
                return Err(format!(
                    "decap.py in {role} not ready:\n{}",
                    read(log).trim()
                ));
            }
        }
        Ok(me)
    }

    /// Sends SIGTERM to every receiver, waits (bounded) for each to exit and checks from the
    /// counts it prints that it rejected nothing; returns them.
    pub fn stop(&mut self) -> Result<String, String> {
        for (role, child, _) in &mut self.children {
            let pid = child.id().to_string();
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .map_err(|e| format!("kill {role}'s decap.py: {e}"))?;
            if !status.success() {
                return Err(format!("kill -TERM {pid} ({role}) failed: {status}"));
            }
        }
        let mut summary = Vec::new();
        for (role, child, log) in &mut self.children {
            if !wait_until(Duration::from_secs(5), || !child.is_running()) {
                return Err(format!("decap.py in {role} ignored SIGTERM"));
            }
            let text = read(log);
            let counts = text
                .lines()
                .find(|l| l.starts_with("decapsulated="))
                .ok_or_else(|| format!("decap.py in {role} printed no counts:\n{text}"))?;
            if !counts.ends_with(" rejected=0") {
                return Err(format!("decap.py in {role} rejected packets: {counts}"));
            }
            summary.push(format!("{role}: {counts}"));
        }
        Ok(summary.join(", "))
    }

    /// Every receiver's log (for a failure message).
    pub fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(role, _, log)| format!("{role}: {}", read(log).trim()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Packets the kernel received on a backend's TUN device (what its receiver wrote).
pub fn tun_rx_packets(topo: &Topology, role: &str) -> Result<u64, String> {
    let path = format!("/sys/class/net/{DEV}/statistics/rx_packets");
    let out = ns_exec_ok(&topo.ns(role), &["cat", &path])?;
    out.trim()
        .parse()
        .map_err(|e| format!("{role}: rx_packets {out:?}: {e}"))
}
