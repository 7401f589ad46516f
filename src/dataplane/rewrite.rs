//! In-place rewrites of a classified frame (docs/design.md §3.5), all with incremental checksum
//! updates (RFC 1624) through the `wire` views:
//!
//! - **NAT**: destination VIP:frontend_port → DIP:backend_port; replies: source DIP:backend_port →
//!   VIP:frontend_port.
//! - **Floating IP, MAC rewrite** (`dsr_encapsulation = "none"`): destination stays the VIP, only
//!   the port may change (rules whose backend port differs from the frontend port).
//! - **IPIP / GUE**: the inner packet keeps the VIP (and gets the backend port); an outer IPv4
//!   header (source = the egress interface address, destination = the member, TTL 64, TOS, DF and
//!   ident copied from the inner header) and for GUE an outer UDP header (source port from the
//!   5-tuple distribution hash, destination = the pool's `gue_port`, checksum 0) + 4-byte GUE
//!   header are prepended; the Ethernet header is rebuilt in front.
//! - **Ethernet**: source = egress port MAC, destination = next-hop MAC; the received 802.1Q tag
//!   (if any) is kept.
//!
//! **TTL** (a MUX on the path is a router hop): NAT, NAT replies and MAC-rewrite delivery
//! decrement the TTL (so loops die and traceroute shows the MUX); with IPIP/GUE the inner TTL is
//! kept untouched (the tunnel is one logical link, as in Ananta and GLB) and the outer TTL is 64.
//! Packets arriving with TTL ≤ 1 never get here (the slow path answers time-exceeded).
//!
//! **MTU**: checked before anything is changed, so a `TooBig` frame reaches the slow path as the
//! sender sent it (the ICMP error quotes it): a packet longer than the egress MTU minus the
//! encapsulation overhead is `ToSlowPath(TooBig { mtu: usable })` with DF, else dropped; both are
//! counted `too_big`.

use super::classify::Meta;
use super::encap::{encapsulate_as, encapsulate_untagged, Outer};
use super::reason::{DropReason, Exception};
use super::route::Hop;
use super::{Verdict, View};
use crate::balance::hash::hash_5tuple;
use crate::balance::snapshot::Rule;
use crate::config::DsrEncapsulation;
use crate::flow::{FlowEntry, FlowFlags, FlowSums};
use crate::wire::builder::{
    gue_source_port, prepend_ethernet, prepend_gue, prepend_ipip, EncapSpec, L2Spec, DEFAULT_TTL,
    GUE_OVERHEAD, IPIP_OVERHEAD,
};
use crate::wire::checksum::{
    add16, apply, apply_folded, apply_udp, apply_udp_folded, delta_ttl_decrement, delta_u16,
    delta_u32, fold,
};
use crate::wire::{
    ethernet, ethertype, ipv4, protocol, tcp, udp, Ipv4Packet, PacketBuf, TcpPacket, UdpPacket,
};
use std::net::Ipv4Addr;

/// Where a client-to-backend packet goes and how it is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Member address (host order).
    pub addr: u32,
    /// Backend port (0 for protocols without ports).
    pub port: u16,
    /// Floating IP: destination stays the VIP.
    pub floating: bool,
    /// Delivery of floating-IP packets.
    pub encap: DsrEncapsulation,
    /// GUE destination port.
    pub gue_port: u16,
    /// The flow's rewrite constants ([`flow_sums`] of this target and the packet's 5-tuple),
    /// when the caller has them; `None`: computed from the packet.
    pub sums: Option<FlowSums>,
}

/// The rewrite constants of a flow whose packets (as `m` classifies them: TCP/UDP ports or
/// none) go to `t` (docs/design.md §3.5): the folded checksum deltas of the NAT of
/// `m.key.dst_ip` (and `m.key.dst_port`, when it changes) to `t`, and the GUE ports.
/// Stored per flow, they spare each packet computing them; the checksums come out bit-identical
/// (a delta folded once is the same ones'-complement term, zero only when the unfolded one is).
#[inline(always)]
pub fn flow_sums(view: &View<'_>, m: &Meta, t: &Target) -> FlowSums {
    if t.floating {
        let gue = t.encap == DsrEncapsulation::Gue;
        return FlowSums {
            gue_sport: if gue { gue_port_for(view, m) } else { 0 },
            gue_dport: if gue { t.gue_port } else { 0 },
            ..FlowSums::default()
        };
    }
    let (ip_delta, l4_delta) = nat_deltas(m, t.addr, t.port);
    FlowSums {
        ip_delta,
        l4_delta,
        ..FlowSums::default()
    }
}

/// The folded deltas of the NAT of `m.key.dst_ip:m.key.dst_port` to `addr:port`: the IPv4
/// header's (address) and the transport checksum's (address, and port when it changes).
#[inline]
fn nat_deltas(m: &Meta, addr: u32, port: u16) -> (u16, u16) {
    let d_addr = delta_u32(m.key.dst_ip, addr);
    let d_port = if port != m.key.dst_port {
        delta_u16(m.key.dst_port, port)
    } else {
        0
    };
    (fold(d_addr) as u16, fold(d_addr + d_port) as u16)
}

/// Which end of the packet a NAT rewrite changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Src,
    Dst,
}

/// Rewrites an address and (for TCP/UDP with `port` Some) a port, updating the IPv4 and L4
/// checksums incrementally. The frame was validated by `classify`; every access is still checked.
#[inline(always)]
fn nat(frame: &mut [u8], m: &Meta, end: End, addr: u32, port: Option<u16>) {
    let (l3, l4, end_ip) = (
        usize::from(m.l3),
        usize::from(m.l4),
        usize::from(m.l3) + usize::from(m.ip_len),
    );
    let Some(ipb) = frame.get_mut(l3..end_ip) else {
        return;
    };
    if ipb.len() < ipv4::HEADER_LEN {
        return;
    }
    let new = Ipv4Addr::from(addr);
    let mut ip = Ipv4Packet::new_unchecked(&mut ipb[..]);
    let old = match end {
        End::Src => ip.rewrite_src_addr(new),
        End::Dst => ip.rewrite_dst_addr(new),
    };
    let Some(seg) = ipb.get_mut(l4 - l3..) else {
        return;
    };
    match m.key.proto {
        protocol::TCP if seg.len() >= tcp::HEADER_LEN => {
            let mut t = TcpPacket::new_unchecked(seg);
            t.update_checksum_for_addr(old, new);
            match (end, port) {
                (End::Src, Some(p)) if p != m.key.src_port => {
                    t.rewrite_src_port(p);
                }
                (End::Dst, Some(p)) if p != m.key.dst_port => {
                    t.rewrite_dst_port(p);
                }
                _ => {}
            }
        }
        protocol::UDP if seg.len() >= udp::HEADER_LEN => {
            let mut u = UdpPacket::new_unchecked(seg);
            u.update_checksum_for_addr(old, new);
            match (end, port) {
                (End::Src, Some(p)) if p != m.key.src_port => {
                    u.rewrite_src_port(p);
                }
                (End::Dst, Some(p)) if p != m.key.dst_port => {
                    u.rewrite_dst_port(p);
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// The NAT of a client-to-member packet and its TTL decrement in one pass: destination address,
/// destination port (TCP/UDP with `port` Some and different), TTL − 1, and one RFC 1624 update per
/// checksum instead of one per field. The result is bit-identical to the field-by-field updates
/// (`nat` then `decrement_ttl`): ones'-complement addition is associative and an intermediate
/// checksum re-enters the next update complemented, so folding once gives the same value; the UDP
/// rules (a zero checksum stays zero, a computed zero is sent as `0xffff`) are applied once at
/// the end with the same outcome. Frames it cannot handle (shorter than `classify` promised) go
/// the field-by-field way.
#[inline(always)]
fn nat_dst_and_ttl(
    frame: &mut [u8],
    m: &Meta,
    addr: u32,
    port: Option<u16>,
    pre: Option<FlowSums>,
) {
    if let Some(s) = pre {
        if nat_dst_and_ttl_plain(frame, m, addr, port, s).is_some() {
            return;
        }
    }
    if nat_dst_and_ttl_fast(frame, m, addr, port, pre).is_none() {
        nat(frame, m, End::Dst, addr, port);
        decrement_ttl(frame, m);
    }
}

/// The transport header's offset in the frame shape of the classifier's fast path: untagged
/// Ethernet, IPv4 without options.
pub(super) const PLAIN_L4: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;

/// [`nat_dst_and_ttl_fast`] with the flow's rewrite constants `s` for a frame of the common shape
/// (untagged, IPv4 without options, TCP or UDP): every field at a constant offset, one length
/// check. `None` (nothing written) for any other shape or a frame too short for its header.
#[inline(always)]
fn nat_dst_and_ttl_plain(
    frame: &mut [u8],
    m: &Meta,
    addr: u32,
    port: Option<u16>,
    s: FlowSums,
) -> Option<()> {
    match m.key.proto {
        protocol::TCP => nat_plain::<false>(frame, m, addr, port, s),
        protocol::UDP => nat_plain::<true>(frame, m, addr, port, s),
        _ => None,
    }
}

/// The end of a TCP header in the common frame shape.
pub(super) const PLAIN_TCP_END: usize = PLAIN_L4 + tcp::HEADER_LEN;
/// The end of a UDP header in the common frame shape.
const PLAIN_UDP_END: usize = PLAIN_L4 + udp::HEADER_LEN;

/// [`nat_dst_and_ttl_plain`] for TCP (`UDP` false) or UDP, the protocol a constant: the frame's
/// headers viewed as one fixed-size array after one length test, so every offset is proven.
/// `None` (nothing written) for another shape or a frame too short for its headers.
#[inline(always)]
fn nat_plain<const UDP: bool>(
    frame: &mut [u8],
    m: &Meta,
    addr: u32,
    port: Option<u16>,
    s: FlowSums,
) -> Option<()> {
    // `l4` is `l3` (14, or 18 behind a tag) plus the IPv4 header (20 bytes or more): 34 means
    // untagged and without options.
    if usize::from(m.l4) != PLAIN_L4 {
        return None;
    }
    if UDP {
        let h = frame.first_chunk_mut::<PLAIN_UDP_END>()?;
        plain_ip_dst_and_ttl(h, addr, s.ip_delta);
        const P: usize = PLAIN_L4 + UDP_PORT;
        const C: usize = PLAIN_L4 + UDP_SUM;
        l4_nat_dst_folded::<PLAIN_UDP_END, P, C>(h, true, s.l4_delta, port, m.key.dst_port);
    } else {
        let h = frame.first_chunk_mut::<PLAIN_TCP_END>()?;
        nat_plain_tcp(h, addr, port, m.key.dst_port, s);
    }
    Some(())
}

/// The NAT of a TCP segment in a frame of the common shape whose headers are `h`: destination
/// `addr` and (unless `None` or equal to `dport`, the segment's destination port now) port
/// `port`, TTL − 1, both checksums updated with the flow's constants `s`.
#[inline(always)]
pub(super) fn nat_plain_tcp(
    h: &mut [u8; PLAIN_TCP_END],
    addr: u32,
    port: Option<u16>,
    dport: u16,
    s: FlowSums,
) {
    plain_ip_dst_and_ttl(h, addr, s.ip_delta);
    const P: usize = PLAIN_L4 + TCP_PORT;
    const C: usize = PLAIN_L4 + TCP_SUM;
    l4_nat_dst_folded::<PLAIN_TCP_END, P, C>(h, false, s.l4_delta, port, dport);
}

/// [`ip_dst_and_ttl`] on the IPv4 header of a frame of the common shape whose first `N` bytes
/// (`N` at least [`PLAIN_L4`], checked at compile time) are `h`, with the address's delta
/// `d_addr` folded to 16 bits (a flow's): the checksum takes two end-around-carry adds
/// ([`add16`]) instead of a fold, the same value.
#[inline(always)]
fn plain_ip_dst_and_ttl<const N: usize>(h: &mut [u8; N], addr: u32, d_addr: u16) {
    const { assert!(N >= PLAIN_L4) };
    let Some(ip) = h
        .get_mut(ethernet::HEADER_LEN..PLAIN_L4)
        .and_then(|ip| <&mut [u8; ipv4::HEADER_LEN]>::try_from(ip).ok())
    else {
        return;
    };
    let ttl = ip[ipv4::field::TTL];
    let hc = be16(ip, ipv4::field::CHECKSUM.start);
    // `delta_ttl_decrement` is 0xfeff or 0xffff: a 16-bit term.
    let c = !add16(add16(!hc, d_addr), delta_ttl_decrement(ttl) as u16);
    ip[ipv4::field::DST_ADDR].copy_from_slice(&addr.to_be_bytes());
    ip[ipv4::field::TTL] = ttl.saturating_sub(1);
    ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
}

/// The IPv4 header's part of the NAT of the destination with the TTL decrement: destination
/// `addr`, TTL − 1, and one checksum update for `d_addr` (the address's delta) and the TTL.
#[inline(always)]
fn ip_dst_and_ttl(ip: &mut [u8; ipv4::HEADER_LEN], addr: u32, d_addr: u64) {
    // TTL (one 16-bit word with the protocol byte), destination, checksum.
    let ttl = ip[ipv4::field::TTL];
    let hc = be16(ip, ipv4::field::CHECKSUM.start);
    let c = apply(hc, d_addr + delta_ttl_decrement(ttl));
    ip[ipv4::field::DST_ADDR].copy_from_slice(&addr.to_be_bytes());
    ip[ipv4::field::TTL] = ttl.saturating_sub(1);
    ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
}

/// TCP: the destination port's offset in the header.
const TCP_PORT: usize = tcp::field::DST_PORT.start;
/// TCP: the checksum's offset in the header.
const TCP_SUM: usize = tcp::field::CHECKSUM.start;
/// UDP: the destination port's offset in the header.
const UDP_PORT: usize = udp::field::DST_PORT.start;
/// UDP: the checksum's offset in the header.
const UDP_SUM: usize = udp::field::CHECKSUM.start;

/// [`nat_dst_and_ttl`] on a frame whose headers are where `m` says (what `classify` promises):
/// fixed-size views of the IPv4 and transport headers, so no access needs its own bounds check.
/// With `pre` (the flow's [`flow_sums`] for `addr` and `port`) the deltas are not computed.
/// `None` (nothing written) when the frame is shorter than `m` claims.
#[inline(always)]
fn nat_dst_and_ttl_fast(
    frame: &mut [u8],
    m: &Meta,
    addr: u32,
    port: Option<u16>,
    pre: Option<FlowSums>,
) -> Option<()> {
    let (l3, l4, end_ip) = (
        usize::from(m.l3),
        usize::from(m.l4),
        usize::from(m.l3) + usize::from(m.ip_len),
    );
    let ipb = frame.get_mut(l3..end_ip)?;
    let (iph, seg) = ipb.split_at_mut_checked(l4.checked_sub(l3)?)?;
    let ip = iph.first_chunk_mut::<{ ipv4::HEADER_LEN }>()?;
    // Transport header length needed (none for other protocols).
    let (need, udp) = match m.key.proto {
        protocol::TCP => (tcp::HEADER_LEN, false),
        protocol::UDP => (udp::HEADER_LEN, true),
        _ => (0, false),
    };
    if seg.len() < need {
        return None;
    }
    let d_addr = match pre {
        Some(s) => u64::from(s.ip_delta),
        None => delta_u32(be32(ip, ipv4::field::DST_ADDR.start), addr),
    };
    ip_dst_and_ttl(ip, addr, d_addr);
    if need == 0 {
        return Some(());
    }
    // The transport checksum's delta: the flow's, or the address's plus the port's below.
    let l4 = pre.map(|s| u64::from(s.l4_delta));
    // Transport: pseudo-header destination, destination port.
    const TCP_LEN: usize = tcp::HEADER_LEN;
    const UDP_LEN: usize = udp::HEADER_LEN;
    match seg.first_chunk_mut::<TCP_LEN>() {
        Some(h) if !udp => {
            l4_nat_dst::<TCP_LEN, TCP_PORT, TCP_SUM>(h, false, (d_addr, l4), port, m.key.dst_port)
        }
        _ => l4_nat_dst::<UDP_LEN, UDP_PORT, UDP_SUM>(
            seg.first_chunk_mut::<UDP_LEN>()?,
            udp,
            (d_addr, l4),
            port,
            m.key.dst_port,
        ),
    }
    Some(())
}

/// The big-endian 16-bit word at `at` of a fixed-size header (`at` is a constant field offset).
#[inline(always)]
fn be16<const N: usize>(h: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([h[at], h[at + 1]])
}

/// The big-endian 32-bit word at `at` of a fixed-size header (`at` is a constant field offset).
#[inline(always)]
fn be32<const N: usize>(h: &[u8; N], at: usize) -> u32 {
    u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
}

/// The transport part of [`nat_dst_and_ttl_fast`] on a header of at least `N` bytes with its
/// destination port at `P` and its checksum at `C`: the port and the checksum update for
/// `deltas` (the address delta, and the flow's whole delta when known) and the port. UDP: a zero
/// checksum stays zero, a computed zero becomes `0xffff`.
#[inline(always)]
fn l4_nat_dst<const N: usize, const P: usize, const C: usize>(
    h: &mut [u8; N],
    udp: bool,
    deltas: (u64, Option<u64>),
    port: Option<u16>,
    old_dport: u16,
) {
    let hc = be16(h, C);
    let (d_addr, flow) = deltas;
    let mut delta = d_addr;
    if let Some(p) = port.filter(|&p| p != old_dport) {
        if flow.is_none() {
            delta += delta_u16(be16(h, P), p);
        }
        h[P..P + 2].copy_from_slice(&p.to_be_bytes());
    }
    let delta = flow.unwrap_or(delta);
    let c = if udp {
        apply_udp(hc, delta)
    } else {
        apply(hc, delta)
    };
    h[C..C + 2].copy_from_slice(&c.to_be_bytes());
}

/// [`l4_nat_dst`] with the flow's transport delta `flow` (folded to 16 bits): the port, and the
/// checksum through [`apply_folded`] (UDP: [`apply_udp_folded`]), the same value as `apply`'s.
#[inline(always)]
pub(super) fn l4_nat_dst_folded<const N: usize, const P: usize, const C: usize>(
    h: &mut [u8; N],
    udp: bool,
    flow: u16,
    port: Option<u16>,
    old_dport: u16,
) {
    let hc = be16(h, C);
    if let Some(p) = port.filter(|&p| p != old_dport) {
        h[P..P + 2].copy_from_slice(&p.to_be_bytes());
    }
    let c = if udp {
        apply_udp_folded(hc, flow)
    } else {
        apply_folded(hc, flow)
    };
    h[C..C + 2].copy_from_slice(&c.to_be_bytes());
}

/// Changes only the destination port (floating IP with a backend port ≠ frontend port).
#[inline(always)]
pub(super) fn dst_port_only(frame: &mut [u8], m: &Meta, port: u16) {
    if port == m.key.dst_port {
        return;
    }
    let (l4, end) = (usize::from(m.l4), usize::from(m.l3) + usize::from(m.ip_len));
    let Some(seg) = frame.get_mut(l4..end) else {
        return;
    };
    match m.key.proto {
        protocol::TCP if seg.len() >= tcp::HEADER_LEN => {
            TcpPacket::new_unchecked(seg).rewrite_dst_port(port);
        }
        protocol::UDP if seg.len() >= udp::HEADER_LEN => {
            UdpPacket::new_unchecked(seg).rewrite_dst_port(port);
        }
        _ => {}
    }
}

/// Decrements the TTL with an incremental checksum update.
#[inline(always)]
fn decrement_ttl(frame: &mut [u8], m: &Meta) {
    let l3 = usize::from(m.l3);
    if let Some(ipb) = frame.get_mut(l3..l3 + ipv4::HEADER_LEN) {
        Ipv4Packet::new_unchecked(ipb).decrement_ttl();
    }
}

/// Writes the Ethernet addresses of `hop` (destination then source, the first 12 bytes).
#[inline(always)]
pub(super) fn set_macs(frame: &mut [u8], hop: &Hop) {
    if let Some(h) = frame.get_mut(..ethernet::field::SOURCE.end) {
        h.copy_from_slice(&hop.macs);
    }
}

/// The MTU verdict for a packet of `m.ip_len` bytes plus `overhead` leaving by `hop` (the hop
/// carries its port's MTU).
#[inline(always)]
fn mtu_check(hop: &Hop, m: &Meta, overhead: usize) -> Option<Verdict> {
    let mtu = usize::from(hop.mtu);
    if usize::from(m.ip_len) + overhead <= mtu {
        return None;
    }
    too_big(m, mtu, overhead)
}

/// The verdict of a packet over the MTU (out of line: rare).
#[cold]
#[inline(never)]
fn too_big(m: &Meta, mtu: usize, overhead: usize) -> Option<Verdict> {
    Some(if m.df {
        Verdict::ToSlowPath(Exception::TooBig {
            mtu: mtu.saturating_sub(overhead) as u16,
        })
    } else {
        Verdict::Drop(DropReason::TooBig)
    })
}

/// Rewrites a client-to-backend packet for `t` and sends it by `hop`.
#[inline(always)]
pub fn to_member<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    t: &Target,
    hop: &Hop,
    view: &View<'_>,
) -> Verdict {
    if !t.floating && matches!(m.key.proto, protocol::TCP | protocol::UDP) {
        // The common case (NAT of TCP/UDP), kept small enough to inline into the burst loop.
        return nat_to(buf, m, (t.addr, t.port), t.sums, hop);
    }
    to_member_other(buf, m, t, hop, view)
}

/// The NAT of a TCP/UDP packet to `to` (address, port) with the flow's rewrite constants `sums`
/// when known, sent by `hop` (the MTU checked first): the common block of [`to_member`] and
/// [`flow_to_member`].
#[inline(always)]
fn nat_to<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    to: (u32, u16),
    sums: Option<FlowSums>,
    hop: &Hop,
) -> Verdict {
    if let Some(v) = mtu_check(hop, m, 0) {
        return v;
    }
    let f = buf.data_mut();
    nat_dst_and_ttl(f, m, to.0, Some(to.1), sums);
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}

/// [`to_member`] for a packet of a known flow checked under the current snapshot: its target is
/// the entry's member address and backend port delivered as `rule` says, with the entry's
/// rewrite constants (see [`FlowSums`]). The NAT of TCP/UDP reads the entry in place (no
/// [`Target`] built for it).
#[inline(always)]
pub fn flow_to_member<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    e: &FlowEntry,
    rule: &Rule,
    hop: &Hop,
    view: &View<'_>,
) -> Verdict {
    let floating = e.flags.contains(FlowFlags::FLOATING);
    if !floating && matches!(m.key.proto, protocol::TCP | protocol::UDP) {
        return nat_to(buf, m, (e.member_addr, e.backend_port), Some(e.sums), hop);
    }
    if floating {
        return match rule.dsr_encapsulation {
            DsrEncapsulation::None => {
                if let Some(v) = mtu_check(hop, m, 0) {
                    return v;
                }
                mac_rewrite(buf.data_mut(), m, e.backend_port, hop)
            }
            DsrEncapsulation::Ipip => encapsulate_flow::<B, false>(buf, m, e, rule, hop, view),
            DsrEncapsulation::Gue => encapsulate_flow::<B, true>(buf, m, e, rule, hop, view),
        };
    }
    flow_general(buf, m, e, rule, hop, view)
}

/// The GUE (`GUE`) or IPIP delivery of a known flow's packet from the entry's constants: the
/// MTU verdict, or the one-pass writer for this encapsulation (its checks cover the port rewrite
/// too), or, when the writer declines the frame (untouched), the general path.
#[inline(always)]
fn encapsulate_flow<B: PacketBuf + ?Sized, const GUE: bool>(
    buf: &mut B,
    m: &Meta,
    e: &FlowEntry,
    rule: &Rule,
    hop: &Hop,
    view: &View<'_>,
) -> Verdict {
    if let Some(v) = mtu_check(hop, m, if GUE { GUE_OVERHEAD } else { IPIP_OVERHEAD }) {
        return v;
    }
    let outer = Outer {
        dst: e.member_addr,
        sport: e.sums.gue_sport,
        dport: rule.gue_port,
    };
    let port = matches!(m.key.proto, protocol::TCP | protocol::UDP).then_some(e.backend_port);
    if encapsulate_as::<B, GUE>(buf, m, hop, &outer, port) {
        return Verdict::Forward { port: hop.port };
    }
    flow_general(buf, m, e, rule, hop, view)
}

/// [`flow_to_member`] through a [`Target`]: a floating flow's frame the one-pass writer declined
/// (tagged, short of headroom; its MTU already checked), or a NAT flow of a protocol without
/// ports (out of line: rare).
#[cold]
#[inline(never)]
fn flow_general<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    e: &FlowEntry,
    rule: &Rule,
    hop: &Hop,
    view: &View<'_>,
) -> Verdict {
    let floating = e.flags.contains(FlowFlags::FLOATING);
    let encap = rule.dsr_encapsulation;
    let t = Target {
        addr: e.member_addr,
        port: e.backend_port,
        floating,
        encap,
        gue_port: rule.gue_port,
        sums: Some(e.sums),
    };
    if floating {
        return encapsulate(buf, m, &t, hop, view, encap, encap_overhead(encap));
    }
    to_member_other(buf, m, &t, hop, view)
}

/// [`to_member`] for floating IP and protocols without ports.
#[inline(never)]
fn to_member_other<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    t: &Target,
    hop: &Hop,
    view: &View<'_>,
) -> Verdict {
    let encap = if t.floating {
        t.encap
    } else {
        DsrEncapsulation::None
    };
    let overhead = encap_overhead(encap);
    if let Some(v) = mtu_check(hop, m, overhead) {
        return v;
    }
    let has_ports = matches!(m.key.proto, protocol::TCP | protocol::UDP);
    if encap == DsrEncapsulation::None {
        // NAT / MAC rewrite: in place.
        let f = buf.data_mut();
        if t.floating {
            return mac_rewrite(f, m, t.port, hop);
        }
        nat_dst_and_ttl(f, m, t.addr, has_ports.then_some(t.port), None);
        set_macs(f, hop);
        return Verdict::Forward { port: hop.port };
    }
    encapsulate(buf, m, t, hop, view, encap, overhead)
}

/// Bytes `encap` adds in front of the IPv4 packet.
#[inline(always)]
fn encap_overhead(encap: DsrEncapsulation) -> usize {
    match encap {
        DsrEncapsulation::None => 0,
        DsrEncapsulation::Ipip => IPIP_OVERHEAD,
        DsrEncapsulation::Gue => GUE_OVERHEAD,
    }
}

/// The floating-IP delivery by MAC rewrite (MTU already checked): the destination stays the
/// VIP, the port becomes `port` (TCP/UDP), TTL − 1, Ethernet addresses for `hop`.
#[inline(always)]
fn mac_rewrite(f: &mut [u8], m: &Meta, port: u16, hop: &Hop) -> Verdict {
    if matches!(m.key.proto, protocol::TCP | protocol::UDP) {
        dst_port_only(f, m, port);
    }
    decrement_ttl(f, m);
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}

/// The IPIP/GUE delivery (out of line: the NAT fast path stays small).
#[inline(never)]
fn encapsulate<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    t: &Target,
    hop: &Hop,
    view: &View<'_>,
    encap: DsrEncapsulation,
    overhead: usize,
) -> Verdict {
    // Room for the outer headers in front of the L3 header.
    let l3 = usize::from(m.l3);
    if buf.headroom() + l3 < overhead + l3 || buf.len() < l3 {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    if matches!(m.key.proto, protocol::TCP | protocol::UDP) {
        dst_port_only(buf.data_mut(), m, t.port);
    }
    let Some(port_info) = view.ports.get(hop.port) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let outer = Outer {
        dst: t.addr,
        sport: match (encap, t.sums) {
            (DsrEncapsulation::Gue, Some(s)) => s.gue_sport,
            (DsrEncapsulation::Gue, None) => gue_port_for(view, m),
            _ => 0,
        },
        dport: t.gue_port,
    };
    if encapsulate_untagged(buf, m, hop, encap, &outer) {
        return Verdict::Forward { port: hop.port };
    }
    let spec = EncapSpec {
        outer_src: port_info.addr,
        outer_dst: Ipv4Addr::from(t.addr),
        ttl: DEFAULT_TTL,
    };
    if !buf.trim_front(l3) {
        return Verdict::Drop(DropReason::BadHeader);
    }
    let r = match encap {
        DsrEncapsulation::Gue => {
            // A GUE port is its own flow hash (`gue_source_port` keeps a port in its range).
            let r = prepend_gue(buf, &spec, u32::from(outer.sport), false);
            if r.is_ok() && t.gue_port != crate::wire::builder::GUE_PORT {
                let outer_udp = ipv4::HEADER_LEN..ipv4::HEADER_LEN + udp::HEADER_LEN;
                if let Some(u) = buf.data_mut().get_mut(outer_udp) {
                    // Checksum 0 ("none"): no update needed.
                    UdpPacket::new_unchecked(u).set_dst_port(t.gue_port);
                }
            }
            r
        }
        _ => prepend_ipip(buf, &spec),
    };
    if r.is_err() {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    let l2 = L2Spec {
        src_mac: hop.src_mac,
        dst_mac: hop.dst_mac,
        vlan: m.vlan,
    };
    if prepend_ethernet(buf, &l2, ethertype::IPV4).is_err() {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    Verdict::Forward { port: hop.port }
}

/// Rewrites a NAT reply (source → `vip:vip_port`) and sends it by `hop`.
#[inline]
pub fn reply_to_client<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta,
    vip: u32,
    vip_port: u16,
    hop: &Hop,
    view: &View<'_>,
) -> Verdict {
    let _ = view;
    if let Some(v) = mtu_check(hop, m, 0) {
        return v;
    }
    let has_ports = matches!(m.key.proto, protocol::TCP | protocol::UDP);
    let f = buf.data_mut();
    nat(f, m, End::Src, vip, has_ports.then_some(vip_port));
    decrement_ttl(f, m);
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}

/// GUE outer source port a flow gets (exposed for tests and the traffic generator's checks).
#[inline]
pub fn gue_port_for(view: &View<'_>, m: &Meta) -> u16 {
    gue_source_port(hash_5tuple(
        view.snapshot.hash_seed,
        m.key.src_ip,
        m.key.dst_ip,
        m.key.proto,
        m.key.src_port,
        m.key.dst_port,
    ) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowKey;
    use proptest::prelude::*;

    /// A frame: 14-byte Ethernet, IPv4 header of `ihl` words, then `l4_len` bytes of TCP or UDP,
    /// with arbitrary bytes (checksums included) from `fill`.
    fn frame(proto: u8, ihl: usize, l4_len: usize, fill: &[u8]) -> (Vec<u8>, Meta) {
        let hl = ihl * 4;
        let ip_len = hl + l4_len;
        let mut f: Vec<u8> = (0..14 + ip_len)
            .map(|i| fill.get(i % fill.len().max(1)).copied().unwrap_or(0))
            .collect();
        f[14] = 0x40 | ihl as u8;
        f[14 + 9] = proto;
        let ttl = f[14 + 8].max(2);
        f[14 + 8] = ttl;
        let m = Meta {
            l3: 14,
            l4: (14 + hl) as u16,
            ip_len: ip_len as u16,
            key: FlowKey {
                proto,
                dst_port: u16::from_be_bytes([f[14 + hl + 2], f[14 + hl + 3]]),
                ..FlowKey::default()
            },
            ..Meta::default()
        };
        (f, m)
    }

    proptest! {
        /// The one-pass NAT + TTL rewrite gives exactly the bytes of the field-by-field one,
        /// whatever the checksums held (0, 0xffff and UDP's "no checksum" included).
        #[test]
        fn one_pass_nat_matches_field_by_field(
            fill in proptest::collection::vec(any::<u8>(), 1..64),
            udp in any::<bool>(),
            ihl in 5usize..8,
            extra in 0usize..12,
            addr in any::<u32>(),
            port in proptest::option::of(any::<u16>()),
            same_port in any::<bool>(),
            csum in prop_oneof![Just(0u16), Just(0xffff), any::<u16>()],
        ) {
            let proto = if udp { protocol::UDP } else { protocol::TCP };
            let (mut a, m) = frame(proto, ihl, if udp { 8 } else { 20 } + extra, &fill);
            let at = usize::from(m.l4)
                + if udp { udp::field::CHECKSUM.start } else { tcp::field::CHECKSUM.start };
            a[at..at + 2].copy_from_slice(&csum.to_be_bytes());
            let port = if same_port { Some(m.key.dst_port) } else { port };
            let mut b = a.clone();
            nat(&mut a, &m, End::Dst, addr, port);
            decrement_ttl(&mut a, &m);
            let mut c = b.clone();
            nat_dst_and_ttl(&mut b, &m, addr, port, None);
            prop_assert_eq!(&a, &b);
            // With the flow's constants (its destination as the frame holds it).
            let mut m = m;
            m.key.dst_ip = u32::from_be_bytes([c[30], c[31], c[32], c[33]]);
            let (ip_delta, l4_delta) = nat_deltas(&m, addr, port.unwrap_or(m.key.dst_port));
            let sums = FlowSums {
                ip_delta,
                l4_delta,
                ..FlowSums::default()
            };
            nat_dst_and_ttl(&mut c, &m, addr, port, Some(sums));
            prop_assert_eq!(a, c);
        }
    }

    #[test]
    fn one_pass_nat_falls_back_on_short_frames() {
        let (mut a, mut m) = frame(protocol::TCP, 5, 20, &[7, 1, 9]);
        m.ip_len += 10; // claims more than the frame holds
        let mut b = a.clone();
        nat(&mut a, &m, End::Dst, 0x0a00_0001, Some(1));
        decrement_ttl(&mut a, &m);
        nat_dst_and_ttl(&mut b, &m, 0x0a00_0001, Some(1), None);
        assert_eq!(a, b);
    }
}
