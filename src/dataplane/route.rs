//! Next-hop resolution: which port a packet leaves by and the Ethernet addresses it carries.
//!
//! - Toward a member: the member's interface (the one it is on-link of, else one with a gateway,
//!   as the snapshot compiled it), next hop = the member if on-link else the gateway, MAC from the
//!   published [`NeighbourMap`](super::NeighbourMap). Results (including failures) are
//!   cached per `MemberId` and the cache is dropped whenever the snapshot, the neighbour map or
//!   the port table changes (checked once per burst), so the packet path does an indexed load.
//! - Toward a client (NAT replies, RSTs to clients): the interface on-link with the destination,
//!   else the first interface with a gateway; MAC of the destination or the gateway.
//!
//! - IPv6 (members and clients alike): the same choices over the interfaces' `address6` and
//!   `gateway6`, MACs from the map's IPv6 neighbours (`NeighbourMap::get6`); the per-member cache
//!   holds both families (it is keyed by member).
//!
//! No neighbour entry yet → `no_neighbour` (the slow path resolves members and gateways on its
//! own, so later packets pass); no interface → `no_route`.

use super::reason::DropReason;
use super::View;
use crate::balance::snapshot::MemberId;
use crate::wire::MacAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where and how a frame leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// Egress port (index into `View::ports`).
    pub port: usize,
    /// Ethernet source (the egress port's MAC).
    pub src_mac: MacAddr,
    /// Ethernet destination (the next hop's MAC).
    pub dst_mac: MacAddr,
    /// The first 12 bytes of the Ethernet header (destination, then source), written in one copy.
    pub macs: [u8; 12],
    /// IP MTU of the egress port.
    pub mtu: u16,
    /// The egress port's own IPv4 address (host order): the source of an encapsulated packet.
    pub src_addr: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cached {
    Unknown,
    Ok(Hop),
    Err(DropReason),
}

/// Identity of the inputs a cached hop was computed from.
type CacheKey = (usize, u64, usize, usize, u64, usize, usize, usize);

fn cache_key(view: &View<'_>) -> CacheKey {
    (
        view.snapshot as *const _ as usize,
        view.snapshot.epoch,
        view.snapshot.members.len(),
        view.neighbours as *const _ as usize,
        view.neighbours.generation(),
        view.neighbours.len(),
        view.ports.as_ptr() as usize,
        view.ports.len(),
    )
}

/// Per-member next-hop cache (see the module documentation).
#[derive(Debug, Default)]
pub struct HopCache {
    key: Option<CacheKey>,
    members: Vec<Cached>,
}

impl HopCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the cache if the view changed (call once per burst; allocates only when a snapshot
    /// with more members than ever before arrives).
    #[inline]
    pub fn refresh(&mut self, view: &View<'_>) {
        let k = cache_key(view);
        if self.key != Some(k) {
            self.key = Some(k);
            self.members.clear();
            self.members
                .resize(view.snapshot.members.len(), Cached::Unknown);
        }
    }

    /// The hop toward member `id` (computed on first use after a refresh).
    #[inline(always)]
    pub fn member(&mut self, view: &View<'_>, id: MemberId) -> Result<&Hop, DropReason> {
        match self.members.get(id.index()) {
            Some(Cached::Ok(_)) => {}
            Some(Cached::Err(e)) => return Err(*e),
            _ => self.fill(view, id),
        }
        match self.members.get(id.index()) {
            Some(Cached::Ok(h)) => Ok(h),
            Some(Cached::Err(e)) => Err(*e),
            _ => Err(DropReason::NoRoute),
        }
    }

    /// Computes the hop of `id` into the cache (refreshing a cache not yet sized for `view`).
    #[cold]
    #[inline(never)]
    fn fill(&mut self, view: &View<'_>, id: MemberId) {
        if id.index() >= self.members.len() {
            // Not refreshed for this view yet (a refreshed cache covers every member id).
            self.refresh(view);
        }
        if let Some(c) = self.members.get_mut(id.index()) {
            *c = match member_hop(view, id) {
                Ok(h) => Cached::Ok(h),
                Err(e) => Cached::Err(e),
            };
        }
    }
}

/// The hop toward member `id` (IPv4 or IPv6: the next hop's family), uncached.
pub fn member_hop(view: &View<'_>, id: MemberId) -> Result<Hop, DropReason> {
    let m = view.snapshot.member(id).ok_or(DropReason::NoRoute)?;
    let port = m.interface.ok_or(DropReason::NoRoute)?.index();
    match m.next_hop.ok_or(DropReason::NoRoute)? {
        IpAddr::V4(nh) => resolve(view, port, nh),
        IpAddr::V6(nh) => resolve6(view, port, nh),
    }
}

/// The hop toward the IPv6 `dst` (a client): the interface whose IPv6 prefix holds it, else the
/// first one with an IPv6 gateway.
pub fn client_hop6(view: &View<'_>, dst: Ipv6Addr) -> Result<Hop, DropReason> {
    let ifs = &view.snapshot.interfaces;
    if let Some(i) = ifs
        .iter()
        .position(|i| i.address6.is_some_and(|a| a.contains(dst)))
    {
        return resolve6(view, i, dst);
    }
    let (i, gw) = ifs
        .iter()
        .enumerate()
        .find_map(|(i, f)| f.gateway6.map(|g| (i, g)))
        .ok_or(DropReason::NoRoute)?;
    resolve6(view, i, gw)
}

/// [`resolve`] for an IPv6 next hop (the neighbours Neighbour Discovery learnt).
fn resolve6(view: &View<'_>, port: usize, next_hop: Ipv6Addr) -> Result<Hop, DropReason> {
    let p = view.ports.get(port).ok_or(DropReason::NoRoute)?;
    let (mac, _) = view
        .neighbours
        .get6(next_hop)
        .ok_or(DropReason::NoNeighbour)?;
    on_port(p, port, mac)
}

/// The hop toward `dst` (a client): on-link interface, else the first one with a gateway.
pub fn client_hop(view: &View<'_>, dst: Ipv4Addr) -> Result<Hop, DropReason> {
    let ifs = &view.snapshot.interfaces;
    if let Some(i) = ifs.iter().position(|i| i.address.contains(dst)) {
        return resolve(view, i, dst);
    }
    let (i, gw) = ifs
        .iter()
        .enumerate()
        .find_map(|(i, f)| f.gateway.map(|g| (i, g)))
        .ok_or(DropReason::NoRoute)?;
    resolve(view, i, gw)
}

#[inline]
fn resolve(view: &View<'_>, port: usize, next_hop: Ipv4Addr) -> Result<Hop, DropReason> {
    let p = view.ports.get(port).ok_or(DropReason::NoRoute)?;
    let (mac, _) = view
        .neighbours
        .get(next_hop)
        .ok_or(DropReason::NoNeighbour)?;
    on_port(p, port, mac)
}

/// The hop out of `p` (index `port`) toward the neighbour with `mac`.
#[inline]
fn on_port(p: &super::EgressPort, port: usize, mac: MacAddr) -> Result<Hop, DropReason> {
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&mac.0);
    macs[6..].copy_from_slice(&p.mac.0);
    Ok(Hop {
        port,
        src_mac: p.mac,
        dst_mac: mac,
        macs,
        mtu: p.mtu,
        src_addr: u32::from(p.addr),
    })
}
