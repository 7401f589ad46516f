//! Which worker owns a received IPv6 frame (docs/design.md §6.2), the IPv6 half of
//! [`super::owner`]: the same rule over the client endpoint, hashed by
//! [`Reta::owner6`](crate::balance::Reta::owner6) (Toeplitz over the 16-byte address then the
//! port, what a NIC's IPv6 source-only or destination-only RSS computes):
//!
//! - to an IPv6 frontend: the client is the source;
//! - a NAT66 reply from a member (`reverse6`): the client is the destination;
//! - outbound SNAT: a member's packet under an IPv6 outbound rule is owned by its destination
//!   (the remote endpoint), as the remote's replies to the frontend are by their source, so one
//!   worker holds the translation and allocates its port from its own sub-block;
//! - an ICMPv6 error: its quoted flow's owner (the quote's source when it went toward a VIP or a
//!   member, its destination when it left a VIP toward a client);
//! - anything else (Neighbour Discovery, echo, fragments, the appliance's own addresses, no
//!   rule): no owner.
//!
//! Reads are bounds-checked (the `wire` views); no input panics.

use super::classify6::is_icmpv6_error;
use super::icmp_error6::{quoted_flow6, Quote6};
use super::View;
use crate::balance::Reta;
use crate::wire::ipv6::next_header;
use crate::wire::{ethertype, EthernetFrame, Ipv6Packet, TcpPacket, UdpPacket};

/// The owner of the IPv6 frame `frame`, or `None` (not IPv6, or any worker may handle it).
pub fn frame_owner6(frame: &[u8], view: &View<'_>, reta: &Reta) -> Option<usize> {
    let l3 = EthernetFrame::new_checked(frame).ok()?.l3().ok()?;
    if l3.ethertype != ethertype::IPV6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(frame.get(l3.offset..)?).ok()?;
    let (u, seg) = ip.upper_layer_payload()?;
    if u.is_fragment() {
        return None;
    }
    let (src, dst) = (u128::from(ip.src_addr()), u128::from(ip.dst_addr()));
    let snap = view.snapshot;
    let own = |a: u128| {
        snap.interfaces
            .iter()
            .any(|i| i.address6.is_some_and(|c| u128::from(c.addr) == a))
    };
    if own(dst) {
        return None;
    }
    let (sport, dport) = match u.protocol {
        next_header::TCP => TcpPacket::new_checked(seg)
            .ok()
            .map(|t| (t.src_port(), t.dst_port()))?,
        next_header::UDP => UdpPacket::new_checked(seg)
            .ok()
            .map(|t| (t.src_port(), t.dst_port()))?,
        next_header::ICMPV6 => return error_owner(frame, seg, view, reta),
        _ => (0, 0),
    };
    if snap.is_frontend6(dst) {
        return Some(reta.owner6(src, sport));
    }
    if snap.reverse6(src, u.protocol, sport).is_some()
        || snap.outbound_blocks6(src, u.protocol).is_some()
    {
        return Some(reta.owner6(dst, dport));
    }
    None
}

/// The owner of an ICMPv6 message: an error's is its quoted flow's; queries have none.
fn error_owner(frame: &[u8], msg: &[u8], view: &View<'_>, reta: &Reta) -> Option<usize> {
    if !msg.first().is_some_and(|&t| is_icmpv6_error(t)) {
        return None;
    }
    let Quote6::Flow(q) = quoted_flow6(frame) else {
        return None;
    };
    let snap = view.snapshot;
    if snap.is_frontend6(q.src) {
        return Some(reta.owner6(q.dst, q.dport));
    }
    if snap.is_frontend6(q.dst) || snap.reverse6(q.dst, q.proto, q.dport).is_some() {
        return Some(reta.owner6(q.src, q.sport));
    }
    None
}

#[cfg(test)]
mod tests;
