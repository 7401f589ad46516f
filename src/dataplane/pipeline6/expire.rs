//! Idle expiry of IPv6 flows (docs/design.md §3.6): the worker's expiry step sweeps the IPv6
//! table as it sweeps the IPv4 one (the same share of buckets per call, so both tables are swept
//! in the same number of calls), and each expired flow is counted, recorded as recently expired
//! when it was live, and, with `enable_tcp_reset` on an established flow, reset at both ends with
//! [`send_resets6`] (the RST to the member through the flow's own rewrite).

use super::{flow_target, outer_source, Lane6};
use crate::balance::hash::hash_5tuple6;
use crate::config::DsrEncapsulation;
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::expiry::{Scratch, PENDING_RESETS};
use crate::dataplane::expiry6::{send_resets6, ResetRoute6};
use crate::dataplane::rewrite6::Target6;
use crate::dataplane::route::{client_hop6, HopCache};
use crate::dataplane::View;
use crate::flow::{FlowEntry6, FlowKey6, RecentlyExpired};
use std::net::Ipv6Addr;

/// The worker state an IPv6 expiry step touches.
pub(in crate::dataplane) struct Expiry6<'p> {
    pub(in crate::dataplane) lane: &'p mut Lane6,
    pub(in crate::dataplane) recent: &'p mut RecentlyExpired,
    pub(in crate::dataplane) counters: &'p mut WorkerCounters,
    pub(in crate::dataplane) hops: &'p mut HopCache,
    pub(in crate::dataplane) scratch: &'p mut Scratch,
    pub(in crate::dataplane) seed: u64,
}

/// Sends the RSTs queued by the packet path, then expires idle flows in `budget` buckets of the
/// IPv6 table; returns the number of flows the sweep expired.
pub(in crate::dataplane) fn expire<F: FnMut(usize, &[u8])>(
    x: &mut Expiry6<'_>,
    view: &View<'_>,
    now: u32,
    budget: usize,
    emit: &mut F,
) -> usize {
    let Expiry6 {
        lane,
        recent,
        counters,
        hops,
        scratch,
        seed,
    } = x;
    let pending = &mut lane.pending;
    for i in 0..pending.len.min(PENDING_RESETS) {
        let (k, e) = pending.items[i];
        counters.resets_sent += resets(view, hops, scratch, &k, &e, emit);
    }
    pending.len = 0;
    lane.table.expire_step(now, budget, |k, e| {
        counters.flow_removed(e.flow.rule_id, e.flow.member_id);
        counters.flow_expired(e.flow.rule_id);
        if e.flow.should_record_expiry() {
            recent.note_expired(k.hash_seeded(*seed), now);
        }
        if e.flow.wants_reset_on_expiry() {
            counters.resets_sent += resets(view, hops, scratch, k, e, emit);
        }
    })
}

/// The RST pair of the expired flow `k`/`e` (see [`send_resets6`]); how many were sent.
fn resets<F: FnMut(usize, &[u8])>(
    view: &View<'_>,
    hops: &mut HopCache,
    scratch: &mut Scratch,
    k: &FlowKey6,
    e: &FlowEntry6,
    emit: &mut F,
) -> u64 {
    if !e.flow.wants_reset_on_expiry() {
        return 0;
    }
    let client = client_hop6(view, Ipv6Addr::from(k.src_ip)).ok();
    let found = flow_target(view, e, k.dst_ip);
    let member = found.and_then(|(mid, _)| hops.member(view, mid).ok());
    let target = found.map(|f| f.1).unwrap_or(Target6 {
        addr: e.member_addr,
        port: e.flow.backend_port,
        floating: false,
        encap: DsrEncapsulation::None,
        gue_port: 0,
        l4_delta: None,
    });
    let outer_src = member.and_then(|h| outer_source(view, h.port)).unwrap_or(0);
    let s = view.snapshot.hash_seed;
    let route = ResetRoute6 {
        client: client.as_ref(),
        member,
        target,
        outer_src,
        flow_hash: hash_5tuple6(s, k.src_ip, k.dst_ip, k.proto, k.src_port, k.dst_port) as u32,
    };
    send_resets6(scratch, k, e, &route, emit)
}
