//! Lookups (hot: called per packet by the workers): the rule of a destination, the reverse
//! rule of a reply, the member for a new flow (Maglev table, NAT target or range slot),
//! eligibility, members by address and SNAT blocks. Reads only; no allocation. IPv6 lookups
//! carry a `6` suffix and read the parallel maps of [`Index6`].

use std::net::{IpAddr, Ipv6Addr};

use super::super::maglev::Maglev;
use super::{
    FrontendId, Map, MemberId, MemberInfo, OutboundInfo, PoolId, ReverseNat, Rule, RuleId,
    RuleKind, Snapshot, SnatBlock,
};

/// The IPv6 lookup maps, keyed by the host-order `u128` address: the same maps as the IPv4
/// ones of [`Snapshot`] (which hold IPv4 objects only), without the direct-mapped cache.
#[derive(Debug, Clone, Default)]
pub(super) struct Index6 {
    /// VIP → frontend.
    pub(super) frontend_by_addr: Map<u128, FrontendId>,
    /// (VIP, protocol, port) → rule.
    pub(super) by_key: Map<(u128, u8, u16), RuleId>,
    /// VIP → HA-ports rule.
    pub(super) ha_by_addr: Map<u128, RuleId>,
    /// (member, protocol, backend port) → non-floating rule and member.
    pub(super) reverse_by_key: Map<(u128, u8, u16), (RuleId, MemberId)>,
    /// Member → non-floating HA-ports rule and member.
    pub(super) reverse_ha: Map<u128, (RuleId, MemberId)>,
    /// Member address → first member with it.
    pub(super) member_by_addr: Map<u128, MemberId>,
    /// (pool, member address) → member.
    pub(super) pool_member_by_addr: Map<(PoolId, u128), MemberId>,
}

/// A direct-mapped array of (key, rule) copied from the `(address, protocol, port) → rule` map:
/// one multiply, one load and one compare instead of a hash-map probe. A key that collides with
/// an earlier one is simply not copied; lookups that miss here fall back to the map, so the
/// result is always the map's. Up to [`RuleCache::MAX_SLOTS`] slots (16 bytes each), at least
/// twice the number of keys when that fits.
#[derive(Debug, Clone, Default)]
pub(super) struct RuleCache {
    slots: Box<[(u64, u32)]>,
    shift: u32,
}

impl RuleCache {
    /// Largest number of slots (256 KiB).
    const MAX_SLOTS: usize = 1 << 14;
    /// Rule value of an empty slot.
    const EMPTY: u32 = u32::MAX;

    /// Copies `map` into a new cache.
    pub(super) fn build(map: &Map<u64, RuleId>) -> RuleCache {
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

    /// The slot of key `k`.
    #[inline(always)]
    fn index(k: u64, shift: u32) -> usize {
        (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
    }

    /// The rule of key `k`, if the cache holds it.
    #[inline(always)]
    pub(super) fn get(&self, k: u64) -> Option<RuleId> {
        let &(sk, r) = self.slots.get(Self::index(k, self.shift))?;
        (sk == k && r != Self::EMPTY).then_some(RuleId(r))
    }
}

/// The lookup key of (address, IP protocol, port).
#[inline]
pub(super) fn key(ip: u32, proto: u8, port: u16) -> u64 {
    (u64::from(ip) << 32) | (u64::from(proto) << 16) | u64::from(port)
}

impl Snapshot {
    /// The rule for a packet to `dst_ip:dst_port` with IP protocol `proto` (HA ports: any).
    /// The direct-mapped cache is read inline (every new flow asks); the maps out of line.
    #[inline(always)]
    pub fn lookup_id(&self, dst_ip: u32, proto: u8, dst_port: u16) -> Option<RuleId> {
        let k = key(dst_ip, proto, dst_port);
        if let Some(r) = self.rule_cache.get(k) {
            return Some(r);
        }
        self.lookup_id_in_maps(k, dst_ip)
    }

    /// [`Snapshot::lookup_id`] past the cache: the exact map, then HA-ports rules by address.
    #[inline(never)]
    fn lookup_id_in_maps(&self, k: u64, dst_ip: u32) -> Option<RuleId> {
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
        self.reverse_member(src_ip, proto, src_port)
            .and_then(|(r, _)| self.rules.get(r.index()))
    }

    /// The non-floating rule and member a reply from `src_ip:src_port` belongs to.
    #[inline]
    fn reverse_member(&self, src_ip: u32, proto: u8, src_port: u16) -> Option<(RuleId, MemberId)> {
        self.reverse_by_key
            .get(&key(src_ip, proto, src_port))
            .or_else(|| self.reverse_ha.get(&src_ip))
            .copied()
    }

    /// The translation of a NAT reply from `src_ip:src_port`: VIP and frontend port to restore.
    pub fn reverse_nat(&self, src_ip: u32, proto: u8, src_port: u16) -> Option<ReverseNat> {
        let found = self.reverse_member(src_ip, proto, src_port)?;
        let range_member = |r: &Rule| self.rule_member_by_addr(r.id, src_ip);
        self.reverse_nat_of(found, range_member, src_port, |vip| match vip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    /// The translation of the reply matched as `(rule, member)`: the VIP (as `vip` reads it)
    /// and the frontend port to restore, a range rule's slot of `range_member`, the reply's
    /// own port under HA ports, else the rule's frontend port.
    #[inline]
    fn reverse_nat_of<A>(
        &self,
        (rid, member): (RuleId, MemberId),
        range_member: impl FnOnce(&Rule) -> Option<MemberId>,
        src_port: u16,
        vip: impl FnOnce(IpAddr) -> Option<A>,
    ) -> Option<ReverseNat<A>> {
        let r = self.rules.get(rid.index())?;
        let vip_port = match r.kind {
            RuleKind::InboundNatRange => r.frontend_port_of(range_member(r)?)?,
            _ if r.ha_ports => src_port,
            _ => r.frontend_port,
        };
        Some(ReverseNat {
            rule: r.id,
            vip: vip(r.frontend_addr)?,
            vip_port,
            member,
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

    /// The outbound rule and SNAT block of a member sending with IP protocol `proto`: its block
    /// on the rule's first frontend IP ([`Snapshot::outbound_blocks`] gives all of them).
    pub fn outbound_for(&self, member_ip: u32, proto: u8) -> Option<(&OutboundInfo, &SnatBlock)> {
        let (ob, blocks) = self.outbound_blocks(member_ip, proto)?;
        Some((ob, blocks.first()?))
    }

    /// The outbound rule of a member sending with IP protocol `proto`, and its SNAT blocks: one
    /// per frontend IP of the rule, in the rule's order.
    #[inline]
    pub fn outbound_blocks(
        &self,
        member_ip: u32,
        proto: u8,
    ) -> Option<(&OutboundInfo, &[SnatBlock])> {
        self.outbound_at(self.outbound_by_member.get(&(member_ip, proto)))
    }

    /// The rule and blocks an `outbound_by_member` entry `(rule, first block, blocks)` names.
    #[inline]
    fn outbound_at(
        &self,
        at: Option<&(usize, usize, usize)>,
    ) -> Option<(&OutboundInfo, &[SnatBlock])> {
        let &(o, b, n) = at?;
        let ob = self.outbound.get(o)?;
        Some((ob, ob.blocks.get(b..b + n)?))
    }

    /// [`Snapshot::outbound_blocks`] of an IPv6 member (host-order `u128` address).
    #[inline]
    pub fn outbound_blocks6(
        &self,
        member_ip: u128,
        proto: u8,
    ) -> Option<(&OutboundInfo, &[SnatBlock])> {
        self.outbound_at(self.outbound_by_member6.get(&(member_ip, proto)))
    }

    /// The SNAT block of a member sending with `proto` on frontend IP `frontend_ip`.
    #[inline]
    pub fn snat_block(&self, member_ip: u32, proto: u8, frontend_ip: u32) -> Option<&SnatBlock> {
        let (_, blocks) = self.outbound_blocks(member_ip, proto)?;
        blocks.iter().find(|b| b.frontend4() == frontend_ip)
    }

    /// The outbound rule and SNAT block that hold `port` of frontend IP `frontend_ip` for
    /// `proto`: where a reply to a translated connection belongs (binary search, no
    /// allocation).
    #[inline]
    pub fn snat_block_by_port(
        &self,
        frontend_ip: u32,
        proto: u8,
        port: u16,
    ) -> Option<(&OutboundInfo, &SnatBlock)> {
        let ranges = self.snat_by_port.get(&(frontend_ip, proto))?;
        let i = ranges.partition_point(|r| r.first <= port).checked_sub(1)?;
        let r = ranges.get(i).filter(|r| port <= r.last)?;
        let ob = self.outbound.get(r.outbound as usize)?;
        Some((ob, ob.blocks.get(r.block as usize)?))
    }
}

/// The IPv6 lookups: the IPv4 ones of the same name without the suffix, for host-order `u128`
/// addresses (`u128::from(Ipv6Addr)`).
impl Snapshot {
    /// The rule for an IPv6 packet to `dst_ip:dst_port` with protocol `proto` (HA ports: any).
    #[inline]
    pub fn lookup_id6(&self, dst_ip: u128, proto: u8, dst_port: u16) -> Option<RuleId> {
        let v6 = &self.v6;
        v6.by_key
            .get(&(dst_ip, proto, dst_port))
            .or_else(|| v6.ha_by_addr.get(&dst_ip))
            .copied()
    }

    /// Like [`Snapshot::lookup_id6`], returning the rule.
    #[inline]
    pub fn lookup6(&self, dst_ip: u128, proto: u8, dst_port: u16) -> Option<&Rule> {
        self.lookup_id6(dst_ip, proto, dst_port)
            .and_then(|r| self.rules.get(r.index()))
    }

    /// Whether `ip` is an IPv6 frontend address.
    #[inline]
    pub fn is_frontend6(&self, ip: u128) -> bool {
        self.v6.frontend_by_addr.contains_key(&ip)
    }

    /// The IPv6 frontend with address `ip`.
    #[inline]
    pub fn frontend_by_addr6(&self, ip: u128) -> Option<FrontendId> {
        self.v6.frontend_by_addr.get(&ip).copied()
    }

    /// The non-floating IPv6 rule a reply from `src_ip:src_port` (a member) belongs to.
    #[inline]
    pub fn reverse6(&self, src_ip: u128, proto: u8, src_port: u16) -> Option<&Rule> {
        self.reverse_member6(src_ip, proto, src_port)
            .and_then(|(r, _)| self.rules.get(r.index()))
    }

    /// The non-floating IPv6 rule and member a reply from `src_ip:src_port` belongs to.
    #[inline]
    fn reverse_member6(
        &self,
        src_ip: u128,
        proto: u8,
        src_port: u16,
    ) -> Option<(RuleId, MemberId)> {
        self.v6
            .reverse_by_key
            .get(&(src_ip, proto, src_port))
            .or_else(|| self.v6.reverse_ha.get(&src_ip))
            .copied()
    }

    /// The translation of an IPv6 NAT reply from `src_ip:src_port`: VIP and port to restore.
    pub fn reverse_nat6(
        &self,
        src_ip: u128,
        proto: u8,
        src_port: u16,
    ) -> Option<ReverseNat<Ipv6Addr>> {
        let found = self.reverse_member6(src_ip, proto, src_port)?;
        let range_member = |r: &Rule| self.rule_member_by_addr6(r.id, src_ip);
        self.reverse_nat_of(found, range_member, src_port, |vip| match vip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
    }

    /// The first member (in config order) with IPv6 address `ip`.
    #[inline]
    pub fn member_by_addr6(&self, ip: u128) -> Option<MemberId> {
        self.v6.member_by_addr.get(&ip).copied()
    }

    /// The member of `rule`'s pool with IPv6 address `ip`.
    #[inline]
    pub fn rule_member_by_addr6(&self, rule: RuleId, ip: u128) -> Option<MemberId> {
        let r = self.rule(rule)?;
        let m = *self.v6.pool_member_by_addr.get(&(r.pool, ip))?;
        r.members.contains(&m).then_some(m)
    }

    /// Whether the snapshot has any IPv6 rule (which the data path does not forward yet).
    pub fn has_ipv6_rules(&self) -> bool {
        self.rules.iter().any(|r| r.frontend_addr.is_ipv6())
    }
}
