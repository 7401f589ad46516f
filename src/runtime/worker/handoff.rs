//! Software hand-off between workers (docs/design.md §6.2): a frame received by a worker that
//! does not own its flow travels to the owner over a lock-free ring, one per ordered pair of
//! workers (the receiving worker is its only producer, the owner its only consumer). A full ring
//! drops the frame (counted `handoff_full`), never waits.

use crate::dpdk::Mbuf;
use crate::platform::SpscProducer;
use crate::runtime::hub::HandoffItem;

/// The most frames a worker takes from one peer's ring per loop iteration (bounds the time one
/// busy peer can hold it away from its own queues).
pub const HANDOFF_DRAIN_MAX: usize = 4 * crate::wire::BURST;

/// Queues `m` (received on interface `in_port`) on the ring to worker `owner` (visible to it
/// once the ring is published); gives `Err` when the ring is full (the frame is freed).
#[inline(always)]
pub(super) fn send(
    to: &mut [Option<SpscProducer<HandoffItem>>],
    owner: usize,
    m: Mbuf,
    in_port: usize,
) -> Result<(), ()> {
    let Some(Some(ring)) = to.get_mut(owner) else {
        return Err(());
    };
    ring.push((m, in_port as u16)).map_err(drop)
}

/// Publishes the rings whose bit is set in `dirty` (bit `i`: the ring to worker `i`).
#[inline(always)]
pub(super) fn publish(to: &mut [Option<SpscProducer<HandoffItem>>], mut dirty: u128) {
    while dirty != 0 {
        let i = dirty.trailing_zeros() as usize;
        dirty &= dirty - 1;
        if let Some(Some(ring)) = to.get_mut(i) {
            ring.publish();
        }
    }
}
