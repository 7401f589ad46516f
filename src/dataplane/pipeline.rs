//! [`Pipeline`]: one worker's data path state (flow table, recently-expired record, counters,
//! next-hop cache, scratch) and the burst loop `process` (see the parent module for the
//! decisions it implements).

use super::admission::{admit, Candidate};
use super::classify::{classify_beyond_tcp, classify_tcp_fast, Early, Meta};
use super::counters::WorkerCounters;
use super::established::{self, LaneCx};
use super::expiry::{Pending, Scratch};
use super::icmp_error::{self, IcmpCx};
use super::pipeline6::{self, ipv6_capacity, Burst6, Lane6};
use super::reason::{DropReason, Exception};
use super::recheck::{self, SnapshotGen};
use super::rewrite::{flow_sums, flow_to_member, reply_to_client, to_member, Target};
use super::route::{client_hop, HopCache};
use super::snat;
use super::{PipelineConfig, Verdict, View};
use crate::balance::hash::flow_hash;
use crate::balance::snapshot::{MemberId, Rule, Snapshot};
use crate::config::Protocol;
use crate::flow::snat::SnatAddr;
use crate::flow::{
    tcp_flags, track, track_general, track_udp, Direction, FlowEntry, FlowEntry6, FlowFlags,
    FlowKey, FlowKey6, FlowState, FlowTable, HoldsKey, InsertResult, RecentlyExpired, SetTable,
    SlotId, SnatTable, TableEntry, TableKey, Translation, DEFAULT_TABLE_SEED,
};
use crate::wire::{protocol, PacketBuf, BURST};
use std::net::Ipv4Addr;

/// One worker's data path (see the module documentation).
pub struct Pipeline {
    pub(super) table: FlowTable,
    pub(super) recent: RecentlyExpired,
    pub(super) counters: WorkerCounters,
    pub(super) hops: HopCache,
    pub(super) pending: Pending,
    pub(super) scratch: Scratch,
    pub(super) seed: u64,
    /// Outbound SNAT translations (allocated when a snapshot first has outbound rules).
    pub(super) snat: SnatTable,
    /// RSTs owed by SNAT translations found expired on the packet path.
    pub(super) snat_pending: Pending,
    /// Translations the SNAT table is allocated with.
    snat_capacity: usize,
    /// This worker's index and the number of workers (its part of each SNAT block).
    pub(super) worker: (usize, usize),
    /// The IPv6 flow table and its pending RSTs (see [`pipeline6`]; boxed: the IPv4 state keeps
    /// its layout).
    pub(super) v6: Box<Lane6>,
    /// The IPv6 frames of the current burst (see [`pipeline6::lane`]; boxed, as `v6`).
    pub(super) b6: Box<Burst6>,
    /// The snapshot generation flows are stamped with once checked against it.
    snap_gen: SnapshotGen,
    /// The generation of the current burst's snapshot.
    pub(super) gen: u32,
    hashes: [u64; BURST],
    slots: [Option<SlotId>; BURST],
    metas: [Meta; BURST],
    idx: [u8; BURST],
}

/// One packet as its decision sees it: what classify found (with its flow key), the key's table
/// hash, and the time. Built once per packet in the burst loop and passed down by reference: one
/// packet description instead of the same arguments on every step (the burst lookup's slot goes
/// to [`handle`] alone, the only step that reads it).
pub(super) struct Pkt<'b> {
    /// The classification.
    pub(super) m: &'b Meta,
    /// The per-worker table hash of `m.key`.
    pub(super) hash: u64,
    /// Now, in seconds.
    pub(super) now: u32,
    /// The worker's snapshot generation (see [`recheck`]).
    pub(super) gen: u32,
}

/// The mutable state one packet's decision touches (disjoint borrows of the pipeline).
pub(super) struct Cx<'p> {
    table: &'p mut FlowTable,
    recent: &'p mut RecentlyExpired,
    pub(super) counters: &'p mut WorkerCounters,
    pub(super) hops: &'p mut HopCache,
    pending: &'p mut Pending,
    pub(super) snat: &'p mut SnatTable,
    pub(super) snat_pending: &'p mut Pending,
    /// This worker's index and the number of workers.
    pub(super) worker: (usize, usize),
    seed: u64,
    /// The keys inserted earlier in this burst, one bit each ([`inserted_bit`] of the table hash;
    /// 0: none). Any bit set: burst lookup results may be stale (a slot reused). A key's own bit
    /// clear: no insert of this burst stored it, so a key the burst lookup missed is still absent.
    inserted: u64,
}

/// The bit of [`Cx::inserted`] a key with table hash `hash` sets (its top 6 bits: the bucket
/// index takes the low ones).
#[inline(always)]
pub(super) fn inserted_bit(hash: u64) -> u64 {
    1 << (hash >> 58)
}

impl Pipeline {
    /// A pipeline with all its memory allocated (flow table, recently-expired record, scratch).
    pub fn new(cfg: &PipelineConfig) -> Self {
        Pipeline {
            table: FlowTable::new(cfg.flow_capacity),
            recent: RecentlyExpired::new(cfg.recent_capacity, 0),
            counters: WorkerCounters::new(),
            hops: HopCache::new(),
            pending: Pending::new(),
            scratch: Scratch::new(),
            seed: DEFAULT_TABLE_SEED,
            snat: SnatTable::new(0),
            snat_pending: Pending::new(),
            snat_capacity: snat_capacity(cfg.flow_capacity),
            worker: (0, 1),
            v6: Box::new(Lane6::new(
                cfg.flow_capacity6
                    .unwrap_or_else(|| ipv6_capacity(cfg.flow_capacity)),
            )),
            b6: Box::new(Burst6::new()),
            snap_gen: SnapshotGen::default(),
            gen: 0,
            hashes: [0; BURST],
            slots: [None; BURST],
            metas: [Meta::default(); BURST],
            idx: [0; BURST],
        }
    }

    /// Sets this worker's index among `workers` (default: the only one): it allocates SNAT
    /// ports from its own part of each member's block (docs/design.md §6.2).
    pub fn set_worker(&mut self, index: usize, workers: usize) {
        self.worker = (index, workers.max(1));
    }

    /// Live outbound SNAT translations of this worker (walks the table: for listings).
    pub fn snat_translations(&self) -> impl Iterator<Item = &Translation> {
        self.snat.iter()
    }

    /// Live IPv6 outbound SNAT translations of this worker (walks the table: for listings).
    pub fn snat_translations6(&self) -> impl Iterator<Item = &Translation<u128>> {
        self.v6.snat.iter()
    }

    /// This worker's counters.
    pub fn counters(&self) -> &WorkerCounters {
        &self.counters
    }

    /// Every flow entry of this worker (walks the whole table: for `vipmux flows`, not per packet).
    pub fn flows(&self) -> impl Iterator<Item = (&FlowKey, &FlowEntry)> {
        self.table.iter()
    }

    /// Every IPv6 flow entry of this worker (walks the whole table, as [`Pipeline::flows`]).
    pub fn flows6(&self) -> impl Iterator<Item = (&FlowKey6, &FlowEntry6)> {
        self.v6.table.iter()
    }

    /// Number of flow entries stored, both families (live or not yet swept).
    pub fn flow_count(&self) -> usize {
        self.table.len() + self.v6.table.len()
    }

    /// Bytes held by the flow tables (both families), the recently-expired record and SNAT.
    pub fn memory_bytes(&self) -> usize {
        self.table.memory_bytes()
            + self.v6.table.memory_bytes()
            + self.recent.memory_bytes()
            + self.snat.memory_bytes()
            + self.v6.snat.memory_bytes()
    }

    /// Buckets of the flow table (a full expiry sweep is `buckets / budget` calls of `expire`).
    pub fn flow_buckets(&self) -> usize {
        self.table.buckets()
    }

    /// The worker reports what `tx_burst` did with the forwarded frames: `failed` count as
    /// `tx_full` and are taken back from `tx`.
    pub fn note_tx(&mut self, failed: usize) {
        self.counters.tx = self.counters.tx.saturating_sub(failed as u64);
        self.counters.drops[DropReason::TxFull.index()] += failed as u64;
    }

    /// Grows counters, refreshes the next-hop cache and sets the recently-expired window for
    /// `view`, and prepares SNAT when the snapshot is new to this pipeline (between bursts).
    pub(super) fn prepare(&mut self, view: &View<'_>) {
        let s = view.snapshot;
        self.counters.ensure(s.rules.len(), s.members.len());
        self.counters.ensure_frontends(s.frontends.len());
        self.hops.refresh(view);
        // The record's window follows the configuration (one store; a reload applies at once).
        self.recent.set_window(s.longest_idle_timeout_secs);
        // Generations start at 1, so the first snapshot is new too.
        let gen = self.snap_gen.refresh(s);
        if gen != self.gen {
            self.gen = gen;
            if !s.outbound.is_empty() {
                self.prepare_snat(s);
            }
        }
    }

    /// Allocates the SNAT table on the first snapshot with outbound rules and a port space for
    /// each SNAT frontend IP not seen before (between bursts).
    fn prepare_snat(&mut self, s: &Snapshot) {
        for o in &s.outbound {
            for fa in &o.frontends {
                match *fa {
                    std::net::IpAddr::V4(a) => {
                        prepare_frontend(&mut self.snat, self.snat_capacity, u32::from(a))
                    }
                    std::net::IpAddr::V6(a) => {
                        // IPv6 translations: a quarter of the IPv4 number, as for flows.
                        let n = (self.snat_capacity / 4).max(256);
                        prepare_frontend(&mut self.v6.snat, n, u128::from(a))
                    }
                }
            }
        }
    }

    /// Processes a burst: one verdict per frame in `verdicts[i]`, frames rewritten in place
    /// (encapsulation prepends into the headroom). Handles `min(pkts.len(), verdicts.len())`
    /// frames, in chunks of [`BURST`].
    pub fn process<B: PacketBuf>(
        &mut self,
        view: &View<'_>,
        in_port: usize,
        pkts: &mut [B],
        verdicts: &mut [Verdict],
        now: u32,
    ) {
        let _ = in_port; // all ports are one routing domain; kept for per-port policy later
        let n = pkts.len().min(verdicts.len());
        self.prepare(view);
        let mut start = 0;
        while start < n {
            let end = (start + BURST).min(n);
            let (pkts, verdicts) = (&mut pkts[start..end], &mut verdicts[start..end]);
            self.burst(view, pkts, verdicts, now);
            if self.b6.marked != 0 {
                // The burst's IPv6 frames take their own lane (docs/design.md §3.11).
                pipeline6::lane(self, view, pkts, verdicts, now);
            }
            start = end;
        }
    }

    /// Decides the burst's IPv4 (and ARP, and other) frames; marks its IPv6 frames in `b6` for
    /// the IPv6 lane (their verdicts not yet set).
    #[inline(always)]
    fn burst<B: PacketBuf>(
        &mut self,
        view: &View<'_>,
        pkts: &mut [B],
        verdicts: &mut [Verdict],
        now: u32,
    ) {
        let n = pkts.len();
        let Pipeline {
            table,
            recent,
            counters,
            hops,
            pending,
            seed,
            snat,
            snat_pending,
            worker,
            gen,
            hashes,
            slots,
            metas,
            idx,
            b6,
            ..
        } = self;
        counters.rx += n as u64;
        // 1. classify, hash and prefetch each packet's home slot at once: the first lookups
        // then find their lines on the way or arrived (at 1 M flows, each one from memory)
        let mut c = 0;
        for (i, p) in pkts.iter_mut().enumerate() {
            let m = &mut metas[c];
            let hashed = match classify_tcp_fast(p.data(), view, m) {
                Some(key) => Ok(key.hash_seeded(*seed)),
                None => classify_beyond_tcp(p.data(), view, m).map(|key| key.hash_seeded(*seed)),
            };
            match hashed {
                Ok(h) => {
                    table.prefetch(h);
                    hashes[c] = h;
                    idx[c] = i as u8;
                    c += 1;
                }
                Err(Early::Verdict(mut v)) => {
                    if let Verdict::ToSlowPath(Exception::IcmpError | Exception::IcmpToFrontend) = v
                    {
                        // Errors about flows are delivered here (no insert: lookups stay valid).
                        let mut icx = IcmpCx {
                            table,
                            snat,
                            counters,
                            hops,
                            seed: *seed,
                        };
                        v = icmp_error::handle(&mut icx, view, p, now).unwrap_or(v);
                    }
                    count_verdict(counters, v);
                    verdicts[i] = v;
                }
                Err(Early::Ipv6) => b6.marked |= 1u64.wrapping_shl(i as u32),
            }
        }
        // 2. look up the whole burst
        let (metas, hashes, slots) = (&metas[..c], &hashes[..c], &mut slots[..c]);
        look_up_hashed(table, recent, metas, hashes, slots);
        // 3. the established lane, in arrival order, up to the first packet it declines
        let gen = *gen;
        let mut lcx = LaneCx {
            table,
            counters,
            hops,
        };
        let work = Classified {
            idx: &idx[..c],
            metas,
            hashes,
            slots,
        };
        let done = established::run(&mut lcx, view, pkts, verdicts, work, now, gen);
        // 4. decide and rewrite the rest
        let mut cx = Cx {
            table,
            recent,
            counters,
            hops,
            pending,
            snat,
            snat_pending,
            worker: *worker,
            seed: *seed,
            inserted: 0,
        };
        decide_rest(&mut cx, view, pkts, verdicts, work.after(done), now, gen);
    }
}

/// The burst's classified packets, as the established lane and the general decision read them:
/// the `k`-th is frame `idx[k]` of the burst, classified as `metas[k]` (with its flow key), the
/// key's table hash `hashes[k]` and what the burst lookup found, `slots[k]` (`None`: a miss).
/// `M` is the family's classification (IPv4's [`Meta`], IPv6's `Meta6`).
#[derive(Clone, Copy)]
pub(super) struct Classified<'b, M = Meta> {
    /// Each packet's index in the burst.
    pub(super) idx: &'b [u8],
    /// Each packet's classification.
    pub(super) metas: &'b [M],
    /// Each key's table hash.
    pub(super) hashes: &'b [u64],
    /// Each key's slot, as the burst lookup found it.
    pub(super) slots: &'b [Option<SlotId>],
}

impl<'b, M> Classified<'b, M> {
    /// The packets from the `k`-th on (none when `k` is past the end).
    #[inline(always)]
    pub(super) fn after(self, k: usize) -> Classified<'b, M> {
        Classified {
            idx: self.idx.get(k..).unwrap_or_default(),
            metas: self.metas.get(k..).unwrap_or_default(),
            hashes: self.hashes.get(k..).unwrap_or_default(),
            slots: self.slots.get(k..).unwrap_or_default(),
        }
    }

    /// Each packet in order: `(((index in the burst, meta), hash), slot)`.
    #[inline(always)]
    pub(super) fn iter(
        self,
    ) -> impl Iterator<Item = (((&'b u8, &'b M), &'b u64), &'b Option<SlotId>)> {
        self.idx
            .iter()
            .zip(self.metas)
            .zip(self.hashes)
            .zip(self.slots)
    }
}

/// Step 4 of the burst: decides and rewrites the packets the lane left (`rest`), in order, their
/// verdicts set in `verdicts` (indexed as `pkts`).
#[inline(always)]
fn decide_rest<B: PacketBuf>(
    cx: &mut Cx<'_>,
    view: &View<'_>,
    pkts: &mut [B],
    verdicts: &mut [Verdict],
    rest: Classified<'_>,
    now: u32,
    gen: u32,
) {
    for (((&i, m), &hash), &slot) in rest.iter() {
        let i = usize::from(i);
        if let (Some(p), Some(out)) = (pkts.get_mut(i), verdicts.get_mut(i)) {
            let pkt = Pkt { m, hash, now, gen };
            let v = handle(cx, view, p, &pkt, slot);
            store_verdict(cx.counters, out, v);
        }
    }
}

/// Looks up `keys` (or the keys they hold), already hashed into `hashes` with their home slots
/// prefetched, as a burst into `slots`; for each miss, prefetches its recently-expired bucket (a
/// miss reads the record: a SYN forgets its key there, another packet checks it), so the cache
/// misses overlap (a burst of established flows has no miss and skips that loop).
#[inline(always)]
pub(super) fn look_up_hashed<K: TableKey, E: TableEntry, H: HoldsKey<K>>(
    table: &SetTable<K, E>,
    recent: &RecentlyExpired,
    keys: &[H],
    hashes: &[u64],
    slots: &mut [Option<SlotId>],
) {
    let hits = table.lookup_burst(keys, hashes, slots);
    if hits < keys.len() {
        for (&h, s) in hashes.iter().zip(slots.iter()) {
            if s.is_none() {
                recent.prefetch(h);
            }
        }
    }
}

/// `Verdict::Forward { port }` for the burst loop's store, with `port` passed through a mask
/// that never changes a port index (there are a handful of ports, far below 2^32): without it
/// the compiler recognises the verdict `port` was matched from and copies that one, every field
/// of every variant through a temporary, instead of storing the tag and the port.
#[inline(always)]
fn forward_to(port: usize) -> Verdict {
    Verdict::Forward {
        port: port & 0xffff_ffff,
    }
}

/// Stores the verdict `v` of a burst loop's packet in `out` and counts it. A forward (the common
/// verdict) is counted and stored from its port alone: no copy of the whole verdict through a
/// temporary, no reload of what was just stored (a store-forwarding stall per packet).
#[inline(always)]
pub(super) fn store_verdict(counters: &mut WorkerCounters, out: &mut Verdict, v: Verdict) {
    match v {
        Verdict::Forward { port } => {
            counters.tx += 1;
            *out = forward_to(port);
        }
        v => store_other(counters, out, v),
    }
}

/// Stores and counts a verdict of the burst loop other than a forward. Out of line: inline,
/// the compiler merged the forward's store into this whole-verdict copy (every field of every
/// variant moved through a temporary, per forwarded packet too).
#[inline(never)]
fn store_other(counters: &mut WorkerCounters, out: &mut Verdict, v: Verdict) {
    *out = v;
    count_verdict(counters, v);
}

/// Counts one verdict (`tx` for forwards, the drop reason or exception otherwise).
#[inline(always)]
pub(super) fn count_verdict(counters: &mut WorkerCounters, v: Verdict) {
    match v {
        Verdict::Forward { .. } => counters.tx += 1,
        Verdict::Drop(r) => counters.count_drop(r),
        Verdict::ToSlowPath(e) => count_exception(counters, e),
    }
}

/// Counts an exception (and the drop reason some of them also count under).
#[cold]
#[inline(never)]
fn count_exception(counters: &mut WorkerCounters, e: Exception) {
    counters.count_exception(e);
    match e {
        Exception::Fragment => counters.count_drop(DropReason::Fragment),
        Exception::TtlExceeded => counters.count_drop(DropReason::Ttl),
        Exception::TooBig { .. } => counters.count_drop(DropReason::TooBig),
        _ => {}
    }
}

/// Does `r` match a packet to `m.key.dst_ip:m.key.dst_port` with `m.key.proto`?
#[inline(always)]
fn rule_matches(r: &Rule, m: &Meta) -> bool {
    if r.frontend_addr4() != m.key.dst_ip {
        return false;
    }
    if r.ha_ports {
        return true;
    }
    let proto_ok = match r.protocol {
        Protocol::Tcp => m.key.proto == protocol::TCP,
        Protocol::Udp => m.key.proto == protocol::UDP,
        Protocol::All => m.key.proto == protocol::TCP || m.key.proto == protocol::UDP,
    };
    proto_ok && m.key.dst_port >= r.frontend_port && m.key.dst_port <= r.frontend_port_end
}

#[inline(always)]
pub(super) fn is_syn(m: &Meta) -> bool {
    m.key.proto == protocol::TCP
        && m.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
}

#[inline(always)]
fn dist_hash(view: &View<'_>, rule: &Rule, m: &Meta) -> u64 {
    flow_hash(
        view.snapshot.hash_seed,
        rule.load_distribution,
        m.key.src_ip,
        m.key.dst_ip,
        m.key.proto,
        m.key.src_port,
        m.key.dst_port,
    )
}

#[inline(always)]
pub(super) fn track_packet(e: &mut FlowEntry, m: &Meta, dir: Direction, now: u32) {
    if m.key.proto == protocol::TCP {
        track(e, dir, m.tcp_flags, m.seq, m.ack, m.payload, now);
    } else {
        track_other(e, dir, now);
    }
}

/// [`track_packet`] for a new flow's first packet (TCP: no plain-ACK fast path to try).
#[inline(always)]
pub(super) fn track_first(e: &mut FlowEntry, m: &Meta, now: u32) {
    let dir = Direction::ClientToServer;
    if m.key.proto == protocol::TCP {
        track_general(e, dir, m.tcp_flags, m.seq, m.ack, m.payload, now);
    } else {
        track_other(e, dir, now);
    }
}

/// [`track_packet`] for UDP and protocols without ports.
#[inline(always)]
fn track_other(e: &mut FlowEntry, dir: Direction, now: u32) {
    if dir == Direction::ClientToServer {
        track_udp(e, now);
    } else {
        e.touch(now);
    }
}

/// One packet's decision and rewrite; `slot` is what the burst lookup found for its key.
#[inline(always)]
fn handle<B: PacketBuf>(
    cx: &mut Cx<'_>,
    view: &View<'_>,
    buf: &mut B,
    pkt: &Pkt<'_>,
    slot: Option<SlotId>,
) -> Verdict {
    let Pkt { m, hash, now, .. } = *pkt;
    let key = &m.key;
    let mut expired = None;
    if let Some(id) = slot {
        // Without an insert since the burst lookup, the slot still holds `key` unless emptied.
        let e = if cx.inserted != 0 {
            cx.table.slot_stamped(id, key)
        } else {
            cx.table.occupied_stamped(id)
        };
        if let Some((e, stamp)) = e {
            if !e.is_expired(now) {
                return known(cx.counters, cx.hops, view, buf, pkt, e, stamp);
            }
            expired = Some(*e);
        }
    }
    if expired.is_none() && cx.inserted & inserted_bit(hash) != 0 {
        // An insert earlier in this burst may have stored this key (the same key sets the same
        // bit; a key whose bit is clear was not inserted since the burst lookup: no re-check).
        if let Some(e) = cx.table.lookup(key, hash) {
            if !e.is_expired(now) {
                // Not worth a stamp: a key inserted in this burst is checked again.
                return known(cx.counters, cx.hops, view, buf, pkt, e, &mut 0);
            }
            expired = Some(*e);
        }
    }
    if let Some(old) = expired {
        // Expired before the sweep got there: remove, remember, queue its RSTs.
        if cx.table.remove(key, hash).is_some() {
            cx.counters.flow_removed(old.rule_id, old.member_id);
            cx.counters.flow_expired(old.rule_id);
        }
        if old.should_record_expiry() {
            cx.recent.note_expired(hash, now);
        }
        if old.wants_reset_on_expiry() {
            cx.pending.push(*key, old);
        }
    }
    // A copy made here, on the miss path: `miss` is out of line and reads the packet through a
    // reference, which, given `pkt` itself, would make every packet store its description to
    // memory before the known-flow test.
    miss(cx, view, buf, &Pkt { ..*pkt })
}

/// A packet of a known, live flow. `stamp` is its slot's [`recheck`] stamp: a flow already
/// checked against this snapshot keeps its rule and member without asking the snapshot again.
#[inline(always)]
fn known<B: PacketBuf>(
    counters: &mut WorkerCounters,
    hops: &mut HopCache,
    view: &View<'_>,
    buf: &mut B,
    pkt: &Pkt<'_>,
    e: &mut FlowEntry,
    stamp: &mut u32,
) -> Verdict {
    let Pkt { m, now, gen, .. } = *pkt;
    let snap = view.snapshot;
    let tcp = m.key.proto == protocol::TCP;
    // Read once: the stores below (entry, counters) would make the compiler read the flags again.
    let syn = is_syn(m);
    // A SYN on a closed (or closing) TCP entry is a new connection reusing the 5-tuple: it keeps
    // the member only while that member is eligible, like any new flow.
    let kept = tcp && !(syn && matches!(e.state, FlowState::Closing | FlowState::Closed));
    let (rule, mid) = match snap.rules.get(e.rule_id as usize) {
        Some(r) if recheck::is_current(*stamp, gen, kept) => (r, MemberId(e.member_id)),
        _ => match check(counters, view, m, e, kept, stamp, gen) {
            Ok(x) => x,
            Err(v) => return v,
        },
    };
    let rid = rule.id;
    track_packet(e, m, Direction::ClientToServer, now);
    count_known(counters, rid.index(), mid, m.ip_len);
    if syn {
        // A SYN on a known flow (a retransmission, or a new connection on a closed 5-tuple).
        count_known_syn(counters, rid.index(), mid.0);
    }
    // Checked under this snapshot (here or by `check`): the flow's rewrite constants hold.
    match hops.member(view, mid) {
        Ok(hop) => flow_to_member(buf, m, e, rule, hop, view),
        Err(r) => Verdict::Drop(r),
    }
}

/// Counts a known flow's packet of `ip_len` bytes (IPv4's `u16`, IPv6's `u32`) forwarded to member
/// `mid` for its rule (index `rule`) and member (its SYNs are counted apart, by
/// [`count_known_syn`]).
#[inline(always)]
pub(super) fn count_known<L: Into<u64>>(
    counters: &mut WorkerCounters,
    rule: usize,
    mid: MemberId,
    ip_len: L,
) {
    if let Some(rc) = counters.rules.get_mut(rule) {
        rc.packets += 1;
        rc.bytes += ip_len.into();
    }
    counters.member_forwarded(mid.0, false);
}

/// Counts a known flow's SYN for its rule and member (out of line: rare; the packet itself is
/// counted by [`known`]).
#[cold]
#[inline(never)]
fn count_known_syn(counters: &mut WorkerCounters, rule: usize, member: u32) {
    if let Some(rc) = counters.rules.get_mut(rule) {
        rc.syns += 1;
    }
    if let Some(mc) = counters.members.get_mut(member as usize) {
        mc.syns += 1;
    }
}

/// Where a known flow's packets go: its member's address and port, delivered as `rule` says.
#[inline(always)]
pub(super) fn flow_target(e: &FlowEntry, rule: &Rule) -> Target {
    Target {
        addr: e.member_addr,
        port: e.backend_port,
        floating: e.flags.contains(FlowFlags::FLOATING),
        encap: rule.dsr_encapsulation,
        gue_port: rule.gue_port,
        sums: None,
    }
}

/// The rule and member of a known flow, found again in the snapshot: the rule it matched if it
/// still matches, else the rule the packet matches now; its member if still in the rule's pool
/// and (unless `kept`) eligible, else a member chosen anew. Stamps the flow when the answer is
/// its stored rule and member id (see [`recheck`]), and sets its rewrite constants for that rule
/// and member.
#[inline(never)]
fn check<'v>(
    counters: &mut WorkerCounters,
    view: &View<'v>,
    m: &Meta,
    e: &mut FlowEntry,
    kept: bool,
    stamp: &mut u32,
    gen: u32,
) -> Result<(&'v Rule, MemberId), Verdict> {
    let snap = view.snapshot;
    let rule = match snap.rules.get(e.rule_id as usize) {
        Some(r) if rule_matches(r, m) => r,
        _ => match snap.lookup(m.key.dst_ip, m.key.proto, m.key.dst_port) {
            Some(r) => {
                e.rule_id = r.id.0;
                r
            }
            None => return Err(Verdict::Drop(DropReason::NoRule)),
        },
    };
    let rid = rule.id;
    let mid = match snap.members.get(e.member_id as usize) {
        Some(mi) if mi.addr4() == e.member_addr && mi.pool == rule.pool => {
            Some(MemberId(e.member_id))
        }
        _ => snap.rule_member_by_addr(rid, e.member_addr),
    };
    let eligible = match mid {
        Some(x) if !kept => snap.is_eligible(rid, x),
        _ => false,
    };
    let mid = match mid {
        Some(x) if kept || eligible => x,
        _ => {
            // Member gone (reload), a non-TCP flow whose member is no longer eligible, or a new
            // connection on a closed 5-tuple whose member is no longer eligible: move.
            let h = dist_hash(view, rule, m);
            let Some(n) = snap.choose(rid, m.key.dst_port, h) else {
                return Err(Verdict::Drop(DropReason::NoHealthyBackend));
            };
            let Some(info) = snap.member(n) else {
                return Err(Verdict::Drop(DropReason::NoRoute));
            };
            counters.flow_moved(e.member_id, n.0);
            e.member_id = n.0;
            e.member_addr = info.addr4();
            e.backend_port = rule.backend_port_for(m.key.dst_port);
            n
        }
    };
    if mid.0 == e.member_id {
        *stamp = recheck::stamp(gen, eligible);
    }
    e.sums = flow_sums(view, m, &flow_target(e, rule));
    Ok((rule, mid))
}

/// A packet without a (live) flow entry.
#[inline(never)]
fn miss<B: PacketBuf>(cx: &mut Cx<'_>, view: &View<'_>, buf: &mut B, pkt: &Pkt<'_>) -> Verdict {
    let Pkt { m, hash, now, gen } = *pkt;
    let key = &m.key;
    let snap = view.snapshot;
    let Some(rule) = snap.lookup(m.key.dst_ip, m.key.proto, m.key.dst_port) else {
        return not_inbound(cx, view, buf, pkt);
    };
    let rid = rule.id;
    let syn = is_syn(m);
    let c = Candidate {
        tcp: m.key.proto == protocol::TCP,
        syn,
        dport: m.key.dst_port,
        ip_len: u32::from(m.ip_len),
        hash,
        now,
    };
    let a = match admit(cx.counters, cx.recent, snap, rule, &c, || {
        dist_hash(view, rule, m)
    }) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let mid = a.mid;
    let mut e = FlowEntry::new(
        rid.0,
        a.info.addr4(),
        a.backend_port,
        mid.0,
        a.flags,
        a.idle_secs,
        now,
    );
    track_first(&mut e, m, now);
    let mut t = Target {
        addr: e.member_addr,
        port: e.backend_port,
        floating: rule.floating_ip,
        encap: rule.dsr_encapsulation,
        gue_port: rule.gue_port,
        sums: None,
    };
    // The flow's rewrite constants, once: NAT's rewrite of this packet then takes the common
    // shape's constant offsets, and the entry keeps them for its next packets.
    e.sums = flow_sums(view, m, &t);
    t.sums = Some(e.sums);
    let c = &mut *cx.counters;
    // `handle` comes here only once the key is known not to be stored (the burst lookup or a
    // lookup since the last insert missed it, or its expired entry was just removed).
    // The new flow is checked: its rule and member come from this snapshot, and the member was
    // eligible. Stamped so, its next packet needs no check (`recheck`).
    let checked = recheck::stamp(gen, true);
    match cx.table.insert_absent_stamped(*key, hash, e, now, checked) {
        InsertResult::Inserted => c.flow_created(rid.0, mid.0),
        InsertResult::Replaced(old) | InsertResult::EvictedUntrusted(_, old) => {
            c.flow_removed(old.rule_id, old.member_id);
            c.flow_created(rid.0, mid.0);
        }
        InsertResult::EvictedExpired(k, old) => {
            c.flow_removed(old.rule_id, old.member_id);
            c.flow_expired(old.rule_id);
            let kh = k.hash_seeded(cx.seed);
            if old.should_record_expiry() {
                cx.recent.note_expired(kh, now);
            }
            if old.wants_reset_on_expiry() {
                cx.pending.push(k, old);
            }
            c.flow_created(rid.0, mid.0);
        }
        InsertResult::Full => {
            c.count_drop(DropReason::FlowTableFull);
            c.untracked += 1;
        }
    }
    cx.inserted |= inserted_bit(hash);
    c.member_forwarded(mid.0, syn);
    match cx.hops.member(view, mid) {
        Ok(hop) => to_member(buf, m, &t, hop, view),
        Err(r) => Verdict::Drop(r),
    }
}

/// Not addressed to a rule: a NAT reply from a member, or a drop.
#[inline(never)]
fn not_inbound<B: PacketBuf>(
    cx: &mut Cx<'_>,
    view: &View<'_>,
    buf: &mut B,
    pkt: &Pkt<'_>,
) -> Verdict {
    let Pkt { m, now, .. } = *pkt;
    let snap = view.snapshot;
    if let Some(rn) = snap.reverse_nat(m.key.src_ip, m.key.proto, m.key.src_port) {
        let vip = u32::from(rn.vip);
        // Refresh the flow if this worker holds it (replies may arrive on any worker).
        let okey = FlowKey::new(m.key.dst_ip, vip, m.key.dst_port, rn.vip_port, m.key.proto);
        if let Some(e) = cx.table.lookup(&okey, okey.hash_seeded(cx.seed)) {
            if !e.is_expired(now) {
                track_packet(e, m, Direction::ServerToClient, now);
            }
        }
        if let Some(rc) = cx.counters.rules.get_mut(rn.rule.index()) {
            rc.reply_packets += 1;
            rc.reply_bytes += u64::from(m.ip_len);
        }
        cx.counters.member_replied(rn.member.0);
        return match client_hop(view, Ipv4Addr::from(m.key.dst_ip)) {
            Ok(hop) => reply_to_client(buf, m, vip, rn.vip_port, &hop, view),
            Err(r) => Verdict::Drop(r),
        };
    }
    if snap.is_frontend(m.key.dst_ip) {
        return match snat::reply(cx, view, buf, pkt) {
            Some(v) => v,
            None => Verdict::Drop(DropReason::NoRule),
        };
    }
    if let Some((rule, blocks)) = snap.outbound_blocks(m.key.src_ip, m.key.proto) {
        return snat::egress(cx, view, buf, pkt, rule, blocks);
    }
    if !snap.outbound.is_empty() && snap.member_by_addr(m.key.src_ip).is_some() {
        return Verdict::Drop(DropReason::NoOutboundRule);
    }
    Verdict::Drop(DropReason::NoRule)
}

/// Allocates `snat` for `capacity` translations if it has none, and gives frontend IP `a` its
/// port space (between bursts).
fn prepare_frontend<A: SnatAddr>(snat: &mut SnatTable<A>, capacity: usize, a: A) {
    if snat.capacity() == 0 {
        *snat = SnatTable::new(capacity);
    }
    if !snat.has_frontend(a) {
        snat.add_frontend(a);
    }
}

/// Translations a worker's SNAT table holds for a flow table of `flow_capacity`: a quarter of
/// it, at least 256 and at most 262,144.
fn snat_capacity(flow_capacity: usize) -> usize {
    (flow_capacity / 4).clamp(256, 1 << 18)
}
