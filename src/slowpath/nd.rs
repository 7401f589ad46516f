//! IPv6 Neighbour Discovery on the slow path (RFC 4861), IPv6's counterpart of [`super::arp`]:
//! pure functions over a frame and the addresses passed in, so they work over whatever
//! configuration holds the addresses.
//!
//! - [`answer_solicitation`]: a valid Neighbour Solicitation (hop limit 255, code 0, checksum,
//!   well-formed options, unicast target) for one of `targets` gets a solicited advertisement
//!   (solicited + override, the target link-layer address option, to the asker), or for duplicate
//!   address detection (unspecified source) an override-only advertisement to all nodes.
//! - [`unsolicited_adverts`]: override advertisements to all nodes for the addresses that come up
//!   (IPv6's gratuitous ARP).
//! - [`solicit`]: a solicitation resolving a neighbour, to its solicited-node multicast group
//!   (ff02::1:ffXX:XXXX) at MAC 33:33:ff:XX:XX:XX, with our link-layer address.
//! - [`solicit_unicast`]: the same to the target's address at its cached MAC (a refresh).
//! - [`learn`]: the (address, MAC) a valid advertisement (target + target link-layer option) or
//!   solicitation (source + source link-layer option) teaches.
//! - [`handle_nd`]: the slow path's decision for a Neighbour Discovery frame a worker handed over,
//!   IPv6's [`super::arp::handle_arp`]:
//!
//! | frame | action |
//! | --- | --- |
//! | not a valid ND message (RFC 4861 §7.1: hop limit 255, checksum, options) | drop `Malformed` / `BadChecksum` |
//! | source MAC is the port's own | drop `OwnFrame` (looped back) |
//! | source MAC multicast | drop `Malformed` |
//! | solicitation from, or advertisement of, one of our addresses by another host | drop `AddressConflict` (logged) |
//! | solicitation for an IPv6 frontend answered on this interface (unicast or to its solicited-node group, DAD too) | advertisement from the port's MAC |
//! | solicitation for the interface's `address6` or a link-local address (the kernel's) | to the kernel (its stack answers) |
//! | other solicitation | drop `NotForUs` |
//! | advertisement | to the kernel (it resolves its own neighbours: probes, BGP) |
//! | router solicitation/advertisement, redirect | drop `Unsupported` (routes are configured) |
//!
//! Every valid solicitation (its source link-layer option) and advertisement (its target
//! link-layer option) teaches the IPv6 neighbour table: known entries are updated; a passive entry
//! is created for solicitations for us and for advertisements, as ARP does.

use super::arp::{ArpCtx, ArpOutcome};
use super::neighbours::{Learned, NeighbourTable};
use super::ratelimit::Nanos;
use super::{Action, SlowPathDrop};
use crate::wire::builder::{
    neighbor_advert_reply, neighbor_solicit, neighbor_solicit_to, unsolicited_advert, L2Spec,
};
use crate::wire::icmpv6::{self, msg_type, NdRepr, ND_HOP_LIMIT};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{
    ethernet, ethertype, ErrorKind, EthernetFrame, Icmpv6Packet, Ipv6Packet, MacAddr,
};
use std::net::Ipv6Addr;

/// Bytes of the largest advertisement or solicitation built here (tagged Ethernet, IPv6, the
/// 24-byte message and one link-layer address option).
pub const ND_FRAME_LEN: usize =
    ethernet::TAGGED_HEADER_LEN + ipv6::HEADER_LEN + icmpv6::ND_HEADER_LEN + icmpv6::LL_OPTION_LEN;

/// The IPv6 and ICMPv6 views of a Neighbour Discovery frame.
type NdMessage<'f> = (Ipv6Packet<&'f [u8]>, Icmpv6Packet<&'f [u8]>);

/// The IPv6 packet of a Neighbour Discovery frame, checked: (IPv6 view, ICMPv6 view) when the
/// frame is Ethernet/IPv6/ICMPv6 without extension headers (RFC 4861 messages carry none that
/// matter here), hop limit 255 and the ICMPv6 checksum right.
fn nd_message(frame: &[u8]) -> Result<NdMessage<'_>, SlowPathDrop> {
    let l3 = EthernetFrame::new_checked(frame)
        .and_then(|e| e.l3())
        .map_err(|_| SlowPathDrop::Malformed)?;
    if l3.ethertype != ethertype::IPV6 {
        return Err(SlowPathDrop::Malformed);
    }
    let ip = Ipv6Packet::new_checked(&frame[l3.offset..]).map_err(|_| SlowPathDrop::Malformed)?;
    let ip = Ipv6Packet::new_unchecked(&frame[l3.offset..l3.offset + ip.total_len()]);
    if ip.next_header() != next_header::ICMPV6 {
        return Err(SlowPathDrop::Unsupported);
    }
    if ip.hop_limit() != ND_HOP_LIMIT {
        // Not from this link (RFC 4861 §7.1.1, §7.1.2).
        return Err(SlowPathDrop::Malformed);
    }
    let m =
        Icmpv6Packet::new_checked(&frame[l3.offset + ipv6::HEADER_LEN..l3.offset + ip.total_len()])
            .map_err(|_| SlowPathDrop::Malformed)?;
    if !m.verify_checksum(ip.src_addr(), ip.dst_addr()) {
        return Err(SlowPathDrop::BadChecksum);
    }
    Ok((ip, m))
}

/// Answers the Neighbour Solicitation `frame` when its target is one of `targets`: writes the
/// advertisement from `our_mac` into `out` (at least [`ND_FRAME_LEN`] bytes) and returns its
/// length. `NotForUs` for another target; `Malformed`, `BadChecksum` or `Unsupported` for a
/// solicitation RFC 4861 §7.1.1 says to discard, or another message.
pub fn answer_solicitation(
    frame: &[u8],
    targets: &[Ipv6Addr],
    our_mac: MacAddr,
    out: &mut [u8],
) -> Result<usize, SlowPathDrop> {
    let (_, m) = nd_message(frame)?;
    if m.msg_type() != msg_type::NEIGHBOR_SOLICIT {
        return Err(SlowPathDrop::Unsupported);
    }
    let target = m.nd_target().ok_or(SlowPathDrop::Malformed)?;
    if !targets.contains(&target) {
        return Err(SlowPathDrop::NotForUs);
    }
    neighbor_advert_reply(out, frame, our_mac).map_err(|e| match e.kind {
        ErrorKind::BadChecksum => SlowPathDrop::BadChecksum,
        _ => SlowPathDrop::Malformed,
    })
}

/// One override advertisement to all nodes per address of `addrs`, from `mac` (tagged with `vlan`
/// if given): sent when the addresses come up, so neighbours update their caches at once.
pub fn unsolicited_adverts(mac: MacAddr, vlan: Option<u16>, addrs: &[Ipv6Addr]) -> Vec<Vec<u8>> {
    addrs
        .iter()
        .filter_map(|&a| {
            let mut out = vec![0u8; ND_FRAME_LEN];
            let n = unsolicited_advert(&mut out, mac, vlan, a).ok()?;
            out.truncate(n);
            Some(out)
        })
        .collect()
}

/// A solicitation for `target` from `src_ip`/`mac` (tagged with `vlan` if given) to the target's
/// solicited-node group, with our link-layer address option.
pub fn solicit(mac: MacAddr, vlan: Option<u16>, src_ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut out = vec![0u8; ND_FRAME_LEN];
    match neighbor_solicit(&mut out, mac, vlan, src_ip, target) {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
    out
}

/// A solicitation for `target` from `src_ip`/`mac` (tagged with `vlan` if given) to `target`
/// itself at `dst_mac`, its cached link-layer address: confirms a known neighbour.
pub fn solicit_unicast(
    mac: MacAddr,
    dst_mac: MacAddr,
    vlan: Option<u16>,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Vec<u8> {
    let mut out = vec![0u8; ND_FRAME_LEN];
    let l2 = L2Spec {
        src_mac: mac,
        dst_mac,
        vlan,
    };
    match neighbor_solicit_to(&mut out, &l2, src_ip, target, target) {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
    out
}

/// True for a link-local address (fe80::/10): the kernel's own on the TAP, or a neighbour's.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Handles a Neighbour Discovery frame received on `ctx.iface` (see the module table). `frame` is
/// not changed; an answer is a new frame ([`Action::SendOnPort`]).
pub fn handle_nd(
    frame: &[u8],
    ctx: &ArpCtx<'_>,
    neighbours: &mut NeighbourTable<Ipv6Addr>,
    now: Nanos,
) -> ArpOutcome {
    let drop = |r| ArpOutcome {
        action: Action::Drop(r),
        learned: false,
    };
    let (ip, m) = match nd_message(frame) {
        Ok(v) => v,
        Err(r) => return drop(r),
    };
    let info = ctx.info;
    let src_mac = EthernetFrame::new_unchecked(frame).src_addr();
    if src_mac == info.mac {
        return drop(SlowPathDrop::OwnFrame);
    }
    if src_mac.is_multicast() {
        return drop(SlowPathDrop::Malformed);
    }
    let is_ours = |a: Ipv6Addr| Some(a) == info.addr6 || ctx.frontends.get(a).is_some();
    let Some(target) = m.nd_target() else {
        return drop(SlowPathDrop::Unsupported);
    };
    let (action, for_us) = match m.msg_type() {
        msg_type::NEIGHBOR_SOLICIT if is_ours(ip.src_addr()) => {
            return drop(SlowPathDrop::AddressConflict)
        }
        msg_type::NEIGHBOR_SOLICIT => {
            let frontend = ctx
                .frontends
                .get(target)
                .filter(|f| f.iface == Some(ctx.iface))
                .is_some();
            let kernel = Some(target) == info.addr6 || is_link_local(target);
            let action = if frontend {
                let mut out = vec![0u8; ND_FRAME_LEN];
                match answer_solicitation(frame, &[target], info.mac, &mut out) {
                    Ok(n) => {
                        out.truncate(n);
                        Action::SendOnPort {
                            iface: ctx.iface,
                            frame: out,
                        }
                    }
                    Err(r) => Action::Drop(r),
                }
            } else if kernel {
                Action::ToKernel { iface: ctx.iface }
            } else {
                Action::Drop(SlowPathDrop::NotForUs)
            };
            (action, frontend || kernel)
        }
        msg_type::NEIGHBOR_ADVERT if is_ours(target) => return drop(SlowPathDrop::AddressConflict),
        msg_type::NEIGHBOR_ADVERT => (Action::ToKernel { iface: ctx.iface }, true),
        _ => return drop(SlowPathDrop::Unsupported),
    };
    let learned = learn(frame).is_some_and(|l| {
        matches!(
            neighbours.learn(ctx.iface, l.addr, l.mac, now, for_us),
            Learned::New | Learned::Changed
        )
    });
    ArpOutcome { action, learned }
}

/// What a valid Neighbour Discovery message teaches about a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdLearned {
    /// The neighbour's address.
    pub addr: Ipv6Addr,
    /// Its link-layer address.
    pub mac: MacAddr,
}

/// The neighbour a valid advertisement (its target and target link-layer address) or
/// solicitation (its source and source link-layer address; not one for duplicate address
/// detection) in `frame` teaches; `None` when it teaches nothing or is not valid.
pub fn learn(frame: &[u8]) -> Option<NdLearned> {
    let (ip, m) = nd_message(frame).ok()?;
    match NdRepr::parse(&m).ok()? {
        NdRepr::Advert {
            target,
            target_ll: Some(mac),
            ..
        } => Some(NdLearned { addr: target, mac }),
        NdRepr::Solicit {
            source_ll: Some(mac),
            ..
        } if !ip.src_addr().is_unspecified() => Some(NdLearned {
            addr: ip.src_addr(),
            mac,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
