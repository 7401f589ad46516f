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
use super::route::{client_hop, HopCache};
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
    scratch.reset();
    match tcp_rst(scratch.space(), l2, src, dst, seq, None) {
        Ok(n) => {
            scratch.set_len(n);
            emit(port, scratch.data());
            1
        }
        Err(_) => 0,
    }
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
    let (Some(to_client_seq), Some(to_backend_seq)) =
        (e.rst_to_client_seq(), e.rst_to_backend_seq())
    else {
        return 0;
    };
    let client = SocketAddrV4::new(Ipv4Addr::from(key.src_ip), key.src_port);
    let vip = SocketAddrV4::new(Ipv4Addr::from(key.dst_ip), key.dst_port);
    let mut sent = 0;
    // To the client, from VIP:frontend_port.
    if let Ok(hop) = client_hop(view, *client.ip()) {
        let l2 = L2Spec {
            src_mac: hop.src_mac,
            dst_mac: hop.dst_mac,
            vlan: None,
        };
        sent += emit_rst(scratch, &l2, vip, client, to_client_seq, hop.port, emit);
    }
    // To the backend, as the client's packets were forwarded.
    let snap = view.snapshot;
    let Some(mid) = member_of(snap, e, e.member_addr) else {
        return sent;
    };
    let Some(info) = snap.member(mid) else {
        return sent;
    };
    let Some(pool) = snap.pools.get(info.pool.index()) else {
        return sent;
    };
    let Ok(hop) = hops.member(view, mid) else {
        return sent;
    };
    scratch.reset();
    let l2 = L2Spec {
        src_mac: MacAddr::ZERO,
        dst_mac: MacAddr::ZERO,
        vlan: None,
    };
    let Ok(n) = tcp_rst(scratch.space(), &l2, client, vip, to_backend_seq, None) else {
        return sent;
    };
    scratch.set_len(n);
    let m = Meta {
        l3: 14,
        l4: 34,
        ip_len: (n - 14) as u16,
        vlan: None,
        proto: protocol::TCP,
        ttl: 64,
        df: true,
        tcp_flags: crate::flow::tcp_flags::RST,
        src: key.src_ip,
        dst: key.dst_ip,
        sport: key.src_port,
        dport: key.dst_port,
        seq: to_backend_seq,
        ack: 0,
        payload: 0,
    };
    let t = Target {
        addr: e.member_addr,
        port: e.backend_port,
        floating: e.flags.contains(FlowFlags::FLOATING),
        encap: pool.dsr_encapsulation,
        gue_port: pool.gue_port,
    };
    if let Verdict::Forward { port } = to_member(scratch, &m, &t, hop, view) {
        emit(port, scratch.data());
        sent += 1;
    }
    sent
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
        let mut x = Expiry6 {
            lane: v6,
            recent,
            counters,
            hops,
            scratch,
            seed,
        };
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
