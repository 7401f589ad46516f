//! Builders for the packets vipmux originates or encapsulates, in these rooms:
//! - [`encap`]: IPv4-in-IPv4 and GUE encapsulation and the Ethernet header, prepended into a
//!   [`PacketBuf`](super::buf::PacketBuf) — the data path's per-packet work;
//! - [`nat`]: in-place rewrite of one endpoint (address and port) with incremental checksums;
//!   [`nat6`] the same for IPv6 (NAT66);
//! - [`originate`]: frames the appliance itself sends: TCP RST, ICMP echo reply (in place), ICMP
//!   errors (destination unreachable, fragmentation needed, time exceeded), ARP request/reply;
//! - [`originate6`]: the same over IPv6: ICMPv6 echo reply (in place), ICMPv6 errors (Packet Too
//!   Big, destination unreachable, time exceeded), Neighbour Advertisement and Solicitation;
//! - [`encap6`]: IPv6 outer headers: IPv6-in-IPv6 (or IPv4-in-IPv6) and GUE over IPv6;
//! - [`spec`]: [`FrameSpec`], a test- and generator-friendly builder of whole
//!   Ethernet/IPv4/TCP|UDP|ICMP frames with correct checksums.
//!
//! Every builder writes into caller-provided memory, returns the length written, and reports lack of
//! room or malformed input as an [`Error`] instead of panicking (except [`FrameSpec::build`], a
//! convenience for tests and the traffic generator). Everything is re-exported here, so
//! `crate::wire::builder::X` names every builder.

pub mod encap;
pub mod encap6;
pub mod nat;
pub mod nat6;
pub mod originate;
pub mod originate6;
pub mod spec;
#[cfg(test)]
mod testing;

pub use encap::{
    gue_source_port, prepend_ethernet, prepend_gue, prepend_ipip, EncapSpec, GUE_HEADER_LEN,
    GUE_OVERHEAD, GUE_PORT, IPIP_OVERHEAD,
};
pub use encap6::{
    flow_label, prepend_gue6, prepend_ip6ip6, EncapSpecV6, GUE6_OVERHEAD, IP6IP6_OVERHEAD,
};
pub use nat::{rewrite_endpoint, Endpoint};
pub use nat6::rewrite_endpoint_v6;
pub use originate::{
    arp_reply_in_place, arp_request, icmp_echo_reply_in_place, icmp_error, tcp_rst, IcmpErrorKind,
};
pub use originate6::{
    icmpv6_echo_reply_in_place, icmpv6_error, multicast_mac, neighbor_advert,
    neighbor_advert_reply, neighbor_solicit, neighbor_solicit_to, solicited_node,
    unsolicited_advert, Icmpv6ErrorKind, ALL_NODES, MAX_ERROR_QUOTE,
};
pub use spec::{FrameSpec, L4Spec};

use super::ethernet::{self, MacAddr};
use super::{Error, Result};

/// Default TTL of packets vipmux originates.
pub const DEFAULT_TTL: u8 = 64;

/// Link-layer addressing of a frame to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Spec {
    /// Source MAC (the egress port).
    pub src_mac: MacAddr,
    /// Destination MAC (next hop).
    pub dst_mac: MacAddr,
    /// 802.1Q TCI to tag with, if any.
    pub vlan: Option<u16>,
}

impl L2Spec {
    /// Ethernet header length (14 or 18).
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            ethernet::TAGGED_HEADER_LEN
        } else {
            ethernet::HEADER_LEN
        }
    }

    /// Writes the Ethernet header carrying `ethertype` at the front of `out`; returns its length.
    #[inline]
    fn emit(&self, out: &mut [u8], ethertype: u16) -> Result<usize> {
        ethernet::Repr {
            src_addr: self.src_mac,
            dst_addr: self.dst_mac,
            vlan_tci: self.vlan,
            ethertype,
        }
        .emit(out)
    }
}

/// `NoRoom` unless `out` holds `n` bytes.
#[inline]
fn room(out: &[u8], n: usize) -> Result<()> {
    if out.len() < n {
        Err(Error::no_room(n, out.len()))
    } else {
        Ok(())
    }
}
