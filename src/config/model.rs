//! The TOML configuration model: one struct per table, Azure property names in snake_case.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`). Numeric fields whose valid range is
//! narrower than their type (ports, timeouts, weights) are deserialized into a wider integer and
//! checked by [`super::validate`], so a bad value gets a message that says what is valid and every
//! such mistake in a file is reported at once. Defaults are documented on each field.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[appliance]`: identity and cluster-wide behaviour. Default: all defaults.
    #[serde(default)]
    pub appliance: Appliance,
    /// `[dataplane]`: DPDK profile, workers, flow table size. Default: all defaults.
    #[serde(default)]
    pub dataplane: Dataplane,
    /// `[control]`: control socket and metrics endpoint. Default: all defaults.
    #[serde(default)]
    pub control: Control,
    /// `[[interfaces]]`: the appliance's own ports and addresses. Default: none.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// `[[frontends]]`: the virtual IPs. Default: none.
    #[serde(default)]
    pub frontends: Vec<Frontend>,
    /// `[[backend_pools]]`: named sets of members. Default: none.
    #[serde(default)]
    pub backend_pools: Vec<BackendPool>,
    /// `[[probes]]`: health probes. Default: none.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// `[[load_balancing_rules]]`. Default: none.
    #[serde(default)]
    pub load_balancing_rules: Vec<LoadBalancingRule>,
    /// `[[inbound_nat_rules]]`. Default: none.
    #[serde(default)]
    pub inbound_nat_rules: Vec<InboundNatRule>,
    /// `[[outbound_rules]]`. Default: none.
    #[serde(default)]
    pub outbound_rules: Vec<OutboundRule>,
    /// `[bgp]`: announce the VIPs through a BGP daemon (scale-out). Default: none (no announcing).
    #[serde(default)]
    pub bgp: Option<Bgp>,
}

/// `[appliance]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    /// Name of this MUX, shown in status and logs. Default: `"vipmux"`.
    #[serde(default = "default_appliance_name")]
    pub name: String,
    /// Seed of the distribution hash; every MUX of one cluster must share it. Default: `0`.
    #[serde(default)]
    pub hash_seed: u64,
    /// What a non-SYN TCP packet without a flow entry does (docs/design.md §3.7).
    /// Default: `rehash`.
    #[serde(default)]
    pub missing_flow: MissingFlow,
    /// What a rule with no eligible member does (docs/design.md §3.8). Default: `drop`.
    #[serde(default)]
    pub no_healthy_backends: NoHealthyBackends,
}

impl Default for Appliance {
    fn default() -> Self {
        Appliance {
            name: default_appliance_name(),
            hash_seed: 0,
            missing_flow: MissingFlow::default(),
            no_healthy_backends: NoHealthyBackends::default(),
        }
    }
}

fn default_appliance_name() -> String {
    "vipmux".to_string()
}

/// `missing_flow`: handling of a non-SYN TCP packet that matches no flow entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingFlow {
    /// Forward to the backend the hash chooses and create a flow (default).
    #[default]
    Rehash,
    /// Drop and count `no_flow`.
    Drop,
}

/// `no_healthy_backends`: behaviour of a rule whose members are all ineligible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoHealthyBackends {
    /// New flows are dropped (Azure "AllProbedDown"; default).
    #[default]
    Drop,
    /// Spread over all members as if they were up (Azure "AllProbedUp").
    All,
}

/// `[dataplane]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataplane {
    /// DPDK profile (EAL arguments, ports, queues, cores), relative to the working directory.
    /// Default: none (`vipmux run` then needs its EAL arguments from `--eal`).
    #[serde(default)]
    pub dpdk_profile: Option<String>,
    /// Number of worker cores, 1..=128. Default: `1`.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// Flows per worker, allocated at start, 1..=2^28. Default: `1048576`.
    #[serde(default = "default_flow_table_capacity")]
    pub flow_table_capacity: u64,
    /// IPv6 flows per worker, allocated at start, 1024..=2^28. Default: a quarter of
    /// `flow_table_capacity`, at least 1024.
    #[serde(default)]
    pub flow_table_capacity_ipv6: Option<u64>,
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            dpdk_profile: None,
            workers: default_workers(),
            flow_table_capacity: default_flow_table_capacity(),
            flow_table_capacity_ipv6: None,
        }
    }
}

fn default_workers() -> u32 {
    1
}

fn default_flow_table_capacity() -> u64 {
    1 << 20
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Unix control socket path (created mode 0600). Default: `"/run/vipmux/vipmux.sock"`.
    #[serde(default = "default_socket")]
    pub socket: String,
    /// Prometheus listen address `IP:PORT`; `""` disables metrics. Default: `"127.0.0.1:9469"`.
    #[serde(default = "default_metrics")]
    pub metrics: String,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: default_socket(),
            metrics: default_metrics(),
        }
    }
}

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/vipmux/vipmux.sock";

fn default_socket() -> String {
    DEFAULT_SOCKET.to_string()
}

fn default_metrics() -> String {
    "127.0.0.1:9469".to_string()
}

/// `[[interfaces]]`: one DPDK port with the appliance's own address on it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Unique name, referenced by frontends. Required.
    pub name: String,
    /// DPDK port name from the profile (e.g. `net_af_packet0`). Required.
    pub port: String,
    /// The appliance's own address with prefix length, e.g. `10.1.0.2/24`. Required.
    #[serde(deserialize_with = "de_cidr")]
    pub address: Ipv4Cidr,
    /// Next hop for destinations that are not on-link of any interface. Default: none.
    #[serde(default, deserialize_with = "de_opt_ipv4")]
    pub gateway: Option<Ipv4Addr>,
    /// The appliance's own IPv6 address with prefix length, e.g. `fd00:1::2/64`, next to the IPv4
    /// `address` (dual stack). Default: none (no IPv6 on this port).
    #[serde(default, deserialize_with = "de_opt_cidr6")]
    pub address6: Option<Ipv6Cidr>,
    /// IPv6 next hop for IPv6 destinations that are not on-link of any interface: inside
    /// `address6`'s prefix or link-local (`fe80::/10`); needs `address6`. Default: none.
    #[serde(default, deserialize_with = "de_opt_ipv6")]
    pub gateway6: Option<Ipv6Addr>,
    /// vipmux extension: IP MTU of the port, 576..=9216. Default: `1500`.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
}

fn default_mtu() -> u32 {
    1500
}

impl Interface {
    /// Whether `ip` lies in one of this interface's subnets (IPv4 `address` or IPv6 `address6`).
    pub fn on_link(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.address.contains(a),
            IpAddr::V6(a) => self.address6.is_some_and(|c| c.contains(a)),
        }
    }

    /// The gateway of `ip`'s family, if any.
    pub fn gateway_for(&self, ip: IpAddr) -> Option<IpAddr> {
        match ip {
            IpAddr::V4(_) => self.gateway.map(IpAddr::V4),
            IpAddr::V6(_) => self.gateway6.map(IpAddr::V6),
        }
    }

    /// Whether `ip` is one of the appliance's own addresses on this interface.
    pub fn is_own(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => a == self.address.addr,
            IpAddr::V6(a) => self.address6.is_some_and(|c| c.addr == a),
        }
    }
}

/// The family of an address, as configuration errors name it: `"IPv4"` or `"IPv6"`.
pub fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// An IPv4 address with a prefix length (`10.1.0.2/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address itself (the host part is kept).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// The network mask as a host-order integer.
    pub fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        }
    }

    /// Whether `ip` lies in this address's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.addr) & self.mask())
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix_len) = parse_cidr(s, 32, "IPv4", "10.1.0.2/24")?;
        Ok(Ipv4Cidr { addr, prefix_len })
    }
}

/// `ADDRESS/PREFIX` of one family: the address and a prefix length of at most `max`.
fn parse_cidr<A: std::str::FromStr>(
    s: &str,
    max: u8,
    family: &str,
    example: &str,
) -> Result<(A, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("expected ADDRESS/PREFIX, e.g. \"{example}\""))?;
    let addr: A = a
        .parse()
        .map_err(|_| format!("`{a}` is not an {family} address; expected e.g. \"{example}\""))?;
    let prefix_len: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| format!("prefix length `{p}` is not 0..={max}"))?;
    Ok((addr, prefix_len))
}

/// An IPv6 address with a prefix length (`fd00:1::2/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Cidr {
    /// The address itself (the host part is kept).
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
}

impl Ipv6Cidr {
    /// The network mask as a host-order integer.
    pub fn mask(&self) -> u128 {
        if self.prefix_len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix_len.min(128)))
        }
    }

    /// Whether `ip` lies in this address's prefix.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        (u128::from(ip) & self.mask()) == (u128::from(self.addr) & self.mask())
    }
}

impl std::fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl std::str::FromStr for Ipv6Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix_len) = parse_cidr(s, 128, "IPv6", "fd00:1::2/64")?;
        Ok(Ipv6Cidr { addr, prefix_len })
    }
}

fn de_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Cidr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|e| serde::de::Error::custom(format!("invalid address \"{s}\": {e}")))
}

fn de_opt_cidr6<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv6Cidr>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid IPv6 address \"{s}\": {e}")))
}

fn de_opt_ipv6<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv6Addr>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid IPv6 address \"{s}\": expected e.g. \"fd00:1::1\" or \"fe80::1\""
        ))
    })
}

/// An IPv4 or IPv6 address (frontends, members).
fn de_ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid IP address \"{s}\": expected an IPv4 address such as \"10.1.0.11\" or an IPv6 address such as \"fd00:1::11\""
        ))
    })
}

fn parse_ipv4<E: serde::de::Error>(s: &str) -> Result<Ipv4Addr, E> {
    s.parse().map_err(|_| {
        E::custom(format!(
            "invalid IPv4 address \"{s}\": expected a dotted quad such as \"10.1.0.11\""
        ))
    })
}

fn de_ipv4<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Addr, D::Error> {
    let s = String::deserialize(d)?;
    parse_ipv4(&s)
}

fn de_opt_ipv4<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv4Addr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_ipv4(&s).map(Some)
}

/// `[[frontends]]`: a virtual IP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// Unique name, referenced by rules. Required.
    pub name: String,
    /// The VIP, IPv4 or IPv6 (a dual-stack VIP is two frontends, one per family). Required.
    #[serde(deserialize_with = "de_ip")]
    pub address: IpAddr,
    /// Interface on which ARP (IPv4) or neighbour solicitations (IPv6) for the VIP are answered. Default: none (the VIP is routed to the MUX).
    #[serde(default)]
    pub interface: Option<String>,
    /// Whether the VIP is announced over BGP (an IPv4 VIP as a /32, an IPv6 VIP as a /128).
    /// Default: true when `[bgp]` exists; `true` without `[bgp]` is an error.
    #[serde(default)]
    pub announce: Option<bool>,
}

impl Frontend {
    /// The VIP when it is IPv4.
    pub fn address4(&self) -> Option<Ipv4Addr> {
        match self.address {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    /// Whether this frontend is announced under `bgp` (absent `[bgp]`: never).
    pub fn announced(&self, bgp: Option<&Bgp>) -> bool {
        bgp.is_some() && self.announce.unwrap_or(true)
    }
}

/// `[bgp]`: the BGP daemon vipmux drives to announce its VIPs (vipmux does not speak BGP itself).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bgp {
    /// Which daemon is driven. Default: `exabgp`.
    #[serde(default)]
    pub daemon: BgpDaemon,
    /// This MUX's autonomous system number, 1..=4294967295. Required.
    pub local_as: u64,
    /// BGP router identifier (an IPv4 address, unique per MUX). Required.
    #[serde(deserialize_with = "de_ipv4")]
    pub router_id: Ipv4Addr,
    /// Next hop announced for the VIPs. Default: the first interface's address.
    #[serde(default, deserialize_with = "de_opt_ipv4")]
    pub next_hop: Option<Ipv4Addr>,
    /// Next hop announced for the IPv6 VIPs. Default: the `address6` of the first interface
    /// that has one.
    #[serde(default, deserialize_with = "de_opt_ipv6")]
    pub next_hop6: Option<Ipv6Addr>,
    /// Standard communities attached to every announcement, `"ASN:VALUE"` (each 0..=65535).
    /// Default: none.
    #[serde(default)]
    pub communities: Vec<String>,
    /// On drain, re-announce with the GRACEFUL_SHUTDOWN community (65535:0) before withdrawing.
    /// Default: `true`.
    #[serde(default = "default_true")]
    pub graceful_shutdown: bool,
    /// `[[bgp.peers]]`: the routers to peer with (at least one). Required.
    #[serde(default)]
    pub peers: Vec<BgpPeer>,
}

fn default_true() -> bool {
    true
}

/// `daemon` of `[bgp]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BgpDaemon {
    /// ExaBGP driven through its process API (default).
    #[default]
    Exabgp,
}

/// `[[bgp.peers]]`: one BGP neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpPeer {
    /// The neighbour's address. Required.
    #[serde(deserialize_with = "de_ipv4")]
    pub address: Ipv4Addr,
    /// The neighbour's autonomous system number, 1..=4294967295. Required.
    pub remote_as: u64,
    /// Hold time offered, 0 (no keepalives) or 3..=65535 seconds. Default: `90`.
    #[serde(default = "default_hold_time")]
    pub hold_time_seconds: u32,
}

fn default_hold_time() -> u32 {
    90
}

/// `[[backend_pools]]`: a named set of members.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendPool {
    /// Unique name, referenced by rules. Required.
    pub name: String,
    /// How floating-IP (DSR) traffic reaches members. Default: `none` (on-link, MAC rewrite).
    #[serde(default)]
    pub dsr_encapsulation: DsrEncapsulation,
    /// vipmux extension: UDP destination port of GUE encapsulation, 1..=65535. Default: `6080`.
    #[serde(default = "default_gue_port")]
    pub gue_port: u32,
    /// The members. Default: none (a pool may be empty).
    #[serde(default)]
    pub members: Vec<Member>,
}

fn default_gue_port() -> u32 {
    6080
}

/// Floating-IP delivery (`dsr_encapsulation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsrEncapsulation {
    /// MAC rewrite to an on-link member (default).
    #[default]
    None,
    /// IPv4-in-IPv4 to the member's address.
    Ipip,
    /// GUE over UDP to the member's address.
    Gue,
}

/// One member of a backend pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Name, unique in its pool; it seeds the member's Maglev permutation. Required.
    pub name: String,
    /// The member's address (DIP), IPv4 or IPv6; every member of a pool that a rule uses has
    /// the family of the rule's frontend. Required.
    #[serde(deserialize_with = "de_ip")]
    pub address: IpAddr,
    /// Relative share of new flows, 1..=1000. Default: `1`.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Operator override of the probe. Default: `none`.
    #[serde(default)]
    pub admin_state: AdminState,
}

fn default_weight() -> u32 {
    1
}

/// `admin_state` of a member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminState {
    /// The probe decides (default).
    #[default]
    None,
    /// Eligible whatever the probe says.
    Up,
    /// Never eligible for new flows.
    Down,
}

/// `[[probes]]`: a health probe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Unique name, referenced by load-balancing rules. Required.
    pub name: String,
    /// Probe protocol. Required.
    pub protocol: ProbeProtocol,
    /// Port probed on each member, 1..=65535. Required.
    pub port: u32,
    /// Path of the GET request; required for http/https, not allowed for tcp. Default: none.
    #[serde(default)]
    pub request_path: Option<String>,
    /// Seconds between probes, 1..=3600 (Azure's minimum is 5). Default: `5`.
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    /// Consecutive results needed to flip a member, 1..=100. Default: `1`.
    #[serde(default = "default_threshold")]
    pub probe_threshold: u32,
}

fn default_interval() -> u32 {
    5
}

fn default_threshold() -> u32 {
    1
}

/// Probe protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeProtocol {
    /// TCP handshake.
    Tcp,
    /// HTTP GET, 200 = up.
    Http,
    /// HTTPS GET without certificate checks, 200 = up.
    Https,
}

impl std::fmt::Display for ProbeProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProbeProtocol::Tcp => "tcp",
            ProbeProtocol::Http => "http",
            ProbeProtocol::Https => "https",
        })
    }
}

/// Transport protocol of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
    /// TCP and UDP on the port; with port 0 on a load-balancing rule: HA ports (every protocol).
    All,
}

impl Protocol {
    /// The snake_case name used in the file.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::All => "all",
        }
    }
}

/// `load_distribution`: the distribution tuple of a load-balancing rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadDistribution {
    /// 5-tuple (default).
    #[default]
    Default,
    /// (source IP, destination IP): client IP affinity.
    SourceIp,
    /// (source IP, destination IP, protocol).
    SourceIpProtocol,
}

/// `[[load_balancing_rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancingRule {
    /// Unique name among load-balancing rules. Required.
    pub name: String,
    /// Frontend name. Required.
    pub frontend: String,
    /// `tcp`, `udp` or `all`. Required.
    pub protocol: Protocol,
    /// 1..=65535, or 0 with protocol `all` (HA ports). Required.
    pub frontend_port: u32,
    /// 1..=65535, or 0 for HA ports. Default: the frontend port.
    #[serde(default)]
    pub backend_port: Option<u32>,
    /// Backend pool name. Required.
    pub backend_pool: String,
    /// Probe name. Default: none (members count as probed up).
    #[serde(default)]
    pub probe: Option<String>,
    /// Distribution tuple. Default: `default` (5-tuple).
    #[serde(default)]
    pub load_distribution: LoadDistribution,
    /// Floating IP (DSR). Default: `false`.
    #[serde(default)]
    pub enable_floating_ip: bool,
    /// Idle timeout in minutes, 4..=100. Default: 4 unless `idle_timeout_seconds` is set.
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    /// vipmux extension: idle timeout in seconds, >= 1; not together with the minutes.
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
    /// Send RSTs to both ends when an established flow idles out. Default: `false`.
    #[serde(default)]
    pub enable_tcp_reset: bool,
}

/// `target` of a single-member inbound NAT rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatTarget {
    /// Backend pool name.
    pub pool: String,
    /// Member name in that pool.
    pub member: String,
}

/// `[[inbound_nat_rules]]`: either `frontend_port` + `target`, or a port range + `backend_pool`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundNatRule {
    /// Unique name among inbound NAT rules. Required.
    pub name: String,
    /// Frontend name. Required.
    pub frontend: String,
    /// `tcp`, `udp` or `all` (both). Required.
    pub protocol: Protocol,
    /// Single-member form: the frontend port, 1..=65535.
    #[serde(default)]
    pub frontend_port: Option<u32>,
    /// Single-member form: the target member.
    #[serde(default)]
    pub target: Option<NatTarget>,
    /// Range form: first frontend port, 1..=65535.
    #[serde(default)]
    pub frontend_port_range_start: Option<u32>,
    /// Range form: last frontend port (inclusive), >= start.
    #[serde(default)]
    pub frontend_port_range_end: Option<u32>,
    /// Range form: the pool whose members take the slots.
    #[serde(default)]
    pub backend_pool: Option<String>,
    /// Port on the member, 1..=65535. Required.
    pub backend_port: u32,
    /// Floating IP (DSR). Default: `false`.
    #[serde(default)]
    pub enable_floating_ip: bool,
    /// Idle timeout in minutes, 4..=100. Default: 4 unless `idle_timeout_seconds` is set.
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    /// vipmux extension: idle timeout in seconds, >= 1; not together with the minutes.
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
    /// Send RSTs to both ends when an established flow idles out. Default: `false`.
    #[serde(default)]
    pub enable_tcp_reset: bool,
}

/// `[[outbound_rules]]`: source NAT of a pool's own connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundRule {
    /// Unique name among outbound rules. Required.
    pub name: String,
    /// Frontend names whose addresses are used as SNAT sources (at least one). Required.
    pub frontends: Vec<String>,
    /// Backend pool name. Required.
    pub backend_pool: String,
    /// `tcp`, `udp` or `all`. Default: `all`.
    #[serde(default = "default_outbound_protocol")]
    pub protocol: Protocol,
    /// SNAT ports per member: 0 = Azure's default table by pool size, else a multiple of 8.
    /// Default: `0`.
    #[serde(default)]
    pub allocated_outbound_ports: u32,
    /// Idle timeout in minutes, 4..=120. Default: 4 unless `idle_timeout_seconds` is set.
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    /// vipmux extension: idle timeout in seconds, >= 1; not together with the minutes.
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
    /// Send RSTs to both ends when an established flow idles out. Default: `false`.
    #[serde(default)]
    pub enable_tcp_reset: bool,
}

fn default_outbound_protocol() -> Protocol {
    Protocol::All
}
