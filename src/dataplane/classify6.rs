//! Classification of one received Ethernet/IPv6 frame: Ethernet (one optional 802.1Q tag) → IPv6
//! → the bounded extension-header walk → TCP, UDP, ICMPv6 or another protocol, into a [`Meta6`]
//! or an early verdict, in the order and with the verdicts [`super::classify`] gives IPv4 frames:
//!
//! - not IPv6 → `unsupported` (the caller dispatches by ethertype; IPv4 keeps its own classifier);
//! - an unsound IPv6 header (version, payload length beyond the frame) → `bad_header`;
//! - Neighbour Discovery (router solicitation/advertisement, neighbour solicitation and
//!   advertisement, redirect), whatever its destination → slow path (`NeighbourDiscovery`, IPv6's
//!   ARP);
//! - destination = an appliance interface address → slow path (`ToAppliance`, the kernel
//!   answers);
//! - an extension-header chain that does not fit or is longer than
//!   [`MAX_EXT_HEADERS`](crate::wire::ipv6::MAX_EXT_HEADERS) → `bad_header`;
//! - a Fragment header (atomic fragments included) → slow path, counted `fragment`;
//! - ICMPv6 to a frontend (echo, errors about its flows) → slow path / error path
//!   (`IcmpToFrontend`); ICMPv6 errors in transit (destination unreachable, packet too big, time
//!   exceeded, parameter problem) → `IcmpError`, as IPv4's ICMP errors;
//! - hop limit ≤ 1 on a packet to forward → slow path, counted `ttl` (it answers time exceeded);
//! - a TCP data offset or UDP length that does not fit, and a UDP checksum of 0 (invalid over
//!   IPv6, RFC 8200 §8.1: receivers discard it) → `bad_header`.
//!
//! The addresses it needs (the appliance's own and the frontends) come through [`Addresses6`], so
//! it works over whatever holds them (a test's lists, the configuration snapshot). Every read is
//! bounds-checked by the `wire` views: no input makes it read past the frame or panic.

use super::classify::{Transport, UdpChecksum};
use super::reason::{DropReason, Exception};
use super::Verdict;
use crate::flow::{FlowKey6, HoldsKey};
use crate::wire::icmpv6::msg_type;
use crate::wire::ipv6::next_header;
use crate::wire::{ethertype, ipv6, tcp, EthernetFrame, Ipv6Packet};

/// The IPv6 addresses classification tells apart (as `u128::from(Ipv6Addr)`).
pub trait Addresses6 {
    /// True for one of the appliance's own interface addresses.
    fn is_own(&self, addr: u128) -> bool;
    /// True for a frontend (VIP) address.
    fn is_frontend(&self, addr: u128) -> bool;
}

/// [`Addresses6`] over two short lists (tests, and the wiring until the snapshot carries them).
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressList6<'a> {
    /// The appliance's own interface addresses.
    pub own: &'a [u128],
    /// The frontend addresses.
    pub frontends: &'a [u128],
}

impl Addresses6 for AddressList6<'_> {
    #[inline]
    fn is_own(&self, addr: u128) -> bool {
        self.own.contains(&addr)
    }
    #[inline]
    fn is_frontend(&self, addr: u128) -> bool {
        self.frontends.contains(&addr)
    }
}

/// What the pipeline needs to know about a classified IPv6 packet (offsets into the frame).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta6 {
    /// The packet's 5-tuple as received (ports 0 without ports; the protocol after the
    /// extension headers): its flow key, stored once here, where the burst lookup reads it.
    pub key: FlowKey6,
    /// Offset of the IPv6 header (14, or 18 behind a tag).
    pub l3: u16,
    /// Offset of the upper-layer header (after the extension headers).
    pub l4: u16,
    /// IPv6 packet length: 40 + payload length (up to 65,575).
    pub ip_len: u32,
    /// 802.1Q TCI of the received frame, if tagged (kept on output).
    pub vlan: Option<u16>,
    /// Hop limit as received.
    pub hop_limit: u8,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgement number.
    pub ack: u32,
    /// TCP payload length.
    pub payload: u32,
}

impl HoldsKey<FlowKey6> for Meta6 {
    #[inline(always)]
    fn held_key(&self) -> &FlowKey6 {
        &self.key
    }
}

/// ICMPv6 type of a Router Solicitation, the first Neighbour Discovery type (RFC 4861 §4.1).
const ROUTER_SOLICIT: u8 = 133;
/// ICMPv6 type of a Redirect, the last Neighbour Discovery type (RFC 4861 §4.5).
const REDIRECT: u8 = 137;

/// ICMPv6 types of Neighbour Discovery (RFC 4861: router solicitation 133 … redirect 137).
#[inline]
pub fn is_neighbour_discovery(t: u8) -> bool {
    (ROUTER_SOLICIT..=REDIRECT).contains(&t)
}

/// ICMPv6 error types (destination unreachable, packet too big, time exceeded, parameter
/// problem; RFC 4443: types below 128 are errors, these four are the defined ones).
#[inline]
pub fn is_icmpv6_error(t: u8) -> bool {
    matches!(
        t,
        msg_type::DEST_UNREACHABLE
            | msg_type::PACKET_TOO_BIG
            | msg_type::TIME_EXCEEDED
            | msg_type::PARAM_PROBLEM
    )
}

/// Classifies the Ethernet/IPv6 `frame`. `Err` carries the final verdict (decided here).
#[inline]
pub fn classify6<A: Addresses6 + ?Sized>(frame: &[u8], addrs: &A) -> Result<Meta6, Verdict> {
    let mut m = Meta6::default();
    classify6_into(frame, addrs, &mut m).map(|_| m)
}

/// [`classify6`] writing the result into `m` (the IPv6 lane's burst array: no copy of the
/// struct) and returning the packet's flow key ([`Meta6::key`]), built from the values read
/// rather than loaded back from `m`. On `Err`, `m` holds unspecified values.
#[inline(always)]
pub fn classify6_into<A: Addresses6 + ?Sized>(
    frame: &[u8],
    addrs: &A,
    m: &mut Meta6,
) -> Result<FlowKey6, Verdict> {
    if let Some(key) = classify6_tcp_fast(frame, addrs, m) {
        return Ok(key);
    }
    *m = classify6_general(frame, addrs)?;
    Ok(m.key)
}

/// Offsets in the frame shape [`classify6_tcp_fast`] takes: an untagged Ethernet header, an IPv6
/// header without extension headers, a TCP header (each field named by its `wire` module).
mod at {
    use crate::wire::{ethernet, ipv6, tcp};

    /// The IPv6 header.
    pub const IP: usize = ethernet::HEADER_LEN;
    /// The TCP header.
    pub const TCP: usize = IP + ipv6::HEADER_LEN;
    /// The end of the option-less TCP header: the bytes the fast path reads.
    pub const END: usize = TCP + tcp::HEADER_LEN;

    /// Ethernet: the ethertype.
    pub const ETHERTYPE: usize = ethernet::field::ETHERTYPE.start;
    /// IPv6: version (high nibble).
    pub const VERSION: usize = IP + ipv6::field::VER_TC_FLOW.start;
    /// IPv6: payload length.
    pub const PAYLOAD_LEN: usize = IP + ipv6::field::PAYLOAD_LEN.start;
    /// IPv6: next header.
    pub const NEXT_HEADER: usize = IP + ipv6::field::NEXT_HEADER;
    /// IPv6: hop limit.
    pub const HOP_LIMIT: usize = IP + ipv6::field::HOP_LIMIT;
    /// IPv6: source address.
    pub const SRC_ADDR: usize = IP + ipv6::field::SRC_ADDR.start;
    /// IPv6: destination address.
    pub const DST_ADDR: usize = IP + ipv6::field::DST_ADDR.start;
    /// TCP: source port.
    pub const SRC_PORT: usize = TCP + tcp::field::SRC_PORT.start;
    /// TCP: destination port.
    pub const DST_PORT: usize = TCP + tcp::field::DST_PORT.start;
    /// TCP: sequence number.
    pub const SEQ_NUM: usize = TCP + tcp::field::SEQ_NUM.start;
    /// TCP: acknowledgement number.
    pub const ACK_NUM: usize = TCP + tcp::field::ACK_NUM.start;
    /// TCP: data offset.
    pub const DATA_OFF: usize = TCP + tcp::field::DATA_OFF;
    /// TCP: flag bits.
    pub const FLAG_BITS: usize = TCP + tcp::field::FLAG_BITS;
}

/// The big-endian word of `N` bytes at `i` of `h` (`i` is a constant offset of [`at`]).
#[inline(always)]
fn be<const N: usize>(h: &[u8; at::END], i: usize) -> [u8; N] {
    let mut w = [0u8; N];
    if let Some(s) = h.get(i..i + N) {
        w.copy_from_slice(s);
    }
    w
}

/// The common case in one pass over fixed offsets: an untagged IPv6 frame without extension
/// headers carrying TCP, hop limit > 1, not to an appliance address, lengths consistent. Fills
/// `m` exactly as [`classify6_general`] would and returns the flow key; `None` for anything
/// else, which then takes the general path (and gets its verdict there).
#[inline(always)]
fn classify6_tcp_fast<A: Addresses6 + ?Sized>(
    frame: &[u8],
    addrs: &A,
    m: &mut Meta6,
) -> Option<FlowKey6> {
    let h = frame.first_chunk::<{ at::END }>()?;
    if u16::from_be_bytes(be(h, at::ETHERTYPE)) != ethertype::IPV6
        || h[at::VERSION] >> 4 != 6
        || h[at::NEXT_HEADER] != next_header::TCP
        || h[at::HOP_LIMIT] <= 1
    {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes(be(h, at::PAYLOAD_LEN)));
    let thl = usize::from(h[at::DATA_OFF] >> 4) * 4;
    if at::TCP + payload_len > frame.len() || thl < tcp::HEADER_LEN || thl > payload_len {
        return None;
    }
    let dst = u128::from_be_bytes(be(h, at::DST_ADDR));
    if addrs.is_own(dst) {
        return None;
    }
    let src = u128::from_be_bytes(be(h, at::SRC_ADDR));
    let sport = u16::from_be_bytes(be(h, at::SRC_PORT));
    let dport = u16::from_be_bytes(be(h, at::DST_PORT));
    *m = Meta6 {
        key: FlowKey6::new(src, dst, sport, dport, next_header::TCP),
        l3: at::IP as u16,
        l4: at::TCP as u16,
        ip_len: (ipv6::HEADER_LEN + payload_len) as u32,
        vlan: None,
        hop_limit: h[at::HOP_LIMIT],
        tcp_flags: h[at::FLAG_BITS],
        seq: u32::from_be_bytes(be(h, at::SEQ_NUM)),
        ack: u32::from_be_bytes(be(h, at::ACK_NUM)),
        payload: (payload_len - thl) as u32,
    };
    Some(m.key)
}

/// Every frame the fast path does not take: the checks in the order of the module documentation.
#[inline(never)]
fn classify6_general<A: Addresses6 + ?Sized>(frame: &[u8], addrs: &A) -> Result<Meta6, Verdict> {
    let bad = Err(Verdict::Drop(DropReason::BadHeader));
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return bad;
    };
    let Ok(l3) = eth.l3() else {
        return bad;
    };
    if l3.ethertype != ethertype::IPV6 {
        return Err(Verdict::Drop(DropReason::Unsupported));
    }
    let off = l3.offset;
    let Some(Ok(ip)) = frame.get(off..).map(Ipv6Packet::new_checked) else {
        return bad;
    };
    let dst = u128::from(ip.dst_addr());
    let Ok(u) = ip.upper_layer() else {
        return bad;
    };
    let ip_len = ip.total_len();
    let Some(seg) = frame.get(off + u.offset..off + ip_len) else {
        return bad;
    };
    if u.protocol == next_header::ICMPV6
        && !u.is_fragment()
        && seg.first().is_some_and(|&t| is_neighbour_discovery(t))
    {
        return Err(Verdict::ToSlowPath(Exception::NeighbourDiscovery));
    }
    if addrs.is_own(dst) {
        return Err(Verdict::ToSlowPath(Exception::ToAppliance));
    }
    if u.is_fragment() {
        return Err(Verdict::ToSlowPath(Exception::Fragment));
    }
    let mut m = Meta6 {
        key: FlowKey6::new(u128::from(ip.src_addr()), dst, 0, 0, u.protocol),
        l3: off as u16,
        l4: (off + u.offset) as u16,
        ip_len: ip_len as u32,
        vlan: l3.vlan_tci,
        hop_limit: ip.hop_limit(),
        ..Meta6::default()
    };
    upper_layer(seg, &mut m, addrs)?;
    if m.hop_limit <= 1 {
        return Err(Verdict::ToSlowPath(Exception::TtlExceeded));
    }
    Ok(m)
}

/// Reads the upper layer `seg` into `m`: ports, TCP numbers and flags; ICMPv6 verdicts.
#[inline(always)]
fn upper_layer<A: Addresses6 + ?Sized>(
    seg: &[u8],
    m: &mut Meta6,
    addrs: &A,
) -> Result<(), Verdict> {
    let bad = Err(Verdict::Drop(DropReason::BadHeader));
    match m.key.proto {
        next_header::TCP | next_header::UDP => {
            let udp = UdpChecksum::Required;
            let Some(t) = Transport::read(seg, m.key.proto == next_header::TCP, udp) else {
                return bad;
            };
            let k = &mut m.key;
            (k.src_port, k.dst_port, m.seq, m.ack, m.tcp_flags, m.payload) = t.fields();
        }
        next_header::ICMPV6 => {
            let Some(&t) = seg.first() else {
                return bad;
            };
            if addrs.is_frontend(m.key.dst_ip) {
                return Err(Verdict::ToSlowPath(Exception::IcmpToFrontend));
            }
            if is_icmpv6_error(t) {
                return Err(Verdict::ToSlowPath(Exception::IcmpError));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
