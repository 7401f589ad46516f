//! The neighbour table: address -> MAC for members, gateways and on-link hosts, learned from ARP
//! (IPv4) or Neighbour Discovery (IPv6) and from an external source (the kernel's neighbour
//! table), refreshed by requests with backoff, and published to workers as an immutable
//! [`NeighbourMap`] (the dataplane's read side). One state machine serves both families: the table
//! is generic over its address type ([`NeighbourAddr`]), `NeighbourTable` (IPv4, resolved by ARP)
//! and `NeighbourTable<Ipv6Addr>` (resolved by Neighbour Solicitations).
//!
//! Two kinds of entries:
//!
//! * **wanted** ([`NeighbourTable::want`]): members and gateways of the configuration. They are
//!   resolved actively: [`NeighbourTable::poll`] returns requests for them while they are
//!   unresolved, and refreshes them before their reachable time runs out. A wanted entry keeps its
//!   last MAC (state `Stale`) when refreshes go unanswered, so workers never lose a next hop
//!   because one request was missed; health probes decide whether the member gets traffic.
//!   Requests go to every host (ARP broadcast; IPv6 solicited-node multicast), except refreshes of
//!   a known MAC, which [`RequestToSend::unicast`] addresses to that MAC for the first
//!   [`UNICAST_PROBES`] tries (RFC 4861 §7.3.3; the ARP builder broadcasts them anyway).
//! * **passive**: on-link hosts that spoke ARP/ND to us (clients of a two-arm deployment asking
//!   for a VIP, for instance). They are never asked for and are forgotten after
//!   [`NeighbourTimers::passive_gc`] without a confirmation; their number is capped.
//!
//! Workers read only the published map; the table bumps [`NeighbourTable::generation`] whenever
//! the map's content (ip -> mac, interface) changes, so the slow path republishes only then.

use super::ratelimit::{Nanos, NANOS_PER_SEC};
use super::{IfIndex, SlowPathInterface};
use crate::dataplane::NeighbourMap;
use crate::wire::{builder, ethernet, MacAddr};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Refresh requests addressed to the known MAC before falling back to every host (RFC 4861's
/// MAX_UNICAST_SOLICIT).
pub const UNICAST_PROBES: u32 = 3;

/// An address family the neighbour table resolves: where an address is a neighbour, and the
/// interface address requests leave from.
pub trait NeighbourAddr: Copy + Eq + Ord + Hash + Debug {
    /// True when `self` can be a neighbour on `i` (on-link, not `i`'s own address, not a network,
    /// broadcast, multicast or unspecified address).
    fn is_neighbour_on(self, i: &SlowPathInterface) -> bool;
    /// The next hop toward `self` out of `i`: `self` if on-link, else `i`'s gateway of the family.
    fn next_hop_on(self, i: &SlowPathInterface) -> Option<Self>;
    /// The address of `i` requests for neighbours leave from (none without one of the family).
    fn source_on(i: &SlowPathInterface) -> Option<Self>;
}

impl NeighbourAddr for Ipv4Addr {
    fn is_neighbour_on(self, i: &SlowPathInterface) -> bool {
        i.is_neighbour_addr(self)
    }
    fn next_hop_on(self, i: &SlowPathInterface) -> Option<Self> {
        i.next_hop(self)
    }
    fn source_on(i: &SlowPathInterface) -> Option<Self> {
        Some(i.addr)
    }
}

impl NeighbourAddr for Ipv6Addr {
    fn is_neighbour_on(self, i: &SlowPathInterface) -> bool {
        i.is_neighbour_addr6(self)
    }
    fn next_hop_on(self, i: &SlowPathInterface) -> Option<Self> {
        i.next_hop6(self)
    }
    fn source_on(i: &SlowPathInterface) -> Option<Self> {
        i.addr6
    }
}

/// Resolution state of a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighbourState {
    /// No MAC known yet; requests are being sent.
    Incomplete,
    /// MAC confirmed within the reachable time.
    Reachable,
    /// MAC known but not confirmed within the reachable time (still published and used).
    Stale,
}

/// Timers of the neighbour table, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourTimers {
    /// How long a confirmation keeps an entry `Reachable` (default 60 s).
    pub reachable: Nanos,
    /// A wanted entry is refreshed this long before its reachable time ends (default 15 s).
    pub refresh_margin: Nanos,
    /// First retry interval of an unanswered request (default 1 s); doubles per retry.
    pub retry_base: Nanos,
    /// Longest retry interval (default 30 s).
    pub retry_max: Nanos,
    /// A passive entry is forgotten after this long without a confirmation (default 10 min).
    pub passive_gc: Nanos,
    /// Most passive entries kept (default 65536); wanted entries are not capped.
    pub passive_capacity: usize,
}

impl NeighbourTimers {
    /// When an entry confirmed at `confirmed` is due for its refresh request.
    pub fn refresh_due(&self, confirmed: Nanos) -> Nanos {
        confirmed.saturating_add(self.reachable.saturating_sub(self.refresh_margin))
    }
}

impl Default for NeighbourTimers {
    fn default() -> Self {
        NeighbourTimers {
            reachable: 60 * NANOS_PER_SEC,
            refresh_margin: 15 * NANOS_PER_SEC,
            retry_base: NANOS_PER_SEC,
            retry_max: 30 * NANOS_PER_SEC,
            passive_gc: 600 * NANOS_PER_SEC,
            passive_capacity: 65536,
        }
    }
}

/// One neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour<A = Ipv4Addr> {
    /// Its address.
    pub ip: A,
    /// The interface it is on-link of.
    pub iface: IfIndex,
    /// Its MAC, once known.
    pub mac: Option<MacAddr>,
    /// Resolution state.
    pub state: NeighbourState,
    /// When the MAC was last confirmed (learned or refreshed).
    pub confirmed_at: Option<Nanos>,
    /// When the last ARP request for it was sent.
    pub last_request: Option<Nanos>,
    /// Unanswered requests since the last confirmation.
    pub attempts: u32,
    /// When the next request is due (wanted entries only).
    pub next_request_at: Nanos,
    /// True for configured members and gateways (resolved actively).
    pub wanted: bool,
    /// True when the next requests go to every host whatever MAC is known (set by
    /// [`NeighbourTable::revalidate`], cleared by a confirmation).
    pub ask_all: bool,
}

/// What [`NeighbourTable::learn`] did with an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// A new MAC was recorded (new entry, or an `Incomplete` one resolved).
    New,
    /// The MAC of an existing entry changed.
    Changed,
    /// The same MAC was confirmed again.
    Confirmed,
    /// Ignored, with the reason.
    Rejected(LearnReject),
}

/// Why an observation was not learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnReject {
    /// The interface index is unknown.
    UnknownInterface,
    /// The address is not on-link of that interface, or is its network/broadcast address, or
    /// the interface's own address.
    NotOnLink,
    /// The MAC is zero, multicast or broadcast.
    BadMac,
    /// The address is new, not wanted, and `create_passive` was false.
    NotWanted,
    /// The passive-entry cap is reached.
    Full,
}

/// A request [`NeighbourTable::poll`] wants sent (an ARP request, or an IPv6 Neighbour
/// Solicitation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestToSend<A = Ipv4Addr> {
    /// Interface to send it out of.
    pub iface: IfIndex,
    /// Source MAC (the interface's).
    pub src_mac: MacAddr,
    /// 802.1Q TCI of the interface, if tagged.
    pub vlan: Option<u16>,
    /// Sender address (the interface's own address of the family).
    pub sender_ip: A,
    /// Address to resolve.
    pub target_ip: A,
    /// The known MAC to address a refresh to; `None` to ask every host.
    pub unicast: Option<MacAddr>,
}

/// An ARP request the IPv4 table wants sent.
pub type ArpRequestToSend = RequestToSend<Ipv4Addr>;

/// A Neighbour Solicitation the IPv6 table wants sent.
pub type NsToSend = RequestToSend<Ipv6Addr>;

impl RequestToSend<Ipv4Addr> {
    /// Writes the broadcast request (padded to 60 bytes) into `out`; returns its length.
    pub fn build(&self, out: &mut [u8]) -> crate::wire::Result<usize> {
        builder::arp_request(out, self.src_mac, self.vlan, self.sender_ip, self.target_ip)
    }

    /// The request as a new frame.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; ethernet::TAGGED_HEADER_LEN + ethernet::MIN_FRAME_LEN];
        let n = self.build(&mut v).unwrap_or(0);
        v.truncate(n);
        v
    }
}

impl RequestToSend<Ipv6Addr> {
    /// The solicitation as a new frame: to the target's solicited-node group, or to the target
    /// itself at its known MAC for a refresh (RFC 4861 §7.2.2).
    pub fn to_vec(&self) -> Vec<u8> {
        match self.unicast {
            None => super::nd::solicit(self.src_mac, self.vlan, self.sender_ip, self.target_ip),
            Some(mac) => super::nd::solicit_unicast(
                self.src_mac,
                mac,
                self.vlan,
                self.sender_ip,
                self.target_ip,
            ),
        }
    }
}

/// The neighbour table owned by the slow-path thread.
#[derive(Debug, Clone)]
pub struct NeighbourTable<A = Ipv4Addr> {
    interfaces: Vec<SlowPathInterface>,
    entries: HashMap<A, Neighbour<A>>,
    timers: NeighbourTimers,
    generation: u64,
    passive: usize,
}

impl<A: NeighbourAddr> NeighbourTable<A> {
    /// An empty table for `interfaces` (indexed by position).
    pub fn new(interfaces: Vec<SlowPathInterface>, timers: NeighbourTimers) -> Self {
        NeighbourTable {
            interfaces,
            entries: HashMap::new(),
            timers,
            generation: 0,
            passive: 0,
        }
    }

    /// The interfaces the table works on.
    pub fn interfaces(&self) -> &[SlowPathInterface] {
        &self.interfaces
    }

    /// Replaces the interfaces (on reload): entries no longer on-link of their interface go.
    pub fn set_interfaces(&mut self, interfaces: Vec<SlowPathInterface>) {
        self.interfaces = interfaces;
        let ifs = &self.interfaces;
        let before = self.entries.len();
        self.entries
            .retain(|ip, n| ifs.get(n.iface).is_some_and(|i| ip.is_neighbour_on(i)));
        if self.entries.len() != before {
            self.recount_and_bump();
        }
    }

    /// The timers.
    pub fn timers(&self) -> NeighbourTimers {
        self.timers
    }

    /// Generation of the content workers see; changes whenever the published map would change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The entry for `ip`.
    pub fn get(&self, ip: A) -> Option<&Neighbour<A>> {
        self.entries.get(&ip)
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Neighbour<A>> + '_ {
        self.entries.values()
    }

    /// Number of entries (wanted and passive).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    fn recount_and_bump(&mut self) {
        self.passive = self.entries.values().filter(|n| !n.wanted).count();
        self.bump();
    }

    /// The next hop toward `dst` out of `iface`: `dst` if on-link, else the interface gateway.
    pub fn next_hop(&self, dst: A, iface: IfIndex) -> Option<A> {
        self.interfaces.get(iface).and_then(|i| dst.next_hop_on(i))
    }

    /// Registers `ip` (a member or gateway, on-link of `iface`) for active resolution; the first
    /// request goes out at the next [`NeighbourTable::poll`]. False if `ip` is not a valid
    /// on-link neighbour of `iface`.
    pub fn want(&mut self, ip: A, iface: IfIndex, now: Nanos) -> bool {
        let Some(i) = self.interfaces.get(iface) else {
            return false;
        };
        if !ip.is_neighbour_on(i) {
            return false;
        }
        let timers = self.timers;
        match self.entries.get_mut(&ip) {
            Some(n) => {
                if !n.wanted {
                    n.wanted = true;
                    self.passive -= 1;
                    // A passive entry that is already reachable is refreshed on schedule.
                    n.next_request_at = match n.confirmed_at {
                        Some(t) if n.mac.is_some() => timers.refresh_due(t),
                        _ => now,
                    };
                }
                if n.iface != iface {
                    n.iface = iface;
                    self.bump();
                }
            }
            None => {
                self.entries.insert(
                    ip,
                    Neighbour {
                        ip,
                        iface,
                        mac: None,
                        state: NeighbourState::Incomplete,
                        confirmed_at: None,
                        last_request: None,
                        attempts: 0,
                        next_request_at: now,
                        wanted: true,
                        ask_all: false,
                    },
                );
            }
        }
        true
    }

    /// Asks again for wanted entry `ip` at the next [`NeighbourTable::poll`] (a broadcast request,
    /// the retry backoff restarted), keeping its MAC until an answer replaces it: called when a
    /// member's health changes, since a member that went away and came back may have a new MAC.
    /// False if `ip` is not a wanted entry.
    pub fn revalidate(&mut self, ip: A, now: Nanos) -> bool {
        match self.entries.get_mut(&ip) {
            Some(n) if n.wanted => {
                n.attempts = 0;
                n.ask_all = true;
                n.next_request_at = now;
                true
            }
            _ => false,
        }
    }

    /// Wants the next hop toward `dst` out of `iface` (the member itself if on-link, else the
    /// gateway); returns that next hop.
    pub fn want_next_hop(&mut self, dst: A, iface: IfIndex, now: Nanos) -> Option<A> {
        let nh = self.next_hop(dst, iface)?;
        self.want(nh, iface, now).then_some(nh)
    }

    /// Replaces the wanted set (on reload): entries in `wanted` become wanted, other wanted
    /// entries become passive (kept while confirmed, then forgotten).
    pub fn set_wanted<I: IntoIterator<Item = (A, IfIndex)>>(&mut self, wanted: I, now: Nanos) {
        let new: HashMap<A, IfIndex> = wanted.into_iter().collect();
        let mut changed = false;
        self.entries.retain(|ip, n| {
            if n.wanted && !new.contains_key(ip) {
                n.wanted = false;
                if n.mac.is_none() {
                    changed = true;
                    return false; // never resolved: nothing to keep
                }
            }
            true
        });
        self.passive = self.entries.values().filter(|n| !n.wanted).count();
        if changed {
            self.bump();
        }
        for (ip, iface) in new {
            self.want(ip, iface, now);
        }
    }

    fn retry_interval(&self, attempts: u32) -> Nanos {
        let shift = attempts.saturating_sub(1).min(63);
        self.timers
            .retry_base
            .checked_shl(shift)
            .filter(|v| v >> shift == self.timers.retry_base)
            .unwrap_or(u64::MAX)
            .min(self.timers.retry_max)
    }

    /// Records that `ip` on `iface` has `mac` (from ARP or the kernel's neighbour table).
    /// A new address is created as a passive entry only when `create_passive` is true; known
    /// addresses are always updated.
    pub fn learn(
        &mut self,
        iface: IfIndex,
        ip: A,
        mac: MacAddr,
        now: Nanos,
        create_passive: bool,
    ) -> Learned {
        let Some(i) = self.interfaces.get(iface) else {
            return Learned::Rejected(LearnReject::UnknownInterface);
        };
        if !ip.is_neighbour_on(i) {
            return Learned::Rejected(LearnReject::NotOnLink);
        }
        if mac.is_multicast() || mac == MacAddr::ZERO {
            return Learned::Rejected(LearnReject::BadMac);
        }
        let due = self.timers.refresh_due(now);
        let res = match self.entries.get_mut(&ip) {
            Some(n) => {
                let res = match n.mac {
                    None => Learned::New,
                    Some(m) if m != mac => Learned::Changed,
                    Some(_) if n.iface != iface => Learned::Changed,
                    Some(_) => Learned::Confirmed,
                };
                n.mac = Some(mac);
                n.iface = iface;
                n.state = NeighbourState::Reachable;
                n.confirmed_at = Some(now);
                n.attempts = 0;
                n.ask_all = false;
                n.next_request_at = due;
                res
            }
            None => {
                if !create_passive {
                    return Learned::Rejected(LearnReject::NotWanted);
                }
                if self.passive >= self.timers.passive_capacity {
                    return Learned::Rejected(LearnReject::Full);
                }
                self.passive += 1;
                self.entries.insert(
                    ip,
                    Neighbour {
                        ip,
                        iface,
                        mac: Some(mac),
                        state: NeighbourState::Reachable,
                        confirmed_at: Some(now),
                        last_request: None,
                        attempts: 0,
                        next_request_at: due,
                        wanted: false,
                        ask_all: false,
                    },
                );
                Learned::New
            }
        };
        if matches!(res, Learned::New | Learned::Changed) {
            self.bump();
        }
        res
    }

    /// Advances the table to `now`: ages entries, forgets stale passive ones, and appends to
    /// `out` the ARP requests due for wanted entries (unresolved: retried with backoff from
    /// `retry_base` doubling to `retry_max`; resolved: refreshed `refresh_margin` before the
    /// reachable time ends, then retried with the same backoff).
    pub fn poll_into(&mut self, now: Nanos, out: &mut Vec<RequestToSend<A>>) {
        let t = self.timers;
        let mut removed = false;
        self.entries.retain(|_, n| {
            if let Some(c) = n.confirmed_at {
                if n.mac.is_some() && now.saturating_sub(c) >= t.reachable {
                    n.state = NeighbourState::Stale;
                }
                if !n.wanted && now.saturating_sub(c) >= t.passive_gc {
                    removed = true;
                    return false;
                }
            }
            true
        });
        if removed {
            self.recount_and_bump();
        }
        let mut due: Vec<A> = self
            .entries
            .values()
            .filter(|n| n.wanted && now >= n.next_request_at)
            .map(|n| n.ip)
            .collect();
        due.sort_unstable();
        for ip in due {
            let Some(n) = self.entries.get(&ip) else {
                continue;
            };
            let Some((i, sender_ip)) = self
                .interfaces
                .get(n.iface)
                .and_then(|i| Some((i, A::source_on(i)?)))
            else {
                continue;
            };
            let unicast = n.mac.filter(|_| !n.ask_all && n.attempts < UNICAST_PROBES);
            out.push(RequestToSend {
                iface: n.iface,
                src_mac: i.mac,
                vlan: i.vlan,
                sender_ip,
                target_ip: ip,
                unicast,
            });
            let attempts = n.attempts.saturating_add(1);
            let next = now.saturating_add(self.retry_interval(attempts));
            if let Some(n) = self.entries.get_mut(&ip) {
                n.attempts = attempts;
                n.last_request = Some(now);
                n.next_request_at = next;
            }
        }
    }

    /// [`NeighbourTable::poll_into`] into a new vector.
    pub fn poll(&mut self, now: Nanos) -> Vec<RequestToSend<A>> {
        let mut v = Vec::new();
        self.poll_into(now, &mut v);
        v
    }

    /// What workers are to see: every entry with a MAC (reachable or stale), in no order.
    pub fn published(&self) -> Vec<(A, MacAddr, IfIndex)> {
        self.entries
            .values()
            .filter_map(|n| n.mac.map(|m| (n.ip, m, n.iface)))
            .collect()
    }
}

impl NeighbourTable<Ipv4Addr> {
    /// The map to publish to workers: every entry with a MAC (reachable or stale).
    pub fn snapshot(&self) -> NeighbourMap {
        NeighbourMap::from_entries(self.published(), self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SEC;

    fn ifaces() -> Vec<SlowPathInterface> {
        vec![
            SlowPathInterface::new(
                "dc",
                MacAddr([2, 0, 0, 0, 0, 0xaa]),
                Ipv4Addr::new(10, 1, 0, 2),
                24,
                Some(Ipv4Addr::new(10, 1, 0, 1)),
            ),
            SlowPathInterface::new(
                "be",
                MacAddr([2, 0, 0, 0, 0, 0xbb]),
                Ipv4Addr::new(10, 2, 0, 2),
                24,
                None,
            ),
        ]
    }

    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 1, n])
    }

    fn targets(v: &[ArpRequestToSend]) -> Vec<Ipv4Addr> {
        v.iter().map(|r| r.target_ip).collect()
    }

    #[test]
    fn want_resolves_with_backoff_then_refreshes() {
        let mut t = NeighbourTable::new(ifaces(), NeighbourTimers::default());
        let m = Ipv4Addr::new(10, 1, 0, 11);
        assert!(t.want(m, 0, 0));
        assert!(!t.want(Ipv4Addr::new(10, 9, 0, 1), 0, 0), "off-link");
        // Requests at 0, 1, 3, 7, 15, 31, 61, 91 s (1, 2, 4, 8, 16, then capped at 30).
        let mut sent_at = vec![];
        for s in 0..=100 {
            let r = t.poll(s * S);
            if !r.is_empty() {
                assert_eq!(targets(&r), vec![m]);
                assert_eq!(r[0].sender_ip, Ipv4Addr::new(10, 1, 0, 2));
                sent_at.push(s);
            }
        }
        assert_eq!(sent_at, vec![0, 1, 3, 7, 15, 31, 61, 91]);
        assert_eq!(t.get(m).unwrap().state, NeighbourState::Incomplete);
        assert!(t.snapshot().get(m).is_none());

        // Answered at 100 s: reachable, published, generation bumped.
        let g = t.generation();
        assert_eq!(t.learn(0, m, mac(1), 100 * S, false), Learned::New);
        assert!(t.generation() > g);
        assert_eq!(t.snapshot().get(m), Some((mac(1), 0)));
        // Quiet until the refresh 45 s later, then retries 1, 2, 4, 8 s apart; stale at 160 s.
        let mut sent_at = vec![];
        for s in 101..=170 {
            if !t.poll(s * S).is_empty() {
                sent_at.push(s);
            }
            let st = t.get(m).unwrap().state;
            assert_eq!(
                st == NeighbourState::Stale,
                s >= 160,
                "state at {s}: {st:?}"
            );
        }
        assert_eq!(sent_at, vec![145, 146, 148, 152, 160]);
        // Stale entries stay published.
        assert_eq!(t.snapshot().get(m), Some((mac(1), 0)));
        // Confirmation resets the backoff without changing the generation.
        let g = t.generation();
        assert_eq!(t.learn(0, m, mac(1), 170 * S, false), Learned::Confirmed);
        assert_eq!(t.generation(), g);
        assert_eq!(t.get(m).unwrap().state, NeighbourState::Reachable);
        assert!(t.poll(214 * S).is_empty());
        assert_eq!(targets(&t.poll(215 * S)), vec![m]);
    }

    #[test]
    fn revalidate_asks_at_once_and_takes_a_new_mac() {
        let mut t = NeighbourTable::new(ifaces(), NeighbourTimers::default());
        let m = Ipv4Addr::new(10, 1, 0, 11);
        assert!(t.want(m, 0, 0));
        assert_eq!(targets(&t.poll(0)), vec![m]);
        assert_eq!(t.learn(0, m, mac(1), S, false), Learned::New);
        assert!(t.poll(2 * S).is_empty(), "reachable: next refresh at 46 s");
        // The member's health changed at 2 s: asked again at once, the old MAC still published.
        assert!(t.revalidate(m, 2 * S));
        assert_eq!(targets(&t.poll(2 * S)), vec![m]);
        assert_eq!(t.snapshot().get(m), Some((mac(1), 0)));
        // Its answer carries a new MAC, which replaces the old one in the published map.
        assert_eq!(t.learn(0, m, mac(2), 2 * S, false), Learned::Changed);
        assert_eq!(t.snapshot().get(m), Some((mac(2), 0)));
        // Unanswered, the request is retried with the backoff restarted (1 s later).
        assert!(t.revalidate(m, 10 * S));
        assert_eq!(targets(&t.poll(10 * S)), vec![m]);
        assert_eq!(targets(&t.poll(11 * S)), vec![m]);
        // Only wanted entries are revalidated.
        assert!(!t.revalidate(Ipv4Addr::new(10, 1, 0, 99), 0));
    }

    #[test]
    fn learn_rules() {
        let mut t = NeighbourTable::new(ifaces(), NeighbourTimers::default());
        let a = Ipv4Addr::new(10, 1, 0, 50);
        use LearnReject::*;
        assert_eq!(
            t.learn(0, a, mac(1), 0, false),
            Learned::Rejected(NotWanted)
        );
        assert_eq!(t.learn(1, a, mac(1), 0, true), Learned::Rejected(NotOnLink));
        assert_eq!(
            t.learn(5, a, mac(1), 0, true),
            Learned::Rejected(UnknownInterface)
        );
        assert_eq!(
            t.learn(0, a, MacAddr::BROADCAST, 0, true),
            Learned::Rejected(BadMac)
        );
        assert_eq!(
            t.learn(0, a, MacAddr::ZERO, 0, true),
            Learned::Rejected(BadMac)
        );
        for bad in [
            Ipv4Addr::new(10, 1, 0, 0),
            Ipv4Addr::new(10, 1, 0, 255),
            Ipv4Addr::new(10, 1, 0, 2),
        ] {
            assert_eq!(
                t.learn(0, bad, mac(1), 0, true),
                Learned::Rejected(NotOnLink)
            );
        }
        assert_eq!(t.learn(0, a, mac(1), 0, true), Learned::New);
        assert_eq!(t.learn(0, a, mac(2), 1, false), Learned::Changed);
        assert_eq!(t.snapshot().get(a), Some((mac(2), 0)));
        // Passive entries are never asked for, and are forgotten after passive_gc.
        assert!(t.poll(599 * S).is_empty());
        assert!(t.get(a).is_some());
        let g = t.generation();
        assert!(t.poll(601 * S).is_empty());
        assert!(t.get(a).is_none());
        assert!(t.generation() > g);
    }

    #[test]
    fn passive_capacity_is_enforced() {
        let timers = NeighbourTimers {
            passive_capacity: 2,
            ..Default::default()
        };
        let mut t = NeighbourTable::new(ifaces(), timers);
        for h in 10..12 {
            assert_eq!(
                t.learn(0, Ipv4Addr::new(10, 1, 0, h), mac(h), 0, true),
                Learned::New
            );
        }
        assert_eq!(
            t.learn(0, Ipv4Addr::new(10, 1, 0, 12), mac(12), 0, true),
            Learned::Rejected(LearnReject::Full)
        );
        // Wanted entries are not capped; wanting a passive one frees a passive slot.
        assert!(t.want(Ipv4Addr::new(10, 1, 0, 10), 0, 0));
        assert_eq!(
            t.learn(0, Ipv4Addr::new(10, 1, 0, 12), mac(12), 0, true),
            Learned::New
        );
    }

    #[test]
    fn next_hop_and_want_next_hop() {
        let mut t = NeighbourTable::new(ifaces(), NeighbourTimers::default());
        let on = Ipv4Addr::new(10, 1, 0, 11);
        let off = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(t.next_hop(on, 0), Some(on));
        assert_eq!(t.next_hop(off, 0), Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(t.next_hop(off, 1), None);
        assert_eq!(t.want_next_hop(off, 0, 0), Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert!(t.get(Ipv4Addr::new(10, 1, 0, 1)).unwrap().wanted);
    }

    #[test]
    fn set_wanted_demotes_and_drops_unresolved() {
        let mut t = NeighbourTable::new(ifaces(), NeighbourTimers::default());
        let (a, b, c) = (
            Ipv4Addr::new(10, 1, 0, 11),
            Ipv4Addr::new(10, 1, 0, 12),
            Ipv4Addr::new(10, 2, 0, 13),
        );
        t.set_wanted([(a, 0), (b, 0)], 0);
        t.learn(0, a, mac(1), 0, false);
        t.set_wanted([(c, 1)], 1);
        assert!(!t.get(a).unwrap().wanted, "resolved one kept as passive");
        assert!(t.get(b).is_none(), "unresolved one dropped");
        assert!(t.get(c).unwrap().wanted);
        assert_eq!(targets(&t.poll(1)), vec![c]);
        assert_eq!(t.poll(1).len(), 0);
    }

    #[test]
    fn set_interfaces_drops_entries_no_longer_on_link() {
        let mut t = NeighbourTable::new(ifaces(), NeighbourTimers::default());
        let a = Ipv4Addr::new(10, 2, 0, 11);
        t.learn(1, a, mac(1), 0, true);
        let mut ifs = ifaces();
        ifs[1].addr = Ipv4Addr::new(10, 3, 0, 2);
        let g = t.generation();
        t.set_interfaces(ifs);
        assert!(t.get(a).is_none());
        assert!(t.generation() > g);
    }

    #[test]
    fn ipv6_refreshes_go_unicast_then_to_every_host() {
        let own = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2);
        let gw = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let mut ifs = ifaces();
        ifs[0] = ifs[0].clone().with_ipv6(own, 64, Some(gw));
        let mut t = NeighbourTable::<Ipv6Addr>::new(ifs, NeighbourTimers::default());
        let m = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 11);
        assert!(t.want(m, 0, 0));
        assert!(t.want(gw, 0, 0), "a link-local gateway is on-link");
        assert!(!t.want(own, 0, 0), "our own address");
        assert!(!t.want(m, 1, 0), "no address6 on be");
        assert!(!t.want(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1), 0, 0));
        assert_eq!(
            t.next_hop(Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1), 0),
            Some(gw)
        );
        let r = t.poll(0);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.unicast.is_none() && r.sender_ip == own));
        assert_eq!(t.learn(0, m, mac(1), S, false), Learned::New);
        // The refresh (at 46 s) and its next two retries go to the known MAC, then to every host.
        let mut sent = vec![];
        for s in 46..=60 {
            for r in t.poll(s * S).into_iter().filter(|r| r.target_ip == m) {
                sent.push((s, r.unicast));
            }
        }
        let u = Some(mac(1));
        assert_eq!(sent, vec![(46, u), (47, u), (49, u), (53, None)]);
        // A health change asks every host at once; an answer goes back to unicast refreshes.
        assert!(t.revalidate(m, 70 * S));
        assert_eq!(t.poll(70 * S)[0].unicast, None);
        t.learn(0, m, mac(1), 71 * S, false);
        assert_eq!(t.poll(116 * S)[0].unicast, u);
        let f = t
            .poll(200 * S)
            .into_iter()
            .find(|r| r.target_ip == m)
            .unwrap()
            .to_vec();
        assert_eq!(&f[0..6], &mac(1).0, "unicast solicitation frame");
    }

    #[test]
    fn arp_request_to_send_builds_a_valid_frame() {
        let mut t = NeighbourTable::new(ifaces(), NeighbourTimers::default());
        t.want(Ipv4Addr::new(10, 1, 0, 11), 0, 0);
        let r = t.poll(0)[0];
        let f = r.to_vec();
        assert_eq!(f.len(), 60);
        // etherparse 0.16 has no ARP parser: check the Ethernet header with it, ARP by offsets.
        let (eth, arp) = etherparse::Ethernet2Header::from_slice(&f).unwrap();
        assert_eq!(eth.ether_type, etherparse::EtherType::ARP);
        assert_eq!(eth.source, [2, 0, 0, 0, 0, 0xaa]);
        assert_eq!(&arp[0..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&arp[8..14], &[2, 0, 0, 0, 0, 0xaa]);
        assert_eq!(&arp[14..18], &[10, 1, 0, 2]);
        assert_eq!(&arp[24..28], &[10, 1, 0, 11]);
        assert_eq!(&f[0..6], &[0xff; 6]);
    }
}
