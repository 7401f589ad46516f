//! Outbound SNAT in the data path (docs/design.md §3.5.6): a member's connection leaves with a
//! frontend IP and a port of the member's block, its replies come back to the member.
//!
//! - **Egress** (a packet from a member an outbound rule covers for its protocol, to an address
//!   that is neither the appliance's nor a frontend): its translation is looked up by the
//!   packet's own key, or created on a TCP SYN or any UDP packet; the source becomes frontend
//!   IP:SNAT port (checksums updated incrementally, TTL decremented) and the frame is routed like
//!   a NAT reply to a client. A TCP packet other than a SYN without a translation is dropped
//!   (`no_flow`): the remote side would not know it. No free port: `snat_exhausted`, counted for
//!   the member. A SYN that leaves counts for its frontend IP (`snat_syns`).
//! - **Reply** (a packet to a frontend IP that no rule takes and whose key is a translation's
//!   remote side): the destination becomes member:port and it goes to the member like a NAT
//!   packet. Only remote endpoints the member sent to are answered (port-restricted).
//! - **Ownership across workers** (docs/design.md §6.2): egress is owned by f(member endpoint),
//!   the same Toeplitz rule as a client endpoint; each worker allocates only from its own part
//!   of the block ([`worker_range`]), so a reply's destination port names its owner
//!   ([`port_worker`]).
//! - **Several frontend IPs** add ports: a new translation takes a port of the member's block on
//!   the rule's first frontend IP, then on the next once that part is exhausted, and so on
//!   (this worker's sub-block on each); a UDP member endpoint that already has a translation
//!   toward the destination IP tries that frontend IP first (the cone keeps its mapping).
//! - **Expiry**: the worker's sweep releases idle translations; with `enable_tcp_reset`, an
//!   established connection gets a RST each way: to the member from remote:port, to the remote
//!   from frontend IP:SNAT port, each with the sequence number the receiver expects.

use super::counters::{SnatCounters, WorkerCounters};
use super::expiry::{emit_rst, member_of, Scratch};
use super::pipeline::{is_syn, track_first, track_packet, Cx, Pkt};
use super::reason::DropReason;
use super::rewrite::{reply_to_client, to_member, Target};
use super::route::{client_hop, HopCache};
use super::{Verdict, View};
use crate::balance::snapshot::{snat_port_owner, OutboundInfo, Snapshot, SnatBlock};
use crate::config::DsrEncapsulation;
use crate::flow::snat::SnatAddr;
use crate::flow::{
    Direction, FlowEntry, FlowKey, NewTranslation, SnatError, SnatTable, Translation,
};
use crate::wire::builder::L2Spec;
use crate::wire::{protocol, PacketBuf};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The sub-block of `b` worker `worker` of `workers` allocates from, as (first port, count)
/// ([`SnatBlock::worker_ports`]: equal contiguous parts in worker order, the last also taking the
/// remainder).
#[inline]
pub fn worker_range(b: &SnatBlock, worker: usize, workers: usize) -> (u16, u16) {
    let w = u16::try_from(worker).unwrap_or(u16::MAX);
    b.worker_ports(w, u16::try_from(workers).unwrap_or(u16::MAX))
}

/// The worker whose sub-block of `b` holds `port` ([`snat_port_owner`]; 0 outside the block).
#[inline]
pub fn port_worker(b: &SnatBlock, port: u16, workers: usize) -> usize {
    let n = u16::try_from(workers).unwrap_or(u16::MAX);
    usize::from(snat_port_owner(b, port, n).unwrap_or(0))
}

/// The SNAT counters of member `id` (none past the vector, which `ensure` sizes per snapshot).
#[inline]
fn member_counters(c: &mut WorkerCounters, id: u32) -> Option<&mut SnatCounters> {
    c.snat.get_mut(id as usize)
}

/// Accounts a translation that is gone (`freed`: its port is free again).
pub(super) fn account_released<A: SnatAddr>(
    c: &mut WorkerCounters,
    t: &Translation<A>,
    freed: bool,
) {
    if let Some(s) = member_counters(c, t.entry.member_id) {
        s.unanswered += u64::from(!t.answered);
        s.ports_released += u64::from(freed);
    }
}

/// Removes the expired translation in `slot` found on the packet path, queueing its RSTs.
#[cold]
fn expire_found(cx: &mut Cx<'_>, slot: u32) {
    let Some(t) = cx.snat.remove(slot) else {
        return;
    };
    let freed = cx.snat.port_uses(t.frontend, t.snat_port) == 0;
    account_released(cx.counters, &t, freed);
    cx.counters.expired_flows += 1;
    if t.entry.wants_reset_on_expiry() {
        cx.snat_pending.push(t.egress_key(), t.entry);
    }
}

/// A member's packet under outbound rule `rule` with its blocks `blocks`, one per frontend IP
/// in the rule's order (see the module doc).
#[inline(never)]
pub(super) fn egress<B: PacketBuf>(
    cx: &mut Cx<'_>,
    view: &View<'_>,
    buf: &mut B,
    pkt: &Pkt<'_>,
    rule: &OutboundInfo,
    blocks: &[SnatBlock],
) -> Verdict {
    let Pkt { m, now, .. } = *pkt;
    let key = &m.key;
    // The way out first: a packet that cannot leave takes no port.
    let hop = match client_hop(view, Ipv4Addr::from(m.key.dst_ip)) {
        Ok(hop) => hop,
        Err(r) => return Verdict::Drop(r),
    };
    let mut found = cx.snat.lookup_egress(key);
    if let Some(slot) = found {
        if cx.snat.get(slot).is_none_or(|t| t.is_expired(now)) {
            expire_found(cx, slot);
            found = None;
        }
    }
    let slot = match found {
        Some(slot) => {
            if let Some(t) = cx.snat.get_mut(slot) {
                track_packet(&mut t.entry, m, Direction::ClientToServer, now);
            }
            slot
        }
        None => match create(cx, view.snapshot, pkt, rule, blocks) {
            Ok(slot) => slot,
            Err(v) => return v,
        },
    };
    let Some(t) = cx.snat.get(slot) else {
        return Verdict::Drop(DropReason::NoFlow);
    };
    if is_syn(m) {
        let fe = view.snapshot.frontend_by_addr(t.frontend);
        if let Some(n) = fe.and_then(|f| cx.counters.snat_syns.get_mut(f.index())) {
            *n += 1;
        }
    }
    reply_to_client(buf, m, t.frontend, t.snat_port, &hop, view)
}

/// A new translation for the packet's connection, from this worker's part of the first of
/// `blocks` with room (a UDP endpoint's kept frontend IP first).
#[cold]
#[inline(never)]
fn create(
    cx: &mut Cx<'_>,
    snap: &Snapshot,
    pkt: &Pkt<'_>,
    rule: &OutboundInfo,
    blocks: &[SnatBlock],
) -> Result<u32, Verdict> {
    let Pkt { m, now, .. } = *pkt;
    let key = &m.key;
    if m.key.proto == protocol::TCP && !is_syn(m) {
        return Err(Verdict::Drop(DropReason::NoFlow));
    }
    let new = NewOutbound {
        key,
        snap,
        rule,
        blocks,
        worker: cx.worker,
        now,
    };
    let slot = create_in(cx.snat, cx.counters, &new, SnatBlock::frontend4)?;
    if let Some(t) = cx.snat.get_mut(slot) {
        track_first(&mut t.entry, m, now);
    }
    Ok(slot)
}

/// What [`create_in`] needs of a member's new outbound connection.
pub(super) struct NewOutbound<'a, K> {
    /// The member's packet key.
    pub(super) key: &'a K,
    /// The snapshot.
    pub(super) snap: &'a Snapshot,
    /// The member's outbound rule.
    pub(super) rule: &'a OutboundInfo,
    /// The member's blocks, one per frontend IP of the rule.
    pub(super) blocks: &'a [SnatBlock],
    /// This worker's index and the number of workers.
    pub(super) worker: (usize, usize),
    /// Now, seconds.
    pub(super) now: u32,
}

/// Creates the translation of `n` in `snat` (either family; `fe` reads a block's frontend IP
/// in the table's form) and counts it for the member; the caller tracks the first packet.
pub(super) fn create_in<A: SnatAddr>(
    snat: &mut SnatTable<A>,
    counters: &mut WorkerCounters,
    n: &NewOutbound<'_, A::Key>,
    fe: fn(&SnatBlock) -> A,
) -> Result<u32, Verdict> {
    let Some(first) = n.blocks.first() else {
        return Err(Verdict::Drop(DropReason::NoOutboundRule));
    };
    let kept = snat.cone_frontend(n.key);
    let kept_first = n.blocks.iter().filter(|b| Some(fe(b)) == kept);
    let others = n.blocks.iter().filter(|b| Some(fe(b)) != kept);
    let outbound = n
        .snap
        .outbound
        .iter()
        .position(|o| std::ptr::eq(o, n.rule))
        .unwrap_or(0) as u32;
    let mut result = Err(SnatError::Exhausted);
    for block in kept_first.chain(others) {
        let (first_port, ports) = worker_range(block, n.worker.0, n.worker.1);
        let t = NewTranslation {
            key: *n.key,
            frontend: fe(block),
            first_port,
            ports,
            outbound,
            member_id: block.member.0,
            idle_timeout: n.rule.idle_timeout_secs,
            reset: n.rule.enable_tcp_reset,
        };
        result = snat.create(&t, n.now);
        if result != Err(SnatError::Exhausted) {
            break;
        }
    }
    let member = first.member.0;
    let slot = match result {
        Ok(slot) => slot,
        Err(e) => {
            let reason = match e {
                SnatError::Exhausted => {
                    if let Some(s) = member_counters(counters, member) {
                        s.exhausted += 1;
                    }
                    DropReason::SnatExhausted
                }
                SnatError::TableFull | SnatError::UnknownFrontend => DropReason::FlowTableFull,
            };
            return Err(Verdict::Drop(reason));
        }
    };
    let fresh = snat
        .get(slot)
        .is_some_and(|t| snat.port_uses(t.frontend, t.snat_port) == 1);
    if let Some(s) = member_counters(counters, member) {
        s.connections += 1;
        s.ports_taken += u64::from(fresh);
    }
    Ok(slot)
}

/// A packet to a frontend IP no rule takes: the reply of a translation, or `None`.
#[inline(never)]
pub(super) fn reply<B: PacketBuf>(
    cx: &mut Cx<'_>,
    view: &View<'_>,
    buf: &mut B,
    pkt: &Pkt<'_>,
) -> Option<Verdict> {
    let Pkt { m, now, .. } = *pkt;
    let key = &m.key;
    if cx.snat.is_empty() {
        return None;
    }
    let slot = cx.snat.lookup_reply(key)?;
    if cx.snat.get(slot).is_none_or(|t| t.is_expired(now)) {
        expire_found(cx, slot);
        return Some(Verdict::Drop(DropReason::IdleExpired));
    }
    let t = cx.snat.get_mut(slot)?;
    track_packet(&mut t.entry, m, Direction::ServerToClient, now);
    let first_answer = !t.answered;
    t.answered = true;
    let t = *t;
    if first_answer {
        if let Some(s) = member_counters(cx.counters, t.entry.member_id) {
            s.successful += 1;
        }
    }
    let snap = view.snapshot;
    let Some(mid) = member_of(snap, &t.entry, t.member) else {
        return Some(Verdict::Drop(DropReason::NoRoute));
    };
    let target = Target {
        addr: t.member,
        port: t.member_port,
        floating: false,
        encap: DsrEncapsulation::None,
        gue_port: 0,
        sums: None,
    };
    Some(match cx.hops.member(view, mid) {
        Ok(hop) => to_member(buf, m, &target, hop, view),
        Err(r) => Verdict::Drop(r),
    })
}

/// Builds and emits the RSTs of an expired established translation (`key`: the member's
/// side; `e.member_addr`/`e.backend_port`: frontend IP and SNAT port); returns how many.
pub(super) fn send_resets<F: FnMut(usize, &[u8])>(
    view: &View<'_>,
    hops: &mut HopCache,
    scratch: &mut Scratch,
    key: &FlowKey,
    e: &FlowEntry,
    emit: &mut F,
) -> u64 {
    let (Some(to_member_seq), Some(to_remote_seq)) =
        (e.rst_to_client_seq(), e.rst_to_backend_seq())
    else {
        return 0;
    };
    let member = SocketAddrV4::new(Ipv4Addr::from(key.src_ip), key.src_port);
    let remote = SocketAddrV4::new(Ipv4Addr::from(key.dst_ip), key.dst_port);
    let snat = SocketAddrV4::new(Ipv4Addr::from(e.member_addr), e.backend_port);
    let mut sent = 0;
    // To the member, from the remote endpoint.
    if let Some(mid) = member_of(view.snapshot, e, key.src_ip) {
        if let Ok(hop) = hops.member(view, mid) {
            let l2 = L2Spec {
                src_mac: hop.src_mac,
                dst_mac: hop.dst_mac,
                vlan: None,
            };
            let port = hop.port;
            sent += emit_rst(scratch, &l2, remote, member, to_member_seq, port, emit);
        }
    }
    // To the remote, from the frontend IP and SNAT port.
    if let Ok(hop) = client_hop(view, *remote.ip()) {
        let l2 = L2Spec {
            src_mac: hop.src_mac,
            dst_mac: hop.dst_mac,
            vlan: None,
        };
        sent += emit_rst(scratch, &l2, snat, remote, to_remote_seq, hop.port, emit);
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::snapshot::MemberId;

    fn block(first: u16, count: u16) -> SnatBlock {
        SnatBlock {
            member: MemberId(0),
            frontend_addr: Ipv4Addr::new(10, 0, 0, 1).into(),
            first_port: first,
            count,
        }
    }

    #[test]
    fn every_port_of_a_workers_part_names_that_worker() {
        for count in [1u16, 7, 8, 16, 17, 1024, 64000] {
            for workers in 1..=5usize {
                let b = block(1024, count);
                let mut covered = 0u32;
                for w in 0..workers {
                    let (lo, n) = worker_range(&b, w, workers);
                    covered += u32::from(n);
                    for p in lo..lo + n {
                        assert_eq!(
                            port_worker(&b, p, workers),
                            w,
                            "{count} ports, {workers} workers"
                        );
                    }
                }
                assert_eq!(covered, u32::from(count), "the parts cover the block");
            }
        }
    }

    #[test]
    fn equal_parts_in_worker_order() {
        let b = block(1024, 16);
        assert_eq!(worker_range(&b, 0, 2), (1024, 8));
        assert_eq!(worker_range(&b, 1, 2), (1032, 8));
        assert_eq!(worker_range(&b, 0, 1), (1024, 16));
    }
}
