//! The established lane: the bulk of a load balancer's traffic, a TCP segment that only
//! acknowledges (ACK set; no SYN, FIN or RST) of a live flow already checked under the current
//! snapshot, decided in a loop of its own before the general decision (docs/design.md §3.4).
//!
//! The burst loop runs the lane over the burst's classified packets in arrival order. It stops
//! at the first packet that is not the lane's: another kind of segment or protocol, a miss, an
//! expired flow, a stamp from an older snapshot, a rule gone, a next hop in error. The general
//! decision takes that packet and every later one, so each flow's packets are still decided in
//! the order they came. For the lane's packets the lane makes the known-flow decision the
//! general path makes for them (the same tracking, counters, next hop and delivery; NAT and GUE
//! in the common frame shape within the MTU at constant offsets), without the general path's
//! other cases in its loop. A burst of another traffic kind costs the lane one test of its first packet.

use super::classify::Meta;
use super::counters::WorkerCounters;
use super::encap::{gue_plain_tcp, Outer};
use super::pipeline::{count_known, store_verdict, Classified};
use super::recheck;
use super::rewrite::{flow_to_member, nat_plain_tcp, set_macs, PLAIN_L4, PLAIN_TCP_END};
use super::route::HopCache;
use super::{Verdict, View};
use crate::balance::snapshot::MemberId;
use crate::flow::{is_plain_ack, track, Direction, FlowEntry, FlowFlags, FlowTable, SlotId};
use crate::wire::builder::GUE_OVERHEAD;
use crate::wire::{protocol, PacketBuf};

/// The tables and counters the lane touches (disjoint borrows of the pipeline).
pub(super) struct LaneCx<'p> {
    /// The worker's flow table.
    pub(super) table: &'p mut FlowTable,
    /// The worker's counters.
    pub(super) counters: &'p mut WorkerCounters,
    /// The per-member next-hop cache.
    pub(super) hops: &'p mut HopCache,
}

/// Runs the lane over the burst's classified packets `work` in order, up to the first one that
/// is not the lane's; returns how many it decided (their verdicts set in `verdicts`, indexed as
/// `pkts`). `now` in seconds, `gen` the burst's snapshot generation.
#[inline(always)]
pub(super) fn run<B: PacketBuf>(
    cx: &mut LaneCx<'_>,
    view: &View<'_>,
    pkts: &mut [B],
    verdicts: &mut [Verdict],
    work: Classified<'_>,
    now: u32,
    gen: u32,
) -> usize {
    in_order(pkts, verdicts, work, |p, out, m, id| {
        if !is_lane_frame(m) {
            return false;
        }
        let Some(v) = decide(cx, view, p, m, id, now, gen) else {
            return false;
        };
        store_verdict(cx.counters, out, v);
        true
    })
}

/// The lane's loop, for either family: over the burst's classified packets `work` in order,
/// `take(frame, its verdict, meta, slot)` decides each one and stores its verdict, up to the
/// first it declines (false) or a miss. Returns how many it took.
#[inline(always)]
pub(super) fn in_order<B, M>(
    pkts: &mut [B],
    verdicts: &mut [Verdict],
    work: Classified<'_, M>,
    mut take: impl FnMut(&mut B, &mut Verdict, &M, SlotId) -> bool,
) -> usize {
    let mut done = 0;
    for ((&i, m), &slot) in work.idx.iter().zip(work.metas).zip(work.slots) {
        let i = usize::from(i);
        let (Some(p), Some(out), Some(id)) = (pkts.get_mut(i), verdicts.get_mut(i), slot) else {
            break;
        };
        if !take(p, out, m, id) {
            break;
        }
        done += 1;
    }
    done
}

/// The TCP fields of a lane's segment that its flow's tracking reads.
#[derive(Clone, Copy)]
pub(super) struct Ack {
    /// The flags byte.
    pub(super) flags: u8,
    /// The sequence number.
    pub(super) seq: u32,
    /// The acknowledgement number.
    pub(super) ack: u32,
    /// The payload length.
    pub(super) payload: u32,
}

/// A lane's known-flow step for either family: tracks the client's segment `a` on flow `e` at
/// `now` and counts the packet of `ip_len` bytes for the rule (index) and member `to`. It calls
/// `track` itself, not `track_packet`, whose protocol test (always TCP here) the lane's compiled
/// form paid on every packet (benches/README.md).
#[inline(always)]
pub(super) fn track_and_count<L: Into<u64>>(
    e: &mut FlowEntry,
    counters: &mut WorkerCounters,
    to: (usize, MemberId),
    a: Ack,
    ip_len: L,
    now: u32,
) {
    let (rule, mid) = to;
    track(
        e,
        Direction::ClientToServer,
        a.flags,
        a.seq,
        a.ack,
        a.payload,
        now,
    );
    count_known(counters, rule, mid, ip_len);
}

/// Whether a packet classified as `m` is the lane's kind: a TCP segment that only acknowledges
/// (ACK set; SYN, FIN and RST clear), in any frame shape (a tagged frame or one with IPv4
/// options takes the general path's delivery in [`decide`]).
#[inline(always)]
fn is_lane_frame(m: &Meta) -> bool {
    m.key.proto == protocol::TCP && is_plain_ack(m.tcp_flags)
}

/// Decides and rewrites the lane's packet in `buf` (classified as `m`) whose burst lookup found
/// slot `id` (no insert since: the lane runs first): its verdict (a forward, or the MTU's), or
/// `None`, nothing changed, when the general decision must take it.
#[inline(always)]
fn decide<B: PacketBuf>(
    cx: &mut LaneCx<'_>,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta,
    id: SlotId,
    now: u32,
    gen: u32,
) -> Option<Verdict> {
    let (e, stamp) = cx.table.occupied_stamped(id)?;
    // A plain ACK keeps its flow's member (TCP), so the stamp's eligibility bit does not matter.
    if e.is_expired(now) || !recheck::is_current(*stamp, gen, true) {
        return None;
    }
    // A current stamp means the flow's rule is in this snapshot, at its id's index: the common
    // shape below counts by the id and never loads the rule.
    let rule_index = e.rule_id as usize;
    let mid = MemberId(e.member_id);
    let hop = cx.hops.member(view, mid).ok()?;
    // NAT in the common frame shape within the MTU at constant offsets, GUE in that shape within
    // the MTU less its overhead by its own writer; any other delivery as the general path makes
    // it.
    let plain = usize::from(m.l4) == PLAIN_L4 && m.ip_len <= hop.mtu;
    let floating = e.flags.contains(FlowFlags::FLOATING);
    let ack = Ack {
        flags: m.tcp_flags,
        seq: m.seq,
        ack: m.ack,
        payload: m.payload,
    };
    let step = |e: &mut FlowEntry, counters: &mut WorkerCounters| {
        track_and_count(e, counters, (rule_index, mid), ack, m.ip_len, now);
    };
    // A floating-IP flow with a GUE port among its rewrite constants is delivered in GUE (the
    // flag is tested first: NAT flows, the common case, stop at the flags already loaded).
    if floating
        && e.sums.gue_dport != 0
        && usize::from(m.ip_len) + GUE_OVERHEAD <= usize::from(hop.mtu)
    {
        let outer = Outer {
            dst: e.member_addr,
            sport: e.sums.gue_sport,
            dport: e.sums.gue_dport,
        };
        if gue_plain_tcp(buf, m, hop, &outer, e.backend_port) {
            step(e, cx.counters);
            return Some(Verdict::Forward { port: hop.port });
        }
    }
    if !plain || floating {
        let rule = view.snapshot.rules.get(rule_index)?;
        step(e, cx.counters);
        return Some(flow_to_member(buf, m, e, rule, hop, view));
    }
    let h = buf.data_mut().first_chunk_mut::<PLAIN_TCP_END>()?;
    step(e, cx.counters);
    nat_plain_tcp(
        h,
        e.member_addr,
        Some(e.backend_port),
        m.key.dst_port,
        e.sums,
    );
    set_macs(h, hop);
    Some(Verdict::Forward { port: hop.port })
}
