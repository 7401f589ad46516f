//! The IPv6 lane of a worker's [`Pipeline`]: the decisions of docs/design.md
//! §3.3–3.8 for IPv6 frames, over a per-worker [`FlowTable6`].
//!
//! The IPv4 burst loop is unchanged: a frame IPv4 classification calls `unsupported` (not IPv4,
//! not ARP) comes here, one frame at a time, and `frame` classifies it with `classify6`
//! (EtherType 0x86DD, behind one 802.1Q tag too). Then, as for IPv4:
//!
//! - **known flow** (live entry): the rule and member are re-checked (rule gone → `no_rule`;
//!   member gone → re-chosen; a non-TCP flow whose member is no longer eligible moves; a SYN on a
//!   closed 5-tuple keeps its member only while eligible), the entry is tracked (`flow::track`,
//!   the same TCP tracker) and the packet delivered;
//! - **miss**: `lookup6` finds the rule (load balancing, inbound NAT, HA ports); a non-SYN TCP
//!   packet of a recently expired flow is `idle_expired`, else `missing_flow` decides; a new flow
//!   takes the member Maglev gives the rule's distribution hash over the IPv6 tuple
//!   ([`flow_hash6`]) and is inserted;
//! - **delivery** ([`to_member6`]): NAT66, floating IP by MAC rewrite, IPv6-in-IPv6 or GUE over
//!   IPv6 (outer source: the egress interface's IPv6 address; GUE source port and flow label from
//!   the 5-tuple hash); a packet over the MTU is `too_big` for the slow path (Packet Too Big);
//! - **not to a rule**: a NAT66 reply from a member (`reverse_nat6`) is translated back to
//!   VIP:port toward the client ([`reply_to_client6`]) and refreshes the flow this worker holds;
//!   a member's packet under an IPv6 outbound rule, or a reply to one, is translated by
//!   `snat` (outbound SNAT); anything else is `no_rule`.
//!
//! Next hops come from the worker's [`HopCache`] (members of both families) and
//! [`client_hop6`]. An entry found expired on lookup is removed, recorded in the worker's
//! recently-expired record (which keeps hashes, so both families share it) and its RSTs are
//! queued for the next expiry step. Nothing here allocates; every drop has its reason.
//!
//! Memory: an IPv6 flow takes 132 bytes (a 128-byte slot and its signature, see
//! [`crate::flow::table`]); the table holds [`ipv6_capacity`] flows (a quarter of the IPv4
//! table's capacity, at least 1024).

use super::admission::{admit, Candidate};
use super::classify6::{classify6_into, Addresses6, Meta6};
use super::counters::WorkerCounters;
use super::expiry::PENDING_RESETS;
use super::pipeline::{
    count_verdict, inserted_bit, look_up_hashed, store_verdict, Classified, Pipeline,
};
use super::reason::{DropReason, Exception};
use super::recheck;
use super::rewrite6::{nat66_delta, nat66_to, reply_to_client6, to_member6, Target6};
use super::route::{client_hop6, HopCache};
use super::{Verdict, View};
use crate::balance::hash::{flow_hash6, hash_5tuple6};
use crate::balance::snapshot::{InterfaceInfo, MemberId, Rule, RuleId, Snapshot};
use crate::config::{DsrEncapsulation, Protocol};
use crate::flow::{
    tcp_flags, track, track_general, track_udp, Direction, FlowEntry, FlowEntry6, FlowFlags,
    FlowKey6, FlowState, FlowTable6, InsertResult, RecentlyExpired, SlotId, SnatTable,
};
use crate::wire::{ipv6::next_header, PacketBuf, BURST};
use std::net::{IpAddr, Ipv6Addr};

/// IPv6 flows a worker's table holds for an IPv4 `flow_capacity`: a quarter (an IPv6 flow takes
/// about twice the memory of an IPv4 one), at least 1024.
pub fn ipv6_capacity(flow_capacity: usize) -> usize {
    (flow_capacity / 4).max(1024)
}

/// Fixed list of IPv6 (key, entry) whose RSTs the next expiry step sends.
pub struct Pending6 {
    pub(super) items: [(FlowKey6, FlowEntry6); PENDING_RESETS],
    pub(super) len: usize,
}

impl Pending6 {
    fn new() -> Self {
        Pending6 {
            items: [(FlowKey6::default(), FlowEntry6::default()); PENDING_RESETS],
            len: 0,
        }
    }

    /// Queues one flow's RSTs (dropped silently when the list is full).
    #[inline]
    pub(super) fn push(&mut self, k: FlowKey6, e: FlowEntry6) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (k, e);
            self.len += 1;
        }
    }
}

/// One worker's IPv6 state: its flow table, the RSTs owed by flows found expired, and its
/// outbound SNAT translations (allocated with the first IPv6 outbound rule).
pub struct Lane6 {
    pub(super) table: FlowTable6,
    pub(super) pending: Pending6,
    pub(super) snat: SnatTable<u128>,
    /// RSTs of expired IPv6 translations found on the packet path, sent by the next sweep.
    pub(super) snat_pending: snat::SnatPending6,
}

impl Lane6 {
    /// A lane whose table holds `capacity` flows (rounded up to a power of two).
    pub(super) fn new(capacity: usize) -> Self {
        Lane6 {
            table: FlowTable6::new(capacity),
            pending: Pending6::new(),
            snat: SnatTable::new(0),
            snat_pending: snat::SnatPending6::new(),
        }
    }
}

/// [`Addresses6`] over a snapshot: the interfaces' IPv6 addresses and the IPv6 frontends.
#[derive(Clone, Copy)]
pub struct SnapshotAddrs6<'a>(pub &'a Snapshot);

impl Addresses6 for SnapshotAddrs6<'_> {
    #[inline]
    fn is_own(&self, addr: u128) -> bool {
        let own = |i: &InterfaceInfo| i.address6.is_some_and(|a| u128::from(a.addr) == addr);
        // One interface (a one-arm appliance) without the loop's pointer walk, as IPv4's check.
        match &self.0.interfaces[..] {
            [i] => own(i),
            all => all.iter().any(own),
        }
    }
    #[inline]
    fn is_frontend(&self, addr: u128) -> bool {
        self.0.is_frontend6(addr)
    }
}

/// The state one IPv6 packet's decision touches (disjoint borrows of the pipeline).
pub(super) struct Cx6<'p> {
    pub(super) lane: &'p mut Lane6,
    pub(super) recent: &'p mut RecentlyExpired,
    pub(super) counters: &'p mut WorkerCounters,
    pub(super) hops: &'p mut HopCache,
    pub(super) seed: u64,
    /// The worker's snapshot generation (see [`recheck`]).
    pub(super) gen: u32,
    /// This worker's index and the number of workers (its part of each SNAT block).
    pub(super) worker: (usize, usize),
    /// The keys inserted earlier in this burst (as the IPv4 loop's `Cx::inserted`).
    pub(super) inserted: u64,
}

/// One burst's IPv6 frames as the lane decides them (fixed arrays of [`BURST`], allocated once
/// per worker): the frames IPv4 classification marked IPv6, then for each one classified IPv6
/// its slot in the burst, meta (with its flow key), table hash and burst lookup result.
pub struct Burst6 {
    /// Bit `i` set: frame `i` of the burst is IPv6 (the burst loop sets it, the lane clears all).
    pub(super) marked: u64,
    at: [u8; BURST],
    metas: [Meta6; BURST],
    hashes: [u64; BURST],
    slots: [Option<SlotId>; BURST],
}

// One bit of `Burst6::marked` per frame of a burst.
const _: () = assert!(BURST <= 64);

impl Burst6 {
    /// Empty arrays.
    pub(super) fn new() -> Self {
        Burst6 {
            marked: 0,
            at: [0; BURST],
            metas: [Meta6::default(); BURST],
            hashes: [0; BURST],
            slots: [None; BURST],
        }
    }
}

/// Decides the frames of `p`'s [`Burst6::marked`] (the burst's IPv6 frames, which IPv4
/// classification neither decided nor counted) the way the IPv4 loop decides its frames: all
/// classified, keys hashed, buckets prefetched and looked up as a burst, then each decided and
/// its verdict stored in its slot and counted.
#[inline(never)]
pub(super) fn lane<B: PacketBuf>(
    p: &mut Pipeline,
    view: &View<'_>,
    pkts: &mut [B],
    verdicts: &mut [Verdict],
    now: u32,
) {
    let Pipeline {
        v6,
        b6,
        recent,
        counters,
        hops,
        seed,
        gen,
        worker,
        ..
    } = p;
    let Burst6 {
        marked,
        at,
        metas,
        hashes,
        slots,
    } = &mut **b6;
    let mut cx = Cx6 {
        lane: v6,
        recent,
        counters,
        hops,
        seed: *seed,
        gen: *gen,
        worker: *worker,
        inserted: 0,
    };
    // 1. classify, hash and prefetch each packet's home slot at once (as IPv4's burst)
    let addrs = SnapshotAddrs6(view.snapshot);
    let mut c = 0;
    let mut left = core::mem::take(marked);
    while left != 0 {
        let i = left.trailing_zeros() as u8;
        left &= left - 1;
        let (Some(buf), Some(out)) = (
            pkts.get_mut(usize::from(i)),
            verdicts.get_mut(usize::from(i)),
        ) else {
            continue;
        };
        let m = &mut metas[c];
        match classify6_into(buf.data(), &addrs, m) {
            Ok(key) => {
                let h = key.hash_seeded(cx.seed);
                cx.lane.table.prefetch(h);
                hashes[c] = h;
                at[c] = i;
                c += 1;
            }
            Err(v) => {
                let v = early(&mut cx, view, buf, v, now);
                *out = v;
                count_verdict(cx.counters, v);
            }
        }
    }
    // 2. look up the whole burst
    let (metas, hashes, slots) = (&metas[..c], &hashes[..c], &mut slots[..c]);
    look_up_hashed(&cx.lane.table, cx.recent, metas, hashes, slots);
    // 3. the established lane, in arrival order, up to the first packet it declines
    let work = Classified {
        idx: &at[..c],
        metas,
        hashes,
        slots,
    };
    let done = established::run(&mut cx, view, pkts, verdicts, work, now);
    // 4. decide and rewrite the rest
    for (((&i, m), &hash), &slot) in work.after(done).iter() {
        let i = usize::from(i);
        if let (Some(buf), Some(out)) = (pkts.get_mut(i), verdicts.get_mut(i)) {
            let v = handle(&mut cx, view, buf, m, hash, slot, now);
            store_verdict(cx.counters, out, v);
        }
    }
}

/// The verdict of a frame `classify6` decided (`v`): ICMPv6 errors about flows are delivered
/// here; echo and the rest keep their verdict.
#[inline(never)]
fn early<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    v: Verdict,
    now: u32,
) -> Verdict {
    match v {
        Verdict::ToSlowPath(Exception::IcmpError | Exception::IcmpToFrontend) => {
            icmp::handle(cx, view, buf, now).unwrap_or(v)
        }
        v => v,
    }
}

/// One classified IPv6 packet: known flow, or miss. `slot` is what the burst lookup found for
/// its key (see the IPv4 loop's `handle` for how inserts earlier in the burst are accounted).
#[inline(always)]
fn handle<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    hash: u64,
    slot: Option<SlotId>,
    now: u32,
) -> Verdict {
    let key = &m.key;
    let gen = cx.gen;
    let mut expired = None;
    if let Some(id) = slot {
        // Without an insert since the burst lookup, the slot still holds `key` unless emptied.
        let e = if cx.inserted != 0 {
            cx.lane.table.slot_stamped(id, key)
        } else {
            cx.lane.table.occupied_stamped(id)
        };
        if let Some((e, stamp)) = e {
            if !e.flow.is_expired(now) {
                let at = Seen { stamp, gen, now };
                return known(cx.counters, cx.hops, view, buf, m, e, at);
            }
            expired = Some(*e);
        }
    }
    if expired.is_none() && cx.inserted & inserted_bit(hash) != 0 {
        // An insert earlier in this burst may have stored this key.
        if let Some(e) = cx.lane.table.lookup(key, hash) {
            if !e.flow.is_expired(now) {
                let at = Seen {
                    stamp: &mut 0,
                    gen,
                    now,
                };
                return known(cx.counters, cx.hops, view, buf, m, e, at);
            }
            expired = Some(*e);
        }
    }
    if let Some(old) = expired {
        // Expired before the sweep got there: remove, remember, queue its RSTs.
        if cx.lane.table.remove(key, hash).is_some() {
            cx.counters
                .flow_removed(old.flow.rule_id, old.flow.member_id);
            cx.counters.flow_expired(old.flow.rule_id);
        }
        if old.flow.should_record_expiry() {
            cx.recent.note_expired(hash, now);
        }
        if old.flow.wants_reset_on_expiry() {
            cx.lane.pending.push(*key, old);
        }
    }
    miss(cx, view, buf, m, key, hash, now)
}

/// Does `r` match an IPv6 packet to `m.key.dst_ip:m.key.dst_port` with `m.key.proto`?
#[inline]
fn rule_matches6(r: &Rule, m: &Meta6) -> bool {
    if !matches!(r.frontend_addr, IpAddr::V6(a) if u128::from(a) == m.key.dst_ip) {
        return false;
    }
    if r.ha_ports {
        return true;
    }
    let proto_ok = match r.protocol {
        Protocol::Tcp => m.key.proto == next_header::TCP,
        Protocol::Udp => m.key.proto == next_header::UDP,
        Protocol::All => m.key.proto == next_header::TCP || m.key.proto == next_header::UDP,
    };
    proto_ok && m.key.dst_port >= r.frontend_port && m.key.dst_port <= r.frontend_port_end
}

/// A TCP SYN without ACK.
#[inline]
fn is_syn6(m: &Meta6) -> bool {
    m.key.proto == next_header::TCP
        && m.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
}

/// The rule's distribution hash of `m` (member choice).
#[inline]
pub(super) fn dist_hash6(view: &View<'_>, rule: &Rule, m: &Meta6) -> u64 {
    flow_hash6(
        view.snapshot.hash_seed,
        rule.load_distribution,
        m.key.src_ip,
        m.key.dst_ip,
        m.key.proto,
        m.key.src_port,
        m.key.dst_port,
    )
}

/// Tracks `m` on `e` in direction `dir` (the IPv4 tracker: TCP state, or refresh).
#[inline]
fn track6(e: &mut FlowEntry, m: &Meta6, dir: Direction, now: u32, first: bool) {
    if m.key.proto == next_header::TCP {
        if first {
            track_general(e, dir, m.tcp_flags, m.seq, m.ack, m.payload, now);
        } else {
            track(e, dir, m.tcp_flags, m.seq, m.ack, m.payload, now);
        }
    } else if dir == Direction::ClientToServer {
        track_udp(e, now);
    } else {
        e.touch(now);
    }
}

/// [`track6`] for a known flow's client packet, inlined into the known path (as IPv4's
/// `track_packet`): the plain-ACK fast path without a call.
#[inline(always)]
fn track6_known(e: &mut FlowEntry, m: &Meta6, now: u32) {
    if m.key.proto == next_header::TCP {
        track(
            e,
            Direction::ClientToServer,
            m.tcp_flags,
            m.seq,
            m.ack,
            m.payload,
            now,
        );
    } else {
        track_udp(e, now);
    }
}

/// Counts a client packet of rule `rid`.
#[inline]
fn count_rule(counters: &mut WorkerCounters, rid: RuleId, m: &Meta6, syn: bool) {
    if let Some(rc) = counters.rules.get_mut(rid.index()) {
        rc.packets += 1;
        rc.bytes += u64::from(m.ip_len);
        rc.syns += u64::from(syn);
    }
}

/// What a known flow's packet brings to its decision: its slot's [`recheck`] stamp, the worker's
/// snapshot generation and the time.
struct Seen<'s> {
    stamp: &'s mut u32,
    gen: u32,
    now: u32,
}

/// A packet of a known, live IPv6 flow. A flow already checked against this snapshot (its slot
/// stamp, see [`recheck`]) keeps its rule and member without asking the snapshot again.
#[inline(always)]
fn known<B: PacketBuf>(
    counters: &mut WorkerCounters,
    hops: &mut HopCache,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    e: &mut FlowEntry6,
    at: Seen<'_>,
) -> Verdict {
    let snap = view.snapshot;
    let syn = is_syn6(m);
    let tcp = m.key.proto == next_header::TCP;
    // As IPv4: TCP keeps its member unless a SYN reuses a closed 5-tuple.
    let kept = tcp && !(syn && matches!(e.flow.state, FlowState::Closing | FlowState::Closed));
    let (rule, mid) = match snap.rules.get(e.flow.rule_id as usize) {
        Some(r) if recheck::is_current(*at.stamp, at.gen, kept) => (r, MemberId(e.flow.member_id)),
        _ => match check(counters, view, m, e, kept, at.stamp, at.gen) {
            Ok(x) => x,
            Err(v) => return v,
        },
    };
    let rid = rule.id;
    track6_known(&mut e.flow, m, at.now);
    count_rule(counters, rid, m, syn);
    counters.member_forwarded(mid.0, syn);
    if !e.flow.flags.contains(FlowFlags::FLOATING) {
        // NAT66 with the delta the flow's check stored.
        return match hops.member(view, mid) {
            Ok(hop) => nat66_to(
                buf,
                m,
                e.member_addr,
                e.flow.backend_port,
                Some(e.flow.sums.l4_delta),
                hop,
            ),
            Err(r) => Verdict::Drop(r),
        };
    }
    let t = target6(e, rule);
    deliver(hops, view, buf, m, &t, mid)
}

/// Where a known flow's packets go: its member's address and port, delivered as `rule` says.
#[inline(always)]
fn target6(e: &FlowEntry6, rule: &Rule) -> Target6 {
    Target6 {
        addr: e.member_addr,
        port: e.flow.backend_port,
        floating: e.flow.flags.contains(FlowFlags::FLOATING),
        encap: rule.dsr_encapsulation,
        gue_port: rule.gue_port,
        l4_delta: Some(e.flow.sums.l4_delta),
    }
}

/// IPv4's known-flow check for an IPv6 flow (docs/design.md §3.8): rule still matching or
/// found again, member still in its pool and, unless `kept`, eligible, or a new one; the slot
/// is stamped (see [`recheck`]) when the flow keeps its stored rule and member id.
#[inline(never)]
fn check<'v>(
    counters: &mut WorkerCounters,
    view: &View<'v>,
    m: &Meta6,
    e: &mut FlowEntry6,
    kept: bool,
    stamp: &mut u32,
    gen: u32,
) -> Result<(&'v Rule, MemberId), Verdict> {
    let snap = view.snapshot;
    let rule = match snap.rules.get(e.flow.rule_id as usize) {
        Some(r) if rule_matches6(r, m) => r,
        _ => match snap.lookup6(m.key.dst_ip, m.key.proto, m.key.dst_port) {
            Some(r) => {
                e.flow.rule_id = r.id.0;
                r
            }
            None => return Err(Verdict::Drop(DropReason::NoRule)),
        },
    };
    let rid = rule.id;
    let mid = match snap.members.get(e.flow.member_id as usize) {
        Some(mi) if mi.addr6() == e.member_addr && mi.pool == rule.pool => {
            Some(MemberId(e.flow.member_id))
        }
        _ => snap.rule_member_by_addr6(rid, e.member_addr),
    };
    let eligible = match mid {
        Some(x) if !kept => snap.is_eligible(rid, x),
        _ => false,
    };
    let mid = match mid {
        Some(x) if kept || eligible => x,
        _ => {
            let Some(n) = snap.choose(rid, m.key.dst_port, dist_hash6(view, rule, m)) else {
                return Err(Verdict::Drop(DropReason::NoHealthyBackend));
            };
            let Some(info) = snap.member(n) else {
                return Err(Verdict::Drop(DropReason::NoRoute));
            };
            counters.flow_moved(e.flow.member_id, n.0);
            e.flow.member_id = n.0;
            e.member_addr = info.addr6();
            e.flow.backend_port = rule.backend_port_for(m.key.dst_port);
            n
        }
    };
    // The NAT66 delta for the member and port the flow now has (the stamp vouches for it until
    // the next check).
    set_nat66_delta(e, m);
    if mid.0 == e.flow.member_id {
        *stamp = recheck::stamp(gen, eligible);
    }
    Ok((rule, mid))
}

/// Stores in `e` the NAT66 delta of `m`'s destination to the entry's member address and backend
/// port, and returns it; `None` for a floating-IP flow, which keeps the VIP and never reads it.
#[inline(always)]
fn set_nat66_delta(e: &mut FlowEntry6, m: &Meta6) -> Option<u16> {
    if e.flow.flags.contains(FlowFlags::FLOATING) {
        return None;
    }
    let d = nat66_delta(m, e.member_addr, e.flow.backend_port);
    e.flow.sums.l4_delta = d;
    Some(d)
}

/// Sends `m` to member `mid` as `t` says (NAT66, MAC rewrite or encapsulation).
#[inline]
fn deliver<B: PacketBuf>(
    hops: &mut HopCache,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    t: &Target6,
    mid: MemberId,
) -> Verdict {
    let hop = match hops.member(view, mid) {
        Ok(h) => h,
        Err(r) => return Verdict::Drop(r),
    };
    let (mut outer_src, mut flow_hash) = (0, 0);
    if t.floating && t.encap != DsrEncapsulation::None {
        let Some(own) = outer_source(view, hop.port) else {
            // No IPv6 address to send the tunnel from.
            return Verdict::Drop(DropReason::NoRoute);
        };
        outer_src = own;
        let s = view.snapshot.hash_seed;
        flow_hash = hash_5tuple6(
            s,
            m.key.src_ip,
            m.key.dst_ip,
            m.key.proto,
            m.key.src_port,
            m.key.dst_port,
        ) as u32;
    }
    to_member6(buf, m, t, hop, outer_src, flow_hash)
}

/// The IPv6 address of interface `port` (the outer source of an encapsulation), if it has one.
#[inline]
pub(super) fn outer_source(view: &View<'_>, port: usize) -> Option<u128> {
    let own = view.snapshot.interfaces.get(port)?.address6?;
    Some(u128::from(own.addr))
}

/// The member and delivery of the entry `e` of a flow to `vip`, while its rule (still on that
/// frontend after a reload) and member exist.
pub(super) fn flow_target(
    view: &View<'_>,
    e: &FlowEntry6,
    vip: u128,
) -> Option<(MemberId, Target6)> {
    let snap = view.snapshot;
    let rule = snap
        .rules
        .get(e.flow.rule_id as usize)
        .filter(|r| matches!(r.frontend_addr, IpAddr::V6(a) if u128::from(a) == vip))?;
    let mid = match snap.members.get(e.flow.member_id as usize) {
        Some(mi) if mi.addr6() == e.member_addr && mi.pool == rule.pool => {
            MemberId(e.flow.member_id)
        }
        _ => snap.rule_member_by_addr6(rule.id, e.member_addr)?,
    };
    let t = target6(e, rule);
    Some((mid, t))
}

/// An IPv6 packet without a (live) flow entry.
fn miss<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    key: &FlowKey6,
    hash: u64,
    now: u32,
) -> Verdict {
    let snap = view.snapshot;
    let Some(rule) = snap.lookup6(m.key.dst_ip, m.key.proto, m.key.dst_port) else {
        return not_inbound(cx, view, buf, m, now);
    };
    let rid = rule.id;
    let syn = is_syn6(m);
    let c = Candidate {
        tcp: m.key.proto == next_header::TCP,
        syn,
        dport: m.key.dst_port,
        ip_len: m.ip_len,
        hash,
        now,
    };
    let a = match admit(cx.counters, cx.recent, snap, rule, &c, || {
        dist_hash6(view, rule, m)
    }) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let mid = a.mid;
    let mut e = FlowEntry6::new(
        rid.0,
        a.info.addr6(),
        a.backend_port,
        mid.0,
        a.flags,
        a.idle_secs,
        now,
    );
    track6(&mut e.flow, m, Direction::ClientToServer, now, true);
    // The NAT66 delta, once: this packet's rewrite uses it, and the entry, stamped as checked
    // by its insert, keeps it for its next packets.
    let l4_delta = set_nat66_delta(&mut e, m);
    insert(cx, key, hash, e, now);
    cx.inserted |= inserted_bit(hash);
    cx.counters.member_forwarded(mid.0, syn);
    let t = Target6 {
        addr: e.member_addr,
        port: e.flow.backend_port,
        floating: rule.floating_ip,
        encap: rule.dsr_encapsulation,
        gue_port: rule.gue_port,
        l4_delta,
    };
    deliver(cx.hops, view, buf, m, &t, mid)
}

/// Inserts the new flow `e` (known absent: the lookup just missed), accounting what it
/// replaced or evicted. Its rule and member were just chosen from this snapshot, the member
/// eligible: stamped so (`recheck`), its next packet needs no check.
fn insert(cx: &mut Cx6<'_>, key: &FlowKey6, hash: u64, e: FlowEntry6, now: u32) {
    let (rid, mid) = (e.flow.rule_id, e.flow.member_id);
    let checked = recheck::stamp(cx.gen, true);
    let c = &mut *cx.counters;
    match cx
        .lane
        .table
        .insert_absent_stamped(*key, hash, e, now, checked)
    {
        InsertResult::Inserted => c.flow_created(rid, mid),
        InsertResult::Replaced(old) | InsertResult::EvictedUntrusted(_, old) => {
            c.flow_removed(old.flow.rule_id, old.flow.member_id);
            c.flow_created(rid, mid);
        }
        InsertResult::EvictedExpired(k, old) => {
            c.flow_removed(old.flow.rule_id, old.flow.member_id);
            c.flow_expired(old.flow.rule_id);
            if old.flow.should_record_expiry() {
                cx.recent.note_expired(k.hash_seeded(cx.seed), now);
            }
            if old.flow.wants_reset_on_expiry() {
                cx.lane.pending.push(k, old);
            }
            c.flow_created(rid, mid);
        }
        InsertResult::Full => {
            c.count_drop(DropReason::FlowTableFull);
            c.untracked += 1;
        }
    }
}

/// Not addressed to an IPv6 rule: a NAT66 reply from a member, outbound SNAT (a member's
/// packet out, or a reply to a frontend), or `no_rule`.
fn not_inbound<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    now: u32,
) -> Verdict {
    let snap = view.snapshot;
    let Some(rn) = snap.reverse_nat6(m.key.src_ip, m.key.proto, m.key.src_port) else {
        if snap.is_frontend6(m.key.dst_ip) {
            return snat::reply6(cx, view, buf, m, now)
                .unwrap_or(Verdict::Drop(DropReason::NoRule));
        }
        if let Some((rule, blocks)) = snap.outbound_blocks6(m.key.src_ip, m.key.proto) {
            return snat::egress6(cx, view, buf, m, rule, blocks, now);
        }
        if !snap.outbound.is_empty() && snap.member_by_addr6(m.key.src_ip).is_some() {
            return Verdict::Drop(DropReason::NoOutboundRule);
        }
        return Verdict::Drop(DropReason::NoRule);
    };
    let vip = u128::from(rn.vip);
    // Refresh the flow if this worker holds it.
    let okey = FlowKey6::new(m.key.dst_ip, vip, m.key.dst_port, rn.vip_port, m.key.proto);
    if let Some(e) = cx.lane.table.lookup(&okey, okey.hash_seeded(cx.seed)) {
        if !e.flow.is_expired(now) {
            track6(&mut e.flow, m, Direction::ServerToClient, now, false);
        }
    }
    if let Some(rc) = cx.counters.rules.get_mut(rn.rule.index()) {
        rc.reply_packets += 1;
        rc.reply_bytes += u64::from(m.ip_len);
    }
    cx.counters.member_replied(rn.member.0);
    match client_hop6(view, Ipv6Addr::from(m.key.dst_ip)) {
        Ok(hop) => reply_to_client6(buf, m, vip, rn.vip_port, &hop),
        Err(r) => Verdict::Drop(r),
    }
}

mod established;
pub(super) mod expire;
mod icmp;
pub(super) mod snat;
#[cfg(test)]
mod tests;
