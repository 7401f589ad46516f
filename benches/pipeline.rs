//! Pipeline benchmarks: 60-byte TCP frames (64 on the wire with the FCS) in bursts of 32 through
//! `Pipeline::process`, established-flow NAT forwarding at 1 K, 100 K, 1 M and 10 M live flows, and
//! the new-flow (SYN) path; established flows at 1 K under every other rule kind of the memif bench
//! (`pipeline_established_kind`: 3-tuple, 2-tuple, weighted, floating IP, GUE, inbound NAT,
//! reset-on-idle), and the members' established outbound (SNAT) connections at 1 K
//! (`pipeline_established_outbound`). Every iteration copies 32 pre-built frames (a rotating set of 64 K
//! frames over random flows) into the 32 buffers first: that 32 × 60-byte copy is part of the
//! measured cost, as a real rx ring's DMA would be. Time per iteration / 32 = time per packet.
//!
//! Run briefly: `cargo bench --bench pipeline -- --warm-up-time 1 --measurement-time 3`
//! (the 10 M case allocates about 1 GiB).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vipmux::dataplane::{Pipeline, PipelineConfig, Verdict};
use vipmux::wire::{PacketBuf, TcpFlags, VecBuf};

#[path = "support/pipeline_world.rs"]
mod world;
use world::*;

const FRAMES: usize = 1 << 16;

/// Runs `burst` `n` times and prints on-CPU ns per packet and the implied Mpps per core.
fn cpu_report(name: &str, n: u32, mut burst: impl FnMut()) {
    let (Some(t0), w0) = (cpu_ns(), std::time::Instant::now()) else {
        return;
    };
    for _ in 0..n {
        burst();
    }
    let Some(t1) = cpu_ns() else { return };
    let pkts = f64::from(n) * BURST as f64;
    let ns = (t1 - t0) as f64 / pkts;
    let wall = w0.elapsed().as_nanos() as f64 / pkts;
    eprintln!(
        "{name}: {ns:.1} ns/packet on-CPU ({:.2} Mpps per core); wall {wall:.1} ns/packet",
        1000.0 / ns
    );
}

/// A pipeline holding `flows` established flows, and 64 K frames of random ones.
fn prepare(w: &World, flows: u32) -> (Pipeline, Vec<[u8; FRAME_LEN]>) {
    let mut p = Pipeline::new(&PipelineConfig {
        flow_capacity: (flows as usize * 3 / 2).max(4096),
        recent_capacity: 1024,
        flow_capacity6: None,
    });
    feed(
        &mut p,
        &w.view(),
        (0..flows).map(|i| frame(i, TcpFlags::SYN)),
    );
    feed(
        &mut p,
        &w.view(),
        (0..flows).map(|i| frame(i, TcpFlags::ACK)),
    );
    // A few flows may be lost to full buckets while they are all half-open (untrusted); their
    // ACKs re-create them (missing_flow = rehash).
    assert!(
        p.flow_count() * 100 >= flows as usize * 99,
        "flows stored: {}",
        p.flow_count()
    );
    let mut s = 7u64;
    let pool: Vec<[u8; FRAME_LEN]> = (0..FRAMES)
        .map(|_| frame((splitmix(&mut s) % u64::from(flows)) as u32, TcpFlags::ACK))
        .collect();
    eprintln!(
        "{flows} flows: {} stored, table + recent {} MiB ({} bytes per live flow; {} bytes per slot)",
        p.flow_count(),
        p.memory_bytes() >> 20,
        p.memory_bytes() / flows as usize,
        vipmux::flow::table::BUCKET_BYTES / vipmux::flow::table::WAYS,
    );
    (p, pool)
}

fn established(c: &mut Criterion) {
    let w = World::new();
    let mut g = c.benchmark_group("pipeline_established_nat");
    g.throughput(Throughput::Elements(BURST as u64));
    for &flows in &[1_000u32, 100_000, 1_000_000, 10_000_000] {
        // Prepared lazily inside the closure, which criterion calls only when the id matches the
        // filter: `cargo bench --bench pipeline -- burst32/1000$` does not build the 10 M table.
        let mut state: Option<(Pipeline, Vec<[u8; FRAME_LEN]>)> = None;
        let mut b = bufs();
        let mut v = [Verdict::Forward { port: 0 }; BURST];
        let mut at = 0usize;
        g.bench_function(BenchmarkId::new("burst32", flows), |bench| {
            let (p, pool) = state.get_or_insert_with(|| prepare(&w, flows));
            bench.iter(|| {
                for (buf, f) in b.iter_mut().zip(&pool[at..at + BURST]) {
                    buf.data_mut().copy_from_slice(f);
                }
                at = (at + BURST) % FRAMES;
                p.process(&w.view(), 0, &mut b, &mut v, 1);
                black_box(&v);
            });
            let fwd = v
                .iter()
                .filter(|x| matches!(x, Verdict::Forward { .. }))
                .count();
            assert_eq!(fwd, BURST, "all forwarded: {v:?}");
        });
        // On-CPU time of the same loop, once, outside criterion (robust on a shared machine).
        if let Some((p, pool)) = state.as_mut() {
            cpu_report(&format!("established NAT, {flows} flows"), 200_000, || {
                for (buf, f) in b.iter_mut().zip(&pool[at..at + BURST]) {
                    buf.data_mut().copy_from_slice(f);
                }
                at = (at + BURST) % FRAMES;
                p.process(&w.view(), 0, &mut b, &mut v, 1);
                black_box(&v);
            });
        }
    }
    g.finish();
}

fn new_flows(c: &mut Criterion) {
    let w = World::new();
    let mut g = c.benchmark_group("pipeline_new_flow_syn");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut p = Pipeline::new(&PipelineConfig {
        flow_capacity: 1 << 20,
        recent_capacity: 1024,
        flow_capacity6: None,
    });
    let mut b = bufs();
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    // Frames are built per burst from a template: patch source address/port (checksums are not
    // needed for the decision path; the IPv4/TCP checksums stay as built for flow 0).
    let template = frame(0, TcpFlags::SYN);
    let mut next = 0u32;
    let mut one = |b: &mut [VecBuf], v: &mut [Verdict], p: &mut Pipeline| {
        for buf in b.iter_mut() {
            let d = buf.data_mut();
            d.copy_from_slice(&template);
            patch_client(d, next & 0x00ff_ffff);
            next = next.wrapping_add(1);
        }
        p.process(&w.view(), 0, b, v, 1);
        black_box(&v);
    };
    // Empty table: 16 K bursts (512 K new flows) fit without eviction.
    cpu_report(
        "new flows (SYN), table filling (no eviction)",
        16_384,
        || one(&mut b, &mut v, &mut p),
    );
    g.bench_function("burst32_syn_1M_table", |bench| {
        bench.iter(|| one(&mut b, &mut v, &mut p));
    });
    // Full table of half-open flows: every insert evicts the oldest untrusted entry of its
    // eviction class.
    if p.flow_count() >= p.flow_buckets() * 8 {
        cpu_report("new flows (SYN), full table (evicting)", 100_000, || {
            one(&mut b, &mut v, &mut p)
        });
    }
    eprintln!("new-flow bench: {} flows in the table", p.flow_count());
    g.finish();
}

/// Refills the 32 buffers from `pool` at `at` (moving on) and runs them through `p`.
#[inline(always)]
fn one_burst(
    p: &mut Pipeline,
    w: &World,
    pool: &[[u8; FRAME_LEN]],
    at: &mut usize,
    b: &mut [VecBuf],
    v: &mut [Verdict; BURST],
) {
    for (buf, f) in b.iter_mut().zip(&pool[*at..*at + BURST]) {
        refill(buf, f);
    }
    *at = (*at + BURST) % FRAMES;
    p.process(&w.view(), 0, b, v, 1);
    black_box(&v);
}

/// Established flows at 1 K under each rule kind other than NAT (the frames are the same: every
/// kind's rule or port range takes VIP:80).
fn established_kinds(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline_established_kind");
    g.throughput(Throughput::Elements(BURST as u64));
    for kind in KINDS.into_iter().filter(|k| *k != "nat") {
        let w = World::of_kind(kind).expect("known kind");
        let mut state: Option<(Pipeline, Vec<[u8; FRAME_LEN]>)> = None;
        let mut b = bufs();
        let mut v = [Verdict::Forward { port: 0 }; BURST];
        let mut at = 0usize;
        g.bench_function(BenchmarkId::new("burst32_1000", kind), |bench| {
            let (p, pool) = state.get_or_insert_with(|| prepare(&w, 1000));
            bench.iter(|| one_burst(p, &w, pool, &mut at, &mut b, &mut v));
            let fwd = v
                .iter()
                .filter(|x| matches!(x, Verdict::Forward { .. }))
                .count();
            assert_eq!(fwd, BURST, "{kind}: all forwarded: {v:?}");
        });
    }
    g.finish();
}

/// Established outbound (SNAT) connections of the members at 1 K, beside the inbound NAT point:
/// each member packet is translated to the frontend IP and its SNAT port.
fn established_outbound(c: &mut Criterion) {
    let w = World::with_config(&config_with_outbound());
    let mut g = c.benchmark_group("pipeline_established_outbound");
    g.throughput(Throughput::Elements(BURST as u64));
    let flows = 1000u32;
    let mut p = Pipeline::new(&PipelineConfig {
        flow_capacity: 4096,
        recent_capacity: 1024,
        flow_capacity6: None,
    });
    // Each connection's SYN, then its ACK: all established.
    for flags in [TcpFlags::SYN, TcpFlags::ACK] {
        feed(
            &mut p,
            &w.view(),
            (0..flows).map(|i| outbound_frame(i, flags)),
        );
    }
    assert_eq!(p.snat_translations().count(), flows as usize);
    let mut s = 7u64;
    let pool: Vec<[u8; FRAME_LEN]> = (0..FRAMES)
        .map(|_| outbound_frame((splitmix(&mut s) % u64::from(flows)) as u32, TcpFlags::ACK))
        .collect();
    let mut b = bufs();
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let mut at = 0usize;
    g.bench_function(BenchmarkId::new("burst32", flows), |bench| {
        bench.iter(|| one_burst(&mut p, &w, &pool, &mut at, &mut b, &mut v));
        let fwd = v
            .iter()
            .filter(|x| matches!(x, Verdict::Forward { .. }))
            .count();
        assert_eq!(fwd, BURST, "all forwarded: {v:?}");
    });
    cpu_report(
        "established outbound SNAT, 1000 connections",
        200_000,
        || one_burst(&mut p, &w, &pool, &mut at, &mut b, &mut v),
    );
    g.finish();
}

criterion_group!(
    benches,
    established,
    established_kinds,
    established_outbound,
    new_flows
);
criterion_main!(benches);
