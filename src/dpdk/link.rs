//! Keeping the data path out of a port while its link is down: the burst gate every queue handle
//! passes, and the link watch that closes it, restarts a memif client and opens it again
//! (docs/design.md §5.1).
//!
//! DPDK 22.11's memif driver tears a connection down from the EAL interrupt thread when the peer
//! goes away, unmapping the rings a worker may be polling at that moment. On a memif port the
//! watch therefore holds the driver's teardown lock while the gate is open: the interrupt thread
//! stops at it, the watch sees the link go down, closes the gate, waits until no queue is inside a
//! burst and only then lets the teardown go on. A memif client does not reconnect by itself; the
//! watch restarts the device until the server answers again. Not a zero-copy client: DPDK 22.11's
//! driver closes the file descriptors of DPDK's own memory segments when a zero-copy connection
//! comes up, so a second connection would hand the server (and later close) whatever descriptors
//! carry those numbers by then; such a port stays down, said in the log, until vipmux restarts.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;

use super::port::{LinkStatus, Port};
use super::sys;

/// How often a memif client whose peer went away tries to connect again.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

/// Whether bursts may enter a device, and which queues are inside one.
///
/// A queue marks itself busy, then reads the gate; the watch closes the gate, then waits until
/// no queue is busy. Both sides use sequentially consistent accesses, so either the queue sees the
/// gate closed or the watch sees the queue busy.
#[derive(Debug)]
pub struct BurstGate {
    open: AtomicBool,
    /// Rx queues first, then tx queues.
    busy: Box<[CachePadded<AtomicBool>]>,
}

impl BurstGate {
    /// A gate, open, for `rx` rx queues and `tx` tx queues.
    pub fn new(rx: u16, tx: u16) -> BurstGate {
        BurstGate {
            open: AtomicBool::new(true),
            busy: (0..usize::from(rx) + usize::from(tx))
                .map(|_| CachePadded::new(AtomicBool::new(false)))
                .collect(),
        }
    }

    /// Enters a burst on slot `slot`; false (and nothing to leave) when the gate is closed.
    #[inline]
    pub fn enter(&self, slot: usize) -> bool {
        let Some(busy) = self.busy.get(slot) else {
            return false;
        };
        busy.store(true, Ordering::SeqCst);
        if self.open.load(Ordering::SeqCst) {
            return true;
        }
        busy.store(false, Ordering::Release);
        false
    }

    /// Leaves the burst `enter` let in.
    #[inline]
    pub fn leave(&self, slot: usize) {
        if let Some(busy) = self.busy.get(slot) {
            busy.store(false, Ordering::Release);
        }
    }

    /// Closes the gate and returns once no queue is inside a burst.
    pub fn close_and_drain(&self) {
        self.open.store(false, Ordering::SeqCst);
        for busy in self.busy.iter() {
            while busy.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
        }
    }

    /// Opens the gate.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Whether bursts may enter.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
}

/// The memif driver's teardown lock of one port (see the module doc).
#[derive(Debug)]
struct TeardownLock {
    lock: *mut c_void,
    held: bool,
}

// SAFETY: the pointer is the address of a spinlock in the driver's device data, which lives as long
// as the port; it is only passed to the shim's trylock/unlock from the thread owning the watch.
unsafe impl Send for TeardownLock {}

impl TeardownLock {
    fn try_take(&mut self) -> bool {
        if !self.held {
            // SAFETY: `lock` came from vipmux_memif_teardown_lock for a port that is still open.
            self.held = unsafe { sys::vipmux_teardown_lock_try(self.lock) } != 0;
        }
        self.held
    }

    fn release(&mut self) {
        if self.held {
            // SAFETY: as in `try_take`; this watch took the lock and still holds it.
            unsafe { sys::vipmux_teardown_lock_release(self.lock) };
            self.held = false;
        }
    }
}

/// A link transition the watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// The link went down (the gate is closed).
    Down,
    /// The link came back (the gate is open).
    Up,
}

/// Link transitions of one port, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounts {
    /// Whether the link is up now.
    pub up: bool,
    /// Times the link went down.
    pub downs: u64,
    /// Times it came back up.
    pub ups: u64,
}

/// The link supervision of one port, polled by the slow path.
#[derive(Debug)]
pub struct LinkWatch {
    lock: Option<TeardownLock>,
    /// A memif client that can connect again (not zero-copy).
    reconnects: bool,
    /// A zero-copy memif client (cannot connect again).
    zero_copy_client: bool,
    up: bool,
    next_reconnect: Option<Instant>,
    counts: LinkCounts,
}

impl LinkWatch {
    /// Starts watching `port`: on a memif port with a gate, takes the teardown lock (when the
    /// link is up); on other ports it only counts transitions.
    pub fn new(port: &Port) -> LinkWatch {
        let (mut client, mut zero_copy) = (0i32, 0i32);
        let lock = port.gate().and_then(|_| {
            // SAFETY: a valid port id and out pointers; the shim validates the layout it reads.
            let lock = unsafe {
                sys::vipmux_memif_teardown_lock(port.id().0, &mut client, &mut zero_copy)
            };
            if lock.is_null() {
                tracing::warn!(port = %port.name(), "memif: cannot hold the driver's teardown (not DPDK 22.11, or unexpected layout); a peer that exits may crash vipmux");
                None
            } else {
                Some(TeardownLock { lock, held: false })
            }
        });
        let up = link_up(port);
        let mut watch = LinkWatch {
            lock,
            reconnects: client == 1 && zero_copy == 0,
            zero_copy_client: client == 1 && zero_copy == 1,
            up: false,
            next_reconnect: None,
            counts: LinkCounts::default(),
        };
        if up && watch.open(port) {
            watch.up = true;
        } else if let Some(gate) = port.gate() {
            gate.close_and_drain();
        }
        watch.counts.up = watch.up;
        watch
    }

    /// What the watch has counted.
    pub fn counts(&self) -> LinkCounts {
        self.counts
    }

    /// Checks the link; closes or opens the gate and, on a memif client whose link is down,
    /// restarts the device every [`RECONNECT_INTERVAL`]. Returns the transition, if any.
    pub fn poll(&mut self, port: &Port, now: Instant) -> Option<LinkChange> {
        let up = link_up(port);
        if self.up && !up {
            if let Some(gate) = port.gate() {
                gate.close_and_drain();
            }
            if let Some(lock) = &mut self.lock {
                lock.release();
            }
            self.up = false;
            self.counts.downs += 1;
            self.counts.up = false;
            self.next_reconnect = Some(now + RECONNECT_INTERVAL);
            if self.zero_copy_client {
                tracing::warn!(port = %port.name(), "memif: a zero-copy client cannot connect again with this DPDK's driver; the port stays down until vipmux restarts (zero-copy=no reconnects)");
            }
            return Some(LinkChange::Down);
        }
        if !self.up && up && self.open(port) {
            self.up = true;
            self.next_reconnect = None;
            self.counts.ups += 1;
            self.counts.up = true;
            return Some(LinkChange::Up);
        }
        if !self.up && self.reconnects && self.next_reconnect.is_some_and(|t| now >= t) {
            self.next_reconnect = Some(now + RECONNECT_INTERVAL);
            port.restart_closed();
        }
        None
    }

    /// Takes the teardown lock (when there is one), checks the link again under it and opens the
    /// gate; false (gate still closed) when the lock is busy or the link went down meanwhile.
    fn open(&mut self, port: &Port) -> bool {
        let Some(gate) = port.gate() else {
            return true;
        };
        if let Some(lock) = &mut self.lock {
            if !lock.try_take() {
                return false;
            }
            if !link_up(port) {
                lock.release();
                return false;
            }
        }
        gate.open();
        true
    }

    /// Lets the driver's teardown proceed (before the port is stopped or closed).
    pub fn release(&mut self, port: &Port) {
        if let Some(gate) = port.gate() {
            gate.close_and_drain();
        }
        if let Some(lock) = &mut self.lock {
            lock.release();
        }
    }
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        if let Some(lock) = &mut self.lock {
            lock.release();
        }
    }
}

fn link_up(port: &Port) -> bool {
    port.link().map(|l: LinkStatus| l.up).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::BurstGate;

    #[test]
    fn a_closed_gate_lets_no_burst_in_and_an_open_one_does() {
        let gate = BurstGate::new(1, 1);
        assert!(gate.enter(0));
        gate.leave(0);
        gate.close_and_drain();
        assert!(!gate.is_open());
        assert!(!gate.enter(0));
        assert!(!gate.enter(1));
        gate.open();
        assert!(gate.enter(1));
        gate.leave(1);
        assert!(!gate.enter(2), "no such slot");
    }

    #[test]
    fn closing_waits_for_a_burst_inside() {
        let gate = std::sync::Arc::new(BurstGate::new(1, 0));
        assert!(gate.enter(0));
        let g = std::sync::Arc::clone(&gate);
        let closer = std::thread::spawn(move || g.close_and_drain());
        // The closer cannot return while slot 0 is busy; it has at least closed the gate once
        // the burst leaves.
        while gate.is_open() {
            std::hint::spin_loop();
        }
        assert!(!closer.is_finished());
        gate.leave(0);
        closer.join().unwrap();
        assert!(!gate.enter(0));
    }
}
