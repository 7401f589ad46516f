//! Software hand-off between workers (docs/design.md §6.2): a frame received by a worker that
//! does not own its flow travels to the owner over a lock-free ring, one per ordered pair of
//! workers (the receiving worker is its only producer, the owner its only consumer). A full ring
//! drops the frame (counted `handoff_full`), never waits.

use crate::dpdk::Mbuf;
use crate::runtime::hub::WorkerSlot;

/// The most frames a worker takes from one peer's ring per loop iteration (bounds the time one
/// busy peer can hold it away from its own queues).
pub const HANDOFF_DRAIN_MAX: usize = 4 * crate::wire::BURST;

/// Queues `m` (received on interface `in_port`) on `owner`'s ring from worker `from`; gives
/// `Err` when the ring is full (the frame is freed).
#[inline(always)]
pub(super) fn send(
    peers: &[WorkerSlot],
    owner: usize,
    from: usize,
    m: Mbuf,
    in_port: usize,
) -> Result<(), ()> {
    let Some(ring) = peers.get(owner).and_then(|p| p.handoff.get(from)) else {
        return Err(());
    };
    ring.push((m, in_port as u16)).map_err(drop)
}
