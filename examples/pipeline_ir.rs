//! A fixed amount of pipeline work, for instruction counts under callgrind (repeatable on a loaded
//! machine, unlike timings). Same configuration and frames as the `pipeline` bench.
//!
//! `pipeline_ir est FLOWS BURSTS [KIND]` runs BURSTS bursts of 32 established-flow ACKs over FLOWS
//! live flows (cycling through 64 K random frames); `pipeline_ir syn BURSTS [KIND]` runs BURSTS
//! bursts of 32 SYNs of new flows into a 1 M table; `pipeline_ir evict BURSTS [KIND]` the same into
//! that table once full of half-open flows (every insert evicts, as in a long SYN flood; the fill
//! is not measured). KIND is the rule kind (default `nat`; the others
//! are the memif bench's: 3tuple, 2tuple, weighted, floating, gue, inbound-nat, reset-idle, and
//! nat6: the NAT rule over IPv6 with 74-byte IPv6 frames, its IPv6 table as large as the IPv4
//! one). `pipeline_ir walk FLOWS BURSTS [KIND]` is `est` with every flow in turn (a template
//! patched per frame), so at 1 M flows each slot comes from memory as in the memif bench.
//! `pipeline_ir sweep FLOWS BURSTS [KIND]` is `est` with the worker's idle-expiry sweep
//! interleaved at the memif bench's pace (a step of 8 buckets every 8 bursts: a 2 M-slot table,
//! swept every 500 ms, at about 8.4 M packets per second; nothing expires).
//! `pipeline_ir first FLOWS [KIND]` opens FLOWS flows with their SYNs (not measured) and measures
//! each flow's first ACK once, FLOWS / 32 bursts: the packet that follows a new flow's insert.
//! It prints the on-CPU time per packet (meaningless under callgrind).
//! Count only the measured bursts with
//! `valgrind --tool=callgrind --toggle-collect='*measured*' target/release/examples/pipeline_ir est 1000 1000`
//! and divide the total instructions by BURSTS × 32.

use std::hint::black_box;

use vipmux::dataplane::{Pipeline, PipelineConfig, Verdict, View};
use vipmux::wire::{PacketBuf, TcpFlags, VecBuf};

#[path = "../benches/support/pipeline_world.rs"]
#[allow(dead_code)]
mod world;
use world::*;

/// The frames of one address family: flow `i`'s frame, and a frame turned into flow `i`'s.
trait Frames<const N: usize> {
    /// The frame of flow `i` with `flags`.
    fn frame(i: u32, flags: TcpFlags) -> [u8; N];
    /// Rewrites a frame of [`Frames::frame`] into one of flow `i`.
    fn patch(d: &mut [u8], i: u32);
}

/// IPv4 frames (every kind but `nat6`).
struct V4;

impl Frames<FRAME_LEN> for V4 {
    fn frame(i: u32, flags: TcpFlags) -> [u8; FRAME_LEN] {
        frame(i, flags)
    }
    #[inline(always)]
    fn patch(d: &mut [u8], i: u32) {
        patch_client(d, i)
    }
}

/// IPv6 frames (`nat6`).
struct V6;

impl Frames<FRAME_LEN6> for V6 {
    fn frame(i: u32, flags: TcpFlags) -> [u8; FRAME_LEN6] {
        frame6(i, flags)
    }
    #[inline(always)]
    fn patch(d: &mut [u8], i: u32) {
        patch_client6(d, i)
    }
}

/// Where the measured frames come from.
enum Source<const N: usize> {
    /// Cycle through pre-built frames.
    Pool(Vec<[u8; N]>),
    /// Patch a template with the next client address and port per frame (as the bench does),
    /// flow numbers counting up modulo the second field.
    Fresh([u8; N], u32),
}

/// The measured bursts (callgrind collects only inside this function).
#[inline(never)]
fn measured<const N: usize, F: Frames<N>>(
    p: &mut Pipeline,
    view: &View<'_>,
    src: &Source<N>,
    b: &mut [VecBuf],
    bursts: u32,
    sweep: bool,
) {
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let mut at = 0usize;
    let mut next = 0u32;
    let mut swept = 0usize;
    for _ in 0..bursts {
        match src {
            Source::Pool(pool) => {
                for (buf, f) in b.iter_mut().zip(&pool[at..at + BURST]) {
                    refill(buf, f);
                }
                at = (at + BURST) % pool.len();
            }
            Source::Fresh(t, flows) => {
                for buf in b.iter_mut() {
                    refill(buf, t);
                    F::patch(buf.data_mut(), next);
                    next += 1;
                    if next == *flows {
                        next = 0;
                    }
                }
            }
        }
        p.process(view, 0, b, &mut v, 1);
        black_box(&v);
        if sweep && next_sweep(&mut swept) {
            black_box(p.expire(view, 1, SWEEP_STEP, |_, _| {}));
        }
    }
}

/// Buckets per expiry step in `sweep` mode (the worker's smallest step).
const SWEEP_STEP: usize = 8;

/// Counts a burst; true every [`SWEEP_STEP`] bursts (one bucket per burst on average).
#[inline(always)]
fn next_sweep(bursts: &mut usize) -> bool {
    *bursts += 1;
    *bursts % SWEEP_STEP == 0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u32| -> u32 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d) };
    let mode = args.first().map(String::as_str).unwrap_or("est");
    let kind = args
        .get(if matches!(mode, "est" | "sweep" | "walk") {
            3
        } else {
            2
        })
        .map(String::as_str)
        .unwrap_or("nat");
    let Some(w) = World::of_kind(kind) else {
        eprintln!("unknown rule kind {kind}; known: {} nat6", KINDS.join(" "));
        std::process::exit(2);
    };
    if kind == "nat6" {
        run::<FRAME_LEN6, V6>(&w, mode, kind, &num);
    } else {
        run::<FRAME_LEN, V4>(&w, mode, kind, &num);
    }
}

/// Prepares the flows of `mode`, measures, and prints the summary.
fn run<const N: usize, F: Frames<N>>(
    w: &World,
    mode: &str,
    kind: &str,
    num: &dyn Fn(usize, u32) -> u32,
) {
    let view = w.view();
    let mut b = bufs();
    let (mut p, src, bursts) = if mode == "syn" || mode == "evict" {
        let bursts = num(1, 1000);
        // The recently-expired record the appliance gives a 1 M table (one record per two
        // entries): 4 MiB, so the record's buckets miss the cache as they do in production.
        let mut p = Pipeline::new(&PipelineConfig {
            flow_capacity: 1 << 20,
            recent_capacity: 1 << 19,
            flow_capacity6: (N == FRAME_LEN6).then_some(1 << 20),
        });
        if mode == "evict" {
            // Client numbers from 2^24 up (never those of the measured SYNs): 2 M SYNs into
            // 64 K buckets of 16 ways leave about one bucket in 1,000 with room.
            let t = F::frame(0, TcpFlags::SYN);
            feed(
                &mut p,
                &view,
                (0..(1u32 << 21)).map(|i| {
                    let mut f = t;
                    F::patch(&mut f, (1 << 24) | i);
                    f
                }),
            );
        }
        (
            p,
            Source::Fresh(F::frame(0, TcpFlags::SYN), 1 << 24),
            bursts,
        )
    } else {
        let flows = num(1, 1000);
        let first = mode == "first";
        let bursts = if first {
            (flows / BURST as u32).max(1)
        } else {
            num(2, 1000)
        };
        let mut p = Pipeline::new(&PipelineConfig {
            flow_capacity: (flows as usize * 3 / 2).max(4096),
            recent_capacity: 1024,
            flow_capacity6: (N == FRAME_LEN6).then_some((flows as usize * 3 / 2).max(4096)),
        });
        feed(
            &mut p,
            &view,
            (0..flows).map(|i| F::frame(i, TcpFlags::SYN)),
        );
        if !first {
            feed(
                &mut p,
                &view,
                (0..flows).map(|i| F::frame(i, TcpFlags::ACK)),
            );
        }
        let src = if mode == "walk" || first {
            // Every flow in turn: at 1 M flows each packet's slot comes from memory, as in the
            // memif bench (the pool's 64 K frames would keep their slots in the last-level cache).
            Source::Fresh(F::frame(0, TcpFlags::ACK), flows)
        } else {
            let mut s = 7u64;
            let pool = (0..(bursts as usize * BURST).min(1 << 16))
                .map(|_| F::frame((splitmix(&mut s) % u64::from(flows)) as u32, TcpFlags::ACK));
            Source::Pool(pool.collect())
        };
        (p, src, bursts)
    };
    let t0 = cpu_ns().unwrap_or(0);
    measured::<N, F>(&mut p, &view, &src, &mut b, bursts, mode == "sweep");
    let ns = (cpu_ns().unwrap_or(0) - t0) as f64 / (f64::from(bursts) * BURST as f64);
    eprintln!(
        "{mode} {kind}: {} packets measured, {} flows in the table, counters rx {} tx {}; {ns:.1} ns/packet on-CPU",
        bursts as usize * BURST,
        p.flow_count(),
        p.counters().rx,
        p.counters().tx
    );
    let c = p.counters();
    if c.tx != c.rx {
        eprintln!("drops {:?} exceptions {:?}", c.drops, c.exceptions);
    }
}
