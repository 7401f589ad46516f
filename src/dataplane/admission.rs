//! A new flow's admission, the same for both address families (docs/design.md §3.3 and §3.11):
//! the rule's counters, the recently-expired and missing-flow policy for a non-SYN TCP packet,
//! `probes_settling` for a SYN, the member Maglev gives the rule's distribution hash, and the new
//! entry's flags. The IPv4 and IPv6 lanes each find the rule, compute the hashes of their tuple and
//! build their own entry from what [`admit`] returns.

use super::counters::WorkerCounters;
use super::reason::DropReason;
use super::Verdict;
use crate::balance::snapshot::MemberInfo;
use crate::balance::{MemberId, Rule, Snapshot};
use crate::config::MissingFlow;
use crate::flow::{FlowFlags, RecentlyExpired};

/// The facts about a packet without a flow entry that admission reads, in either family.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    /// A TCP packet.
    pub tcp: bool,
    /// A TCP SYN without ACK.
    pub syn: bool,
    /// Its destination port.
    pub dport: u16,
    /// Its IP length (the rule's byte counter).
    pub ip_len: u32,
    /// The table hash of its flow key (the recently-expired record's key).
    pub hash: u64,
    /// Now, in seconds.
    pub now: u32,
}

/// An admitted new flow: its member and what its entry carries besides the member's address.
#[derive(Debug, Clone, Copy)]
pub(super) struct Admitted<'v> {
    /// The chosen member.
    pub mid: MemberId,
    /// Its snapshot record (the caller takes the address of its family).
    pub info: &'v MemberInfo,
    /// The member's port for this packet.
    pub backend_port: u16,
    /// FLOATING and RESET_ENABLED as the rule says.
    pub flags: FlowFlags,
    /// The rule's idle timeout, at least 1 second.
    pub idle_secs: u32,
}

/// Admits `c`, a packet matching `rule` without a (live) flow: counts it on the rule, applies the
/// recently-expired record and `missing_flow` to a non-SYN TCP packet and `probes_settling` to a
/// SYN (which also forgets its key in the record), then asks Maglev for a member with the rule's
/// distribution hash `dist` computes. `Err` is the drop.
#[inline(always)]
pub(super) fn admit<'v>(
    counters: &mut WorkerCounters,
    recent: &mut RecentlyExpired,
    snap: &'v Snapshot,
    rule: &'v Rule,
    c: &Candidate,
    dist: impl FnOnce() -> u64,
) -> Result<Admitted<'v>, Verdict> {
    let rid = rule.id;
    if let Some(rc) = counters.rules.get_mut(rid.index()) {
        rc.packets += 1;
        rc.bytes += u64::from(c.ip_len);
        rc.syns += u64::from(c.syn);
    }
    if c.tcp && !c.syn {
        if recent.recently_expired(c.hash, c.now) {
            counters.idle_late_packet(rid.0);
            return Err(Verdict::Drop(DropReason::IdleExpired));
        }
        if snap.missing_flow == MissingFlow::Drop {
            return Err(Verdict::Drop(DropReason::NoFlow));
        }
    } else if c.syn {
        if snap.probes_settling && rule.probe.is_some() {
            return Err(Verdict::Drop(DropReason::ProbesPending));
        }
        recent.forget(c.hash, c.now);
    }
    let Some(mid) = snap.choose(rid, c.dport, dist()) else {
        return Err(Verdict::Drop(DropReason::NoHealthyBackend));
    };
    let Some(info) = snap.member(mid) else {
        return Err(Verdict::Drop(DropReason::NoRoute));
    };
    let mut flags = FlowFlags::NONE;
    if rule.floating_ip {
        flags.insert(FlowFlags::FLOATING);
    }
    if rule.enable_tcp_reset && c.tcp {
        flags.insert(FlowFlags::RESET_ENABLED);
    }
    Ok(Admitted {
        mid,
        info,
        backend_port: rule.backend_port_for(c.dport),
        flags,
        idle_secs: rule.idle_timeout_secs.max(1),
    })
}
