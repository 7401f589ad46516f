//! The capture tap of one worker: a bounded ring of fixed-size slots the worker copies matching
//! frames into while `vipmux capture` runs, and the control thread drains (docs/design.md §4.8).
//!
//! A [`CaptureRing`] owns every slot it will ever use, allocated when the capture is armed: the
//! slots circulate between two lock-free bounded queues, `free` and `full`. The worker (the only
//! producer) pops a free slot, copies up to the snap length into it and pushes it to `full`; the
//! control thread (the only consumer) pops full slots, reads them and pushes them back to
//! `free`. No allocation per frame; when no slot is free the frame is not copied and
//! [`CaptureRing::lost`] counts it.
//!
//! While no capture runs, a worker pays one relaxed load of [`CaptureTap::armed`] per received
//! burst; the copying code is out of line ([`tap_burst`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use crossbeam::queue::ArrayQueue;

use crate::dataplane::capture::{CaptureMatch, CapturedKind};
use crate::dataplane::Verdict;
use crate::dpdk::Mbuf;

/// Slots in one worker's capture ring.
pub const CAPTURE_RING_SLOTS: usize = 512;

/// Largest snap length a capture may ask for (bytes per slot).
pub const MAX_SNAPLEN: usize = 16 * 1024;

/// One captured frame (a ring slot).
#[derive(Debug)]
pub struct CaptureSlot {
    /// Ingress interface index.
    pub port: u16,
    /// What happened to the frame.
    pub kind: CapturedKind,
    /// Wall-clock time of the burst, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// Bytes copied into `data` (at most the snap length).
    pub len: u32,
    /// The copied bytes (snap length long; `len` valid).
    pub data: Box<[u8]>,
}

impl CaptureSlot {
    /// The copied bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// One worker's ring for one capture, with its filter and tallies.
#[derive(Debug)]
pub struct CaptureRing {
    /// Which frames to copy.
    pub filter: Arc<CaptureMatch>,
    /// The worker's index.
    pub worker: usize,
    free: ArrayQueue<Box<CaptureSlot>>,
    full: ArrayQueue<Box<CaptureSlot>>,
    /// Frames that matched the filter.
    pub matched: AtomicU64,
    /// Matching frames not copied because every slot was full.
    pub lost: AtomicU64,
}

impl CaptureRing {
    /// A ring of `slots` slots of `snaplen` bytes each (all allocated here).
    pub fn new(filter: Arc<CaptureMatch>, worker: usize, slots: usize, snaplen: usize) -> Self {
        let slots = slots.max(1);
        let free = ArrayQueue::new(slots);
        for _ in 0..slots {
            let _ = free.push(Box::new(CaptureSlot {
                port: 0,
                kind: CapturedKind::Forwarded,
                ts_ns: 0,
                orig_len: 0,
                len: 0,
                data: vec![0u8; snaplen.clamp(1, MAX_SNAPLEN)].into_boxed_slice(),
            }));
        }
        CaptureRing {
            filter,
            worker,
            free,
            full: ArrayQueue::new(slots),
            matched: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// Producer side: copies `frame` (up to the snap length) unless the ring is full.
    pub fn offer(&self, port: usize, kind: CapturedKind, ts_ns: u64, frame: &[u8]) {
        self.matched.fetch_add(1, Ordering::Relaxed);
        let Some(mut slot) = self.free.pop() else {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let n = frame.len().min(slot.data.len());
        slot.data[..n].copy_from_slice(&frame[..n]);
        slot.port = port as u16;
        slot.kind = kind;
        slot.ts_ns = ts_ns;
        slot.orig_len = frame.len() as u32;
        slot.len = n as u32;
        // Cannot fail: there are as many places in `full` as slots.
        let _ = self.full.push(slot);
    }

    /// Consumer side: hands every full slot to `f`, then returns it to the free list; how many.
    pub fn drain(&self, mut f: impl FnMut(usize, &CaptureSlot)) -> usize {
        let mut n = 0;
        while let Some(slot) = self.full.pop() {
            f(self.worker, &slot);
            let _ = self.free.push(slot);
            n += 1;
        }
        n
    }
}

/// A worker's capture switch: the flag it reads once per burst and the ring it copies into.
#[derive(Debug, Default)]
pub struct CaptureTap {
    /// Set while a capture is armed on this worker.
    pub armed: AtomicBool,
    /// The current capture's ring, if any.
    pub ring: ArcSwapOption<CaptureRing>,
}

impl CaptureTap {
    /// Installs `ring` and arms the worker.
    pub fn arm(&self, ring: Arc<CaptureRing>) {
        self.ring.store(Some(ring));
        self.armed.store(true, Ordering::Release);
    }

    /// Disarms the worker and returns its ring (the worker may still hold it for one burst).
    pub fn disarm(&self) -> Option<Arc<CaptureRing>> {
        self.armed.store(false, Ordering::Release);
        self.ring.swap(None)
    }
}

/// Copies the frames of a processed burst that the armed capture wants (out of line: called only
/// while a capture is armed).
#[cold]
#[inline(never)]
pub fn tap_burst(tap: &CaptureTap, in_port: usize, frames: &[Mbuf], verdicts: &[Verdict]) {
    let guard = tap.ring.load();
    let Some(ring) = guard.as_deref() else {
        return;
    };
    let mut ts_ns = 0;
    for (m, v) in frames.iter().zip(verdicts) {
        let kind = CapturedKind::of(v);
        if !ring.filter.kind_matches(kind) || !ring.filter.frame_matches(m.data()) {
            continue;
        }
        if ts_ns == 0 {
            ts_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        }
        ring.offer(in_port, kind, ts_ns, m.data());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::DropReason;

    #[test]
    fn ring_copies_up_to_snaplen_counts_losses_and_recycles_slots() {
        let ring = CaptureRing::new(Arc::new(CaptureMatch::all_drops()), 3, 2, 4);
        let kind = CapturedKind::Drop(DropReason::NoRule);
        ring.offer(1, kind, 7, &[1, 2, 3, 4, 5, 6]);
        ring.offer(0, kind, 8, &[9]);
        ring.offer(0, kind, 9, &[9]);
        assert_eq!(ring.lost.load(Ordering::Relaxed), 1);
        assert_eq!(ring.matched.load(Ordering::Relaxed), 3);
        let mut seen = Vec::new();
        let n = ring.drain(|w, s| seen.push((w, s.port, s.orig_len, s.bytes().to_vec(), s.ts_ns)));
        assert_eq!(n, 2);
        assert_eq!(seen[0], (3, 1, 6, vec![1, 2, 3, 4], 7));
        assert_eq!(seen[1], (3, 0, 1, vec![9], 8));
        // The slots came back: two more fit.
        ring.offer(0, kind, 10, &[1]);
        ring.offer(0, kind, 11, &[1]);
        assert_eq!(ring.lost.load(Ordering::Relaxed), 1);
        assert_eq!(ring.drain(|_, _| {}), 2);
    }

    #[test]
    fn tap_arms_and_disarms() {
        let tap = CaptureTap::default();
        assert!(!tap.armed.load(Ordering::Relaxed));
        tap.arm(Arc::new(CaptureRing::new(
            Arc::new(CaptureMatch::all_drops()),
            0,
            1,
            64,
        )));
        assert!(tap.armed.load(Ordering::Relaxed));
        assert!(tap.disarm().is_some());
        assert!(!tap.armed.load(Ordering::Relaxed));
        assert!(tap.disarm().is_none());
    }
}
