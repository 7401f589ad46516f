//! The per-worker flow table: fixed capacity, set-associative, lossy, allocation-free after `new`.
//!
//! Layout (after VPP's `lbhash`, widened): the table is an array of buckets, one per hash value's
//! low bits. A bucket is 1088 bytes, 64-byte aligned: one cache line of 16 × u32 signatures (the
//! high 32 bits of the key's hash; 0 = empty slot), then 16 slots of one cache line each (16-byte
//! key + 40-byte entry + 4-byte stamp + 2-byte tag + 2-byte away mask). A lookup reads the key's
//! home slot, and for a key not there the one slot the home slot names (below): one cache line per
//! hit at home, two away. Inserts, the eviction scan and the sweep read the signature line (compared
//! with SSE2: four 128-bit compares and a movemask) for the free or occupied ways. Sixteen ways
//! keep bucket overflow rare up to ~70 % load (Poisson tail), where VPP's 4-way buckets lose
//! inserts much earlier. Memory: 68 bytes per slot (64 + 4 of signature). Packed 48-byte slots (52
//! bytes per slot) straddled two lines in every other slot: at a million flows the lookups are
//! bound by how many lines the core can have in flight, so the padding buys fewer lines per packet
//! with 31 % more memory.
//!
//! Home way: four more bits of the hash name one way of the bucket, the key's home, which an
//! insert takes when it is free (else the first free way); each slot repeats the low half of its
//! signature in its padding (its tag, 0 when empty). Each slot also names, in a 16-bit mask
//! (`away`), the other ways holding keys whose home is its way, whatever it holds itself; the
//! bucket's writes (`put`, `free`) keep it exact. A burst lookup first reads each key's home slot
//! alone: a key found there costs that one line; a key not there is in a way its home slot's mask
//! names (one more slot line) or absent, so lookups read no signature line. A table filled to half
//! its slots from empty holds about three quarters of its keys at home (fewer after churn). The
//! slot-id accessors ([`SetTable::occupied_stamped`] and the like) test the tag, in the slot's own
//! line, not the signature line.
//!
//! The table is generic over its key and entry ([`SetTable`]): [`FlowTable`] holds IPv4 flows in
//! exactly the layout above; [`FlowTable6`] holds IPv6 flows ([`FlowKey6`] 48 bytes,
//! [`FlowEntry6`] 64 bytes), whose 116-byte slots are padded to two cache lines: 2112-byte buckets,
//! 132 bytes of memory per slot, two lines per hit at home and four away (each slot's two; the
//! burst lookup prefetches both of a slot's lines, since the adjacent-line prefetcher does not
//! reliably bring the second). The slot's first line holds the key and the member address (a hit
//! only reads it), the second the flow's record and the stamp (the one line a hit writes, and the
//! only one the sweep and the eviction scan read). A separate instantiation keeps the IPv4
//! table's memory and code exactly what they were.
//!
//! Full bucket (Ananta's trusted/untrusted split): an insert takes an empty slot; else evicts an
//! expired entry; else the least recently seen *untrusted* entry (half-open TCP, single-packet
//! UDP, reset flows); never a trusted (established or closing) one. It chooses first among the
//! four ways of the key's eviction class (those agreeing with its home way in the low two bits)
//! and only when all four are trusted and live among all sixteen, so an insert into a full bucket
//! (every SYN of a long flood) reads four slots, not sixteen: the victim is the oldest untrusted
//! entry of the class. If none qualifies it returns [`InsertResult::Full`] and the data path
//! forwards the packet by hash, untracked.
//!
//! Expiry is amortised: [`FlowTable::expire_step`] walks a bounded number of buckets from a cursor.
//! Between sweeps an expired entry can still be found by `lookup`: check
//! [`TableEntry::is_expired`] on a hit.
//!
//! Why not a general-purpose hash map (hashbrown + aHash): once the table is much larger than
//! the caches, which is the case that matters, this layout with its burst prefetch looks up
//! faster (the bench `flow_table` compares both), it uses less memory per flow, and it gives
//! what a growing map does not: a fixed footprint with lossy, policy-driven eviction instead
//! of growth, and a resumable expiry cursor. When everything fits in cache a swiss table is
//! faster; that case is not the one to optimise for.
//!
//! Prefetching (VPP style): the caller prefetches every key's home slot before any bucket is read,
//! with [`FlowTable::prefetch`] per key as it builds the burst (the pipeline's IPv4 burst and
//! IPv6 lane, while they classify);
//! [`FlowTable::lookup_burst`] then checks each home slot (by now in flight or cached), prefetches
//! for each key not there the first slot its home slot's mask names (for a key with none, absent,
//! the signature line its insert reads), then for the absent keys prefetches the free slot an insert
//! would take (in a full bucket, the slots of its eviction class), before it compares any of the
//! named slots' keys, so the misses of a burst overlap instead of queueing at each step. The hint
//! itself is [`crate::platform::prefetch()`] (`prefetcht0`, the instruction of DPDK's
//! `rte_prefetch0`):
//! `_mm_prefetch` is an `unsafe` intrinsic and the crate allows `unsafe` only in the `platform` and
//! `dpdk` rooms, so this module uses three small safe helpers of `platform`: that prefetch,
//! [`crate::platform::simd::eq_mask16`] (the SSE2 signature compare) and
//! [`crate::platform::hugepage_hint::advise_huge_pages`] (the table asks for transparent huge pages
//! before its memory is first written, so random lookups in a large table miss the TLB less).

use super::entry::FlowEntry;
use super::entry6::FlowEntry6;
use super::key::{FlowKey, HoldsKey, TableKey};
use super::key6::FlowKey6;
use crate::platform::hugepage_hint::advise_huge_pages;
use crate::platform::prefetch::{prefetch, prefetch_at};
use crate::platform::simd::eq_mask16;
use crate::wire::BURST;

/// Slots per bucket.
pub const WAYS: usize = 16;
/// Largest number of slots a table can have (slot ids are u32).
pub const MAX_SLOTS: usize = 1 << 31;

/// What the table needs of an entry: an empty value to fill memory with, and the expiry and
/// trust the eviction policy reads.
pub trait TableEntry: Copy {
    /// The value free slots hold (never read: a zero signature marks a slot free).
    const EMPTY: Self;
    /// True once the entry's timeout has passed at `now`.
    fn is_expired(&self, now: u32) -> bool;
    /// Trusted entries are never evicted by an insert.
    fn is_trusted(&self) -> bool;
    /// Time of the entry's last packet (the oldest untrusted entry is evicted first).
    fn last_seen(&self) -> u32;
    /// False only when the entry is surely live at `now` (a cheap, branch-free test the eviction
    /// scan asks of every slot; [`is_expired`](Self::is_expired) decides the rest).
    #[inline(always)]
    fn may_be_expired(&self, _now: u32) -> bool {
        true
    }
}

impl TableEntry for FlowEntry {
    const EMPTY: Self = FlowEntry {
        rule_id: 0,
        member_addr: 0,
        member_id: 0,
        client_next_seq: 0,
        client_ack: 0,
        last_seen: 0,
        idle_timeout: 0,
        backend_port: 0,
        flags: super::entry::FlowFlags::NONE,
        state: super::entry::FlowState::New,
        sums: super::entry::FlowSums {
            ip_delta: 0,
            l4_delta: 0,
            gue_sport: 0,
            gue_dport: 0,
        },
    };
    #[inline(always)]
    fn is_expired(&self, now: u32) -> bool {
        FlowEntry::is_expired(self, now)
    }
    #[inline(always)]
    fn is_trusted(&self) -> bool {
        FlowEntry::is_trusted(self)
    }
    #[inline(always)]
    fn last_seen(&self) -> u32 {
        self.last_seen
    }
    #[inline(always)]
    fn may_be_expired(&self, now: u32) -> bool {
        FlowEntry::may_be_expired(self, now)
    }
}

/// A key and its entry, aligned to cache lines so that no slot straddles more lines than it
/// needs: IPv4 60 bytes in one line, IPv6 116 bytes in two.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot<K, E> {
    key: K,
    entry: E,
    /// The caller's word about this entry (see [`SetTable::occupied_stamped`]); 0 whenever the
    /// slot gets a new entry, unless the insert gives one. It lives in the slot's padding: no
    /// slot grows.
    stamp: u32,
    /// The low 16 bits of the slot's signature (never 0, since a signature's lowest bit is
    /// set; 0: empty), so a lookup that finds its key in its home way reads this line alone.
    tag: u16,
    /// The ways of this bucket holding keys whose home is this slot's way but which live
    /// elsewhere, one bit each, whatever this slot holds: a key not found at home is in one of
    /// these or absent, so its lookup needs no signature line.
    away: u16,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket<K, E> {
    sig: [u32; WAYS],
    slots: [Slot<K, E>; WAYS],
}

impl<K: TableKey, E: TableEntry> Bucket<K, E> {
    const EMPTY: Self = Bucket {
        sig: [0; WAYS],
        slots: [Slot {
            key: K::EMPTY,
            entry: E::EMPTY,
            stamp: 0,
            tag: 0,
            away: 0,
        }; WAYS],
    };
    /// Offset of the first slot in a bucket (after the signature line).
    const SLOT_OFFSET: usize = core::mem::offset_of!(Self, slots);
    /// Bytes of one slot.
    const SLOT_BYTES: usize = core::mem::size_of::<Slot<K, E>>();

    /// Stores `key` and `entry` with signature `sig` and stamp `stamp` in way `w` and returns
    /// what the slot held (whose bit in its home slot's `away` it clears first, as
    /// [`free`](Self::free)).
    #[inline(always)]
    fn put(&mut self, w: usize, sig: u32, key: K, entry: E, stamp: u32) -> Slot<K, E> {
        let old = self.slots[w];
        self.unlink(w);
        self.sig[w] = sig;
        let slot = &mut self.slots[w];
        slot.key = key;
        slot.entry = entry;
        slot.stamp = stamp;
        slot.tag = sig as u16;
        let home = home_of_sig(sig);
        if home != w {
            self.slots[home].away |= 1 << w;
        }
        old
    }

    /// Empties way `w`: its signature, its slot's tag, and (if it held an entry) its bit in its
    /// home slot's `away`.
    #[inline(always)]
    fn free(&mut self, w: usize) {
        self.unlink(w);
        self.sig[w] = 0;
        self.slots[w].tag = 0;
    }

    /// Stores `key` and `entry` (signature `sig`, stamp 0) in place of a victim among the
    /// occupied ways `ways` names of this full bucket: the first expired entry, else the oldest
    /// untrusted one (the first of equal age); `None` (nothing stored) when every one of them is
    /// trusted and live. The scan has no branch: it notes whether any slot may have expired and
    /// ranks the victims by one maximum over `(age + 1) << 4 | (15 - way)` (0 for none: a
    /// trusted entry), which is the oldest and, of equal age, the first. Only when some slot may
    /// have expired (rare while the table turns over faster than entries expire) are the slots
    /// asked whether they really did, in order. The ways are a fixed count at a fixed stride, so
    /// the scan of an eviction class (four ways, every SYN of a flood into a full table) unrolls
    /// to straight code.
    #[inline(always)]
    fn evict(
        &mut self,
        ways: Ways,
        sig: u32,
        key: K,
        entry: E,
        now: u32,
    ) -> Option<InsertResult<K, E>> {
        const _: () = assert!(WAYS <= 16);
        let (mut best, mut maybe) = (0u64, false);
        for w in ways.iter() {
            let e = &self.slots[w].entry;
            maybe |= e.may_be_expired(now);
            let age = u64::from(now.wrapping_sub(e.last_seen())) + 1;
            let rank = age << 4 | (WAYS - 1 - w) as u64;
            best = best.max(if e.is_trusted() { 0 } else { rank });
        }
        if maybe {
            for w in ways.iter() {
                if self.slots[w].entry.is_expired(now) {
                    let old = self.put(w, sig, key, entry, 0);
                    return Some(InsertResult::EvictedExpired(old.key, old.entry));
                }
            }
        }
        if best == 0 {
            return None;
        }
        let old = self.put(WAYS - 1 - (best & 15) as usize, sig, key, entry, 0);
        Some(InsertResult::EvictedUntrusted(old.key, old.entry))
    }

    /// Clears the bit of way `w`'s entry, if any, in its home slot's `away` (the way is about to
    /// be emptied or overwritten).
    #[inline(always)]
    fn unlink(&mut self, w: usize) {
        let tag = self.slots[w].tag;
        if tag != 0 {
            let home = home_of_sig(u32::from(tag));
            self.slots[home].away &= !(1 << w);
        }
    }
}

/// Bytes of one IPv4 bucket (16 slots).
pub const BUCKET_BYTES: usize = core::mem::size_of::<Bucket<FlowKey, FlowEntry>>();
/// Bytes of one IPv4 slot (key + entry, padded to a cache line), excluding its 4-byte signature.
pub const SLOT_BYTES: usize = core::mem::size_of::<Slot<FlowKey, FlowEntry>>();
/// Bytes of one IPv6 bucket (16 slots).
pub const BUCKET_BYTES6: usize = core::mem::size_of::<Bucket<FlowKey6, FlowEntry6>>();
/// Bytes of one IPv6 slot (48-byte key + 48-byte entry, padded to two cache lines), excluding its
/// 4-byte signature.
pub const SLOT_BYTES6: usize = core::mem::size_of::<Slot<FlowKey6, FlowEntry6>>();

/// Where an entry lives: valid until the table is next modified (insert/remove/expire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId(pub u32);

/// Outcome of [`SetTable::insert`]; evicted entries are returned so the caller can account for them
/// (and, for an expired established flow with reset enabled, send its RSTs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertResult<K = FlowKey, E = FlowEntry> {
    /// Stored in a free slot.
    Inserted,
    /// The key was present: its entry was replaced (the old one is returned).
    Replaced(E),
    /// Stored in place of an expired entry.
    EvictedExpired(K, E),
    /// Stored in place of the least recently seen untrusted entry (of the eviction class, see the
    /// module documentation).
    EvictedUntrusted(K, E),
    /// Bucket full of trusted, live entries: not stored (forward by hash, count `flow_table_full`).
    Full,
}

/// Signature of a hash: its high 32 bits with the lowest set, so never 0 (0 marks an empty slot).
/// One OR instead of a test and a select; 31 bits still tell keys apart before the key compare.
#[inline(always)]
fn sig_of(hash: u64) -> u32 {
    (hash >> 32) as u32 | 1
}

/// The way a key of `hash` takes when that way is free at insert (its home way): four bits of the
/// signature (above its lowest, which is always set), none of the bucket index's.
#[inline(always)]
fn home_of(hash: u64) -> usize {
    home_of_sig(sig_of(hash))
}

/// [`home_of`] from a signature (or a slot's tag, its low 16 bits): bits 1 to 4, above the
/// lowest (always set).
#[inline(always)]
fn home_of_sig(sig: u32) -> usize {
    (sig >> 1) as usize & (WAYS - 1)
}

/// The free way an insert of `hash` takes, of the non-empty mask `free`: its home way if free,
/// else the first.
#[inline(always)]
fn insert_way(free: u16, hash: u64) -> usize {
    let home = home_of(hash);
    if free >> home & 1 != 0 {
        home
    } else {
        free.trailing_zeros() as usize
    }
}

/// Ways of a bucket at a fixed stride: `count` of them from `first`, `stride` apart (an
/// eviction class, or the whole bucket). Constant counts let the eviction scan unroll.
#[derive(Clone, Copy)]
struct Ways {
    first: usize,
    stride: usize,
    count: usize,
}

impl Ways {
    /// Every way of a bucket.
    const ALL: Ways = Ways {
        first: 0,
        stride: 1,
        count: WAYS,
    };

    /// The ways, in order; each below [`WAYS`] (masked), so indexing a bucket's slots with one
    /// needs no bounds check.
    #[inline(always)]
    fn iter(self) -> impl Iterator<Item = usize> {
        (0..self.count).map(move |j| (self.first + j * self.stride) & (WAYS - 1))
    }
}

/// The ways a full bucket's insert of `hash` looks at first (its eviction class): the four
/// ways whose numbers agree with its home way's in the low two bits, so an insert into a full
/// bucket reads four slots, not sixteen (a SYN flood into a full table inserts so per SYN).
#[inline(always)]
fn evict_class(hash: u64) -> Ways {
    const _: () = assert!(WAYS == 16);
    Ways {
        first: home_of(hash) & 3,
        stride: 4,
        count: 4,
    }
}

/// [`evict_class`] as a mask of ways, one bit each (for the prefetches of its slots): bits
/// 0, 4, 8 and 12 moved to the class's first way.
#[inline(always)]
fn evict_class_mask(hash: u64) -> u16 {
    0x1111 << evict_class(hash).first
}

/// Bit `i` set when `sig[i] == s` (SSE2: four compares, two packs, one movemask). 16 bits, one
/// per way: the way of a set bit is below [`WAYS`] by its type, so indexing a bucket's slots with
/// it needs no bounds check.
#[inline(always)]
fn match_mask(sig: &[u32; WAYS], s: u32) -> u16 {
    const _: () = assert!(WAYS == 16);
    eq_mask16(sig, s) as u16
}

/// A per-worker set-associative table of keys `K` and entries `E` (see the module
/// documentation): [`FlowTable`] for IPv4 flows, [`FlowTable6`] for IPv6 flows.
pub struct SetTable<K, E> {
    buckets: Box<[Bucket<K, E>]>,
    mask: usize,
    len: usize,
    cursor: usize,
}

/// The IPv4 flow table: one 64-byte line per slot, 68 bytes of memory per flow.
pub type FlowTable = SetTable<FlowKey, FlowEntry>;
/// The IPv6 flow table: two 64-byte lines per slot, 132 bytes of memory per flow.
pub type FlowTable6 = SetTable<FlowKey6, FlowEntry6>;

impl<K: TableKey, E: TableEntry> SetTable<K, E> {
    /// A table for at least `capacity` flows: rounded up to a power of two, at least one bucket (16),
    /// at most [`MAX_SLOTS`]. All memory is allocated and written here, never afterwards.
    pub fn new(capacity: usize) -> Self {
        let slots = capacity.clamp(WAYS, MAX_SLOTS).next_power_of_two();
        let nb = slots / WAYS;
        // Transparent huge pages before the first touch: random lookups in a large table then
        // miss the TLB far less often.
        let mut v = Vec::with_capacity(nb);
        advise_huge_pages(&mut v);
        v.resize(nb, Bucket::EMPTY);
        SetTable {
            buckets: v.into_boxed_slice(),
            mask: nb - 1,
            len: 0,
            cursor: 0,
        }
    }

    /// Number of slots (the rounded capacity).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// True when the table holds at least 15/16 of its capacity: most buckets are then full, so
    /// an absent key's insert likely evicts (a SYN flood into a full table), and the burst lookup
    /// prefetches its eviction class before reading any signature line.
    #[inline(always)]
    fn crowded(&self) -> bool {
        self.len >= self.capacity() - self.capacity() / 16
    }

    /// Number of buckets.
    #[inline]
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Number of stored entries (live or not yet swept).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is stored.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of memory held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<Bucket<K, E>>()
    }

    /// The bucket of `hash`. Masked with the bucket count less one (equal to `mask`, which `new`
    /// makes a power of two less one) so that, once the table is known not to be empty, indexing
    /// with it needs no bounds check.
    #[inline(always)]
    fn bucket_index(&self, hash: u64) -> usize {
        hash as usize & self.buckets.len().wrapping_sub(1)
    }

    /// Prefetches slot `w` of `b` (each slot starts a cache line): its one line, or both lines of
    /// a two-line IPv6 slot (the key and member address are in the first, the flow's record and
    /// stamp in the second; a constant test, so the IPv4 table's code is unchanged).
    #[inline(always)]
    fn prefetch_slot(b: &Bucket<K, E>, w: usize) {
        let at = Bucket::<K, E>::SLOT_OFFSET + w * Bucket::<K, E>::SLOT_BYTES;
        prefetch_at(b, at);
        if Bucket::<K, E>::SLOT_BYTES > 64 {
            prefetch_at(b, at + 64);
        }
    }

    /// Prefetches the slots of `b` named by `ways` (the eviction class a full bucket's insert
    /// will read).
    #[inline(always)]
    fn prefetch_ways(b: &Bucket<K, E>, ways: u16) {
        let mut m = ways;
        while m != 0 {
            Self::prefetch_slot(b, m.trailing_zeros() as usize);
            m &= m - 1;
        }
    }

    /// Prefetches the home slot of `hash` (the slot's line, or both lines of an IPv6 slot):
    /// where [`lookup_burst`](Self::lookup_burst) looks first, and where an insert goes when it
    /// can (the signature line is loaded only for keys not found there). A caller that classifies
    /// a burst prefetches each slot as soon as it has the key, so the first lookups find their
    /// lines arrived.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        // `new` makes at least one bucket, so the index is in range.
        if let Some(b) = self.buckets.get(self.bucket_index(hash)) {
            Self::prefetch_slot(b, home_of(hash));
        }
    }

    /// The entry of `key` (`hash` = its table hash), expired or not.
    #[inline]
    pub fn lookup(&mut self, key: &K, hash: u64) -> Option<&mut E> {
        self.lookup_stamped(key, hash).map(|(e, _)| e)
    }

    /// [`lookup`](Self::lookup) with the slot's stamp (see
    /// [`occupied_stamped`](Self::occupied_stamped)).
    #[inline]
    pub fn lookup_stamped(&mut self, key: &K, hash: u64) -> Option<(&mut E, &mut u32)> {
        let bi = self.bucket_index(hash);
        let b = &mut self.buckets[bi];
        let mut m = match_mask(&b.sig, sig_of(hash));
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            if b.slots[w].key.same(key) {
                let s = &mut b.slots[w];
                return Some((&mut s.entry, &mut s.stamp));
            }
            m &= m - 1;
        }
        None
    }

    #[inline(always)]
    fn find(&self, key: &K, hash: u64) -> Option<SlotId> {
        let bi = self.bucket_index(hash);
        let b = &self.buckets[bi];
        let mut m = match_mask(&b.sig, sig_of(hash));
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            if b.slots[w].key.same(key) {
                return Some(SlotId((bi * WAYS + w) as u32));
            }
            m &= m - 1;
        }
        None
    }

    /// Looks up a burst: `out[i]` gets the slot of `keys[i]` or `None`; returns the number of hits.
    ///
    /// Per group of [`BURST`] keys: first each key's home slot (prefetched by
    /// [`prefetch`](Self::prefetch)), a hit there reading that slot's line alone; for
    /// a key not there, the first slot its home slot's `away` names is prefetched, or for an
    /// absent key (none named) the signature line its insert reads (in a table at least 15/16
    /// full, the slots of its eviction class too, before any signature line is read); then the
    /// named slots' keys are compared. The misses of a burst overlap at each step.
    #[inline(always)]
    pub fn lookup_burst<H: HoldsKey<K>>(
        &self,
        keys: &[H],
        hashes: &[u64],
        out: &mut [Option<SlotId>],
    ) -> usize {
        if self.buckets.is_empty() {
            return 0; // never: `new` makes at least one bucket (lets the loops index unchecked)
        }
        let n = keys.len().min(hashes.len()).min(out.len());
        let (keys, hashes, out) = (&keys[..n], &hashes[..n], &mut out[..n]);
        let mut hits = 0;
        let groups = keys
            .chunks(BURST)
            .zip(hashes.chunks(BURST))
            .zip(out.chunks_mut(BURST));
        for ((keys, hashes), out) in groups {
            // 1. the home slots; the signature lines of the keys not found there
            let mut away = 0u64;
            for (i, ((key, &h), o)) in keys.iter().zip(hashes).zip(out.iter_mut()).enumerate() {
                let bi = self.bucket_index(h);
                let b = &self.buckets[bi];
                let w = home_of(h);
                let s = &b.slots[w];
                if s.tag == sig_of(h) as u16 && s.key.same(key.held_key()) {
                    *o = Some(SlotId((bi * WAYS + w) as u32));
                    hits += 1;
                } else {
                    *o = None;
                    away |= 1 << i;
                    // The ways holding keys of this home: the first one's slot, else (absent)
                    // the signature line an insert reads.
                    match s.away {
                        0 => prefetch(&b.sig),
                        m => Self::prefetch_slot(b, m.trailing_zeros() as usize),
                    }
                }
            }
            if away != 0 {
                hits += self.lookup_away(keys, hashes, out, away);
            }
        }
        hits
    }

    /// For each set bit `i` of `mask` (a key of a burst group, as `lookup_away`'s masks): `i`,
    /// the key's hash `hashes[i]` and its bucket's index.
    #[inline(always)]
    fn marked<'a>(
        &'a self,
        mask: u64,
        hashes: &'a [u64],
    ) -> impl Iterator<Item = (usize, u64, usize)> + 'a {
        let mut left = mask;
        core::iter::from_fn(move || {
            while left != 0 {
                let i = left.trailing_zeros() as usize;
                left &= left - 1;
                if let Some(&h) = hashes.get(i) {
                    return Some((i, h, self.bucket_index(h)));
                }
            }
            None
        })
    }

    /// Steps 2 and 3 of [`lookup_burst`](Self::lookup_burst), for the keys of one group that
    /// step 1 did not find at home (bit `i` of `away`: `keys[i]`). A key is in its home way or
    /// in a way its home slot's `away` names: with none named it is absent, and the slot its
    /// insert will take is prefetched (from the signature line step 1 started loading; the
    /// slots of its eviction class in a full bucket, for the eviction scan, and in a crowded
    /// table before any signature line is read); then the keys in the named ways (whose first
    /// slot step 1 prefetched) are compared. Sets their `out` and returns their hits. Out of
    /// line: a burst of known flows in a table that is not crowded has none.
    #[inline(never)]
    fn lookup_away<H: HoldsKey<K>>(
        &self,
        keys: &[H],
        hashes: &[u64],
        out: &mut [Option<SlotId>],
        away: u64,
    ) -> usize {
        let mut hits = 0;
        if self.crowded() {
            // The absent keys' inserts will likely evict: start their eviction classes' lines
            // before any signature line is read.
            for (_, h, bi) in self.marked(away, hashes) {
                let b = &self.buckets[bi];
                let home = &b.slots[home_of(h)];
                if home.away == 0 && home.tag != 0 {
                    Self::prefetch_ways(b, evict_class_mask(h) & !(1 << home_of(h)));
                }
            }
        }
        // 2. the absent keys' inserts
        let mut cand = 0u64;
        for (i, h, bi) in self.marked(away, hashes) {
            let b = &self.buckets[bi];
            if b.slots[home_of(h)].away != 0 {
                cand |= 1 << i;
                continue;
            }
            // Its insert takes a free slot; into a full bucket, an eviction reads the four slots
            // of its eviction class (a SYN flood into a full table): start those lines now, so
            // they overlap across the burst. In a crowded table the first loop above has already
            // asked for them, but asking again here is not redundant: a SYN flood measured
            // faster with this second request than without it.
            let free = match_mask(&b.sig, 0);
            if free != 0 {
                Self::prefetch_slot(b, insert_way(free, h));
            } else {
                Self::prefetch_ways(b, evict_class_mask(h));
            }
        }
        // 3. the keys in the ways their home names
        for (i, h, bi) in self.marked(cand, hashes) {
            let (Some(key), Some(o)) = (keys.get(i), out.get_mut(i)) else {
                continue;
            };
            let b = &self.buckets[bi];
            let tag = sig_of(h) as u16;
            let mut m = b.slots[home_of(h)].away;
            while m != 0 {
                let w = m.trailing_zeros() as usize;
                if b.slots[w].tag == tag && b.slots[w].key.same(key.held_key()) {
                    *o = Some(SlotId((bi * WAYS + w) as u32));
                    hits += 1;
                    break;
                }
                m &= m - 1;
            }
        }
        hits
    }

    /// The entry at `id` if it still holds `key` (guards against an insert earlier in the same burst
    /// having reused the slot).
    #[inline]
    pub fn slot_mut(&mut self, id: SlotId, key: &K) -> Option<&mut E> {
        let i = id.0 as usize;
        let b = self.buckets.get_mut(i / WAYS)?;
        let w = i % WAYS;
        if b.slots[w].tag != 0 && b.slots[w].key.same(key) {
            Some(&mut b.slots[w].entry)
        } else {
            None
        }
    }

    /// The entry at `id` if the slot is occupied, without comparing keys: for a slot id that
    /// [`lookup_burst`](Self::lookup_burst) returned when nothing was inserted since (an insert is
    /// the only way another key gets into a slot; a removal empties it).
    #[inline(always)]
    pub fn occupied_mut(&mut self, id: SlotId) -> Option<&mut E> {
        let i = id.0 as usize;
        let b = self.buckets.get_mut(i / WAYS)?;
        let w = i % WAYS;
        if b.slots[w].tag != 0 {
            Some(&mut b.slots[w].entry)
        } else {
            None
        }
    }

    /// [`occupied_mut`](Self::occupied_mut) with the slot's stamp: a word the caller keeps about
    /// the entry (the data path: the configuration the entry was last checked against), which
    /// the table sets to 0 whenever the slot gets a new entry (insert, replace, eviction; an
    /// [`insert_absent_stamped`](Self::insert_absent_stamped) sets the caller's) and never
    /// reads. It costs no memory: it lives in the slot's padding, with the tag and the away mask.
    #[inline(always)]
    pub fn occupied_stamped(&mut self, id: SlotId) -> Option<(&mut E, &mut u32)> {
        let i = id.0 as usize;
        let b = self.buckets.get_mut(i / WAYS)?;
        let w = i % WAYS;
        if b.slots[w].tag != 0 {
            let s = &mut b.slots[w];
            Some((&mut s.entry, &mut s.stamp))
        } else {
            None
        }
    }

    /// [`slot_mut`](Self::slot_mut) with the slot's stamp (see
    /// [`occupied_stamped`](Self::occupied_stamped)).
    #[inline]
    pub fn slot_stamped(&mut self, id: SlotId, key: &K) -> Option<(&mut E, &mut u32)> {
        let i = id.0 as usize;
        let b = self.buckets.get_mut(i / WAYS)?;
        let w = i % WAYS;
        if b.slots[w].tag != 0 && b.slots[w].key.same(key) {
            let s = &mut b.slots[w];
            Some((&mut s.entry, &mut s.stamp))
        } else {
            None
        }
    }

    /// The key and entry at `id`, if the slot is occupied.
    #[inline]
    pub fn slot(&self, id: SlotId) -> Option<(&K, &E)> {
        let i = id.0 as usize;
        let b = self.buckets.get(i / WAYS)?;
        let w = i % WAYS;
        (b.slots[w].tag != 0).then(|| (&b.slots[w].key, &b.slots[w].entry))
    }

    /// Removes the entry at `id` if it still holds `key` (e.g. a burst hit found expired) and returns it.
    #[inline]
    pub fn remove_slot(&mut self, id: SlotId, key: &K) -> Option<E> {
        let i = id.0 as usize;
        let b = self.buckets.get_mut(i / WAYS)?;
        let w = i % WAYS;
        if b.slots[w].tag != 0 && b.slots[w].key.same(key) {
            b.free(w);
            self.len -= 1;
            Some(b.slots[w].entry)
        } else {
            None
        }
    }

    /// Stores `entry` for `key`, evicting per the module policy when the bucket is full.
    #[inline]
    pub fn insert(&mut self, key: K, hash: u64, entry: E, now: u32) -> InsertResult<K, E> {
        let s = sig_of(hash);
        let bi = self.bucket_index(hash);
        let b = &mut self.buckets[bi];
        let mut m = match_mask(&b.sig, s);
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            if b.slots[w].key.same(&key) {
                let old = b.slots[w].entry;
                b.slots[w].entry = entry;
                b.slots[w].stamp = 0;
                return InsertResult::Replaced(old);
            }
            m &= m - 1;
        }
        self.insert_absent(key, hash, entry, now)
    }

    /// [`insert`](Self::insert) of a key the caller knows is not stored (a lookup since the last
    /// insert missed it, or it was just removed): skips the probe for an entry to replace, so it
    /// never returns [`InsertResult::Replaced`]. Storing a key that is present leaves two entries
    /// for it (the first one found wins on lookups), which is why the caller must know.
    #[inline]
    pub fn insert_absent(&mut self, key: K, hash: u64, entry: E, now: u32) -> InsertResult<K, E> {
        self.insert_absent_stamped(key, hash, entry, now, 0)
    }

    /// [`insert_absent`](Self::insert_absent) with the new slot's stamp (see
    /// [`occupied_stamped`](Self::occupied_stamped)) set to `stamp` instead of 0 when the entry
    /// takes a free slot: for an entry the caller has just checked, as it would check it on its
    /// next use. An entry that evicts another gets 0 (a full table's inserts stay as they were).
    #[inline]
    pub fn insert_absent_stamped(
        &mut self,
        key: K,
        hash: u64,
        entry: E,
        now: u32,
        stamp: u32,
    ) -> InsertResult<K, E> {
        debug_assert!(
            self.find(&key, hash).is_none(),
            "insert_absent of a stored key"
        );
        let s = sig_of(hash);
        let b = &mut self.buckets[self.bucket_index(hash)];
        let free = match_mask(&b.sig, 0);
        if free != 0 {
            b.put(insert_way(free, hash), s, key, entry, stamp);
            self.len += 1;
            return InsertResult::Inserted;
        }
        // Bucket full: a victim among the four ways of the key's eviction class, else (all four
        // trusted and live) among all sixteen (the other twelve would give the same answer, but
        // that mask compiled to five more instructions per SYN into a table with room).
        if let Some(r) = b.evict(evict_class(hash), s, key, entry, now) {
            return r;
        }
        b.evict(Ways::ALL, s, key, entry, now)
            .unwrap_or(InsertResult::Full)
    }

    /// Removes `key`'s entry and returns it.
    #[inline]
    pub fn remove(&mut self, key: &K, hash: u64) -> Option<E> {
        let id = self.find(key, hash)?;
        let i = id.0 as usize;
        let b = &mut self.buckets[i / WAYS];
        b.free(i % WAYS);
        self.len -= 1;
        Some(b.slots[i % WAYS].entry)
    }

    /// Walks at most `budget` buckets from the cursor; every entry expired at `now` is passed to
    /// `on_expired` and removed. Returns the number removed. A full sweep takes
    /// `buckets() / budget` calls.
    pub fn expire_step<F: FnMut(&K, &E)>(
        &mut self,
        now: u32,
        budget: usize,
        mut on_expired: F,
    ) -> usize {
        let nb = self.buckets.len();
        let mut removed = 0;
        let mut c = self.cursor;
        for _ in 0..budget.min(nb) {
            let b = &mut self.buckets[c];
            let mut occ = !match_mask(&b.sig, 0);
            while occ != 0 {
                let w = occ.trailing_zeros() as usize;
                occ &= occ - 1;
                let slot = &b.slots[w];
                if slot.entry.is_expired(now) {
                    on_expired(&slot.key, &slot.entry);
                    b.free(w);
                    removed += 1;
                }
            }
            c = (c + 1) & self.mask;
        }
        self.cursor = c;
        self.len -= removed;
        removed
    }

    /// Every stored entry (for `vipmux flows`; walks the whole table).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &E)> + '_ {
        self.buckets.iter().flat_map(|b| {
            b.sig
                .iter()
                .zip(b.slots.iter())
                .filter(|(s, _)| **s != 0)
                .map(|(_, slot)| (&slot.key, &slot.entry))
        })
    }

    /// Removes every entry (keeps the memory).
    pub fn clear(&mut self) {
        for b in self.buckets.iter_mut() {
            for w in 0..WAYS {
                b.free(w);
            }
        }
        self.len = 0;
        self.cursor = 0;
    }
}

impl<K: TableKey, E: TableEntry> core::fmt::Debug for SetTable<K, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SetTable")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("cursor", &self.cursor)
            .finish()
    }
}

#[cfg(test)]
mod tests;
