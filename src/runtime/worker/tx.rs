//! Transmit side of a worker: one pending out-burst per port, sent when full or at the end of a
//! dispatch.

use crate::dpdk::{Burst, Mbuf, TxQueue};

/// Queues `m` on `port`'s pending burst, sending the burst first when it is full; returns the
/// frames the device refused (freed and counted by the queue). An unknown port frees `m`.
#[inline]
pub(super) fn push_or_flush(
    outs: &mut [Burst],
    tx: &mut [TxQueue<'_>],
    port: usize,
    m: Mbuf,
) -> usize {
    let (Some(out), Some(q)) = (outs.get_mut(port), tx.get_mut(port)) else {
        return 0;
    };
    match out.push(m) {
        Ok(()) => 0,
        Err(m) => {
            let unsent = q.tx_burst(out).unsent;
            let _ = out.push(m);
            unsent
        }
    }
}

/// Sends every pending burst; returns the frames the devices refused.
#[inline]
pub(super) fn flush_all(outs: &mut [Burst], tx: &mut [TxQueue<'_>]) -> usize {
    let mut unsent = 0;
    for (out, q) in outs.iter_mut().zip(tx.iter_mut()) {
        if !out.is_empty() {
            unsent += q.tx_burst(out).unsent;
        }
    }
    unsent
}
