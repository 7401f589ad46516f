//! The RST pair of `enable_tcp_reset` for an expired IPv6 flow (docs/design.md §3.6), the IPv6
//! counterpart of [`super::expiry`]'s: the same two segments, built over IPv6.
//!
//! - **to the client**: from VIP:frontend_port to client:port, `seq` = the client's latest ACK,
//!   toward the client's next hop, untagged;
//! - **to the member**: from client:port to VIP:frontend_port, `seq` = the client's next sequence,
//!   then put through the flow's own rewrite ([`to_member6`]: NAT66, MAC rewrite, IPv6-in-IPv6 or
//!   GUE over IPv6).
//!
//! Both carry only RST (hop limit 64, window 0, TCP checksum over the IPv6 pseudo-header). The
//! hops and the member's rewrite come in as parameters, so this works over whatever resolved them.

use super::classify6::Meta6;
use super::expiry::{send_reset_pair, ResetPair, Scratch};
use super::rewrite6::{to_member6, Target6};
use super::route::Hop;
use super::Verdict;
use crate::flow::{tcp_flags, FlowEntry6, FlowFlags, FlowKey6};
use crate::wire::builder::{L2Spec, DEFAULT_TTL};
use crate::wire::ipv6::{self, next_header};
use crate::wire::tcp::{self, Flags};
use crate::wire::{ethernet, ethertype, Result};
use std::net::{Ipv6Addr, SocketAddrV6};

/// Builds an Ethernet/IPv6/TCP RST (flags RST only, window 0, hop limit 64) from `src` to `dst`
/// with sequence `seq` into `out`; returns its length.
pub fn tcp_rst6(
    out: &mut [u8],
    l2: &L2Spec,
    src: SocketAddrV6,
    dst: SocketAddrV6,
    seq: u32,
) -> Result<usize> {
    let eth = ethernet::Repr {
        src_addr: l2.src_mac,
        dst_addr: l2.dst_mac,
        vlan_tci: l2.vlan,
        ethertype: ethertype::IPV6,
    };
    let l3 = eth.header_len();
    let n = l3 + ipv6::HEADER_LEN + tcp::HEADER_LEN;
    if out.len() < n {
        return Err(crate::wire::Error::no_room(n, out.len()));
    }
    eth.emit(out)?;
    ipv6::Repr {
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        next_header: next_header::TCP,
        hop_limit: DEFAULT_TTL,
        traffic_class: 0,
        flow_label: 0,
        payload_len: tcp::HEADER_LEN,
    }
    .emit(&mut out[l3..])?;
    let seg = &mut out[l3 + ipv6::HEADER_LEN..n];
    let mut t = tcp::Packet::new_unchecked(&mut seg[..]);
    t.set_src_port(src.port());
    t.set_dst_port(dst.port());
    t.set_seq_number(seq);
    t.set_ack_number(0);
    t.set_header_len(tcp::HEADER_LEN);
    t.set_flags(Flags::RST);
    t.set_window(0);
    t.set_urgent(0);
    t.fill_checksum_v6(*src.ip(), *dst.ip());
    Ok(n)
}

/// Where the two RSTs of an expired IPv6 flow go (resolved by the caller).
#[derive(Debug, Clone, Copy)]
pub struct ResetRoute6<'a> {
    /// The next hop toward the client, if known.
    pub client: Option<&'a Hop>,
    /// The hop toward the flow's member, if known.
    pub member: Option<&'a Hop>,
    /// The flow's delivery (member address and port, floating IP, encapsulation).
    pub target: Target6,
    /// The egress interface's IPv6 address (outer source of an encapsulation).
    pub outer_src: u128,
    /// The flow's distribution hash (GUE source port, outer flow label).
    pub flow_hash: u32,
}

/// Builds and emits the two RSTs of the expired established flow `key`/`e` (`emit(port,
/// frame)`); returns how many were emitted: none when the entry does not want them (not
/// established, reset not enabled, numbers unknown), one when a hop is missing.
pub fn send_resets6<F: FnMut(usize, &[u8])>(
    scratch: &mut Scratch,
    key: &FlowKey6,
    e: &FlowEntry6,
    route: &ResetRoute6<'_>,
    emit: &mut F,
) -> u64 {
    if !e.flow.wants_reset_on_expiry() {
        return 0;
    }
    let (Some(to_client_seq), Some(to_member_seq)) =
        (e.flow.rst_to_client_seq(), e.flow.rst_to_backend_seq())
    else {
        return 0;
    };
    let pair = ResetPair {
        client: SocketAddrV6::new(Ipv6Addr::from(key.src_ip), key.src_port, 0, 0),
        vip: SocketAddrV6::new(Ipv6Addr::from(key.dst_ip), key.dst_port, 0, 0),
        to_client_seq,
        to_member_seq,
    };
    let member = |scratch: &mut Scratch, n: usize| {
        let hop = route.member?;
        let m = rst_meta(key, n, to_member_seq);
        let mut t = route.target;
        t.floating = e.flow.flags.contains(FlowFlags::FLOATING);
        match to_member6(scratch, &m, &t, hop, route.outer_src, route.flow_hash) {
            Verdict::Forward { port } => Some(port),
            _ => None,
        }
    };
    send_reset_pair(scratch, &pair, tcp_rst6, route.client, member, emit)
}

/// The classification of a RST [`tcp_rst6`] built for `key` (`n` bytes, untagged).
fn rst_meta(key: &FlowKey6, n: usize, seq: u32) -> Meta6 {
    Meta6 {
        l3: ethernet::HEADER_LEN as u16,
        l4: (ethernet::HEADER_LEN + ipv6::HEADER_LEN) as u16,
        ip_len: (n - ethernet::HEADER_LEN) as u32,
        vlan: None,
        key: FlowKey6 {
            proto: next_header::TCP,
            ..*key
        },
        hop_limit: DEFAULT_TTL,
        tcp_flags: tcp_flags::RST,
        seq,
        ack: 0,
        payload: 0,
    }
}

#[cfg(test)]
mod tests;
