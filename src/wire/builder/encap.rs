//! Encapsulation on the data path: an outer IPv4 header (IPv4-in-IPv4), or outer IPv4 + UDP +
//! GUE, or an Ethernet header, prepended in front of the packet a [`PacketBuf`] holds. This is
//! per-packet work: no allocation, the buffer's headroom only.

use std::net::Ipv4Addr;

use super::L2Spec;
use crate::wire::buf::PacketBuf;
use crate::wire::ipv4::{self, protocol};
use crate::wire::{checksum, udp};
use crate::wire::{Error, ErrorKind, Layer, Result};

/// UDP destination port of GUE.
pub const GUE_PORT: u16 = 6080;
/// Length of a GUE header without extension fields.
pub const GUE_HEADER_LEN: usize = 4;
/// Bytes IPv4-in-IPv4 adds in front of the inner packet.
pub const IPIP_OVERHEAD: usize = ipv4::HEADER_LEN;
/// Bytes GUE (outer IPv4 + UDP + GUE header) adds in front of the inner packet.
pub const GUE_OVERHEAD: usize = ipv4::HEADER_LEN + udp::HEADER_LEN + GUE_HEADER_LEN;

/// Outer addressing of an encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapSpec {
    /// Outer source (the MUX).
    pub outer_src: Ipv4Addr,
    /// Outer destination (the backend).
    pub outer_dst: Ipv4Addr,
    /// Outer TTL.
    pub ttl: u8,
}

/// Checks the inner IPv4 packet at the front of `buf`, trims trailing bytes past its total length,
/// and returns (tos, DF, ident, length).
fn inner_ipv4<B: PacketBuf + ?Sized>(buf: &mut B) -> Result<(u8, bool, u16, usize)> {
    let ip = ipv4::Packet::new_checked(buf.data())?;
    let r = (
        ip.tos(),
        ip.dont_frag(),
        ip.ident(),
        ip.total_len() as usize,
    );
    buf.truncate(r.3);
    Ok(r)
}

/// Claims `n` bytes of headroom in front of the data, or `NoRoom` (buffer unchanged).
#[inline]
pub(super) fn prepend_room<B: PacketBuf + ?Sized>(buf: &mut B, n: usize) -> Result<()> {
    if buf.headroom() < n {
        return Err(Error::no_room(n, buf.headroom()));
    }
    buf.prepend(n)
        .map(|_| ())
        .ok_or(Error::no_room(n, buf.headroom()))
}

/// Writes an outer IPv4 header in front of an inner packet of `inner_len` bytes.
fn outer_ipv4(
    out: &mut [u8],
    spec: &EncapSpec,
    proto: u8,
    inner: (u8, bool, u16),
    payload_len: usize,
) -> Result<usize> {
    ipv4::Repr {
        src_addr: spec.outer_src,
        dst_addr: spec.outer_dst,
        protocol: proto,
        ttl: spec.ttl,
        tos: inner.0,
        ident: inner.2,
        dont_frag: inner.1,
        payload_len,
    }
    .emit(out)
}

/// Prepends an outer IPv4 header (protocol 4, TOS/DF/ident copied from the inner header) in front
/// of the inner IPv4 packet that `buf` holds. Returns the new length (Ethernet not included).
pub fn prepend_ipip<B: PacketBuf + ?Sized>(buf: &mut B, spec: &EncapSpec) -> Result<usize> {
    let (tos, df, ident, inner_len) = inner_ipv4(buf)?;
    prepend_room(buf, IPIP_OVERHEAD)?;
    outer_ipv4(
        buf.data_mut(),
        spec,
        protocol::IPIP,
        (tos, df, ident),
        inner_len,
    )?;
    Ok(buf.len())
}

/// UDP source port for GUE from a flow hash: in the ephemeral range 49152..=65535, so receivers can
/// spread flows by RSS.
#[inline]
pub const fn gue_source_port(flow_hash: u32) -> u16 {
    let h = flow_hash ^ (flow_hash >> 16);
    0xc000 | (h as u16 & 0x3fff)
}

/// Prepends outer IPv4 + UDP (source port from `flow_hash`, destination 6080) + GUE header
/// (version 0, no extensions, protocol 4) in front of the inner IPv4 packet that `buf` holds. The
/// UDP checksum is computed when `udp_checksum` is true, else left 0 ("none"). Returns the new
/// length (Ethernet not included).
pub fn prepend_gue<B: PacketBuf + ?Sized>(
    buf: &mut B,
    spec: &EncapSpec,
    flow_hash: u32,
    udp_checksum: bool,
) -> Result<usize> {
    let (tos, df, ident, inner_len) = inner_ipv4(buf)?;
    let udp_len = udp::HEADER_LEN + GUE_HEADER_LEN + inner_len;
    if ipv4::HEADER_LEN + udp_len > u16::MAX as usize {
        return Err(Error::new(
            Layer::Gue,
            ErrorKind::BadLength {
                declared: ipv4::HEADER_LEN + udp_len,
                actual: u16::MAX as usize,
            },
            0,
        ));
    }
    prepend_room(buf, GUE_OVERHEAD)?;
    let d = buf.data_mut();
    outer_ipv4(d, spec, protocol::UDP, (tos, df, ident), udp_len)?;
    let u = &mut d[ipv4::HEADER_LEN..];
    udp_gue_header(u, flow_hash, udp_len, protocol::IPIP);
    if udp_checksum {
        let c = checksum::udp_finish(checksum::add(
            checksum::pseudo_header_sum(
                spec.outer_src,
                spec.outer_dst,
                protocol::UDP,
                udp_len as u16,
            ),
            checksum::sum(&u[..udp_len]),
        ));
        udp::Packet::new_unchecked(&mut u[..udp::HEADER_LEN]).set_checksum(c);
    }
    Ok(buf.len())
}

/// Writes the UDP header (source port from `flow_hash`, destination [`GUE_PORT`], length
/// `udp_len`, checksum 0) and the GUE v0 header (no extensions, inner protocol `proto`) at the
/// front of `u`.
pub(super) fn udp_gue_header(u: &mut [u8], flow_hash: u32, udp_len: usize, proto: u8) {
    let mut p = udp::Packet::new_unchecked(&mut u[..udp::HEADER_LEN]);
    p.set_src_port(gue_source_port(flow_hash));
    p.set_dst_port(GUE_PORT);
    p.set_len(udp_len as u16);
    p.set_checksum(0);
    // GUE v0: ver(2)=0 C(1)=0 hlen(5)=0 | proto | flags 0.
    u[udp::HEADER_LEN..udp::HEADER_LEN + GUE_HEADER_LEN].copy_from_slice(&[0, proto, 0, 0]);
}

/// Prepends an Ethernet header (with the optional tag) carrying `ethertype`; returns the new length.
pub fn prepend_ethernet<B: PacketBuf + ?Sized>(
    buf: &mut B,
    l2: &L2Spec,
    ethertype: u16,
) -> Result<usize> {
    let n = l2.header_len();
    prepend_room(buf, n)?;
    l2.emit(buf.data_mut(), ethertype)?;
    Ok(buf.len())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{etherparse_check, l2, A, B};
    use super::super::FrameSpec;
    use super::*;
    use crate::wire::buf::VecBuf;
    use crate::wire::ethernet::ethertype;
    use crate::wire::tcp::Flags;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use std::net::SocketAddrV4;

    fn inner_packet() -> Vec<u8> {
        let spec = FrameSpec {
            ident: 0x4242,
            payload: b"inner payload",
            ..FrameSpec::tcp(
                SocketAddrV4::new(A, 33000),
                SocketAddrV4::new(B, 443),
                Flags::ACK,
            )
        };
        spec.to_vec()[14..].to_vec()
    }

    #[test]
    fn ipip_encap() {
        let inner = inner_packet();
        let mut padded = inner.clone();
        padded.extend_from_slice(&[0xee; 4]); // trailing garbage is trimmed
        let mut buf = VecBuf::with_room(64, &padded, 0);
        let spec = EncapSpec {
            outer_src: Ipv4Addr::new(172, 16, 0, 1),
            outer_dst: Ipv4Addr::new(172, 16, 9, 9),
            ttl: 63,
        };
        let n = prepend_ipip(&mut buf, &spec).unwrap();
        assert_eq!(n, inner.len() + 20);
        let outer = ipv4::Packet::new_checked(buf.data()).unwrap();
        assert!(outer.verify_checksum());
        assert_eq!(outer.protocol(), protocol::IPIP);
        assert_eq!(outer.total_len() as usize, n);
        assert_eq!(outer.ttl(), 63);
        assert!(outer.dont_frag());
        assert_eq!(outer.ident(), 0x4242);
        assert_eq!(outer.payload(), &inner[..]);
        prepend_ethernet(&mut buf, &l2(None), ethertype::IPV4).unwrap();
        // etherparse sees the outer header, and the inner packet with valid checksums.
        let s = SlicedPacket::from_ethernet(buf.data()).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &s.net else {
            panic!()
        };
        assert_eq!(ip.header().source_addr(), spec.outer_src);
        assert_eq!(ip.header().protocol(), etherparse::IpNumber::IPV4);
        let mut again = vec![0u8; 14];
        again[12..14].copy_from_slice(&[0x08, 0x00]);
        again.extend_from_slice(&buf.data()[34..]);
        let s = etherparse_check(&again);
        let Some(TransportSlice::Tcp(t)) = &s.transport else {
            panic!()
        };
        assert_eq!(t.destination_port(), 443);
        // No headroom: error, buffer unchanged.
        let mut tight = VecBuf::with_room(10, &inner, 0);
        assert_eq!(
            prepend_ipip(&mut tight, &spec).unwrap_err().kind,
            ErrorKind::NoRoom {
                required: 20,
                available: 10
            }
        );
        assert_eq!(tight.data(), &inner[..]);
        let mut junk = VecBuf::with_room(64, &[0x45, 0, 0], 0);
        assert!(prepend_ipip(&mut junk, &spec).is_err());
    }

    #[test]
    fn gue_encap() {
        let inner = inner_packet();
        let spec = EncapSpec {
            outer_src: Ipv4Addr::new(172, 16, 0, 1),
            outer_dst: Ipv4Addr::new(172, 16, 9, 9),
            ttl: 64,
        };
        for with_csum in [false, true] {
            let mut buf = VecBuf::with_room(128, &inner, 0);
            let n = prepend_gue(&mut buf, &spec, 0xdead_beef, with_csum).unwrap();
            assert_eq!(n, inner.len() + GUE_OVERHEAD);
            prepend_ethernet(&mut buf, &l2(Some(9)), ethertype::IPV4).unwrap();
            let s = etherparse_check(buf.data());
            let Some(TransportSlice::Udp(u)) = &s.transport else {
                panic!()
            };
            assert_eq!(u.destination_port(), GUE_PORT);
            assert_eq!(u.source_port(), gue_source_port(0xdead_beef));
            assert!(u.source_port() >= 49152);
            assert_eq!(u.length() as usize, 8 + 4 + inner.len());
            assert_eq!(u.checksum() != 0, with_csum);
            assert_eq!(&u.payload()[..4], &[0, 4, 0, 0]);
            assert_eq!(&u.payload()[4..], &inner[..]);
            let ip = ipv4::Packet::new_checked(&buf.data()[18..]).unwrap();
            let up = udp::Packet::new_checked(ip.payload()).unwrap();
            assert!(up.verify_checksum(spec.outer_src, spec.outer_dst));
        }
        assert_ne!(gue_source_port(1), gue_source_port(2));
        let mut tight = VecBuf::with_room(31, &inner, 0);
        assert!(prepend_gue(&mut tight, &spec, 0, false).is_err());
        assert_eq!(tight.data(), &inner[..]);
    }
}
