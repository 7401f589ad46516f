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
//! - **expiry**: the worker's sweep releases idle translations ([`expire_snat6`]); with
//!   `enable_tcp_reset`, an established connection gets a RST each way, as IPv4's: to the member
//!   from remote:port, to the remote from frontend:SNAT port (a translation found expired on the
//!   packet path queues its RSTs for the next sweep, [`SnatPending6`]).
//! - **ICMPv6 errors** about a translation go to its member (`pipeline6::icmp`, with
//!   [`snat_member6`]).

use super::expire::Expiry6;
use super::{is_syn6, track6, Cx6, Lane6};
use crate::balance::snapshot::{MemberId, OutboundInfo, Snapshot, SnatBlock};
use crate::dataplane::classify6::Meta6;
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::expiry::{emit_frame, Scratch, PENDING_RESETS};
use crate::dataplane::expiry6::tcp_rst6;
use crate::dataplane::reason::DropReason;
use crate::dataplane::rewrite6::{reply_to_client6, to_member6, Target6};
use crate::dataplane::route::{client_hop6, HopCache};
use crate::dataplane::snat::{account_released, create_in, NewOutbound};
use crate::dataplane::{Verdict, View};
use crate::flow::{Direction, Translation};
use crate::wire::builder::L2Spec;
use crate::wire::{ipv6::next_header, PacketBuf};
use std::net::{Ipv6Addr, SocketAddrV6};

/// Expired IPv6 translations found on the packet path whose RSTs the next sweep sends (at most
/// `PENDING_RESETS` between two sweeps; more are expired without RSTs).
pub struct SnatPending6 {
    items: [Translation<u128>; PENDING_RESETS],
    len: usize,
}

impl SnatPending6 {
    /// An empty queue.
    pub(in crate::dataplane) fn new() -> Self {
        SnatPending6 {
            items: [Translation::default(); PENDING_RESETS],
            len: 0,
        }
    }

    /// Queues one translation's RSTs (dropped silently when the queue is full).
    #[inline]
    fn push(&mut self, t: Translation<u128>) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = t;
            self.len += 1;
        }
    }
}

/// Removes the expired translation in `slot` found on the packet path, queueing its RSTs.
#[cold]
fn expire_found(lane: &mut Lane6, counters: &mut WorkerCounters, slot: u32) {
    let Some(t) = lane.snat.remove(slot) else {
        return;
    };
    let freed = lane.snat.port_uses(t.frontend, t.snat_port) == 0;
    account_released(counters, &t, freed);
    counters.expired_flows += 1;
    if t.entry.wants_reset_on_expiry() {
        lane.snat_pending.push(t);
    }
}

/// The member of translation `t`: its recorded id while that member keeps the address, else
/// the member with the address (`None`: gone from the snapshot).
pub(super) fn snat_member6(snap: &Snapshot, t: &Translation<u128>) -> Option<MemberId> {
    match snap.members.get(t.entry.member_id as usize) {
        Some(mi) if mi.addr6() == t.member => Some(MemberId(t.entry.member_id)),
        _ => snap.member_by_addr6(t.member),
    }
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
    let hop = match client_hop6(view, Ipv6Addr::from(m.key.dst_ip)) {
        Ok(hop) => hop,
        Err(r) => return Verdict::Drop(r),
    };
    let key = m.key;
    let mut found = cx.lane.snat.lookup_egress(&key);
    if let Some(slot) = found {
        if cx.lane.snat.get(slot).is_none_or(|t| t.is_expired(now)) {
            expire_found(cx.lane, cx.counters, slot);
            found = None;
        }
    }
    let snat = &mut cx.lane.snat;
    let slot = match found {
        Some(slot) => {
            if let Some(t) = snat.get_mut(slot) {
                track6(&mut t.entry, m, Direction::ClientToServer, now, false);
            }
            slot
        }
        None => {
            if m.key.proto == next_header::TCP && !is_syn6(m) {
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
    if cx.lane.snat.is_empty() {
        return None;
    }
    let slot = cx.lane.snat.lookup_reply(&m.key)?;
    if cx.lane.snat.get(slot).is_none_or(|t| t.is_expired(now)) {
        expire_found(cx.lane, cx.counters, slot);
        return Some(Verdict::Drop(DropReason::IdleExpired));
    }
    let t = cx.lane.snat.get_mut(slot)?;
    track6(&mut t.entry, m, Direction::ServerToClient, now, false);
    let first_answer = !t.answered;
    t.answered = true;
    let t = *t;
    if first_answer {
        if let Some(s) = cx.counters.snat.get_mut(t.entry.member_id as usize) {
            s.successful += 1;
        }
    }
    let Some(mid) = snat_member6(view.snapshot, &t) else {
        return Some(Verdict::Drop(DropReason::NoRoute));
    };
    let target = Target6::nat(t.member, t.member_port);
    Some(match cx.hops.member(view, mid) {
        Ok(hop) => to_member6(buf, m, &target, hop, 0, 0),
        Err(r) => Verdict::Drop(r),
    })
}

/// Sends the RSTs queued by the packet path, then releases expired IPv6 translations among the
/// next `budget` slots, resetting established ones that ask for it; returns how many expired.
pub(in crate::dataplane) fn expire_snat6<F: FnMut(usize, &[u8])>(
    x: &mut Expiry6<'_>,
    view: &View<'_>,
    now: u32,
    budget: usize,
    emit: &mut F,
) -> usize {
    let Expiry6 {
        lane,
        counters,
        hops,
        scratch,
        ..
    } = x;
    let pending = &mut lane.snat_pending;
    for t in &pending.items[..pending.len.min(PENDING_RESETS)] {
        counters.resets_sent += send_resets_snat6(view, hops, scratch, t, emit);
    }
    pending.len = 0;
    if lane.snat.is_empty() {
        return 0;
    }
    lane.snat.expire_step(now, budget, |t, freed| {
        account_released(counters, t, freed);
        counters.expired_flows += 1;
        if t.entry.wants_reset_on_expiry() {
            counters.resets_sent += send_resets_snat6(view, hops, scratch, t, emit);
        }
    })
}

/// Builds and emits the RSTs of the expired established translation `t`: to the member from
/// remote:port, to the remote from frontend:SNAT port, each with the sequence number its
/// receiver expects; returns how many were emitted.
pub(in crate::dataplane) fn send_resets_snat6<F: FnMut(usize, &[u8])>(
    view: &View<'_>,
    hops: &mut HopCache,
    scratch: &mut Scratch,
    t: &Translation<u128>,
    emit: &mut F,
) -> u64 {
    let (Some(to_member_seq), Some(to_remote_seq)) =
        (t.entry.rst_to_client_seq(), t.entry.rst_to_backend_seq())
    else {
        return 0;
    };
    let end = |a: u128, port: u16| SocketAddrV6::new(Ipv6Addr::from(a), port, 0, 0);
    let (member, remote) = (end(t.member, t.member_port), end(t.remote, t.remote_port));
    let snat = end(t.frontend, t.snat_port);
    let mut sent = 0;
    let member_hop = snat_member6(view.snapshot, t).and_then(|mid| hops.member(view, mid).ok());
    if let Some(hop) = member_hop {
        let l2 = L2Spec {
            src_mac: hop.src_mac,
            dst_mac: hop.dst_mac,
            vlan: None,
        };
        let port = hop.port;
        sent += emit_frame(scratch, port, emit, |out| {
            tcp_rst6(out, &l2, remote, member, to_member_seq)
        });
    }
    if let Ok(hop) = client_hop6(view, *remote.ip()) {
        let l2 = L2Spec {
            src_mac: hop.src_mac,
            dst_mac: hop.dst_mac,
            vlan: None,
        };
        sent += emit_frame(scratch, hop.port, emit, |out| {
            tcp_rst6(out, &l2, snat, remote, to_remote_seq)
        });
    }
    sent
}
