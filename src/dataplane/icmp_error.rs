//! ICMP errors that belong to a flow, delivered by the data path (docs/design.md §4.4), so that
//! path-MTU discovery and other errors work through the MUX.
//!
//! An ICMP error (destination unreachable including fragmentation needed, time exceeded,
//! parameter problem) quotes the IPv4 header and at least 8 bytes of transport header of the packet
//! it is about. [`quoted_flow`] finds that quote; which way the error goes depends on where the
//! quoted packet went:
//!
//! - **To a frontend** (outer destination = a VIP, quoted source = that VIP): a router between
//!   the client and the MUX (or the client) reports a packet sent from the VIP, i.e. a NAT reply
//!   after reverse NAT, or a floating-IP member's direct reply. The flow is the quote reversed
//!   (client → VIP:frontend_port, [`QuotedFlow::client_key`]); its member comes from the flow
//!   table, or, without an entry on this worker, from the rule's Maglev table with the same
//!   distribution hash a new flow of that tuple gets. NAT rules: the outer destination and the
//!   quoted source become the member and backend port (quoted IPv4 and transport checksums and
//!   the ICMP checksum updated), TTL − 1. Floating IP: forwarded unchanged but for the MAC rewrite
//!   and TTL (the member holds the VIP), or encapsulated toward the member with IPIP/GUE like the
//!   flow's packets (as Katran and GLB do).
//! - **About an outbound connection** (outer destination = a frontend IP, the quote =
//!   frontend IP:SNAT port → remote, i.e. [`QuotedFlow::client_key`] is a live SNAT
//!   translation's reply key): a host or router on the way to the remote endpoint reports a
//!   member's packet after SNAT. The outer destination and the quoted source become the member
//!   and its port (checksums as above), TTL − 1, and it goes to the member
//!   ([`IcmpErrorOutcome::ToSnatMember`]).
//! - **In transit** (outer destination not a frontend, quoted destination = a member and its
//!   backend port of a NAT rule): a member, or a router between the MUX and the member, reports a
//!   client's packet after NAT (client → member:backend_port). It goes to the client
//!   reverse-translated as a NAT reply is: quoted member:backend_port → VIP:frontend_port, and
//!   the outer source (when it is the member) → VIP, TTL − 1.
//!
//! Anything else quoting no flow is dropped `icmp_no_flow`; a quote too short to hold the
//! IPv4 header and 8 bytes of ports is `bad_header`. Every outcome also counts in
//! [`IcmpErrorOutcome`]. Redirects, source quench and informational messages are not handled here
//! (the slow path keeps them). All reads and writes are bounds-checked; nothing allocates.

use super::classify::Meta;
use super::counters::WorkerCounters;
use super::expiry::member_of;
use super::pipeline::flow_target;
use super::reason::{reasons, DropReason};
use super::rewrite::{to_member, Target};
use super::route::{client_hop, Hop, HopCache};
use super::{Verdict, View};
use crate::balance::hash::flow_hash;
use crate::balance::snapshot::MemberId;
use crate::flow::{FlowEntry, FlowKey, FlowTable, SnatTable};
use crate::wire::checksum::{apply, apply_udp, delta_ttl_decrement, delta_u16, delta_u32};
use crate::wire::icmp::msg_type;
use crate::wire::{
    ethernet, ethertype, icmp, ipv4, protocol, tcp, udp, EthernetFrame, Ipv4Packet, PacketBuf,
};
use std::net::Ipv4Addr;

reasons! {
    /// What the data path did with an ICMP error about a flow (one counter each).
    pub enum IcmpErrorOutcome {
        /// Sent to the member of the flow entry the quote names.
        ToMember => "to_member",
        /// No flow entry on this worker: sent to the member the rule's hash chooses for the tuple.
        ToMemberHashed => "to_member_hashed",
        /// From a member (or a hop before it) about a client's packet: reverse-translated to the
        /// client.
        ToClient => "to_client",
        /// About a member's outbound connection (SNAT): translated back to the member.
        ToSnatMember => "to_snat_member",
        /// The quote names no flow of a rule (dropped `icmp_no_flow`).
        NoFlow => "no_flow",
        /// The quote is too short or not IPv4 (dropped `bad_header`).
        Malformed => "malformed",
    }
}

/// Where the packet an ICMP error quotes sits in the frame, and its tuple as quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedFlow {
    /// Offset of the outer IPv4 header.
    pub l3: usize,
    /// Offset of the ICMP header.
    pub icmp: usize,
    /// Offset of the quoted IPv4 header.
    pub inner: usize,
    /// Offset of the quoted transport header (at least 8 bytes of it are in the frame).
    pub inner_l4: usize,
    /// End of the outer IPv4 packet in the frame.
    pub end: usize,
    /// Outer source address (host order).
    pub outer_src: u32,
    /// Outer destination address (host order).
    pub outer_dst: u32,
    /// Quoted source address (host order).
    pub src: u32,
    /// Quoted destination address (host order).
    pub dst: u32,
    /// Quoted source port.
    pub sport: u16,
    /// Quoted destination port.
    pub dport: u16,
    /// Quoted protocol (TCP or UDP).
    pub proto: u8,
}

impl QuotedFlow {
    /// The flow key of an error to a frontend: the quoted VIP → client packet reversed, i.e. the
    /// key the client's packets (client → VIP:frontend_port) have in the flow table.
    pub fn client_key(&self) -> FlowKey {
        FlowKey::new(self.dst, self.src, self.dport, self.sport, self.proto)
    }

    /// The key of the quote as is (client → member:backend_port for an error in transit).
    pub fn quoted_key(&self) -> FlowKey {
        FlowKey::new(self.src, self.dst, self.sport, self.dport, self.proto)
    }
}

/// What [`quoted_flow`] found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// Not an ICMP error of a type delivered to flows (echo, redirect, not ICMP, ...).
    NotFlowError,
    /// An ICMP error about a flow.
    Flow(QuotedFlow),
    /// An ICMP error whose quote is not a TCP/UDP packet with ports (or a non-first fragment).
    NoPorts,
    /// An ICMP error too short to hold the quoted IPv4 header and 8 bytes of transport header.
    Malformed,
}

/// The big-endian 16-bit word at `at`, if the frame holds it.
fn rd16(f: &[u8], at: usize) -> Option<u16> {
    let b = f.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The big-endian 32-bit word at `at`, if the frame holds it.
fn rd32(f: &[u8], at: usize) -> Option<u32> {
    let b = f.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes `v` at `at` when the frame holds it.
fn wr16(f: &mut [u8], at: usize, v: u16) {
    if let Some(b) = f.get_mut(at..at.saturating_add(2)) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// Writes `v` at `at` when the frame holds it.
fn wr32(f: &mut [u8], at: usize, v: u32) {
    if let Some(b) = f.get_mut(at..at.saturating_add(4)) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// The flow an ICMP error in `frame` quotes (the one place the quote is parsed: the data path
/// and, later, worker ownership of errors use it).
pub fn quoted_flow(frame: &[u8]) -> Quote {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Quote::NotFlowError;
    };
    let Ok(l3) = eth.l3() else {
        return Quote::NotFlowError;
    };
    if l3.ethertype != ethertype::IPV4 {
        return Quote::NotFlowError;
    }
    let Some(Ok(ip)) = frame.get(l3.offset..).map(Ipv4Packet::new_checked) else {
        return Quote::NotFlowError;
    };
    if ip.protocol() != protocol::ICMP || ip.is_fragment() {
        return Quote::NotFlowError;
    }
    let l3o = l3.offset;
    let icmp_at = l3o + ip.header_len();
    let end = l3o + usize::from(ip.total_len());
    let Some(&t) = frame.get(icmp_at).filter(|_| icmp_at < end) else {
        return Quote::NotFlowError;
    };
    if !matches!(
        t,
        msg_type::DEST_UNREACHABLE | msg_type::TIME_EXCEEDED | msg_type::PARAM_PROBLEM
    ) {
        return Quote::NotFlowError;
    }
    let inner = icmp_at + icmp::HEADER_LEN;
    let frame = frame.get(..end).unwrap_or(&[]);
    let Some(&ver_ihl) = frame.get(inner) else {
        return Quote::Malformed;
    };
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || ihl < ipv4::HEADER_LEN {
        return Quote::Malformed;
    }
    let inner_l4 = inner + ihl;
    if inner_l4 + 8 > frame.len() {
        return Quote::Malformed;
    }
    let (Some(ff), Some(&proto)) = (
        rd16(frame, inner + ipv4::field::FLG_OFF.start),
        frame.get(inner + ipv4::field::PROTOCOL),
    ) else {
        return Quote::Malformed;
    };
    if ff & ipv4::FRAG_OFFSET_MASK != 0 || !matches!(proto, protocol::TCP | protocol::UDP) {
        return Quote::NoPorts;
    }
    let word = |at| rd32(frame, at).unwrap_or(0);
    let half = |at| rd16(frame, at).unwrap_or(0);
    Quote::Flow(QuotedFlow {
        l3: l3o,
        icmp: icmp_at,
        inner,
        inner_l4,
        end,
        outer_src: u32::from(ip.src_addr()),
        outer_dst: u32::from(ip.dst_addr()),
        src: word(inner + ipv4::field::SRC_ADDR.start),
        dst: word(inner + ipv4::field::DST_ADDR.start),
        sport: half(inner_l4),
        dport: half(inner_l4 + 2),
        proto,
    })
}

/// Which end of a packet a rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Src,
    Dst,
}

/// Offset of the address of `end` in an IPv4 header.
fn addr_field(end: End) -> usize {
    match end {
        End::Src => ipv4::field::SRC_ADDR.start,
        End::Dst => ipv4::field::DST_ADDR.start,
    }
}

/// Rewrites the quoted packet's `end` to `addr:port`: the quoted IPv4 header checksum, the quoted
/// transport checksum (when the quote holds it; a zero UDP checksum stays zero) and the ICMP
/// checksum are updated incrementally (RFC 1624), so a checksum that was right stays right.
fn rewrite_quote(f: &mut [u8], q: &QuotedFlow, end: End, addr: u32, port: u16) {
    let a_at = q.inner + addr_field(end);
    let p_at = q.inner_l4
        + match end {
            End::Src => 0,
            End::Dst => 2,
        };
    let (Some(old_addr), Some(old_port)) = (rd32(f, a_at), rd16(f, p_at)) else {
        return;
    };
    let d_addr = delta_u32(old_addr, addr);
    let d_port = delta_u16(old_port, port);
    wr32(f, a_at, addr);
    wr16(f, p_at, port);
    let mut d_icmp = d_addr + d_port;
    let ipc_at = q.inner + ipv4::field::CHECKSUM.start;
    if let Some(old) = rd16(f, ipc_at) {
        let new = apply(old, d_addr);
        wr16(f, ipc_at, new);
        d_icmp += delta_u16(old, new);
    }
    let (l4c_at, is_udp) = match q.proto {
        protocol::UDP => (q.inner_l4 + udp::field::CHECKSUM.start, true),
        _ => (q.inner_l4 + tcp::field::CHECKSUM.start, false),
    };
    if let Some(old) = rd16(f, l4c_at).filter(|_| l4c_at + 2 <= q.end) {
        let new = if is_udp {
            apply_udp(old, d_addr + d_port)
        } else {
            apply(old, d_addr + d_port)
        };
        wr16(f, l4c_at, new);
        d_icmp += delta_u16(old, new);
    }
    let ic_at = q.icmp + icmp::field::CHECKSUM.start;
    if let Some(old) = rd16(f, ic_at) {
        wr16(f, ic_at, apply(old, d_icmp));
    }
}

/// Rewrites the outer header's `end` address (when `addr` is Some) and decrements its TTL, one
/// incremental IPv4 checksum update for both.
fn rewrite_outer(f: &mut [u8], q: &QuotedFlow, end: End, addr: Option<u32>) {
    let Some(&ttl) = f.get(q.l3 + ipv4::field::TTL) else {
        return;
    };
    let mut delta = delta_ttl_decrement(ttl);
    if let Some(a) = addr {
        let at = q.l3 + addr_field(end);
        if let Some(old) = rd32(f, at) {
            delta += delta_u32(old, a);
            wr32(f, at, a);
        }
    }
    if let Some(t) = f.get_mut(q.l3 + ipv4::field::TTL) {
        *t = ttl.saturating_sub(1);
    }
    let c_at = q.l3 + ipv4::field::CHECKSUM.start;
    if let Some(old) = rd16(f, c_at) {
        wr16(f, c_at, apply(old, delta));
    }
}

/// Writes the Ethernet addresses of `hop`.
fn set_macs(f: &mut [u8], hop: &Hop) {
    if let Some(h) = f.get_mut(..ethernet::field::SOURCE.end) {
        h.copy_from_slice(&hop.macs);
    }
}

/// The worker state an ICMP error's delivery reads (the flow table is only looked up).
pub(super) struct IcmpCx<'p> {
    /// The worker's flow table.
    pub table: &'p mut FlowTable,
    /// The worker's outbound SNAT translations (only looked up).
    pub snat: &'p SnatTable,
    /// The worker's counters.
    pub counters: &'p mut WorkerCounters,
    /// The worker's next hops toward members.
    pub hops: &'p mut HopCache,
    /// The table hash seed.
    pub seed: u64,
}

/// Delivers the ICMP error in `buf` if it is one about a flow (see the module documentation);
/// `None` for other ICMP messages, which keep the verdict classification gave them.
#[cold]
#[inline(never)]
pub(super) fn handle<B: PacketBuf>(
    cx: &mut IcmpCx<'_>,
    view: &View<'_>,
    buf: &mut B,
    now: u32,
) -> Option<Verdict> {
    let (outcome, v) = match quoted_flow(buf.data()) {
        Quote::NotFlowError => return None,
        Quote::Malformed => (
            IcmpErrorOutcome::Malformed,
            Verdict::Drop(DropReason::BadHeader),
        ),
        Quote::NoPorts => (
            IcmpErrorOutcome::NoFlow,
            Verdict::Drop(DropReason::IcmpNoFlow),
        ),
        Quote::Flow(q) => deliver(cx, view, buf, &q, now),
    };
    cx.counters.icmp_errors[outcome.index()] += 1;
    Some(v)
}

/// The no-flow outcome.
const NO_FLOW: (IcmpErrorOutcome, Verdict) = (
    IcmpErrorOutcome::NoFlow,
    Verdict::Drop(DropReason::IcmpNoFlow),
);

/// Sends the error `q` describes toward the flow's member or client.
fn deliver<B: PacketBuf>(
    cx: &mut IcmpCx<'_>,
    view: &View<'_>,
    buf: &mut B,
    q: &QuotedFlow,
    now: u32,
) -> (IcmpErrorOutcome, Verdict) {
    let snap = view.snapshot;
    if snap.is_frontend(q.outer_dst) {
        if q.src != q.outer_dst {
            return NO_FLOW;
        }
        if let Some(found) = snat_member(cx, view, buf, q, now) {
            return found;
        }
        let Some((outcome, mid, t)) = flow_member(cx, view, q, now) else {
            return NO_FLOW;
        };
        let hop = match cx.hops.member(view, mid) {
            Ok(h) => h,
            Err(r) => return (outcome, Verdict::Drop(r)),
        };
        return (outcome, to_flow_member(buf, q, &t, hop, view));
    }
    let Some(rn) = snap.reverse_nat(q.dst, q.proto, q.dport) else {
        return NO_FLOW;
    };
    let hop = match client_hop(view, Ipv4Addr::from(q.outer_dst)) {
        Ok(h) => h,
        Err(r) => return (IcmpErrorOutcome::ToClient, Verdict::Drop(r)),
    };
    let v = out_checks(buf, q, &hop).unwrap_or_else(|| {
        let vip = u32::from(rn.vip);
        let f = buf.data_mut();
        rewrite_quote(f, q, End::Dst, vip, rn.vip_port);
        // A hop between the MUX and the member keeps its own address; the member's becomes the VIP.
        rewrite_outer(f, q, End::Src, (q.outer_src == q.dst).then_some(vip));
        set_macs(f, &hop);
        Verdict::Forward { port: hop.port }
    });
    (IcmpErrorOutcome::ToClient, v)
}

/// Sends an error about a live outbound translation on to its member: the outer destination
/// and the quoted source become the member's endpoint; `None` when the quote names none.
fn snat_member<B: PacketBuf>(
    cx: &mut IcmpCx<'_>,
    view: &View<'_>,
    buf: &mut B,
    q: &QuotedFlow,
    now: u32,
) -> Option<(IcmpErrorOutcome, Verdict)> {
    if cx.snat.is_empty() {
        return None;
    }
    let slot = cx.snat.lookup_reply(&q.client_key())?;
    let t = *cx.snat.get(slot).filter(|t| !t.is_expired(now))?;
    let outcome = IcmpErrorOutcome::ToSnatMember;
    let Some(mid) = member_of(view.snapshot, &t.entry, t.member) else {
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

/// TTL and MTU checks before an in-place rewrite (no error is ever sent about an ICMP error).
fn out_checks<B: PacketBuf>(buf: &B, q: &QuotedFlow, hop: &Hop) -> Option<Verdict> {
    let f = buf.data();
    if f.get(q.l3 + ipv4::field::TTL).is_none_or(|&t| t <= 1) {
        return Some(Verdict::Drop(DropReason::Ttl));
    }
    if q.end - q.l3 > usize::from(hop.mtu) {
        return Some(Verdict::Drop(DropReason::TooBig));
    }
    None
}

/// The member (and how to reach it) of the flow an error to a frontend is about: the flow entry
/// when this worker holds a live one, else the rule's hash choice for the client's tuple.
fn flow_member(
    cx: &mut IcmpCx<'_>,
    view: &View<'_>,
    q: &QuotedFlow,
    now: u32,
) -> Option<(IcmpErrorOutcome, MemberId, Target)> {
    let snap = view.snapshot;
    let key = q.client_key();
    let entry = cx
        .table
        .lookup(&key, key.hash_seeded(cx.seed))
        .filter(|e| !e.is_expired(now))
        .map(|e| *e);
    if let Some(found) = entry.and_then(|e| entry_member(view, &e, key.dst_ip)) {
        return Some((IcmpErrorOutcome::ToMember, found.0, found.1));
    }
    let rule = snap.lookup(key.dst_ip, q.proto, key.dst_port)?;
    let h = flow_hash(
        snap.hash_seed,
        rule.load_distribution,
        key.src_ip,
        key.dst_ip,
        q.proto,
        key.src_port,
        key.dst_port,
    );
    let mid = snap.choose(rule.id, key.dst_port, h)?;
    let info = snap.member(mid)?;
    let t = Target {
        addr: info.addr4(),
        port: rule.backend_port_for(key.dst_port),
        floating: rule.floating_ip,
        encap: rule.dsr_encapsulation,
        gue_port: rule.gue_port,
        sums: None,
    };
    Some((IcmpErrorOutcome::ToMemberHashed, mid, t))
}

/// The member and delivery of a live flow entry to `vip`, while its rule (still on that frontend
/// after a reload) and member exist.
fn entry_member(view: &View<'_>, e: &FlowEntry, vip: u32) -> Option<(MemberId, Target)> {
    let snap = view.snapshot;
    let rule = snap
        .rules
        .get(e.rule_id as usize)
        .filter(|r| r.frontend_addr4() == vip)?;
    let mid = match snap.members.get(e.member_id as usize) {
        Some(mi) if mi.addr4() == e.member_addr && mi.pool == rule.pool => MemberId(e.member_id),
        _ => snap.rule_member_by_addr(rule.id, e.member_addr)?,
    };
    Some((mid, flow_target(e, rule)))
}

/// Sends an error to a frontend on to the flow's member `t` by `hop`: NAT rewrites the outer
/// destination and the quoted source; floating IP forwards it as the flow's packets go (MAC
/// rewrite, or IPIP/GUE).
fn to_flow_member<B: PacketBuf>(
    buf: &mut B,
    q: &QuotedFlow,
    t: &Target,
    hop: &Hop,
    view: &View<'_>,
) -> Verdict {
    if let Some(v) = out_checks(buf, q, hop) {
        return v;
    }
    if t.floating {
        let f = buf.data();
        let m = Meta {
            l3: q.l3 as u16,
            l4: q.icmp as u16,
            ip_len: (q.end - q.l3) as u16,
            vlan: EthernetFrame::new_checked(f)
                .ok()
                .and_then(|e| e.l3().ok())
                .and_then(|l| l.vlan_tci),
            key: FlowKey::new(q.outer_src, q.outer_dst, 0, 0, protocol::ICMP),
            df: false,
            ..Meta::default()
        };
        return to_member(buf, &m, t, hop, view);
    }
    quote_source_to(buf.data_mut(), q, t.addr, t.port, hop)
}

/// Sends an error to a frontend on to `addr` by `hop`, the quoted source (the frontend's
/// endpoint) rewritten to `addr:port` and the outer destination to `addr`.
fn quote_source_to(f: &mut [u8], q: &QuotedFlow, addr: u32, port: u16, hop: &Hop) -> Verdict {
    rewrite_quote(f, q, End::Src, addr, port);
    rewrite_outer(f, q, End::Dst, Some(addr));
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}
