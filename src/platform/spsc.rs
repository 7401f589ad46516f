//! A bounded, lock-free single-producer single-consumer ring: the workers' hand-off queues
//! (docs/design.md §6.2), one per ordered pair of workers.
//!
//! [`spsc`] returns the two ends; each is `Send` but not `Clone`, so exactly one thread pushes and
//! one thread pops, which is what makes the plain loads and stores below sound. The producer
//! writes slots and makes them visible with one release store per [`SpscProducer::publish`]
//! (once per burst, not per item); the consumer reads what the last acquire load of the tail
//! shows and gives slots back with one release store per [`SpscConsumer::release`]. Positions
//! are free-running counters (wrapping), indexed by `position & mask`. No call waits: a full
//! ring refuses the item, an empty one returns `None`. Items left in the ring are dropped with
//! the last end.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A counter on a cache line of its own, so the producer's and the consumer's positions do not
/// share a line.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Padded(AtomicUsize);

/// The storage both ends share.
struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Next position the consumer reads (published by the consumer).
    head: Padded,
    /// Next position the producer writes (published by the producer).
    tail: Padded,
}

// SAFETY: the ring moves `T` values from the producer's thread to the consumer's; each slot is
// accessed by one end at a time, as the head and tail counters (release/acquire) hand it over.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above: the shared accesses are the two atomics; slot contents are only touched by
// the end that currently owns the slot.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let (head, tail) = (*self.head.0.get_mut(), *self.tail.0.get_mut());
        let mut i = head;
        while i != tail {
            // SAFETY: positions head..tail hold initialised items nobody read; both ends are
            // gone (`&mut self`), so each is dropped exactly once here.
            unsafe { (*self.slots[i & self.mask].get()).assume_init_drop() };
            i = i.wrapping_add(1);
        }
    }
}

/// The pushing end.
pub struct SpscProducer<T> {
    ring: Arc<Ring<T>>,
    /// Next position to write (published up to the last `publish`).
    tail: usize,
    /// The consumer's head as last read (the ring is at least this empty).
    head: usize,
}

/// The popping end.
pub struct SpscConsumer<T> {
    ring: Arc<Ring<T>>,
    /// Next position to read (released up to the last `release`).
    head: usize,
    /// The producer's tail as last read (at least this much is readable).
    tail: usize,
}

impl<T> std::fmt::Debug for SpscProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpscProducer")
            .field("tail", &self.tail)
            .finish()
    }
}

impl<T> std::fmt::Debug for SpscConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpscConsumer")
            .field("head", &self.head)
            .finish()
    }
}

/// A ring of `capacity` items (rounded up to a power of two, at least 2): its two ends.
pub fn spsc<T>(capacity: usize) -> (SpscProducer<T>, SpscConsumer<T>) {
    let n = capacity.max(2).next_power_of_two();
    let ring = Arc::new(Ring {
        slots: (0..n)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
        mask: n - 1,
        head: Padded::default(),
        tail: Padded::default(),
    });
    (
        SpscProducer {
            ring: Arc::clone(&ring),
            tail: 0,
            head: 0,
        },
        SpscConsumer {
            ring,
            head: 0,
            tail: 0,
        },
    )
}

impl<T> SpscProducer<T> {
    /// Writes `v` into the ring (visible to the consumer after the next [`publish`]); gives it
    /// back when the ring is full.
    ///
    /// [`publish`]: SpscProducer::publish
    #[inline]
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let cap = self.ring.mask + 1;
        if self.tail.wrapping_sub(self.head) == cap {
            self.head = self.ring.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head) == cap {
                return Err(v);
            }
        }
        let slot = &self.ring.slots[self.tail & self.ring.mask];
        // SAFETY: the slot is outside head..tail as the consumer last released it, so the
        // consumer does not read it; this end is the only writer.
        unsafe { (*slot.get()).write(v) };
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Makes every item pushed so far visible to the consumer (one release store).
    #[inline]
    pub fn publish(&mut self) {
        self.ring.tail.0.store(self.tail, Ordering::Release);
    }
}

impl<T> Drop for SpscProducer<T> {
    fn drop(&mut self) {
        self.publish();
    }
}

impl<T> SpscConsumer<T> {
    /// Takes the oldest published item, if any (its slot returns to the producer at the next
    /// [`release`]).
    ///
    /// [`release`]: SpscConsumer::release
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.tail {
            self.tail = self.ring.tail.0.load(Ordering::Acquire);
            if self.head == self.tail {
                return None;
            }
        }
        let slot = &self.ring.slots[self.head & self.ring.mask];
        // SAFETY: head < tail as published by the producer (acquire above), so the slot holds
        // an initialised item the producer no longer touches; it is read exactly once.
        let v = unsafe { (*slot.get()).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        Some(v)
    }

    /// Gives the slots of every item popped so far back to the producer (one release store).
    #[inline]
    pub fn release(&mut self) {
        self.ring.head.0.store(self.head, Ordering::Release);
    }

    /// True when nothing published is left to read (one acquire load when the cached view is
    /// empty).
    #[inline]
    pub fn is_empty(&mut self) -> bool {
        self.head == self.tail && {
            self.tail = self.ring.tail.0.load(Ordering::Acquire);
            self.head == self.tail
        }
    }
}

impl<T> Drop for SpscConsumer<T> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_once_published() {
        let (mut p, mut c) = spsc::<u32>(4);
        assert!(c.is_empty());
        for i in 0..4 {
            p.push(i).expect("room");
        }
        assert_eq!(p.push(9), Err(9), "full at capacity");
        assert_eq!(c.pop(), None, "nothing published yet");
        p.publish();
        assert_eq!(c.pop(), Some(0));
        assert_eq!(c.pop(), Some(1));
        assert_eq!(p.push(9), Err(9), "slots not released yet");
        c.release();
        p.push(4).expect("room after release");
        p.push(5).expect("room after release");
        p.publish();
        let rest: Vec<u32> = std::iter::from_fn(|| c.pop()).collect();
        assert_eq!(rest, vec![2, 3, 4, 5]);
        assert!(c.is_empty());
    }

    #[test]
    fn leftover_items_are_dropped_once() {
        let item = Arc::new(());
        {
            let (mut p, mut c) = spsc(8);
            for _ in 0..5 {
                p.push(Arc::clone(&item)).expect("room");
            }
            p.publish();
            drop(c.pop());
            c.release();
            assert_eq!(Arc::strong_count(&item), 5);
        }
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn two_threads_pass_a_million_items_in_order() {
        let (mut p, mut c) = spsc::<u64>(64);
        const N: u64 = 1_000_000;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                let mut pushed = false;
                while i < N && p.push(i).is_ok() {
                    i += 1;
                    pushed = true;
                }
                if pushed {
                    p.publish();
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut want = 0;
        while want < N {
            match c.pop() {
                Some(v) => {
                    assert_eq!(v, want);
                    want += 1;
                }
                None => {
                    c.release();
                    std::thread::yield_now();
                }
            }
        }
        t.join().expect("producer");
    }
}
