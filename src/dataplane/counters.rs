//! [`WorkerCounters`]: plain per-worker integers (no atomics, no sharing) that the slow path
//! aggregates: received, transmitted, one counter per [`DropReason`], one per slow-path
//! [`Exception`] kind, and per rule / per member counters (forwarded, SYNs and NAT replies per
//! member, idle expiries and their late packets per rule) indexed by the snapshot's `RuleId` /
//! `MemberId`.
//!
//! Active-flow gauges are derived: flows created minus flows removed (expired, evicted,
//! replaced), so the packet path only ever increments. The per-rule and per-member vectors grow
//! (never shrink) when a snapshot with more rules or members arrives; that allocation happens once
//! per such snapshot, between bursts, never per packet. Indices are those of the snapshot current
//! when the event happened: after a reload that renumbers rules, the slow path (which knows both
//! snapshots) attributes them.

use super::icmp_error::IcmpErrorOutcome;
use super::reason::{DropReason, Exception};

/// Counters of one rule on one worker (one cache line: a packet touches only its rule's line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct RuleCounters {
    /// Client-to-backend packets forwarded.
    pub packets: u64,
    /// Client-to-backend bytes forwarded (IPv4 total length, before encapsulation).
    pub bytes: u64,
    /// NAT replies (backend to client) forwarded.
    pub reply_packets: u64,
    /// NAT reply bytes forwarded.
    pub reply_bytes: u64,
    /// TCP SYNs (without ACK) received for the rule.
    pub syns: u64,
    /// Flows created (new flows, including rehashed mid-flow packets).
    pub new_flows: u64,
    /// Flows removed (expired, evicted, replaced).
    pub removed_flows: u64,
}

impl RuleCounters {
    /// Live flows of this rule on this worker (created minus removed).
    #[inline]
    pub fn active_flows(&self) -> u64 {
        self.new_flows.saturating_sub(self.removed_flows)
    }
}

/// Counters of one member on one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberCounters {
    /// Flows assigned to the member (new flows and UDP flows moved to it).
    pub new_flows: u64,
    /// Flows that left the member (removed, or UDP flows moved away).
    pub removed_flows: u64,
    /// Client-to-backend packets forwarded to the member.
    pub packets: u64,
    /// Of those, TCP SYNs (without ACK).
    pub syns: u64,
    /// NAT replies from the member forwarded back to clients.
    pub replies: u64,
}

impl MemberCounters {
    /// Live flows of this member on this worker.
    #[inline]
    pub fn active_flows(&self) -> u64 {
        self.new_flows.saturating_sub(self.removed_flows)
    }
}

/// Outbound SNAT counters of one member on one worker (docs/design.md §3.5.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnatCounters {
    /// Translations created (outbound connections).
    pub connections: u64,
    /// Of those, connections that got a first answer from the remote side.
    pub successful: u64,
    /// Translations released without any answer (timed out or refused).
    pub unanswered: u64,
    /// New connections dropped for want of a free port (`snat_exhausted`).
    pub exhausted: u64,
    /// Times a port of the member's block went from free to in use.
    pub ports_taken: u64,
    /// Times a port went back to free.
    pub ports_released: u64,
}

impl SnatCounters {
    /// Ports in use on this worker.
    #[inline]
    pub fn used_ports(&self) -> u64 {
        self.ports_taken.saturating_sub(self.ports_released)
    }

    /// Connections waiting for their first answer.
    #[inline]
    pub fn pending(&self) -> u64 {
        self.connections
            .saturating_sub(self.successful)
            .saturating_sub(self.unanswered)
    }

    /// Connections that failed: no port, or released without an answer.
    #[inline]
    pub fn failed(&self) -> u64 {
        self.exhausted + self.unanswered
    }

    fn add(&mut self, o: &SnatCounters) {
        self.connections += o.connections;
        self.successful += o.successful;
        self.unanswered += o.unanswered;
        self.exhausted += o.exhausted;
        self.ports_taken += o.ports_taken;
        self.ports_released += o.ports_released;
    }
}

/// Idle-timeout counters of one rule on one worker (kept apart from [`RuleCounters`]: they
/// change on expiry and on misses, never on a packet of a live flow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleIdleCounters {
    /// Flows of the rule removed by the idle timeout.
    pub expired: u64,
    /// Later TCP packets of such flows, dropped as `idle_expired` (recently-expired record).
    pub late_packets: u64,
}

/// All counters of one worker (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Frames received (passed to `Pipeline::process`).
    pub rx: u64,
    /// Frames given a `Forward` verdict (the worker reports ring-full failures via `note_tx`).
    pub tx: u64,
    /// One counter per [`DropReason`], indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// Frames handed to the slow path, one counter per [`Exception`] kind, indexed by
    /// [`Exception::index`].
    pub exceptions: [u64; Exception::COUNT],
    /// ICMP errors about flows, one counter per [`IcmpErrorOutcome`], indexed by its `index`.
    pub icmp_errors: [u64; IcmpErrorOutcome::COUNT],
    /// Packets forwarded without a flow entry (table full).
    pub untracked: u64,
    /// Flows expired by the idle sweep (or found expired on lookup).
    pub expired_flows: u64,
    /// RST frames emitted at idle expiry.
    pub resets_sent: u64,
    /// Per rule, indexed by `RuleId`.
    pub rules: Vec<RuleCounters>,
    /// Per member, indexed by `MemberId`.
    pub members: Vec<MemberCounters>,
    /// Per rule idle-timeout counters, indexed by `RuleId`.
    pub rule_idle: Vec<RuleIdleCounters>,
    /// Per member (snapshot member id): outbound SNAT.
    pub snat: Vec<SnatCounters>,
    /// Per frontend (snapshot frontend id): TCP SYNs members sent out through SNAT with its IP
    /// (retransmissions included).
    pub snat_syns: Vec<u64>,
}

impl WorkerCounters {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter of `reason`.
    #[inline]
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// The counter of exception kind `e`.
    #[inline]
    pub fn exception_count(&self, e: Exception) -> u64 {
        self.exceptions[e.index()]
    }

    /// Counts one `reason` event.
    #[inline(always)]
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Counts one hand-off to the slow path.
    #[inline(always)]
    pub fn count_exception(&mut self, e: Exception) {
        self.exceptions[e.index()] += 1;
    }

    /// Grows the per-rule and per-member vectors to at least these sizes (between bursts).
    #[inline]
    pub fn ensure(&mut self, rules: usize, members: usize) {
        if self.rules.len() < rules {
            self.rules.resize(rules, RuleCounters::default());
            self.rule_idle.resize(rules, RuleIdleCounters::default());
        }
        if self.members.len() < members {
            self.members.resize(members, MemberCounters::default());
            self.snat.resize(members, SnatCounters::default());
        }
    }

    /// Grows the per-frontend vector to at least `frontends` (between bursts).
    pub fn ensure_frontends(&mut self, frontends: usize) {
        if self.snat_syns.len() < frontends {
            self.snat_syns.resize(frontends, 0);
        }
    }

    /// Adds `other` into `self` (the slow path's aggregation over workers).
    pub fn add(&mut self, other: &WorkerCounters) {
        self.rx += other.rx;
        self.tx += other.tx;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.exceptions.iter_mut().zip(other.exceptions.iter()) {
            *a += b;
        }
        for (a, b) in self.icmp_errors.iter_mut().zip(other.icmp_errors.iter()) {
            *a += b;
        }
        self.untracked += other.untracked;
        self.expired_flows += other.expired_flows;
        self.resets_sent += other.resets_sent;
        self.ensure(other.rules.len(), other.members.len());
        for (a, b) in self.rules.iter_mut().zip(other.rules.iter()) {
            a.packets += b.packets;
            a.bytes += b.bytes;
            a.reply_packets += b.reply_packets;
            a.reply_bytes += b.reply_bytes;
            a.syns += b.syns;
            a.new_flows += b.new_flows;
            a.removed_flows += b.removed_flows;
        }
        for (a, b) in self.members.iter_mut().zip(other.members.iter()) {
            a.new_flows += b.new_flows;
            a.removed_flows += b.removed_flows;
            a.packets += b.packets;
            a.syns += b.syns;
            a.replies += b.replies;
        }
        for (a, b) in self.snat.iter_mut().zip(other.snat.iter()) {
            a.add(b);
        }
        self.ensure_frontends(other.snat_syns.len());
        for (a, b) in self.snat_syns.iter_mut().zip(other.snat_syns.iter()) {
            *a += b;
        }
        for (a, b) in self.rule_idle.iter_mut().zip(other.rule_idle.iter()) {
            a.expired += b.expired;
            a.late_packets += b.late_packets;
        }
    }

    /// Accounts one client packet forwarded to `member` (`syn`: a SYN without ACK).
    #[inline(always)]
    pub(crate) fn member_forwarded(&mut self, member: u32, syn: bool) {
        if let Some(m) = self.members.get_mut(member as usize) {
            m.packets += 1;
            m.syns += u64::from(syn);
        }
    }

    /// Accounts one NAT reply from `member`.
    #[inline(always)]
    pub(crate) fn member_replied(&mut self, member: u32) {
        if let Some(m) = self.members.get_mut(member as usize) {
            m.replies += 1;
        }
    }

    /// Accounts a flow of `rule` removed by the idle timeout (after [`Self::flow_removed`]).
    #[inline]
    pub(crate) fn flow_expired(&mut self, rule: u32) {
        self.expired_flows += 1;
        if let Some(r) = self.rule_idle.get_mut(rule as usize) {
            r.expired += 1;
        }
    }

    /// Accounts a late packet of an expired flow of `rule` (the caller counts its
    /// `idle_expired` drop).
    #[inline]
    pub(crate) fn idle_late_packet(&mut self, rule: u32) {
        if let Some(r) = self.rule_idle.get_mut(rule as usize) {
            r.late_packets += 1;
        }
    }

    /// Accounts a flow of `rule` to `member` being created.
    #[inline(always)]
    pub(crate) fn flow_created(&mut self, rule: u32, member: u32) {
        if let Some(r) = self.rules.get_mut(rule as usize) {
            r.new_flows += 1;
        }
        if let Some(m) = self.members.get_mut(member as usize) {
            m.new_flows += 1;
        }
    }

    /// Accounts a flow of `rule` to `member` being removed.
    #[inline(always)]
    pub(crate) fn flow_removed(&mut self, rule: u32, member: u32) {
        if let Some(r) = self.rules.get_mut(rule as usize) {
            r.removed_flows += 1;
        }
        if let Some(m) = self.members.get_mut(member as usize) {
            m.removed_flows += 1;
        }
    }

    /// Accounts a flow moving from member `from` to member `to`.
    #[inline]
    pub(crate) fn flow_moved(&mut self, from: u32, to: u32) {
        if let Some(m) = self.members.get_mut(from as usize) {
            m.removed_flows += 1;
        }
        if let Some(m) = self.members.get_mut(to as usize) {
            m.new_flows += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_and_aggregation() {
        let mut a = WorkerCounters::new();
        a.ensure(2, 3);
        a.flow_created(1, 2);
        a.flow_created(1, 2);
        a.flow_removed(1, 2);
        a.flow_created(9, 9); // out of range: ignored, no panic
        a.member_forwarded(2, true);
        a.member_forwarded(2, false);
        a.member_replied(2);
        a.member_replied(9);
        a.flow_expired(1);
        a.idle_late_packet(1);
        a.idle_late_packet(7);
        assert_eq!(a.rules[1].active_flows(), 1);
        assert_eq!(a.members[2].active_flows(), 1);
        a.count_drop(DropReason::NoRule);
        a.count_exception(Exception::TooBig { mtu: 1400 });
        let mut total = WorkerCounters::new();
        total.add(&a);
        total.add(&a);
        assert_eq!(total.drop_count(DropReason::NoRule), 2);
        assert_eq!(total.exception_count(Exception::TooBig { mtu: 0 }), 2);
        assert_eq!(total.rules[1].active_flows(), 2);
        let m = total.members[2];
        assert_eq!((m.packets, m.syns, m.replies), (4, 2, 2));
        assert_eq!(
            total.rule_idle[1],
            RuleIdleCounters {
                expired: 2,
                late_packets: 2
            }
        );
        assert_eq!(total.expired_flows, 2);
    }
}
