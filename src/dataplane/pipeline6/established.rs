//! The IPv6 established lane: IPv4's (`dataplane::established`, docs/design.md §3.4) for the
//! burst's IPv6 frames. After the IPv6 burst lookup, the leading TCP segments that only
//! acknowledge, of live NAT66 flows already checked under the current snapshot, are decided in a
//! loop of their own; the lane stops at the first packet that is not its own (another kind of
//! segment or protocol, a miss, an expired flow, a stamp from an older snapshot, a floating-IP
//! flow, a next hop in error) and the general decision takes that packet and every later one, so
//! each flow's packets are still decided in the order they came. For its packets the lane makes
//! the decision the general path's known-flow case makes for them: the same tracking, counters,
//! next hop and NAT66.

use super::Cx6;
use crate::balance::snapshot::MemberId;
use crate::dataplane::classify6::Meta6;
use crate::dataplane::established::{in_order, track_and_count, Ack};
use crate::dataplane::pipeline::{store_verdict, Classified};
use crate::dataplane::recheck;
use crate::dataplane::rewrite6::nat66_to;
use crate::dataplane::{Verdict, View};
use crate::flow::{is_plain_ack, FlowFlags, SlotId};
use crate::wire::{ipv6::next_header, PacketBuf};

/// Runs the lane over the burst's classified IPv6 packets `work` in order, up to the first one
/// that is not the lane's; returns how many it decided (their verdicts set in
/// `verdicts`, indexed as `pkts`). No insert happened since the lookup: the lane runs first.
#[inline(always)]
pub(super) fn run<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    pkts: &mut [B],
    verdicts: &mut [Verdict],
    work: Classified<'_, Meta6>,
    now: u32,
) -> usize {
    in_order(pkts, verdicts, work, |p, out, m, id| {
        if !(m.key.proto == next_header::TCP && is_plain_ack(m.tcp_flags)) {
            return false;
        }
        let Some(v) = decide(cx, view, p, m, id, now) else {
            return false;
        };
        store_verdict(cx.counters, out, v);
        true
    })
}

/// Decides and rewrites the lane's packet in `buf` (classified as `m`) whose burst lookup found
/// slot `id`: its verdict (a forward, or the MTU's), or `None`, nothing changed, when the general
/// decision must take it.
#[inline(always)]
fn decide<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    id: SlotId,
    now: u32,
) -> Option<Verdict> {
    let (e, stamp) = cx.lane.table.occupied_stamped(id)?;
    // A plain ACK keeps its flow's member (TCP), so the stamp's eligibility bit does not matter;
    // a current stamp means the flow's rule is in this snapshot, at its id's index.
    if e.flow.is_expired(now)
        || !recheck::is_current(*stamp, cx.gen, true)
        || e.flow.flags.contains(FlowFlags::FLOATING)
    {
        return None;
    }
    let mid = MemberId(e.flow.member_id);
    let hop = cx.hops.member(view, mid).ok()?;
    let ack = Ack {
        flags: m.tcp_flags,
        seq: m.seq,
        ack: m.ack,
        payload: m.payload,
    };
    let to = (e.flow.rule_id as usize, mid);
    track_and_count(&mut e.flow, cx.counters, to, ack, m.ip_len, now);
    let d = e.flow.sums.l4_delta;
    Some(nat66_to(
        buf,
        m,
        e.member_addr,
        e.flow.backend_port,
        Some(d),
        hop,
    ))
}
