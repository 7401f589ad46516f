//! In-place rewrites of a classified frame (SPEC 3.5), all with incremental checksum updates
//! (RFC 1624) through the `wire` views:
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
use super::reason::DropReason;
use super::route::Hop;
use super::{Verdict, View};
use crate::balance::hash::hash_5tuple;
use crate::config::DsrEncapsulation;
use crate::slowpath::Exception;
use crate::wire::builder::{
    gue_source_port, prepend_ethernet, prepend_gue, prepend_ipip, EncapSpec, L2Spec, DEFAULT_TTL,
    GUE_OVERHEAD, IPIP_OVERHEAD,
};
use crate::wire::{ethertype, protocol, Ipv4Packet, PacketBuf, TcpPacket, UdpPacket};
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
    if ipb.len() < 20 {
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
    match m.proto {
        protocol::TCP if seg.len() >= 20 => {
            let mut t = TcpPacket::new_unchecked(seg);
            t.update_checksum_for_addr(old, new);
            match (end, port) {
                (End::Src, Some(p)) if p != m.sport => {
                    t.rewrite_src_port(p);
                }
                (End::Dst, Some(p)) if p != m.dport => {
                    t.rewrite_dst_port(p);
                }
                _ => {}
            }
        }
        protocol::UDP if seg.len() >= 8 => {
            let mut u = UdpPacket::new_unchecked(seg);
            u.update_checksum_for_addr(old, new);
            match (end, port) {
                (End::Src, Some(p)) if p != m.sport => {
                    u.rewrite_src_port(p);
                }
                (End::Dst, Some(p)) if p != m.dport => {
                    u.rewrite_dst_port(p);
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Changes only the destination port (floating IP with a backend port ≠ frontend port).
#[inline(always)]
fn dst_port_only(frame: &mut [u8], m: &Meta, port: u16) {
    if port == m.dport {
        return;
    }
    let (l4, end) = (usize::from(m.l4), usize::from(m.l3) + usize::from(m.ip_len));
    let Some(seg) = frame.get_mut(l4..end) else {
        return;
    };
    match m.proto {
        protocol::TCP if seg.len() >= 20 => {
            TcpPacket::new_unchecked(seg).rewrite_dst_port(port);
        }
        protocol::UDP if seg.len() >= 8 => {
            UdpPacket::new_unchecked(seg).rewrite_dst_port(port);
        }
        _ => {}
    }
}

/// Decrements the TTL with an incremental checksum update.
#[inline(always)]
fn decrement_ttl(frame: &mut [u8], m: &Meta) {
    let l3 = usize::from(m.l3);
    if let Some(ipb) = frame.get_mut(l3..l3 + 20) {
        Ipv4Packet::new_unchecked(ipb).decrement_ttl();
    }
}

/// Writes the Ethernet addresses of `hop`.
#[inline(always)]
fn set_macs(frame: &mut [u8], hop: &Hop) {
    if let Some(h) = frame.get_mut(..12) {
        h.copy_from_slice(&hop.macs);
    }
}

/// The MTU verdict for a packet of `m.ip_len` bytes plus `overhead` leaving by `hop`.
#[inline(always)]
fn mtu_check(view: &View<'_>, hop: &Hop, m: &Meta, overhead: usize) -> Option<Verdict> {
    let mtu = usize::from(view.ports.get(hop.port).map_or(u16::MAX, |p| p.mtu));
    if usize::from(m.ip_len) + overhead <= mtu {
        return None;
    }
    Some(if m.df {
        Verdict::ToSlowPath(Exception::TooBig {
            mtu: mtu.saturating_sub(overhead) as u16,
        })
    } else {
        Verdict::Drop(DropReason::TooBig)
    })
}

/// Rewrites a client-to-backend packet for `t` and sends it by `hop`.
#[inline]
pub fn to_member<B: PacketBuf + ?Sized>(
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
    let overhead = match encap {
        DsrEncapsulation::None => 0,
        DsrEncapsulation::Ipip => IPIP_OVERHEAD,
        DsrEncapsulation::Gue => GUE_OVERHEAD,
    };
    if let Some(v) = mtu_check(view, hop, m, overhead) {
        return v;
    }
    let has_ports = matches!(m.proto, protocol::TCP | protocol::UDP);
    if encap == DsrEncapsulation::None {
        // NAT / MAC rewrite: in place.
        let f = buf.data_mut();
        if t.floating {
            if has_ports {
                dst_port_only(f, m, t.port);
            }
        } else {
            nat(f, m, End::Dst, t.addr, has_ports.then_some(t.port));
        }
        decrement_ttl(f, m);
        set_macs(f, hop);
        return Verdict::Forward { port: hop.port };
    }
    encapsulate(buf, m, t, hop, view, encap, overhead)
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
    if matches!(m.proto, protocol::TCP | protocol::UDP) {
        dst_port_only(buf.data_mut(), m, t.port);
    }
    let Some(port_info) = view.ports.get(hop.port) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
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
            let h = hash_5tuple(
                view.snapshot.hash_seed,
                m.src,
                m.dst,
                m.proto,
                m.sport,
                m.dport,
            );
            let r = prepend_gue(buf, &spec, h as u32, false);
            if r.is_ok() && t.gue_port != crate::wire::builder::GUE_PORT {
                if let Some(u) = buf.data_mut().get_mut(20..28) {
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
    if let Some(v) = mtu_check(view, hop, m, 0) {
        return v;
    }
    let has_ports = matches!(m.proto, protocol::TCP | protocol::UDP);
    let f = buf.data_mut();
    nat(f, m, End::Src, vip, has_ports.then_some(vip_port));
    decrement_ttl(f, m);
    set_macs(f, hop);
    Verdict::Forward { port: hop.port }
}

/// GUE outer source port a flow gets (exposed for tests and the traffic generator's checks).
pub fn gue_port_for(view: &View<'_>, m: &Meta) -> u16 {
    gue_source_port(hash_5tuple(
        view.snapshot.hash_seed,
        m.src,
        m.dst,
        m.proto,
        m.sport,
        m.dport,
    ) as u32)
}
