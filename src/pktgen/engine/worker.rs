//! The generator's pinned thread: polls its queues (checking and answering what comes back),
//! resolves the VIP's next hop, opens outbound flows, sends the paced bursts and publishes its
//! counts for the monitor.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::check::{Checker, Outcome};
use super::super::flows::FlowSet;
use super::super::frames::{
    patch_client, BurstClasses, FrameKind, Macs, ShareMix, TemplateRef, Templates, XorShift,
};
use super::super::outbound::OutboundFlows;
use super::super::pace::RatePacer;
use super::super::Mode;
use super::{queue_of_flow, Options, QueueChoice, Shared, HOLD_WAIT};
use crate::balance::Reta;
use crate::dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use crate::platform::signal;
use crate::wire::builder::{arp_request, neighbor_solicit};
use crate::wire::{MacAddr, BURST};

/// How long the port may take to report its link up.
const LINK_WAIT: Duration = Duration::from_secs(30);
/// How long the first VIP's ARP or Neighbour Solicitation is asked before falling back to
/// broadcast: long enough for a device under test that answers late (its slow path under
/// valgrind); the wait ends at the first answer.
const ARP_WAIT: Duration = Duration::from_secs(30);
/// How often the VIP's next hop is asked again while no answer came.
const ARP_RETRY: Duration = Duration::from_millis(100);
/// The longest the receive side is drained after the run (what was still in flight).
const DRAIN_MAX: Duration = Duration::from_millis(200);
/// A drain ends once nothing arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(20);
/// How long outbound flows may take to open (a device under test that is slow to start, e.g.
/// under valgrind, answers late; the wait ends as soon as every flow is open).
const OPEN_WAIT: Duration = Duration::from_secs(60);
/// How long an opening round waits for answers before sending the missing flows' SYNs again.
const OPEN_ROUND: Duration = Duration::from_millis(200);
/// How often a hold looks for its file (rx is polled in between).
const HOLD_LOOK: Duration = Duration::from_millis(10);

/// Flows spread over several tx queues: the frames of one allocation are moved, by flow, to one
/// pending burst per queue ([`queue_of_flow`]) and each is sent (what a queue refuses stays for
/// the next round, in order, so each queue sends its flows round-robin).
struct Spread {
    /// One pending burst per queue (empty when sending on one queue).
    pub(super) pending: Vec<Burst>,
    /// The queue of each frame of the allocation being filled.
    pub(super) queue: [u16; BURST],
    /// With [`QueueChoice::Owner`]: the queue of every flow (computed once).
    pub(super) owner_queue: Vec<u16>,
}

impl Spread {
    /// Spreading `flows` over `queues` queues as `choice` says (off for one queue).
    pub(super) fn new(queues: usize, flows: &FlowSet, choice: QueueChoice) -> Spread {
        let n = if queues > 1 { queues } else { 0 };
        let owner_queue = if n > 0 && choice == QueueChoice::Owner {
            let reta = Reta::new(n);
            (0..flows.count)
                .map(|f| {
                    let c = flows.client(f);
                    reta.owner(u32::from(*c.ip()), c.port()) as u16
                })
                .collect()
        } else {
            Vec::new()
        };
        Spread {
            pending: (0..n).map(|_| Burst::new()).collect(),
            queue: [0; BURST],
            owner_queue,
        }
    }

    /// True when spreading.
    pub(super) fn is_on(&self) -> bool {
        !self.pending.is_empty()
    }

    /// True when no frame waits on any queue.
    pub(super) fn is_empty(&self) -> bool {
        self.pending.iter().all(Burst::is_empty)
    }

    /// Frames the next allocation may take: `txb`'s room, or when spreading the least room of
    /// the queues (so every frame finds a place).
    pub(super) fn room(&self, txb: &Burst) -> usize {
        self.pending
            .iter()
            .map(Burst::room)
            .min()
            .unwrap_or(txb.room())
    }

    /// Records that frame `i` of the allocation belongs to flow `flow`.
    pub(super) fn note(&mut self, i: usize, flow: u32) {
        if self.is_on() {
            self.queue[i] = match self.owner_queue.get(flow as usize) {
                Some(q) => *q,
                None => queue_of_flow(flow, self.pending.len() as u16),
            };
        }
    }

    /// Moves `txb`'s frames to their queues and sends every queue; returns the frames sent.
    pub(super) fn send(&mut self, txb: &mut Burst, txqs: &mut [TxQueue<'_>]) -> usize {
        let (pending, queue) = (&mut self.pending, &self.queue);
        txb.drain_each(|i, m| {
            let _ = pending[usize::from(queue[i])].push(m);
        });
        pending
            .iter_mut()
            .zip(txqs.iter_mut())
            .filter(|(b, _)| !b.is_empty())
            .map(|(b, q)| q.tx_burst_keep(b).sent)
            .sum()
    }
}

/// Which frames the worker builds: the kinds, per flow or per target, inbound or outbound.
pub(super) struct FrameChoice<'a> {
    pub(super) kinds: &'a [FrameKind],
    pub(super) per_flow: bool,
    pub(super) outbound: Option<&'a OutboundFlows>,
}

/// The send/receive loop's state.
pub(super) struct Worker<'a, 'p> {
    pub(super) pool: &'a Mempool,
    pub(super) rxqs: &'a mut [RxQueue<'p>],
    /// One tx queue per spread queue (queue 0 also answers ARP).
    pub(super) txqs: &'a mut [TxQueue<'p>],
    pub(super) checker: &'a mut Checker,
    pub(super) shared: &'a Shared,
    pub(super) checksum_every: u32,
    pub(super) seen: u32,
    pub(super) rx: u64,
}

impl Worker<'_, '_> {
    /// Receives one burst from every rx queue. Returns frames received.
    #[inline]
    pub(super) fn poll_rx(&mut self, rxb: &mut Burst) -> usize {
        let mut n = 0;
        for q in 0..self.rxqs.len() {
            n += self.poll_queue(q, rxb);
        }
        n
    }

    /// Receives one burst from rx queue `q`: checks data frames, answers ARP. Returns frames received.
    #[inline]
    pub(super) fn poll_queue(&mut self, q: usize, rxb: &mut Burst) -> usize {
        let n = self.rxqs[q].rx_burst(rxb);
        if n == 0 {
            return 0;
        }
        let every = self.checksum_every;
        let (checker, seen) = (&mut *self.checker, &mut self.seen);
        let mut data = 0u64;
        rxb.retain(|m: &mut Mbuf| {
            let verify = every != 0 && *seen % every == 0;
            *seen = seen.wrapping_add(1);
            match checker.handle(m.data_mut(), verify) {
                Outcome::ArpReply(len) => {
                    if len < m.len() {
                        m.trim(m.len() - len);
                    }
                    true
                }
                Outcome::Ok(_) | Outcome::Mismatch(_) => {
                    data += 1;
                    false
                }
                Outcome::Ignored => false,
            }
        });
        self.rx += data;
        if !rxb.is_empty() {
            self.txqs[0].tx_burst(rxb);
        }
        n
    }

    /// Waits (bounded) for the link to come up: a memif server has no link until its client
    /// Waits for the link, finds the destination MAC (given, else by ARP for the first target),
    /// builds the templates and sends; returns what [`Worker::send`] returns.
    pub(super) fn generate(
        &mut self,
        opts: &Options,
        flowset: &FlowSet,
        frames: &FrameChoice<'_>,
        own_mac: MacAddr,
        gen_ip: Ipv4Addr,
    ) -> (u64, u64, f64) {
        self.wait_link();
        let dst_mac = match opts.dst_mac {
            Some(m) => m,
            None => {
                let own6 = self.checker.own_ip6().unwrap_or(Ipv6Addr::UNSPECIFIED);
                self.resolve(own_mac, (gen_ip, own6), flowset.targets[0].vip)
            }
        };
        let macs = Macs {
            src: own_mac,
            dst: dst_mac,
        };
        let templates = match frames.outbound {
            Some(out) => {
                let opening = out.templates(&[FrameKind::Syn], opts.size, macs, None);
                self.open_outbound(flowset, out.count, &opening);
                out.templates(frames.kinds, opts.size, macs, self.checker.outbound())
            }
            None => Templates::build(flowset, frames.kinds, opts.size, macs, frames.per_flow),
        };
        if let Some(path) = &opts.wait_for_file {
            self.hold(path, "sending");
        }
        let sent = self.send(flowset, &templates, opts);
        if let Some(path) = &opts.hold_after_file {
            // Printed whatever the log level: the script waiting for it reads stderr.
            eprintln!("run over: holding the link until {} exists", path.display());
            self.hold(path, "closing");
        }
        sent
    }

    /// Polls rx (answering ARP and neighbour solicitations) until `path` exists, at most
    /// [`HOLD_WAIT`] (then goes on anyway, warned); `then` names what comes next, for the log.
    pub(super) fn hold(&mut self, path: &std::path::Path, then: &str) {
        let start = Instant::now();
        let mut rxb = Burst::new();
        let mut look = start;
        tracing::info!("holding until {} exists", path.display());
        loop {
            if Instant::now() >= look {
                if path.exists() {
                    tracing::info!(
                        "{} exists after {:?}: {then}",
                        path.display(),
                        start.elapsed()
                    );
                    return;
                }
                look += HOLD_LOOK;
            }
            if start.elapsed() >= HOLD_WAIT || signal::stop_requested() {
                tracing::warn!(
                    "{} still missing after {:?}: {then} anyway",
                    path.display(),
                    start.elapsed()
                );
                return;
            }
            self.poll_rx(&mut rxb);
        }
    }

    /// Outbound: sends the SYN of every one of `count` flows whose translated frame has not come
    /// back yet (`templates`: theirs), in rounds, until all have (or [`OPEN_WAIT`] passes); then
    /// starts the measured run.
    pub(super) fn open_outbound(&mut self, flows: &FlowSet, count: u32, templates: &Templates) {
        let start = Instant::now();
        let (mut rxb, mut txb) = (Burst::new(), Burst::new());
        let opened = |c: &Checker| c.outbound().map_or(u32::MAX, |o| o.opened());
        let late = || signal::stop_requested() || start.elapsed() >= OPEN_WAIT;
        while opened(self.checker) < count && !late() {
            let mut f = 0;
            while f < count && !late() {
                while txb.room() > 0 && f < count {
                    let open = self.checker.outbound().is_some_and(|o| o.is_open(f));
                    if let (false, TemplateRef::Ready(t)) =
                        (open, templates.get(flows, f, FrameKind::Syn))
                    {
                        let Some(mut m) = self.pool.alloc() else {
                            break;
                        };
                        if m.extend_from_slice(t) {
                            let _ = txb.push(m);
                        }
                    }
                    f += 1;
                }
                self.txqs[0].tx_burst_keep(&mut txb);
                self.poll_rx(&mut rxb);
            }
            let round = Instant::now();
            while round.elapsed() < OPEN_ROUND && opened(self.checker) < count && !late() {
                self.poll_rx(&mut rxb);
            }
        }
        txb.clear();
        tracing::info!(
            "outbound: {} of {count} flows opened in {:?}",
            opened(self.checker),
            start.elapsed()
        );
        self.checker.start_run();
        self.rx = 0;
    }

    /// connects, and the send clock should not count that time.
    pub(super) fn wait_link(&mut self) {
        let start = Instant::now();
        let mut rxb = Burst::new();
        loop {
            match self.rxqs[0].port().link() {
                Ok(l) if l.up => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("link state: {e}");
                    return;
                }
            }
            if start.elapsed() >= LINK_WAIT || signal::stop_requested() {
                tracing::warn!("link still down after {LINK_WAIT:?}: sending anyway");
                return;
            }
            self.poll_rx(&mut rxb);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Asks for the MAC of `vip` (ARP, or a Neighbour Solicitation from `own.1` for an IPv6 VIP,
    /// up to [`ARP_WAIT`]); broadcast when nobody answers.
    pub(super) fn resolve(
        &mut self,
        own_mac: MacAddr,
        own: (Ipv4Addr, Ipv6Addr),
        vip: IpAddr,
    ) -> MacAddr {
        self.checker.resolve = Some((vip, None));
        let start = Instant::now();
        let mut last_ask: Option<Instant> = None;
        let mut rxb = Burst::new();
        while start.elapsed() < ARP_WAIT && !signal::stop_requested() {
            if last_ask.is_none_or(|t| t.elapsed() >= ARP_RETRY) {
                last_ask = Some(Instant::now());
                if let Some(mut m) = self.pool.alloc() {
                    let mut buf = [0u8; 128];
                    let asked = match vip {
                        IpAddr::V4(v) => arp_request(&mut buf, own_mac, None, own.0, v),
                        IpAddr::V6(v) => neighbor_solicit(&mut buf, own_mac, None, own.1, v),
                    };
                    if let Ok(n) = asked {
                        if m.extend_from_slice(&buf[..n]) {
                            let mut b = Burst::new();
                            let _ = b.push(m);
                            self.txqs[0].tx_burst(&mut b);
                        }
                    }
                }
            }
            self.poll_rx(&mut rxb);
            if let Some((_, Some(mac))) = self.checker.resolve {
                tracing::info!("{vip} is at {mac}");
                self.checker.resolve = None;
                return mac;
            }
        }
        self.checker.resolve = None;
        tracing::warn!("no ARP/ND reply for {vip}: sending to ff:ff:ff:ff:ff:ff (give --dst-mac)");
        MacAddr::BROADCAST
    }

    /// Sends for the run's duration, then drains; returns (frames sent, established-flow frames
    /// among them, seconds of sending).
    pub(super) fn send(
        &mut self,
        flows: &FlowSet,
        templates: &Templates,
        opts: &Options,
    ) -> (u64, u64, f64) {
        let mut txb = Burst::new();
        let mut rxb = Burst::new();
        let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
        let start = Instant::now();
        let deadline = start + opts.duration;
        let mut bucket = RatePacer::new(opts.rate, (BURST * 4) as u32, start);
        let (count, ntargets) = (flows.count, flows.targets.len());
        let (mut flow, mut round, mut tgt) = (0u32, 0u32, 0usize);
        let mut tx = 0u64;
        let mut est_tx = 0u64;
        let mut mix = ShareMix::new(opts.established_share);
        let mut classes = BurstClasses::default();
        let mut loops = 0u32;
        let mut spread = Spread::new(self.txqs.len(), flows, opts.spread);
        let mut left = if opts.count > 0 { opts.count } else { u64::MAX };
        self.shared.sending.store(1, Ordering::Relaxed);
        loop {
            let now = Instant::now();
            if now >= deadline || signal::stop_requested() {
                break;
            }
            if left == 0 && txb.is_empty() && spread.is_empty() {
                break;
            }
            let room = spread
                .room(&txb)
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let want = bucket.available(now, room);
            if want > 0 {
                let old = txb.len();
                let got = self.pool.alloc_bulk(&mut txb, want);
                left -= got as u64;
                for (i, m) in txb.as_mut_slice()[old..old + got].iter_mut().enumerate() {
                    spread.note(old + i, flow);
                    let flood = opts.mode == Mode::Synflood && !mix.next_is_established();
                    classes.push(!flood);
                    if flood {
                        if let Some(f) = templates.target_frame(tgt, FrameKind::Syn) {
                            if m.extend_from_slice(f) {
                                patch_client(m.data_mut(), rng.client());
                            }
                        }
                        tgt += 1;
                        if tgt == ntargets {
                            tgt = 0;
                        }
                        continue;
                    }
                    let kind = match opts.mode {
                        Mode::Syn => FrameKind::Syn,
                        Mode::Synflood => FrameKind::Data,
                        Mode::Mix if round % 8 == 0 => FrameKind::Syn,
                        _ => FrameKind::Data,
                    };
                    match templates.get(flows, flow, kind) {
                        TemplateRef::Ready(f) => {
                            m.extend_from_slice(f);
                        }
                        TemplateRef::Patch(f, client) => {
                            if m.extend_from_slice(f) {
                                patch_client(m.data_mut(), client);
                            }
                        }
                    }
                    flow += 1;
                    if flow == count {
                        flow = 0;
                        round = round.wrapping_add(1);
                    }
                }
            }
            if spread.is_on() {
                let sent = spread.send(&mut txb, self.txqs);
                tx += sent as u64;
                bucket.consume(sent);
            } else if !txb.is_empty() {
                let out = self.txqs[0].tx_burst_keep(&mut txb);
                tx += out.sent as u64;
                est_tx += u64::from(classes.sent(out.sent));
                bucket.consume(out.sent);
            }
            self.poll_rx(&mut rxb);
            loops = loops.wrapping_add(1);
            if loops % 64 == 0 {
                self.publish(tx, est_tx);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        txb.clear();
        drop(spread);
        // Drain: keep receiving until quiet (or a bound), so in-flight frames are not lost.
        let drain_start = Instant::now();
        let mut last_rx = Instant::now();
        while drain_start.elapsed() < DRAIN_MAX && last_rx.elapsed() < DRAIN_QUIET {
            if self.poll_rx(&mut rxb) > 0 {
                last_rx = Instant::now();
            }
        }
        self.publish(tx, est_tx);
        self.shared.sending.store(2, Ordering::Relaxed);
        (tx, est_tx, secs)
    }

    pub(super) fn publish(&self, tx: u64, est_tx: u64) {
        self.shared.tx.store(tx, Ordering::Relaxed);
        self.shared.est_tx.store(est_tx, Ordering::Relaxed);
        self.shared
            .est_rx
            .store(self.checker.established.received(), Ordering::Relaxed);
        self.shared
            .flood_rx
            .store(self.checker.flood.received(), Ordering::Relaxed);
        self.shared.rx.store(self.rx, Ordering::Relaxed);
        self.shared
            .errors
            .store(self.checker.mismatches.total(), Ordering::Relaxed);
    }
}
