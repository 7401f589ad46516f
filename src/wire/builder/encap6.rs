//! Encapsulation over IPv6: an outer IPv6 header (IPv6-in-IPv6, or IPv4-in-IPv6 for an IPv4
//! inner packet), or outer IPv6 + UDP + GUE, prepended in front of the packet a [`PacketBuf`]
//! holds. Per-packet work like [`super::encap`]: no allocation, the buffer's headroom only. The
//! outer traffic class is the inner one; the flow label comes from the flow hash (RFC 6438), so
//! routers spread tunnelled flows as they spread the inner ones.

use std::net::Ipv6Addr;

use super::encap::{prepend_room, udp_gue_header, GUE_HEADER_LEN};
use crate::wire::buf::PacketBuf;
use crate::wire::ipv6::{self, next_header};
use crate::wire::{ipv4, udp};
use crate::wire::{Error, ErrorKind, Layer, Result};

/// Bytes IPv6-in-IPv6 (or IPv4-in-IPv6) adds in front of the inner packet.
pub const IP6IP6_OVERHEAD: usize = ipv6::HEADER_LEN;
/// Bytes GUE over IPv6 (outer IPv6 + UDP + GUE header) adds in front of the inner packet.
pub const GUE6_OVERHEAD: usize = ipv6::HEADER_LEN + udp::HEADER_LEN + GUE_HEADER_LEN;

/// Outer addressing of an encapsulation over IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapSpecV6 {
    /// Outer source (the MUX).
    pub outer_src: Ipv6Addr,
    /// Outer destination (the backend).
    pub outer_dst: Ipv6Addr,
    /// Outer hop limit.
    pub hop_limit: u8,
}

/// The outer flow label for a flow hash: 20 bits of it, never 0 (0 means "no label").
#[inline]
pub const fn flow_label(flow_hash: u32) -> u32 {
    match (flow_hash ^ (flow_hash >> 20)) & 0x000f_ffff {
        0 => 1,
        l => l,
    }
}

/// Checks the inner IPv4 or IPv6 packet (by its version) at the front of `buf`, trims trailing
/// bytes past its length, and returns (next header for the outer header, traffic class, length).
fn inner_packet<B: PacketBuf + ?Sized>(buf: &mut B) -> Result<(u8, u8, usize)> {
    let d = buf.data();
    let r = match d.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = ipv4::Packet::new_checked(d)?;
            (next_header::IPV4, ip.tos(), ip.total_len() as usize)
        }
        Some(6) => {
            let ip = ipv6::Packet::new_checked(d)?;
            (next_header::IPV6, ip.traffic_class(), ip.total_len())
        }
        Some(v) => return Err(Error::new(Layer::Ipv6, ErrorKind::BadVersion(v), 0)),
        None => return Err(Error::truncated(Layer::Ipv6, 1, 0)),
    };
    buf.truncate(r.2);
    Ok(r)
}

/// `BadLength` on `layer` unless `payload_len` fits the outer IPv6 payload length field.
#[inline]
fn fits(layer: Layer, payload_len: usize) -> Result<()> {
    if payload_len > u16::MAX as usize {
        return Err(Error::new(
            layer,
            ErrorKind::BadLength {
                declared: payload_len,
                actual: u16::MAX as usize,
            },
            0,
        ));
    }
    Ok(())
}

/// Writes the outer IPv6 header at the front of `out`.
fn outer_ipv6(
    out: &mut [u8],
    spec: &EncapSpecV6,
    nh: u8,
    traffic_class: u8,
    flow_hash: u32,
    payload_len: usize,
) -> Result<usize> {
    ipv6::Repr {
        src_addr: spec.outer_src,
        dst_addr: spec.outer_dst,
        next_header: nh,
        hop_limit: spec.hop_limit,
        traffic_class,
        flow_label: flow_label(flow_hash),
        payload_len,
    }
    .emit(out)
}

/// Prepends an outer IPv6 header (next header 41 for an IPv6 inner packet, 4 for IPv4; traffic
/// class copied, flow label from `flow_hash`) in front of the inner packet `buf` holds. Returns the
/// new length (Ethernet not included).
pub fn prepend_ip6ip6<B: PacketBuf + ?Sized>(
    buf: &mut B,
    spec: &EncapSpecV6,
    flow_hash: u32,
) -> Result<usize> {
    let (nh, tc, inner_len) = inner_packet(buf)?;
    fits(Layer::Ipv6, inner_len)?;
    prepend_room(buf, IP6IP6_OVERHEAD)?;
    outer_ipv6(buf.data_mut(), spec, nh, tc, flow_hash, inner_len)?;
    Ok(buf.len())
}

/// Prepends outer IPv6 + UDP (source port from `flow_hash`, destination 6080) + GUE header
/// (version 0, no extensions, protocol 41 or 4 after the inner packet) in front of the inner packet
/// `buf` holds. The UDP checksum is always computed: over IPv6 a zero checksum is invalid. Returns
/// the new length (Ethernet not included).
pub fn prepend_gue6<B: PacketBuf + ?Sized>(
    buf: &mut B,
    spec: &EncapSpecV6,
    flow_hash: u32,
) -> Result<usize> {
    let (nh, tc, inner_len) = inner_packet(buf)?;
    let udp_len = udp::HEADER_LEN + GUE_HEADER_LEN + inner_len;
    fits(Layer::Gue, udp_len)?;
    prepend_room(buf, GUE6_OVERHEAD)?;
    let d = buf.data_mut();
    outer_ipv6(d, spec, next_header::UDP, tc, flow_hash, udp_len)?;
    let u = &mut d[ipv6::HEADER_LEN..];
    udp_gue_header(u, flow_hash, udp_len, nh);
    udp::Packet::new_unchecked(&mut u[..udp_len]).fill_checksum_v6(spec.outer_src, spec.outer_dst);
    Ok(buf.len())
}

#[cfg(test)]
mod tests {
    use super::super::testing::l2;
    use super::super::{prepend_ethernet, GUE_PORT};
    use super::*;
    use crate::wire::buf::VecBuf;
    use crate::wire::ethertype;
    use crate::wire::golden6::{self, bytes};
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const SPEC: EncapSpecV6 = EncapSpecV6 {
        outer_src: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
        outer_dst: Ipv6Addr::new(0xfd00, 0, 0, 9, 0, 0, 0, 9),
        hop_limit: 63,
    };

    /// Inner IPv6 (tc 0xb8) and IPv4 (tos 0x10) packets.
    fn inners() -> [(Vec<u8>, u8, u8); 2] {
        let mut v4 = crate::wire::FrameSpec::udp(
            "10.0.0.1:1000".parse().unwrap(),
            "10.0.0.2:53".parse().unwrap(),
            b"four",
        )
        .to_vec()[14..]
            .to_vec();
        let mut p = ipv4::Packet::new_unchecked(&mut v4[..]);
        p.set_tos(0x10);
        p.fill_checksum();
        [
            (bytes(golden6::UDP_EXT), next_header::IPV6, 0xb8),
            (v4, next_header::IPV4, 0x10),
        ]
    }

    #[test]
    fn ip6ip6_and_ip4ip6() {
        for (inner, nh, tc) in inners() {
            let mut padded = inner.clone();
            padded.extend_from_slice(&[0xee; 3]); // trailing bytes are trimmed
            let mut buf = VecBuf::with_room(64, &padded, 0);
            let n = prepend_ip6ip6(&mut buf, &SPEC, 0xdead_beef).unwrap();
            assert_eq!(n, inner.len() + IP6IP6_OVERHEAD);
            let ip = ipv6::Packet::new_checked(buf.data()).unwrap();
            assert_eq!((ip.next_header(), ip.traffic_class()), (nh, tc));
            assert_eq!(
                (ip.hop_limit(), ip.src_addr(), ip.dst_addr()),
                (63, SPEC.outer_src, SPEC.outer_dst)
            );
            assert_eq!(ip.flow_label(), flow_label(0xdead_beef));
            assert_eq!(ip.payload(), &inner[..]);
            prepend_ethernet(&mut buf, &l2(None), ethertype::IPV6).unwrap();
            let s = SlicedPacket::from_ethernet(buf.data()).unwrap();
            let Some(NetSlice::Ipv6(o)) = &s.net else {
                panic!("not IPv6")
            };
            assert_eq!(o.header().destination_addr(), SPEC.outer_dst);
            assert_eq!(o.header().payload_length() as usize, inner.len());
        }
        let mut tight = VecBuf::with_room(39, &inners()[0].0, 0);
        assert_eq!(
            prepend_ip6ip6(&mut tight, &SPEC, 1).unwrap_err().kind,
            ErrorKind::NoRoom {
                required: 40,
                available: 39
            }
        );
        assert_eq!(tight.data(), &inners()[0].0[..]);
        for junk in [&[][..], &[0x55, 0][..], &[0x60, 0, 0][..]] {
            assert!(prepend_ip6ip6(&mut VecBuf::from_slice(junk), &SPEC, 1).is_err());
        }
    }

    #[test]
    fn gue_over_ipv6_has_a_valid_udp_checksum() {
        for (inner, nh, tc) in inners() {
            let mut buf = VecBuf::with_room(128, &inner, 0);
            let n = prepend_gue6(&mut buf, &SPEC, 0x1234_5678).unwrap();
            assert_eq!(n, inner.len() + GUE6_OVERHEAD);
            prepend_ethernet(&mut buf, &l2(Some(3)), ethertype::IPV6).unwrap();
            let s = SlicedPacket::from_ethernet(buf.data()).unwrap();
            let Some(NetSlice::Ipv6(o)) = &s.net else {
                panic!("not IPv6")
            };
            assert_eq!(o.header().traffic_class(), tc);
            let Some(TransportSlice::Udp(u)) = &s.transport else {
                panic!("not UDP")
            };
            assert_eq!(u.destination_port(), GUE_PORT);
            assert!(u.source_port() >= 49152);
            assert_eq!(&u.payload()[..4], &[0, nh, 0, 0]);
            assert_eq!(&u.payload()[4..], &inner[..]);
            let c = u
                .to_header()
                .calc_checksum_ipv6(&o.header().to_header(), u.payload())
                .unwrap();
            assert_eq!(c, u.checksum());
            assert_ne!(c, 0);
            let ip = ipv6::Packet::new_checked(&buf.data()[18..]).unwrap();
            let up = udp::Packet::new_checked(ip.payload()).unwrap();
            assert!(up.verify_checksum_v6(SPEC.outer_src, SPEC.outer_dst));
        }
        let mut tight = VecBuf::with_room(51, &inners()[1].0, 0);
        assert!(prepend_gue6(&mut tight, &SPEC, 0).is_err());
        assert_eq!(tight.data(), &inners()[1].0[..]);
    }

    #[test]
    fn oversize_inner_is_refused_before_prepending() {
        let mut big = vec![0u8; 40 + 65535];
        ipv6::Repr {
            src_addr: SPEC.outer_src,
            dst_addr: SPEC.outer_dst,
            next_header: next_header::NO_NEXT,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 65535,
        }
        .emit(&mut big)
        .unwrap();
        let mut buf = VecBuf::from_slice(&big);
        assert!(matches!(
            prepend_ip6ip6(&mut buf, &SPEC, 0).unwrap_err().kind,
            ErrorKind::BadLength { .. }
        ));
        assert_eq!(
            prepend_gue6(&mut buf, &SPEC, 0).unwrap_err().layer,
            Layer::Gue
        );
        assert_eq!(buf.len(), big.len());
        assert_ne!(flow_label(0), 0);
        assert_ne!(flow_label(1), flow_label(2));
    }
}
