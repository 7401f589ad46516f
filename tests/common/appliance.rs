//! The appliance under test: configuration files for the namespace topologies, and [`Appliance`], a
//! guard around `vipmux run` in the topology's MUX namespace with its control surfaces
//! (`status --json`, the `counters` socket command, `reload`, the metrics endpoint).
//!
//! ```ignore
//! let topo = Topology::up("one-arm", &["--return", "gateway"])?;
//! let cfg = ConfigBuilder::one_arm().pool_of(&topo, "web", &["b1", "b2", "b3"]).probe_http("http-80", 80, 1, 2)
//!     .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "");
//! let app = Appliance::start(&topo, &cfg.build(&topo))?;
//! app.wait_members_healthy(&["b1", "b2", "b3"], Duration::from_secs(30))?;
//! ```
//!
//! Every wait is a bounded poll for a condition. Dropping an [`Appliance`] sends SIGTERM, waits
//! (bounded) and then SIGKILLs; the topology guard then tears the namespaces down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vipmux::control::{ControlClient, Request};

use super::{ns_exec, ns_exec_ok, spawn_in_ns, wait_for, wait_until, NsChild, NsScript, Topology};

/// The vipmux binary built for this test run.
pub const VIPMUX: &str = env!("CARGO_BIN_EXE_vipmux");

/// Metrics listen address written into every configuration (the MUX namespace's own loopback).
pub const METRICS_ADDR: &str = "127.0.0.1:19469";

/// How long `start` waits for `vipmux status` to report forwarding.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `Drop`/`stop` wait after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds a vipmux configuration as a TOML document: the fixed `[appliance]`, `[dataplane]`,
/// `[control]` and `[[interfaces]]` parts for a topology, plus frontends, pools, probes and rules
/// added through the helpers (or as TOML fragments), serialized by the `toml` crate.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    two_arm: bool,
    appliance_extra: toml::Table,
    profile: Option<PathBuf>,
    /// Entries of the arrays of tables (`backend_pools`, `probes`, ...), in the order added.
    body: Vec<(String, toml::Table)>,
    frontend_written: bool,
    workers: usize,
    /// The one-arm interface's DPDK port (`net_af_packet0` unless set).
    data_port: String,
}

/// Parses a TOML fragment of key/value lines (e.g. `dsr_encapsulation = "none"`).
fn fragment(text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("not a TOML fragment: {text:?}: {e}"))
}

/// A table of `(key, value)` pairs.
fn table<const N: usize>(pairs: [(&str, toml::Value); N]) -> toml::Table {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A `[[probes]]` table: `protocol` on `port` every `interval` seconds, `threshold` answers.
fn probe_table(
    name: &str,
    protocol: &str,
    port: u16,
    interval: u32,
    threshold: u32,
) -> toml::Table {
    table([
        ("name", name.into()),
        ("protocol", protocol.into()),
        ("port", i64::from(port).into()),
        ("interval_seconds", i64::from(interval).into()),
        ("probe_threshold", i64::from(threshold).into()),
    ])
}

/// The start of a rule table: `name`, on the default frontend `fe`, for `protocol`.
fn rule_on_fe(name: &str, protocol: &str) -> toml::Table {
    table([
        ("name", name.into()),
        ("frontend", "fe".into()),
        ("protocol", protocol.into()),
    ])
}

impl ConfigBuilder {
    /// A configuration for the one-arm topology: one interface `dc` (`net_af_packet0`,
    /// 10.1.0.2/24, gateway 10.1.0.1) and the frontend `fe` on the VIP 10.1.0.100.
    pub fn one_arm() -> Self {
        Self::new(false)
    }

    /// The one-arm NAT setup: pool `web` of b1..b3, an HTTP probe on port 80 and the rule `web`
    /// for TCP 80.
    pub fn one_arm_web() -> Self {
        Self::one_arm()
            .pool("web", &["b1", "b2", "b3"], "")
            .probe_http("http-80", 80, 1, 2)
            .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), "")
    }

    /// The one-arm floating-IP (DSR) setup: pool `web` of b1..b3 with `pool_extra` (its delivery,
    /// e.g. `dsr_encapsulation = "none"`), an HTTP probe on port 80, and floating-IP rules for
    /// TCP 80 and UDP 7000.
    pub fn one_arm_floating(pool_extra: &str) -> Self {
        let floating = "enable_floating_ip = true";
        Self::one_arm()
            .pool("web", &["b1", "b2", "b3"], pool_extra)
            .probe_http("http-80", 80, 1, 2)
            .lb_rule("web", "tcp", 80, 80, "web", Some("http-80"), floating)
            .lb_rule(
                "echo-udp",
                "udp",
                7000,
                7000,
                "web",
                Some("http-80"),
                floating,
            )
    }

    /// A configuration for the two-arm topology: interfaces `client` (`net_af_packet0`,
    /// 10.9.0.2/24) and `dc` (`net_af_packet1`, 10.1.0.2/24), frontend `fe` on 10.9.0.100.
    pub fn two_arm() -> Self {
        Self::new(true)
    }

    fn new(two_arm: bool) -> Self {
        ConfigBuilder {
            two_arm,
            appliance_extra: toml::Table::new(),
            profile: None,
            body: Vec::new(),
            frontend_written: false,
            workers: 1,
            data_port: "net_af_packet0".into(),
        }
    }

    /// Forwarding workers (`[dataplane] workers`; 1 unless set). With more than one, the MUX's
    /// `net_af_packet` ports get one queue pair per worker (`qpairs`, kernel fanout), so a flow's
    /// two directions may arrive on different workers and meet through the hand-off.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// The one-arm interface's DPDK port instead of `net_af_packet0` (e.g. `net_tap0` for
    /// [`Appliance::start_on_tap`]).
    pub fn data_port(mut self, port: &str) -> Self {
        self.data_port = port.into();
        self
    }

    /// Use the CI DPDK profile file (`dpdk-config/ci-af-packet.toml`) instead of the built-in one
    /// (one-arm only: the file names one port).
    pub fn with_ci_profile(mut self) -> Self {
        self.profile =
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("dpdk-config/ci-af-packet.toml"));
        self
    }

    /// Extra keys for the `[appliance]` table, as TOML (e.g. `missing_flow = "drop"`).
    pub fn appliance(mut self, lines: &str) -> Self {
        self.appliance_extra.extend(fragment(lines));
        self
    }

    /// Adds a TOML fragment of arrays of tables (`[[frontends]]`, `[[backend_pools]]`, ...).
    pub fn raw(mut self, toml: &str) -> Self {
        for (key, value) in fragment(toml) {
            let toml::Value::Array(entries) = value else {
                panic!("raw fragment: `{key}` is not an array of tables");
            };
            for e in entries {
                let toml::Value::Table(t) = e else {
                    panic!("raw fragment: an entry of `{key}` is not a table");
                };
                self = self.entry(&key, t);
            }
        }
        self
    }

    /// Appends one entry to the array of tables `array`.
    fn entry(mut self, array: &str, t: toml::Table) -> Self {
        self.body.push((array.to_owned(), t));
        self
    }

    /// A `[[backend_pools]]` named `name` of the topology's backends `roles` (`b1`, ...), each a
    /// member of the same name; `extra` is TOML for the table (e.g. `dsr_encapsulation = "none"`).
    pub fn pool(self, name: &str, roles: &[&str], extra: &str) -> Self {
        let members: Vec<toml::Value> = roles
            .iter()
            .map(|r| table([("name", (*r).into()), ("address", backend_ip(r).into())]).into())
            .collect();
        let mut t = table([("name", name.into()), ("members", members.into())]);
        t.extend(fragment(extra));
        self.entry("backend_pools", t)
    }

    /// An HTTP probe `GET /health` on `port`.
    pub fn probe_http(self, name: &str, port: u16, interval: u32, threshold: u32) -> Self {
        let mut t = probe_table(name, "http", port, interval, threshold);
        t.insert("request_path".into(), "/health".into());
        self.entry("probes", t)
    }

    /// A TCP (handshake) probe on `port`.
    pub fn probe_tcp(self, name: &str, port: u16, interval: u32, threshold: u32) -> Self {
        let t = probe_table(name, "tcp", port, interval, threshold);
        self.entry("probes", t)
    }

    /// A `[[load_balancing_rules]]` on frontend `fe`; `extra` is TOML for the table
    /// (e.g. `load_distribution = "source_ip"`).
    #[allow(clippy::too_many_arguments)]
    pub fn lb_rule(
        self,
        name: &str,
        protocol: &str,
        frontend_port: u16,
        backend_port: u16,
        pool: &str,
        probe: Option<&str>,
        extra: &str,
    ) -> Self {
        let mut t = rule_on_fe(name, protocol);
        t.extend(table([
            ("frontend_port", i64::from(frontend_port).into()),
            ("backend_port", i64::from(backend_port).into()),
            ("backend_pool", pool.into()),
        ]));
        if let Some(p) = probe {
            t.insert("probe".into(), p.into());
        }
        t.extend(fragment(extra));
        self.entry("load_balancing_rules", t)
    }

    /// An `[[inbound_nat_rules]]` on frontend `fe` to one member of `pool`.
    pub fn nat_rule_member(
        self,
        name: &str,
        protocol: &str,
        frontend_port: u16,
        pool: &str,
        member: &str,
        backend_port: u16,
    ) -> Self {
        let mut t = rule_on_fe(name, protocol);
        t.extend(table([
            ("frontend_port", i64::from(frontend_port).into()),
            (
                "target",
                table([("pool", pool.into()), ("member", member.into())]).into(),
            ),
            ("backend_port", i64::from(backend_port).into()),
        ]));
        self.entry("inbound_nat_rules", t)
    }

    /// A port-range `[[inbound_nat_rules]]` on frontend `fe` over `pool`.
    pub fn nat_rule_range(
        self,
        name: &str,
        protocol: &str,
        start: u16,
        end: u16,
        pool: &str,
        backend_port: u16,
    ) -> Self {
        let mut t = rule_on_fe(name, protocol);
        t.extend(table([
            ("frontend_port_range_start", i64::from(start).into()),
            ("frontend_port_range_end", i64::from(end).into()),
            ("backend_pool", pool.into()),
            ("backend_port", i64::from(backend_port).into()),
        ]));
        self.entry("inbound_nat_rules", t)
    }

    /// Leave out the default frontend `fe` (the fragments then define their own frontends).
    pub fn without_default_frontend(mut self) -> Self {
        self.frontend_written = true;
        self
    }

    /// The configuration text for `topo`, with the control socket in its state directory.
    pub fn build(&self, topo: &Topology) -> String {
        self.build_with_socket(&socket_path(topo))
    }

    /// The configuration text with the control socket at `socket`.
    pub fn build_with_socket(&self, socket: &Path) -> String {
        toml::to_string(&self.document(socket)).expect("serialize the configuration")
    }

    /// The configuration document with the control socket at `socket`.
    pub fn document(&self, socket: &Path) -> toml::Table {
        let mut appliance = table([("name", "e2e".into())]);
        appliance.extend(self.appliance_extra.clone());
        let mut dataplane = toml::Table::new();
        if let Some(p) = &self.profile {
            dataplane.insert("dpdk_profile".into(), p.display().to_string().into());
        }
        dataplane.insert("workers".into(), (self.workers as i64).into());
        dataplane.insert("flow_table_capacity".into(), 65536.into());
        let control = table([
            ("socket", socket.display().to_string().into()),
            ("metrics", METRICS_ADDR.into()),
        ]);
        let mut doc = table([
            ("appliance", appliance.into()),
            ("dataplane", dataplane.into()),
            ("control", control.into()),
        ]);
        let mut arrays: Vec<(String, toml::Table)> = self.interfaces();
        if !self.frontend_written {
            let (vip, interface) = if self.two_arm {
                ("10.9.0.100", "client")
            } else {
                ("10.1.0.100", "dc")
            };
            let fe = table([
                ("name", "fe".into()),
                ("address", vip.into()),
                ("interface", interface.into()),
            ]);
            arrays.push(("frontends".into(), fe));
        }
        arrays.extend(self.body.iter().cloned());
        for (array, t) in arrays {
            let entries = doc
                .entry(array)
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            entries
                .as_array_mut()
                .expect("an array of tables")
                .push(t.into());
        }
        doc
    }

    /// The `[[interfaces]]` of the topology.
    fn interfaces(&self) -> Vec<(String, toml::Table)> {
        let iface = |name: &str, port: &str, address: &str| {
            table([
                ("name", name.into()),
                ("port", port.into()),
                ("address", address.into()),
            ])
        };
        if self.two_arm {
            vec![
                (
                    "interfaces".into(),
                    iface("client", "net_af_packet0", "10.9.0.2/24"),
                ),
                (
                    "interfaces".into(),
                    iface("dc", "net_af_packet1", "10.1.0.2/24"),
                ),
            ]
        } else {
            let mut dc = iface("dc", &self.data_port, "10.1.0.2/24");
            dc.insert("gateway".into(), "10.1.0.1".into());
            vec![("interfaces".into(), dc)]
        }
    }
}

/// Address of backend role `bI` in both topologies: 10.1.0.(10+I).
pub fn backend_ip(role: &str) -> String {
    let i: u32 = role
        .strip_prefix('b')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a backend role: {role}"));
    format!("10.1.0.{}", 10 + i)
}

/// The control socket path used for `topo` (in its state directory).
pub fn socket_path(topo: &Topology) -> PathBuf {
    topo.state_dir().join("vipmux.sock")
}

/// A running `vipmux run` in the topology's MUX namespace. Dropped: SIGTERM, bounded wait, SIGKILL.
#[derive(Debug)]
pub struct Appliance {
    child: Option<NsChild>,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    mux_ns: String,
}

/// `[dataplane] workers` of a configuration text (1 when absent or unreadable).
fn configured_workers(config_text: &str) -> i64 {
    config_text
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("dataplane")?.get("workers")?.as_integer())
        .unwrap_or(1)
        .max(1)
}

impl Appliance {
    /// Writes `config_text` to the topology's state directory as `vipmux.toml`, starts vipmux in
    /// `<prefix>-mux` with one `net_af_packet` vdev per MUX interface, and waits (bounded) until
    /// `vipmux status` exits 0 (forwarding). On failure the error carries the vipmux log.
    pub fn start(topo: &Topology, config_text: &str) -> Result<Appliance, String> {
        Appliance::start_wrapped(topo, config_text, &[])
    }

    /// [`Appliance::start`] with vipmux's command line run by `wrapper` (a command that execs
    /// its arguments, e.g. `unshare -m ...`) inside the MUX namespace.
    pub fn start_wrapped(
        topo: &Topology,
        config_text: &str,
        wrapper: &[&str],
    ) -> Result<Appliance, String> {
        let two_arm = topo.vars().contains_key("MUX_BACKEND_IF");
        let qpairs = configured_workers(config_text);
        let ifaces: &[&str] = if two_arm {
            &["MUX_CLIENT_IF", "MUX_BACKEND_IF"]
        } else {
            &["MUX_IF"]
        };
        // One queue pair per worker; with one worker the vdev keeps its defaults.
        let qpairs = if qpairs > 1 {
            format!(",qpairs={qpairs}")
        } else {
            String::new()
        };
        let vdevs = ifaces
            .iter()
            .enumerate()
            .map(|(i, var)| format!("--vdev=net_af_packet{i},iface={}{qpairs}", topo.get(var)))
            .collect::<Vec<_>>();
        Appliance::start_with(topo, config_text, wrapper, &vdevs)
    }

    /// [`Appliance::start`] in the one-arm topology with the MUX interface on a `net_tap` port
    /// (`config_text` names it `net_tap0`, see [`ConfigBuilder::data_port`]): vipmux creates the
    /// TAP `dtap0` in the MUX namespace, with one queue per worker (a multi-queue TAP whose
    /// kernel side picks a queue per flow), and the TAP is bridged to the MUX's veth once
    /// vipmux runs, so the kernel's frames from the LAN reach the port and back.
    pub fn start_on_tap(topo: &Topology, config_text: &str) -> Result<Appliance, String> {
        const TAP: &str = "dtap0";
        const BRIDGE: &str = "dtapbr";
        const TAP_KERNEL_MAC: &str = "02:00:00:00:0d:01";
        let ns = topo.ns("mux");
        let mux_if = topo.get("MUX_IF");
        let disable_v6 = format!("net.ipv6.conf.{BRIDGE}.disable_ipv6=1");
        for cmd in [
            &["ip", "link", "add", BRIDGE, "type", "bridge"][..],
            &["sysctl", "-qw", &disable_v6],
            &["ip", "link", "set", mux_if, "master", BRIDGE],
            &["ip", "link", "set", BRIDGE, "up"],
        ] {
            ns_exec_ok(&ns, cmd)?;
        }
        let vdev = format!("--vdev=net_tap0,iface={TAP}");
        let app = Appliance::start_with(topo, config_text, &[], &[vdev])?;
        // The PMD gives the TAP's kernel side the port's own MAC, which a bridge would take for
        // a local address (frames to the port would end in the bridge's stack): the kernel side
        // gets another one; the TAP hands every frame to the port whatever its destination.
        ns_exec_ok(&ns, &["ip", "link", "set", TAP, "address", TAP_KERNEL_MAC])?;
        ns_exec_ok(&ns, &["ip", "link", "set", TAP, "master", BRIDGE, "up"])?;
        Ok(app)
    }

    /// Starts vipmux (its command line run by `wrapper`) with the EAL arguments `eal` (the data
    /// ports' vdevs) and waits until it is forwarding.
    fn start_with(
        topo: &Topology,
        config_text: &str,
        wrapper: &[&str],
        eal: &[String],
    ) -> Result<Appliance, String> {
        let dir = topo.state_dir();
        let config = dir.join("vipmux.toml");
        std::fs::write(&config, config_text).map_err(|e| format!("write config: {e}"))?;
        let log = dir.join("vipmux.log");
        let mut cmd: Vec<String> = wrapper.iter().map(|a| a.to_string()).collect();
        cmd.extend([
            VIPMUX.into(),
            "run".into(),
            "--config".into(),
            config.display().to_string(),
        ]);
        cmd.extend(eal.iter().map(|a| format!("--eal={a}")));
        let mux_ns = topo.ns("mux");
        // The metrics endpoint listens on the namespace's loopback.
        ns_exec(&mux_ns, &["ip", "link", "set", "lo", "up"]);
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let child = spawn_in_ns(&mux_ns, &args, &log).map_err(|e| format!("start vipmux: {e}"))?;
        let mut app = Appliance {
            child: Some(child),
            socket: socket_path(topo),
            config,
            log,
            mux_ns,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if app.cli(&["status"]).0 {
                return Ok(app);
            }
            if !app.is_running() {
                return Err(format!("vipmux exited during start:\n{}", app.log_text()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "vipmux status never reported forwarding within {START_TIMEOUT:?}:\n{}",
                    app.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Process id of vipmux (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends SIGHUP (reload the configuration file it was started with).
    pub fn sighup(&self) -> Result<(), String> {
        let pid = self.pid().ok_or("vipmux is not running")?;
        let st = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        st.success()
            .then_some(())
            .ok_or_else(|| format!("kill -HUP {pid} failed"))
    }

    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The configuration file the appliance was started with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Everything vipmux wrote to stdout/stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True while the vipmux process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.is_running())
    }

    /// Runs `vipmux <args> --socket S`: (exit success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(VIPMUX)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .expect("run vipmux client");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `vipmux status --json` parsed (also while not forwarding), or why not.
    pub fn status_json(&self) -> Result<Value, String> {
        let (_, out, err) = self.cli(&["status", "--json"]);
        serde_json::from_str(&out).map_err(|e| format!("status --json: {e}: {out} {err}"))
    }

    /// One request on the control socket; the answer's data.
    pub fn request(&self, request: &Request) -> Result<Value, String> {
        ControlClient::connect_with_timeout(&self.socket, Duration::from_secs(10))
            .and_then(|mut c| c.request(request))
            .map_err(|e| format!("control request {request:?}: {e}"))
    }

    /// `vipmux diagnose --json` parsed, or why not.
    pub fn diagnose_json(&self) -> Result<Value, String> {
        let (_, out, err) = self.cli(&["diagnose", "--json"]);
        serde_json::from_str(&out).map_err(|e| format!("diagnose --json: {e}: {out} {err}"))
    }

    /// The aggregated counters (the control socket's `counters` command).
    pub fn counters_json(&self) -> Result<Value, String> {
        self.request(&Request::Counters)
    }

    /// The data path's drop counter for `reason` (e.g. `no_rule`, `no_healthy_backend`).
    pub fn drop_count(&self, reason: &str) -> Result<u64, String> {
        self.counter(&format!("/drops/{reason}"))
    }

    /// The counter at JSON `pointer` of the `counters` command (e.g. `/drops/fragment`), read
    /// once: for a baseline; a value that follows an event is awaited with [`Self::wait_counter`].
    pub fn counter(&self, pointer: &str) -> Result<u64, String> {
        let c = self.counters_json()?;
        c.pointer(pointer)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("no counter {pointer} in {c}"))
    }

    /// Waits (bounded) until the counter at JSON `pointer` of the `counters` command (e.g.
    /// `/drops/fragment`) reads at least `at_least` (a baseline plus what the test caused); that
    /// value. Workers and the slow path publish their counters on a tick, so a value that follows
    /// an event is awaited, not read once. The error says what it should be, the last reading and
    /// all the counters (where the packets went instead).
    pub fn wait_counter(
        &self,
        pointer: &str,
        timeout: Duration,
        at_least: u64,
    ) -> Result<u64, String> {
        wait_for(timeout, || {
            self.counter(pointer).ok().filter(|&v| v >= at_least)
        })
        .ok_or_else(|| {
            let all = self.counters_json().map(|c| c.to_string());
            format!(
                "{pointer} not at least {at_least} within {timeout:?}: {:?}; counters: {}",
                self.counter(pointer),
                all.unwrap_or_else(|e| e)
            )
        })
    }

    /// Worker 0's published runtime: (received, polls, busy polls, busy ns).
    pub fn worker_runtime(&self) -> Result<(u64, u64, u64, u64), String> {
        let c = self.counters_json()?;
        let w = &c["workers"][0];
        let get = |k: &str| {
            w[k].as_u64()
                .ok_or_else(|| format!("no workers[0].{k} in {c}"))
        };
        Ok((
            get("received")?,
            get("polls")?,
            get("busy_polls")?,
            get("busy_ns")?,
        ))
    }

    /// Hand-offs summed over the workers: (sent, received, dropped on a full ring).
    pub fn handoffs(&self) -> Result<(u64, u64, u64), String> {
        let c = self.counters_json()?;
        let workers = c["workers"]
            .as_array()
            .ok_or_else(|| format!("no workers in {c}"))?;
        let sum = |k: &str| workers.iter().filter_map(|w| w[k].as_u64()).sum::<u64>();
        Ok((
            sum("handoff_sent"),
            sum("handoff_received"),
            sum("handoff_full"),
        ))
    }

    /// Checks, for a run with several workers, that flows met their owner through the hand-off
    /// (some frames were handed over, every one arrived, none was dropped on a full ring) and
    /// that `vipmux status` names the mode.
    pub fn check_handoffs(&self) -> Result<(), String> {
        let (ok, out, err) = self.cli(&["status"]);
        if !ok || !out.contains("software-handoff") {
            return Err(format!("status does not say software-handoff: {out}{err}"));
        }
        // Counters are published every 100 ms: wait for the two sides to agree.
        let mut last = (0, 0, 0);
        let agreed = wait_until(Duration::from_secs(5), || {
            last = self.handoffs().unwrap_or_default();
            last.0 > 0 && last.0 == last.1
        });
        if !agreed || last.2 != 0 {
            return Err(format!(
                "hand-offs (sent, received, dropped) = {last:?}: expected sent = received > 0, none dropped"
            ));
        }
        eprintln!("hand-offs: {} frames", last.0);
        self.check_flow_owners()
    }

    /// Checks that every listed flow sits in the table of its owner: the worker the ownership
    /// rule (docs/design.md §6.2) computes from its client endpoint.
    pub fn check_flow_owners(&self) -> Result<(), String> {
        let workers = self.counters_json()?["workers"]
            .as_array()
            .map_or(1, Vec::len);
        let reta = vipmux::balance::Reta::new(workers);
        let flows = self.flows_json()?;
        let rows = flows["flows"].as_array().cloned().unwrap_or_default();
        for f in &rows {
            let client: std::net::SocketAddrV4 = f["client"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("flow without a client: {f}"))?;
            let owner = reta.owner(u32::from(*client.ip()), client.port());
            if f["worker"].as_u64() != Some(owner as u64) {
                return Err(format!("flow held by a worker other than {owner}: {f}"));
            }
        }
        eprintln!("{} flows, each on its owner", rows.len());
        Ok(())
    }

    /// Frames received by the data path (all workers).
    pub fn rx_count(&self) -> Result<u64, String> {
        let c = self.counters_json()?;
        c["received"]
            .as_u64()
            .ok_or_else(|| format!("no received counter in {c}"))
    }

    /// `vipmux reload --file FILE`: the CLI's stdout on success, else its stderr.
    pub fn reload(&self, file: &Path) -> Result<String, String> {
        let (ok, out, err) = self.cli(&["reload", "--file", &file.to_string_lossy()]);
        if ok {
            Ok(out)
        } else {
            Err(format!("{err}{out}"))
        }
    }

    /// Writes `config_text` next to the running config as `name` and reloads it.
    pub fn reload_text(&self, name: &str, config_text: &str) -> Result<String, String> {
        let file = self.config.with_file_name(name);
        std::fs::write(&file, config_text).map_err(|e| format!("write {name}: {e}"))?;
        self.reload(&file)
    }

    /// `vipmux flows --json` parsed.
    pub fn flows_json(&self) -> Result<Value, String> {
        let (ok, out, err) = self.cli(&["flows", "--json"]);
        if !ok {
            return Err(format!("vipmux flows failed: {err}"));
        }
        serde_json::from_str(&out).map_err(|e| format!("flows --json: {e}: {out}"))
    }

    /// Waits (bounded by `timeout`) until no row of `vipmux flows` matches `row` (a flow that
    /// expires does so between its timeout and about 1.5 s after it: whole-second flow clock,
    /// sweep period, so its leaving is awaited, not assumed). The error names `what` and shows
    /// the rows that still matched.
    pub fn wait_flow_gone(
        &self,
        what: &str,
        timeout: Duration,
        row: impl Fn(&Value) -> bool,
    ) -> Result<(), String> {
        let listed = || {
            self.flows_json().map(|f| {
                f["flows"]
                    .as_array()
                    .map(|a| a.iter().filter(|r| row(r)).cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
        };
        if wait_until(timeout, || listed().is_ok_and(|rows| rows.is_empty())) {
            return Ok(());
        }
        Err(format!("{what} never expired: listed {:?}", listed()))
    }

    /// One scrape of the Prometheus endpoint (from inside the MUX namespace).
    pub fn metrics_text(&self) -> Result<String, String> {
        let url = format!("http://{METRICS_ADDR}/metrics");
        let out = ns_exec(&self.mux_ns, &["curl", "-sS", "-m", "2", &url]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "metrics scrape failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The value of the first sample whose line starts with `series` (name plus labels).
    pub fn metric(&self, series: &str) -> Result<f64, String> {
        let text = self.metrics_text()?;
        metric_value(&text, series).ok_or_else(|| format!("no sample {series} in:\n{text}"))
    }

    /// Waits (bounded) until metric `series` reads a value `ok` accepts; that value. The error
    /// says what it should be (`want`) and the last reading.
    pub fn wait_metric(
        &self,
        series: &str,
        timeout: Duration,
        want: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<f64, String> {
        wait_for(timeout, || self.metric(series).ok().filter(|v| ok(*v))).ok_or_else(|| {
            format!(
                "{series} not {want} within {timeout:?}: {:?}",
                self.metric(series)
            )
        })
    }

    /// Member `name`'s (healthy, last_probe) from a status report.
    pub fn member(status: &Value, name: &str) -> Option<(bool, String)> {
        member(status, name)
    }

    /// Waits (bounded) until every member in `names` is healthy; the status then.
    pub fn wait_members_healthy(&self, names: &[&str], timeout: Duration) -> Result<Value, String> {
        wait_for(timeout, || {
            let s = self.status_json().ok()?;
            names
                .iter()
                .all(|m| member(&s, m).is_some_and(|(h, _)| h))
                .then_some(s)
        })
        .ok_or_else(|| {
            format!(
                "members {names:?} never all healthy within {timeout:?}: {}",
                self.status_json()
                    .map(|s| s["pools"].to_string())
                    .unwrap_or_else(|e| e)
            )
        })
    }

    /// Waits (bounded) until member `name`'s health is `healthy`; its last_probe then.
    pub fn wait_member(
        &self,
        name: &str,
        healthy: bool,
        timeout: Duration,
    ) -> Result<String, String> {
        wait_for(timeout, || {
            let s = self.status_json().ok()?;
            member(&s, name)
                .filter(|(h, _)| *h == healthy)
                .map(|(_, p)| p)
        })
        .ok_or_else(|| format!("member {name} never became healthy={healthy} within {timeout:?}"))
    }

    /// Stops vipmux now: SIGTERM, bounded wait, SIGKILL if needed. True when it exited 0 on SIGTERM.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let exited = wait_until(STOP_TIMEOUT, || !child.is_running());
        let ok = exited
            && child
                .child_mut()
                .try_wait()
                .ok()
                .flatten()
                .is_some_and(|s| s.success());
        // NsChild's Drop SIGKILLs (if still running) and reaps.
        drop(child);
        ok
    }
}

impl Appliance {
    /// Kills vipmux with SIGKILL (no drain, no cleanup: a crash) and reaps it.
    pub fn kill(&mut self) -> Result<(), String> {
        let mut child = self.child.take().ok_or("vipmux is not running")?;
        let st = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("kill -KILL {} failed", child.id()));
        }
        if !wait_until(STOP_TIMEOUT, || !child.is_running()) {
            return Err("vipmux still running after SIGKILL".into());
        }
        Ok(())
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if self.child.is_some() && !self.stop() && std::thread::panicking() {
            eprintln!("--- vipmux log ---\n{}", self.log_text());
        }
    }
}

/// Member `name`'s (healthy, last_probe) in a `status --json` report.
pub fn member(status: &Value, name: &str) -> Option<(bool, String)> {
    status["pools"].as_array()?.iter().find_map(|p| {
        p["members"].as_array()?.iter().find_map(|m| {
            (m["name"] == name).then(|| {
                (
                    m["healthy"].as_bool().unwrap_or(false),
                    m["last_probe"].as_str().unwrap_or("").to_string(),
                )
            })
        })
    })
}

/// The findings (warn or fail rows) of check `check` in a `diagnose --json` report.
pub fn findings_of(diagnose: &Value, check: &str) -> Vec<Value> {
    diagnose["findings"]
        .as_array()
        .map(|f| f.iter().filter(|x| x["check"] == check).cloned().collect())
        .unwrap_or_default()
}

/// Whether `diagnose --json` output (text) names `check` among its findings.
pub fn diagnose_names(diagnose_json: &str, check: &str) -> bool {
    serde_json::from_str::<Value>(diagnose_json).is_ok_and(|v| !findings_of(&v, check).is_empty())
}

/// The value of the first Prometheus sample line starting with `series`.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Runs a scenario against an appliance and, when it fails, panics with the error and the vipmux
/// log; the appliance and topology guards clean up either way.
pub fn check(app: &Appliance, result: Result<(), String>) {
    if let Err(e) = result {
        panic!("{e}\n--- vipmux log ---\n{}", app.log_text());
    }
}

/// The client side of [`TcpSession`]: connects (optionally from a given source address), then
/// for every line on stdin sends it and prints the first reply line, or `ERR <why>`.
const SESSION_CLIENT: &str = r#"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
src = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
try:
    s = socket.create_connection((host, int(port)), timeout=5, source_address=(src, 0) if src else None)
except OSError as e:
    print(f"ERR connect: {e}", flush=True)
    sys.exit(1)
print("CONNECTED", flush=True)
buf = b""
for line in sys.stdin:
    try:
        s.sendall(line.encode())
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                print("ERR closed by peer", flush=True)
                sys.exit(1)
            buf += d
        reply, buf = buf.split(b"\n", 1)
        print(reply.decode(errors="replace"), flush=True)
    except OSError as e:
        print(f"ERR {e}", flush=True)
        sys.exit(1)
"#;

/// A long-lived TCP connection from a namespace (a small Python client): each [`exchange`]
/// sends one line on the same connection and returns the first line that comes back.
///
/// [`exchange`]: TcpSession::exchange
#[derive(Debug)]
pub struct TcpSession {
    client: NsScript,
}

impl TcpSession {
    /// Connects from namespace `ns` to `to` (`IP:PORT`), from source address `src` if given;
    /// waits (bounded) for the connection to be established.
    pub fn connect(ns: &str, to: &str, src: Option<&str>) -> Result<TcpSession, String> {
        let client = NsScript::start(ns, SESSION_CLIENT, &[to, src.unwrap_or("")])?;
        match client.line(Duration::from_secs(10)) {
            Ok(l) if l == "CONNECTED" => Ok(TcpSession { client }),
            Ok(l) => Err(format!("TCP session to {to}: {l}")),
            Err(_) => Err(format!("TCP session to {to}: no connection within 10 s")),
        }
    }

    /// Sends `line` (a newline is added) and waits up to 5 s for the first reply line.
    pub fn exchange(&mut self, line: &str) -> Result<String, String> {
        self.client.send_line(line)?;
        match self.client.line(Duration::from_secs(5)) {
            Ok(l) if l.starts_with("ERR ") => Err(l),
            Ok(l) => Ok(l),
            Err(_) => Err(format!("no reply to {line:?} within 5 s")),
        }
    }

    /// Sends `data` and checks it is echoed back unchanged.
    pub fn echo(&mut self, data: &str) -> Result<(), String> {
        let got = self.exchange(data)?;
        if got == data {
            Ok(())
        } else {
            Err(format!("echo of {data:?} came back as {got:?}"))
        }
    }

    /// Asks the echo server who it is (`whoami`) on this connection.
    pub fn whoami(&mut self) -> Result<super::BackendReply, String> {
        let got = self.exchange("whoami")?;
        super::BackendReply::parse(&got).ok_or_else(|| format!("unexpected whoami answer {got:?}"))
    }

    /// True while the client process runs (the connection has not failed).
    pub fn is_alive(&mut self) -> bool {
        self.client.is_running()
    }
}

/// Every session echoes a line tagged `tag` and is still answered by the backend it started on
/// (`(backend, session)` pairs); a failure names the connection.
pub fn sessions_continue(sessions: &mut [(String, TcpSession)], tag: &str) -> Result<(), String> {
    for (i, (backend, s)) in sessions.iter_mut().enumerate() {
        s.echo(&format!("{tag} {i}"))
            .map_err(|e| format!("connection {i} to {backend} {tag}: {e}"))?;
        let who = s
            .whoami()
            .map_err(|e| format!("connection {i} {tag}: {e}"))?;
        if who.backend != *backend {
            return Err(format!(
                "connection {i} moved from {backend} to {} {tag}",
                who.backend
            ));
        }
    }
    Ok(())
}

/// One HTTP GET of `url` from namespace `ns` (from source address `src` if given), parsed as a
/// backend answer.
pub fn http_backend(ns: &str, url: &str, src: Option<&str>) -> Result<super::BackendReply, String> {
    let mut cmd = vec!["curl", "-sS", "--fail", "-m", "5"];
    if let Some(s) = src {
        cmd.extend(["--interface", s]);
    }
    cmd.push(url);
    let body = super::ns_exec_ok(ns, &cmd)?;
    super::BackendReply::parse(&body)
        .ok_or_else(|| format!("unexpected answer {body:?} from {url}"))
}

/// `whoami` over a new TCP connection from `ns` to `to`, parsed as a backend answer.
pub fn tcp_whoami(ns: &str, to: &str) -> Result<super::BackendReply, String> {
    let got = super::tcp_from(ns, to, "whoami")?;
    super::BackendReply::parse(&got).ok_or_else(|| format!("unexpected answer {got:?} from {to}"))
}

/// Starts the appliance for `topo` with `config`, panicking with the reason (and the vipmux log)
/// when it does not come up.
pub fn start_or_panic(topo: &Topology, config: &ConfigBuilder) -> Appliance {
    Appliance::start(topo, &config.build(topo)).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts `vipmux capture ARGS --json -w FILE` against `app` and waits until the appliance
/// logged one more armed capture.
pub fn spawn_capture(
    app: &Appliance,
    args: &[&str],
    file: &Path,
) -> Result<std::process::Child, String> {
    let armed_before = app.log_text().matches("capture armed").count();
    let mut child = Command::new(VIPMUX)
        .arg("capture")
        .args(args)
        .args(["--json", "-w"])
        .arg(file)
        .arg("--socket")
        .arg(app.socket())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("vipmux capture: {e}"))?;
    let armed = wait_for(Duration::from_secs(10), || {
        (app.log_text().matches("capture armed").count() > armed_before).then_some(())
    });
    if armed.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "capture {args:?} never armed; log:\n{}",
            app.log_text()
        ));
    }
    Ok(child)
}
