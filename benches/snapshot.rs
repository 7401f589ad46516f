//! Snapshot compile time for 1,000 frontends and 10,000 members (one pool of 10 per frontend,
//! one load-balancing rule each), and the per-packet rule lookup.

use std::fmt::Write as _;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use vipmux::balance::{Health, Snapshot};
use vipmux::config::Config;

fn big_config(frontends: usize, per_pool: usize) -> String {
    let mut t = String::from(
        "[[interfaces]]\nname = \"dc\"\nport = \"p0\"\naddress = \"10.0.0.2/8\"\n\n[[probes]]\nname = \"p\"\nprotocol = \"tcp\"\nport = 80\n",
    );
    for f in 0..frontends {
        let _ = write!(
            t,
            "[[frontends]]\nname = \"fe{f}\"\naddress = \"10.200.{}.{}\"\n",
            f / 250,
            f % 250 + 1
        );
        let _ = write!(t, "[[backend_pools]]\nname = \"pool{f}\"\nmembers = [");
        for m in 0..per_pool {
            let n = f * per_pool + m;
            let _ = write!(
                t,
                "{{ name = \"m{n}\", address = \"10.{}.{}.{}\" }},",
                n / 62_500 + 1,
                (n / 250) % 250,
                n % 250 + 1
            );
        }
        let _ = write!(
            t,
            "]\n[[load_balancing_rules]]\nname = \"r{f}\"\nfrontend = \"fe{f}\"\nprotocol = \"tcp\"\nfrontend_port = 80\nbackend_pool = \"pool{f}\"\nprobe = \"p\"\n"
        );
    }
    t
}

fn compile(c: &mut Criterion) {
    let text = big_config(1000, 10);
    let config = Config::from_str(&text, "bench.toml").unwrap_or_else(|e| panic!("{e}"));
    let health = Health::all_up(&config);
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.bench_function("parse_and_validate_1000_frontends_10000_members", |b| {
        b.iter(|| Config::from_str(black_box(&text), "bench.toml").is_ok())
    });
    g.bench_function("compile_1000_frontends_10000_members", |b| {
        b.iter(|| Snapshot::compile(black_box(&config), black_box(&health)))
    });
    let first = Snapshot::compile(&config, &health);
    let mut changed = health.clone();
    changed.set(
        "p",
        config.backend_pools[0].members[0].address,
        vipmux::balance::ProbeState::Down,
    );
    g.bench_function("recompile_after_one_health_change", |b| {
        b.iter(|| Snapshot::compile_with_previous(black_box(&config), &changed, Some(&first)))
    });
    g.finish();
    let snap = first;
    let vip = u32::from(std::net::Ipv4Addr::new(10, 200, 1, 7));
    c.bench_function("snapshot_lookup_and_pick", |b| {
        b.iter(|| {
            let r = snap.lookup_id(black_box(vip), 6, 80)?;
            snap.pick(r, black_box(0x1234_5678_9abc_def0))
        })
    });
}

criterion_group!(benches, compile);
criterion_main!(benches);
