//! ICMP on the slow path: echo for frontends, ICMP errors delivered to flows, and the errors the
//! MUX originates (fragmentation needed, time exceeded), all rate-limited.
//!
//! * **Echo request to a frontend**: answered in place (from the frontend) while the frontend
//!   has at least one eligible member; otherwise answered with destination unreachable, code 1
//!   (*host unreachable*), from the frontend address: the VIP exists but no host behind it can
//!   take traffic, which is what Azure answers when every probe is down. Both are rate-limited.
//! * **ICMP error** (destination unreachable incl. fragmentation needed, time exceeded,
//!   parameter problem) quoting a TCP/UDP packet: the workers deliver these themselves
//!   (`dataplane::icmp_error`, docs/design.md §4.4); one handed over anyway is returned as
//!   [`Action::DeliverToFlow`] with the flow's 5-tuple, which the appliance drops and counts.
//!   Redirects and source quench are dropped (`Unsupported`).
//! * **Originated errors** go to the previous hop (the received frame's source MAC) out of the
//!   ingress port, from the ingress interface's own address (as a router would), quoting the
//!   offending IPv4 header + 8 bytes. None is sent about an ICMP error (or an unknown ICMP
//!   type), a non-first fragment, a packet from a broadcast/multicast/unspecified/loopback/
//!   class-E source or the subnet broadcast, or a packet to a broadcast/multicast address.

use super::ratelimit::{Nanos, TokenBucket};
use super::{Action, Frontends, IfIndex, SlowPathDrop, SlowPathInterface};
use crate::wire::icmp::msg_type;
use crate::wire::{
    builder, ethernet, icmp as wicmp, ipv4, protocol, EthernetFrame, IcmpErrorKind, IcmpPacket,
    Ipv4Packet, L2Spec, MacAddr,
};
use std::net::Ipv4Addr;

/// A transport 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol (TCP or UDP).
    pub protocol: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// Which way an ICMP error about a flow travels, and so how [`Action::DeliverToFlow`]'s tuple
/// is oriented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpSide {
    /// Addressed to a frontend: it is about a packet the MUX sent from the frontend (a NAT
    /// reply, or a SNAT'd outbound packet). The tuple is the quoted packet reversed, i.e. the
    /// flow as its packets arrive at the MUX from outside: client -> VIP:frontend_port (or
    /// remote -> frontend:SNAT port).
    ToFrontend,
    /// In transit, not addressed to a frontend (e.g. a backend's port unreachable toward a
    /// client in a two-arm NAT deployment). The tuple is the quoted packet as is: the flow as
    /// the MUX forwarded it (client -> backend:backend_port), for the reverse-NAT path.
    Transit,
}

/// Type, code and next-hop MTU of an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpErrorInfo {
    /// ICMP type (3, 11 or 12).
    pub msg_type: u8,
    /// ICMP code.
    pub code: u8,
    /// The next-hop MTU of a fragmentation-needed error.
    pub next_hop_mtu: Option<u16>,
}

/// Smallest MTU an IPv4 link may have (RFC 791); reported MTUs are raised to it.
pub const MIN_IPV4_MTU: u16 = 68;

/// Finds the IPv4 packet of an Ethernet frame: (L3 offset, VLAN TCI) or `Malformed`.
fn ipv4_offset(frame: &[u8]) -> Result<(usize, Option<u16>), SlowPathDrop> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| SlowPathDrop::Malformed)?;
    let l3 = eth.l3().map_err(|_| SlowPathDrop::Malformed)?;
    if l3.ethertype != ethernet::ethertype::IPV4 {
        return Err(SlowPathDrop::Malformed);
    }
    Ok((l3.offset, l3.vlan_tci))
}

/// Handles an ICMP message handed over as [`super::Exception::IcmpToFrontend`] or
/// [`super::Exception::IcmpError`] (see the module doc).
pub fn handle_icmp(
    frame: &mut [u8],
    iface: IfIndex,
    info: &SlowPathInterface,
    frontends: &Frontends,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    match handle_icmp_inner(frame, iface, info, frontends, limiter, now) {
        Ok(a) => a,
        Err(r) => Action::Drop(r),
    }
}

fn handle_icmp_inner(
    frame: &mut [u8],
    iface: IfIndex,
    info: &SlowPathInterface,
    frontends: &Frontends,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Result<Action, SlowPathDrop> {
    let (l3, vlan) = ipv4_offset(frame)?;
    let ip = Ipv4Packet::new_checked(&frame[l3..]).map_err(|_| SlowPathDrop::Malformed)?;
    if !ip.verify_checksum() {
        return Err(SlowPathDrop::BadChecksum);
    }
    if ip.protocol() != protocol::ICMP {
        return Err(SlowPathDrop::Unsupported);
    }
    if ip.is_fragment() {
        return Err(SlowPathDrop::Fragment);
    }
    let icmp = IcmpPacket::new_checked(ip.payload()).map_err(|_| SlowPathDrop::Malformed)?;
    if !icmp.verify_checksum() {
        return Err(SlowPathDrop::BadChecksum);
    }
    let frontend = frontends.get(ip.dst_addr()).copied();
    if icmp.is_echo_request() {
        let Some(fe) = frontend else {
            return Err(SlowPathDrop::NotForUs);
        };
        suppress_check(frame, l3, info)?;
        if !limiter.try_take(now) {
            return Err(SlowPathDrop::RateLimited);
        }
        if fe.any_member_up {
            let len =
                builder::icmp_echo_reply_in_place(frame).map_err(|_| SlowPathDrop::Malformed)?;
            return Ok(Action::ReplyInPlace { iface, len });
        }
        let out = build_error(
            frame,
            l3,
            vlan,
            info.mac,
            ip.dst_addr(),
            IcmpErrorKind::HOST_UNREACHABLE,
        )?;
        return Ok(Action::SendOnPort { iface, frame: out });
    }
    let t = icmp.msg_type();
    if !matches!(
        t,
        msg_type::DEST_UNREACHABLE | msg_type::TIME_EXCEEDED | msg_type::PARAM_PROBLEM
    ) {
        return Err(SlowPathDrop::Unsupported);
    }
    let inner = icmp.inner_flow().map_err(|_| SlowPathDrop::Malformed)?;
    let Some((sport, dport)) = inner
        .ports
        .filter(|_| matches!(inner.protocol, protocol::TCP | protocol::UDP))
    else {
        return Err(SlowPathDrop::NoFlow);
    };
    let error = IcmpErrorInfo {
        msg_type: t,
        code: icmp.code(),
        next_hop_mtu: (t == msg_type::DEST_UNREACHABLE
            && icmp.code() == wicmp::unreachable::FRAG_NEEDED)
            .then(|| icmp.next_hop_mtu()),
    };
    let (flow, side) = if frontend.is_some() {
        // The quoted packet was sent from the frontend; it must say so.
        if inner.src_addr != ip.dst_addr() {
            return Err(SlowPathDrop::NoFlow);
        }
        (
            FlowTuple {
                src: inner.dst_addr,
                dst: inner.src_addr,
                protocol: inner.protocol,
                src_port: dport,
                dst_port: sport,
            },
            IcmpSide::ToFrontend,
        )
    } else {
        (
            FlowTuple {
                src: inner.src_addr,
                dst: inner.dst_addr,
                protocol: inner.protocol,
                src_port: sport,
                dst_port: dport,
            },
            IcmpSide::Transit,
        )
    };
    Ok(Action::DeliverToFlow {
        iface,
        flow,
        side,
        error,
    })
}

/// True when no ICMP error may be sent from or to `ip` as the offending packet's source.
fn bad_source(ip: Ipv4Addr, info: &SlowPathInterface) -> bool {
    ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_loopback()
        || u32::from(ip) >> 28 == 0xf
        || (info.prefix_len <= 30 && ip == info.broadcast())
}

/// ICMP types that are informational (an error may be sent about them).
fn informational(t: u8) -> bool {
    matches!(t, 0 | 8 | 9 | 10 | 13 | 14 | 15 | 16 | 17 | 18)
}

/// Checks that an ICMP error may be sent about the IPv4 packet at `frame[l3..]` (header
/// already checked): RFC 1122 3.2.2 / RFC 1812 4.3.2.7.
fn suppress_check(frame: &[u8], l3: usize, info: &SlowPathInterface) -> Result<(), SlowPathDrop> {
    let ip = Ipv4Packet::new_checked_header(&frame[l3..]).map_err(|_| SlowPathDrop::Malformed)?;
    let eth = EthernetFrame::new_unchecked(frame);
    if eth.src_addr().is_multicast() || eth.dst_addr().is_multicast() {
        return Err(SlowPathDrop::IcmpSuppressed);
    }
    if bad_source(ip.src_addr(), info) {
        return Err(SlowPathDrop::IcmpSuppressed);
    }
    let dst = ip.dst_addr();
    if dst.is_broadcast()
        || dst.is_multicast()
        || (info.prefix_len <= 30 && dst == info.broadcast())
    {
        return Err(SlowPathDrop::IcmpSuppressed);
    }
    if ip.frag_offset() != 0 {
        return Err(SlowPathDrop::IcmpSuppressed);
    }
    if ip.protocol() == protocol::ICMP {
        match ip.payload().first() {
            Some(&t) if informational(t) => {}
            _ => return Err(SlowPathDrop::IcmpSuppressed),
        }
    }
    Ok(())
}

/// Builds an ICMP error about the IPv4 packet at `frame[l3..]` to the previous hop.
fn build_error(
    frame: &[u8],
    l3: usize,
    vlan: Option<u16>,
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    kind: IcmpErrorKind,
) -> Result<Vec<u8>, SlowPathDrop> {
    let ip = Ipv4Packet::new_checked_header(&frame[l3..]).map_err(|_| SlowPathDrop::Malformed)?;
    // Quote only the datagram itself, not Ethernet padding behind it.
    let end = (l3 + ip.total_len() as usize).clamp(l3 + ip.header_len(), frame.len());
    let original = &frame[l3..end];
    let l2 = L2Spec {
        src_mac,
        dst_mac: EthernetFrame::new_unchecked(frame).src_addr(),
        vlan,
    };
    // Room for the headers and the largest quote: a 60-byte IPv4 header + 8 bytes.
    let mut out = vec![0u8; l2.header_len() + ipv4::HEADER_LEN + wicmp::HEADER_LEN + 60 + 8];
    let n = builder::icmp_error(&mut out, &l2, src_ip, kind, original)
        .map_err(|_| SlowPathDrop::Malformed)?;
    out.truncate(n);
    Ok(out)
}

/// Originates `kind` about the packet in `frame` (received on `iface`) from `info.addr`, unless
/// suppressed or over the rate.
pub fn originate_error(
    frame: &[u8],
    iface: IfIndex,
    info: &SlowPathInterface,
    kind: IcmpErrorKind,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    let res = (|| {
        let (l3, vlan) = ipv4_offset(frame)?;
        Ipv4Packet::new_checked_header(&frame[l3..]).map_err(|_| SlowPathDrop::Malformed)?;
        suppress_check(frame, l3, info)?;
        if !limiter.try_take(now) {
            return Err(SlowPathDrop::RateLimited);
        }
        build_error(frame, l3, vlan, info.mac, info.addr, kind)
    })();
    match res {
        Ok(out) => Action::SendOnPort { iface, frame: out },
        Err(r) => Action::Drop(r),
    }
}

/// Answers a packet too big for the egress MTU: fragmentation needed with next-hop MTU `mtu`
/// (raised to 68) if it has DF set, else drop `TooBigNoDf`.
pub fn frag_needed(
    frame: &[u8],
    iface: IfIndex,
    info: &SlowPathInterface,
    mtu: u16,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    let df = ipv4_offset(frame).ok().and_then(|(l3, _)| {
        Ipv4Packet::new_checked_header(&frame[l3..])
            .ok()
            .map(|ip| ip.dont_frag())
    });
    match df {
        None => Action::Drop(SlowPathDrop::Malformed),
        Some(false) => Action::Drop(SlowPathDrop::TooBigNoDf),
        Some(true) => originate_error(
            frame,
            iface,
            info,
            IcmpErrorKind::FragNeeded {
                mtu: mtu.max(MIN_IPV4_MTU),
            },
            limiter,
            now,
        ),
    }
}

/// Answers a forwarded packet whose TTL ran out: time exceeded in transit (code 0).
pub fn time_exceeded(
    frame: &[u8],
    iface: IfIndex,
    info: &SlowPathInterface,
    limiter: &mut TokenBucket,
    now: Nanos,
) -> Action {
    originate_error(
        frame,
        iface,
        info,
        IcmpErrorKind::TTL_EXCEEDED,
        limiter,
        now,
    )
}
