//! Compilation (cold, once per configuration or health change): a validated [`Config`] and a
//! [`Health`] view become a [`Snapshot`], one named step per part — interfaces, frontends, pools
//! and members (stable ids, next hops), probes, load-balancing rules with their Maglev tables
//! (reusing the previous snapshot's unchanged ones), inbound NAT rules (range slots kept across
//! reloads), the lookup maps, and the outbound rules' SNAT blocks (planned by
//! `config::snat_plan`, the previous snapshot's blocks kept in place).

use std::net::IpAddr;
use std::sync::Arc;

use super::super::maglev::{Maglev, MaglevMember};
use super::{
    host4, host6, ipv4_of, key, FrontendId, FrontendInfo, Health, InterfaceId, InterfaceInfo, Map,
    MemberId, MemberInfo, OutboundInfo, PoolId, PoolInfo, ProbeId, ProbeInfo, Rule, RuleCache,
    RuleId, RuleKind, Snapshot, SnatBlock, SnatPortRange, IPPROTO_TCP, IPPROTO_UDP,
};
use crate::config::validate::idle_timeout_seconds;
use crate::config::{
    snat_plan, AdminState, Config, ConfigError, ConfigErrors, DsrEncapsulation, InboundNatRule,
    LoadBalancingRule, LoadDistribution, NoHealthyBackends, Protocol,
};

/// What a Maglev table depends on besides the seed: (name, weight, eligible) of each member.
pub(super) type TableKey = Vec<(String, u32, bool)>;

/// The IP protocol numbers a rule's protocol covers.
fn protos(p: Protocol) -> &'static [u8] {
    match p {
        Protocol::Tcp => &[IPPROTO_TCP],
        Protocol::Udp => &[IPPROTO_UDP],
        Protocol::All => &[IPPROTO_TCP, IPPROTO_UDP],
    }
}

/// A configured port as a port (0 when out of range; validation rejects that).
fn port16(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(0)
}

/// Ids of the configuration's named objects (by position, as the snapshot numbers them), found
/// by name in maps built once, so that resolving every rule's references stays linear.
struct Ids<'c> {
    interfaces: Map<&'c str, u32>,
    frontends: Map<&'c str, u32>,
    pools: Map<&'c str, u32>,
    probes: Map<&'c str, u32>,
}

/// Name → position of the first object with each name (duplicates fail validation).
fn positions<'c, T>(items: &'c [T], name: impl Fn(&'c T) -> &'c str) -> Map<&'c str, u32> {
    let mut map = Map::with_capacity_and_hasher(items.len(), Default::default());
    for (i, item) in items.iter().enumerate() {
        map.entry(name(item)).or_insert(i as u32);
    }
    map
}

impl<'c> Ids<'c> {
    fn new(c: &'c Config) -> Self {
        Ids {
            interfaces: positions(&c.interfaces, |i| &i.name),
            frontends: positions(&c.frontends, |f| &f.name),
            pools: positions(&c.backend_pools, |p| &p.name),
            probes: positions(&c.probes, |p| &p.name),
        }
    }

    fn interface(&self, name: &str) -> Option<InterfaceId> {
        self.interfaces.get(name).map(|i| InterfaceId(*i))
    }

    fn frontend(&self, name: &str) -> Option<FrontendId> {
        self.frontends.get(name).map(|i| FrontendId(*i))
    }

    fn pool(&self, name: &str) -> Option<PoolId> {
        self.pools.get(name).map(|i| PoolId(*i))
    }

    fn probe(&self, name: &str) -> Option<ProbeId> {
        self.probes.get(name).map(|i| ProbeId(*i))
    }
}

/// Maglev tables being built: those of this snapshot by key, and the previous snapshot's.
struct Tables<'p> {
    /// Tables of this snapshot, by what they depend on (rules with equal keys share one).
    built: Map<TableKey, usize>,
    /// Tables of the previous snapshot, reused when members, weights and health are unchanged.
    reusable: Map<&'p TableKey, &'p Arc<Maglev>>,
}

impl Snapshot {
    /// Compiles a validated config with a health view (range slots in pool order).
    pub fn compile(config: &Config, health: &Health) -> Snapshot {
        Snapshot::compile_with_previous(config, health, None)
    }

    /// Like [`Snapshot::compile_with_previous`], but refuses (with every error, each naming the
    /// rule, the frontend IP and the ports asked and free) when a SNAT block cannot be placed
    /// without moving a block of a member that stays: what a reload must use, so that a bad
    /// configuration changes nothing.
    pub fn try_compile_with_previous(
        config: &Config,
        health: &Health,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        let s = Snapshot::compile_with_previous(config, health, previous);
        if s.snat_errors.is_empty() {
            Ok(s)
        } else {
            Err(ConfigErrors(s.snat_errors))
        }
    }

    /// The SNAT placement errors of this compilation (empty when every block found room).
    pub fn snat_errors(&self) -> &[ConfigError] {
        &self.snat_errors
    }

    /// Compiles, keeping the inbound-NAT range slots of members that stay in their rule and the
    /// SNAT blocks of members that stay in their outbound rule (docs/design.md §3.5.6).
    ///
    /// A config that did not pass validation compiles without panicking, but dangling
    /// references are skipped, and SNAT blocks that find no room are left out (see
    /// [`Snapshot::try_compile_with_previous`]).
    pub fn compile_with_previous(
        config: &Config,
        health: &Health,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let ids = Ids::new(config);
        let mut s = Snapshot::empty(config, previous);
        s.probes_settling = health.settling();
        s.interfaces = compile_interfaces(config);
        s.compile_frontends(config, &ids);
        s.compile_pools(config);
        s.probes = compile_probes(config);
        s.compile_lb_rules(config, &ids, health, previous);
        s.compile_nat_rules(config, &ids, health, previous);
        s.index_rules();
        s.longest_idle_timeout_secs = s
            .rules
            .iter()
            .map(|r| r.idle_timeout_secs)
            .max()
            .unwrap_or(0);
        s.encapsulates = s
            .rules
            .iter()
            .any(|r| r.floating_ip && r.dsr_encapsulation != DsrEncapsulation::None);
        s.compile_outbound(config, &ids, previous);
        s.rule_cache = RuleCache::build(&s.by_key);
        s
    }

    /// The appliance settings of `config`, with no objects yet.
    fn empty(config: &Config, previous: Option<&Snapshot>) -> Snapshot {
        Snapshot {
            epoch: previous.map(|p| p.epoch + 1).unwrap_or(0),
            uid: next_uid(),
            name: config.appliance.name.clone(),
            hash_seed: config.appliance.hash_seed,
            missing_flow: config.appliance.missing_flow,
            probes_settling: false,
            no_healthy_backends: config.appliance.no_healthy_backends,
            interfaces: Vec::new(),
            frontends: Vec::new(),
            pools: Vec::new(),
            members: Vec::new(),
            probes: Vec::new(),
            rules: Vec::new(),
            outbound: Vec::new(),
            longest_idle_timeout_secs: 0,
            encapsulates: false,
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
            outbound_by_member6: Map::default(),
            snat_by_port: Map::default(),
            snat_errors: Vec::new(),
            v6: Default::default(),
        }
    }

    /// Frontends, and the address → frontend map.
    fn compile_frontends(&mut self, config: &Config, ids: &Ids<'_>) {
        for (i, fe) in config.frontends.iter().enumerate() {
            let id = FrontendId(i as u32);
            match fe.address {
                IpAddr::V4(a) => self.frontend_by_addr.insert(u32::from(a), id),
                IpAddr::V6(a) => self.v6.frontend_by_addr.insert(u128::from(a), id),
            };
            self.frontends.push(FrontendInfo {
                name: fe.name.clone(),
                addr: fe.address,
                interface: fe.interface.as_deref().and_then(|n| ids.interface(n)),
                rules: Vec::new(),
            });
        }
    }

    /// Pools and their members: one member id per pool membership, in config order, with the
    /// interface and next hop that reach it; and the address → member maps.
    fn compile_pools(&mut self, config: &Config) {
        for (pi, pool) in config.backend_pools.iter().enumerate() {
            let pid = PoolId(pi as u32);
            let mut ids = Vec::with_capacity(pool.members.len());
            for m in &pool.members {
                let id = MemberId(self.members.len() as u32);
                let (interface, next_hop, on_link) = member_route(config, m.address);
                self.members.push(MemberInfo {
                    name: m.name.clone(),
                    pool: pid,
                    addr: m.address,
                    weight: m.weight.max(1),
                    admin_state: m.admin_state,
                    interface,
                    next_hop,
                    on_link,
                });
                if m.address.is_ipv4() {
                    let a = host4(m.address);
                    self.member_by_addr.entry(a).or_insert(id);
                    self.pool_member_by_addr.entry((pid, a)).or_insert(id);
                } else {
                    let a = host6(m.address);
                    self.v6.member_by_addr.entry(a).or_insert(id);
                    self.v6.pool_member_by_addr.entry((pid, a)).or_insert(id);
                }
                ids.push(id);
            }
            self.pools.push(PoolInfo {
                name: pool.name.clone(),
                dsr_encapsulation: pool.dsr_encapsulation,
                gue_port: port16(pool.gue_port),
                members: ids,
            });
        }
    }

    /// Load-balancing rules, each with its Maglev table (shared or reused when equal).
    fn compile_lb_rules(
        &mut self,
        config: &Config,
        ids: &Ids<'_>,
        health: &Health,
        previous: Option<&Snapshot>,
    ) {
        let mut tables = Tables {
            built: Map::default(),
            reusable: previous
                .filter(|p| p.hash_seed == self.hash_seed)
                .map(|p| p.table_keys.iter().zip(&p.tables).collect())
                .unwrap_or_default(),
        };
        // A probe watches the members of each pool it is used on once; member ids are per pool
        // membership, so pools never share one and a pool seen before adds nothing.
        let mut watched: hashbrown::HashSet<(ProbeId, PoolId), ahash::RandomState> =
            Default::default();
        for r in &config.load_balancing_rules {
            let (Some(fe), Some(pool)) = (ids.frontend(&r.frontend), ids.pool(&r.backend_pool))
            else {
                continue;
            };
            let probe = r.probe.as_deref().and_then(|n| ids.probe(n));
            let members = self.pools[pool.index()].members.clone();
            if let Some(p) = probe {
                if watched.insert((p, pool)) {
                    self.probes[p.index()].members.extend_from_slice(&members);
                }
            }
            let (eligible, all_down) = self.eligibility(&members, probe, health);
            let ti = self.table_for(&members, &eligible, &mut tables);
            self.push_lb_rule(r, fe, pool, probe, members, eligible, all_down, ti);
        }
    }

    /// The index of the Maglev table for `members` with `eligible`: one already built for an
    /// equal key, else the previous snapshot's for an equal key, else a new one.
    fn table_for(&mut self, members: &[MemberId], eligible: &[bool], tables: &mut Tables) -> usize {
        let tkey: TableKey = members
            .iter()
            .zip(eligible)
            .map(|(m, e)| {
                let info = &self.members[m.index()];
                (info.name.clone(), info.weight, *e)
            })
            .collect();
        if let Some(ti) = tables.built.get(&tkey) {
            return *ti;
        }
        let table = match tables.reusable.get(&tkey) {
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
                Arc::new(Maglev::build(self.hash_seed, &mm))
            }
        };
        self.tables.push(table);
        self.table_keys.push(tkey.clone());
        tables.built.insert(tkey, self.tables.len() - 1);
        self.tables.len() - 1
    }

    /// Appends the compiled load-balancing rule `r`.
    #[allow(clippy::too_many_arguments)]
    fn push_lb_rule(
        &mut self,
        r: &LoadBalancingRule,
        fe: FrontendId,
        pool: PoolId,
        probe: Option<ProbeId>,
        members: Vec<MemberId>,
        eligible: Vec<bool>,
        all_down: bool,
        table: usize,
    ) {
        let ha = r.frontend_port == 0 && r.protocol == Protocol::All;
        let fport = port16(r.frontend_port);
        let bport = if ha {
            0
        } else {
            port16(r.backend_port.unwrap_or(r.frontend_port))
        };
        let p = &self.pools[pool.index()];
        self.rules.push(Rule {
            id: RuleId(self.rules.len() as u32),
            name: r.name.clone(),
            kind: RuleKind::LoadBalancing,
            frontend: fe,
            frontend_addr: self.frontends[fe.index()].addr,
            protocol: r.protocol,
            ha_ports: ha,
            frontend_port: fport,
            frontend_port_end: fport,
            backend_port: bport,
            floating_ip: r.enable_floating_ip,
            dsr_encapsulation: p.dsr_encapsulation,
            gue_port: p.gue_port,
            load_distribution: r.load_distribution,
            idle_timeout_secs: idle_timeout_seconds(r.idle_timeout_minutes, r.idle_timeout_seconds),
            enable_tcp_reset: r.enable_tcp_reset,
            pool,
            probe,
            members,
            eligible,
            all_down,
            slots: Vec::new(),
            table: Some(table),
        });
    }

    /// Inbound NAT rules: single-member ones and port ranges over a pool, whose slots keep the
    /// previous snapshot's assignment for members that stay.
    fn compile_nat_rules(
        &mut self,
        config: &Config,
        ids: &Ids<'_>,
        health: &Health,
        previous: Option<&Snapshot>,
    ) {
        for r in &config.inbound_nat_rules {
            let Some(fe) = ids.frontend(&r.frontend) else {
                continue;
            };
            let Some((kind, pool, members, lo, hi)) = self.nat_target(r, ids) else {
                continue;
            };
            let (eligible, all_down) = self.eligibility(&members, None, health);
            let slots = if kind == RuleKind::InboundNatRange {
                let prev_rule = previous.and_then(|p| {
                    p.rules
                        .iter()
                        .find(|x| {
                            x.name == r.name
                                && x.kind == RuleKind::InboundNatRange
                                && p.pools[x.pool.index()].name == self.pools[pool.index()].name
                        })
                        .map(|x| (p, x))
                });
                self.assign_slots(&members, usize::from(hi - lo) + 1, prev_rule)
            } else {
                Vec::new()
            };
            let p = &self.pools[pool.index()];
            self.rules.push(Rule {
                id: RuleId(self.rules.len() as u32),
                name: r.name.clone(),
                kind,
                frontend: fe,
                frontend_addr: self.frontends[fe.index()].addr,
                protocol: r.protocol,
                ha_ports: false,
                frontend_port: lo,
                frontend_port_end: hi,
                backend_port: port16(r.backend_port),
                floating_ip: r.enable_floating_ip,
                dsr_encapsulation: p.dsr_encapsulation,
                gue_port: p.gue_port,
                load_distribution: LoadDistribution::Default,
                idle_timeout_secs: idle_timeout_seconds(
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
    }

    /// What an inbound NAT rule targets: (kind, pool, members, first port, last port); `None`
    /// when a reference dangles.
    fn nat_target(
        &self,
        r: &InboundNatRule,
        ids: &Ids<'_>,
    ) -> Option<(RuleKind, PoolId, Vec<MemberId>, u16, u16)> {
        match (&r.target, &r.backend_pool) {
            (Some(t), _) => {
                let pool = ids.pool(&t.pool)?;
                let m = self.pools[pool.index()]
                    .members
                    .iter()
                    .copied()
                    .find(|m| self.members[m.index()].name == t.member)?;
                let p = port16(r.frontend_port.unwrap_or(0));
                Some((RuleKind::InboundNat, pool, vec![m], p, p))
            }
            (None, Some(pn)) => {
                let pool = ids.pool(pn)?;
                let lo = port16(r.frontend_port_range_start.unwrap_or(0));
                let hi = port16(r.frontend_port_range_end.unwrap_or(0)).max(lo);
                let members = self.pools[pool.index()].members.clone();
                Some((RuleKind::InboundNatRange, pool, members, lo, hi))
            }
            (None, None) => None,
        }
    }

    /// The lookup maps of the rules: frontend → rules, (VIP, protocol, port) → rule, HA ports
    /// by VIP, and the reverse maps of non-floating rules by member address; IPv4 rules in the
    /// `u32`-keyed maps, IPv6 rules in those of [`super::Index6`].
    fn index_rules(&mut self) {
        for ri in 0..self.rules.len() {
            let r = &self.rules[ri];
            let (id, vip, ha) = (r.id, r.frontend_addr, r.ha_ports);
            self.frontends[r.frontend.index()].rules.push(id);
            // (protocol, port) pairs of the frontend side, and of the backend side per member.
            let mut ports: Vec<(u8, u16)> = Vec::new();
            if !ha {
                for &p in protos(r.protocol) {
                    ports.extend((r.frontend_port..=r.frontend_port_end).map(|port| (p, port)));
                }
            }
            let backend: Vec<(u8, u16)> = protos(r.protocol)
                .iter()
                .map(|&p| (p, r.backend_port))
                .collect();
            let members: Vec<(MemberId, IpAddr)> = if r.floating_ip {
                Vec::new()
            } else {
                r.members
                    .iter()
                    .map(|m| (*m, self.members[m.index()].addr))
                    .collect()
            };
            if vip.is_ipv4() {
                self.index_rule4(id, host4(vip), ha, &ports, &backend, &members);
            } else {
                self.index_rule6(id, host6(vip), ha, &ports, &backend, &members);
            }
        }
    }

    /// Indexes IPv4 rule `id` (see [`Snapshot::index_rules`]).
    fn index_rule4(
        &mut self,
        id: RuleId,
        vip: u32,
        ha: bool,
        ports: &[(u8, u16)],
        backend: &[(u8, u16)],
        members: &[(MemberId, IpAddr)],
    ) {
        if ha {
            self.ha_by_addr.entry(vip).or_insert(id);
        }
        for &(p, port) in ports {
            self.by_key.entry(key(vip, p, port)).or_insert(id);
        }
        for &(m, addr) in members {
            let addr = host4(addr);
            if ha {
                self.reverse_ha.entry(addr).or_insert((id, m));
                continue;
            }
            for &(p, port) in backend {
                let k = key(addr, p, port);
                self.reverse_by_key.entry(k).or_insert((id, m));
            }
        }
    }

    /// Indexes IPv6 rule `id` (see [`Snapshot::index_rules`]).
    fn index_rule6(
        &mut self,
        id: RuleId,
        vip: u128,
        ha: bool,
        ports: &[(u8, u16)],
        backend: &[(u8, u16)],
        members: &[(MemberId, IpAddr)],
    ) {
        let v6 = &mut self.v6;
        if ha {
            v6.ha_by_addr.entry(vip).or_insert(id);
        }
        for &(p, port) in ports {
            v6.by_key.entry((vip, p, port)).or_insert(id);
        }
        for &(m, addr) in members {
            let addr = host6(addr);
            if ha {
                v6.reverse_ha.entry(addr).or_insert((id, m));
                continue;
            }
            for &(p, port) in backend {
                v6.reverse_by_key.entry((addr, p, port)).or_insert((id, m));
            }
        }
    }

    /// Outbound rules and their SNAT blocks (planned by [`snat_plan::plan`], keeping the previous
    /// snapshot's blocks of members that stay), and the maps from (member, protocol) and from
    /// (frontend IP, protocol, port) to blocks. Blocks that find no room are left out and their
    /// errors kept for [`Snapshot::try_compile_with_previous`].
    fn compile_outbound(&mut self, config: &Config, ids: &Ids<'_>, previous: Option<&Snapshot>) {
        let kept = previous.map(Snapshot::kept_snat_blocks).unwrap_or_default();
        let plan = snat_plan::plan(config, &kept);
        self.snat_errors = plan.errors;
        let mut planned = plan.blocks.iter().peekable();
        for (ri, r) in config.outbound_rules.iter().enumerate() {
            let Some(pool) = ids.pool(&r.backend_pool) else {
                continue;
            };
            let frontends: Vec<IpAddr> = r
                .frontends
                .iter()
                .filter_map(|f| ids.frontend(f))
                .map(|f| self.frontends[f.index()].addr)
                .collect();
            let members = self.pools[pool.index()].members.clone();
            let mut blocks = Vec::new();
            while let Some(b) = planned.next_if(|b| b.rule <= ri) {
                if b.rule < ri {
                    continue;
                }
                let Some(m) = members.get(b.member) else {
                    continue;
                };
                blocks.push(SnatBlock {
                    member: *m,
                    frontend_addr: b.frontend_addr,
                    first_port: b.first_port,
                    count: b.count,
                });
            }
            self.outbound.push(OutboundInfo {
                name: r.name.clone(),
                frontends,
                pool,
                protocol: r.protocol,
                ports_per_member: snat_plan::ports_per_member(r, members.len()),
                idle_timeout_secs: idle_timeout_seconds(
                    r.idle_timeout_minutes,
                    r.idle_timeout_seconds,
                ),
                enable_tcp_reset: r.enable_tcp_reset,
                blocks,
            });
        }
        self.index_snat_blocks();
    }

    /// The (member address, protocol) → (rule, first block, blocks) map (a member's blocks are
    /// adjacent in its rule), and per (frontend IP, protocol) the blocks sorted by first port.
    fn index_snat_blocks(&mut self) {
        for (oi, ob) in self.outbound.iter().enumerate() {
            let mut bi = 0;
            while bi < ob.blocks.len() {
                let member = ob.blocks[bi].member;
                let n = ob.blocks[bi..]
                    .iter()
                    .take_while(|b| b.member == member)
                    .count();
                let info = &self.members[member.index()];
                for &p in protos(ob.protocol) {
                    if info.addr.is_ipv6() {
                        self.outbound_by_member6
                            .entry((info.addr6(), p))
                            .or_insert((oi, bi, n));
                    } else {
                        self.outbound_by_member
                            .entry((info.addr4(), p))
                            .or_insert((oi, bi, n));
                    }
                }
                bi += n;
            }
            // Reply ownership by port (steering, `vipmux check`): IPv4 blocks.
            for (bi, b) in ob.blocks.iter().enumerate() {
                let Some(fe) = ipv4_of(b.frontend_addr) else {
                    continue;
                };
                for &p in protos(ob.protocol) {
                    self.snat_by_port
                        .entry((u32::from(fe), p))
                        .or_default()
                        .push(SnatPortRange {
                            first: b.first_port,
                            last: b.last_port(),
                            outbound: oi as u32,
                            block: bi as u32,
                        });
                }
            }
        }
        for ranges in self.snat_by_port.values_mut() {
            ranges.sort_unstable_by_key(|r| r.first);
        }
    }

    /// The blocks of this snapshot, by rule, pool and member name, for the next compilation to
    /// keep in place.
    fn kept_snat_blocks(&self) -> Vec<snat_plan::KeptBlock> {
        let mut out = Vec::new();
        for ob in &self.outbound {
            let pool = &self.pools[ob.pool.index()].name;
            for b in &ob.blocks {
                out.push(snat_plan::KeptBlock {
                    rule: ob.name.clone(),
                    pool: pool.clone(),
                    member: self.members[b.member.index()].name.clone(),
                    frontend_addr: b.frontend_addr,
                    first_port: b.first_port,
                    count: b.count,
                });
            }
        }
        out
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
                    Some(p) => health.counts_up(p, info.addr),
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
}

/// Interfaces.
fn compile_interfaces(config: &Config) -> Vec<InterfaceInfo> {
    config
        .interfaces
        .iter()
        .map(|i| InterfaceInfo {
            name: i.name.clone(),
            port: i.port.clone(),
            address: i.address,
            gateway: i.gateway,
            address6: i.address6,
            gateway6: i.gateway6,
            mtu: u16::try_from(i.mtu).unwrap_or(1500),
        })
        .collect()
}

/// How a member at `addr` is reached: (interface, next hop, on-link). On-link of the first
/// interface whose subnet of `addr`'s family holds it, else through the first interface with a
/// gateway of that family.
fn member_route(config: &Config, addr: IpAddr) -> (Option<InterfaceId>, Option<IpAddr>, bool) {
    let onlink = config.interfaces.iter().position(|i| i.on_link(addr));
    match onlink {
        Some(i) => (Some(InterfaceId(i as u32)), Some(addr), true),
        None => match config
            .interfaces
            .iter()
            .enumerate()
            .find_map(|(i, itf)| Some((i, itf.gateway_for(addr)?)))
        {
            Some((i, gw)) => (Some(InterfaceId(i as u32)), Some(gw), false),
            None => (None, None, false),
        },
    }
}

/// Probes (their member lists are filled in by the rules that use them).
fn compile_probes(config: &Config) -> Vec<ProbeInfo> {
    config
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
        .collect()
}

/// A snapshot number this process has not given out yet ([`Snapshot::uid`]).
fn next_uid() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
