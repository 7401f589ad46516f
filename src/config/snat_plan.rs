//! SNAT port planning (docs/design.md §3.5.6): where each member's port block of each outbound
//! rule lies on each of the rule's frontend IPs.
//!
//! Each frontend IP has 64,000 SNAT ports per protocol ([`SNAT_FIRST_PORT`]..=[`SNAT_LAST_PORT`]).
//! A member gets one block of `ports_per_member` contiguous ports on **each** frontend IP of its
//! rule (several frontend IPs add ports). Blocks are carved around the ports that load-balancing
//! and inbound NAT rules use on the same frontend IP and protocol (ranges included), so a SNAT
//! port never shadows a rule's port. A rule with `protocol = "all"` takes the same ports for TCP
//! and UDP.
//!
//! The plan is a pure, deterministic function of the configuration and the blocks to keep:
//! validation plans from scratch (so `vipmux check` finds what does not fit), compilation keeps
//! the previous snapshot's blocks in place (so a reload never moves a surviving member's block)
//! and places new ones in the lowest free range, in configuration order. A kept block that
//! shrinks keeps its first ports; one that grows keeps its place when the ports after it are
//! free (no other block, no rule port, not past [`SNAT_LAST_PORT`]), and is placed anew only
//! otherwise.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::error::ConfigError;
use super::model::{Config, OutboundRule, Protocol};

mod space;

use space::Space;

/// First SNAT port of each frontend IP.
pub const SNAT_FIRST_PORT: u16 = 1024;
/// Last SNAT port of each frontend IP (64,000 ports from [`SNAT_FIRST_PORT`]).
pub const SNAT_LAST_PORT: u16 = 65023;
/// SNAT ports available per frontend IP and protocol (Azure: 64,000).
pub const SNAT_PORTS_PER_FRONTEND: u32 = 64_000;
/// Largest pool Azure's default SNAT port table covers.
pub const DEFAULT_SNAT_TABLE_MAX_POOL: usize = 1000;

/// The table of outbound rules.
const OUTBOUND: &str = "outbound_rules";
/// Protocol bits of a port's use.
const TCP: u8 = 1;
/// See [`TCP`].
const UDP: u8 = 2;

/// Azure's default SNAT ports per member by pool size (0 above 1000 members).
pub fn default_snat_ports(pool_size: usize) -> u16 {
    match pool_size {
        0..=50 => 1024,
        51..=100 => 512,
        101..=200 => 256,
        201..=400 => 128,
        401..=800 => 64,
        801..=DEFAULT_SNAT_TABLE_MAX_POOL => 32,
        _ => 0,
    }
}

/// Ports per member per frontend IP of `r` over a pool of `pool_size`: the configured number,
/// or Azure's default table when it is 0 (0 when out of range; validation rejects that).
pub fn ports_per_member(r: &OutboundRule, pool_size: usize) -> u16 {
    if r.allocated_outbound_ports == 0 {
        default_snat_ports(pool_size)
    } else {
        u16::try_from(r.allocated_outbound_ports)
            .ok()
            .filter(|p| u32::from(*p) <= SNAT_PORTS_PER_FRONTEND)
            .unwrap_or(0)
    }
}

/// The protocol bits of `p`.
fn bits(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => TCP,
        Protocol::Udp => UDP,
        Protocol::All => TCP | UDP,
    }
}

/// The protocol name of `bits`, for messages.
fn bits_name(b: u8) -> &'static str {
    match b {
        TCP => "tcp",
        UDP => "udp",
        _ => "tcp and udp",
    }
}

/// A block the previous configuration placed, which a reload keeps where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptBlock {
    /// Outbound rule name.
    pub rule: String,
    /// Pool name.
    pub pool: String,
    /// Member name.
    pub member: String,
    /// Frontend IP of the block.
    pub frontend_addr: IpAddr,
    /// First port.
    pub first_port: u16,
    /// Number of ports.
    pub count: u16,
}

/// One planned block: member `member` (index in its pool) of outbound rule `rule` (index in
/// the file) on the rule's frontend `frontend` (index in its `frontends`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedBlock {
    /// Index of the outbound rule.
    pub rule: usize,
    /// Index of the member in the rule's pool.
    pub member: usize,
    /// Index of the frontend in the rule's `frontends`.
    pub frontend: usize,
    /// The frontend IP.
    pub frontend_addr: IpAddr,
    /// First port.
    pub first_port: u16,
    /// Number of ports.
    pub count: u16,
}

/// The result of planning: the blocks placed (rule, member, frontend order) and why others
/// could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnatPlan {
    /// Blocks placed.
    pub blocks: Vec<PlannedBlock>,
    /// One error per (rule, frontend) that had no room, and per kept block a rule port now hits.
    pub errors: Vec<ConfigError>,
}

/// What occupies a range of ports.
#[derive(Debug, Clone, PartialEq, Eq)]
enum User {
    /// A load-balancing or inbound NAT rule: (table, index, name).
    Rule(&'static str, usize, String),
    /// A member's block.
    Block,
}

/// Plans every outbound rule's blocks of `c`, keeping `kept` where they are.
pub fn plan(c: &Config, kept: &[KeptBlock]) -> SnatPlan {
    let mut spaces = reserve_rule_ports(c);
    let mut out = SnatPlan::default();
    let mut pending: Vec<PlannedBlock> = Vec::new();
    let kept_at: BTreeMap<(&str, &str, &str, IpAddr), &KeptBlock> = kept
        .iter()
        .map(|k| {
            let key = (
                k.rule.as_str(),
                k.pool.as_str(),
                k.member.as_str(),
                k.frontend_addr,
            );
            (key, k)
        })
        .collect();
    // First the blocks of members that stay, where they were (a growing one at its old size);
    // then the growing ones grow in place or move; then the others, lowest first.
    let mut growing: Vec<usize> = Vec::new();
    for want in wanted(c) {
        let r = &c.outbound_rules[want.rule];
        let m = &pool_of(c, r).map(|p| &p.members[want.member]);
        let k = m.and_then(|m| {
            kept_at
                .get(&(
                    r.name.as_str(),
                    r.backend_pool.as_str(),
                    m.name.as_str(),
                    want.frontend_addr,
                ))
                .filter(|k| k.count > 0)
        });
        let Some(k) = k else {
            pending.push(want);
            continue;
        };
        let space = spaces.entry(want.frontend_addr).or_default();
        let count = want.count.min(k.count);
        let (lo, hi) = (k.first_port, last_port(k.first_port, count));
        let grows = want.count > k.count;
        match space.obstacle(lo, hi, bits(r.protocol)) {
            None => {
                space.take(lo, hi, bits(r.protocol), User::Block);
                if grows {
                    growing.push(out.blocks.len());
                }
                out.blocks.push(PlannedBlock {
                    first_port: lo,
                    count,
                    ..want
                });
            }
            Some(User::Block) => pending.push(want),
            Some(User::Rule(..)) if grows => pending.push(want),
            Some(User::Rule(table, index, name)) => {
                out.errors
                    .push(kept_block_hit(c, &want, k, (table, index, &name)));
            }
        }
    }
    let moved = grow_in_place(c, &mut spaces, &growing, &mut out.blocks);
    if !moved.is_empty() {
        pending.extend(moved);
        pending.sort_by_key(|b| (b.rule, b.member, b.frontend));
    }
    place_pending(c, &mut spaces, pending, !kept.is_empty(), &mut out);
    out.blocks.sort_by_key(|b| (b.rule, b.member, b.frontend));
    out
}

/// Grows each kept block of `blocks` at index `growing` (placed at its old size) to the size
/// its rule asks for when the ports after it are free; frees and returns (at full size) the
/// ones that cannot grow there, in order.
fn grow_in_place(
    c: &Config,
    spaces: &mut BTreeMap<IpAddr, Space>,
    growing: &[usize],
    blocks: &mut Vec<PlannedBlock>,
) -> Vec<PlannedBlock> {
    let mut moved = Vec::new();
    for &i in growing {
        let Some(b) = blocks.get_mut(i) else { continue };
        let r = &c.outbound_rules[b.rule];
        let bits = bits(r.protocol);
        let want = pool_of(c, r).map_or(b.count, |p| ports_per_member(r, p.members.len()));
        let space = spaces.entry(b.frontend_addr).or_default();
        let end = u32::from(b.first_port) + u32::from(want) - 1;
        let from = b.first_port.saturating_add(b.count);
        let fits =
            end <= u32::from(SNAT_LAST_PORT) && space.obstacle(from, end as u16, bits).is_none();
        if fits {
            space.take(from, end as u16, bits, User::Block);
        } else {
            space.release(b.first_port, bits);
            moved.push(PlannedBlock { count: want, ..*b });
        }
        b.count = if fits { want } else { 0 };
    }
    blocks.retain(|b| b.count > 0);
    moved
}

/// The last port of `count` ports from `first` (saturating).
fn last_port(first: u16, count: u16) -> u16 {
    first.saturating_add(count.saturating_sub(1))
}

/// Places the blocks not kept in the lowest free range; the first member of a (rule, frontend)
/// that finds no room gives one error, and the rule's later members there are not placed.
fn place_pending(
    c: &Config,
    spaces: &mut BTreeMap<IpAddr, Space>,
    pending: Vec<PlannedBlock>,
    reload: bool,
    out: &mut SnatPlan,
) {
    let mut failed: Vec<(usize, usize)> = Vec::new();
    for want in pending {
        if failed.contains(&(want.rule, want.frontend)) {
            continue;
        }
        let r = &c.outbound_rules[want.rule];
        let b = bits(r.protocol);
        let space = spaces.entry(want.frontend_addr).or_default();
        match space.lowest_fit(want.count, b) {
            Some(first) => {
                space.take(first, last_port(first, want.count), b, User::Block);
                out.blocks.push(PlannedBlock {
                    first_port: first,
                    ..want
                });
            }
            None => {
                failed.push((want.rule, want.frontend));
                let (free, largest) = space.free(b);
                out.errors.push(no_room(c, &want, (free, largest), reload));
            }
        }
    }
}

/// Every block the configuration asks for, in (rule, member, frontend) order, at port 0.
fn wanted(c: &Config) -> Vec<PlannedBlock> {
    let mut out = Vec::new();
    for (ri, r) in c.outbound_rules.iter().enumerate() {
        let Some(pool) = pool_of(c, r) else { continue };
        let count = ports_per_member(r, pool.members.len());
        if count == 0 {
            continue;
        }
        let addrs: Vec<(usize, IpAddr)> = r
            .frontends
            .iter()
            .enumerate()
            .filter_map(|(fi, name)| {
                let fe = c.frontends.iter().find(|f| &f.name == name)?;
                Some((fi, fe.address))
            })
            .collect();
        for mi in 0..pool.members.len() {
            for &(fi, addr) in &addrs {
                out.push(PlannedBlock {
                    rule: ri,
                    member: mi,
                    frontend: fi,
                    frontend_addr: addr,
                    first_port: 0,
                    count,
                });
            }
        }
    }
    out
}

/// The pool of outbound rule `r`, if it exists.
fn pool_of<'c>(c: &'c Config, r: &OutboundRule) -> Option<&'c super::model::BackendPool> {
    c.backend_pools.iter().find(|p| p.name == r.backend_pool)
}

/// The ports load-balancing and inbound NAT rules use, per frontend IP (HA ports: all).
fn reserve_rule_ports(c: &Config) -> BTreeMap<IpAddr, Space> {
    let mut spaces: BTreeMap<IpAddr, Space> = BTreeMap::new();
    let addr = |name: &str| {
        c.frontends
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.address)
    };
    for (i, r) in c.load_balancing_rules.iter().enumerate() {
        let Some(a) = addr(&r.frontend) else { continue };
        let (lo, hi) = if r.frontend_port == 0 {
            (0, u16::MAX)
        } else {
            let p = u16::try_from(r.frontend_port).unwrap_or(0);
            (p, p)
        };
        let by = User::Rule("load_balancing_rules", i, r.name.clone());
        spaces
            .entry(a)
            .or_default()
            .take(lo, hi, bits(r.protocol), by);
    }
    for (i, r) in c.inbound_nat_rules.iter().enumerate() {
        let Some(a) = addr(&r.frontend) else { continue };
        let port = |p: Option<u32>| p.and_then(|p| u16::try_from(p).ok());
        let (lo, hi) = match (port(r.frontend_port), port(r.frontend_port_range_start)) {
            (Some(p), _) => (p, p),
            (None, Some(s)) => (s, port(r.frontend_port_range_end).unwrap_or(s).max(s)),
            (None, None) => continue,
        };
        let by = User::Rule("inbound_nat_rules", i, r.name.clone());
        spaces
            .entry(a)
            .or_default()
            .take(lo, hi, bits(r.protocol), by);
    }
    spaces
}

/// The error of a (rule, frontend) whose next member finds no room.
fn no_room(
    c: &Config,
    want: &PlannedBlock,
    (free, largest): (u32, u32),
    reload: bool,
) -> ConfigError {
    let r = &c.outbound_rules[want.rule];
    let member = pool_of(c, r)
        .and_then(|p| p.members.get(want.member))
        .map(|m| m.name.as_str())
        .unwrap_or("?");
    let why = if reload {
        "; blocks of members that stay are never moved by a reload, so the free ports may be fragmented (a restart plans afresh)"
    } else {
        ""
    };
    let msg = format!(
        "no room for member \"{member}\"'s SNAT block on {} ({}): {} ports asked, {free} free in all and {largest} in the largest free range of {SNAT_FIRST_PORT}-{SNAT_LAST_PORT} (less the ports of load-balancing and inbound NAT rules and of other blocks){why}; valid: blocks that fit, e.g. lower allocated_outbound_ports, add a frontend IP or move the rules' ports",
        want.frontend_addr,
        bits_name(bits(r.protocol)),
        want.count,
    );
    ConfigError::new(OUTBOUND, msg)
        .entry(want.rule, Some(&r.name))
        .field(format!("frontends[{}]", want.frontend))
        .value(format!("\"{}\"", r.frontends[want.frontend]))
}

/// The error of a kept block that a (new) rule port now lies in.
fn kept_block_hit(
    c: &Config,
    want: &PlannedBlock,
    k: &KeptBlock,
    (table, index, name): (&str, usize, &str),
) -> ConfigError {
    let r = &c.outbound_rules[want.rule];
    let msg = format!(
        "uses a port inside member \"{}\"'s SNAT block {}-{} on {} (outbound rule \"{}\"), which a reload must not move (its connections would break); valid: a port outside the block, or restart vipmux to plan the blocks afresh",
        k.member,
        k.first_port,
        last_port(k.first_port, want.count),
        want.frontend_addr,
        r.name
    );
    let (field, value) = rule_port_field(c, table, index);
    ConfigError::new(table, msg)
        .entry(index, Some(name))
        .field(field)
        .value(value)
}

/// The port field of rule `index` of `table` and its value, for messages.
fn rule_port_field(c: &Config, table: &str, index: usize) -> (&'static str, String) {
    if table == "load_balancing_rules" {
        let p = c.load_balancing_rules.get(index).map(|r| r.frontend_port);
        return ("frontend_port", p.unwrap_or(0).to_string());
    }
    match c.inbound_nat_rules.get(index) {
        Some(r) if r.frontend_port.is_none() => (
            "frontend_port_range_start",
            r.frontend_port_range_start.unwrap_or(0).to_string(),
        ),
        Some(r) => ("frontend_port", r.frontend_port.unwrap_or(0).to_string()),
        None => ("frontend_port", String::new()),
    }
}

/// The worker that owns `port` of a block of `count` ports from `first` split over `workers`:
/// the block is cut into `workers` contiguous sub-blocks of `count / workers` ports in worker
/// order, the last worker also taking the remainder (a block with fewer ports than workers,
/// which validation refuses, belongs whole to worker 0). `None` when the port is outside the
/// block.
#[inline]
pub fn sub_block_owner(first: u16, count: u16, port: u16, workers: u16) -> Option<u16> {
    let off = port.checked_sub(first).filter(|o| *o < count)?;
    let w = workers.max(1);
    let q = count / w;
    if q == 0 {
        return Some(0);
    }
    Some((off / q).min(w - 1))
}

/// The sub-block of worker `w` of a block of `count` ports from `first` split over `workers`:
/// (first port, number of ports); see [`sub_block_owner`].
pub fn sub_block(first: u16, count: u16, w: u16, workers: u16) -> (u16, u16) {
    let n = workers.max(1);
    let q = count / n;
    if w >= n {
        return (first, 0);
    }
    if q == 0 {
        return (first, if w == 0 { count } else { 0 });
    }
    let len = if w + 1 == n { count - w * q } else { q };
    (first.saturating_add(w * q), len)
}

#[cfg(test)]
mod tests;
