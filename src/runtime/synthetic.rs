//! Data path availability (`VipAvailability`, docs/design.md §3.9): the slow path's synthetic
//! connection to every rule's frontend, run by every worker.
//!
//! Each round (every [`SYNTHETIC_INTERVAL`]) the slow path reads the answers to the previous
//! round, publishes per rule whether every worker would have forwarded it ([`VipAvailability`]),
//! then builds one frame per rule ([`synthetic_frame`]) into mbufs of the packet pool and queues
//! a copy on every worker's [`SyntheticQueues::input`]. A worker takes them from its loop (one
//! emptiness check per iteration otherwise), runs them through a pipeline of its own — the
//! workers' code on real mbufs, against the live snapshot, neighbour map and ports, but with a
//! flow table and counters apart, so members and the counters `diagnose` reads see nothing — and
//! answers with the verdict instead of transmitting. A worker that stalls answers nothing, and its
//! rules read unavailable at the next round.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;

use crate::dataplane::synthetic::{synthetic_frame, SYNTHETIC_FRAME_MAX};
use crate::dataplane::View;
use crate::dpdk::{Mbuf, Mempool};

/// How often a round of synthetic connections starts (and the previous one is judged).
pub const SYNTHETIC_INTERVAL: Duration = Duration::from_secs(1);

/// Synthetic frames (or answers) one worker may have queued; more are dropped (a stalled worker
/// holds at most this many mbufs).
pub const SYNTHETIC_QUEUE_DEPTH: usize = 256;

/// One synthetic frame for a worker.
#[derive(Debug)]
pub struct SyntheticItem {
    /// The frame.
    pub frame: Mbuf,
    /// The port it arrives on.
    pub port: usize,
    /// The rule's index in the snapshot the frame was built from.
    pub rule: u32,
    /// The round.
    pub round: u32,
}

/// A worker's answer to one synthetic frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticAnswer {
    /// The rule's index.
    pub rule: u32,
    /// The round.
    pub round: u32,
    /// The pipeline's verdict was `Forward`.
    pub forwarded: bool,
}

/// One worker's synthetic-frame mailbox (slow path -> worker, and back).
#[derive(Debug)]
pub struct SyntheticQueues {
    /// Frames to run.
    pub input: ArrayQueue<SyntheticItem>,
    /// Verdicts.
    pub answers: ArrayQueue<SyntheticAnswer>,
}

impl Default for SyntheticQueues {
    fn default() -> Self {
        SyntheticQueues {
            input: ArrayQueue::new(SYNTHETIC_QUEUE_DEPTH),
            answers: ArrayQueue::new(SYNTHETIC_QUEUE_DEPTH),
        }
    }
}

/// The latest judged round: per rule name, whether every worker forwarded its synthetic
/// connection.
#[derive(Debug, Default)]
pub struct VipAvailability(Mutex<HashMap<String, bool>>);

impl VipAvailability {
    /// Whether rule `name` was available in the latest judged round (false before the first).
    pub fn get(&self, name: &str) -> bool {
        match self.0.lock() {
            Ok(m) => m.get(name).copied().unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Replaces the published round (rule name -> available).
    pub fn publish(&self, judged: HashMap<String, bool>) {
        match self.0.lock() {
            Ok(mut m) => *m = judged,
            Err(p) => *p.into_inner() = judged,
        }
    }
}

/// The round in flight: which rules it probes and how many workers forwarded each.
#[derive(Debug, Default)]
struct Round {
    id: u32,
    rules: Vec<String>,
    forwarded: Vec<usize>,
}

/// The slow path's side of the rounds.
#[derive(Debug, Default)]
pub struct SyntheticRounds {
    current: Option<Round>,
    next_id: u32,
}

impl SyntheticRounds {
    /// Judges the round in flight from the workers' answers (a rule is available when all of
    /// `queues` forwarded it), publishes that into `out`, then starts the next round on `view`:
    /// one frame per rule to each worker, built into mbufs of `pool`.
    pub fn step(
        &mut self,
        queues: &[&SyntheticQueues],
        out: &VipAvailability,
        view: &View<'_>,
        pool: &Mempool,
    ) {
        if let Some(round) = self.current.take() {
            out.publish(judge(round, queues));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let rules = &view.snapshot.rules;
        let mut frame = [0u8; SYNTHETIC_FRAME_MAX];
        for (i, r) in rules.iter().enumerate() {
            let Some((port, len)) = synthetic_frame(view, r, id, &mut frame) else {
                continue;
            };
            for q in queues {
                let Some(mut m) = pool.alloc() else { continue };
                if m.extend_from_slice(&frame[..len]) {
                    let item = SyntheticItem {
                        frame: m,
                        port,
                        rule: i as u32,
                        round: id,
                    };
                    // A full queue (a stalled worker) drops the frame: no answer, unavailable.
                    let _ = q.input.push(item);
                }
            }
        }
        self.current = Some(Round {
            id,
            rules: rules.iter().map(|r| r.name.clone()).collect(),
            forwarded: vec![0; rules.len()],
        });
    }
}

/// Per rule name of `round`: whether every one of `queues` answered `forwarded` (answers to
/// older rounds are discarded).
fn judge(mut round: Round, queues: &[&SyntheticQueues]) -> HashMap<String, bool> {
    for q in queues {
        while let Some(a) = q.answers.pop() {
            if a.round != round.id || !a.forwarded {
                continue;
            }
            if let Some(n) = round.forwarded.get_mut(a.rule as usize) {
                *n += 1;
            }
        }
    }
    let workers = queues.len();
    round
        .rules
        .into_iter()
        .zip(round.forwarded)
        .map(|(name, n)| (name, workers > 0 && n == workers))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(q: &SyntheticQueues, rule: u32, round: u32, forwarded: bool) {
        q.answers
            .push(SyntheticAnswer {
                rule,
                round,
                forwarded,
            })
            .unwrap();
    }

    #[test]
    fn a_rule_is_available_only_when_every_worker_forwarded_this_round() {
        let (w0, w1) = (SyntheticQueues::default(), SyntheticQueues::default());
        let round = || Round {
            id: 7,
            rules: vec!["web".into(), "dns".into(), "ssh".into()],
            forwarded: vec![0; 3],
        };
        // web: both forwarded; dns: worker 1 dropped it; ssh: worker 1 answered an older round
        // only (it stalled).
        answer(&w0, 0, 7, true);
        answer(&w1, 0, 7, true);
        answer(&w0, 1, 7, true);
        answer(&w1, 1, 7, false);
        answer(&w0, 2, 7, true);
        answer(&w1, 2, 6, true);
        let judged = judge(round(), &[&w0, &w1]);
        assert!(judged["web"]);
        assert!(!judged["dns"]);
        assert!(!judged["ssh"]);
        assert!(w0.answers.is_empty() && w1.answers.is_empty());
        // No answer at all (every worker stalled): unavailable.
        assert!(!judge(round(), &[&w0, &w1])["web"]);
        // No worker: nothing is available.
        assert!(!judge(round(), &[])["web"]);
    }

    #[test]
    fn availability_reads_false_until_published() {
        let a = VipAvailability::default();
        assert!(!a.get("web"));
        a.publish(HashMap::from([("web".to_string(), true)]));
        assert!(a.get("web"));
        assert!(!a.get("dns"));
    }
}
