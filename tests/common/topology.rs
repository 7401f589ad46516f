//! `Topology`: a guard around `scripts/netns/<name>.sh up|down` that always tears down (also on panic).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use super::{scripts_dir, unique_prefix};

/// A running namespace topology. `down` runs when the guard is dropped, including during a panic.
#[derive(Debug)]
pub struct Topology {
    script: String,
    prefix: String,
    state: PathBuf,
    vars: BTreeMap<String, String>,
    up: bool,
}

impl Topology {
    /// nftables counters in the router, in table `table`: reply packets from VIP:80 entering on
    /// the LAN side (eth1), first those whose source MAC is the MUX's, then all of them (the
    /// one-arm topology; replies that bypass the MUX show as the difference).
    pub fn install_reply_counters(&self, table: &str) -> Result<(), String> {
        let rules = format!(
            "table ip {table} {{\n  chain pre {{\n    type filter hook prerouting priority -300; policy accept;\n    iifname \"eth1\" ip saddr {vip} tcp sport 80 ether saddr {mac} counter\n    iifname \"eth1\" ip saddr {vip} tcp sport 80 counter\n  }}\n}}\n",
            vip = self.get("VIP"),
            mac = self.get("MUX_MAC"),
        );
        let file = self.state_dir().join(format!("{table}.nft"));
        std::fs::write(&file, rules).map_err(|e| e.to_string())?;
        super::ns_exec_ok(&self.ns("router"), &["nft", "-f", &file.to_string_lossy()]).map(|_| ())
    }

    /// (via the MUX's MAC, total) reply packets counted by [`Self::install_reply_counters`].
    pub fn reply_counters(&self, table: &str) -> Result<(u64, u64), String> {
        let out = super::ns_exec_ok(&self.ns("router"), &["nft", "list", "table", "ip", table])?;
        let counts: Vec<u64> = out
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "packets")
            .filter_map(|w| w[1].parse().ok())
            .collect();
        match counts.as_slice() {
            [mux, total] => Ok((*mux, *total)),
            _ => Err(format!("unexpected nft listing:\n{out}")),
        }
    }

    /// Brings up `scripts/netns/<script>.sh up <args>` under a fresh unique prefix.
    ///
    /// On failure the script has already torn down what it made; the error carries its stderr.
    pub fn up(script: &str, args: &[&str]) -> Result<Self, String> {
        cleanup_stale_once();
        let prefix = unique_prefix();
        let state = std::env::temp_dir().join("vipmux-netns").join(&prefix);
        let mut topo = Topology {
            script: script.to_string(),
            prefix,
            state,
            vars: BTreeMap::new(),
            up: true,
        };
        let out = topo
            .command(&format!("{script}.sh"))
            .arg("up")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {script}.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script}.sh up {} failed ({}):\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        topo.vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(topo)
    }

    /// A command for one of the netns scripts with this topology's prefix and state directory set.
    fn command(&self, script_file: &str) -> Command {
        let mut c = Command::new("bash");
        c.arg(scripts_dir().join(script_file))
            .env("VIPMUX_NS_PREFIX", &self.prefix)
            .env("VIPMUX_NS_STATE", &self.state)
            .env("VIPMUX_NS_OWNER_PID", std::process::id().to_string());
        c
    }

    /// The name prefix of every namespace of this topology.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The state directory (PIDs, server logs, health flags, topology.env).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Full namespace name of a role (`client`, `router`, `lan`, `mux`, `b1`, ...).
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// A value printed by `up` (e.g. `VIP`, `MUX_IF`, `CLIENT_IP`); panics when the key is unknown.
    pub fn get(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .unwrap_or_else(|| panic!("topology {} has no key {key}", self.script))
    }

    /// A space-separated value printed by `up` (e.g. `BACKEND_IPS`) as a list.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Every KEY=VALUE printed by `up`.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// Runs `scripts/netns/backend.sh <cmd> <role> <args>` against this topology; stdout on success.
    pub fn backend(&self, cmd: &str, role: &str, args: &[&str]) -> Result<String, String> {
        let out = self
            .command("backend.sh")
            .arg(cmd)
            .arg(role)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run backend.sh: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "backend.sh {cmd} {role} {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Runs this topology's own script with `args` (e.g. `scale-out.sh mux-kill 1`) and the extra
    /// environment `env`; stdout on success.
    pub fn script(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
        let mut c = self.command(&format!("{}.sh", self.script));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c
            .output()
            .map_err(|e| format!("cannot run {}.sh: {e}", self.script))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}.sh {} failed ({}): {}",
                self.script,
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Tears the topology down now and reports whether that worked (Drop then does nothing).
    pub fn down(mut self) -> Result<(), String> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), String> {
        if !self.up {
            return Ok(());
        }
        self.up = false;
        let out = self
            .command(&format!("{}.sh", self.script))
            .arg("down")
            .output()
            .map_err(|e| format!("cannot run {}.sh down: {e}", self.script))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}.sh down failed ({}): {}",
                self.script,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Once per process: tear down topologies left behind by test processes that no longer exist.
fn cleanup_stale_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let out = Command::new("bash")
            .arg(scripts_dir().join("cleanup-stale.sh"))
            .output();
        if let Ok(out) = out {
            if !out.status.success() {
                eprintln!(
                    "cleanup-stale.sh failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    });
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("{e}");
        }
    }
}
