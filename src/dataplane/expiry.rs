//! Idle expiry and the RST pair of `enable_tcp_reset` (docs/design.md §3.6).
//!
//! [`Pipeline::expire`] walks a bounded number of flow-table buckets (amortised sweep). Each expired
//! entry is removed, counted, recorded in the recently-expired record when it was a live
//! connection (so its late packets are dropped `idle_expired`), and, when its rule has
//! `enable_tcp_reset` and the flow was ESTABLISHED with both numbers known, two RSTs are built in a
//! scratch buffer and handed to `emit(port, frame)`:
//!
//! - **to the client**: from VIP:frontend_port to client:port, `seq` = the client's latest ACK
//!   (= the client's RCV.NXT), toward the client's next hop (on-link or gateway), untagged;
//! - **to the backend**: from client:port to VIP:frontend_port, `seq` = the client's next sequence
//!   (= the backend's RCV.NXT), then put through the same rewrite as the flow's packets (NAT to
//!   DIP:backend_port, floating-IP MAC rewrite or IPIP/GUE encapsulation toward the member).
//!
//! Both carry only the RST flag, so RFC 5961 receivers accept them at once (sequence = RCV.NXT).
//! Flows that never became established, and every flow without `enable_tcp_reset`, expire
//! silently. Entries found expired on the packet path (before the sweep reached them) queue their
//! RSTs in a small fixed list drained by the next `expire` call (overflow is dropped silently).

use super::classify::Meta;
use super::counters::WorkerCounters;
use super::pipeline::Pipeline;
use super::pipeline6::{self, expire::Expiry6};
use super::rewrite::{to_member, Target};
use super::route::{client_hop, Hop, HopCache};
use super::snat;
use super::{Verdict, View};
use crate::balance::snapshot::{MemberId, Snapshot};
use crate::flow::{FlowEntry, FlowFlags, FlowKey};
use crate::wire::builder::{tcp_rst, L2Spec};
use crate::wire::{protocol, MacAddr, PacketBuf};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Capacity of the queue of RSTs owed by flows found expired on the packet path.
pub const PENDING_RESETS: usize = 64;

/// Fixed list of (key, entry) whose RSTs the next `expire` sends.
pub struct Pending {
    items: [(FlowKey, FlowEntry); PENDING_RESETS],
    len: usize,
}

impl Pending {
    pub(super) fn new() -> Self {
        Pending {
            items: [(FlowKey::default(), FlowEntry::default()); PENDING_RESETS],
            len: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, k: FlowKey, e: FlowEntry) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (k, e);
            self.len += 1;
        }
    }
}

const SCRATCH_HEADROOM: usize = 128;
const SCRATCH_LEN: usize = 384;

/// A small fixed buffer with headroom, for frames the data path originates (RSTs).
pub struct Scratch {
    buf: [u8; SCRATCH_LEN],
    start: usize,
    end: usize,
}

impl Scratch {
    pub(super) fn new() -> Self {
        Scratch {
            buf: [0; SCRATCH_LEN],
            start: SCRATCH_HEADROOM,
            end: SCRATCH_HEADROOM,
        }
    }

    /// Empties the buffer, restoring the headroom.
    pub(super) fn reset(&mut self) {
        self.start = SCRATCH_HEADROOM;
        self.end = SCRATCH_HEADROOM;
    }

    /// Room after the start, to build a frame into, then [`Scratch::set_len`].
    pub(super) fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    pub(super) fn set_len(&mut self, n: usize) {
        self.end = self.start.saturating_add(n).min(SCRATCH_LEN);
    }
}

impl PacketBuf for Scratch {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn headroom(&self) -> usize {
        self.start
    }
    fn tailroom(&self) -> usize {
        SCRATCH_LEN - self.end
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.buf[self.start..self.start + n])
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        self.end += n;
        Some(&mut self.buf[self.end - n..self.end])
    }
    fn trim_front(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn truncate(&mut self, len: usize) {
        if len < self.end - self.start {
            self.end = self.start + len;
        }
    }
}

/// The member a flow or translation belongs to in `snap`: its id hint when that member still has
/// the address `addr`, else the member with that address (ids move across reloads).
pub(super) fn member_of(snap: &Snapshot, e: &FlowEntry, addr: u32) -> Option<MemberId> {
    match snap.members.get(e.member_id as usize) {
        Some(mi) if mi.addr4() == addr => Some(MemberId(e.member_id)),
        _ => snap.member_by_addr(addr),
    }
}

/// Builds one RST in `scratch` and emits it on `port`; 1 when it did.
pub(super) fn emit_rst<F: FnMut(usize, &[u8])>(
    scratch: &mut Scratch,
    l2: &L2Spec,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    port: usize,
    emit: &mut F,
) -> u64 {
    emit_frame(scratch, port, emit, |out| {
        tcp_rst(out, l2, src, dst, seq, None)
    })
}

/// Builds one frame in `scratch` with `build` and emits it on `port`; 1 when it did.
pub(super) fn emit_frame<F: FnMut(usize, &[u8])>(
    scratch: &mut Scratch,
    port: usize,
    emit: &mut F,
    build: impl FnOnce(&mut [u8]) -> crate::wire::Result<usize>,
) -> u64 {
    scratch.reset();
    match build(scratch.space()) {
        Ok(n) => {
            scratch.set_len(n);
            emit(port, scratch.data());
            1
        }
        Err(_) => 0,
    }
}

/// The endpoints and sequence numbers of an expired established flow's two RSTs, for either
/// IP family (`A`: its socket address type).
#[derive(Debug, Clone, Copy)]
pub(super) struct ResetPair<A> {
    /// The client's endpoint.
    pub client: A,
    /// The frontend's endpoint (VIP and frontend port).
    pub vip: A,
    /// Sequence of the RST to the client (its latest ACK).
    pub to_client_seq: u32,
    /// Sequence of the RST to the member (the client's next sequence).
    pub to_member_seq: u32,
}

impl ResetPair<SocketAddrV4> {
    /// The RSTs of the IPv4 flow `key`/`e`; `None` while a sequence number is unknown.
    fn v4(key: &FlowKey, e: &FlowEntry) -> Option<Self> {
        Some(ResetPair {
            client: SocketAddrV4::new(Ipv4Addr::from(key.src_ip), key.src_port),
            vip: SocketAddrV4::new(Ipv4Addr::from(key.dst_ip), key.dst_port),
            to_client_seq: e.rst_to_client_seq()?,
            to_member_seq: e.rst_to_backend_seq()?,
        })
    }
}

/// Builds and emits the two RSTs of `pair` whatever the family: `build(out, l2, src, dst, seq)`
/// writes one RST frame and returns its length; the client's goes out untagged toward
/// `client_hop` (none without one); the member's, built with zero MACs, is handed to
/// `to_member(scratch, len)`, which puts it through the flow's rewrite and returns the egress
/// port, or `None` when it cannot go. Returns how many were emitted.
pub(super) fn send_reset_pair<A: Copy, F: FnMut(usize, &[u8])>(
    scratch: &mut Scratch,
    pair: &ResetPair<A>,
    build: impl Fn(&mut [u8], &L2Spec, A, A, u32) -> crate::wire::Result<usize>,
    client_hop: Option<&Hop>,
    to_member: impl FnOnce(&mut Scratch, usize) -> Option<usize>,
    emit: &mut F,
) -> u64 {
    let mut sent = 0;
    if let Some(hop) = client_hop {
        let l2 = L2Spec {
            src_mac: hop.src_mac,
            dst_mac: hop.dst_mac,
            vlan: None,
        };
        scratch.reset();
        if let Ok(n) = build(
            scratch.space(),
            &l2,
            pair.vip,
            pair.client,
            pair.to_client_seq,
        ) {
            scratch.set_len(n);
            emit(hop.port, scratch.data());
            sent += 1;
        }
    }
    scratch.reset();
    let l2 = L2Spec {
        src_mac: MacAddr::ZERO,
        dst_mac: MacAddr::ZERO,
        vlan: None,
    };
    let Ok(n) = build(
        scratch.space(),
        &l2,
        pair.client,
        pair.vip,
        pair.to_member_seq,
    ) else {
        return sent;
    };
    scratch.set_len(n);
    if let Some(port) = to_member(scratch, n) {
        emit(port, scratch.data());
        sent += 1;
    }
    sent
}

/// Builds and emits the two RSTs of an expired established flow; returns how many were emitted.
fn send_resets<F: FnMut(usize, &[u8])>(
    view: &View<'_>,
    hops: &mut HopCache,
    scratch: &mut Scratch,
    key: &FlowKey,
    e: &FlowEntry,
    emit: &mut F,
) -> u64 {
    let Some(pair) = ResetPair::v4(key, e) else {
        return 0;
    };
    let to_member_seq = pair.to_member_seq;
    let client = client_hop(view, *pair.client.ip()).ok();
    let build = |out: &mut [u8], l2: &L2Spec, src, dst, seq| tcp_rst(out, l2, src, dst, seq, None);
    // To the member, as the client's packets were forwarded.
    let member = |scratch: &mut Scratch, n: usize| {
        let snap = view.snapshot;
        let mid = member_of(snap, e, e.member_addr)?;
        let pool = snap.pools.get(snap.member(mid)?.pool.index())?;
        let hop = hops.member(view, mid).ok()?;
        let m = rst_meta(key, n, to_member_seq);
        let t = Target {
            addr: e.member_addr,
            port: e.backend_port,
            floating: e.flags.contains(FlowFlags::FLOATING),
            encap: pool.dsr_encapsulation,
            gue_port: pool.gue_port,
            sums: None,
        };
        match to_member(scratch, &m, &t, hop, view) {
            Verdict::Forward { port } => Some(port),
            _ => None,
        }
    };
    send_reset_pair(scratch, &pair, build, client.as_ref(), member, emit)
}

/// The classification of the member's RST [`tcp_rst`] built for `key` (`n` bytes, untagged).
fn rst_meta(key: &FlowKey, n: usize, seq: u32) -> Meta {
    Meta {
        key: FlowKey {
            proto: protocol::TCP,
            ..*key
        },
        l3: 14,
        l4: 34,
        ip_len: (n - 14) as u16,
        vlan: None,
        df: true,
        tcp_flags: crate::flow::tcp_flags::RST,
        seq,
        ack: 0,
        payload: 0,
    }
}

#[inline]
fn account(counters: &mut WorkerCounters, e: &FlowEntry) {
    counters.flow_removed(e.rule_id, e.member_id);
    counters.flow_expired(e.rule_id);
}

impl Pipeline {
    /// RSTs queued by the packet path (sent by the next [`Pipeline::expire`] call).
    pub fn pending_resets(&self) -> usize {
        self.pending.len + self.v6.pending.len
    }

    /// Expires idle flows in at most `budget_buckets` buckets of the flow table (a full sweep
    /// takes `flow_buckets() / budget` calls), first sending the RSTs queued by the packet path.
    /// RST frames are built in an internal scratch buffer and handed to `emit(port, frame)`;
    /// the frame is only valid during the call. Returns the number of flows expired by the sweep.
    pub fn expire<F: FnMut(usize, &[u8])>(
        &mut self,
        view: &View<'_>,
        now: u32,
        budget_buckets: usize,
        mut emit: F,
    ) -> usize {
        self.prepare(view);
        let Pipeline {
            table,
            recent,
            counters,
            hops,
            pending,
            scratch,
            seed,
            snat,
            snat_pending,
            v6,
            ..
        } = self;
        for i in 0..pending.len.min(PENDING_RESETS) {
            let (k, e) = pending.items[i];
            counters.resets_sent += send_resets(view, hops, scratch, &k, &e, &mut emit);
        }
        pending.len = 0;
        for i in 0..snat_pending.len.min(PENDING_RESETS) {
            let (k, e) = snat_pending.items[i];
            counters.resets_sent += snat::send_resets(view, hops, scratch, &k, &e, &mut emit);
        }
        snat_pending.len = 0;
        if !snat.is_empty() {
            // The same share of the SNAT table per call as of the flow table: one full sweep of
            // each in the same number of calls.
            let budget = (budget_buckets * snat.capacity()).div_ceil(table.buckets().max(1));
            snat.expire_step(now, budget, |t, freed| {
                snat::account_released(counters, t, freed);
                counters.expired_flows += 1;
                if t.entry.wants_reset_on_expiry() {
                    let k = t.egress_key();
                    counters.resets_sent +=
                        snat::send_resets(view, hops, scratch, &k, &t.entry, &mut emit);
                }
            });
        }
        let seed = *seed;
        let expired = table.expire_step(now, budget_buckets, |k, e| {
            account(counters, e);
            if e.should_record_expiry() {
                recent.note_expired(k.hash_seeded(seed), now);
            }
            if e.wants_reset_on_expiry() {
                counters.resets_sent += send_resets(view, hops, scratch, k, e, &mut emit);
            }
        });
        // The same share of the IPv6 table: both tables swept in the same number of calls.
        let budget6 = budget_buckets
            .saturating_mul(v6.table.buckets())
            .div_ceil(table.buckets().max(1));
        // The same share of the IPv6 SNAT table per call as of the flow table.
        let budget_snat6 = budget_buckets
            .saturating_mul(v6.snat.capacity())
            .div_ceil(table.buckets().max(1));
        let mut x = Expiry6 {
            lane: v6,
            recent,
            counters,
            hops,
            scratch,
            seed,
        };
        pipeline6::snat::expire_snat6(&mut x, view, now, budget_snat6, &mut emit);
        expired + pipeline6::expire::expire(&mut x, view, now, budget6, &mut emit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_a_bounded_packet_buf() {
        let mut s = Scratch::new();
        s.reset();
        assert_eq!(s.len(), 0);
        s.space()[..4].copy_from_slice(&[1, 2, 3, 4]);
        s.set_len(4);
        assert_eq!(s.data(), &[1, 2, 3, 4]);
        assert!(s.prepend(SCRATCH_HEADROOM + 1).is_none());
        assert_eq!(s.prepend(2).map(|b| b.len()), Some(2));
        assert_eq!(s.len(), 6);
        assert!(s.trim_front(2));
        assert!(!s.trim_front(5));
        s.truncate(1);
        assert_eq!(s.data(), &[1]);
        assert!(s.append(SCRATCH_LEN).is_none());
        s.set_len(usize::MAX / 2);
        assert!(s.len() <= SCRATCH_LEN);
    }

    #[test]
    fn pending_is_bounded() {
        let mut p = Pending::new();
        for _ in 0..PENDING_RESETS + 5 {
            p.push(FlowKey::default(), FlowEntry::default());
        }
        assert_eq!(p.len, PENDING_RESETS);
    }
}
