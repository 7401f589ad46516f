//! Outbound SNAT of IPv6 members in the IPv6 lane (docs/design.md §3.5.6), over the lane's
//! [`SnatTable<u128>`], as the IPv4 pipeline does (`dataplane::snat`):
//!
//! - **egress** (from a member an IPv6 outbound rule covers for its protocol, to an address that
//!   is neither the appliance's nor a frontend): its translation is found by the packet's key or
//!   created on a TCP SYN or any UDP packet, from this worker's sub-block of the member's block
//!   on each frontend IP of the rule in turn; the source becomes frontend:SNAT port (checksums
//!   over the IPv6 pseudo-header, hop limit decremented) toward the remote. A TCP packet other
//!   than a SYN without a translation is `no_flow`; no free port: `snat_exhausted`.
//! - **reply** (to an IPv6 frontend no rule takes, from a remote endpoint the member sent to):
//!   the destination becomes member:port, sent to the member's MAC.
//! - **expiry**: the worker's sweep releases idle translations ([`expire_snat6`]); no RST is sent
//!   on expiry of an IPv6 translation.

use super::{is_syn6, track6, Cx6};
use crate::balance::snapshot::{MemberId, OutboundInfo, SnatBlock};
use crate::dataplane::classify6::Meta6;
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::reason::DropReason;
use crate::dataplane::rewrite6::{reply_to_client6, to_member6, Target6};
use crate::dataplane::route::client_hop6;
use crate::dataplane::snat::{account_released, create_in, NewOutbound};
use crate::dataplane::{Verdict, View};
use crate::flow::{Direction, SnatTable};
use crate::wire::{ipv6::next_header, PacketBuf};
use std::net::Ipv6Addr;

/// Removes the expired translation in `slot` found on the packet path.
#[cold]
fn expire_found(snat: &mut SnatTable<u128>, counters: &mut WorkerCounters, slot: u32) {
    let Some(t) = snat.remove(slot) else {
        return;
    };
    let freed = snat.port_uses(t.frontend, t.snat_port) == 0;
    account_released(counters, &t, freed);
    counters.expired_flows += 1;
}

/// A member's packet under outbound rule `rule` with its blocks `blocks` (see the module doc).
#[inline(never)]
pub(super) fn egress6<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    rule: &OutboundInfo,
    blocks: &[SnatBlock],
    now: u32,
) -> Verdict {
    // The way out first: a packet that cannot leave takes no port.
    let hop = match client_hop6(view, Ipv6Addr::from(m.dst)) {
        Ok(hop) => hop,
        Err(r) => return Verdict::Drop(r),
    };
    let key = m.key();
    let snat = &mut cx.lane.snat;
    let mut found = snat.lookup_egress(&key);
    if let Some(slot) = found {
        if snat.get(slot).is_none_or(|t| t.is_expired(now)) {
            expire_found(snat, cx.counters, slot);
            found = None;
        }
    }
    let slot = match found {
        Some(slot) => {
            if let Some(t) = snat.get_mut(slot) {
                track6(&mut t.entry, m, Direction::ClientToServer, now, false);
            }
            slot
        }
        None => {
            if m.proto == next_header::TCP && !is_syn6(m) {
                return Verdict::Drop(DropReason::NoFlow);
            }
            let n = NewOutbound {
                key: &key,
                snap: view.snapshot,
                rule,
                blocks,
                worker: cx.worker,
                now,
            };
            let slot = match create_in(snat, cx.counters, &n, SnatBlock::frontend6) {
                Ok(slot) => slot,
                Err(v) => return v,
            };
            if let Some(t) = snat.get_mut(slot) {
                track6(&mut t.entry, m, Direction::ClientToServer, now, true);
            }
            slot
        }
    };
    let Some(t) = snat.get(slot) else {
        return Verdict::Drop(DropReason::NoFlow);
    };
    if is_syn6(m) {
        let fe = view.snapshot.frontend_by_addr6(t.frontend);
        if let Some(n) = fe.and_then(|f| cx.counters.snat_syns.get_mut(f.index())) {
            *n += 1;
        }
    }
    reply_to_client6(buf, m, t.frontend, t.snat_port, &hop)
}

/// A packet to an IPv6 frontend no rule takes: the reply of a translation, or `None`.
#[inline(never)]
pub(super) fn reply6<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    m: &Meta6,
    now: u32,
) -> Option<Verdict> {
    let snat = &mut cx.lane.snat;
    if snat.is_empty() {
        return None;
    }
    let slot = snat.lookup_reply(&m.key())?;
    if snat.get(slot).is_none_or(|t| t.is_expired(now)) {
        expire_found(snat, cx.counters, slot);
        return Some(Verdict::Drop(DropReason::IdleExpired));
    }
    let t = snat.get_mut(slot)?;
    track6(&mut t.entry, m, Direction::ServerToClient, now, false);
    let first_answer = !t.answered;
    t.answered = true;
    let t = *t;
    if first_answer {
        if let Some(s) = cx.counters.snat.get_mut(t.entry.member_id as usize) {
            s.successful += 1;
        }
    }
    let snap = view.snapshot;
    let mid = match snap.members.get(t.entry.member_id as usize) {
        Some(mi) if mi.addr6() == t.member => MemberId(t.entry.member_id),
        _ => match snap.member_by_addr6(t.member) {
            Some(mid) => mid,
            None => return Some(Verdict::Drop(DropReason::NoRoute)),
        },
    };
    let target = Target6::nat(t.member, t.member_port);
    Some(match cx.hops.member(view, mid) {
        Ok(hop) => to_member6(buf, m, &target, hop, 0, 0),
        Err(r) => Verdict::Drop(r),
    })
}

/// Releases expired IPv6 translations among the next `budget` slots; returns how many.
pub(in crate::dataplane) fn expire_snat6(
    snat: &mut SnatTable<u128>,
    counters: &mut WorkerCounters,
    now: u32,
    budget: usize,
) -> usize {
    if snat.is_empty() {
        return 0;
    }
    snat.expire_step(now, budget, |t, freed| {
        account_released(counters, t, freed);
        counters.expired_flows += 1;
    })
}
