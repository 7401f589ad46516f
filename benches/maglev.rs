//! Maglev table build time (the paper reports 1.8 ms at M = 65537 and 22.9 ms at M = 655373)
//! and the cost of one lookup.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use vipmux::balance::hash::hash_5tuple;
use vipmux::balance::maglev::{Maglev, MaglevMember};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("backend-{i}")).collect()
}

fn members(names: &[String]) -> Vec<MaglevMember<'_>> {
    names
        .iter()
        .map(|n| MaglevMember {
            name: n,
            weight: 1,
            eligible: true,
        })
        .collect()
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build");
    for (n, size) in [(100usize, 65_537u32), (1000, 655_373)] {
        let nm = names(n);
        let ms = members(&nm);
        g.bench_function(format!("{n}_members_{size}_entries"), |b| {
            b.iter(|| Maglev::build_with_size(black_box(7), black_box(&ms), size))
        });
    }
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let nm = names(100);
    let t = Maglev::build(7, &members(&nm));
    let mut k = 0u32;
    c.bench_function("maglev_hash_and_lookup", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            t.lookup(hash_5tuple(7, black_box(k), 0x0a01_0064, 6, 40000, 80))
        })
    });
}

criterion_group!(benches, build, lookup);
criterion_main!(benches);
