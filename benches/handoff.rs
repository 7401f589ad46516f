//! The cost of a handed-off packet: `H` in the README's many-workers cost model.
//!
//! The same established NAT flows (1 K flows, 60-byte frames, bursts of 32) are handled twice:
//! - **direct**: one thread fills a burst (the rx copy), computes each frame's owner, as every
//!   worker of a multi-worker appliance does, and runs the pipeline on it;
//! - **handed off**: a receiving thread fills the burst, computes the owners and pushes every buffer
//!   into a hand-off ring; the owning thread pops them, runs the pipeline and gives the buffers back
//!   through a second ring (as an mbuf returns to its pool after transmission).
//!
//! Each thread counts time-stamp counter ticks around each pass of busy work only (a thread waiting
//! for its ring counts nothing, as the workers' busy cycles do) and takes the median pass, so the
//! cost of a handed-off packet is `H = (receiver + owner) − direct` per packet. It includes the ring push and pop, the buffer's
//! return and the frame's cache lines moving from the receiver's core to the owner's.
//! The two threads need two cores of their own: on a machine with other load the figure is noisy.
//!
//! Run: `cargo bench --bench handoff` (prints one `handoff:` line; a few seconds). Arguments
//! criterion would take are ignored, so `scripts/bench.sh` runs it with the criterion benches.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

use vipmux::balance::Reta;
use vipmux::dataplane::owner::frame_owner;
use vipmux::dataplane::{Pipeline, PipelineConfig, Verdict};
use vipmux::platform::tsc::rdtsc;
use vipmux::platform::{spsc, SpscConsumer, SpscProducer};
use vipmux::wire::{PacketBuf, TcpFlags, VecBuf};

#[path = "support/pipeline_world.rs"]
#[allow(dead_code)]
mod world;
use world::*;

/// Established flows in the table.
const FLOWS: u32 = 1000;
/// Bursts per measurement (6.4 M packets).
const BURSTS: usize = 200_000;
/// Frame buffers circulating between the two threads.
const POOL: usize = 1024;
/// Hand-off ring size: at least `POOL`, so a push never finds the ring full.
const RING: usize = 2048;
/// Pre-built frames of random flows.
const FRAMES: usize = 1 << 14;

/// Ticks per packet of each busy pass of one thread, and the packets of all passes.
struct Busy {
    per_packet: Vec<f64>,
    packets: u64,
}

impl Busy {
    fn new() -> Busy {
        Busy {
            per_packet: Vec::with_capacity(2 * BURSTS),
            packets: 0,
        }
    }

    /// Records a pass of `ticks` over `n` packets.
    fn add(&mut self, ticks: u64, n: usize) {
        self.per_packet.push(ticks as f64 / n.max(1) as f64);
        self.packets += n as u64;
    }

    /// The median pass's ticks per packet: a pass during which the thread lost its core to
    /// another process (the counter runs on) is an outlier the median ignores.
    fn per_packet(&mut self) -> f64 {
        self.per_packet.sort_by(f64::total_cmp);
        self.per_packet
            .get(self.per_packet.len() / 2)
            .copied()
            .unwrap_or(0.0)
    }
}

/// A pipeline holding [`FLOWS`] established flows.
fn established(w: &World) -> Pipeline {
    let mut p = Pipeline::new(&PipelineConfig {
        flow_capacity: 4096,
        recent_capacity: 1024,
        flow_capacity6: None,
    });
    feed(
        &mut p,
        &w.view(),
        (0..FLOWS).map(|i| frame(i, TcpFlags::SYN)),
    );
    feed(
        &mut p,
        &w.view(),
        (0..FLOWS).map(|i| frame(i, TcpFlags::ACK)),
    );
    p
}

/// ACK frames of random established flows.
fn frames() -> Vec<[u8; FRAME_LEN]> {
    let mut s = 11u64;
    (0..FRAMES)
        .map(|_| frame((splitmix(&mut s) % u64::from(FLOWS)) as u32, TcpFlags::ACK))
        .collect()
}

/// The owner of `buf`'s frame among two workers (0 when it has none), summed so it is not
/// optimised away.
#[inline(always)]
fn owner_of(buf: &VecBuf, w: &World, reta: &Reta) -> usize {
    frame_owner(buf.data(), &w.view(), reta).unwrap_or(0)
}

/// Every burst filled, owned and processed on one thread.
fn direct(w: &World, frames: &[[u8; FRAME_LEN]]) -> Busy {
    let mut p = established(w);
    let reta = Reta::new(2);
    let mut b = bufs();
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let (mut busy, mut owners) = (Busy::new(), 0usize);
    for i in 0..BURSTS {
        let at = (i * BURST) % FRAMES;
        let t0 = rdtsc();
        for (buf, f) in b.iter_mut().zip(&frames[at..at + BURST]) {
            refill(buf, f);
            owners += owner_of(buf, w, &reta);
        }
        p.process(&w.view(), 0, &mut b, &mut v, 1);
        busy.add(rdtsc() - t0, BURST);
        black_box(&v);
    }
    black_box(owners);
    busy
}

/// The owning thread: pops what the receiver handed over, processes it in bursts and returns the
/// buffers, until `total` packets went through.
fn owner_loop(
    w: &World,
    start: &Barrier,
    from_receiver: &mut SpscConsumer<VecBuf>,
    back: &mut SpscProducer<VecBuf>,
    total: u64,
) -> Busy {
    let mut p = established(w);
    let mut v = [Verdict::Forward { port: 0 }; BURST];
    let mut burst: Vec<VecBuf> = Vec::with_capacity(BURST);
    let mut busy = Busy::new();
    start.wait();
    while busy.packets < total {
        if from_receiver.is_empty() {
            std::hint::spin_loop();
            continue;
        }
        let t0 = rdtsc();
        while burst.len() < BURST {
            match from_receiver.pop() {
                Some(b) => burst.push(b),
                None => break,
            }
        }
        from_receiver.release();
        let n = burst.len();
        p.process(&w.view(), 0, &mut burst, &mut v[..n], 1);
        for b in burst.drain(..) {
            // The ring holds the whole pool: it cannot be full.
            let _ = back.push(b);
        }
        back.publish();
        busy.add(rdtsc() - t0, n);
        black_box(&v);
    }
    busy
}

/// The receiving thread: fills bursts from the free buffers, computes each owner and hands every
/// frame to the owning thread.
fn receiver_loop(
    w: &World,
    frames: &[[u8; FRAME_LEN]],
    start: &Barrier,
    to_owner: &mut SpscProducer<VecBuf>,
    returned: &mut SpscConsumer<VecBuf>,
) -> Busy {
    let reta = Reta::new(2);
    let mut free: Vec<VecBuf> = (0..POOL)
        .map(|_| VecBuf::with_room(HEADROOM, &[0u8; FRAME_LEN], 0))
        .collect();
    let (mut busy, mut owners) = (Busy::new(), 0usize);
    start.wait();
    for i in 0..BURSTS {
        // Take the returned buffers back; a pass that finds too few is waiting, not work.
        let t0 = loop {
            let t = rdtsc();
            while let Some(b) = returned.pop() {
                free.push(b);
            }
            returned.release();
            if free.len() >= BURST {
                break t;
            }
            std::hint::spin_loop();
        };
        let at = (i * BURST) % FRAMES;
        for f in &frames[at..at + BURST] {
            let Some(mut buf) = free.pop() else { break };
            refill(&mut buf, f);
            owners += owner_of(&buf, w, &reta);
            if let Err(b) = to_owner.push(buf) {
                free.push(b);
            }
        }
        to_owner.publish();
        busy.add(rdtsc() - t0, BURST);
    }
    black_box(owners);
    busy
}

/// Every frame handed from a receiving thread to an owning thread: (receiver, owner).
fn handed_off(w: &World, frames: &[[u8; FRAME_LEN]]) -> (Busy, Busy) {
    let (mut to_owner, mut from_receiver) = spsc::<VecBuf>(RING);
    let (mut back, mut returned) = spsc::<VecBuf>(RING);
    let start = Barrier::new(2);
    let total = (BURSTS * BURST) as u64;
    std::thread::scope(|s| {
        let owner = s.spawn(|| owner_loop(w, &start, &mut from_receiver, &mut back, total));
        let receiver = receiver_loop(w, frames, &start, &mut to_owner, &mut returned);
        (receiver, owner.join().expect("owner thread"))
    })
}

/// Time-stamp counter ticks per nanosecond, measured over 100 ms.
fn ticks_per_ns() -> f64 {
    let (t0, c0) = (Instant::now(), rdtsc());
    while t0.elapsed().as_millis() < 100 {
        std::hint::spin_loop();
    }
    (rdtsc() - c0) as f64 / t0.elapsed().as_nanos() as f64
}

fn main() {
    let w = World::new();
    let frames = frames();
    let ghz = ticks_per_ns();
    // Warm up both paths once, then measure.
    let _ = direct(&w, &frames);
    let mut d = direct(&w, &frames);
    let (mut r, mut o) = handed_off(&w, &frames);
    let (dc, rc, oc) = (d.per_packet(), r.per_packet(), o.per_packet());
    let h = rc + oc - dc;
    println!(
        "handoff: direct {dc:.1} cycles/packet; handed off: receiver {rc:.1} + owner {oc:.1} = \
         {:.1}; H = {h:.1} cycles ({:.1} ns) per handed-off packet; tsc {ghz:.2} GHz",
        rc + oc,
        h / ghz
    );
}
