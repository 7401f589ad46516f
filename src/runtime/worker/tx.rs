//! Transmit side of a worker: one out-burst per port, sent when full or at the end of a
//! dispatch, with back-pressure ([`EgressQueues`]).
//!
//! **Back-pressure.** Frames a tx queue refuses (its ring toward the peer is full: a memif peer
//! that is not draining, a NIC behind a paused link) are not freed: they stay in the port's
//! out-burst, which is the queue's pending buffer (at most [`BURST`](crate::wire::BURST) frames,
//! fixed, no allocation), and are sent first at the next loop iteration ([`EgressQueues::retry`]).
//! While any queue holds refused frames the worker receives nothing (rx queues, hand-off rings,
//! the slow path's injected frames, expiry RSTs): any received frame may go to any port, so
//! receiving is the only way to add to a blocked queue, and not receiving is what pushes back on
//! the senders (a memif peer finds its ring toward vipmux full, a NIC's rx ring fills and counts
//! `imissed`). Under that rule the pending buffer of a port never holds more than one dispatch's
//! frames, so it never overflows while forwarding.
//!
//! **Bound.** A queue may hold refused frames for at most [`TX_BLOCKED_MAX`] from its first
//! refusal (time from the loop's time-stamp-counter clock); then they are freed and counted
//! `tx_full`, and the queue **sheds**: what it refuses is freed at once (counted `tx_full`, the
//! behaviour without back-pressure) until a send is accepted whole. A queue whose port's link is
//! down (the burst gate closed, see [`crate::dpdk::link::BurstGate`]) frees its pending frames at once
//! and sheds likewise. So a dead or stuck peer holds the worker up at most once per
//! [`TX_BLOCKED_MAX`], and no mbuf stays behind.

use std::time::Duration;

use crate::dataplane::Verdict;
use crate::dpdk::{Burst, Mbuf, TxQueue};

/// How long a tx queue may hold frames it refused before they are freed (`tx_full`).
///
/// Longer than a scheduler time slice on a loaded host (a memif peer sharing a core is
/// descheduled for a few ms at a time, and while it is descheduled it sends nothing either, so
/// waiting costs nothing), short enough that a stuck peer holds the other ports up only briefly:
/// their rx rings (512 to 1024 slots) fill within about a millisecond at line rate either way.
/// Blocked iterations receive nothing, so they are not "busy" iterations: the bound does not
/// show as a stall in `max_busy_iteration_ns`.
pub const TX_BLOCKED_MAX: Duration = Duration::from_millis(10);

/// How often and how long tx queues held refused frames (the back-pressure tallies).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TxBlockedTally {
    /// Times a queue refused frames and kept them (each back-pressure episode once).
    pub episodes: u64,
    /// Nanoseconds queues held refused frames (summed over queues), up to the retry that sent
    /// them or the drop at the bound.
    pub ns: u64,
}

/// One port's back-pressure state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PortState {
    /// Start of the current episode (the first refusal), while the out-burst holds refused
    /// frames.
    since: Option<u64>,
    /// Refused frames are freed at once (after the bound or a link down) until a send is
    /// accepted whole.
    shedding: bool,
}

/// What to do with the frames a queue just refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Keep them; a new episode starts now.
    Start,
    /// Keep them; the episode goes on.
    Hold,
    /// Free them (counted `tx_full`).
    Drop,
}

/// The decision for refused frames: shedding or link down drops at once, else they are held
/// until `bound_ns` after the episode started.
pub(super) fn on_refusal(
    since: Option<u64>,
    shedding: bool,
    link_closed: bool,
    now_ns: u64,
    bound_ns: u64,
) -> Refusal {
    if shedding || link_closed {
        return Refusal::Drop;
    }
    match since {
        None => Refusal::Start,
        Some(s) if now_ns.saturating_sub(s) < bound_ns => Refusal::Hold,
        Some(_) => Refusal::Drop,
    }
}

/// A worker's out-bursts, one per port, and their back-pressure state (see the module doc).
///
/// Every method that sends returns the frames it freed because a queue refused them (after the
/// bound, on a link down or while shedding): the caller counts them `tx_full`.
#[derive(Debug)]
pub struct EgressQueues {
    outs: Box<[Burst]>,
    state: Box<[PortState]>,
    /// Ports whose out-burst holds refused frames.
    blocked: usize,
    /// The current loop iteration's time.
    now_ns: u64,
    bound_ns: u64,
    tally: TxBlockedTally,
}

impl EgressQueues {
    /// Empty out-bursts for `ports` ports; refused frames are held up to `bound`.
    pub fn new(ports: usize, bound: Duration) -> EgressQueues {
        EgressQueues {
            outs: (0..ports).map(|_| Burst::new()).collect(),
            state: vec![PortState::default(); ports].into_boxed_slice(),
            blocked: 0,
            now_ns: 0,
            bound_ns: bound.as_nanos() as u64,
            tally: TxBlockedTally::default(),
        }
    }

    /// True while some queue holds refused frames (the worker then receives nothing).
    #[inline(always)]
    pub fn is_blocked(&self) -> bool {
        self.blocked > 0
    }

    /// Frames waiting on `port` (refused ones, or not sent yet within a dispatch).
    pub fn pending(&self, port: usize) -> usize {
        self.outs.get(port).map_or(0, Burst::len)
    }

    /// The back-pressure tallies so far.
    pub fn tally(&self) -> TxBlockedTally {
        self.tally
    }

    /// Starts a loop iteration at `now_ns`: sends again what the queues refused before, freeing
    /// it when the bound passed or the link is down; returns the frames freed.
    #[inline(always)]
    pub fn retry(&mut self, tx: &mut [TxQueue<'_>], now_ns: u64) -> usize {
        self.now_ns = now_ns;
        if self.blocked == 0 {
            return 0;
        }
        self.flush(tx)
    }

    /// Queues `m` on `port`'s out-burst, sending the burst first when it is full; returns the
    /// frames freed. `m` itself is freed (and counted) only when the burst stays full (its queue
    /// refused a whole burst in this call); an unknown port frees `m` uncounted.
    #[inline]
    pub fn push(&mut self, tx: &mut [TxQueue<'_>], port: usize, m: Mbuf) -> usize {
        let Some(out) = self.outs.get_mut(port) else {
            return 0;
        };
        let Err(m) = out.push(m) else {
            return 0;
        };
        let freed = self.send(tx, port);
        match self.outs[port].push(m) {
            Ok(()) => freed,
            Err(m) => {
                drop(m);
                freed + 1
            }
        }
    }

    /// Sends every out-burst that holds frames; returns the frames freed.
    #[inline]
    pub fn flush(&mut self, tx: &mut [TxQueue<'_>]) -> usize {
        let mut freed = 0;
        for port in 0..self.outs.len() {
            if !self.outs[port].is_empty() {
                freed += self.send(tx, port);
            }
        }
        freed
    }

    /// Sends `burst` as it is on `port` when that port's out-burst is empty (what the queue
    /// refuses becomes the out-burst); `None`, untouched, otherwise.
    #[inline(always)]
    pub fn send_whole(
        &mut self,
        tx: &mut [TxQueue<'_>],
        port: usize,
        burst: &mut Burst,
    ) -> Option<usize> {
        let (Some(q), Some(out)) = (tx.get_mut(port), self.outs.get_mut(port)) else {
            return None;
        };
        if !out.is_empty() {
            return None;
        }
        q.tx_burst_keep(burst);
        if burst.is_empty() && !self.state[port].shedding {
            return Some(0);
        }
        std::mem::swap(burst, out);
        Some(self.settle(q, port))
    }

    /// Sends `port`'s out-burst; returns the frames freed.
    #[inline]
    fn send(&mut self, tx: &mut [TxQueue<'_>], port: usize) -> usize {
        let Some(q) = tx.get_mut(port) else {
            // No queue: nothing can be refused, so no episode is open (ended all the same, so
            // `blocked` holds whatever opened one).
            let n = self.outs[port].len();
            self.outs[port].clear();
            self.end_episode(port);
            self.check_blocked();
            return n;
        };
        q.tx_burst_keep(&mut self.outs[port]);
        self.settle(q, port)
    }

    /// After a send on `port`: ends the episode when the out-burst emptied, else keeps or frees
    /// what stayed; returns the frames freed.
    fn settle(&mut self, q: &TxQueue<'_>, port: usize) -> usize {
        let now = self.now_ns;
        let freed = if self.outs[port].is_empty() {
            self.state[port].shedding = false;
            self.end_episode(port);
            0
        } else {
            let st = self.state[port];
            match on_refusal(st.since, st.shedding, q.link_closed(), now, self.bound_ns) {
                Refusal::Start => {
                    self.state[port].since = Some(now);
                    self.blocked += 1;
                    self.tally.episodes += 1;
                    0
                }
                Refusal::Hold => 0,
                Refusal::Drop => {
                    self.end_episode(port);
                    self.state[port].shedding = true;
                    let n = self.outs[port].len();
                    self.outs[port].clear();
                    n
                }
            }
        };
        self.check_blocked();
        freed
    }

    /// Ends `port`'s back-pressure episode, if one is open: the only place `blocked` falls.
    #[inline(always)]
    fn end_episode(&mut self, port: usize) {
        if let Some(s) = self.state[port].since.take() {
            self.blocked -= 1;
            self.tally.ns += self.now_ns.saturating_sub(s);
        }
    }

    /// Debug builds: `blocked` counts exactly the ports in an episode, and each of those holds
    /// the frames it refused.
    #[inline(always)]
    fn check_blocked(&self) {
        debug_assert_eq!(
            self.blocked,
            self.state.iter().filter(|s| s.since.is_some()).count()
        );
        debug_assert!(self
            .state
            .iter()
            .zip(self.outs.iter())
            .all(|(s, out)| s.since.is_none() || !out.is_empty()));
    }
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
    use super::{on_refusal, one_egress, Refusal};
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

    #[test]
    fn refused_frames_are_held_until_the_bound_unless_shedding_or_link_down() {
        const BOUND: u64 = 10;
        // A first refusal starts an episode; later ones hold until the bound, then drop.
        assert_eq!(on_refusal(None, false, false, 100, BOUND), Refusal::Start);
        assert_eq!(
            on_refusal(Some(100), false, false, 109, BOUND),
            Refusal::Hold
        );
        assert_eq!(
            on_refusal(Some(100), false, false, 110, BOUND),
            Refusal::Drop
        );
        // A link down frees at once, in or out of an episode.
        assert_eq!(on_refusal(None, false, true, 100, BOUND), Refusal::Drop);
        assert_eq!(
            on_refusal(Some(100), false, true, 101, BOUND),
            Refusal::Drop
        );
        // Shedding frees at once.
        assert_eq!(on_refusal(None, true, false, 100, BOUND), Refusal::Drop);
        // A clock that went backwards (another core's counter) holds.
        assert_eq!(
            on_refusal(Some(100), false, false, 90, BOUND),
            Refusal::Hold
        );
    }
}
