//! Flow-table benchmarks: burst lookup hits at 1 K – 10 M live flows (with and without prefetch,
//! and hashbrown + aHash for comparison), insert rate, and the cost of one amortised expiry step.
//!
//! Run briefly with `cargo bench --bench flow_table -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vipmux::flow::{FlowEntry, FlowFlags, FlowKey, FlowTable, SlotId, DEFAULT_TABLE_SEED};
use vipmux::wire::BURST;

const QUERIES: usize = 1 << 16;

fn key(i: u32) -> FlowKey {
    FlowKey::new(
        0x0a00_0000 | (i >> 8),
        0xc000_0201,
        1024 + (i & 0xff) as u16,
        443,
        6,
    )
}

fn entry(i: u32) -> FlowEntry {
    FlowEntry::new(
        1,
        0x0a01_0000 | (i & 0xffff),
        8443,
        i & 0xff,
        FlowFlags::NONE,
        240,
        0,
    )
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Random existing keys, so big tables are read at random like real traffic.
fn queries(n: u32) -> Vec<FlowKey> {
    let mut s = 42u64;
    (0..QUERIES)
        .map(|_| key((splitmix(&mut s) % u64::from(n)) as u32))
        .collect()
}

fn filled(n: u32) -> FlowTable {
    let mut t = FlowTable::new(n as usize);
    for i in 0..n {
        let k = key(i);
        t.insert(k, k.table_hash(), entry(i), 0);
    }
    t
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup_hit_burst32");
    g.throughput(Throughput::Elements(BURST as u64));
    for &n in &[1_000u32, 100_000, 1_000_000, 10_000_000] {
        let mut t = filled(n);
        eprintln!(
            "flow_table n={n}: capacity {} slots, {} buckets x {} B, {:.1} MiB, {:.1} B per live flow",
            t.capacity(),
            t.buckets(),
            t.memory_bytes() / t.buckets(),
            t.memory_bytes() as f64 / (1 << 20) as f64,
            t.memory_bytes() as f64 / f64::from(n)
        );
        let q = queries(n);
        let mut pos = 0usize;
        g.bench_function(BenchmarkId::new("prefetch", n), |b| {
            let mut hashes = [0u64; BURST];
            let mut out = [None::<SlotId>; BURST];
            b.iter(|| {
                let keys = &q[pos..pos + BURST];
                pos = (pos + BURST) % QUERIES;
                // As the data path does: each key hashed and its home slot prefetched in turn.
                for (k, h) in keys.iter().zip(hashes.iter_mut()) {
                    *h = k.hash_seeded(DEFAULT_TABLE_SEED);
                    t.prefetch(*h);
                }
                t.lookup_burst(keys, &hashes, &mut out);
                for (k, id) in keys.iter().zip(out) {
                    if let Some(e) = id.and_then(|id| t.slot_mut(id, k)) {
                        e.touch(1);
                    }
                }
            })
        });
        g.bench_function(BenchmarkId::new("plain", n), |b| {
            b.iter(|| {
                let keys = &q[pos..pos + BURST];
                pos = (pos + BURST) % QUERIES;
                for k in keys {
                    if let Some(e) = t.lookup(k, k.table_hash()) {
                        e.touch(1);
                    }
                }
            })
        });
        drop(t);
        let mut hb: hashbrown::HashMap<FlowKey, FlowEntry, ahash::RandomState> =
            hashbrown::HashMap::with_capacity_and_hasher(
                n as usize,
                ahash::RandomState::with_seeds(1, 2, 3, 4),
            );
        for i in 0..n {
            hb.insert(key(i), entry(i));
        }
        g.bench_function(BenchmarkId::new("hashbrown_ahash", n), |b| {
            b.iter(|| {
                let keys = &q[pos..pos + BURST];
                pos = (pos + BURST) % QUERIES;
                for k in keys {
                    if let Some(e) = hb.get_mut(k) {
                        e.touch(1);
                    }
                }
            })
        });
        eprintln!(
            "hashbrown n={n}: {} buckets, about {:.1} MiB",
            hb.capacity(),
            (hb.capacity().next_power_of_two() * 8 / 7 * (48 + 1)) as f64 / (1 << 20) as f64
        );
    }
    g.finish();
}

fn insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("insert");
    g.throughput(Throughput::Elements(1));
    // New flows into a 2 M-slot table, filling it from empty to 50 % then clearing (untimed).
    const CAP: u32 = 1 << 21;
    let mut t = FlowTable::new(CAP as usize);
    let mut next = 0u32;
    g.bench_function("new_flow_2M_slots_to_50pct", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if t.len() >= (CAP / 2) as usize {
                    t.clear();
                }
                let room = (CAP / 2) as u64 - t.len() as u64;
                let chunk = left.min(room);
                let start = Instant::now();
                for _ in 0..chunk {
                    let k = key(next);
                    next = next.wrapping_add(1);
                    black_box(t.insert(k, k.table_hash(), entry(next), 0));
                }
                total += start.elapsed();
                left -= chunk;
            }
            total
        })
    });
    // The data path's order: a burst of 32 new flows is hashed and prefetched (its lookups missed),
    // then inserted.
    g.bench_function("new_flow_burst32_prefetched_2M_slots_to_50pct", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            let mut keys = [FlowKey::default(); BURST];
            let mut hashes = [0u64; BURST];
            while left > 0 {
                if t.len() + BURST >= (CAP / 2) as usize {
                    t.clear();
                }
                for k in keys.iter_mut() {
                    *k = key(next);
                    next = next.wrapping_add(1);
                }
                let start = Instant::now();
                for (k, h) in keys.iter().zip(hashes.iter_mut()) {
                    *h = k.hash_seeded(DEFAULT_TABLE_SEED);
                    t.prefetch(*h);
                }
                for (k, h) in keys.iter().zip(hashes) {
                    black_box(t.insert(*k, h, entry(1), 0));
                }
                total += start.elapsed();
                left = left.saturating_sub(BURST as u64);
            }
            total
        })
    });
    g.finish();
}

fn expire(c: &mut Criterion) {
    let mut g = c.benchmark_group("expire_step");
    const N: u32 = 1_000_000;
    let mut t = filled(N);
    // Nothing expired: the cost of scanning 64 buckets (1024 slots, ~48 % occupied).
    g.throughput(Throughput::Elements(64));
    g.bench_function("scan_64_buckets_none_expired_1M", |b| {
        b.iter(|| {
            t.expire_step(100, 64, |k, e| {
                black_box((k, e));
            })
        })
    });
    // Everything expired: the cost per removed entry, refilled outside the timing.
    g.throughput(Throughput::Elements(1));
    g.bench_function("remove_expired_per_entry_1M", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                if t.is_empty() {
                    t = filled(N);
                }
                let start = Instant::now();
                let r = t.expire_step(1000, 64, |k, e| {
                    black_box((k, e));
                });
                total += start.elapsed();
                done += r.max(1) as u64;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, lookup, insert, expire);
criterion_main!(benches);
