//! ICMPv6 errors that belong to a flow, the IPv6 counterpart of [`super::icmp_error`]'s quote
//! reading and rewriting (docs/design.md §4.4): which flow an ICMPv6 error (destination
//! unreachable, packet too big, time exceeded, parameter problem) quotes, and the in-place
//! rewrites that deliver it like the flow's packets.
//!
//! - **To a frontend** (the quote was sent from the VIP): the flow is the quote reversed
//!   ([`QuotedFlow6::client_key`]); for a NAT66 rule the outer destination and the quoted source
//!   become the member and its backend port ([`rewrite_quote6`] with [`End6::Src`], then
//!   [`rewrite_outer6`] with [`End6::Dst`]).
//! - **In transit** (the quote is client → member:backend_port): reverse-translated toward the
//!   client: the quoted destination becomes VIP:frontend_port, and the outer source, when it is
//!   the member, the VIP.
//!
//! Every change updates the quoted transport checksum (when the quote holds it) and the ICMPv6
//! checksum (which covers the outer addresses through the pseudo-header and the whole quote) in
//! one RFC 1624 application each, so checksums that were right stay right. Hop limit − 1 on the
//! outer header as for every forwarded packet. All reads and writes are bounds-checked.

use super::classify6::is_icmpv6_error;
use super::rewrite6::End6;
use crate::flow::FlowKey6;
use crate::wire::checksum::{apply, apply_udp, delta_u128, delta_u16};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{ethertype, tcp, udp, EthernetFrame, Icmpv6Packet, Ipv6Packet};

/// Where the packet an ICMPv6 error quotes sits in the frame, and its tuple as quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedFlow6 {
    /// Offset of the outer IPv6 header.
    pub l3: usize,
    /// Offset of the ICMPv6 header.
    pub icmp: usize,
    /// Offset of the quoted IPv6 header.
    pub inner: usize,
    /// Offset of the quoted transport header (its 4 port bytes are in the frame).
    pub inner_l4: usize,
    /// End of the outer IPv6 packet in the frame.
    pub end: usize,
    /// Outer source address.
    pub outer_src: u128,
    /// Outer destination address.
    pub outer_dst: u128,
    /// Quoted source address.
    pub src: u128,
    /// Quoted destination address.
    pub dst: u128,
    /// Quoted source port.
    pub sport: u16,
    /// Quoted destination port.
    pub dport: u16,
    /// Quoted upper-layer protocol (TCP or UDP).
    pub proto: u8,
}

impl QuotedFlow6 {
    /// The flow key of an error to a frontend: the quoted VIP → client packet reversed.
    pub fn client_key(&self) -> FlowKey6 {
        FlowKey6::new(self.dst, self.src, self.dport, self.sport, self.proto)
    }

    /// The key of the quote as is (client → member:backend_port for an error in transit).
    pub fn quoted_key(&self) -> FlowKey6 {
        FlowKey6::new(self.src, self.dst, self.sport, self.dport, self.proto)
    }
}

/// What [`quoted_flow6`] found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote6 {
    /// Not an ICMPv6 error (informational, not ICMPv6, not IPv6, a fragment).
    NotFlowError,
    /// An ICMPv6 error about a TCP or UDP flow.
    Flow(QuotedFlow6),
    /// An ICMPv6 error whose quote carries no ports (another protocol, a non-first fragment).
    NoPorts,
    /// An ICMPv6 error whose quote does not hold an IPv6 header and the ports.
    Malformed,
}

/// The flow an ICMPv6 error in the Ethernet frame `frame` quotes.
pub fn quoted_flow6(frame: &[u8]) -> Quote6 {
    let Ok(l3) = EthernetFrame::new_checked(frame).and_then(|e| e.l3()) else {
        return Quote6::NotFlowError;
    };
    if l3.ethertype != ethertype::IPV6 {
        return Quote6::NotFlowError;
    }
    let Some(Ok(ip)) = frame.get(l3.offset..).map(Ipv6Packet::new_checked) else {
        return Quote6::NotFlowError;
    };
    let Some((u, msg)) = ip.upper_layer_payload() else {
        return Quote6::NotFlowError;
    };
    if u.protocol != next_header::ICMPV6 || u.is_fragment() {
        return Quote6::NotFlowError;
    }
    let Ok(m) = Icmpv6Packet::new_checked(msg) else {
        return Quote6::NotFlowError;
    };
    if !is_icmpv6_error(m.msg_type()) {
        return Quote6::NotFlowError;
    }
    let Ok(q) = m.inner_flow() else {
        return Quote6::Malformed;
    };
    let icmp = l3.offset + u.offset;
    let Some((sport, dport)) = q
        .ports
        .filter(|_| matches!(q.protocol, next_header::TCP | next_header::UDP))
    else {
        return Quote6::NoPorts;
    };
    Quote6::Flow(QuotedFlow6 {
        l3: l3.offset,
        icmp,
        inner: icmp + q.ip_offset,
        inner_l4: icmp + q.l4_offset,
        end: l3.offset + ip.total_len(),
        outer_src: ip.src_addr().to_bits(),
        outer_dst: ip.dst_addr().to_bits(),
        src: q.src_addr.to_bits(),
        dst: q.dst_addr.to_bits(),
        sport,
        dport,
        proto: q.protocol,
    })
}

/// The big-endian 16-bit word at `at` of `f`, if `f` holds it.
fn rd16(f: &[u8], at: usize) -> Option<u16> {
    let b = f.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Writes `v` at `at` of `f` when `f` holds it.
fn wr(f: &mut [u8], at: usize, v: &[u8]) {
    if let Some(b) = f.get_mut(at..at.saturating_add(v.len())) {
        b.copy_from_slice(v);
    }
}

/// The 128-bit address at `at` of `f`, if `f` holds it.
fn rd128(f: &[u8], at: usize) -> Option<u128> {
    let b = f.get(at..at.checked_add(16)?)?;
    Some(u128::from_be_bytes(b.try_into().ok()?))
}

/// Adds `delta` to the ICMPv6 checksum of the error `q` describes.
fn update_icmp_checksum(f: &mut [u8], q: &QuotedFlow6, delta: u64) {
    let at = q.icmp + 2;
    if let Some(old) = rd16(f, at).filter(|_| at + 2 <= q.end) {
        wr(f, at, &apply(old, delta).to_be_bytes());
    }
}

/// Rewrites the quoted packet's `end` to `addr:port`: the quoted transport checksum (when the
/// quote holds it; a zero UDP checksum stays zero) and the ICMPv6 checksum are updated
/// incrementally.
pub fn rewrite_quote6(f: &mut [u8], q: &QuotedFlow6, end: End6, addr: u128, port: u16) {
    let (a_at, p_at) = match end {
        End6::Src => (q.inner + ipv6::field::SRC_ADDR.start, q.inner_l4),
        End6::Dst => (q.inner + ipv6::field::DST_ADDR.start, q.inner_l4 + 2),
    };
    let (Some(old_addr), Some(old_port)) = (rd128(f, a_at), rd16(f, p_at)) else {
        return;
    };
    let d_addr = delta_u128(old_addr, addr);
    let d_port = delta_u16(old_port, port);
    wr(f, a_at, &addr.to_be_bytes());
    wr(f, p_at, &port.to_be_bytes());
    // The quote's bytes changed by both deltas; folded, they count as two words of the budget.
    let mut d_icmp = d_addr + d_port;
    let (c_at, is_udp) = match q.proto {
        next_header::UDP => (q.inner_l4 + udp::field::CHECKSUM.start, true),
        _ => (q.inner_l4 + tcp::field::CHECKSUM.start, false),
    };
    if let Some(old) = rd16(f, c_at).filter(|_| c_at + 2 <= q.end) {
        let new = if is_udp {
            apply_udp(old, d_addr + d_port)
        } else {
            apply(old, d_addr + d_port)
        };
        wr(f, c_at, &new.to_be_bytes());
        d_icmp += delta_u16(old, new);
    }
    update_icmp_checksum(f, q, d_icmp);
}

/// Rewrites the outer header's `end` address (when `addr` is Some) and decrements its hop limit;
/// the ICMPv6 checksum follows the address through the pseudo-header.
pub fn rewrite_outer6(f: &mut [u8], q: &QuotedFlow6, end: End6, addr: Option<u128>) {
    if let Some(h) = f.get_mut(q.l3 + ipv6::field::HOP_LIMIT) {
        *h = h.saturating_sub(1);
    }
    let Some(a) = addr else {
        return;
    };
    let at = q.l3
        + match end {
            End6::Src => ipv6::field::SRC_ADDR.start,
            End6::Dst => ipv6::field::DST_ADDR.start,
        };
    if let Some(old) = rd128(f, at) {
        wr(f, at, &a.to_be_bytes());
        update_icmp_checksum(f, q, delta_u128(old, a));
    }
}

#[cfg(test)]
mod tests;
