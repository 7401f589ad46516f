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
//! Eligibility is per rule, because two rules over one pool may use different probes: a member
//! is eligible for a rule when (its probe for that rule is up, or the rule has no probe, or its
//! `admin_state` is `up`) and `admin_state != down`. When no member of a rule is eligible, the
//! rule is `all_down`; with `no_healthy_backends = "all"` every member whose `admin_state` is not
//! `down` is then treated as eligible. Inbound NAT rules have no probe.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::maglev::{Maglev, MaglevMember};
use crate::config::{
    AdminState, Config, DsrEncapsulation, Ipv4Cidr, LoadDistribution, MissingFlow,
    NoHealthyBackends, ProbeProtocol, Protocol,
};

/// Lookup map type (per-process hasher: these maps are not the distribution hash).
pub type Map<K, V> = hashbrown::HashMap<K, V, ahash::RandomState>;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// First SNAT port of each frontend IP; 64,000 ports follow (1024..=65023).
pub const SNAT_FIRST_PORT: u16 = 1024;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    states: std::collections::HashMap<String, std::collections::HashMap<Ipv4Addr, ProbeState>>,
}

impl Health {
    /// No results: every probed member is `Unknown`.
    pub fn new() -> Self {
        Health::default()
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
    pub fn set(&mut self, probe: &str, addr: Ipv4Addr, state: ProbeState) {
        self.states
            .entry(probe.to_string())
            .or_default()
            .insert(addr, state);
    }

    /// The state of `probe` against `addr` (`Unknown` if never set).
    pub fn get(&self, probe: &str, addr: Ipv4Addr) -> ProbeState {
        self.states
            .get(probe)
            .and_then(|m| m.get(&addr))
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
    /// IP MTU.
    pub mtu: u16,
}

/// A frontend (VIP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendInfo {
    /// Name from the config.
    pub name: String,
    /// The VIP.
    pub addr: Ipv4Addr,
    /// Interface answering ARP for it, if any.
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
    /// The DIP.
    pub addr: Ipv4Addr,
    /// Weight (>= 1).
    pub weight: u32,
    /// Operator override.
    pub admin_state: AdminState,
    /// Egress interface: the one it is on-link of, else one with a gateway.
    pub interface: Option<InterfaceId>,
    /// Next hop: the member itself when on-link, else the interface's gateway.
    pub next_hop: Option<Ipv4Addr>,
    /// Whether the member is on-link of `interface`.
    pub on_link: bool,
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
    /// The VIP.
    pub frontend_addr: Ipv4Addr,
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

/// The SNAT port block of one member under an outbound rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnatBlock {
    /// The member.
    pub member: MemberId,
    /// Frontend IP whose ports are used.
    pub frontend_addr: Ipv4Addr,
    /// First port of the block.
    pub first_port: u16,
    /// Number of ports.
    pub count: u16,
}

/// A compiled outbound rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundInfo {
    /// Name from the config.
    pub name: String,
    /// SNAT frontend addresses.
    pub frontends: Vec<Ipv4Addr>,
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
    /// One block per pool member, in pool order; frontends are filled one after another.
    pub blocks: Vec<SnatBlock>,
}

/// Translation of a NAT reply from a member back to the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReverseNat {
    /// The rule the reply belongs to.
    pub rule: RuleId,
    /// The VIP (new source address).
    pub vip: Ipv4Addr,
    /// The frontend port (new source port).
    pub vip_port: u16,
}

/// The compiled, immutable configuration the data path reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases by one with each `compile_with_previous`.
    pub epoch: u64,
    /// Appliance name.
    pub name: String,
    /// Distribution hash seed.
    pub hash_seed: u64,
    /// Non-SYN TCP without a flow entry.
    pub missing_flow: MissingFlow,
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
    tables: Vec<Arc<Maglev>>,
    table_keys: Vec<TableKey>,
    frontend_by_addr: Map<u32, FrontendId>,
    by_key: Map<u64, RuleId>,
    /// Direct-mapped copy of `by_key` for the packet path (see [`RuleCache`]).
    rule_cache: RuleCache,
    ha_by_addr: Map<u32, RuleId>,
    reverse_by_key: Map<u64, RuleId>,
    reverse_ha: Map<u32, RuleId>,
    member_by_addr: Map<u32, MemberId>,
    pool_member_by_addr: Map<(PoolId, u32), MemberId>,
    outbound_by_member: Map<(u32, u8), (usize, usize)>,
}

/// A direct-mapped array of (key, rule) copied from the `(address, protocol, port) → rule` map:
/// one multiply, one load and one compare instead of a hash-map probe. A key that collides with
/// an earlier one is simply not copied; lookups that miss here fall back to the map, so the
/// result is always the map's. Up to [`RuleCache::MAX_SLOTS`] slots (16 bytes each), at least
/// twice the number of keys when that fits.
#[derive(Debug, Clone, Default)]
struct RuleCache {
    slots: Box<[(u64, u32)]>,
    shift: u32,
}

impl RuleCache {
    /// Largest number of slots (256 KiB).
    const MAX_SLOTS: usize = 1 << 14;
    /// Rule value of an empty slot.
    const EMPTY: u32 = u32::MAX;

    fn build(map: &Map<u64, RuleId>) -> RuleCache {
        let n = (map.len() * 2)
            .clamp(16, Self::MAX_SLOTS)
            .next_power_of_two();
        let mut slots = vec![(0u64, Self::EMPTY); n].into_boxed_slice();
        let shift = 64 - n.trailing_zeros();
        // Deterministic: fill in key order so that collisions resolve the same way every time.
        let mut keys: Vec<(u64, RuleId)> = map.iter().map(|(k, r)| (*k, *r)).collect();
        keys.sort_unstable();
        for (k, r) in keys {
            let i = Self::index(k, shift);
            if slots[i].1 == Self::EMPTY && r.0 != Self::EMPTY {
                slots[i] = (k, r.0);
            }
        }
        RuleCache { slots, shift }
    }

    #[inline(always)]
    fn index(k: u64, shift: u32) -> usize {
        (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
    }

    #[inline(always)]
    fn get(&self, k: u64) -> Option<RuleId> {
        let &(sk, r) = self.slots.get(Self::index(k, self.shift))?;
        (sk == k && r != Self::EMPTY).then_some(RuleId(r))
    }
}

/// What a Maglev table depends on besides the seed: (name, weight, eligible) of each member.
type TableKey = Vec<(String, u32, bool)>;

#[inline]
fn key(ip: u32, proto: u8, port: u16) -> u64 {
    (u64::from(ip) << 32) | (u64::from(proto) << 16) | u64::from(port)
}

fn protos(p: Protocol) -> &'static [u8] {
    match p {
        Protocol::Tcp => &[IPPROTO_TCP],
        Protocol::Udp => &[IPPROTO_UDP],
        Protocol::All => &[IPPROTO_TCP, IPPROTO_UDP],
    }
}

/// Azure's default SNAT ports per member by pool size (0 above 1000 members).
pub fn default_snat_ports(pool_size: usize) -> u16 {
    match pool_size {
        0..=50 => 1024,
        51..=100 => 512,
        101..=200 => 256,
        201..=400 => 128,
        401..=800 => 64,
        801..=1000 => 32,
        _ => 0,
    }
}

fn port16(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(0)
}

impl Snapshot {
    /// Compiles a validated config with a health view (range slots in pool order).
    pub fn compile(config: &Config, health: &Health) -> Snapshot {
        Snapshot::compile_with_previous(config, health, None)
    }

    /// Compiles, keeping the inbound-NAT range slots of members that stay in their rule.
    ///
    /// A config that did not pass validation compiles without panicking, but dangling
    /// references are skipped.
    pub fn compile_with_previous(
        config: &Config,
        health: &Health,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let mut s = Snapshot {
            epoch: previous.map(|p| p.epoch + 1).unwrap_or(0),
            name: config.appliance.name.clone(),
            hash_seed: config.appliance.hash_seed,
            missing_flow: config.appliance.missing_flow,
            no_healthy_backends: config.appliance.no_healthy_backends,
            interfaces: Vec::new(),
            frontends: Vec::new(),
            pools: Vec::new(),
            members: Vec::new(),
            probes: Vec::new(),
            rules: Vec::new(),
            outbound: Vec::new(),
            tables: Vec::new(),
            table_keys: Vec::new(),
            frontend_by_addr: Map::default(),
            by_key: Map::default(),
            rule_cache: RuleCache::default(),
            ha_by_addr: Map::default(),
            reverse_by_key: Map::default(),
            reverse_ha: Map::default(),
            member_by_addr: Map::default(),
            pool_member_by_addr: Map::default(),
            outbound_by_member: Map::default(),
        };
        s.interfaces = config
            .interfaces
            .iter()
            .map(|i| InterfaceInfo {
                name: i.name.clone(),
                port: i.port.clone(),
                address: i.address,
                gateway: i.gateway,
                mtu: u16::try_from(i.mtu).unwrap_or(1500),
            })
            .collect();
        let itf_id = |name: &str| {
            config
                .interfaces
                .iter()
                .position(|i| i.name == name)
                .map(|i| InterfaceId(i as u32))
        };
        for (i, fe) in config.frontends.iter().enumerate() {
            s.frontend_by_addr
                .insert(u32::from(fe.address), FrontendId(i as u32));
            s.frontends.push(FrontendInfo {
                name: fe.name.clone(),
                addr: fe.address,
                interface: fe.interface.as_deref().and_then(itf_id),
                rules: Vec::new(),
            });
        }
        for (pi, pool) in config.backend_pools.iter().enumerate() {
            let pid = PoolId(pi as u32);
            let mut ids = Vec::with_capacity(pool.members.len());
            for m in &pool.members {
                let id = MemberId(s.members.len() as u32);
                let onlink = config
                    .interfaces
                    .iter()
                    .position(|i| i.address.contains(m.address));
                let (interface, next_hop, on_link) = match onlink {
                    Some(i) => (Some(InterfaceId(i as u32)), Some(m.address), true),
                    None => match config.interfaces.iter().position(|i| i.gateway.is_some()) {
                        Some(i) => (
                            Some(InterfaceId(i as u32)),
                            config.interfaces[i].gateway,
                            false,
                        ),
                        None => (None, None, false),
                    },
                };
                s.members.push(MemberInfo {
                    name: m.name.clone(),
                    pool: pid,
                    addr: m.address,
                    weight: m.weight.max(1),
                    admin_state: m.admin_state,
                    interface,
                    next_hop,
                    on_link,
                });
                s.member_by_addr.entry(u32::from(m.address)).or_insert(id);
                s.pool_member_by_addr
                    .entry((pid, u32::from(m.address)))
                    .or_insert(id);
                ids.push(id);
            }
            s.pools.push(PoolInfo {
                name: pool.name.clone(),
                dsr_encapsulation: pool.dsr_encapsulation,
                gue_port: port16(pool.gue_port),
                members: ids,
            });
        }
        s.probes = config
            .probes
            .iter()
            .map(|p| ProbeInfo {
                name: p.name.clone(),
                protocol: p.protocol,
                port: port16(p.port),
                request_path: p.request_path.clone(),
                interval_seconds: p.interval_seconds,
                probe_threshold: p.probe_threshold,
                members: Vec::new(),
            })
            .collect();
        let pool_id = |name: &str| {
            config
                .backend_pools
                .iter()
                .position(|p| p.name == name)
                .map(|p| PoolId(p as u32))
        };
        let fe_id = |name: &str| {
            config
                .frontends
                .iter()
                .position(|f| f.name == name)
                .map(|f| FrontendId(f as u32))
        };
        let probe_id = |name: &str| {
            config
                .probes
                .iter()
                .position(|p| p.name == name)
                .map(|p| ProbeId(p as u32))
        };
        let mut table_cache: Map<TableKey, usize> = Map::default();
        // Tables of the previous snapshot, reused when members, weights and health are unchanged.
        let reusable: Map<&TableKey, &Arc<Maglev>> = previous
            .filter(|p| p.hash_seed == s.hash_seed)
            .map(|p| p.table_keys.iter().zip(&p.tables).collect())
            .unwrap_or_default();

        for r in &config.load_balancing_rules {
            let (Some(fe), Some(pool)) = (fe_id(&r.frontend), pool_id(&r.backend_pool)) else {
                continue;
            };
            let probe = r.probe.as_deref().and_then(probe_id);
            let members = s.pools[pool.index()].members.clone();
            if let Some(p) = probe {
                let pm = &mut s.probes[p.index()].members;
                for m in &members {
                    if !pm.contains(m) {
                        pm.push(*m);
                    }
                }
            }
            let (eligible, all_down) = s.eligibility(&members, probe, health);
            let tkey: TableKey = members
                .iter()
                .zip(&eligible)
                .map(|(m, e)| {
                    let info = &s.members[m.index()];
                    (info.name.clone(), info.weight, *e)
                })
                .collect();
            let ti = match table_cache.get(&tkey) {
                Some(ti) => *ti,
                None => {
                    let table = match reusable.get(&tkey) {
                        Some(t) => Arc::clone(t),
                        None => {
                            let mm: Vec<MaglevMember<'_>> = tkey
                                .iter()
                                .map(|(name, weight, eligible)| MaglevMember {
                                    name,
                                    weight: *weight,
                                    eligible: *eligible,
                                })
                                .collect();
                            Arc::new(Maglev::build(s.hash_seed, &mm))
                        }
                    };
                    s.tables.push(table);
                    s.table_keys.push(tkey.clone());
                    table_cache.insert(tkey, s.tables.len() - 1);
                    s.tables.len() - 1
                }
            };
            let ha = r.frontend_port == 0 && r.protocol == Protocol::All;
            let fport = port16(r.frontend_port);
            let bport = if ha {
                0
            } else {
                port16(r.backend_port.unwrap_or(r.frontend_port))
            };
            let p = &s.pools[pool.index()];
            s.rules.push(Rule {
                id: RuleId(s.rules.len() as u32),
                name: r.name.clone(),
                kind: RuleKind::LoadBalancing,
                frontend: fe,
                frontend_addr: s.frontends[fe.index()].addr,
                protocol: r.protocol,
                ha_ports: ha,
                frontend_port: fport,
                frontend_port_end: fport,
                backend_port: bport,
                floating_ip: r.enable_floating_ip,
                dsr_encapsulation: p.dsr_encapsulation,
                gue_port: p.gue_port,
                load_distribution: r.load_distribution,
                idle_timeout_secs: crate::config::validate::idle_timeout_seconds(
                    r.idle_timeout_minutes,
                    r.idle_timeout_seconds,
                ),
                enable_tcp_reset: r.enable_tcp_reset,
                pool,
                probe,
                members,
                eligible,
                all_down,
                slots: Vec::new(),
                table: Some(ti),
            });
        }

        for r in &config.inbound_nat_rules {
            let Some(fe) = fe_id(&r.frontend) else {
                continue;
            };
            let (kind, pool, members, lo, hi) = match (&r.target, &r.backend_pool) {
                (Some(t), _) => {
                    let Some(pool) = pool_id(&t.pool) else {
                        continue;
                    };
                    let Some(m) = s.pools[pool.index()]
                        .members
                        .iter()
                        .copied()
                        .find(|m| s.members[m.index()].name == t.member)
                    else {
                        continue;
                    };
                    let p = port16(r.frontend_port.unwrap_or(0));
                    (RuleKind::InboundNat, pool, vec![m], p, p)
                }
                (None, Some(pn)) => {
                    let Some(pool) = pool_id(pn) else {
                        continue;
                    };
                    let lo = port16(r.frontend_port_range_start.unwrap_or(0));
                    let hi = port16(r.frontend_port_range_end.unwrap_or(0)).max(lo);
                    let members = s.pools[pool.index()].members.clone();
                    (RuleKind::InboundNatRange, pool, members, lo, hi)
                }
                (None, None) => continue,
            };
            let (eligible, all_down) = s.eligibility(&members, None, health);
            let slots = if kind == RuleKind::InboundNatRange {
                let prev_rule = previous.and_then(|p| {
                    p.rules
                        .iter()
                        .find(|x| {
                            x.name == r.name
                                && x.kind == RuleKind::InboundNatRange
                                && p.pools[x.pool.index()].name == s.pools[pool.index()].name
                        })
                        .map(|x| (p, x))
                });
                s.assign_slots(&members, usize::from(hi - lo) + 1, prev_rule)
            } else {
                Vec::new()
            };
            let p = &s.pools[pool.index()];
            s.rules.push(Rule {
                id: RuleId(s.rules.len() as u32),
                name: r.name.clone(),
                kind,
                frontend: fe,
                frontend_addr: s.frontends[fe.index()].addr,
                protocol: r.protocol,
                ha_ports: false,
                frontend_port: lo,
                frontend_port_end: hi,
                backend_port: port16(r.backend_port),
                floating_ip: r.enable_floating_ip,
                dsr_encapsulation: p.dsr_encapsulation,
                gue_port: p.gue_port,
                load_distribution: LoadDistribution::Default,
                idle_timeout_secs: crate::config::validate::idle_timeout_seconds(
                    r.idle_timeout_minutes,
                    r.idle_timeout_seconds,
                ),
                enable_tcp_reset: r.enable_tcp_reset,
                pool,
                probe: None,
                members,
                eligible,
                all_down,
                slots,
                table: None,
            });
        }

        // Lookup maps.
        for ri in 0..s.rules.len() {
            let r = &s.rules[ri];
            let id = r.id;
            let vip = u32::from(r.frontend_addr);
            s.frontends[r.frontend.index()].rules.push(id);
            if r.ha_ports {
                s.ha_by_addr.entry(vip).or_insert(id);
            } else {
                for &p in protos(r.protocol) {
                    for port in r.frontend_port..=r.frontend_port_end {
                        s.by_key.entry(key(vip, p, port)).or_insert(id);
                    }
                }
            }
            if !r.floating_ip {
                for m in &r.members {
                    let addr = u32::from(s.members[m.index()].addr);
                    if r.ha_ports {
                        s.reverse_ha.entry(addr).or_insert(id);
                    } else {
                        for &p in protos(r.protocol) {
                            s.reverse_by_key
                                .entry(key(addr, p, r.backend_port))
                                .or_insert(id);
                        }
                    }
                }
            }
        }

        for r in &config.outbound_rules {
            let Some(pool) = pool_id(&r.backend_pool) else {
                continue;
            };
            let frontends: Vec<Ipv4Addr> = r
                .frontends
                .iter()
                .filter_map(|f| fe_id(f))
                .map(|f| s.frontends[f.index()].addr)
                .collect();
            let members = s.pools[pool.index()].members.clone();
            let ppm = if r.allocated_outbound_ports == 0 {
                default_snat_ports(members.len())
            } else {
                u16::try_from(r.allocated_outbound_ports).unwrap_or(0)
            };
            let per_fe = if ppm == 0 {
                0
            } else {
                64_000 / usize::from(ppm)
            };
            let oi = s.outbound.len();
            let mut blocks = Vec::with_capacity(members.len());
            for (k, m) in members.iter().enumerate() {
                let (fi, bi) = match k.checked_div(per_fe) {
                    Some(fi) => (fi, k % per_fe),
                    None => (usize::MAX, 0),
                };
                let Some(fa) = frontends.get(fi) else {
                    continue;
                };
                let first = usize::from(SNAT_FIRST_PORT) + bi * usize::from(ppm);
                blocks.push(SnatBlock {
                    member: *m,
                    frontend_addr: *fa,
                    first_port: u16::try_from(first).unwrap_or(0),
                    count: ppm,
                });
                let addr = u32::from(s.members[m.index()].addr);
                for &p in protos(r.protocol) {
                    s.outbound_by_member
                        .entry((addr, p))
                        .or_insert((oi, blocks.len() - 1));
                }
            }
            s.outbound.push(OutboundInfo {
                name: r.name.clone(),
                frontends,
                pool,
                protocol: r.protocol,
                ports_per_member: ppm,
                idle_timeout_secs: crate::config::validate::idle_timeout_seconds(
                    r.idle_timeout_minutes,
                    r.idle_timeout_seconds,
                ),
                enable_tcp_reset: r.enable_tcp_reset,
                blocks,
            });
        }
        s.rule_cache = RuleCache::build(&s.by_key);
        s
    }

    /// Effective eligibility of `members` for a rule with `probe`, and whether all are down.
    fn eligibility(
        &self,
        members: &[MemberId],
        probe: Option<ProbeId>,
        health: &Health,
    ) -> (Vec<bool>, bool) {
        let probe_name = probe.map(|p| self.probes[p.index()].name.as_str());
        let mut eligible: Vec<bool> = members
            .iter()
            .map(|m| {
                let info = &self.members[m.index()];
                let probe_up = match probe_name {
                    Some(p) => health.get(p, info.addr) == ProbeState::Up,
                    None => true,
                };
                (probe_up || info.admin_state == AdminState::Up)
                    && info.admin_state != AdminState::Down
            })
            .collect();
        let all_down = !eligible.iter().any(|e| *e);
        if all_down && self.no_healthy_backends == NoHealthyBackends::All {
            for (e, m) in eligible.iter_mut().zip(members) {
                *e = self.members[m.index()].admin_state != AdminState::Down;
            }
        }
        (eligible, all_down)
    }

    /// Range slots: members keep their previous slot, new members take the lowest free one.
    fn assign_slots(
        &self,
        members: &[MemberId],
        n: usize,
        previous: Option<(&Snapshot, &Rule)>,
    ) -> Vec<Option<MemberId>> {
        let mut slots: Vec<Option<MemberId>> = vec![None; n];
        let mut placed = vec![false; members.len()];
        if let Some((ps, pr)) = previous {
            for (slot, pm) in pr.slots.iter().enumerate() {
                let Some(pm) = pm else { continue };
                let Some(pname) = ps.members.get(pm.index()).map(|m| &m.name) else {
                    continue;
                };
                if slot >= n {
                    continue;
                }
                if let Some(k) = members
                    .iter()
                    .position(|m| &self.members[m.index()].name == pname)
                {
                    if !placed[k] {
                        slots[slot] = Some(members[k]);
                        placed[k] = true;
                    }
                }
            }
        }
        let mut free = 0usize;
        for (k, m) in members.iter().enumerate() {
            if placed[k] {
                continue;
            }
            while free < n && slots[free].is_some() {
                free += 1;
            }
            if free < n {
                slots[free] = Some(*m);
                free += 1;
            }
        }
        slots
    }

    /// The rule for a packet to `dst_ip:dst_port` with IP protocol `proto` (HA ports: any).
    #[inline]
    pub fn lookup_id(&self, dst_ip: u32, proto: u8, dst_port: u16) -> Option<RuleId> {
        let k = key(dst_ip, proto, dst_port);
        if let Some(r) = self.rule_cache.get(k) {
            return Some(r);
        }
        if let Some(r) = self.by_key.get(&k) {
            return Some(*r);
        }
        self.ha_by_addr.get(&dst_ip).copied()
    }

    /// Like [`Snapshot::lookup_id`], returning the rule.
    #[inline]
    pub fn lookup(&self, dst_ip: u32, proto: u8, dst_port: u16) -> Option<&Rule> {
        self.lookup_id(dst_ip, proto, dst_port)
            .and_then(|r| self.rules.get(r.index()))
    }

    /// Whether `ip` is a frontend address.
    #[inline]
    pub fn is_frontend(&self, ip: u32) -> bool {
        self.frontend_by_addr.contains_key(&ip)
    }

    /// The frontend with address `ip`.
    #[inline]
    pub fn frontend_by_addr(&self, ip: u32) -> Option<FrontendId> {
        self.frontend_by_addr.get(&ip).copied()
    }

    /// The non-floating rule a reply from `src_ip:src_port` (a member) belongs to.
    #[inline]
    pub fn reverse(&self, src_ip: u32, proto: u8, src_port: u16) -> Option<&Rule> {
        self.reverse_by_key
            .get(&key(src_ip, proto, src_port))
            .or_else(|| self.reverse_ha.get(&src_ip))
            .and_then(|r| self.rules.get(r.index()))
    }

    /// The translation of a NAT reply from `src_ip:src_port`: VIP and frontend port to restore.
    pub fn reverse_nat(&self, src_ip: u32, proto: u8, src_port: u16) -> Option<ReverseNat> {
        let r = self.reverse(src_ip, proto, src_port)?;
        let vip_port = match r.kind {
            RuleKind::InboundNatRange => {
                let m = self.rule_member_by_addr(r.id, src_ip)?;
                r.frontend_port_of(m)?
            }
            _ if r.ha_ports => src_port,
            _ => r.frontend_port,
        };
        Some(ReverseNat {
            rule: r.id,
            vip: r.frontend_addr,
            vip_port,
        })
    }

    /// The rule with id `id`.
    #[inline]
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.index())
    }

    /// The member with id `id`.
    #[inline]
    pub fn member(&self, id: MemberId) -> Option<&MemberInfo> {
        self.members.get(id.index())
    }

    /// The rule's Maglev table (load-balancing rules).
    pub fn maglev(&self, rule: RuleId) -> Option<&Maglev> {
        self.rule(rule)
            .and_then(|r| r.table)
            .and_then(|t| self.tables.get(t))
            .map(|t| &**t)
    }

    /// Number of distinct Maglev tables (rules with the same members, weights and health share
    /// one; `compile_with_previous` reuses the previous snapshot's unchanged tables).
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    /// Member for a new flow of a load-balancing rule (Maglev) or single-member NAT rule
    /// (the target if eligible); `None` when nothing is eligible or for range rules.
    #[inline]
    pub fn pick(&self, rule: RuleId, hash: u64) -> Option<MemberId> {
        let r = self.rule(rule)?;
        match r.kind {
            RuleKind::LoadBalancing => {
                let t = self.tables.get(r.table?)?;
                let i = t.lookup(hash)? as usize;
                r.members.get(i).copied()
            }
            RuleKind::InboundNat => {
                if *r.eligible.first()? {
                    r.members.first().copied()
                } else {
                    None
                }
            }
            RuleKind::InboundNatRange => None,
        }
    }

    /// Member for a new flow of any rule kind: ranges use the slot of `dst_port`.
    #[inline]
    pub fn choose(&self, rule: RuleId, dst_port: u16, hash: u64) -> Option<MemberId> {
        let r = self.rule(rule)?;
        if r.kind == RuleKind::InboundNatRange {
            let m = self.nat_slot_member(rule, dst_port)?;
            return self.is_eligible(rule, m).then_some(m);
        }
        self.pick(rule, hash)
    }

    /// The member in the slot of `dst_port` of a range rule (eligible or not).
    #[inline]
    pub fn nat_slot_member(&self, rule: RuleId, dst_port: u16) -> Option<MemberId> {
        let r = self.rule(rule)?;
        let slot = dst_port.checked_sub(r.frontend_port)?;
        r.slots.get(usize::from(slot)).copied().flatten()
    }

    /// Whether `member` may receive new flows of `rule` (effective eligibility).
    pub fn is_eligible(&self, rule: RuleId, member: MemberId) -> bool {
        self.rule(rule)
            .and_then(|r| r.position(member).map(|i| r.eligible[i]))
            .unwrap_or(false)
    }

    /// The first member (in config order) with address `ip`.
    #[inline]
    pub fn member_by_addr(&self, ip: u32) -> Option<MemberId> {
        self.member_by_addr.get(&ip).copied()
    }

    /// The member of `rule`'s pool with address `ip`.
    #[inline]
    pub fn rule_member_by_addr(&self, rule: RuleId, ip: u32) -> Option<MemberId> {
        let r = self.rule(rule)?;
        let m = *self.pool_member_by_addr.get(&(r.pool, ip))?;
        r.members.contains(&m).then_some(m)
    }

    /// Whether any rule on the frontend has an eligible member (answers ICMP echo).
    pub fn frontend_has_healthy_member(&self, fe: FrontendId) -> bool {
        self.frontends.get(fe.index()).is_some_and(|f| {
            f.rules
                .iter()
                .filter_map(|r| self.rule(*r))
                .any(|r| !r.all_down)
        })
    }

    /// The outbound rule and SNAT block of a member sending with IP protocol `proto`.
    pub fn outbound_for(&self, member_ip: u32, proto: u8) -> Option<(&OutboundInfo, &SnatBlock)> {
        let (o, b) = self.outbound_by_member.get(&(member_ip, proto))?;
        let ob = self.outbound.get(*o)?;
        Some((ob, ob.blocks.get(*b)?))
    }
}

#[cfg(test)]
mod tests;
