//! Tests of [`super`]: lookups, inserts, eviction classes, expiry steps and the burst lookup
//! against a reference map, with property tests over random operation sequences.

use super::*;
use crate::flow::entry::{FlowFlags, FlowState};
use crate::flow::recent::RecentlyExpired;
use crate::flow::tcp::{tcp_flags, track, Direction};
use crate::flow::{FlowEntry6, FlowKey6};
use proptest::prelude::*;
use std::collections::HashMap;

/// Hashes each of `keys` into `hashes` and prefetches its home slot, as the data path does.
fn prefetch_each<K: TableKey, E: TableEntry>(t: &SetTable<K, E>, keys: &[K], hashes: &mut [u64]) {
    for (k, h) in keys.iter().zip(hashes.iter_mut()) {
        *h = k.hash_seeded(crate::flow::DEFAULT_TABLE_SEED);
        t.prefetch(*h);
    }
}

fn key(i: u32) -> FlowKey {
    FlowKey::new(
        0x0a00_0000 | i,
        0xc000_0201,
        (1024 + i % 50_000) as u16,
        80,
        6,
    )
}

fn entry(i: u32, now: u32) -> FlowEntry {
    FlowEntry::new(i, 0x0a01_0000 | i, 8080, i, FlowFlags::NONE, 240, now)
}

fn established(i: u32, now: u32) -> FlowEntry {
    let mut e = half_open(i, now);
    track(
        &mut e,
        Direction::ClientToServer,
        tcp_flags::ACK,
        2,
        9,
        0,
        now,
    );
    e
}

fn half_open(i: u32, now: u32) -> FlowEntry {
    let mut e = entry(i, now);
    track(
        &mut e,
        Direction::ClientToServer,
        tcp_flags::SYN,
        1,
        0,
        0,
        now,
    );
    e
}

/// Keys that all land in bucket 0 of a one-bucket table (every key does).
fn one_bucket() -> FlowTable {
    FlowTable::new(1)
}

/// The (key, entry) of every way of a one-bucket table's full bucket, in way order.
fn ways_of(t: &FlowTable) -> Vec<(FlowKey, FlowEntry)> {
    let ways: Vec<_> = t.iter().map(|(k, e)| (*k, *e)).collect();
    assert_eq!(ways.len(), WAYS, "the bucket is full");
    ways
}

/// The key of every way of a one-bucket table's full bucket, in way order.
fn keys_of(t: &FlowTable) -> Vec<FlowKey> {
    ways_of(t).iter().map(|(k, _)| *k).collect()
}

/// The eviction policy written out plainly, for a full one-bucket table: among the ways of
/// the key's eviction class the first expired entry, else the oldest untrusted (the first of
/// equal age); if none of them qualifies, the same over all sixteen ways.
fn policy_victim(t: &FlowTable, hash: u64, now: u32) -> FlowKey {
    let ways = ways_of(t);
    let pick = |class: u16| {
        let ws = || (0..WAYS).filter(move |w| class >> w & 1 != 0);
        if let Some(w) = ws().find(|&w| ways[w].1.is_expired(now)) {
            return Some(ways[w].0);
        }
        ws().filter(|&w| !ways[w].1.is_trusted())
            .max_by_key(|&w| (now.wrapping_sub(ways[w].1.last_seen), WAYS - w))
            .map(|w| ways[w].0)
    };
    pick(evict_class_mask(hash))
        .or_else(|| pick(u16::MAX))
        .expect("an evictable entry")
}

#[test]
fn crowded_from_fifteen_sixteenths() {
    let mut t = FlowTable::new(64);
    let cap = t.capacity() as u32;
    let mut i = 0;
    while (t.len() as u32) < cap - cap / 16 - 1 {
        let k = key(i);
        t.insert(k, k.table_hash(), established(i, 0), 0);
        i += 1;
    }
    assert!(!t.crowded());
    while !t.crowded() {
        let k = key(i);
        t.insert(k, k.table_hash(), established(i, 0), 0);
        i += 1;
    }
    assert_eq!(t.len() as u32, cap - cap / 16);
}

#[test]
fn full_bucket_evicts_within_the_eviction_class_first() {
    // Sixteen established flows (idle timeout 240 s) fill the bucket at `at`; a new key's
    // eviction class is four ways.
    let fill = |at: u32| {
        let mut t = one_bucket();
        for i in 0..16 {
            let k = key(i);
            t.insert(k, k.table_hash(), established(i, at), at);
        }
        t
    };
    let k = key(100);
    let h = k.table_hash();
    let class = evict_class_mask(h);
    let inside: Vec<usize> = (0..WAYS).filter(|w| class >> w & 1 != 0).collect();
    let outside = (0..WAYS).find(|w| class >> w & 1 == 0).unwrap();
    assert_eq!(inside.len(), 4);
    assert!(inside.contains(&home_of(h)));
    let set = |t: &mut FlowTable, w: usize, e: FlowEntry| {
        let wk = ways_of(t)[w].0;
        *t.lookup(&wk, wk.table_hash()).unwrap() = e;
        wk
    };
    // A half-open flow in the class goes, though one outside it is older.
    let mut t = fill(190);
    let older = set(&mut t, outside, half_open(1, 186));
    let young = set(&mut t, inside[1], half_open(2, 189));
    match t.insert_absent(k, h, half_open(100, 195), 195) {
        InsertResult::EvictedUntrusted(ek, _) => assert_eq!(ek, young),
        other => panic!("unexpected {other:?}"),
    }
    assert!(t.lookup(&older, older.table_hash()).is_some());
    // In the class, an expired flow goes before a live half-open one (by rank alone, the
    // half-open one would: an expired established flow is trusted).
    let mut t = fill(1000);
    set(&mut t, inside[2], half_open(2, 996));
    let expired = set(&mut t, inside[3], established(3, 700));
    match t.insert_absent(k, h, half_open(100, 1005), 1005) {
        InsertResult::EvictedExpired(ek, _) => assert_eq!(ek, expired),
        other => panic!("unexpected {other:?}"),
    }
    // The class all trusted and live: the whole bucket's oldest untrusted flow goes.
    let mut t = fill(190);
    let only = set(&mut t, outside, half_open(1, 186));
    match t.insert_absent(k, h, half_open(100, 195), 195) {
        InsertResult::EvictedUntrusted(ek, _) => assert_eq!(ek, only),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(t.len(), 16);
    assert!(t.lookup(&k, h).is_some());
}

#[test]
fn layout_sizes() {
    assert_eq!(SLOT_BYTES, 64);
    assert_eq!(BUCKET_BYTES, 1088);
    assert_eq!(BUCKET_BYTES % 64, 0);
    assert_eq!(Bucket::<FlowKey, FlowEntry>::SLOT_OFFSET % 64, 0);
}

#[test]
fn capacity_rounding() {
    assert_eq!(FlowTable::new(0).capacity(), 16);
    assert_eq!(FlowTable::new(16).capacity(), 16);
    assert_eq!(FlowTable::new(17).capacity(), 32);
    assert_eq!(FlowTable::new(1000).capacity(), 1024);
    assert_eq!(FlowTable::new(1024).capacity(), 1024);
    let t = FlowTable::new(100_000);
    assert_eq!(t.capacity(), 131_072);
    assert_eq!(t.buckets(), 8192);
    assert_eq!(t.memory_bytes(), 8192 * 1088);
}

#[test]
fn insert_lookup_remove() {
    let mut t = FlowTable::new(1024);
    for i in 0..500 {
        let k = key(i);
        assert_eq!(
            t.insert(k, k.table_hash(), entry(i, 0), 0),
            InsertResult::Inserted
        );
    }
    assert_eq!(t.len(), 500);
    for i in 0..500 {
        let k = key(i);
        assert_eq!(t.lookup(&k, k.table_hash()).map(|e| e.rule_id), Some(i));
    }
    assert!(t.lookup(&key(999), key(999).table_hash()).is_none());
    let k = key(7);
    t.lookup(&k, k.table_hash()).unwrap().backend_port = 1;
    assert_eq!(
        t.remove(&k, k.table_hash()).map(|e| e.backend_port),
        Some(1)
    );
    assert!(t.lookup(&k, k.table_hash()).is_none());
    assert_eq!(t.remove(&k, k.table_hash()), None);
    assert_eq!(t.len(), 499);
    let k = key(8);
    assert!(matches!(
        t.insert(k, k.table_hash(), entry(80, 0), 0),
        InsertResult::Replaced(e) if e.rule_id == 8
    ));
    assert_eq!(t.len(), 499);
    assert_eq!(t.iter().count(), 499);
    t.clear();
    assert!(t.is_empty());
    assert!(t.lookup(&k, k.table_hash()).is_none());
}

/// The stamp of `k`'s slot (found by a burst lookup).
fn stamp_of(t: &mut FlowTable, k: &FlowKey) -> Option<u32> {
    let mut out = [None];
    t.lookup_burst(&[*k], &[k.table_hash()], &mut out);
    t.slot_stamped(out[0]?, k).map(|(_, s)| *s)
}

/// Sets the stamp of `k`'s slot.
fn set_stamp(t: &mut FlowTable, k: &FlowKey, v: u32) {
    let mut out = [None];
    t.lookup_burst(&[*k], &[k.table_hash()], &mut out);
    *t.occupied_stamped(out[0].unwrap()).unwrap().1 = v;
}

#[test]
fn stamps_are_kept_until_the_slot_gets_a_new_entry_unless_the_insert_gives_one() {
    let mut t = one_bucket();
    let k = key(1);
    t.insert(k, k.table_hash(), half_open(1, 0), 0);
    assert_eq!(stamp_of(&mut t, &k), Some(0), "a new entry has stamp 0");
    set_stamp(&mut t, &k, 9);
    t.lookup(&k, k.table_hash()).unwrap().last_seen = 1;
    assert_eq!(stamp_of(&mut t, &k), Some(9), "updating the entry keeps it");
    t.insert(k, k.table_hash(), half_open(1, 0), 0);
    assert_eq!(
        stamp_of(&mut t, &k),
        Some(0),
        "a replaced entry has stamp 0"
    );
    set_stamp(&mut t, &k, 9);
    t.remove(&k, k.table_hash());
    t.insert_absent(k, k.table_hash(), half_open(1, 0), 0);
    assert_eq!(stamp_of(&mut t, &k), Some(0), "a reused slot has stamp 0");
    // Fill the bucket with stamped half-open entries (a stamped insert into a free slot takes
    // the caller's stamp); the next insert evicts one.
    set_stamp(&mut t, &k, 9);
    for i in 2..=WAYS as u32 {
        let k = key(i);
        t.insert_absent_stamped(k, k.table_hash(), half_open(i, 0), 0, 9);
        assert_eq!(stamp_of(&mut t, &k), Some(9), "a free slot takes the stamp");
    }
    let n = key(100);
    assert!(matches!(
        t.insert(n, n.table_hash(), half_open(100, 1), 1),
        InsertResult::EvictedUntrusted(..)
    ));
    assert_eq!(
        stamp_of(&mut t, &n),
        Some(0),
        "an evicting entry has stamp 0"
    );
    // A stamped insert that evicts gets 0 as well.
    let n = key(101);
    assert!(matches!(
        t.insert_absent_stamped(n, n.table_hash(), half_open(101, 2), 2, 9),
        InsertResult::EvictedUntrusted(..)
    ));
    assert_eq!(stamp_of(&mut t, &n), Some(0), "a stamped eviction has 0");
}

#[test]
fn burst_lookup_and_slot_guard() {
    let mut t = FlowTable::new(4096);
    let keys: Vec<FlowKey> = (0..70).map(key).collect();
    for (i, k) in keys.iter().enumerate().step_by(2) {
        t.insert(*k, k.table_hash(), entry(i as u32, 0), 0);
    }
    let mut hashes = vec![0u64; keys.len()];
    prefetch_each(&t, &keys, &mut hashes);
    let mut out = vec![None; keys.len()];
    assert_eq!(t.lookup_burst(&keys, &hashes, &mut out), 35);
    for (i, k) in keys.iter().enumerate() {
        match out[i] {
            Some(id) => {
                assert_eq!(i % 2, 0);
                assert_eq!(t.slot_mut(id, k).unwrap().rule_id, i as u32);
                assert_eq!(t.occupied_mut(id).unwrap().rule_id, i as u32);
                assert_eq!(t.slot(id).unwrap().0, k);
                // A different key at the same slot is refused.
                assert!(t.slot_mut(id, &key(10_000)).is_none());
            }
            None => assert_eq!(i % 2, 1),
        }
    }
    assert!(t.slot_mut(SlotId(u32::MAX), &keys[0]).is_none());
    let id = out[0].unwrap();
    assert!(t.remove_slot(id, &key(10_000)).is_none());
    assert_eq!(t.remove_slot(id, &keys[0]).map(|e| e.rule_id), Some(0));
    assert!(t.remove_slot(id, &keys[0]).is_none());
    assert!(t.occupied_mut(id).is_none());
    assert!(t.occupied_mut(SlotId(u32::MAX)).is_none());
    assert!(t.lookup(&keys[0], hashes[0]).is_none());
    assert_eq!(t.len(), 34);
}

#[test]
fn idle_expiry_after_timeout_and_callback() {
    let mut t = FlowTable::new(64);
    let k = key(1);
    let h = k.table_hash();
    t.insert(k, h, established(1, 100), 100);
    let mut seen = Vec::new();
    // 240 s of silence: still there.
    assert_eq!(
        t.expire_step(340, t.buckets(), |k, e| seen.push((*k, *e))),
        0
    );
    assert!(t.lookup(&k, h).is_some());
    // A packet at 300 refreshes it.
    t.lookup(&k, h).unwrap().touch(300);
    assert_eq!(
        t.expire_step(540, t.buckets(), |k, e| seen.push((*k, *e))),
        0
    );
    assert_eq!(
        t.expire_step(541, t.buckets(), |k, e| seen.push((*k, *e))),
        1
    );
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, k);
    assert_eq!(seen[0].1.rule_id, 1);
    assert_eq!(seen[0].1.state, FlowState::Established);
    assert_eq!(seen[0].1.rst_to_client_seq(), Some(9));
    assert_eq!(seen[0].1.rst_to_backend_seq(), Some(2));
    assert!(t.lookup(&k, h).is_none());
    assert!(t.is_empty());
}

#[test]
fn half_open_short_timeout() {
    let mut t = FlowTable::new(64);
    let (k1, k2) = (key(1), key(2));
    t.insert(k1, k1.table_hash(), half_open(1, 0), 0);
    t.insert(k2, k2.table_hash(), established(2, 0), 0);
    let mut gone = Vec::new();
    t.expire_step(10, t.buckets(), |k, _| gone.push(*k));
    assert!(gone.is_empty());
    t.expire_step(11, t.buckets(), |k, _| gone.push(*k));
    assert_eq!(gone, vec![k1]);
    assert!(t.lookup(&k2, k2.table_hash()).is_some());
}

#[test]
fn expired_key_goes_to_recent_record_and_is_forgotten() {
    let mut t = FlowTable::new(64);
    let mut r = RecentlyExpired::new(64, 240);
    let k = key(3);
    t.insert(k, k.table_hash(), established(3, 0), 0);
    t.expire_step(241, t.buckets(), |k, e| {
        if e.should_record_expiry() {
            r.note_expired(k.table_hash(), 240);
        }
    });
    assert!(t.lookup(&k, k.table_hash()).is_none());
    assert!(r.recently_expired(k.table_hash(), 241));
    assert!(r.recently_expired(k.table_hash(), 479));
    assert!(!r.recently_expired(k.table_hash(), 480));
    assert!(!r.recently_expired(key(4).table_hash(), 241));
}

#[test]
fn expire_step_is_bounded_and_walks_everything() {
    let mut t = FlowTable::new(1024); // 64 buckets
    for i in 0..600 {
        let k = key(i);
        t.insert(k, k.table_hash(), entry(i, 0), 0);
    }
    let mut total = 0;
    for _ in 0..8 {
        total += t.expire_step(1000, 8, |_, _| {});
    }
    assert_eq!(total, 600);
    assert!(t.is_empty());
}

#[test]
fn expire_step_visits_exactly_its_buckets_across_the_wrap() {
    let mut t = FlowTable::new(1024); // 64 buckets
    let nb = t.buckets();
    for i in 0..600 {
        let k = key(i);
        t.insert(k, k.table_hash(), entry(i, 0), 0);
    }
    // Steps of 13 buckets: each removes exactly the entries of the buckets from the cursor
    // on, wrapping past the last bucket.
    let mut cursor = 0usize;
    for _ in 0..10 {
        let mut gone = Vec::new();
        t.expire_step(1000, 13, |k, _| gone.push(*k));
        let mine = |k: &FlowKey| (k.table_hash() as usize & (nb - 1)).wrapping_sub(cursor) % nb;
        assert!(gone.iter().all(|k| mine(k) < 13));
        let left_in_step = t.iter().filter(|(k, _)| mine(k) < 13).count();
        assert_eq!(left_in_step, 0);
        cursor = (cursor + 13) % nb;
    }
    assert!(t.is_empty());
}

#[test]
fn full_bucket_evicts_untrusted_keeps_established() {
    let mut t = one_bucket();
    for i in 0..12 {
        let k = key(i);
        assert_eq!(
            t.insert(k, k.table_hash(), established(i, 50), 50),
            InsertResult::Inserted
        );
    }
    for i in 12..16 {
        let k = key(i);
        // Older half-open entries first: 12 is the oldest.
        assert_eq!(
            t.insert(k, k.table_hash(), half_open(i, 40 + i), 40 + i),
            InsertResult::Inserted
        );
    }
    let k = key(100);
    let want = policy_victim(&t, k.table_hash(), 57);
    match t.insert(k, k.table_hash(), half_open(100, 57), 57) {
        InsertResult::EvictedUntrusted(ek, ee) => {
            assert_eq!(ek, want);
            assert!((12..16).any(|i| key(i) == ek));
            assert_eq!(ee.state, FlowState::SynSent);
        }
        other => panic!("unexpected {other:?}"),
    }
    for i in 0..12 {
        assert!(t.lookup(&key(i), key(i).table_hash()).is_some());
    }
    assert!(t.lookup(&key(100), key(100).table_hash()).is_some());
    assert_eq!(t.len(), 16);
}

#[test]
fn full_bucket_evicts_expired_first() {
    let mut t = one_bucket();
    for i in 0..16 {
        let k = key(i);
        // Key 5 was last seen long ago: expired at 300.
        let now = if i == 5 { 0 } else { 200 };
        t.insert(k, k.table_hash(), established(i, now), now);
    }
    let k = key(100);
    match t.insert(k, k.table_hash(), half_open(100, 300), 300) {
        InsertResult::EvictedExpired(ek, _) => assert_eq!(ek, key(5)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn full_bucket_scan_takes_the_first_expired_then_the_first_oldest() {
    // Keys 0-15 fill the bucket (each in its home way if free, else the first free one); the
    // placement depends on the insertion order only, so a first fill finds which key lands
    // in which way. The untrusted (half-open) entries then go into ways 4, 8 and 12 only,
    // one eviction class, and the new key is of another class whose four ways are all
    // trusted: the whole bucket is scanned, in way order.
    //
    // `fill(half, way)`: a full bucket whose keys in the ways of `half` (by the placement
    // `way`) are half-open since the time given, the rest established.
    let fill = |half: &[(usize, u32)], way: &[FlowKey]| {
        let mut t = one_bucket();
        for i in 0..16 {
            let k = key(i);
            let w = way.iter().position(|&wk| wk == k);
            let e = match half.iter().find(|p| Some(p.0) == w) {
                Some(&(_, at)) => half_open(i, at),
                None => established(i, 190),
            };
            t.insert(k, k.table_hash(), e, 190);
        }
        t
    };
    let way = keys_of(&fill(&[], &[]));
    let k = (100..1100)
        .map(key)
        .find(|k| evict_class_mask(k.table_hash()) != 0x1111)
        .expect("a key outside ways 4, 8 and 12's class within a thousand");
    let evict = |t: &mut FlowTable| t.insert_absent(k, k.table_hash(), half_open(100, 200), 200);
    // At 200: way 4 half-open since 193 (idle 7: past the shortest timeout but within the
    // SYN timeout, live), way 8 since 150 and way 12 since 100 (both expired, SYN timeout
    // 10). The first expired in way order goes, not the oldest.
    let mut t = fill(&[(4, 193), (8, 150), (12, 100)], &way);
    assert_eq!(keys_of(&t), way);
    assert_eq!(policy_victim(&t, k.table_hash(), 200), way[8]);
    match evict(&mut t) {
        InsertResult::EvictedExpired(ek, _) => assert_eq!(ek, way[8]),
        other => panic!("unexpected {other:?}"),
    }
    // Nothing expired: the oldest untrusted, the first of equal age (way 8, not 12).
    let mut t = fill(&[(4, 198), (8, 196), (12, 196)], &way);
    assert_eq!(policy_victim(&t, k.table_hash(), 200), way[8]);
    match evict(&mut t) {
        InsertResult::EvictedUntrusted(ek, _) => assert_eq!(ek, way[8]),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn full_of_established_is_full() {
    let mut t = one_bucket();
    for i in 0..16 {
        let k = key(i);
        t.insert(k, k.table_hash(), established(i, 0), 0);
    }
    let k = key(100);
    assert_eq!(
        t.insert(k, k.table_hash(), half_open(100, 1), 1),
        InsertResult::Full
    );
    assert!(t.lookup(&k, k.table_hash()).is_none());
    for i in 0..16 {
        assert!(t.lookup(&key(i), key(i).table_hash()).is_some());
    }
    // A closed (RST) flow is evictable again.
    track(
        t.lookup(&key(3), key(3).table_hash()).unwrap(),
        Direction::ClientToServer,
        tcp_flags::RST,
        0,
        0,
        0,
        1,
    );
    assert!(matches!(
        t.insert(k, k.table_hash(), half_open(100, 1), 1),
        InsertResult::EvictedUntrusted(ek, _) if ek == key(3)
    ));
}

#[test]
fn insert_absent_fills_free_slots_then_evicts_like_insert() {
    let mut t = one_bucket();
    for i in 0..15 {
        let k = key(i);
        assert_eq!(
            t.insert_absent(k, k.table_hash(), established(i, 50), 50),
            InsertResult::Inserted
        );
    }
    let k = key(15);
    assert_eq!(
        t.insert_absent(k, k.table_hash(), half_open(15, 50), 50),
        InsertResult::Inserted
    );
    assert_eq!(t.len(), 16);
    for i in 0..16 {
        assert_eq!(
            t.lookup(&key(i), key(i).table_hash()).map(|e| e.rule_id),
            Some(i)
        );
    }
    // Full bucket: the same policy as `insert` (the half-open entry goes).
    let k = key(100);
    assert!(matches!(
        t.insert_absent(k, k.table_hash(), half_open(100, 55), 55),
        InsertResult::EvictedUntrusted(ek, _) if ek == key(15)
    ));
    let k = key(101);
    assert_eq!(
        t.insert_absent(k, k.table_hash(), half_open(101, 56), 56),
        InsertResult::EvictedUntrusted(key(100), half_open(100, 55))
    );
    assert_eq!(t.len(), 16);
}

#[test]
fn ipv6_layout_sizes() {
    assert_eq!(SLOT_BYTES6, 128);
    assert_eq!(BUCKET_BYTES6, 64 + 16 * 128);
    assert_eq!(Bucket::<FlowKey6, FlowEntry6>::SLOT_OFFSET, 64);
    // A known flow's packet reads the first line (key, member address) and writes only the
    // second (the flow's record and the stamp), the one line the sweep reads.
    type S6 = Slot<FlowKey6, FlowEntry6>;
    let flow = core::mem::offset_of!(S6, entry) + core::mem::offset_of!(FlowEntry6, flow);
    assert_eq!(core::mem::offset_of!(S6, entry), 48);
    assert_eq!(flow, 64);
    assert!(core::mem::offset_of!(S6, stamp) >= 64);
    let t = FlowTable6::new(1000);
    assert_eq!(t.capacity(), 1024);
    assert_eq!(t.memory_bytes(), 64 * BUCKET_BYTES6);
}

fn key6(i: u32) -> FlowKey6 {
    let client = 0x2001_0db8_0000_0000_0000_0000_0000_0000 | u128::from(i) << 64 | 7;
    FlowKey6::new(
        client,
        0x2001_0db8_0000_0001_0000_0000_0000_0002,
        1024,
        80,
        6,
    )
}

fn entry6(i: u32, now: u32) -> FlowEntry6 {
    let member = 0xfd00_0000_0000_0000_0000_0000_0000_0000 | u128::from(i);
    FlowEntry6::new(i, member, 8080, i, FlowFlags::NONE, 240, now)
}

#[test]
fn ipv6_insert_lookup_burst_evict_expire() {
    let mut t = FlowTable6::new(4096);
    for i in 0..500 {
        let k = key6(i);
        assert_eq!(
            t.insert(k, k.table_hash(), entry6(i, 0), 0),
            InsertResult::Inserted
        );
    }
    let keys: Vec<FlowKey6> = (0..600).map(key6).collect();
    let mut hashes = vec![0u64; keys.len()];
    prefetch_each(&t, &keys, &mut hashes);
    let mut out = vec![None; keys.len()];
    assert_eq!(t.lookup_burst(&keys, &hashes, &mut out), 500);
    for (i, k) in keys.iter().enumerate() {
        match out[i] {
            Some(id) => assert_eq!(t.slot_mut(id, k).unwrap().member_addr & 0xffff, i as u128),
            None => assert!(i >= 500),
        }
    }
    let k = key6(7);
    assert_eq!(
        t.remove(&k, k.table_hash()).map(|e| e.flow.rule_id),
        Some(7)
    );
    assert!(t.lookup(&k, k.table_hash()).is_none());
    // Everything but one refreshed entry expires after the idle timeout.
    let k = key6(8);
    t.lookup(&k, k.table_hash()).unwrap().flow.touch(200);
    let mut gone = 0;
    assert_eq!(t.expire_step(241, t.buckets(), |_, _| gone += 1), 498);
    assert_eq!((gone, t.len()), (498, 1));
    assert_eq!(t.iter().next().map(|(k, _)| *k), Some(key6(8)));
    // A full bucket evicts the oldest untrusted entry, as for IPv4.
    let mut one = FlowTable6::new(1);
    for i in 0..16 {
        let k = key6(i);
        one.insert(k, k.table_hash(), entry6(i, 10 + i), 10 + i);
    }
    let k = key6(100);
    assert!(matches!(
        one.insert(k, k.table_hash(), entry6(100, 40), 40),
        InsertResult::EvictedUntrusted(ek, _) if ek == key6(0)
    ));
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u32, u32),
    InsertAbsent(u32),
    Lookup(u32),
    Touch(u32),
    Remove(u32),
    Advance(u32),
    Expire(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..64u32, 1..50u32).prop_map(|(k, t)| Op::Insert(k, t)),
        (0..64u32).prop_map(Op::InsertAbsent),
        (0..64u32).prop_map(Op::Lookup),
        (0..64u32).prop_map(Op::Touch),
        (0..64u32).prop_map(Op::Remove),
        (0..30u32).prop_map(Op::Advance),
        (1..20usize).prop_map(Op::Expire),
    ]
}

proptest! {
    #[test]
    fn agrees_with_hashmap_model(ops in proptest::collection::vec(op(), 1..300)) {
        // 256 buckets for at most 64 keys: no bucket overflows, so the table is exact.
        let mut t = FlowTable::new(4096);
        let mut m: HashMap<FlowKey, FlowEntry> = HashMap::new();
        let mut now = 0u32;
        for op in ops {
            match op {
                Op::Insert(i, idle) => {
                    let k = key(i);
                    let mut e = entry(i, now);
                    e.idle_timeout = idle;
                    let r = t.insert(k, k.table_hash(), e, now);
                    match m.insert(k, e) {
                        Some(old) => prop_assert_eq!(r, InsertResult::Replaced(old)),
                        None => prop_assert_eq!(r, InsertResult::Inserted),
                    }
                }
                Op::InsertAbsent(i) => {
                    // Only for a key the model does not hold (the caller's promise).
                    let k = key(i);
                    if let std::collections::hash_map::Entry::Vacant(slot) = m.entry(k) {
                        let e = entry(i, now);
                        prop_assert_eq!(t.insert_absent(k, k.table_hash(), e, now), InsertResult::Inserted);
                        slot.insert(e);
                    }
                }
                Op::Lookup(i) => {
                    let k = key(i);
                    prop_assert_eq!(t.lookup(&k, k.table_hash()).copied(), m.get(&k).copied());
                }
                Op::Touch(i) => {
                    let k = key(i);
                    if let Some(e) = t.lookup(&k, k.table_hash()) {
                        e.touch(now);
                    }
                    if let Some(e) = m.get_mut(&k) {
                        e.touch(now);
                    }
                }
                Op::Remove(i) => {
                    let k = key(i);
                    prop_assert_eq!(t.remove(&k, k.table_hash()), m.remove(&k));
                }
                Op::Advance(d) => now += d,
                Op::Expire(budget) => {
                    // A bounded step removes only expired entries; a full sweep removes all of them.
                    let mut got = Vec::new();
                    t.expire_step(now, budget, |k, e| got.push((*k, *e)));
                    for (k, e) in &got {
                        prop_assert!(e.is_expired(now));
                        prop_assert_eq!(m.remove(k), Some(*e));
                    }
                    got.clear();
                    t.expire_step(now, t.buckets(), |k, e| got.push((*k, *e)));
                    let mut want: Vec<FlowKey> =
                        m.iter().filter(|(_, e)| e.is_expired(now)).map(|(k, _)| *k).collect();
                    let mut gotk: Vec<FlowKey> = got.iter().map(|(k, _)| *k).collect();
                    want.sort();
                    gotk.sort();
                    prop_assert_eq!(&gotk, &want);
                    m.retain(|_, e| !e.is_expired(now));
                }
            }
            prop_assert_eq!(t.len(), m.len());
        }
        let mut all: Vec<(FlowKey, FlowEntry)> = t.iter().map(|(k, e)| (*k, *e)).collect();
        let mut want: Vec<(FlowKey, FlowEntry)> = m.into_iter().collect();
        all.sort_by_key(|(k, _)| *k);
        want.sort_by_key(|(k, _)| *k);
        prop_assert_eq!(all, want);
    }

    #[test]
    fn burst_lookup_agrees_in_crowded_buckets(ops in proptest::collection::vec(op(), 1..200)) {
        // Two buckets for 16 keys: many keys away from their home way, none evicted.
        let mut t = FlowTable::new(32);
        let mut m: HashMap<FlowKey, FlowEntry> = HashMap::new();
        let mut now = 0u32;
        let keys: Vec<FlowKey> = (0..16).map(key).collect();
        let hashes: Vec<u64> = keys.iter().map(|k| k.table_hash()).collect();
        for op in ops {
            match op {
                Op::Insert(i, _) | Op::InsertAbsent(i) => {
                    let k = key(i % 16);
                    let e = entry(i % 16, now);
                    t.insert(k, k.table_hash(), e, now);
                    m.insert(k, e);
                }
                Op::Remove(i) => {
                    let k = key(i % 16);
                    prop_assert_eq!(t.remove(&k, k.table_hash()), m.remove(&k));
                }
                Op::Advance(d) => now += d,
                Op::Expire(budget) => {
                    t.expire_step(now, budget, |k, _| {
                        m.remove(k);
                    });
                }
                Op::Lookup(_) | Op::Touch(_) => {}
            }
            // Every slot's tag is its signature's low half; each slot's `away` names exactly
            // the other ways whose key has this home; the burst finds exactly the model's keys.
            for b in t.buckets.iter() {
                for w in 0..WAYS {
                    prop_assert_eq!(b.slots[w].tag, b.sig[w] as u16);
                    let want = (0..WAYS)
                        .filter(|&o| o != w && b.sig[o] != 0 && home_of_sig(b.sig[o]) == w)
                        .fold(0u16, |m, o| m | 1 << o);
                    prop_assert_eq!(b.slots[w].away, want);
                }
            }
            let mut out = [None; 16];
            let hits = t.lookup_burst(&keys, &hashes, &mut out);
            prop_assert_eq!(hits, m.len());
            for (k, o) in keys.iter().zip(out) {
                let found = o.and_then(|id| t.slot(id)).map(|(fk, e)| (*fk, *e));
                prop_assert_eq!(found, m.get(k).map(|e| (*k, *e)));
            }
        }
    }
}

#[test]
fn a_half_full_table_holds_three_quarters_of_its_keys_at_home() {
    // Filled from empty to half its slots, as the README says.
    let mut t = FlowTable::new(1 << 16);
    let keys: Vec<FlowKey> = (0..1u32 << 15).map(key).collect();
    let hashes: Vec<u64> = keys.iter().map(|k| k.table_hash()).collect();
    for (i, (k, &h)) in keys.iter().zip(&hashes).enumerate() {
        // A few buckets overflow at half load (Poisson tail): those inserts evict.
        t.insert(*k, h, entry(i as u32, 0), 0);
    }
    let mut out = vec![None; keys.len()];
    let stored = t.lookup_burst(&keys, &hashes, &mut out);
    assert!(stored > keys.len() * 99 / 100, "{stored}");
    let home = out
        .iter()
        .zip(&hashes)
        .filter(|(id, &h)| id.is_some_and(|id| id.0 as usize % WAYS == home_of(h)))
        .count();
    let share = home as f64 / stored as f64;
    assert!((0.72..0.80).contains(&share), "{share}");
}

#[test]
fn an_insert_takes_its_home_way_when_free() {
    let mut t = FlowTable::new(1 << 12);
    let k = key(7);
    let h = k.table_hash();
    t.insert(k, h, entry(7, 0), 0);
    let mut out = [None];
    assert_eq!(t.lookup_burst(&[k], &[h], &mut out), 1);
    assert_eq!(out[0].unwrap().0 as usize % WAYS, home_of(h));
}

#[test]
fn eviction_class_ways_are_the_ways_of_its_mask() {
    for i in 0..64u32 {
        let h = key(i).table_hash();
        let listed: u16 = evict_class(h).iter().fold(0, |m, w| m | 1 << w);
        assert_eq!(listed, evict_class_mask(h), "key {i}");
        assert_ne!(
            listed >> home_of(h) & 1,
            0,
            "key {i}: its home way is in its class"
        );
    }
    let all: u16 = Ways::ALL.iter().fold(0, |m, w| m | 1 << w);
    assert_eq!(all, u16::MAX);
}
