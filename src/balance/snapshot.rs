//! The immutable [`Snapshot`] the workers read: a validated [`Config`] plus a [`Health`] view,
//! compiled into flat tables with O(1) lookups for the packet path.
//!
//! Identity: `FrontendId`, `RuleId`, `MemberId`, ... are indices into this snapshot's vectors and
//! are only meaningful within one snapshot. Flow entries should store a member's address and
//! port and map back with [`Snapshot::member_by_addr`] / [`Snapshot::rule_member_by_addr`].
//!
//! Addresses passed to lookups are host-order `u32` (`u32::from(Ipv4Addr)`); protocols are IP
//! protocol numbers (6 = TCP, 17 = UDP).
//!
//! Families (docs/design.md §2.5): frontends, members and rules may be IPv6. The IPv4 maps and
//! lookups are unchanged and hold IPv4 objects only; IPv6 objects are in parallel maps keyed by
//! the host-order `u128` address (`u128::from(Ipv6Addr)`), read by the same lookups with a `6`
//! suffix ([`Snapshot::lookup6`], [`Snapshot::reverse_nat6`], [`Snapshot::is_frontend6`],
//! [`Snapshot::member_by_addr6`], ...). Validation makes a rule's frontend and members one
//! family, so an IPv4 lookup only ever yields IPv4 members, and the other way round.
//!
//! Eligibility is per rule, because two rules over one pool may use different probes: a member
//! is eligible for a rule when (its probe for that rule is up, or the rule has no probe, or its
//! `admin_state` is `up`) and `admin_state != down`. When no member of a rule is eligible, the
//! rule is `all_down`; with `no_healthy_backends = "all"` every member whose `admin_state` is not
//! `down` is then treated as eligible. Inbound NAT rules have no probe.

//!
//! The room is in three parts: this file holds the snapshot's types; `compile` (cold) builds a
//! snapshot from a configuration, and `lookup` (hot) holds the per-packet reads.

mod compile;
mod lookup;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::maglev::Maglev;
use crate::config::{
    AdminState, Config, ConfigError, DsrEncapsulation, Ipv4Cidr, Ipv6Cidr, LoadDistribution,
    MissingFlow, NoHealthyBackends, ProbeProtocol, Protocol,
};
use compile::TableKey;
use lookup::{key, Index6, RuleCache};

pub use crate::config::snat_plan::{default_snat_ports, SNAT_FIRST_PORT, SNAT_LAST_PORT};

/// Lookup map type (per-process hasher: these maps are not the distribution hash).
pub type Map<K, V> = hashbrown::HashMap<K, V, ahash::RandomState>;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            /// The index into the snapshot's vector.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id_type!(
    /// Index of a rule (load-balancing or inbound NAT) in [`Snapshot::rules`].
    RuleId
);
id_type!(
    /// Index of a member in [`Snapshot::members`] (one per pool membership).
    MemberId
);
id_type!(
    /// Index of a frontend in [`Snapshot::frontends`].
    FrontendId
);
id_type!(
    /// Index of a pool in [`Snapshot::pools`].
    PoolId
);
id_type!(
    /// Index of a probe in [`Snapshot::probes`].
    ProbeId
);
id_type!(
    /// Index of an interface in [`Snapshot::interfaces`].
    InterfaceId
);

/// Result of one probe target, as published by the slow path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProbeState {
    /// No result yet (counts as not up).
    #[default]
    Unknown,
    /// The probe succeeds.
    Up,
    /// The probe fails.
    Down,
}

/// Probe results keyed by (probe name, member address): what the slow path measures.
///
/// While `settling` (after a start, until every probe target has its first result; docs/design.md
/// §3.8), an `Unknown` member counts as up in the Maglev tables, so a mid-flow packet rehashed
/// after a restart goes where it went before; new TCP flows to probed rules are held meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    states: std::collections::HashMap<String, std::collections::HashMap<IpAddr, ProbeState>>,
    settling: bool,
}

impl Health {
    /// No results: every probed member is `Unknown` (and counts as not up).
    pub fn new() -> Self {
        Health::default()
    }

    /// No results yet, at start: settling until the first probe round completes.
    pub fn at_start() -> Self {
        Health {
            settling: true,
            ..Health::default()
        }
    }

    /// Whether the first probe round is still under way (`Unknown` counts as up).
    pub fn settling(&self) -> bool {
        self.settling
    }

    /// Ends (or restarts) the settling period.
    pub fn set_settling(&mut self, settling: bool) {
        self.settling = settling;
    }

    /// Whether `probe` against `addr` counts as up: `Up`, or `Unknown` while settling.
    pub fn counts_up(&self, probe: &str, addr: impl Into<IpAddr>) -> bool {
        match self.get(probe, addr) {
            ProbeState::Up => true,
            ProbeState::Unknown => self.settling,
            ProbeState::Down => false,
        }
    }

    /// Every probe of `config` up on every member of every pool (for `check` and tests).
    pub fn all_up(config: &Config) -> Self {
        let mut h = Health::new();
        for p in &config.probes {
            for pool in &config.backend_pools {
                for m in &pool.members {
                    h.set(&p.name, m.address, ProbeState::Up);
                }
            }
        }
        h
    }

    /// Records the state of `probe` against `addr`.
    pub fn set(&mut self, probe: &str, addr: impl Into<IpAddr>, state: ProbeState) {
        self.states
            .entry(probe.to_string())
            .or_default()
            .insert(addr.into(), state);
    }

    /// The state of `probe` against `addr` (`Unknown` if never set).
    pub fn get(&self, probe: &str, addr: impl Into<IpAddr>) -> ProbeState {
        self.states
            .get(probe)
            .and_then(|m| m.get(&addr.into()))
            .copied()
            .unwrap_or_default()
    }
}

/// An interface of the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Name from the config.
    pub name: String,
    /// DPDK port name.
    pub port: String,
    /// Own address and prefix.
    pub address: Ipv4Cidr,
    /// Gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Own IPv6 address and prefix, if any.
    pub address6: Option<Ipv6Cidr>,
    /// IPv6 gateway, if any.
    pub gateway6: Option<Ipv6Addr>,
    /// IP MTU.
    pub mtu: u16,
}

/// A frontend (VIP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendInfo {
    /// Name from the config.
    pub name: String,
    /// The VIP (IPv4 or IPv6).
    pub addr: IpAddr,
    /// Interface answering ARP (or neighbour solicitations) for it, if any.
    pub interface: Option<InterfaceId>,
    /// Rules on this frontend (load-balancing and inbound NAT).
    pub rules: Vec<RuleId>,
}

/// A backend pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// Name from the config.
    pub name: String,
    /// Floating-IP delivery.
    pub dsr_encapsulation: DsrEncapsulation,
    /// GUE destination port.
    pub gue_port: u16,
    /// Members in config order.
    pub members: Vec<MemberId>,
}

/// A member of a pool (the same address in two pools is two members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Name (unique in its pool).
    pub name: String,
    /// Its pool.
    pub pool: PoolId,
    /// The DIP (IPv4 or IPv6).
    pub addr: IpAddr,
    /// Weight (>= 1).
    pub weight: u32,
    /// Operator override.
    pub admin_state: AdminState,
    /// Egress interface: the one it is on-link of, else one with a gateway.
    pub interface: Option<InterfaceId>,
    /// Next hop: the member itself when on-link, else the interface's gateway of its family.
    pub next_hop: Option<IpAddr>,
    /// Whether the member is on-link of `interface`.
    pub on_link: bool,
}

/// An IPv4 address as the IPv4 data path keys it (host-order `u32`); 0 for IPv6.
#[inline]
pub fn host4(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(_) => 0,
    }
}

/// The IPv4 address of `ip`, if it is one (for the IPv4-only parts: ARP, BGP, SNAT).
#[inline]
pub fn ipv4_of(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// An IPv6 address as the IPv6 lookups key it (host-order `u128`); 0 for IPv4.
#[inline]
pub fn host6(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V6(a) => u128::from(a),
        IpAddr::V4(_) => 0,
    }
}

impl MemberInfo {
    /// The DIP as a host-order `u32` (the IPv4 data path's form); 0 for an IPv6 member, which
    /// no IPv4 rule has.
    #[inline]
    pub fn addr4(&self) -> u32 {
        host4(self.addr)
    }

    /// The DIP as a host-order `u128`; 0 for an IPv4 member.
    #[inline]
    pub fn addr6(&self) -> u128 {
        host6(self.addr)
    }

    /// The next hop when it is IPv4.
    #[inline]
    pub fn next_hop4(&self) -> Option<Ipv4Addr> {
        self.next_hop.and_then(ipv4_of)
    }
}

/// A health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    /// Name from the config.
    pub name: String,
    /// Protocol.
    pub protocol: ProbeProtocol,
    /// Port probed on each member.
    pub port: u16,
    /// GET path for http/https.
    pub request_path: Option<String>,
    /// Seconds between probes.
    pub interval_seconds: u32,
    /// Consecutive results to flip.
    pub probe_threshold: u32,
    /// Members this probe watches (members of pools of rules using it), deduplicated.
    pub members: Vec<MemberId>,
}

/// What kind of rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// Load-balancing rule over a pool (Maglev).
    LoadBalancing,
    /// Inbound NAT rule to one member.
    InboundNat,
    /// Inbound NAT port range over a pool: frontend port `start + slot` -> member in `slot`.
    InboundNatRange,
}

/// A compiled load-balancing or inbound NAT rule: everything the data path needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its id.
    pub id: RuleId,
    /// Name from the config.
    pub name: String,
    /// Kind.
    pub kind: RuleKind,
    /// Frontend.
    pub frontend: FrontendId,
    /// The VIP (of the family of every member).
    pub frontend_addr: IpAddr,
    /// Protocol (`All` = TCP and UDP, or every protocol when `ha_ports`).
    pub protocol: Protocol,
    /// HA ports: matches every protocol and port of the frontend; ports are kept.
    pub ha_ports: bool,
    /// Frontend port (first port of a range; 0 for HA ports).
    pub frontend_port: u16,
    /// Last frontend port (= `frontend_port` except for ranges).
    pub frontend_port_end: u16,
    /// Backend port (0 for HA ports: keep the packet's port).
    pub backend_port: u16,
    /// Floating IP (DSR): the destination stays the VIP.
    pub floating_ip: bool,
    /// Floating-IP delivery of the pool.
    pub dsr_encapsulation: DsrEncapsulation,
    /// GUE destination port of the pool.
    pub gue_port: u16,
    /// Distribution tuple.
    pub load_distribution: LoadDistribution,
    /// Idle timeout in seconds.
    pub idle_timeout_secs: u32,
    /// RST both ends on idle expiry of an established flow.
    pub enable_tcp_reset: bool,
    /// Pool (the target's pool for single-member NAT).
    pub pool: PoolId,
    /// Probe, for load-balancing rules that have one.
    pub probe: Option<ProbeId>,
    /// Candidate members: the pool's members, or the single NAT target.
    pub members: Vec<MemberId>,
    /// Effective eligibility, parallel to `members` (includes the `"all"` fallback).
    pub eligible: Vec<bool>,
    /// No member passes its probe/admin state (before the `"all"` fallback).
    pub all_down: bool,
    /// Range rules: member of each slot (`frontend_port + slot`).
    pub slots: Vec<Option<MemberId>>,
    /// Maglev table index into the snapshot (load-balancing rules).
    table: Option<usize>,
}

impl Rule {
    /// The VIP as a host-order `u32` (the IPv4 data path's form); 0 for an IPv6 rule.
    #[inline]
    pub fn frontend_addr4(&self) -> u32 {
        host4(self.frontend_addr)
    }

    /// The backend port for a packet to `dst_port` (HA ports keep it).
    #[inline]
    pub fn backend_port_for(&self, dst_port: u16) -> u16 {
        if self.ha_ports {
            dst_port
        } else {
            self.backend_port
        }
    }

    /// Position of `member` in `members`.
    fn position(&self, member: MemberId) -> Option<usize> {
        self.members.iter().position(|m| *m == member)
    }

    /// The frontend port a range rule maps to `member` (its slot), or the rule's frontend port.
    pub fn frontend_port_of(&self, member: MemberId) -> Option<u16> {
        match self.kind {
            RuleKind::InboundNatRange => self
                .slots
                .iter()
                .position(|s| *s == Some(member))
                .and_then(|slot| u16::try_from(usize::from(self.frontend_port) + slot).ok()),
            _ => Some(self.frontend_port),
        }
    }
}

/// The SNAT port block of one member under an outbound rule, on one of the rule's frontend IPs
/// (a member has one block on each; docs/design.md §3.5.6). It stays where it is across reloads
/// while the member stays in the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnatBlock {
    /// The member.
    pub member: MemberId,
    /// Frontend IP whose ports are used (of the member's family).
    pub frontend_addr: IpAddr,
    /// First port of the block.
    pub first_port: u16,
    /// Number of ports.
    pub count: u16,
}

impl SnatBlock {
    /// The frontend IP as a host-order `u32`; 0 for an IPv6 block.
    #[inline]
    pub fn frontend4(&self) -> u32 {
        host4(self.frontend_addr)
    }

    /// The frontend IP as a host-order `u128`; 0 for an IPv4 block.
    #[inline]
    pub fn frontend6(&self) -> u128 {
        host6(self.frontend_addr)
    }

    /// The last port of the block.
    #[inline]
    pub fn last_port(&self) -> u16 {
        self.first_port.saturating_add(self.count.saturating_sub(1))
    }

    /// Whether `port` is in the block.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        port >= self.first_port && port <= self.last_port()
    }

    /// The sub-block worker `worker` of `workers` allocates from: (first port, number of
    /// ports). The block is cut into `workers` contiguous sub-blocks of `count / workers` ports
    /// in worker order, the last also taking the remainder (docs/design.md §3.5.6, §6.2).
    pub fn worker_ports(&self, worker: u16, workers: u16) -> (u16, u16) {
        crate::config::snat_plan::sub_block(self.first_port, self.count, worker, workers)
    }
}

/// The worker that owns the SNAT translation of `port` in `block` with `workers` workers: the
/// one whose sub-block holds the port, so a reply to frontend IP:port names its owner
/// (docs/design.md §6.2). `None` when the port is not in the block.
#[inline]
pub fn snat_port_owner(block: &SnatBlock, port: u16, workers: u16) -> Option<u16> {
    crate::config::snat_plan::sub_block_owner(block.first_port, block.count, port, workers)
}

/// One block's ports in the (frontend IP, protocol) → blocks index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SnatPortRange {
    first: u16,
    last: u16,
    outbound: u32,
    block: u32,
}

/// A compiled outbound rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundInfo {
    /// Name from the config.
    pub name: String,
    /// SNAT frontend addresses (one family: the pool's).
    pub frontends: Vec<IpAddr>,
    /// Pool.
    pub pool: PoolId,
    /// Protocol (`All` = TCP and UDP).
    pub protocol: Protocol,
    /// Ports per member (configured or from Azure's default table).
    pub ports_per_member: u16,
    /// Idle timeout in seconds.
    pub idle_timeout_secs: u32,
    /// RST on idle expiry.
    pub enable_tcp_reset: bool,
    /// One block per pool member and frontend IP, member by member in pool order, each
    /// member's in the order of `frontends`; a member whose block found no room has fewer.
    pub blocks: Vec<SnatBlock>,
}

impl OutboundInfo {
    /// Each member with blocks and its ports over all of them (every frontend IP of the rule),
    /// in pool order.
    pub fn ports_by_member(&self) -> impl Iterator<Item = (MemberId, u64)> + '_ {
        self.blocks
            .chunk_by(|a, b| a.member == b.member)
            .filter_map(|c| {
                let ports = c.iter().map(|b| u64::from(b.count)).sum();
                Some((c.first()?.member, ports))
            })
    }
}

/// Translation of a NAT reply from a member back to the VIP: `ReverseNat` from
/// [`Snapshot::reverse_nat`], `ReverseNat<Ipv6Addr>` from [`Snapshot::reverse_nat6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReverseNat<A = Ipv4Addr> {
    /// The rule the reply belongs to.
    pub rule: RuleId,
    /// The VIP (new source address).
    pub vip: A,
    /// The frontend port (new source port).
    pub vip_port: u16,
    /// The member the reply comes from.
    pub member: MemberId,
}

/// The compiled, immutable configuration the data path reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases by one with each `compile_with_previous`.
    pub epoch: u64,
    /// A number no other snapshot compiled by this process has (clones share it): what a worker
    /// compares to know whether the snapshot changed since a flow was last checked.
    uid: u64,
    /// Appliance name.
    pub name: String,
    /// Distribution hash seed.
    pub hash_seed: u64,
    /// Non-SYN TCP without a flow entry.
    pub missing_flow: MissingFlow,
    /// The first probe round is under way (docs/design.md §3.8): unknown members count as up and
    /// SYNs to rules with a probe are dropped as `probes_pending`.
    pub probes_settling: bool,
    /// All-members-down behaviour.
    pub no_healthy_backends: NoHealthyBackends,
    /// Interfaces.
    pub interfaces: Vec<InterfaceInfo>,
    /// Frontends.
    pub frontends: Vec<FrontendInfo>,
    /// Pools.
    pub pools: Vec<PoolInfo>,
    /// Members of all pools.
    pub members: Vec<MemberInfo>,
    /// Probes.
    pub probes: Vec<ProbeInfo>,
    /// Load-balancing rules, then inbound NAT rules, in config order.
    pub rules: Vec<Rule>,
    /// Outbound rules.
    pub outbound: Vec<OutboundInfo>,
    /// The longest idle timeout of the load-balancing and inbound NAT rules, seconds (0 without
    /// rules): how long a worker remembers a flow it expired, so that a late packet of any rule's
    /// flow is still recognised.
    pub longest_idle_timeout_secs: u32,
    /// Some rule delivers by floating IP over IPIP or GUE: its frames may get an outer header in
    /// their headroom, whose cache line the worker then prefetches with the frame's first.
    pub encapsulates: bool,
    tables: Vec<Arc<Maglev>>,
    table_keys: Vec<TableKey>,
    frontend_by_addr: Map<u32, FrontendId>,
    by_key: Map<u64, RuleId>,
    /// Direct-mapped copy of `by_key` for the packet path (see [`RuleCache`]).
    rule_cache: RuleCache,
    ha_by_addr: Map<u32, RuleId>,
    reverse_by_key: Map<u64, (RuleId, MemberId)>,
    reverse_ha: Map<u32, (RuleId, MemberId)>,
    member_by_addr: Map<u32, MemberId>,
    pool_member_by_addr: Map<(PoolId, u32), MemberId>,
    /// (member address, protocol) → (outbound rule, first block, number of blocks).
    outbound_by_member: Map<(u32, u8), (usize, usize, usize)>,
    /// The same for IPv6 members (host-order `u128` address).
    outbound_by_member6: Map<(u128, u8), (usize, usize, usize)>,
    /// (frontend IP, protocol) → the blocks on it, sorted by first port.
    snat_by_port: Map<(u32, u8), Vec<SnatPortRange>>,
    /// SNAT blocks that found no room (see `Snapshot::try_compile_with_previous`).
    snat_errors: Vec<ConfigError>,
    /// The IPv6 frontends, rules and members, keyed by `u128` address.
    v6: Index6,
}

impl Snapshot {
    /// This snapshot's process-unique number (see the field).
    #[inline(always)]
    pub fn uid(&self) -> u64 {
        self.uid
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests6;
