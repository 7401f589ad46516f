//! Snapshot compile time for 1,000 frontends and 10,000 members (one pool of 10 per frontend,
//! one load-balancing rule each), the per-packet rule lookup, and the latency of a whole reload
//! (read and validate the file, compile against the running snapshot, swap it in) for 1,000
//! frontends × 10 members and for one pool of 10,000 members.

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

/// One reload as the slow path does it: the file read and validated, compiled with the running
/// snapshot as previous, swapped in (the old snapshot dropped here, as its last reader would).
fn reload_once(path: &std::path::Path, health: &Health, running: &arc_swap::ArcSwap<Snapshot>) {
    let config = Config::load(path).unwrap_or_else(|e| panic!("{e}"));
    let prev = running.load_full();
    let next = Snapshot::compile_with_previous(&config, health, Some(&prev));
    drop(prev);
    drop(running.swap(std::sync::Arc::new(next)));
}

fn reload(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("vipmux-bench-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut g = c.benchmark_group("reload");
    g.sample_size(10);
    for (name, frontends, per_pool) in [
        ("reload_1000_frontends_x_10_members", 1000, 10),
        ("reload_one_pool_of_10000_members", 1, 10_000),
    ] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, big_config(frontends, per_pool))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let health = Health::all_up(&config);
        let running = arc_swap::ArcSwap::from_pointee(Snapshot::compile(&config, &health));
        g.bench_function(name, |b| b.iter(|| reload_once(&path, &health, &running)));
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, compile, reload);
criterion_main!(benches);
