//! Semantic validation of a deserialized [`Config`]: ranges, references, duplicate names and
//! conflicts between rules. Every error is collected; nothing stops at the first.
//!
//! Rules (docs/design.md §2.2 lists them with their reasons):
//! - names are non-empty and unique per table (members: unique per pool, as are their addresses);
//! - references (frontend, interface, pool, member, probe) exist;
//! - ports are 1..=65535; port 0 only as HA ports (`protocol = "all"`, load-balancing rule, backend
//!   port 0 or omitted);
//! - weights 1..=1000, probe interval 1..=3600 s, probe threshold 1..=100, workers 1..=128, flow
//!   table capacity 1..=2^28, interface MTU 576..=9216, prefix length 1..=32, gateway on-link;
//! - idle timeouts: minutes 4..=100 (load-balancing, inbound NAT) or 4..=120 (outbound), or the
//!   extension `idle_timeout_seconds` 1..=86400, never both;
//! - probes: `request_path` (starting with `/`) required for http/https, not allowed for tcp;
//! - two rules must not produce the same (frontend, protocol, port), port ranges included;
//! - two non-floating rules must not produce the same (member address, protocol, backend port);
//! - a frontend with an HA-ports rule carries only floating-IP rules;
//! - floating IP with `dsr_encapsulation = "none"` needs every member on-link of an interface;
//! - a member that is neither on-link nor behind a gateway is unreachable (when interfaces exist);
//! - inbound NAT: exactly one of the single (`frontend_port` + `target`) and range
//!   (`frontend_port_range_start/end` + `backend_pool`) forms; a range holds every member;
//! - outbound: at least one frontend; `allocated_outbound_ports` a multiple of 8, ports per
//!   member per frontend IP, ports × members within the 64,000 SNAT ports of each frontend IP;
//!   the default table needs a pool of at most 1000; at least one port per worker; no frontend
//!   with an HA-ports rule; a member address in at most one outbound rule per protocol; once all
//!   else holds, every SNAT block fits around the ports of rules on its frontend IP (the plan of
//!   [`super::snat_plan`]);
//! - families: see `validate::family` (a pool's members and a rule's frontend and pool are of one family;
//!   an interface's `address6`/`gateway6`; outbound rules are IPv4 only for now);
//! - `[bgp]` and `announce`: see [`bgp`].
//!
//! The checks of a table with many rules of its own live in rooms named after it: `nat`
//! (inbound NAT rules), `outbound` (outbound rules), `conflicts` (between rules), `family`,
//! [`bgp`].

pub mod bgp;
mod conflicts;
mod family;
mod nat;
mod outbound;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::error::ConfigError;
use super::model::*;

/// Highest weight accepted.
pub const MAX_WEIGHT: u32 = 1000;

/// Checks everything and returns every error found (empty = valid).
pub fn validate(c: &Config) -> Vec<ConfigError> {
    let mut v = Validator {
        c,
        errors: Vec::new(),
        frontend_names: c.frontends.iter().map(|f| f.name.as_str()).collect(),
        pools_by_name: first_by_name(&c.backend_pools, |p| &p.name),
        probe_names: c.probes.iter().map(|p| p.name.as_str()).collect(),
    };
    v.appliance();
    v.dataplane();
    v.control();
    v.interfaces();
    v.frontends();
    v.pools();
    v.probes();
    v.lb_rules();
    v.nat_rules();
    v.outbound_rules();
    v.frontend_conflicts();
    v.backend_conflicts();
    v.errors.extend(bgp::check(c));
    // Where the SNAT blocks go is only meaningful once everything else holds.
    if v.errors.is_empty() {
        v.errors.extend(super::snat_plan::plan(c, &[]).errors);
    }
    v.errors
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

/// Whether `port` is a valid non-zero port.
fn port_ok(p: u32) -> bool {
    (1..=65535).contains(&p)
}

/// The idle timeout in seconds a rule ends up with (default 4 minutes).
pub fn idle_timeout_seconds(minutes: Option<u32>, seconds: Option<u32>) -> u32 {
    match (seconds, minutes) {
        (Some(s), _) => s,
        (None, Some(m)) => m.saturating_mul(60),
        (None, None) => 240,
    }
}

/// Whether `ip` is on-link of one of the interfaces (IPv6: of an `address6`).
pub fn on_link(c: &Config, ip: IpAddr) -> bool {
    c.interfaces.iter().any(|i| i.on_link(ip))
}

/// Whether `ip` is a unicast address (not unspecified, multicast or IPv4 broadcast).
fn unicast(ip: IpAddr) -> bool {
    let broadcast = matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    !(ip.is_unspecified() || ip.is_multicast() || broadcast)
}

/// Name → the first entry of `items` with that name.
fn first_by_name<'a, T>(
    items: &'a [T],
    name: impl Fn(&'a T) -> &'a str,
) -> HashMap<&'a str, &'a T> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        map.entry(name(item)).or_insert(item);
    }
    map
}

struct Validator<'a> {
    c: &'a Config,
    errors: Vec<ConfigError>,
    /// Names that references resolve against (looked up once per reference, not by a scan).
    frontend_names: HashSet<&'a str>,
    pools_by_name: HashMap<&'a str, &'a BackendPool>,
    probe_names: HashSet<&'a str>,
}

/// Per frontend: the owners of HA-ports rules, and every rule with its floating-IP flag.
type FrontendRules = (Vec<Owner>, Vec<(Owner, bool)>);

/// A non-floating rule's backend use: owner, (member name, address)s, protocol, port, HA ports.
type BackendUse = (Owner, Vec<(String, IpAddr)>, Protocol, u32, bool);

/// Who owns a frontend key or backend destination, for conflict messages.
#[derive(Clone)]
struct Owner {
    table: &'static str,
    index: usize,
    name: String,
}

impl Owner {
    fn describe(&self) -> String {
        format!("{}[{}] (\"{}\")", self.table, self.index, self.name)
    }
}

impl<'a> Validator<'a> {
    fn err(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    fn names<'n>(&mut self, table: &str, names: impl Iterator<Item = &'n str>) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, n) in names.enumerate() {
            if n.is_empty() {
                self.err(
                    ConfigError::new(table, "name must not be empty")
                        .entry(i, None)
                        .field("name")
                        .value("\"\""),
                );
            } else if let Some(first) = seen.get(n) {
                let msg = format!("duplicate name; already used by {table}[{first}]");
                self.err(
                    ConfigError::new(table, msg)
                        .entry(i, Some(n))
                        .field("name")
                        .value(q(n)),
                );
            } else {
                seen.insert(n, i);
            }
        }
    }

    fn appliance(&mut self) {
        if self.c.appliance.name.is_empty() {
            self.err(
                ConfigError::new("appliance", "name must not be empty")
                    .field("name")
                    .value("\"\""),
            );
        }
    }

    fn dataplane(&mut self) {
        let d = &self.c.dataplane;
        if !(1..=128).contains(&d.workers) {
            self.err(
                ConfigError::new("dataplane", "must be 1..=128")
                    .field("workers")
                    .value(d.workers.to_string()),
            );
        }
        if !(1..=(1u64 << 28)).contains(&d.flow_table_capacity) {
            self.err(
                ConfigError::new("dataplane", "must be 1..=268435456 (2^28) flows per worker")
                    .field("flow_table_capacity")
                    .value(d.flow_table_capacity.to_string()),
            );
        }
        if let Some(n) = d.flow_table_capacity_ipv6 {
            if !(1024..=(1u64 << 28)).contains(&n) {
                self.err(
                    ConfigError::new(
                        "dataplane",
                        "must be 1024..=268435456 (2^28) IPv6 flows per worker",
                    )
                    .field("flow_table_capacity_ipv6")
                    .value(n.to_string()),
                );
            }
        }
    }

    fn control(&mut self) {
        let ctl = &self.c.control;
        if ctl.socket.is_empty() {
            self.err(
                ConfigError::new(
                    "control",
                    "must be a path, e.g. \"/run/vipmux/vipmux.sock\"",
                )
                .field("socket")
                .value("\"\""),
            );
        }
        if !ctl.metrics.is_empty() && ctl.metrics.parse::<std::net::SocketAddr>().is_err() {
            self.err(
                ConfigError::new(
                    "control",
                    "must be IP:PORT such as \"127.0.0.1:9469\", or \"\" to disable metrics",
                )
                .field("metrics")
                .value(q(&ctl.metrics)),
            );
        }
    }

    fn interfaces(&mut self) {
        let c = self.c;
        self.names("interfaces", c.interfaces.iter().map(|i| i.name.as_str()));
        let mut ports: HashMap<&str, usize> = HashMap::new();
        for (i, itf) in c.interfaces.iter().enumerate() {
            let e = |m: String| ConfigError::new("interfaces", m).entry(i, Some(&itf.name));
            if itf.address.prefix_len == 0 {
                self.err(
                    e("prefix length must be 1..=32".into())
                        .field("address")
                        .value(q(&itf.address.to_string())),
                );
            }
            if let Some(gw) = itf.gateway {
                if itf.address.prefix_len > 0 && !itf.address.contains(gw) || gw == itf.address.addr
                {
                    self.err(
                        e(format!(
                            "gateway must be another address inside the interface's subnet {}",
                            itf.address
                        ))
                        .field("gateway")
                        .value(q(&gw.to_string())),
                    );
                }
            }
            self.interface6(i, itf);
            if !(576..=9216).contains(&itf.mtu) {
                self.err(
                    e("must be 576..=9216".into())
                        .field("mtu")
                        .value(itf.mtu.to_string()),
                );
            }
            if itf.port.is_empty() {
                self.err(
                    e("must name a DPDK port of the profile, e.g. \"net_af_packet0\"".into())
                        .field("port")
                        .value("\"\""),
                );
            } else if let Some(first) = ports.get(itf.port.as_str()) {
                self.err(
                    e(format!(
                        "DPDK port already used by interfaces[{first}]; one interface per port"
                    ))
                    .field("port")
                    .value(q(&itf.port)),
                );
            } else {
                ports.insert(&itf.port, i);
            }
        }
    }

    fn frontends(&mut self) {
        let c = self.c;
        self.names("frontends", c.frontends.iter().map(|f| f.name.as_str()));
        let mut addrs: HashMap<IpAddr, usize> = HashMap::new();
        for (i, fe) in c.frontends.iter().enumerate() {
            let e = |m: String| ConfigError::new("frontends", m).entry(i, Some(&fe.name));
            if let Some(itf) = &fe.interface {
                if !c.interfaces.iter().any(|x| &x.name == itf) {
                    let valid = list(c.interfaces.iter().map(|x| x.name.as_str()));
                    self.err(
                        e(format!("no such interface; defined interfaces: {valid}"))
                            .field("interface")
                            .value(q(itf)),
                    );
                }
            }
            if let Some(first) = addrs.get(&fe.address) {
                self.err(
                    e(format!("address already used by frontends[{first}]"))
                        .field("address")
                        .value(q(&fe.address.to_string())),
                );
            } else {
                addrs.insert(fe.address, i);
            }
            if let Some(itf) = c.interfaces.iter().find(|x| x.is_own(fe.address)) {
                self.err(
                    e(format!(
                        "address is the appliance's own address on interface \"{}\"; a frontend needs its own",
                        itf.name
                    ))
                    .field("address")
                    .value(q(&fe.address.to_string())),
                );
            }
            if !unicast(fe.address) {
                self.err(
                    e("must be a unicast address".into())
                        .field("address")
                        .value(q(&fe.address.to_string())),
                );
            }
        }
    }

    fn pools(&mut self) {
        let c = self.c;
        self.names(
            "backend_pools",
            c.backend_pools.iter().map(|p| p.name.as_str()),
        );
        let reachable_via_gateway =
            |ip: IpAddr| c.interfaces.iter().any(|i| i.gateway_for(ip).is_some());
        for (i, pool) in c.backend_pools.iter().enumerate() {
            let e = |m: String| ConfigError::new("backend_pools", m).entry(i, Some(&pool.name));
            if !port_ok(pool.gue_port) {
                self.err(
                    e("must be 1..=65535".into())
                        .field("gue_port")
                        .value(pool.gue_port.to_string()),
                );
            }
            let mut names: HashMap<&str, usize> = HashMap::new();
            let mut addrs: HashMap<IpAddr, usize> = HashMap::new();
            self.pool_family(i, pool);
            for (j, m) in pool.members.iter().enumerate() {
                let f = |k: &str| format!("members[{j}].{k}");
                if m.name.is_empty() {
                    self.err(
                        e("member name must not be empty".into())
                            .field(f("name"))
                            .value("\"\""),
                    );
                } else if let Some(first) = names.get(m.name.as_str()) {
                    self.err(
                        e(format!(
                            "duplicate member name; already used by members[{first}] of this pool"
                        ))
                        .field(f("name"))
                        .value(q(&m.name)),
                    );
                } else {
                    names.insert(&m.name, j);
                }
                if let Some(first) = addrs.get(&m.address) {
                    self.err(
                        e(format!(
                            "duplicate member address; already used by members[{first}] of this pool"
                        ))
                        .field(f("address"))
                        .value(q(&m.address.to_string())),
                    );
                } else {
                    addrs.insert(m.address, j);
                }
                if !unicast(m.address) {
                    self.err(
                        e("must be a unicast address".into())
                            .field(f("address"))
                            .value(q(&m.address.to_string())),
                    );
                } else if !c.interfaces.is_empty()
                    && !on_link(c, m.address)
                    && !reachable_via_gateway(m.address)
                {
                    let (address, gateway) = if m.address.is_ipv4() {
                        ("address", "gateway")
                    } else {
                        ("address6", "gateway6")
                    };
                    self.err(
                        e(format!("unreachable: not on-link of any interface's {address} and no interface has a {gateway}"))
                        .field(f("address"))
                        .value(q(&m.address.to_string())),
                    );
                }
                if !(1..=MAX_WEIGHT).contains(&m.weight) {
                    self.err(
                        e(format!("must be 1..={MAX_WEIGHT}"))
                            .field(f("weight"))
                            .value(m.weight.to_string()),
                    );
                }
            }
        }
    }

    fn probes(&mut self) {
        let c = self.c;
        self.names("probes", c.probes.iter().map(|p| p.name.as_str()));
        for (i, p) in c.probes.iter().enumerate() {
            let e = |m: &str| ConfigError::new("probes", m).entry(i, Some(&p.name));
            if !port_ok(p.port) {
                self.err(
                    e("must be 1..=65535")
                        .field("port")
                        .value(p.port.to_string()),
                );
            }
            match (p.protocol, &p.request_path) {
                (ProbeProtocol::Tcp, Some(path)) => self.err(
                    e("not allowed with protocol = \"tcp\"; remove it or use \"http\"/\"https\"")
                        .field("request_path")
                        .value(q(path)),
                ),
                (ProbeProtocol::Http | ProbeProtocol::Https, None) => self.err(
                    e("required with protocol = \"http\" or \"https\", e.g. \"/health\"")
                        .field("request_path"),
                ),
                (ProbeProtocol::Http | ProbeProtocol::Https, Some(path))
                    if !path.starts_with('/') || path.chars().any(|ch| ch.is_whitespace()) =>
                {
                    self.err(
                        e("must start with \"/\" and contain no whitespace, e.g. \"/health\"")
                            .field("request_path")
                            .value(q(path)),
                    )
                }
                _ => {}
            }
            if !(1..=3600).contains(&p.interval_seconds) {
                self.err(
                    e("must be 1..=3600 seconds")
                        .field("interval_seconds")
                        .value(p.interval_seconds.to_string()),
                );
            }
            if !(1..=100).contains(&p.probe_threshold) {
                self.err(
                    e("must be 1..=100")
                        .field("probe_threshold")
                        .value(p.probe_threshold.to_string()),
                );
            }
        }
    }

    fn idle(
        &mut self,
        table: &str,
        i: usize,
        name: &str,
        minutes: Option<u32>,
        seconds: Option<u32>,
        max_minutes: u32,
    ) {
        let e = |m: String| ConfigError::new(table, m).entry(i, Some(name));
        if let (Some(_), Some(s)) = (minutes, seconds) {
            self.err(
                e("set idle_timeout_minutes or idle_timeout_seconds, not both".into())
                    .field("idle_timeout_seconds")
                    .value(s.to_string()),
            );
        }
        if let Some(m) = minutes {
            if !(4..=max_minutes).contains(&m) {
                self.err(
                    e(format!("must be 4..={max_minutes} minutes"))
                        .field("idle_timeout_minutes")
                        .value(m.to_string()),
                );
            }
        }
        if let Some(s) = seconds {
            if !(1..=86400).contains(&s) {
                self.err(
                    e("must be 1..=86400 seconds".into())
                        .field("idle_timeout_seconds")
                        .value(s.to_string()),
                );
            }
        }
    }

    fn frontend_ref(&mut self, table: &str, i: usize, name: &str, field: &str, fe: &str) -> bool {
        if self.frontend_names.contains(fe) {
            return true;
        }
        let valid = list(self.c.frontends.iter().map(|f| f.name.as_str()));
        self.err(
            ConfigError::new(
                table,
                format!("no such frontend; defined frontends: {valid}"),
            )
            .entry(i, Some(name))
            .field(field)
            .value(q(fe)),
        );
        false
    }

    fn pool_ref(
        &mut self,
        table: &str,
        i: usize,
        name: &str,
        field: &str,
        pool: &str,
    ) -> Option<&'a BackendPool> {
        let found = self.pools_by_name.get(pool).copied();
        if found.is_none() {
            let valid = list(self.c.backend_pools.iter().map(|p| p.name.as_str()));
            self.err(
                ConfigError::new(
                    table,
                    format!("no such backend pool; defined pools: {valid}"),
                )
                .entry(i, Some(name))
                .field(field)
                .value(q(pool)),
            );
        }
        found
    }

    /// Floating IP without encapsulation needs every member on-link.
    fn floating_on_link(&mut self, table: &str, i: usize, name: &str, members: &[&Member]) {
        for m in members {
            if !on_link(self.c, m.address) {
                self.err(
                    ConfigError::new(
                        table,
                        format!(
                            "floating IP with dsr_encapsulation = \"none\" needs on-link members, but member \"{}\" ({}) is not on-link of any interface; set the pool's dsr_encapsulation to \"ipip\" or \"gue\"",
                            m.name, m.address
                        ),
                    )
                    .entry(i, Some(name))
                    .field("enable_floating_ip")
                    .value("true"),
                );
            }
        }
    }

    fn lb_rules(&mut self) {
        let c = self.c;
        self.names(
            "load_balancing_rules",
            c.load_balancing_rules.iter().map(|r| r.name.as_str()),
        );
        const T: &str = "load_balancing_rules";
        for (i, r) in c.load_balancing_rules.iter().enumerate() {
            let e = |m: &str| ConfigError::new(T, m).entry(i, Some(&r.name));
            self.frontend_ref(T, i, &r.name, "frontend", &r.frontend);
            let pool = self.pool_ref(T, i, &r.name, "backend_pool", &r.backend_pool);
            if let Some(p) = &r.probe {
                if !self.probe_names.contains(p.as_str()) {
                    let valid = list(c.probes.iter().map(|x| x.name.as_str()));
                    self.err(
                        ConfigError::new(T, format!("no such probe; defined probes: {valid}"))
                            .entry(i, Some(&r.name))
                            .field("probe")
                            .value(q(p)),
                    );
                }
            }
            let ha = r.frontend_port == 0 && r.protocol == Protocol::All;
            if r.frontend_port == 0 && r.protocol != Protocol::All {
                self.err(
                    e("must be 1..=65535 (0 means HA ports and needs protocol = \"all\")")
                        .field("frontend_port")
                        .value("0"),
                );
            } else if !ha && !port_ok(r.frontend_port) {
                self.err(
                    e("must be 1..=65535, or 0 with protocol = \"all\" for HA ports")
                        .field("frontend_port")
                        .value(r.frontend_port.to_string()),
                );
            }
            match r.backend_port {
                Some(bp) if ha && bp != 0 => self.err(
                    e("an HA-ports rule keeps every port: backend_port must be 0 or omitted")
                        .field("backend_port")
                        .value(bp.to_string()),
                ),
                Some(bp) if !ha && !port_ok(bp) && r.frontend_port != 0 => self.err(
                    e("must be 1..=65535 (0 only on HA-ports rules)")
                        .field("backend_port")
                        .value(bp.to_string()),
                ),
                _ => {}
            }
            self.idle(
                T,
                i,
                &r.name,
                r.idle_timeout_minutes,
                r.idle_timeout_seconds,
                100,
            );
            if let Some(pool) = pool {
                let members: Vec<&Member> = pool.members.iter().collect();
                let floating = r.enable_floating_ip;
                let (fe, field) = (&r.frontend, "backend_pool");
                self.rule_family(T, i, &r.name, fe, field, pool, &members);
                if floating && pool.dsr_encapsulation == DsrEncapsulation::None {
                    self.floating_on_link(T, i, &r.name, &members);
                }
            }
        }
    }
}

/// IP protocol numbers a rule protocol covers (`all` = TCP and UDP).
fn expand(p: Protocol) -> Vec<u8> {
    match p {
        Protocol::Tcp => vec![6],
        Protocol::Udp => vec![17],
        Protocol::All => vec![6, 17],
    }
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        _ => "any",
    }
}

fn list<'n>(names: impl Iterator<Item = &'n str>) -> String {
    let v: Vec<String> = names.map(q).collect();
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.join(", ")
    }
}
