//! ICMPv6 on the slow path, the counterpart of [`super::icmp`] for IPv6: echo for frontends and the
//! errors the MUX originates (Packet Too Big when a packet does not fit the egress MTU after
//! encapsulation, Time Exceeded when its hop limit runs out), all rate-limited by the caller's
//! token bucket (the one IPv4's fragmentation-needed and time-exceeded use). Addresses come in
//! as parameters.
//!
//! * **Echo request to a frontend** (checksum right, [`handle_icmp6`]): with IPv4's health
//!   semantics — answered in place from the frontend while it has at least one eligible member,
//!   otherwise answered with Destination Unreachable, code 3 (*address unreachable*, ICMPv6's host
//!   unreachable) from the frontend address. Echo to the interface's `address6` is the kernel's
//!   (classification hands it over as traffic to the appliance).
//! * **ICMPv6 errors** handed over: the workers deliver those about flows themselves; one that
//!   still reaches the slow path is dropped `no_flow`.
//! * **Originated errors** go to the previous hop (the received frame's source MAC, on its VLAN),
//!   from the ingress interface's own IPv6 address, quoting as much of the offending packet as
//!   fits in 1280 bytes. None is sent (RFC 4443 §2.4 (e)) about an ICMPv6 error or a redirect, a
//!   packet from an unspecified, multicast or loopback source, or a packet to a multicast
//!   address or sent as link-layer multicast, except that Packet Too Big is sent about multicast
//!   destinations too (path-MTU discovery for multicast needs it).

use super::ratelimit::{Nanos, TokenBucket};
use super::{Action, Frontends, IfIndex, SlowPathDrop, SlowPathInterface};
use crate::wire::builder::{icmpv6_echo_reply_in_place, icmpv6_error, Icmpv6ErrorKind, L2Spec};
use crate::wire::icmpv6::{time_exceeded, unreachable};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{ethertype, EthernetFrame, Icmpv6Packet, Ipv6Packet, MacAddr};
use std::net::{IpAddr, Ipv6Addr};

/// Where the IPv6 packet of an Ethernet frame is: (L3 offset, VLAN TCI) or `Malformed`.
fn ipv6_offset(frame: &[u8]) -> Result<(usize, Option<u16>), SlowPathDrop> {
    let l3 = EthernetFrame::new_checked(frame)
        .and_then(|e| e.l3())
        .map_err(|_| SlowPathDrop::Malformed)?;
    if l3.ethertype != ethertype::IPV6 {
        return Err(SlowPathDrop::Malformed);
    }
    Ipv6Packet::new_checked(&frame[l3.offset..]).map_err(|_| SlowPathDrop::Malformed)?;
    Ok((l3.offset, l3.vlan_tci))
}

/// Checks that `frame` is a sound ICMPv6 echo request to one of `frontends`: `NotForUs` when
/// the destination is no frontend, `BadChecksum`, `Unsupported` for other messages.
fn check_echo_request(frame: &[u8], frontends: &[Ipv6Addr]) -> Result<(), SlowPathDrop> {
    let (l3, _) = ipv6_offset(frame)?;
    let ip = Ipv6Packet::new_unchecked(&frame[l3..]);
    if !frontends.contains(&ip.dst_addr()) {
        return Err(SlowPathDrop::NotForUs);
    }
    let (u, l4) = ip.upper_layer_payload().ok_or(SlowPathDrop::Malformed)?;
    if u.protocol != next_header::ICMPV6 || u.is_fragment() {
        return Err(SlowPathDrop::Unsupported);
    }
    let m = Icmpv6Packet::new_checked(l4).map_err(|_| SlowPathDrop::Malformed)?;
    if !m.verify_checksum(ip.src_addr(), ip.dst_addr()) {
        return Err(SlowPathDrop::BadChecksum);
    }
    if !m.is_echo_request() {
        return Err(SlowPathDrop::Unsupported);
    }
    Ok(())
}

/// Answers an ICMPv6 echo request to one of `frontends` in place (rate-limited by `limiter`):
/// `ReplyInPlace` with the reply's length on `iface`. `NotForUs` when the destination is no
/// frontend, `BadChecksum`, `Unsupported` for other messages, `RateLimited` over the rate.
pub fn echo_reply6(
    frame: &mut [u8],
    iface: IfIndex,
    frontends: &[Ipv6Addr],
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    let checked = (|| {
        check_echo_request(frame, frontends)?;
        if !limiter.try_take(now) {
            return Err(SlowPathDrop::RateLimited);
        }
        icmpv6_echo_reply_in_place(frame).map_err(|_| SlowPathDrop::Malformed)
    })();
    match checked {
        Ok(len) => Action::ReplyInPlace { iface, len },
        Err(r) => Action::Drop(r),
    }
}

/// Handles an ICMPv6 message handed over as [`super::Exception::IcmpToFrontend`] or
/// [`super::Exception::IcmpError`] (see the module doc), rate-limited by `limiter`.
pub fn handle_icmp6(
    frame: &mut [u8],
    iface: IfIndex,
    info: &SlowPathInterface,
    frontends: &Frontends,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    let dst = match ipv6_offset(frame) {
        Ok((l3, _)) => Ipv6Packet::new_unchecked(&frame[l3..]).dst_addr(),
        Err(r) => return Action::Drop(r),
    };
    let Some(fe) = frontends.get(dst).copied() else {
        return Action::Drop(SlowPathDrop::NoFlow);
    };
    if fe.any_member_up {
        return echo_reply6(frame, iface, &[dst], limiter, now);
    }
    // Down: the checks of an answer, then address unreachable from the frontend.
    if let Err(r) = check_echo_request(frame, &[dst]) {
        return Action::Drop(r);
    }
    if !matches!(fe.addr, IpAddr::V6(_)) {
        return Action::Drop(SlowPathDrop::Malformed);
    }
    let kind = Icmpv6ErrorKind::DestUnreachable(unreachable::ADDRESS);
    originate_error6(frame, iface, info.mac, dst, kind, limiter, now)
}

/// ICMPv6 type of a Redirect (RFC 4861 §4.5).
const REDIRECT: u8 = 137;

/// True when the source `a` does not name one node (RFC 4443 §2.4 (e.6)).
fn bad_source(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_multicast() || a.is_loopback()
}

/// Checks that an ICMPv6 error `kind` may be sent about the IPv6 packet at `frame[l3..]`
/// (RFC 4443 §2.4 (e)).
fn suppress_check(frame: &[u8], l3: usize, kind: Icmpv6ErrorKind) -> Result<(), SlowPathDrop> {
    let too_big = matches!(kind, Icmpv6ErrorKind::PacketTooBig { .. });
    let eth = EthernetFrame::new_unchecked(frame);
    let ip = Ipv6Packet::new_unchecked(&frame[l3..]);
    if bad_source(ip.src_addr()) || eth.src_addr().is_multicast() {
        return Err(SlowPathDrop::IcmpSuppressed);
    }
    if !too_big && (ip.dst_addr().is_multicast() || eth.dst_addr().is_multicast()) {
        return Err(SlowPathDrop::IcmpSuppressed);
    }
    if let Some((u, l4)) = ip.upper_layer_payload() {
        let first = u.fragment.is_none_or(|f| f.offset == 0);
        if u.protocol == next_header::ICMPV6 && first {
            // Errors (types below 128) and redirects get no error; other informational messages
            // (echo) may.
            match l4.first() {
                Some(&t) if t >= 128 && t != REDIRECT => {}
                _ => return Err(SlowPathDrop::IcmpSuppressed),
            }
        }
    }
    Ok(())
}

/// Originates the ICMPv6 error `kind` about the packet in `frame` (received on `iface`) from
/// `src_ip`/`src_mac` to the previous hop, unless suppressed or over the rate: `SendOnPort`.
pub fn originate_error6(
    frame: &[u8],
    iface: IfIndex,
    src_mac: MacAddr,
    src_ip: Ipv6Addr,
    kind: Icmpv6ErrorKind,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    let built = (|| {
        let (l3, vlan) = ipv6_offset(frame)?;
        suppress_check(frame, l3, kind)?;
        if !limiter.try_take(now) {
            return Err(SlowPathDrop::RateLimited);
        }
        let l2 = L2Spec {
            src_mac,
            dst_mac: EthernetFrame::new_unchecked(frame).src_addr(),
            vlan,
        };
        let mut out = vec![0u8; l2.header_len() + ipv6::MIN_MTU];
        let n = icmpv6_error(&mut out, &l2, src_ip, kind, &frame[l3..])
            .map_err(|_| SlowPathDrop::Malformed)?;
        out.truncate(n);
        Ok(out)
    })();
    match built {
        Ok(frame) => Action::SendOnPort { iface, frame },
        Err(r) => Action::Drop(r),
    }
}

/// Answers a packet too big for the egress MTU after encapsulation: Packet Too Big carrying
/// `mtu` (raised to the IPv6 minimum, 1280).
pub fn packet_too_big(
    frame: &[u8],
    iface: IfIndex,
    src_mac: MacAddr,
    src_ip: Ipv6Addr,
    mtu: u16,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    let mtu = u32::from(mtu).max(ipv6::MIN_MTU as u32);
    let kind = Icmpv6ErrorKind::PacketTooBig { mtu };
    originate_error6(frame, iface, src_mac, src_ip, kind, limiter, now)
}

/// Answers a forwarded packet whose hop limit ran out: Time Exceeded, code 0.
pub fn hop_limit_exceeded(
    frame: &[u8],
    iface: IfIndex,
    src_mac: MacAddr,
    src_ip: Ipv6Addr,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    let kind = Icmpv6ErrorKind::TimeExceeded(time_exceeded::HOP_LIMIT);
    originate_error6(frame, iface, src_mac, src_ip, kind, limiter, now)
}

#[cfg(test)]
mod tests;
