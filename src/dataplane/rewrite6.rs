//! In-place rewrites of a classified IPv6 frame ([`Meta6`]), the IPv6 counterparts of
//! [`super::rewrite`] (docs/design.md §3.5, §3.10), with every checksum updated incrementally
//! (RFC 1624):
//!
//! - **NAT66**: destination VIP:frontend_port → member:backend_port ([`to_member6`] without
//!   floating IP); replies: source member:backend_port → VIP:frontend_port
//!   ([`reply_to_client6`]). IPv6 has no header checksum, but the TCP, UDP and ICMPv6 checksums
//!   cover the addresses through the pseudo-header: one update adds the folded address delta and
//!   the port delta. A UDP checksum is mandatory over IPv6; `classify6` drops a zero one, so it
//!   never reaches here (and an update would leave a zero alone).
//! - **Floating IP, MAC rewrite**: the destination stays the VIP, only the port may change.
//! - **IPv6-in-IPv6 and GUE over IPv6** ([`encapsulate6`]): an outer IPv6 header (source = the
//!   egress interface's IPv6 address, destination = the member, hop limit 64, traffic class
//!   copied, flow label from the flow hash), for GUE an outer UDP header (source port from the
//!   flow hash, destination = the pool's `gue_port`, checksum always computed) + GUE header, then
//!   the Ethernet header. The inner packet may be IPv6 or IPv4 (an IPv4 frontend delivered to a
//!   member over IPv6): the outer next header (41 or 4) and GUE protocol follow the inner version.
//! - **Ethernet**: source = egress port MAC, destination = next hop MAC (from the [`Hop`]); a
//!   received 802.1Q tag is kept.
//!
//! **Hop limit** (the MUX is a router hop, like IPv4's TTL): NAT66, NAT66 replies and MAC-rewrite
//! delivery decrement it; encapsulation keeps the inner hop limit and sets the outer one to 64.
//! Packets with hop limit ≤ 1 never get here (`classify6` hands them to the slow path).
//!
//! **MTU**: checked before anything changes, so the slow path can quote the packet as sent.
//! Routers never fragment IPv6, so an IPv6 packet longer than the egress MTU minus the
//! encapsulation overhead is always `ToSlowPath(TooBig { mtu })` (the slow path answers ICMPv6
//! Packet Too Big, rate-limited; counted `too_big`), with `mtu` raised to the IPv6 minimum of 1280
//! (RFC 8200 §5: a smaller path needs fragmentation of the tunnel packet, which vipmux does
//! not do, so such packets keep being dropped). An IPv4 inner packet follows IPv4's rule (DF →
//! fragmentation needed, else dropped).

use super::classify6::Meta6;
use super::reason::{DropReason, Exception};
use super::rewrite::l4_nat_dst_folded;
use super::route::Hop;
use super::Verdict;
use crate::config::DsrEncapsulation;
use crate::wire::builder::{
    prepend_ethernet, prepend_gue6, prepend_ip6ip6, EncapSpecV6, L2Spec, DEFAULT_TTL,
    GUE6_OVERHEAD, GUE_PORT, IP6IP6_OVERHEAD,
};
use crate::wire::checksum::{apply, apply_udp, delta_u128, delta_u16, fold};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{ethernet, ethertype, icmpv6, tcp, udp, PacketBuf, TcpPacket, UdpPacket};

/// Where a client-to-member IPv6 packet goes and how it is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target6 {
    /// Member address (`u128::from(Ipv6Addr)`).
    pub addr: u128,
    /// Backend port (0 for protocols without ports).
    pub port: u16,
    /// Floating IP: the destination stays the VIP.
    pub floating: bool,
    /// Delivery of floating-IP packets (IPIP means IPv6-in-IPv6 toward an IPv6 member).
    pub encap: DsrEncapsulation,
    /// GUE destination port.
    pub gue_port: u16,
    /// The flow's NAT66 checksum delta ([`nat66_delta`] of this target and the packet's
    /// destination), when the flow has it; `None` computes it from the packet.
    pub l4_delta: Option<u16>,
}

impl Target6 {
    /// Plain NAT66 to `addr:port` (no floating IP, no encapsulation).
    #[inline]
    pub const fn nat(addr: u128, port: u16) -> Self {
        Target6 {
            addr,
            port,
            floating: false,
            encap: DsrEncapsulation::None,
            gue_port: 0,
            l4_delta: None,
        }
    }
}

/// The folded checksum delta of the NAT66 of `m`'s destination to `addr:port`: what [`nat66`]
/// adds to the TCP, UDP or ICMPv6 checksum (the address, and the port when it changes). The same
/// for every packet of a flow, so a known flow keeps it in its entry; applying it gives the same
/// bytes as computing it per packet (a folded sum is the same ones'-complement value).
#[inline]
pub fn nat66_delta(m: &Meta6, addr: u128, port: u16) -> u16 {
    let ports = (port != m.key.dst_port && has_ports(m)).then_some((m.key.dst_port, port));
    fold(nat66_sum(m.key.dst_ip, addr, ports)) as u16
}

/// The checksum delta (not folded) of rewriting address `old` to `addr` and, with `ports` =
/// (from, to), port `from` to `to`: what [`nat66`] adds to the upper-layer checksum.
#[inline(always)]
fn nat66_sum(old: u128, addr: u128, ports: Option<(u16, u16)>) -> u64 {
    let mut delta = delta_u128(old, addr);
    if let Some((from, to)) = ports {
        delta += delta_u16(from, to);
    }
    delta
}

/// Which end of the packet a NAT66 rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End6 {
    /// The source address and port.
    Src,
    /// The destination address and port.
    Dst,
}

/// True for the upper layers whose ports NAT66 rewrites.
#[inline(always)]
fn has_ports(m: &Meta6) -> bool {
    matches!(m.key.proto, next_header::TCP | next_header::UDP)
}

/// The upper-layer bytes of `m` in `frame`, if the frame holds them.
#[inline(always)]
fn segment<'f>(frame: &'f mut [u8], m: &Meta6) -> Option<&'f mut [u8]> {
    let end = usize::from(m.l3).checked_add(m.ip_len as usize)?;
    frame.get_mut(usize::from(m.l4)..end)
}

/// Rewrites `end`'s address to `addr` and (TCP/UDP, `port` Some) port, updating the TCP, UDP or
/// ICMPv6 checksum in one RFC 1624 application. Other upper layers change the address only.
/// Every access is checked: a frame shorter than `m` says is left unchanged.
#[inline(always)]
pub fn nat66(
    frame: &mut [u8],
    m: &Meta6,
    end: End6,
    addr: u128,
    port: Option<u16>,
    pre: Option<u16>,
) {
    let (a_field, old_port, p_at) = match end {
        End6::Src => (ipv6::field::SRC_ADDR, m.key.src_port, 0),
        End6::Dst => (ipv6::field::DST_ADDR, m.key.dst_port, 2),
    };
    let l3 = usize::from(m.l3);
    let Some(a) = frame.get_mut(l3 + a_field.start..l3 + a_field.end) else {
        return;
    };
    let old = u128::from_be_bytes(a.try_into().unwrap_or([0; 16]));
    a.copy_from_slice(&addr.to_be_bytes());
    // Each upper layer with its own constants: its length and offset checks fold.
    let l4 = L4Nat {
        old,
        addr,
        old_port,
        p_at,
        pre,
    };
    match m.key.proto {
        next_header::TCP => l4.apply(
            frame,
            m,
            tcp::field::CHECKSUM.start,
            tcp::HEADER_LEN,
            false,
            port,
        ),
        next_header::UDP => l4.apply(
            frame,
            m,
            udp::field::CHECKSUM.start,
            udp::HEADER_LEN,
            true,
            port,
        ),
        next_header::ICMPV6 => l4.apply(frame, m, 2, icmpv6::HEADER_LEN, false, None),
        _ => {}
    }
}

/// The upper-layer part of one [`nat66`]: the address change (`old` → `addr`), the port at
/// `p_at` of the upper-layer header (`old_port` as classified) and the precomputed delta, if any.
struct L4Nat {
    old: u128,
    addr: u128,
    old_port: u16,
    p_at: usize,
    pre: Option<u16>,
}

impl L4Nat {
    /// Rewrites the port (to `port` when it changes) and updates the checksum at `csum_at` of an
    /// upper-layer header of at least `min_len` bytes (`udp`: a UDP checksum).
    #[inline(always)]
    fn apply(
        &self,
        frame: &mut [u8],
        m: &Meta6,
        csum_at: usize,
        min_len: usize,
        udp: bool,
        port: Option<u16>,
    ) {
        let Some(seg) = segment(frame, m).filter(|s| s.len() >= min_len) else {
            return;
        };
        let p_at = self.p_at;
        let port = port.filter(|&p| p != self.old_port);
        let delta = match self.pre {
            Some(d) => u64::from(d),
            None => {
                let from = u16::from_be_bytes([seg[p_at], seg[p_at + 1]]);
                nat66_sum(self.old, self.addr, port.map(|p| (from, p)))
            }
        };
        if let Some(p) = port {
            seg[p_at..p_at + 2].copy_from_slice(&p.to_be_bytes());
        }
        let Some(cs) = seg.get_mut(csum_at..csum_at + 2) else {
            return;
        };
        let hc = u16::from_be_bytes([cs[0], cs[1]]);
        let c = if udp {
            apply_udp(hc, delta)
        } else {
            apply(hc, delta)
        };
        cs.copy_from_slice(&c.to_be_bytes());
    }
}

/// Changes only the destination port (floating IP with a backend port ≠ frontend port).
fn dst_port_only6(frame: &mut [u8], m: &Meta6, port: u16) {
    if port == m.key.dst_port {
        return;
    }
    let Some(seg) = segment(frame, m) else {
        return;
    };
    match m.key.proto {
        next_header::TCP if seg.len() >= tcp::HEADER_LEN => {
            TcpPacket::new_unchecked(seg).rewrite_dst_port(port);
        }
        next_header::UDP if seg.len() >= udp::HEADER_LEN => {
            UdpPacket::new_unchecked(seg).rewrite_dst_port(port);
        }
        _ => {}
    }
}

/// Decrements the hop limit (no header checksum in IPv6), saturating at 0.
pub fn decrement_hop_limit(frame: &mut [u8], m: &Meta6) {
    if let Some(h) = frame.get_mut(usize::from(m.l3) + ipv6::field::HOP_LIMIT) {
        *h = h.saturating_sub(1);
    }
}

/// Writes the Ethernet addresses of `hop` (destination then source, the first 12 bytes).
#[inline(always)]
pub(super) fn set_macs(frame: &mut [u8], hop: &Hop) {
    if let Some(h) = frame.get_mut(..ethernet::field::SOURCE.end) {
        h.copy_from_slice(&hop.macs);
    }
}

/// The MTU verdict for an IPv6 packet of `ip_len` bytes plus `overhead` leaving by `hop`.
#[inline(always)]
pub fn mtu_check6(hop: &Hop, ip_len: u32, overhead: usize) -> Option<Verdict> {
    let mtu = usize::from(hop.mtu);
    if ip_len as usize + overhead <= mtu {
        return None;
    }
    let usable = mtu.saturating_sub(overhead).max(ipv6::MIN_MTU);
    Some(Verdict::ToSlowPath(Exception::TooBig {
        mtu: usable.min(usize::from(u16::MAX)) as u16,
    }))
}

/// Rewrites a client-to-member IPv6 packet for `t` and sends it by `hop`. `outer_src` (the egress
/// interface's IPv6 address) and `flow_hash` (the packet's distribution hash: GUE source port and
/// outer flow label) are used by encapsulation only.
#[inline(always)]
pub fn to_member6<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta6,
    t: &Target6,
    hop: &Hop,
    outer_src: u128,
    flow_hash: u32,
) -> Verdict {
    if !t.floating {
        return nat66_to(buf, m, t.addr, t.port, t.l4_delta, hop);
    }
    let encap = t.encap;
    if encap != DsrEncapsulation::None {
        // The MTU first (the slow path quotes the packet as sent), then the backend port of
        // the inner packet, then the outer headers.
        if let Some(v) = mtu_check6(hop, m.ip_len, overhead6(encap)) {
            return v;
        }
        let inner = Inner {
            l3: m.l3,
            vlan: m.vlan,
        };
        if !has_room(buf, &inner, overhead6(encap)) {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        if has_ports(m) {
            dst_port_only6(buf.data_mut(), m, t.port);
        }
        let outer = Outer6 {
            src: outer_src,
            dst: t.addr,
            gue_port: t.gue_port,
            flow_hash,
        };
        return encapsulate6(buf, &inner, hop, encap, &outer);
    }
    if let Some(v) = mtu_check6(hop, m.ip_len, 0) {
        return v;
    }
    let f = buf.data_mut();
    if has_ports(m) {
        dst_port_only6(f, m, t.port);
    }
    decrement_hop_limit(f, m);
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}

/// NAT66 of a client-to-member packet to `addr:port` sent by `hop` (the delivery of
/// [`to_member6`] without floating IP): `l4_delta` is the flow's [`nat66_delta`] when it has one,
/// which a known flow's packet takes without building a [`Target6`].
#[inline(always)]
pub fn nat66_to<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta6,
    addr: u128,
    port: u16,
    l4_delta: Option<u16>,
    hop: &Hop,
) -> Verdict {
    if let Some(v) = mtu_check6(hop, m.ip_len, 0) {
        return v;
    }
    let f = buf.data_mut();
    if let Some(d) = l4_delta {
        if nat66_plain(f, m, addr, port, d, hop).is_some() {
            return Verdict::Forward { port: hop.port };
        }
    }
    nat66(f, m, End6::Dst, addr, Some(port), l4_delta);
    decrement_hop_limit(f, m);
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}

/// The upper-layer header's offset in the common IPv6 frame shape: untagged Ethernet, no
/// extension headers.
const PLAIN_L4: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
/// The IPv6 header's offset in that shape.
const PLAIN_L3: usize = ethernet::HEADER_LEN;

/// [`nat66_to`]'s rewrite (NAT66 of the destination with the flow's delta `d`, hop limit,
/// Ethernet addresses) for a TCP or UDP frame of the common shape: the headers viewed as one
/// fixed-size array after one length test, every offset a constant. `None` (nothing written)
/// for any other shape or a frame too short for its headers.
#[inline(always)]
fn nat66_plain(
    frame: &mut [u8],
    m: &Meta6,
    addr: u128,
    port: u16,
    d: u16,
    hop: &Hop,
) -> Option<()> {
    // `l4` is `l3` (14, or 18 behind a tag) plus 40 and the extension headers: 54 means
    // untagged and without extension headers.
    if usize::from(m.l4) != PLAIN_L4 {
        return None;
    }
    const TCP_END: usize = PLAIN_L4 + tcp::HEADER_LEN;
    const UDP_END: usize = PLAIN_L4 + udp::HEADER_LEN;
    const TCP_PORT: usize = PLAIN_L4 + tcp::field::DST_PORT.start;
    const TCP_SUM: usize = PLAIN_L4 + tcp::field::CHECKSUM.start;
    const UDP_PORT: usize = PLAIN_L4 + udp::field::DST_PORT.start;
    const UDP_SUM: usize = PLAIN_L4 + udp::field::CHECKSUM.start;
    match m.key.proto {
        next_header::TCP => {
            let h = frame.first_chunk_mut::<TCP_END>()?;
            plain_ip6_dst(h, addr, hop);
            l4_nat_dst_folded::<TCP_END, TCP_PORT, TCP_SUM>(
                h,
                false,
                d,
                Some(port),
                m.key.dst_port,
            );
        }
        next_header::UDP => {
            let h = frame.first_chunk_mut::<UDP_END>()?;
            plain_ip6_dst(h, addr, hop);
            l4_nat_dst_folded::<UDP_END, UDP_PORT, UDP_SUM>(h, true, d, Some(port), m.key.dst_port);
        }
        _ => return None,
    }
    Some(())
}

/// The Ethernet and IPv6 part of [`nat66_plain`] on a frame of the common shape whose first `N`
/// bytes (`N` at least [`PLAIN_L4`], checked at compile time) are `h`: `hop`'s Ethernet
/// addresses, hop limit − 1 (saturating), destination `addr`.
#[inline(always)]
fn plain_ip6_dst<const N: usize>(h: &mut [u8; N], addr: u128, hop: &Hop) {
    const { assert!(N >= PLAIN_L4) };
    const HOP: usize = PLAIN_L3 + ipv6::field::HOP_LIMIT;
    const DST: usize = PLAIN_L3 + ipv6::field::DST_ADDR.start;
    set_macs(h, hop);
    h[HOP] = h[HOP].saturating_sub(1);
    h[DST..DST + 16].copy_from_slice(&addr.to_be_bytes());
}

/// Rewrites a NAT66 reply (source → `vip:vip_port`) and sends it by `hop`.
pub fn reply_to_client6<B: PacketBuf + ?Sized>(
    buf: &mut B,
    m: &Meta6,
    vip: u128,
    vip_port: u16,
    hop: &Hop,
) -> Verdict {
    if let Some(v) = mtu_check6(hop, m.ip_len, 0) {
        return v;
    }
    let f = buf.data_mut();
    nat66(f, m, End6::Src, vip, has_ports(m).then_some(vip_port), None);
    decrement_hop_limit(f, m);
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}

/// Bytes `encap` adds in front of the inner packet over IPv6.
#[inline]
pub fn overhead6(encap: DsrEncapsulation) -> usize {
    match encap {
        DsrEncapsulation::None => 0,
        DsrEncapsulation::Ipip => IP6IP6_OVERHEAD,
        DsrEncapsulation::Gue => GUE6_OVERHEAD,
    }
}

/// Where the inner packet (IPv4 or IPv6) of a frame to encapsulate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inner {
    /// Offset of the inner IP header in the frame (14, or 18 behind a tag).
    pub l3: u16,
    /// 802.1Q TCI of the received frame (kept on the outer Ethernet header).
    pub vlan: Option<u16>,
}

/// Outer addressing of an encapsulation over IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer6 {
    /// Outer source: the egress interface's IPv6 address.
    pub src: u128,
    /// Outer destination: the member.
    pub dst: u128,
    /// GUE destination port (the pool's `gue_port`).
    pub gue_port: u16,
    /// The flow's distribution hash: GUE source port and outer flow label.
    pub flow_hash: u32,
}

/// Encapsulates the IP packet at `inner.l3` (IPv6, or IPv4 toward an IPv6 member) in IPv6 or GUE
/// over IPv6 for `encap` and rewrites the Ethernet header for `hop`. The MTU check comes first:
/// an IPv6 inner packet over the MTU is `TooBig` (Packet Too Big), an IPv4 one too when DF is set,
/// else it is dropped `too_big`. `NoHeadroom` when the buffer cannot take the outer headers,
/// `BadHeader` when the inner packet does not parse (the buffer is then unchanged).
pub fn encapsulate6<B: PacketBuf + ?Sized>(
    buf: &mut B,
    inner: &Inner,
    hop: &Hop,
    encap: DsrEncapsulation,
    outer: &Outer6,
) -> Verdict {
    let l3 = usize::from(inner.l3);
    let overhead = overhead6(encap);
    let Some(v) = buf.data().get(l3).map(|b| b >> 4) else {
        return Verdict::Drop(DropReason::BadHeader);
    };
    if let Some(v) = inner_mtu_check(buf.data(), l3, v, hop, overhead) {
        return v;
    }
    if encap == DsrEncapsulation::None {
        return Verdict::Drop(DropReason::Unsupported);
    }
    if !has_room(buf, inner, overhead) || !buf.trim_front(l3) {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    let spec = EncapSpecV6 {
        outer_src: outer.src.into(),
        outer_dst: outer.dst.into(),
        hop_limit: DEFAULT_TTL,
    };
    let r = match encap {
        DsrEncapsulation::Gue => prepend_gue6(buf, &spec, outer.flow_hash),
        _ => prepend_ip6ip6(buf, &spec, outer.flow_hash),
    };
    if let Err(e) = r {
        // Refused before anything was written: put the Ethernet header back.
        let _ = buf.prepend(l3);
        return Verdict::Drop(match e.layer {
            crate::wire::Layer::Buffer => DropReason::NoHeadroom,
            _ => DropReason::BadHeader,
        });
    }
    if encap == DsrEncapsulation::Gue && outer.gue_port != GUE_PORT {
        let outer_udp = ipv6::HEADER_LEN..ipv6::HEADER_LEN + udp::HEADER_LEN;
        if let Some(u) = buf.data_mut().get_mut(outer_udp) {
            // The checksum is computed over IPv6: the port change updates it.
            UdpPacket::new_unchecked(u).rewrite_dst_port(outer.gue_port);
        }
    }
    let l2 = L2Spec {
        src_mac: hop.src_mac,
        dst_mac: hop.dst_mac,
        vlan: inner.vlan,
    };
    if prepend_ethernet(buf, &l2, ethertype::IPV6).is_err() {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    Verdict::Forward { port: hop.port }
}

/// True when `buf` can take `overhead` bytes of outer headers and the Ethernet header in front of
/// the inner packet (in place of the received Ethernet header and the headroom).
fn has_room<B: PacketBuf + ?Sized>(buf: &B, inner: &Inner, overhead: usize) -> bool {
    let eth = if inner.vlan.is_some() {
        ethernet::TAGGED_HEADER_LEN
    } else {
        ethernet::HEADER_LEN
    };
    buf.headroom() + usize::from(inner.l3) >= overhead + eth && buf.len() >= usize::from(inner.l3)
}

/// The MTU verdict of the inner packet (IP version `version`) at `l3` of `frame`.
fn inner_mtu_check(
    frame: &[u8],
    l3: usize,
    version: u8,
    hop: &Hop,
    overhead: usize,
) -> Option<Verdict> {
    let rd16 = |at: usize| {
        frame
            .get(l3 + at..l3 + at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match version {
        6 => {
            let Some(pl) = rd16(ipv6::field::PAYLOAD_LEN.start) else {
                return Some(Verdict::Drop(DropReason::BadHeader));
            };
            mtu_check6(hop, ipv6::HEADER_LEN as u32 + u32::from(pl), overhead)
        }
        4 => {
            let (Some(total), Some(ff)) = (rd16(2), rd16(6)) else {
                return Some(Verdict::Drop(DropReason::BadHeader));
            };
            let mtu = usize::from(hop.mtu);
            if usize::from(total) + overhead <= mtu {
                return None;
            }
            Some(if ff & crate::wire::ipv4::FLAG_DF != 0 {
                Verdict::ToSlowPath(Exception::TooBig {
                    mtu: mtu.saturating_sub(overhead) as u16,
                })
            } else {
                Verdict::Drop(DropReason::TooBig)
            })
        }
        _ => Some(Verdict::Drop(DropReason::BadHeader)),
    }
}

#[cfg(test)]
mod tests;
