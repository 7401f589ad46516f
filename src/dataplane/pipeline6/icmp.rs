//! ICMPv6 errors about IPv6 flows, delivered by the worker as IPv4's are (docs/design.md §4.4),
//! with [`icmp_error6`](crate::dataplane::icmp_error6)'s quote reading and rewrites:
//!
//! - **to a frontend, quoting VIP:port → client**: the flow is the quote reversed; its member is
//!   the live entry's, else the rule's hash choice. NAT66: the outer destination and the quoted
//!   source become the member and its backend port; floating IP: sent as the flow's packets
//!   (MAC rewrite, IPv6-in-IPv6 or GUE over IPv6);
//! - **to a frontend, quoting frontend:SNAT port → remote** (an outbound translation): the outer
//!   destination and the quoted source become the member and its port, as IPv4's;
//! - **in transit, quoting client → member:backend_port**: reverse-translated toward the client
//!   (quoted destination → VIP:port; the outer source too when it is the member).
//!
//! Outcomes count in the IPv4 error counters ([`IcmpErrorOutcome`]); a quote naming no flow is
//! `icmp_no_flow`. Not an error (echo and other informational messages): `None`, the
//! classification's verdict stands (the slow path answers echo to a VIP).

use super::snat::snat_member6;
use super::{dist_hash6, flow_target, Cx6};
use crate::balance::snapshot::MemberId;
use crate::dataplane::classify6::Meta6;
use crate::dataplane::icmp_error::IcmpErrorOutcome;
use crate::dataplane::icmp_error6::{
    quoted_flow6, rewrite_outer6, rewrite_quote6, Quote6, QuotedFlow6,
};
use crate::dataplane::reason::DropReason;
use crate::dataplane::rewrite6::{set_macs, to_member6, End6, Target6};
use crate::dataplane::route::{client_hop6, Hop};
use crate::dataplane::{Verdict, View};
use crate::flow::FlowKey6;
use crate::wire::ipv6::{self, next_header};
use crate::wire::{EthernetFrame, PacketBuf};
use std::net::Ipv6Addr;

/// Delivers the ICMPv6 error in `buf` if it is one about a flow; `None` for other ICMPv6.
#[cold]
#[inline(never)]
pub(in crate::dataplane) fn handle<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    now: u32,
) -> Option<Verdict> {
    let no_flow = (
        IcmpErrorOutcome::NoFlow,
        Verdict::Drop(DropReason::IcmpNoFlow),
    );
    let (outcome, v) = match quoted_flow6(buf.data()) {
        Quote6::NotFlowError => return None,
        Quote6::Malformed => (
            IcmpErrorOutcome::Malformed,
            Verdict::Drop(DropReason::BadHeader),
        ),
        Quote6::NoPorts => no_flow,
        Quote6::Flow(q) => deliver(cx, view, buf, &q, now).unwrap_or(no_flow),
    };
    cx.counters.icmp_errors[outcome.index()] += 1;
    Some(v)
}

/// Sends the error `q` describes toward the flow's member or client; `None`: no flow.
fn deliver<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    q: &QuotedFlow6,
    now: u32,
) -> Option<(IcmpErrorOutcome, Verdict)> {
    let snap = view.snapshot;
    if snap.is_frontend6(q.outer_dst) {
        if q.src != q.outer_dst {
            return None;
        }
        if let Some(found) = snat_member(cx, view, buf, q, now) {
            return Some(found);
        }
        let (outcome, mid, t) = flow_member(cx, view, q, now)?;
        let v = match cx.hops.member(view, mid) {
            Ok(hop) => to_flow_member(view, buf, q, &t, hop),
            Err(r) => Verdict::Drop(r),
        };
        return Some((outcome, v));
    }
    let rn = snap.reverse_nat6(q.dst, q.proto, q.dport)?;
    let outcome = IcmpErrorOutcome::ToClient;
    let hop = match client_hop6(view, Ipv6Addr::from(q.outer_dst)) {
        Ok(h) => h,
        Err(r) => return Some((outcome, Verdict::Drop(r))),
    };
    let v = out_checks(buf, q, &hop).unwrap_or_else(|| {
        let vip = u128::from(rn.vip);
        let f = buf.data_mut();
        rewrite_quote6(f, q, End6::Dst, vip, rn.vip_port);
        // A hop between the MUX and the member keeps its own address; the member's becomes the VIP.
        rewrite_outer6(f, q, End6::Src, (q.outer_src == q.dst).then_some(vip));
        set_macs(f, &hop);
        Verdict::Forward { port: hop.port }
    });
    Some((outcome, v))
}

/// Hop limit and MTU checks before an in-place rewrite (no error is sent about an error).
fn out_checks<B: PacketBuf>(buf: &B, q: &QuotedFlow6, hop: &Hop) -> Option<Verdict> {
    let f = buf.data();
    if f.get(q.l3 + ipv6::field::HOP_LIMIT).is_none_or(|&h| h <= 1) {
        return Some(Verdict::Drop(DropReason::Ttl));
    }
    if q.end - q.l3 > usize::from(hop.mtu) {
        return Some(Verdict::Drop(DropReason::TooBig));
    }
    None
}

/// The member (and delivery) of the flow an error to a frontend is about: the live entry's when
/// this worker holds one, else the rule's hash choice for the client's tuple.
fn flow_member(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    q: &QuotedFlow6,
    now: u32,
) -> Option<(IcmpErrorOutcome, MemberId, Target6)> {
    let snap = view.snapshot;
    let key = q.client_key();
    let live = cx
        .lane
        .table
        .lookup(&key, key.hash_seeded(cx.seed))
        .filter(|e| !e.flow.is_expired(now))
        .map(|e| *e);
    if let Some((mid, t)) = live.and_then(|e| flow_target(view, &e, key.dst_ip)) {
        return Some((IcmpErrorOutcome::ToMember, mid, t));
    }
    let rule = snap.lookup6(key.dst_ip, q.proto, key.dst_port)?;
    let m = Meta6 {
        key,
        ..Meta6::default()
    };
    let mid = snap.choose(rule.id, key.dst_port, dist_hash6(view, rule, &m))?;
    let t = Target6 {
        addr: snap.member(mid)?.addr6(),
        port: rule.backend_port_for(key.dst_port),
        floating: rule.floating_ip,
        encap: rule.dsr_encapsulation,
        gue_port: rule.gue_port,
        l4_delta: None,
    };
    Some((IcmpErrorOutcome::ToMemberHashed, mid, t))
}

/// Sends an error to a frontend on to the flow's member `t` by `hop`: NAT66 rewrites the outer
/// destination and the quoted source; floating IP forwards it as the flow's packets go.
fn to_flow_member<B: PacketBuf>(
    view: &View<'_>,
    buf: &mut B,
    q: &QuotedFlow6,
    t: &Target6,
    hop: &Hop,
) -> Verdict {
    if let Some(v) = out_checks(buf, q, hop) {
        return v;
    }
    if t.floating {
        let f = buf.data();
        let m = Meta6 {
            l3: q.l3 as u16,
            l4: q.icmp as u16,
            ip_len: (q.end - q.l3) as u32,
            vlan: EthernetFrame::new_checked(f)
                .ok()
                .and_then(|e| e.l3().ok())
                .and_then(|l| l.vlan_tci),
            key: FlowKey6::new(q.outer_src, q.outer_dst, 0, 0, next_header::ICMPV6),
            hop_limit: f.get(q.l3 + ipv6::field::HOP_LIMIT).copied().unwrap_or(0),
            ..Meta6::default()
        };
        let outer_src = super::outer_source(view, hop.port).unwrap_or(0);
        return to_member6(buf, &m, t, hop, outer_src, 0);
    }
    quote_source_to(buf.data_mut(), q, t.addr, t.port, hop)
}

/// Sends an error about a live outbound translation on to its member: the outer destination
/// and the quoted source become the member's endpoint; `None` when the quote names none.
fn snat_member<B: PacketBuf>(
    cx: &mut Cx6<'_>,
    view: &View<'_>,
    buf: &mut B,
    q: &QuotedFlow6,
    now: u32,
) -> Option<(IcmpErrorOutcome, Verdict)> {
    let snat = &cx.lane.snat;
    if snat.is_empty() {
        return None;
    }
    let slot = snat.lookup_reply(&q.client_key())?;
    let t = *snat.get(slot).filter(|t| !t.is_expired(now))?;
    let outcome = IcmpErrorOutcome::ToSnatMember;
    let Some(mid) = snat_member6(view.snapshot, &t) else {
        return Some((outcome, Verdict::Drop(DropReason::NoRoute)));
    };
    let hop = match cx.hops.member(view, mid) {
        Ok(h) => h,
        Err(r) => return Some((outcome, Verdict::Drop(r))),
    };
    let v = out_checks(buf, q, hop)
        .unwrap_or_else(|| quote_source_to(buf.data_mut(), q, t.member, t.member_port, hop));
    Some((outcome, v))
}

/// Rewrites the quoted source and the outer destination to `addr`/`port` and sends the error by
/// `hop`.
fn quote_source_to(f: &mut [u8], q: &QuotedFlow6, addr: u128, port: u16, hop: &Hop) -> Verdict {
    rewrite_quote6(f, q, End6::Src, addr, port);
    rewrite_outer6(f, q, End6::Dst, Some(addr));
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}
