//! Transmit side of a worker: one pending out-burst per port, sent when full or at the end of a
//! dispatch.

use crate::dataplane::Verdict;
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

/// The port every verdict forwards to, when they all forward to the same one (a burst that can
/// be sent as it is).
#[inline(always)]
pub(super) fn one_egress(verdicts: &[Verdict]) -> Option<usize> {
    let Some(Verdict::Forward { port }) = verdicts.first() else {
        return None;
    };
    let port = *port;
    verdicts
        .iter()
        .all(|v| matches!(v, Verdict::Forward { port: p } if *p == port))
        .then_some(port)
}

#[cfg(test)]
mod tests {
    use super::one_egress;
    use crate::dataplane::{DropReason, Exception, Verdict};

    #[test]
    fn one_egress_only_when_every_frame_forwards_to_the_same_port() {
        let f = |port| Verdict::Forward { port };
        assert_eq!(one_egress(&[]), None);
        assert_eq!(one_egress(&[f(0)]), Some(0));
        assert_eq!(one_egress(&[f(1), f(1), f(1)]), Some(1));
        assert_eq!(one_egress(&[f(1), f(0), f(1)]), None);
        assert_eq!(
            one_egress(&[f(0), Verdict::Drop(DropReason::BadHeader)]),
            None
        );
        assert_eq!(
            one_egress(&[Verdict::ToSlowPath(Exception::Arp), f(0)]),
            None
        );
    }
}
